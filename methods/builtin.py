"""The built-in methods, as data: spec + factory path. Add a method by adding an entry here.

Licences are summarised from ../shared/spec/baselines.md section 8; "NC" = non-commercial terms of
the NVIDIA StyleGAN2 source licence, which covers the StyleGAN2 weights inside these checkpoints.
"""

from __future__ import annotations

from bench.methods.registry import MethodEntry, MethodSpec

_PANINI_LICENCE = "not verified here (jianzhangcs/panini release); the StyleGAN2 prior inside is NVIDIA FFHQ"
_GFPGAN_LICENCE = "code Apache-2.0 (StyleGAN2 parts NVIDIA NC); weights: no licence stated, research use"
_GFPGAN_NATIVE = "RGB in [-1, 1], 512x512; raw output 512x512, brought to 1024 by the output policy"

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
    MethodEntry(
        MethodSpec(
            name="bicubic",
            task="any",
            in_size=None,
            out_size=1024,
            licence="none needed",
            native_input="RGB in [-1, 1], any size",
            description="bicubic upsampling of the LQ image to out_size (option, default 1024)",
        ),
        "bench.methods.generic:create_bicubic",
    ),
    MethodEntry(
        MethodSpec(
            name="identity",
            task="any",
            in_size=None,
            out_size=None,
            licence="none needed",
            native_input="RGB in [-1, 1], any size",
            description="the LQ image unchanged",
        ),
        "bench.methods.generic:create_identity",
    ),
    MethodEntry(
        MethodSpec(
            name="folder",
            task="any",
            in_size=None,
            out_size=None,
            licence="that of the results",
            native_input="files: <path>/<id>.png matched by file stem",
            description="finished results from a folder (option path=...), e.g. the official Panini outputs",
            path_options=("path",),
        ),
        "bench.methods.generic:create_folder",
    ),
    MethodEntry(
        MethodSpec(
            name="command",
            task="any",
            in_size=None,
            out_size=None,
            licence="that of the external method",
            native_input="files: the command reads {input_dir}/<id>.png, writes {output_dir}/<id>.png",
            description="an external command run per test set (option template=...)",
        ),
        "bench.methods.generic:create_command",
    ),
    MethodEntry(
        MethodSpec(
            name="gfpgan-v1.3",
            task="mfr",
            in_size=512,
            out_size=1024,
            weights=("gfpgan-v1.3",),
            licence=_GFPGAN_LICENCE,
            native_input=_GFPGAN_NATIVE,
            description="GFP-GAN v1.3 (GFPGANv1Clean, stored noise)",
        ),
        "bench.methods.gfpgan:create_gfpgan",
    ),
    MethodEntry(
        MethodSpec(
            name="gfpgan-v1.4",
            task="mfr",
            in_size=512,
            out_size=1024,
            weights=("gfpgan-v1.4",),
            licence=_GFPGAN_LICENCE,
            native_input=_GFPGAN_NATIVE,
            description="GFP-GAN v1.4 (GFPGANv1Clean, stored noise)",
        ),
        "bench.methods.gfpgan:create_gfpgan",
    ),
    MethodEntry(
        MethodSpec(
            name="gpen-bfr-512",
            task="mfr",
            in_size=512,
            out_size=1024,
            weights=("gpen-bfr-512",),
            licence="no licence file: academic / non-commercial use only",
            native_input="RGB in [-1, 1], 512x512; raw output 512x512, brought to 1024 by the output policy",
            description="GPEN-BFR-512 (FullGenerator; deterministic, its noise is the encoder features)",
        ),
        "bench.methods.gpen:create_gpen",
    ),
    MethodEntry(
        MethodSpec(
            name="glean-ffhq-16x",
            task="sr16",
            in_size=64,
            out_size=1024,
            weights=("glean-ffhq-16x",),
            licence="code Apache-2.0; weights hold NVIDIA's FFHQ StyleGAN2 (NC)",
            native_input="RGB in [-1, 1], 64x64; output 1024x1024",
            description="GLEAN FFHQ 16x (MMEditing GLEANStyleGANv2, stored noise)",
        ),
        "bench.methods.glean:create_glean",
    ),
    MethodEntry(
        MethodSpec(
            name="psp-celebs-sr",
            task="sr16",
            in_size=64,
            out_size=1024,
            weights=("psp-celebs-sr",),
            licence="code MIT; decoder weights are NVIDIA's FFHQ StyleGAN2 (NC)",
            native_input="RGB in [-1, 1], 256x256 (the 64x64 LQ upsampled bilinearly); output 1024x1024",
            description="pSp CelebA-HQ SR (IR-SE50 GradualStyleEncoder + latent_avg, stored noise)",
        ),
        "bench.methods.psp:create_psp",
    ),
]
