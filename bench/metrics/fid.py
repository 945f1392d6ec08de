"""FID and KID from Inception pool3 features (pytorch-fid network by default, clean-fid as a second backend).

Features: pytorch-fid's `InceptionV3([3])` (input [0,1], bilinear resize to 299 without antialias,
2x-1) or clean-fid's TorchScript network (`clean`: PIL bicubic float resize; `legacy_tensorflow`:
resize inside the graph). The weights come from the registry, verified before the library loads them.

Frechet distance, float64 and without scipy's `sqrtm` (whose behaviour changed across versions):
with covariances written as Sigma_i = F_i^T F_i, tr sqrt(Sigma_1 Sigma_2) is the nuclear norm
(sum of singular values) of F_1 F_2^T. From features F = (X - mean) / sqrt(n - 1), which is small
when n < 2048 (the 1000-image regime where sqrtm is ill-conditioned); from a stored covariance
F = sqrt(w) V^T from its eigen-decomposition (or, against stored statistics, the eigenvalues of the
small n x n matrix F_1 Sigma_2 F_1^T).

KID: clean-fid's `kernel_distance` (cubic polynomial kernel, subsets of <= 1000) in float64, with an
explicit generator; when both sets fit in one subset every subset is a permutation of the full sets
and the statistic is permutation-invariant, so it is computed once.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import torch

from bench.errors import BenchError
from bench.metrics.base import PROTOCOL_VERSION, Metric, check_pair, default_ids, result_row, to_float_nchw
from bench.metrics.bootstrap import bootstrap_statistic_ci
from bench.weights import DEFAULT_REGISTRY, Registry, hub_scope, resolve, sha256_file, verify_file

# --------------------------------------------------------------------------------------------------
# Distances (pure functions on float64 arrays)


def covariance_factor(features: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(mean, F) with np.cov(features, rowvar=False) == F.T @ F."""
    x = np.asarray(features, dtype=np.float64)
    mean = x.mean(axis=0)
    return mean, (x - mean) / np.sqrt(len(x) - 1)


def factor_from_covariance(sigma: np.ndarray) -> np.ndarray:
    """F with F.T @ F == sigma (symmetrised, negative eigenvalues from round-off clipped to 0)."""
    sigma = np.asarray(sigma, dtype=np.float64)
    w, v = np.linalg.eigh((sigma + sigma.T) / 2)
    return np.sqrt(np.clip(w, 0, None))[:, None] * v.T


def frechet_distance_factors(mu1, f1, mu2, f2) -> float:
    """||mu1 - mu2||^2 + tr S1 + tr S2 - 2 tr sqrt(S1 S2) with S_i = F_i^T F_i."""
    diff = np.asarray(mu1, np.float64) - np.asarray(mu2, np.float64)
    cross = np.linalg.svd(f1 @ f2.T, compute_uv=False).sum()
    return float(diff @ diff + np.sum(f1 * f1) + np.sum(f2 * f2) - 2.0 * cross)


def frechet_distance(mu1, sigma1, mu2, sigma2) -> float:
    """Frechet distance between two Gaussians given by mean and covariance (float64)."""
    return frechet_distance_factors(mu1, factor_from_covariance(sigma1), mu2, factor_from_covariance(sigma2))


def fid_features_vs_stats(features: np.ndarray, mu_ref, sigma_ref) -> float:
    """FID of a feature set against stored (mean, covariance): tr sqrt(S1 S2) = sum sqrt(eig(F1 S2 F1^T)),
    an n x n problem, so no 2048 x 2048 decomposition of the stored covariance is needed."""
    mu, f = covariance_factor(features)
    sigma_ref = np.asarray(sigma_ref, np.float64)
    diff = mu - np.asarray(mu_ref, np.float64)
    cross = np.sqrt(np.clip(np.linalg.eigvalsh(f @ sigma_ref @ f.T), 0, None)).sum()
    return float(diff @ diff + np.sum(f * f) + np.trace(sigma_ref) - 2.0 * cross)


def fid_from_features(pred: np.ndarray, ref: np.ndarray) -> float:
    mu1, f1 = covariance_factor(pred)
    mu2, f2 = covariance_factor(ref)
    return frechet_distance_factors(mu1, f1, mu2, f2)


