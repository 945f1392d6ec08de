"""`bench train {udrl,panini}`: UDRL pre-training of the DRE, Panini-Net fine-tuning; torchrun-ready."""

from __future__ import annotations

HELP = "train Panini-Net or pre-train its degradation encoder (UDRL); runs unchanged under torchrun"
EXAMPLES = """
bench train panini --config train-panini-tiny --set run.out_dir='"runs/t"'
bench train panini --config train-panini-tiny --set run.out_dir='"runs/t"' --resume
bench train udrl --config train-udrl-official --print-config
"""


def add_arguments(parser) -> None:
    parser.add_argument("task", choices=["udrl", "panini"], help="udrl: MoCo pre-training of the DRE; "
                        "panini: fine-tune Panini-Net (MFR, 16x SR or Cat-Conv, see the config's [model])")
    parser.add_argument("--config", required=True, metavar="FILE",
                        help="TOML config, or a bundled preset name (e.g. train-panini-mfr-official, "
                             "train-udrl-official, train-panini-tiny)")
    parser.add_argument("--resume", action="store_true",
                        help="continue from the newest checkpoint in run.out_dir (same config required)")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", dest="overrides",
                        help="override a config value, e.g. --set run.iterations=1000 (repeatable; TOML values)")
    parser.add_argument("--print-config", action="store_true", help="print the resolved config and exit")


def run(args) -> int:
    import os

    from bench.methods.train.config import dump_toml, load_config

    config = load_config(args.task, args.config, args.overrides)
    if args.print_config:
        print(dump_toml(config), end="")
        return 0
    from bench.methods.train.loop import run_task

    summary = run_task(args.task, config, resume=args.resume)
    if int(os.environ.get("RANK", "0")) == 0:
        artefacts = ", ".join(f"{k}: {v}" for k, v in summary.get("artefacts", {}).items())
        if summary["finished"]:
            print(f"bench train {args.task}: {summary['iterations']} iterations done in {config.run.out_dir}"
                  + (f"; {artefacts}" if artefacts else ""))
        else:
            print(f"bench train {args.task}: stopped at iteration {summary['iterations']} (run.stop_after); "
                  "run the same command with --resume to continue"
                  + (f"; weights so far: {artefacts}" if artefacts else ""))
        if summary["skipped_images"]:
            print(f"bench train {args.task}: skipped {len(summary['skipped_images'])} unreadable image(s); "
                  f"see {config.run.out_dir}/final.json")
    return 0
