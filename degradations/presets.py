"""Named degradation presets: how parameters are sampled and in which order the steps run.

A preset is plain data (a frozen dataclass) plus two pure functions: `sample(rng)` draws one image's
parameters from an explicit `numpy.random.Generator`, and `apply(gt, params)` makes the LQ image.
The preset name, its version and every sampled value go into the test-set manifest, so a test set
can be rebuilt exactly. Bump `version` whenever a preset's output changes for the same parameters.

Presets (1024 GT in):
- `official` (default for MFR): the paper's prose order, which the official example inputs show
  (JPEG block grid and white noise at 512, spec/panini-official.md 4.3): blur -> downsample by r ->
  upsample to 512 -> noise -> JPEG at 512.
- `eq10-literal`: Eq. (10) read literally: blur -> downsample by r -> noise -> JPEG at the low
  resolution -> resize to 512. Same ranges; shows how much the unstated order moves the metrics.
- `sr16`: 1024 -> 64 PIL bilinear (antialiased), as the official SR inputs were made.
- `theta`: the official order with sigma, noise and quality fixed and r swept (Table 4 / Fig. 7).
- `official-fit`: the official order with the kernels and JPEG reading that `bench testset fit` finds
  in the 10 official example inputs (issue #12): downsampling without anti-aliasing (OpenCV linear:
  low-res reconstruction error 0.4-37 vs 23-191 with INTER_AREA), bilinear upsampling to 512 (sharper
  match in 6/8 images), colour noise at 512, JPEG at 512 on the (0,0) grid with 4:2:0 chroma, and JPEG
  IJG quality 100 - q with q ~ U{5..50} (the examples' IJG quality is 57-95, outside [5,50] read
  directly). r stays relative to the 1024 GT (r = 13-60 for the 8 examples whose low-res size is visible).

Choices the paper does not state, made here and recorded: sigma ~ U[0.2, 10] (GFP-GAN's range),
kernel size 2*ceil(3 sigma)+1, r relative to the 1024 GT, downsampling with area averaging (INTER_AREA),
upsampling with bicubic, colour (per-channel) Gaussian noise, OpenCV libjpeg at 4:2:0.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np

from bench.degradations import ops

TASKS = ("mfr", "sr16", "theta")


@dataclass(frozen=True)
class Eq10Preset:
    """Random Eq. (10) degradation: uniform ranges for sigma, r, noise std and JPEG quality."""

    name: str
    version: str
    order: str  # "official" or "eq10-literal"
    lq_size: int = 512
    sigma: tuple[float, float] = (0.2, 10.0)
    downsample: tuple[float, float] = (10.0, 200.0)
    noise: tuple[float, float] = (0.0, 25.0)
    jpeg_quality: tuple[int, int] = (5, 50)
    grey_noise: bool = False
    jpeg_quality_complement: bool = False  # the encoder gets IJG quality 100 - q (official-fit's reading)
    downsample_interpolation: str = "area"
    upsample_interpolation: str = "bicubic"

    task = "mfr"

    def validate(self) -> None:
        _check_range("sigma", self.sigma, 0.0, 50.0)
        _check_range("downsample", self.downsample, 1.0, 1024.0)
        _check_range("noise", self.noise, 0.0, 255.0)
        _check_range("jpeg_quality", self.jpeg_quality, 1, 100)
        _check_size("lq_size", self.lq_size)
        for key in ("downsample_interpolation", "upsample_interpolation"):
            if getattr(self, key) not in ops.CV2_INTERPOLATION:
                raise ValueError(f"{key} must be one of {sorted(ops.CV2_INTERPOLATION)}, got {getattr(self, key)!r}")

    def variants(self) -> list[dict]:
        """Fixed parameters per LQ made from one GT (one variant: nothing fixed)."""
        return [{}]

    def sample(self, rng: np.random.Generator, fixed: dict | None = None) -> dict:
        """Draw one image's parameters; the draw order is part of the preset version."""
        sigma = float(rng.uniform(*self.sigma))
        r = float(rng.uniform(*self.downsample))
        noise = float(rng.uniform(*self.noise))
        quality = int(rng.integers(self.jpeg_quality[0], self.jpeg_quality[1] + 1))
        noise_seed = int(rng.integers(2**63))
        params = {"sigma": sigma, "r": r, "noise": noise, "jpeg_quality": quality, "noise_seed": noise_seed}
        params.update(fixed or {})
        params["kernel_size"] = ops.blur_kernel_size(params["sigma"])
        if self.jpeg_quality_complement:
            params["ijg_quality"] = 100 - params["jpeg_quality"]
        return params

    def ijg_quality(self, params: dict) -> int:
        """The quality handed to the JPEG encoder for these parameters."""
        q = params["jpeg_quality"]
        return 100 - q if self.jpeg_quality_complement else q

    def apply(self, gt: np.ndarray, params: dict) -> np.ndarray:
        img = ops.gaussian_blur(gt, params["sigma"])
        img = ops.downsample(img, params["r"], self.downsample_interpolation)
        if self.order == "official":
            img = ops.resize(img, self.lq_size, self.upsample_interpolation)
        img = ops.add_gaussian_noise(img, params["noise"], params["noise_seed"], grey=self.grey_noise)
        img = ops.jpeg(img, self.ijg_quality(params))
        if self.order == "eq10-literal":
            img = ops.resize(img, self.lq_size, self.upsample_interpolation)
        return img


