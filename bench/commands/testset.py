"""`bench testset build|verify|fit`: seeded, verifiable test sets (paper Eq. (10), 16x SR, the θ study) and
the forensic fit of someone else's LQ/GT pairs."""

from __future__ import annotations

import argparse

HELP = "build a seeded test set from a folder of faces, or verify one against its manifest"
BUILD_EXAMPLES = """
bench testset build --task mfr --source synthetic:4 --out sets/mfr
bench testset build --task sr16 --source /data/CelebA-HQ --out sets/sr16 --count 1000 --workers 4
"""
VERIFY_EXAMPLES = "bench testset verify sets/mfr\n"
FIT_EXAMPLES = """
bench testset fit --gt sets/mfr/gt --lq sets/mfr/lq --json fit.json
bench testset fit --gt ../shared/data/panini-examples/GT --lq ../shared/data/panini-examples/MFR
"""
EXAMPLES = BUILD_EXAMPLES + VERIFY_EXAMPLES + FIT_EXAMPLES


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from bench.cli import add_action_parser

    sub = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    build = add_action_parser(sub, "build", "build (or resume) a test set", BUILD_EXAMPLES, description=(
        "Build gt/, lq/, manifest.jsonl and testset.json. SOURCE is a folder of 1024x1024 faces "
        "(CelebA-HQ, FFHQ, ...) or 'synthetic[:N]' for built-in synthetic faces. An interrupted build "
        "resumes when run again with the same arguments."))
    build.add_argument("--task", required=True, choices=["mfr", "sr16", "theta"],
                       help="mfr: Eq. (10) blind restoration at 512; sr16: 1024 -> 64; theta: the θ study")
    build.add_argument("--source", required=True, help="image folder, or synthetic[:N]")
    build.add_argument("--out", required=True, help="output folder")
    build.add_argument("--count", type=_count, default=None, metavar="N|all",
                       help="number of source images, or 'all' (default 1000, the paper's, or all images when the "
                            "source holds fewer; recorded in testset.json)")
    build.add_argument("--seed", type=int, default=0, help="seed for the id choice and every degradation (default 0)")
    build.add_argument("--preset",
                       help="official | official-fit | eq10-literal (mfr), sr16, theta; default: the task's own")
    build.add_argument("--param", action="append", default=[], metavar="KEY=VALUE",
                       help="override a preset parameter, e.g. sigma=0.2,10 or r_values=16,32 (repeatable)")
    build.add_argument("--workers", type=int, default=1, help="worker processes (default 1)")
    build.add_argument("--overwrite", action="store_true", help="delete an existing test set in --out and rebuild")
    build.add_argument("--skip-bad", action="store_true", help="record unreadable images as skipped and go on")
    build.add_argument("--resize", action="store_true",
                       help="centre-crop and resize sources that are not 1024x1024 (recorded), instead of an error")
    verify = add_action_parser(sub, "verify", "re-hash every file against the manifest", VERIFY_EXAMPLES)
    verify.add_argument("dir", help="test-set folder")
    fit = add_action_parser(sub, "fit", "estimate each LQ/GT pair's degradation parameters (forensics)",
                            FIT_EXAMPLES, description=(
        "Per pair: low-res size (hence r) and blur sigma, down/up-sampling kernels, noise std and colour vs grey, "
        "JPEG quality, grid and chroma subsampling, and whether noise/JPEG came before or after the upsampling, "
        "each with a confidence or a reason why it is not identifiable; then which preset reading explains the "
        "set best and the input PSNR/SSIM. Files are matched by stem."))
    fit.add_argument("--gt", required=True, help="folder of ground-truth images")
    fit.add_argument("--lq", required=True, help="folder of degraded images (same stems)")
    fit.add_argument("--json", help="write every estimate to this file (strict JSON)")


def _count(text: str) -> int | str:
    if text == "all":
        return text
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number or 'all', got {text!r}") from None


def run(args: argparse.Namespace) -> int:
    from bench.datasets import testset
    from bench.degradations.presets import parse_param
    from bench.errors import BenchError

    if args.action == "fit":
        return _fit(args)
    if args.action == "verify":
        problems = testset.verify(args.dir)
        for problem in problems:
            print(problem)
        info, rows = testset.read_testset(args.dir)
        status = "FAILED" if problems else "OK"
        print(f"{status}: {args.dir} ({len(rows)} images, test-set id {info['testset_id'][:16]})")
        return 1 if problems else 0

    try:
        params = dict(parse_param(p) for p in args.param)
    except ValueError as exc:
        raise BenchError(str(exc)) from None
    info = testset.build(
        args.task, args.source, args.out, count=args.count, seed=args.seed, preset=args.preset, params=params,
        workers=args.workers, overwrite=args.overwrite, skip_bad=args.skip_bad, resize=args.resize,
    )
    skipped = f", {len(info['skipped'])} skipped" if info["skipped"] else ""
    print(f"test set {args.out}: task {info['task']}, preset {info['preset']} v{info['preset_version']}, "
          f"{info['n_images']} images{skipped}, id {info['testset_id'][:16]}")
    return 0


def _fit(args: argparse.Namespace) -> int:
    import json

    from bench.degradations.fit import fit_folders
    from bench.io import atomic_write_text

    report = fit_folders(args.gt, args.lq)
    for stem, r in report["images"].items():
        jpeg, noise = r["jpeg"], r["noise"]
        quality = "none" if jpeg["quality"] is None else f"{jpeg['quality']}@{jpeg['grid']}"
        sigma = "?" if r["down"]["sigma"] is None else r["down"]["sigma"]
        kind = {True: "colour", False: "grey", None: "?"}[noise.get("colour")]
        print(f"{stem}: s={r['lowres']['size']} r={r['r']:.1f} sigma={sigma} down={r['down']['kernel']} "
              f"up={r['lowres']['kernel']} noise={noise['std']:.1f} ({kind}) jpeg={quality} "
              f"order={r['order']['value'] or '?'} psnr={r['input']['psnr']:.2f}")
    summary = report["summary"]
    readings = ", ".join(f"{k} {v:.2f}" for k, v in summary["preset_agreement"].items())
    print(f"{summary['n_images']} pairs: input PSNR {summary['input_psnr']:.2f} dB, SSIM {summary['input_ssim']:.4f}; "
          f"preset agreement {readings}; best: {summary['best_preset']}")
    if args.json:
        atomic_write_text(args.json, json.dumps(report, indent=1, allow_nan=False) + "\n")
    return 0
