"""Official Panini-Net checkpoints -> our PaniniNet, and the registry factories.

The released files (`panini_mfr_latest.pth`, `panini_sr_latest.pth`) are mmcv runner checkpoints of
the whole restorer: `state_dict` holds `generator.<backbone key>` plus `discriminator.*` and
`perceptual_loss.*` (spec §3.4). `official_panini_to_ours` is a pure key mapping; the loaders read
the file (weights_only=True), detect the task, and load strictly with errors that name the keys.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch

from bench.errors import BenchError
from bench.methods.builder import ModelFamily, build_model, choose_settings, constructor_init, load_checkpoint
from bench.methods.checkpoints import load_strict, read_checkpoint, take_prefix
from bench.methods.dre import moco_checkpoint_to_ours, official_dre_to_ours
from bench.methods.fast_inference import check_fast_inference, enable_fast_inference
from bench.methods.panini import PaniniConfig, PaniniNet, PaniniOutputs, official_config, tiny_config
from bench.methods.registry import Method, MethodSpec
from bench.methods.stylegan2 import mmgen_generator_to_ours

TASK_NAMES = {"mfr": "panini-mfr", "sr": "panini-sr16"}

_ENCODER_RULES = (
    (re.compile(r"^encoder\.0\.0\.(.*)$"), r"encoder.extractor.\1"),
    (re.compile(r"^encoder\.0\.1\.fea_preprocess\.(.*)$"), r"encoder.attention.pre_conv.\1"),
    (re.compile(r"^encoder\.0\.1\.ChannelGate\.mlp\.1\.(.*)$"), r"encoder.attention.channel_mlp.0.\1"),
    (re.compile(r"^encoder\.0\.1\.ChannelGate\.mlp\.3\.(.*)$"), r"encoder.attention.channel_mlp.2.\1"),
    (re.compile(r"^encoder\.0\.1\.SpatialGate\.spatial\.conv\.(.*)$"), r"encoder.attention.spatial_conv.\1"),
    (re.compile(r"^encoder\.0\.1\.SpatialGate\.spatial\.bn\.(.*)$"), r"encoder.attention.spatial_bn.\1"),
    (re.compile(r"^AFS_maskGen\.mapping\.(.*)$"), r"mask_mlp.\1"),
    (re.compile(r"^fusion_out\.(.*)$"), r"fusion_convs.\1"),
)


def official_task(state: Mapping[str, Any]) -> str:
    """'mfr' or 'sr' from the backbone keys of an official Panini state_dict."""
    has_dre = any(k.startswith("deg_encoder.") for k in state)
    has_constant = "choice_vector" in state
    if has_dre and not has_constant:
        return "mfr"
    if has_constant and not has_dre:
        return "sr"
    raise BenchError(
        "official Panini checkpoint: cannot tell the task (expected either 'deg_encoder.*' for MFR or "
        "'choice_vector' for SR among the backbone keys); is this a Panini-Net checkpoint?"
    )


def official_backbone_state(checkpoint: Mapping[str, Any]) -> dict[str, Any]:
    """The backbone state_dict from a released file, a restorer state_dict or a backbone state_dict."""
    state = checkpoint.get("state_dict", checkpoint)
    if not isinstance(state, Mapping):
        raise BenchError("official Panini checkpoint: 'state_dict' is not a dict of tensors")
    if any(k.startswith("module.") for k in state):
        state = take_prefix(state, "module.")
    if any(k.startswith("generator.generator.") for k in state):  # restorer level: drop D and VGG loss
        state = take_prefix(state, "generator.")
    return dict(state)


def official_panini_to_ours(state: Mapping[str, Any]) -> dict[str, Any]:
    """Official `Panini_MFR` / `Panini_SR` backbone keys -> PaniniNet keys (pure; unused keys dropped).

    Dropped on purpose: `deg_encoder.mlp.*` (MoCo head, unused in the forward). StyleGAN2 FIR kernels
    are checked against the standard kernel and dropped. Unknown keys are kept so a strict load names them.
    """
    indices = [int(m.group(1)) for k in state if (m := re.match(r"^encoder\.(\d+)\.", k))]
    last = max(indices, default=-1)
    out: dict[str, Any] = {}
    gen = {k[len("generator."):]: v for k, v in state.items() if k.startswith("generator.")}
    out.update({"generator." + k: v for k, v in mmgen_generator_to_ours(gen).items()})
    dre = {k[len("deg_encoder."):]: v for k, v in state.items() if k.startswith("deg_encoder.")}
    out.update({"dre." + k: v for k, v in official_dre_to_ours(dre, keep_projection=False).items()})
    for key, value in state.items():
        if key.startswith(("generator.", "deg_encoder.")):
            continue
        new = "dr_constant" if key == "choice_vector" else None
        for pattern, rep in _ENCODER_RULES:
            if new is None and pattern.match(key):
                new = pattern.sub(rep, key)
        if new is None and (m := re.match(r"^encoder\.(\d+)\.(\d+)\.(.*)$", key)):
            block, layer, rest = int(m.group(1)), int(m.group(2)), m.group(3)
            if block == 0 and layer >= 2:
                new = f"encoder.stem.{layer - 2}.{rest}"
            elif block == last and layer in (0, 3):
                new = f"encoder.{'latent_conv' if layer == 0 else 'latent_fc'}.{rest}"
            elif 0 < block < last:
                new = f"encoder.downs.{block - 1}.{layer}.{rest}"
        out[new or key] = value
    return out


def panini_checkpoint_filter(checkpoint: Mapping[str, Any], model: PaniniNet, what: str) -> dict[str, Any]:
    """A released (or `bench train panini`) checkpoint as PaniniNet keys, checking it is of the model's task."""
    state = official_backbone_state(checkpoint)
    if _is_our_layout(state):
        return state
    task = official_task(state)
    if task != model.config.task:
        raise BenchError(
            f"{what} is an official {TASK_NAMES[task]} ({task.upper()}) checkpoint, but the model is "
            f"{TASK_NAMES[model.config.task]}; use method '{TASK_NAMES[task]}' for this file"
        )
    return official_panini_to_ours(state)