@dataclass(frozen=True)
class ThetaPreset(Eq10Preset):
    """Table 4 / Fig. 7: sigma, noise and quality fixed (the paper gives no values), r swept."""

    sigma: tuple[float, float] = (3.0, 3.0)
    noise: tuple[float, float] = (10.0, 10.0)
    jpeg_quality: tuple[int, int] = (30, 30)
    r_values: tuple[float, ...] = (16.0, 32.0, 64.0, 128.0)

    task = "theta"

    def validate(self) -> None:
        super().validate()
        if not self.r_values or any(not 1 <= r <= 1024 for r in self.r_values):
            raise ValueError(f"r_values must be a non-empty list of factors in [1, 1024], got {self.r_values}")

    def variants(self) -> list[dict]:
        return [{"r": float(r)} for r in self.r_values]

    @staticmethod
    def variant_suffix(fixed: dict) -> str:
        return f"_r{round(fixed['r']):03d}"


@dataclass(frozen=True)
class BilinearSRPreset:
    """16x SR: antialiased PIL bilinear downscale of the GT to `lq_size` (no blur, noise or JPEG)."""

    name: str
    version: str
    lq_size: int = 64

    task = "sr16"

    def validate(self) -> None:
        _check_size("lq_size", self.lq_size)

    def variants(self) -> list[dict]:
        return [{}]

    def sample(self, rng: np.random.Generator, fixed: dict | None = None) -> dict:
        return {}

    def apply(self, gt: np.ndarray, params: dict) -> np.ndarray:
        return ops.resize_pil_bilinear(gt, self.lq_size)


PRESETS = {
    "official": Eq10Preset(name="official", version="1", order="official"),
    "eq10-literal": Eq10Preset(name="eq10-literal", version="1", order="eq10-literal"),
    "sr16": BilinearSRPreset(name="sr16", version="1"),
    "theta": ThetaPreset(name="theta", version="1", order="official"),
    "official-fit": Eq10Preset(
        name="official-fit", version="1", order="official", jpeg_quality_complement=True,
        downsample_interpolation="bilinear", upsample_interpolation="bilinear",
    ),
}

# One line per preset: why it exists (shown in reports next to the preset name).
PRESET_DOCS = {
    "official": "Paper prose order (noise and JPEG at 512), INTER_AREA down, bicubic up, JPEG quality q in [5,50].",
    "eq10-literal": "Eq. (10) read literally: noise and JPEG at the low resolution, then resize to 512.",
    "sr16": "16x SR: PIL bilinear (antialiased) 1024 -> 64, as the official SR inputs were made.",
    "theta": "Table 4 / Fig. 7: official order, sigma 3, noise 10, quality 30 fixed, r swept.",
    "official-fit": "Fitted to the official example inputs: linear down (no antialias), bilinear up, "
                    "colour noise and JPEG (IJG quality 100 - q, 4:2:0) at 512.",
}

DEFAULT_PRESET = {"mfr": "official", "sr16": "sr16", "theta": "theta"}


def get_preset(name: str, **overrides):
    """The named preset with some fields replaced (e.g. `sigma=(0.5, 4)`), validated."""
    if name not in PRESETS:
        raise ValueError(f"unknown preset '{name}'; choose from {', '.join(PRESETS)}")
    base = PRESETS[name]
    names = {f.name for f in dataclasses.fields(base)} - {"name", "version", "order"}
    unknown = sorted(set(overrides) - names)
    if unknown:
        raise ValueError(f"preset '{name}' has no parameter {', '.join(unknown)}; its parameters: {sorted(names)}")
    preset = dataclasses.replace(base, **{k: _coerce(base, k, v) for k, v in overrides.items()})
    preset.validate()
    return preset


def preset_settings(preset) -> dict:
    """Every field of the preset as JSON-ready data (recorded in testset.json)."""
    return {k: list(v) if isinstance(v, tuple) else v for k, v in dataclasses.asdict(preset).items()}


def parse_param(text: str) -> tuple[str, object]:
    """Parse a CLI `KEY=VALUE`; VALUE is a number, `lo,hi`, a list `a,b,c`, or true/false."""
    key, sep, value = text.partition("=")
    if not sep or not key:
        raise ValueError(f"--param expects KEY=VALUE, got '{text}'")
    parts = [p.strip() for p in value.split(",")]
    return key.strip(), parts if len(parts) > 1 else parts[0]


def _coerce(base, key: str, value):
    current = getattr(base, key)
    try:
        if isinstance(current, bool):
            if isinstance(value, str):
                if value.lower() not in ("true", "false", "1", "0"):
                    raise ValueError
                return value.lower() in ("true", "1")
            return bool(value)
        if isinstance(current, tuple):
            items = value if isinstance(value, (list, tuple)) else [value]
            kind = type(current[0])
            items = tuple(kind(float(v)) if kind is int else kind(v) for v in items)
            if key == "r_values":
                return items
            if len(items) == 1:
                items = items * 2  # a single value fixes the parameter
            if len(items) != 2:
                raise ValueError
            return items
        return type(current)(value)
    except (TypeError, ValueError):
        raise ValueError(f"bad value {value!r} for preset parameter '{key}' (current value {current!r})") from None


def _check_range(key: str, bounds, lo, hi) -> None:
    if len(bounds) != 2 or not (lo <= bounds[0] <= bounds[1] <= hi):
        raise ValueError(f"{key} must be a range lo,hi with {lo} <= lo <= hi <= {hi}, got {tuple(bounds)}")


def _check_size(key: str, size: int) -> None:
    if not 1 <= size <= 4096:
        raise ValueError(f"{key} must be between 1 and 4096, got {size}")
