"""Does UDRL pre-training help? Tiny UDRL -> tiny Panini-Net MFR versus the same Panini with a random DRE.

CPU, synthetic faces. First a stand-in for the pre-trained StyleGAN2 prior the paper starts from
(`pretrain_prior`, shared by every seed and arm). Then, per seed: `bench train udrl` (the DRE sees the same
128 -> 64 px Eq. (10) LQ images as the Panini run) and `bench train panini` runs that differ only in
`model.dre`: the UDRL `dre.pth` (loaded through `model.dre`) or "random"; the rest of the initialisation
and the data order are identical. `--calibrated-control` adds a third arm, a random DRE with the LQ
images' BatchNorm statistics. Prints, as JSON, each arm's held-out PSNR per seed and per face, how far its
DAFI masks follow the input, the paired gain over seeds (mean, t interval, sign test), and PIL-bilinear
upsampling of the same LQ for scale. Runs already in --out are resumed or reused; `--jobs 2` trains two
seeds at once; `--combine` merges the JSON of separate invocations.
Example: `python benchmarks/udrl_to_panini.py --out /tmp/chain --jobs 2` (12 seeds, about 85 minutes on
an idle 2-core machine).

Why these defaults (chosen from the method and from the random-DRE arm alone, never from the gain):
- The DRE is fixed (`model.dre_trainable = false`), as the paper trains it. The tiny preset's trainable
  DRE (the official code) fine-tunes both arms' DRE, with BatchNorm on batch statistics of 2 images, so the
  pre-trained representation is relearned either way.
- 400 UDRL iterations: a linear probe of the DRE's pooled feature on held-out LQ faces then explains
  R^2 = 0.64 of the log downsampling factor and 0.58 of the noise level (a random DRE: 0.14 and < 0).
- A stand-in prior (1500 iterations) and 2000 Panini iterations: from a random prior, or after 600
  iterations, the restorer is still far below bilinear upsampling of its own input, and what DAFI mixes,
  the one thing the DRE steers, cannot matter before the restorer works.
- 12 seeds: a run lands in one of two modes about 1-1.5 dB apart, so single seeds decide nothing.
Measured with these defaults (2026-12-02, idle 2-core x86_64, torch 2.14.1): UDRL DRE 20.18 dB, random DRE
19.70 dB on average; paired gain +0.48 dB, 95% t interval [+0.14, +0.82], 11 of 12 seeds, sign test p = 0.006;
both below bilinear upsampling (22.63 dB). The calibrated control (seeds 0-7) explains that gain: it scores
20.55 dB against the UDRL DRE's 20.33 dB (UDRL minus calibrated -0.22 dB, [-0.81, +0.38], 4 of 8 seeds).
600 Panini iterations (3 seeds) gave no gain: +0.09 dB, [-0.32, +0.50] from a random prior; +0.006 dB,
[-0.049, +0.061] with the stand-in prior. Training is chaotic: the same seed on another machine (other float
rounding) lands elsewhere, so compare intervals over seeds, not single runs. README "Train Panini-Net from zero"
has more.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import multiprocessing
import platform
import statistics
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np
import torch
from scipy import stats

from bench.degradations.ops import resize_pil_bilinear
from bench.distributed import Dist
from bench.methods.train.checkpoint import checkpoint_path, list_checkpoints
from bench.methods.train.config import load_config
from bench.methods.train.data import to_model_input
from bench.methods.train.loop import run_task
from bench.methods.train.panini import PaniniTrainer
from bench.metrics.pixel import psnr_values


def _values(run_dir: Path, key: str) -> list[float]:
    rows = [json.loads(line) for line in (run_dir / "log.jsonl").read_text().splitlines()]
    return [row[key] for row in rows if key in row]


def finished(config, generator_path: str) -> PaniniTrainer:
    """A trainer of CONFIG holding a finished run's `generator.pth`: its validation set and model."""
    trainer = PaniniTrainer(config, Dist.from_env("cpu"))
    trainer.G.load_state_dict(torch.load(generator_path, weights_only=True)["state_dict"])
    return trainer