def panini_family(task: str, fusion: str = "dafi") -> ModelFamily:
    """Panini-Net for `task` ('mfr'/'sr') and `fusion`: official/tiny PaniniConfigs, seeded constructor init."""
    return ModelFamily(
        f"Panini-Net {task.upper()}" + ("" if fusion == "dafi" else f" ({fusion})"), make=PaniniNet,
        official=lambda: official_config(task, fusion=fusion), tiny=lambda: tiny_config(task, fusion=fusion),
        settings_type=PaniniConfig, filter=panini_checkpoint_filter,
        layout="an official Panini-Net release or a `bench train panini` generator.pth", random_init=constructor_init,
    )


def load_official_panini(model: PaniniNet, source: str | Path | Mapping[str, Any]) -> PaniniNet:
    """Load a released Panini checkpoint (file or dict) into `model`, strictly, checking the task."""
    return load_checkpoint(model, panini_family(model.config.task, model.config.fusion), source)


def _is_our_layout(state: Mapping[str, Any]) -> bool:
    return any(k.startswith("encoder.extractor.") for k in state)


def load_moco_dre(model: PaniniNet, source: str | Path | Mapping[str, Any] | None = None) -> PaniniNet:
    """Initialise the DRE from the released MoCo checkpoint (`moco-dre`), as the official constructor does."""
    if not hasattr(model, "dre"):
        raise BenchError("this Panini-Net has no DRE (SR task or Cat-Conv fusion): nothing to load")
    if source is None:
        from bench.weights import resolve

        source = resolve("moco-dre")
    checkpoint = read_checkpoint(source, "MoCo DRE checkpoint")
    load_strict(model.dre, moco_checkpoint_to_ours(checkpoint, keep_projection=False), "MoCo DRE checkpoint")
    return model


# --------------------------------------------------------------------------------------------------
# Method registry glue


