"""The built-in methods, as data: spec + factory path. Add a method by adding an entry here."""

from __future__ import annotations

from bench.methods.registry import MethodEntry, MethodSpec

_PANINI_LICENCE = "not verified here (jianzhangcs/panini release); the StyleGAN2 prior inside is NVIDIA FFHQ"

ENTRIES: list[MethodEntry] = [
    MethodEntry(
        MethodSpec(
            name="panini-mfr",
            task="mfr",
            in_size=512,
            out_size=1024,
            weights=("panini-mfr",),
            licence=_PANINI_LICENCE,
            description="Panini-Net (AAAI 2022), multi-degradation restoration, official checkpoint",
        ),
        factory="bench.methods.panini_official:create_panini_mfr",
    ),
    MethodEntry(
        MethodSpec(
            name="panini-sr16",
            task="sr16",
            in_size=64,
            out_size=1024,
            weights=("panini-sr16",),
            licence=_PANINI_LICENCE,
            description="Panini-Net (AAAI 2022), 16x face super-resolution, official checkpoint",
        ),
        factory="bench.methods.panini_official:create_panini_sr16",
    ),
    MethodEntry(
        MethodSpec(
            name="panini-catconv-sr16",
            task="sr16",
            in_size=64,
            out_size=1024,
            weights=(),
            licence="MIT (this suite); needs a checkpoint trained with `bench train panini`",
            description="Panini-Net Ablation A (Table 3): concat + conv instead of DAFI, no DRE; no released weights",
        ),
        factory="bench.methods.panini_official:create_panini_catconv_sr16",
    ),
]