def held_out_psnrs(trainer: PaniniTrainer) -> tuple[list[float], list[float]]:
    """Per-face held-out PSNR of the trainer's restorer, and of PIL-bilinear upsampling of its LQ."""
    restored, _ = trainer.validation_psnrs()
    bilinear = []
    for item in trainer.validation_set():
        gt = item["gt"][None]
        up = resize_pil_bilinear(item["lq"].permute(1, 2, 0).numpy(), gt.shape[-1])
        bilinear.append(float(psnr_values(torch.from_numpy(up.copy()).permute(2, 0, 1)[None], gt)[0]))
    return restored, bilinear


@torch.no_grad()
def dafi_use(trainer: PaniniTrainer) -> dict:
    """How far the DAFI masks follow the input, the one thing the DRE steers: theta (Eq. 11, the mean
    GAN-prior weight of each fusion) on the held-out faces, its spread across faces, and its Spearman
    correlation with each face's downsampling factor r."""
    trainer.G.eval()
    items = trainer.validation_set()
    factors = [item["degradation"]["r"] for item in items]
    thetas = np.stack([trainer.G.analyze(to_model_input(item["lq"][None], "cpu")).theta[0].numpy() for item in items])
    return {"theta_mean": [round(float(v), 3) for v in thetas.mean(0)],
            "theta_sd_across_faces": [float(f"{v:.3g}") for v in thetas.std(0)],
            "theta_spearman_with_r": [round(float(stats.spearmanr(t, factors)[0]), 2) if np.ptp(t) else None
                                      for t in thetas.T]}  # None: theta identical on every face


def one_run(seed: int, out_dir: Path, iterations: int) -> list[str]:
    """Overrides shared by every run here: quiet, one thread, validated and checkpointed once, at the end."""
    return [f"run.seed={seed}", "run.progress=false", "run.threads=1", "run.tensorboard=false",
            f"run.out_dir='{out_dir}'", f"run.iterations={iterations}", f"run.val_every={iterations}",
            f"run.checkpoint_every={iterations}"]


def pretrain_prior(out: Path, iterations: int) -> str:
    """A stand-in for the pre-trained StyleGAN2 prior and discriminator the paper loads (none exists at the
    tiny size): a tiny Panini-Net MFR run with a random DRE (seed 1000, its own data order, shared by all
    seeds and both arms), whose decoder and discriminator are written as an MMGeneration-layout file, the
    layout `model.prior` / `model.discriminator` read (our key names pass its remap unchanged)."""
    run_dir = out / "prior"
    config = load_config("panini", "train-panini-tiny",
                         [*one_run(1000, run_dir, iterations), "loss.perceptual=0.0", "data.val_count=2"])
    run_task("panini", config)
    modules = torch.load(checkpoint_path(run_dir / "checkpoints", iterations), weights_only=True)["modules"]
    decoder = {k[len("generator."):]: v for k, v in modules["generator"].items() if k.startswith("generator.")}
    path = out / "prior.pth"
    torch.save({"state_dict": {f"generator_ema.{k}": v for k, v in decoder.items()}
                | {f"discriminator.{k}": v for k, v in modules["discriminator"].items()}}, path)
    return str(path)


def panini_config(run_dir: Path, seed: int, iterations: int, val_count: int, dre_source: str, dre_trainable: bool,
                  prior: str):
    """One arm's tiny Panini-Net MFR run: the arms differ only in DRE_SOURCE."""
    return load_config("panini", "train-panini-tiny", [
        *one_run(seed, run_dir, iterations), "loss.perceptual=0.0", f"data.val_count={val_count}",
        f"model.dre='{dre_source}'", f"model.dre_trainable={str(dre_trainable).lower()}",
        f"model.prior='{prior}'", f"model.discriminator='{prior}'"])


def train(task: str, config, artefact: str) -> tuple[str, float]:
    """Train CONFIG's run, or, where its folder already holds checkpoints (an interrupted or finished run of
    this script), resume it: the loop refuses a changed config, finishes what is missing and trains nothing
    more. Returns the run's ARTEFACT (`dre.pth`, `generator.pth`) and the seconds spent here."""
    run_dir = Path(config.run.out_dir)
    t0 = time.perf_counter()
    run_task(task, config, resume=bool(list_checkpoints(run_dir / "checkpoints")))
    return str(run_dir / artefact), round(time.perf_counter() - t0, 1)