class PaniniMethod(Method):
    """A Panini-Net method; `analyze` exposes masks, θ, W+ and the dissection / mask-bias modes."""

    def analyze(self, lq: torch.Tensor, dissection: str | None = None,
                mask_bias: torch.Tensor | float | None = None) -> PaniniOutputs:
        """Like `restore` (input RGB [0, 1]) but returns PaniniOutputs with the image in [0, 1] (clamped).

        Runs eagerly (never from a CUDA graph) in the weights' precision; every output is float32.
        """
        self.check_input(lq)
        dtype = next(self.model.parameters()).dtype
        with torch.inference_mode():
            out = self.model.analyze(self.to_native(lq.to(self.device, torch.float32)).to(dtype), dissection, mask_bias)
        out = PaniniOutputs(*(t.float() if t is not None else None for t in out))
        return out._replace(image=self.from_native(out.image).clamp_(0, 1))


def build_panini(task: str, weights: Any = None, device: str = "cpu", config: PaniniConfig | str | None = None,
                 fusion: str = "dafi", weights_name: str | None = None, random_init_seed: int | None = None,
                 weights_label: str | None = None) -> PaniniNet:
    """A PaniniNet with weights: a file/dict (official or ours), the cached release, or a seeded random init."""
    return build_model(panini_family(task, fusion), config, weights, weights_name, random_init_seed, device,
                       weights_label)


METHOD_NAMES = {("mfr", "dafi"): "panini-mfr", ("sr", "dafi"): "panini-sr16", ("sr", "catconv"): "panini-catconv-sr16"}


def _trained_weights(name: str, weights: Any, config: PaniniConfig | str | None) -> tuple[Any, Any, str | None]:
    """(weights, config, label) for the build: a file from `bench train panini` brings its own model configuration.

    `generator.pth` and `checkpoints/iter_*.pt` rebuild the network they were trained as (size, fusion,
    in/out size); one of another task or fusion is an error naming the method it belongs to. Other
    weights (official releases, plain state dicts) go to the builder as the dict read here (a release
    is 1.5 GB: it is read once), with the file name as label for its errors.
    """
    from bench.methods.train.checkpoint import trained_panini

    if weights is None:
        return weights, config, None
    label = str(weights) if isinstance(weights, (str, Path)) else None
    what = f"{name} weights {label}" if label else f"{name} weights"
    checkpoint = read_checkpoint(weights, what)
    trained = trained_panini(checkpoint, what)
    if trained is None:
        return checkpoint, config, label
    state, saved = trained
    belongs = METHOD_NAMES.get((saved.task, saved.fusion))
    if belongs != name:
        kind = f"{saved.task.upper()} Panini-Net with {saved.fusion} fusion"
        hint = f"use method '{belongs}'" if belongs else "no registered method takes it"
        raise BenchError(f"{what} holds a {kind}; {hint}")
    if config is not None and choose_settings(panini_family(saved.task, saved.fusion), config)[0] != saved:
        raise BenchError(f"{what} carries its own model configuration (in_size={saved.in_size}, "
                         f"out_size={saved.out_size}); drop the config option")
    return {"state_dict": state}, saved, label


def _factory(task: str, fusion: str, weights_name: str | None):
    def factory(spec: MethodSpec, weights: Any = None, device: str = "cpu", **options: Any) -> PaniniMethod:
        weights, config, label = _trained_weights(spec.name, weights, options.pop("config", None))
        seed = options.pop("random_init_seed", None)
        channels_last = bool(options.pop("channels_last", False))
        precision = options.pop("precision", "fp32")
        cuda_graph = options.pop("cuda_graph", False)
        if options:
            raise BenchError(
                f"{spec.name}: unknown option(s) {sorted(options)}; known: config, random_init_seed, channels_last, "
                "precision, cuda_graph"
            )
        check_fast_inference(spec.name, device, precision, cuda_graph)  # before the (slow) model build
        model = build_panini(task, weights, device, config, fusion, weights_name, seed, label)
        model.set_channels_last(channels_last)
        in_size = model.config.in_size
        if in_size != spec.in_size or model.config.out_size != spec.out_size:
            from dataclasses import replace

            spec = replace(spec, in_size=in_size, out_size=model.config.out_size)
        return enable_fast_inference(PaniniMethod(spec, model, device), precision, cuda_graph)

    return factory


create_panini_mfr = _factory("mfr", "dafi", "panini-mfr")
create_panini_sr16 = _factory("sr", "dafi", "panini-sr16")
create_panini_catconv_sr16 = _factory("sr", "catconv", None)