def kernel_distance(
    pred: np.ndarray,
    ref: np.ndarray,
    subsets: int = 100,
    subset_size: int = 1000,
    rng: np.random.Generator | None = None,
) -> float:
    """KID as clean-fid's `kernel_distance(pred, ref)` computes it, in float64."""
    x_all, y_all = np.asarray(ref, np.float64), np.asarray(pred, np.float64)
    d = x_all.shape[1]
    m = min(len(x_all), len(y_all), subset_size)
    full = m == len(x_all) == len(y_all)
    if full:
        subsets = 1  # every draw is a permutation of the full sets: same value
    elif rng is None:
        raise BenchError("kernel_distance: pass a numpy Generator when subsets are drawn")
    total = 0.0
    for _ in range(subsets):
        x = x_all if full else x_all[rng.choice(len(x_all), m, replace=False)]
        y = y_all if full else y_all[rng.choice(len(y_all), m, replace=False)]
        a = (x @ x.T / d + 1) ** 3 + (y @ y.T / d + 1) ** 3
        b = (x @ y.T / d + 1) ** 3
        total += (a.sum() - np.trace(a)) / (m - 1) - b.sum() * 2 / m
    return float(total / subsets / m)


# --------------------------------------------------------------------------------------------------
# Feature extractors


class PytorchFIDFeatures:
    """pytorch-fid's InceptionV3 block 3 (2048-d), exactly its preprocessing."""

    backend = "pytorch-fid"
    weights_name = "inception-fid"

    def __init__(self, device="cpu", registry: Registry = DEFAULT_REGISTRY):
        from pytorch_fid.inception import InceptionV3

        path = resolve(self.weights_name, registry)
        self.weights_sha256 = verify_file(registry.get(self.weights_name), path)
        with hub_scope(path):
            self.model = InceptionV3([InceptionV3.BLOCK_INDEX_BY_DIM[2048]]).eval()
        self.device = torch.device(device)
        self.model.to(self.device)
        self.conventions = {
            "backend": "pytorch-fid 0.3.0 InceptionV3 block 3 (2048-d pool3)",
            "input": "uint8 RGB / 255 (PIL -> ToTensor)",
            "resize": "F.interpolate bilinear to 299x299, align_corners=False, no antialias",
            "normalize": "2x-1",
        }

    @torch.no_grad()
    def __call__(self, images: torch.Tensor) -> np.ndarray:
        feats = self.model(images.to(self.device))[0]
        return feats.squeeze(-1).squeeze(-1).cpu().numpy().astype(np.float32)


class CleanFIDFeatures:
    """clean-fid's TorchScript Inception (`clean` or `legacy_tensorflow` mode), never its /tmp cache."""

    backend = "clean-fid"
    weights_name = "inception-cleanfid"

    def __init__(self, device="cpu", registry: Registry = DEFAULT_REGISTRY, mode: str = "clean"):
        from cleanfid.inception_torchscript import InceptionV3W
        from cleanfid.resize import build_resizer

        if mode not in ("clean", "legacy_tensorflow"):
            raise BenchError(f"fid: clean-fid mode must be 'clean' or 'legacy_tensorflow', got {mode!r}")
        path = resolve(self.weights_name, registry)
        self.weights_sha256 = verify_file(registry.get(self.weights_name), path)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", FutureWarning)  # torch.jit deprecation
            self.model = InceptionV3W(str(path.parent), download=False, resize_inside=mode == "legacy_tensorflow")
        self.mode, self.resize = mode, build_resizer(mode)
        self.device = torch.device(device)
        self.model.to(self.device)
        self.conventions = {
            "backend": f"clean-fid 0.1.35 TorchScript inception-2015-12-05, mode={mode}",
            "input": "uint8 RGB as float [0,255]",
            "resize": "PIL bicubic per channel in float, to 299x299" if mode == "clean" else "inside the graph",
        }

    @torch.no_grad()
    def __call__(self, images: torch.Tensor) -> np.ndarray:
        u8 = (images * 255).round().clamp(0, 255).to(torch.uint8).permute(0, 2, 3, 1).numpy()
        batch = torch.from_numpy(np.stack([self.resize(img) for img in u8]).astype(np.float32)).permute(0, 3, 1, 2)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", FutureWarning)
            feats = self.model(batch.contiguous().to(self.device))
        return feats.cpu().numpy().astype(np.float32)