def chain(out: Path, seed: int, udrl_iterations: int, panini_iterations: int, val_count: int,
          dre_trainable: bool, prior: str = "random", calibrated_control: bool = False) -> dict:
    panini_base = load_config("panini", "train-panini-tiny")
    d = panini_base.data
    # UDRL on the images the Panini DRE will see: the tiny Panini data, its 64 px LQ at the DRE's input size
    options = "{ " + ", ".join(f"{k} = {json.dumps(v)}" for k, v in d.degradation_options.items()) + " }"

    def udrl(name: str, *overrides: str):
        return load_config("udrl", "train-udrl-tiny", [
            *one_run(seed, out / f"seed{seed}" / name, udrl_iterations), f"data.gt_size={d.gt_size}",
            f"data.lq_size={d.lq_size}", f"model.input_size={d.lq_size}", f"data.degradation_options={options}",
            *overrides])

    udrl_config = udrl("udrl")
    dre, seconds = train("udrl", udrl_config, "dre.pth")
    udrl_dir = Path(udrl_config.run.out_dir)
    row = {"seed": seed, "udrl_s": seconds,
           "udrl_val_infonce_start_end": [round(v, 3) for v in _values(udrl_dir, "val/infonce")],
           "udrl_val_top1_start_end": [round(v, 3) for v in _values(udrl_dir, "val/top1")]}
    arms = [("udrl_dre", dre), ("random_dre", "random")]
    if calibrated_control:
        # the same UDRL run with lr = 0: random weights, BatchNorm statistics of the same LQ images
        arms.append(("calibrated_dre", train("udrl", udrl("udrl_lr0", "optim.lr=0.0"), "dre.pth")[0]))
    faces = {}
    for name, dre_source in arms:
        run_dir = out / f"seed{seed}" / name
        config = panini_config(run_dir, seed, panini_iterations, val_count, dre_source, dre_trainable, prior)
        generator, row[f"{name}_s"] = train("panini", config, "generator.pth")
        trainer = finished(config, generator)
        faces[name], bilinear = held_out_psnrs(trainer)
        logged = _values(run_dir, "val/psnr")[-1]
        if not math.isclose(statistics.mean(faces[name]), logged, abs_tol=1e-6):
            raise RuntimeError(f"{generator} gives {statistics.mean(faces[name])} dB, the run logged {logged}")
        row[f"{name}_val_psnr"] = round(logged, 3)
        row[f"{name}_dafi"] = dafi_use(trainer)
    row["bilinear_val_psnr"] = round(statistics.mean(bilinear), 3)
    for key, control in (("", "random_dre"), ("_over_calibrated", "calibrated_dre")):
        if control in faces:
            face_gains = np.subtract(faces["udrl_dre"], faces[control])
            row[f"gain{key}_db"] = round(float(face_gains.mean()), 3)
            row[f"faces_with_gain{key}"] = f"{int((face_gains > 0).sum())}/{len(face_gains)}"
    return row


def paired_summary(gains: list[float]) -> dict:
    """Mean paired gain over seeds, its sd, a two-sided 95% t interval (seeds as the unit), and the sign count
    with its two-sided exact p-value (no assumption on the gains' distribution, which is far from normal when
    a run lands in the other of the tiny restorer's two modes)."""
    wins, untied = sum(g > 0 for g in gains), sum(g != 0 for g in gains)
    sign_p = stats.binomtest(wins, untied).pvalue if untied else 1.0
    summary = {"mean_gain_db": round(statistics.mean(gains), 3), "seeds_with_gain": wins, "seeds": len(gains),
               "sign_test_p": float(f"{sign_p:.3g}")}
    if len(gains) > 1:
        sd = statistics.stdev(gains)
        half = stats.t.ppf(0.975, len(gains) - 1) * sd / math.sqrt(len(gains))
        summary.update(sd_gain_db=round(sd, 3), ci95_gain_db=[round(summary["mean_gain_db"] - half, 3),
                                                              round(summary["mean_gain_db"] + half, 3)])
    return summary


