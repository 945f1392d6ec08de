"""`bench evaluate --gt DIR --pred DIR`: score any folder pair (files matched by stem) in one pass."""

from __future__ import annotations

import argparse

DEFAULT_METRICS = "psnr,ssim,lpips,fid,kid"
HELP = "score a folder of predictions against a folder of ground truth (PSNR, SSIM, LPIPS, FID, KID)"
EXAMPLES = """
bench evaluate --gt sets/mfr/gt --pred sets/mfr/lq --resize-policy bicubic --metrics psnr,ssim
bench evaluate --gt sets/mfr/gt --pred sets/mfr/lq --resize-policy bicubic --channel y --json scores.json
bench evaluate --gt sets/mfr/gt --pred my-results --metrics psnr,ssim,lpips,fid,kid --device cuda
"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--gt", required=True, help="ground-truth image folder")
    parser.add_argument("--pred", required=True, help="prediction folder (same file stems as --gt)")
    parser.add_argument("--metrics", help=f"comma-separated (default: {DEFAULT_METRICS}, where a metric whose "
                        "weights are not installed is skipped with a note; a metric named here needs its weights)")
    parser.add_argument("--json", metavar="FILE", help="write {results, per_image, skipped} as JSON")
    parser.add_argument("--device", default="cpu", help="torch device of the metrics (cpu, cuda, cuda:1)")
    parser.add_argument("--batch-size", type=int, default=8, help="images per LPIPS/FID batch (default 8)")
    parser.add_argument("--workers", type=int, default=None, help="decoder/PSNR/SSIM threads (default: CPUs, <= 8)")
    parser.add_argument("--allow-missing", action="store_true", help="score the common ids, record the rest")
    _add_choice(parser, "--resize-policy", ["error", "bicubic"],
                "when a prediction's size differs from its GT: error, or resize it (PIL bicubic)")
    _add_choice(parser, "--channel", ["rgb", "y"], "PSNR/SSIM channel")
    parser.add_argument("--crop-border", type=int, default=0, help="PSNR/SSIM border crop in pixels")
    _add_choice(parser, "--lpips-net", ["alex", "vgg"], "LPIPS backbone")
    _add_choice(parser, "--fid-backend", ["pytorch-fid", "clean-fid"], "FID/KID Inception implementation")
    _add_choice(parser, "--fid-mode", ["clean", "legacy_tensorflow"], "clean-fid mode (with --fid-backend clean-fid)")
    parser.add_argument(
        "--fid-reference",
        default="gt",
        help="'gt' (default: the GT folder) or a statistics file / weights name, e.g. fid-stats-ffhq-512",
    )
    parser.add_argument("--ci-resamples", type=int, default=None, help="bootstrap resamples (FID/KID: 50)")
    parser.add_argument("--no-cache", action="store_true", help="do not read or write the GT feature cache")


def _add_choice(parser: argparse.ArgumentParser, option: str, choices: list[str], help: str) -> None:
    """An option with a fixed set of values, the first of them its default."""
    parser.add_argument(option, choices=choices, default=choices[0], help=f"{help} (default {choices[0]})")


def _available(names: list[str], device: str, options: dict) -> tuple[list[str], list[dict]]:
    """Default metrics whose weights are installed, and a note for each one left out for missing weights."""
    from bench.errors import MissingWeightsError
    from bench.metrics.evaluate import build_metrics

    usable, skipped = [], []
    for name in names:
        try:
            build_metrics([name], device=device, options=options)
            usable.append(name)
        except MissingWeightsError as exc:  # only missing weights are skipped, anything else is raised
            skipped.append({"metric": name, "reason": str(exc)})
    return usable, skipped


def run(args) -> int:
    import sys
    from pathlib import Path

    from bench.errors import BenchError
    from bench.io import atomic_write_text, dumps
    from bench.metrics.evaluate import evaluate_folders

    names = [m.strip() for m in (args.metrics or DEFAULT_METRICS).split(",") if m.strip()]
    pixel = {"channel": args.channel, "crop_border": args.crop_border}
    inception = {"backend": args.fid_backend, "reference": args.fid_reference}
    if args.fid_backend == "clean-fid":
        inception["mode"] = args.fid_mode
    options = {"psnr": dict(pixel), "ssim": dict(pixel), "lpips": {"net": args.lpips_net}, "fid": inception}
    if args.ci_resamples is not None:
        for opts in options.values():
            opts["ci_resamples"] = args.ci_resamples
    if args.batch_size < 1:
        raise BenchError(f"--batch-size must be >= 1, got {args.batch_size}")
    skipped = []
    if args.metrics is None:
        names, skipped = _available(names, args.device, options)
        for note in skipped:
            print(f"bench evaluate: {note['metric']} skipped: {note['reason']}", file=sys.stderr)
    rows, per_image = evaluate_folders(
        args.gt,
        args.pred,
        metrics=names,
        device=args.device,
        batch_size=args.batch_size,
        allow_missing=args.allow_missing,
        resize_policy=args.resize_policy,
        options=options,
        use_cache=not args.no_cache,
        workers=args.workers,
    )
    for row in rows:
        ci = f"  [{row['ci_low']:.4f}, {row['ci_high']:.4f}]" if "ci_low" in row else ""
        print(f"{row['metric']:<6} {row['value']:.4f}{ci}  n={row['n']}  protocol={row['protocol_id']}")
    if args.json:
        out = Path(args.json)
        out.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_text(out, dumps({"results": rows, "per_image": per_image, "skipped": skipped}, indent=1)
                          + "\n")
    return 0