BACKENDS = {"pytorch-fid": PytorchFIDFeatures, "clean-fid": CleanFIDFeatures}


def load_reference_stats(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """mean/cov from a pytorch-fid `.npz` (mu, sigma) or a BasicSR `.pth` (dict with mean, cov)."""
    path = Path(path)
    if not path.is_file():
        raise BenchError(f"FID reference statistics file {path} does not exist")
    try:
        if path.suffix == ".npz":
            with np.load(path) as data:
                return np.asarray(data["mu"], np.float64), np.asarray(data["sigma"], np.float64)
        # BasicSR stores numpy arrays: allow exactly numpy's array reconstruction, nothing else.
        multiarray = np._core.multiarray if hasattr(np, "_core") else np.core.multiarray  # numpy 2 / 1
        safe = [multiarray._reconstruct, np.ndarray, np.dtype, type(np.dtype(np.float64))]
        with torch.serialization.safe_globals(safe):
            data = torch.load(path, map_location="cpu", weights_only=True)
        return np.asarray(data["mean"], np.float64), np.asarray(data["cov"], np.float64)
    except Exception as exc:  # any unreadable / unexpected content is a user-fixable input problem
        raise BenchError(
            f"cannot read FID reference statistics {path}: {exc}; expected an .npz with "
            "'mu'/'sigma' or a .pth dict with 'mean'/'cov'"
        ) from None


# --------------------------------------------------------------------------------------------------
# The metric


class InceptionDistances(Metric):
    """FID and/or KID over a set of predictions, with one feature pass shared by both.

    reference="gt" (default, the Panini protocol): the GT images passed to update() are the reference
    set. Otherwise `reference` is a statistics file path or a weights-registry name (e.g.
    "fid-stats-ffhq-512", the BasicSR/GFP-GAN protocol); then only FID is defined.
    State is the per-image features (8 KiB per image, one array per batch), so shards merge by
    concatenation exactly. `name` is the first output; each row carries its own output's knowledge.
    """

    name = "fid"
    state_fields = ("ids", "pred", "gt")
    default_ci_resamples = 50

    def __init__(
        self,
        outputs=("fid", "kid"),
        backend: str = "pytorch-fid",
        mode: str = "clean",
        reference: str = "gt",
        kid_subsets: int = 100,
        kid_subset_size: int = 1000,
        kid_seed: int = 0,
        extractor=None,
        **common,
    ):
        super().__init__(**common)
        self.outputs = tuple(outputs)
        unknown = set(self.outputs) - {"fid", "kid"}
        if unknown or not self.outputs:
            raise BenchError(f"inception metrics: outputs must be among 'fid', 'kid', got {self.outputs}")
        if backend not in BACKENDS:
            raise BenchError(f"fid: backend must be one of {sorted(BACKENDS)}, got {backend!r}")
        self.name = self.outputs[0]
        if extractor is None:
            options = {"mode": mode} if backend == "clean-fid" else {}
            extractor = BACKENDS[backend](device=self.device, registry=self.registry, **options)
        self.extractor = extractor
        self.reference = reference
        self._ref_stats = None
        reference_record = "gt images passed to update() (paired test-set GT)"
        if reference != "gt":
            if "kid" in self.outputs:
                raise BenchError("kid needs reference features: use reference='gt', or request only 'fid'")
            path = Path(reference) if Path(reference).suffix in (".npz", ".pth") else resolve(reference, self.registry)
            self._ref_stats = load_reference_stats(path)
            reference_record = {"file": path.name, "sha256": sha256_file(path)}
        self.kid = {
            "subsets": int(kid_subsets),
            "subset_size": int(kid_subset_size),
            "seed": int(kid_seed),
            "kernel": "(x.y/d + 1)^3",
            "bootstrap_subsets": min(int(kid_subsets), 10),  # per resample; bounds the CI cost when N > subset_size
        }
        self.bootstrap["design"] = "paired resampling of image ids"
        self._protocol_base = {
            "version": PROTOCOL_VERSION,
            **extractor.conventions,
            "dims": 2048,
            "weights_sha256": extractor.weights_sha256,
            "reference": reference_record,
            "frechet": "float64, tr sqrt(S1 S2) as nuclear norm of covariance factors (no scipy sqrtm)",
        }

    def protocol_for(self, metric: str) -> dict:
        """The protocol of one output ('fid' or 'kid'), as stored in its result rows."""
        extra = {"kid": self.kid} if metric == "kid" else {}
        return {"metric": metric, **self._protocol_base, **extra, "bootstrap": self.bootstrap}

    @property
    def protocol(self) -> dict:
        """The protocol of the whole object (all outputs), like the per-image metrics' `protocol`."""
        return {"outputs": list(self.outputs), **{m: self.protocol_for(m) for m in self.outputs}}

    def features(self, images) -> np.ndarray:
        return self.extractor(to_float_nchw(images, "fid input"))

    def update(self, pred, gt=None, ids: list[str] | None = None) -> None:
        """Add a batch of predictions and (for reference='gt') their GT images."""
        if gt is not None:
            check_pair(pred, gt)
        self.add_features(self.features(pred), None if gt is None else self.features(gt), ids)

    def add_features(self, pred_feats: np.ndarray, gt_feats: np.ndarray | None = None, ids=None) -> None:
        """Add precomputed features (e.g. GT features from the evaluation cache)."""
        ids = list(ids) if ids is not None else default_ids(len(self.state["ids"]), len(pred_feats))
        self.state["ids"].extend(ids)
        self.state["pred"].append(np.asarray(pred_feats, np.float32))
        if gt_feats is not None:
            self.state["gt"].append(np.asarray(gt_feats, np.float32))

    def set_reference_features(self, gt_feats: np.ndarray) -> None:
        """Replace the GT-side features (the evaluation cache supplies them for the whole set at once)."""
        self.state["gt"] = [np.asarray(gt_feats, np.float32)]

    @staticmethod
    def _stack(parts) -> np.ndarray:
        return np.concatenate(parts) if parts else np.zeros((0, 2048), np.float32)

    def compute(self) -> list[dict]:
        pred, gt = self._stack(self.state["pred"]), self._stack(self.state["gt"])
        n = len(pred)
        if n < 2:
            raise BenchError(f"FID/KID need at least 2 images, got {n}")
        rows = []
        if self._ref_stats is None:
            if len(gt) != n:
                raise BenchError(f"FID/KID: {n} predictions but {len(gt)} GT images; pass both to update()")
            paired = lambda fn: bootstrap_statistic_ci(  # noqa: E731
                n,
                lambda idx: fn(pred[idx], gt[idx]),
                resamples=self.bootstrap["resamples"],
                level=self.bootstrap["level"],
                seed=self.bootstrap["seed"],
            )
            if "fid" in self.outputs:
                rows.append(
                    result_row(
                        "fid",
                        fid_from_features(pred, gt),
                        n,
                        self.protocol_for("fid"),
                        ci=paired(fid_from_features),
                        n_reference=len(gt),
                    )
                )
            if "kid" in self.outputs:
                kid = self._kid(pred, gt, np.random.default_rng(self.kid["seed"]))
                boot_rng = np.random.default_rng([self.kid["seed"], 1])
                rows.append(
                    result_row(
                        "kid",
                        kid,
                        n,
                        self.protocol_for("kid"),
                        ci=paired(lambda p, g: self._kid(p, g, boot_rng, self.kid["bootstrap_subsets"])),
                        n_reference=len(gt),
                    )
                )
        else:
            mu_r, sigma_r = self._ref_stats

            def fid_vs_stats(idx):
                return fid_features_vs_stats(pred[idx], mu_r, sigma_r)

            ci = bootstrap_statistic_ci(
                n,
                fid_vs_stats,
                resamples=self.bootstrap["resamples"],
                level=self.bootstrap["level"],
                seed=self.bootstrap["seed"],
            )
            rows.append(result_row("fid", fid_vs_stats(np.arange(n)), n, self.protocol_for("fid"), ci=ci))
        return rows

    def _kid(self, pred, gt, rng, subsets: int | None = None) -> float:
        return kernel_distance(pred, gt, subsets or self.kid["subsets"], self.kid["subset_size"], rng)