def combine(reports: list[dict]) -> dict:
    """One report from several runs of this script (e.g. seeds run in parallel processes): their results, the
    paired summary over all seeds. They must share every setting and differ in seeds."""
    paid_once = "prior_iterations"  # how long each process pretrained: 0 where it loaded the prior (--prior)
    info = dict(reports[0]["info"], **{paid_once: max(report["info"].get(paid_once, 0) for report in reports)})
    rows = [row for report in reports for row in report["results"]]
    for report in reports[1:]:
        differing = sorted(k for k in set(info) | set(report["info"])
                           if k != paid_once and info.get(k) != report["info"].get(k))
        if differing:
            raise SystemExit(f"cannot combine runs whose settings differ in {differing}")
    seeds = [row["seed"] for row in rows]
    if len(set(seeds)) != len(seeds):
        raise SystemExit(f"cannot combine runs that repeat a seed: {sorted(seeds)}")
    rows.sort(key=lambda row: row["seed"])
    return make_report(info, rows)


def make_report(info: dict, rows: list[dict]) -> dict:
    """The script's JSON: settings, per-seed rows, the paired summary over seeds against the random DRE and,
    with --calibrated-control, against the calibrated one."""
    out = {"benchmark": "udrl_to_panini", "info": info, "results": rows,
           "summary": paired_summary([row["gain_db"] for row in rows])}
    if all("gain_over_calibrated_db" in row for row in rows):
        out["summary_over_calibrated"] = paired_summary([row["gain_over_calibrated_db"] for row in rows])
    return out


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path,
                        help="the runs' folder; runs of the same settings already there are resumed or reused")
    parser.add_argument("--combine", type=Path, nargs="+", metavar="JSON",
                        help="run nothing: merge these outputs of this script into one report over all their seeds")
    parser.add_argument("--seeds", type=int, nargs="+", default=list(range(12)))
    parser.add_argument("--udrl-iterations", type=int, default=400)
    parser.add_argument("--panini-iterations", type=int, default=2000)
    parser.add_argument("--val-count", type=int, default=64, help="held-out synthetic faces for the PSNR")
    parser.add_argument("--dre-trainable", action="store_true",
                        help="fine-tune the DRE with the restorer (the official code) instead of fixing it (the paper)")
    parser.add_argument("--prior-iterations", type=int, default=1500,
                        help="pre-train the tiny prior and discriminator this long first (pretrain_prior); "
                             "0: every arm starts from a random prior")
    parser.add_argument("--prior", metavar="FILE", help="an MMGeneration-layout prior already written by "
                        "--prior-iterations (OUT/prior.pth), e.g. to add seeds to an earlier run")
    parser.add_argument("--calibrated-control", action="store_true",
                        help="a third arm: a random DRE whose BatchNorm statistics come from the same LQ images "
                             "(UDRL with lr = 0), to tell the learned representation from normalised random features")
    parser.add_argument("--jobs", type=int, default=1,
                        help="seeds trained at once, each in its own single-threaded process (at most the CPU count)")
    args = parser.parse_args(argv)
    if args.combine:
        print(json.dumps(combine([json.loads(path.read_text()) for path in args.combine]), indent=1))
        return
    if args.out is None:
        parser.error("--out is required (unless --combine)")
    torch.set_num_threads(1)
    prior = args.prior or (pretrain_prior(args.out, args.prior_iterations) if args.prior_iterations else "random")
    settings = (args.udrl_iterations, args.panini_iterations, args.val_count, args.dre_trainable, prior,
                args.calibrated_control)
    if args.jobs > 1:
        spawn = multiprocessing.get_context("spawn")  # fresh processes: no forked torch thread pools
        with ProcessPoolExecutor(args.jobs, mp_context=spawn, initializer=torch.set_num_threads, initargs=(1,)) as pool:
            rows = list(pool.map(chain, *zip(*[(args.out, s, *settings) for s in args.seeds], strict=True)))
    else:
        rows = [chain(args.out, s, *settings) for s in args.seeds]
    info = {"torch": torch.__version__, "python": platform.python_version(), "machine": platform.machine(),
            "udrl_iterations": args.udrl_iterations, "panini_iterations": args.panini_iterations,
            "val_count": args.val_count, "dre_trainable": args.dre_trainable,
            "prior_iterations": 0 if args.prior else args.prior_iterations,
            "calibrated_control": args.calibrated_control,
            "prior_sha256": "random" if prior == "random" else hashlib.sha256(Path(prior).read_bytes()).hexdigest()}
    print(json.dumps(make_report(info, rows), indent=1))


if __name__ == "__main__":
    main()
