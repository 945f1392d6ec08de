"""Panini-Net fine-tuning (MFR, 16x SR, Cat-Conv ablation): the official GLEAN/SRGAN step.

Losses (spec 6.1): L1 (weight 1) + VGG16 conv4_3 perceptual MSE (1e-2) + vanilla GAN (1e-2, generator
term only) against a StyleGAN2 discriminator initialised from the FFHQ checkpoint. One step (spec 6.2):
fake = G(lq); G update with D frozen (D weights from before this step); then D update on real and
fake.detach(), both gradients accumulated before one Adam step. Adam 1e-4, betas (0.9, 0.99) for G
and D; cosine annealing to 1e-7 over the run. Training pairs: GT faces with LQ made on the fly by a
`bench.degradations` preset (Eq. (10) for MFR, PIL bilinear 64 px for SR), random horizontal flips.
"""

from __future__ import annotations

import dataclasses
import math
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from bench.errors import BenchError
from bench.io import to_uint8, write_png
from bench.methods.train.checkpoint import panini_config_to_data, save_atomic
from bench.methods.train.data import Source, resize_to, sample_rng, to_model_input, to_tensor, validation_rng
from bench.methods.train.loop import Trainer, seeded
from bench.methods.train.perceptual import PerceptualLoss, load_vgg16_features
from bench.metrics.pixel import psnr_values


def panini_model_config(model_cfg):
    """The bench.methods.panini.PaniniConfig a training config asks for."""
    from bench.methods.panini import official_config, tiny_config

    task = "sr" if model_cfg.task == "sr16" else "mfr"
    fields = {f.name: f for f in dataclasses.fields(official_config(task))}
    options = {}
    for key, value in model_cfg.options.items():
        if key not in fields or key in ("task", "fusion", "train_dre"):
            known = sorted(set(fields) - {"task", "fusion", "train_dre"})
            raise BenchError(f"model.options: unknown Panini-Net option '{key}'; known: {', '.join(known)}")
        if key == "generator_channels" and isinstance(value, dict):
            value = {int(k): int(v) for k, v in value.items()}
        elif isinstance(value, list):
            value = tuple(value)
        options[key] = value
    build = official_config if model_cfg.size == "official" else tiny_config
    try:
        return build(task, fusion=model_cfg.fusion, train_dre=model_cfg.dre_trainable, **options)
    except (TypeError, ValueError) as exc:
        raise BenchError(f"model.options: {exc}") from exc


def _weights_path(source: str, registry_name: str, key: str) -> str:
    if source != "registry":
        return source
    from bench.weights import resolve

    return str(resolve(registry_name))


class PaniniPairs(torch.utils.data.Dataset):
    """Item (epoch, i): (LQ, GT) of item i, flipped with p = 0.5 (one decision for both images).

    `source` yields HQ faces, degraded here with fresh parameters per item (on-the-fly Eq. (10)), recorded
    as the item's "degradation", or, with `preset=None`, fixed (lq, gt) pairs read from disk (the official
    layout; "degradation" is None).
    """

    def __init__(self, source: Source, preset, lq_size: int, flip: bool, seed: int):
        self.source, self.preset, self.lq_size, self.flip, self.seed = source, preset, lq_size, flip, seed

    def __len__(self) -> int:
        return len(self.source)

    def make(self, rng: np.random.Generator, index: int) -> dict:
        item, _, skipped = self.source.load_readable(index)
        lq, gt = item if self.preset is None else (None, item)
        flip = rng.random() < 0.5 and self.flip
        params = None
        if lq is None:
            if flip:
                gt = np.ascontiguousarray(gt[:, ::-1])
            params = self.preset.sample(rng)
            lq = resize_to(self.preset.apply(gt, params), self.lq_size)
        elif flip:
            lq, gt = np.ascontiguousarray(lq[:, ::-1]), np.ascontiguousarray(gt[:, ::-1])
        return {"lq": to_tensor(lq), "gt": to_tensor(gt), "degradation": params, "skipped": skipped}

    def __getitem__(self, item: tuple[int, int]) -> dict:
        epoch, index = item
        return self.make(sample_rng(self.seed, epoch, index), index)


def cosine_lr(base: float, minimum: float, iteration: int, total: int) -> float:
    """mmcv CosineRestart with one period: min + (base - min) * (1 + cos(pi t / T)) / 2."""
    return minimum + 0.5 * (base - minimum) * (1 + math.cos(math.pi * iteration / total))


class PaniniTrainer(Trainer):
    task = "panini"

    def __init__(self, config, env):
        super().__init__(config, env)
        from bench.methods.panini import PaniniNet
        from bench.methods.panini_official import load_moco_dre
        from bench.methods.stylegan2 import StyleGAN2Discriminator, load_mmgen_checkpoint

        m, d, run = config.model, config.data, config.run
        self.model_config = mc = panini_model_config(m)
        if (d.gt_size, d.lq_size) != (mc.out_size, mc.in_size):
            raise BenchError(f"data.gt_size / data.lq_size ({d.gt_size} / {d.lq_size}) must equal the model's "
                             f"output / input size ({mc.out_size} / {mc.in_size})")
        with seeded(run.seed):
            self.G = PaniniNet(mc)
            self.D = StyleGAN2Discriminator(mc.out_size, channels=self.G.generator.channels)
            # no VGG at all when its weight is 0 (tiny runs): it is the most expensive part of a tiny step
            self.perceptual = (PerceptualLoss(load_vgg16_features(config.loss.vgg, seed=run.seed + 1))
                               if config.loss.perceptual else None)
        # the StyleGAN2 FFHQ checkpoint (MMGeneration layout): generator_ema.* -> prior, discriminator.* -> D
        if m.prior != "random":
            load_mmgen_checkpoint(self.G.generator, _weights_path(m.prior, "stylegan2-ffhq-1024", "model.prior"))
        if m.discriminator != "random":
            load_mmgen_checkpoint(self.D, _weights_path(m.discriminator, "stylegan2-ffhq-1024", "model.discriminator"))
        if hasattr(self.G, "dre") and m.dre != "random":
            load_moco_dre(self.G, _weights_path(m.dre, "moco-dre", "model.dre"))
        elif not hasattr(self.G, "dre") and m.dre not in ("random", "registry"):
            raise BenchError(f"model.dre = '{m.dre}', but a {m.task} / {m.fusion} Panini-Net has no DRE; "
                             "set model.dre = 'random'")
        self.G.to(env.torch_device)
        self.D.to(env.torch_device)
        if self.perceptual is not None:
            self.perceptual.to(env.torch_device)
        self.G_train, self.D_train = self.G, self.D
        if env.enabled:
            ids = [env.torch_device] if env.torch_device.type == "cuda" else None
            # the mapping network (and a frozen DRE) get no gradient: find_unused_parameters, as official
            self.G_train = nn.parallel.DistributedDataParallel(self.G, device_ids=ids, find_unused_parameters=True)
            self.D_train = nn.parallel.DistributedDataParallel(self.D, device_ids=ids)
        o = config.optim
        betas = tuple(o.betas)
        if len(betas) != 2:
            raise BenchError(f"optim.betas must hold two numbers, got {o.betas}")
        self.opt_g = torch.optim.Adam([p for p in self.G.parameters() if p.requires_grad], lr=o.lr, betas=betas)
        self.opt_d = torch.optim.Adam(self.D.parameters(), lr=o.d_lr, betas=betas)
        fp16 = run.amp == "fp16"
        self.scaler_g = torch.amp.GradScaler(env.torch_device.type, enabled=fp16)
        self.scaler_d = torch.amp.GradScaler(env.torch_device.type, enabled=fp16)
        self.modules = {"generator": self.G, "discriminator": self.D}
        self.optimizers = {"generator": self.opt_g, "discriminator": self.opt_d}
        self.scalers = {"generator": self.scaler_g, "discriminator": self.scaler_d}
        self.generators = {}

    def dataset(self):
        d, split = self.config.data, self.data
        preset = None if split.train_is_pairs else self.preset
        return PaniniPairs(split.train, preset, d.lq_size, d.flip, self.config.run.seed)

    def learning_rates(self, iteration: int, steps_per_epoch: int) -> dict[str, float]:
        o, total = self.config.optim, self.config.run.iterations
        if o.schedule == "constant":
            return {"generator": o.lr, "discriminator": o.d_lr}
        return {"generator": cosine_lr(o.lr, o.min_lr, iteration, total),
                "discriminator": cosine_lr(o.d_lr, o.min_lr, iteration, total)}

    def train_step(self, batch: dict, iteration: int) -> dict[str, float]:
        w = self.config.loss
        lq = to_model_input(batch["lq"], self.env.torch_device)
        gt = to_model_input(batch["gt"], self.env.torch_device)
        self.G_train.train()
        self.D_train.train()
        with self.autocast():
            fake = self.G_train(lq)
        # generator step, discriminator frozen (its raw module: no DDP hooks, no gradients)
        self.D.requires_grad_(False)
        with self.autocast():
            l1 = F.l1_loss(fake.float(), gt)
            loss_pix = l1 * w.pixel
            loss_perc = self.perceptual(fake.float(), gt) * w.perceptual if w.perceptual else fake.new_zeros(())
            real_label = torch.ones(len(fake), 1, device=fake.device)
            loss_gan = (F.binary_cross_entropy_with_logits(self.D(fake).float(), real_label) * w.adversarial
                        if w.adversarial else fake.new_zeros(()))
            loss_g = loss_pix + loss_perc + loss_gan
        self.update(self.opt_g, self.scaler_g, loss_g)
        self.D.requires_grad_(True)
        metrics = {"loss": loss_g.item(), "l1": l1.item(), "perceptual": loss_perc.item(), "gan_g": loss_gan.item()}
        if w.adversarial:
            # discriminator step: real and fake gradients accumulate, then one update (as mmedit's SRGAN)
            self.opt_d.zero_grad(set_to_none=True)
            ones = torch.ones(len(gt), 1, device=gt.device)
            with self.autocast():
                loss_real = F.binary_cross_entropy_with_logits(self.D_train(gt).float(), ones)
            self.scaler_d.scale(loss_real).backward()
            with self.autocast():
                loss_fake = F.binary_cross_entropy_with_logits(self.D_train(fake.detach()).float(), 0 * ones)
            self.scaler_d.scale(loss_fake).backward()
            self.scaler_d.step(self.opt_d)
            self.scaler_d.update()
            metrics.update(d_real=loss_real.item(), d_fake=loss_fake.item())
        return metrics

    def validation_set(self) -> list[dict]:
        """The held-out pairs, unflipped; degraded ones use `validation_rng`, the same at every validation."""
        split = self.data
        pairs = PaniniPairs(split.val, None if split.val_is_pairs else self.preset, self.config.data.lq_size,
                            flip=False, seed=self.config.run.seed)
        return [pairs.make(validation_rng(self.config.run.seed, i), i) for i in range(len(split.val))]

    @torch.no_grad()
    def validation_psnrs(self) -> tuple[list[float], list[np.ndarray]]:
        """PSNR of every held-out pair (8-bit RGB, no crop: the official test_cfg), and LQ | output | GT
        rows (LQ nearest-upsampled) of the first four; G in eval mode."""
        self.G.eval()
        psnrs, rows = [], []
        for item in self.validation_set():
            with self.autocast():
                out = self.G(to_model_input(item["lq"][None], self.env.torch_device))[0].float()
            pred, gt = to_uint8((out + 1) / 2), item["gt"].permute(1, 2, 0).numpy()
            as_nchw = [torch.from_numpy(x[None]).permute(0, 3, 1, 2) for x in (pred, gt)]
            psnrs.append(float(psnr_values(*as_nchw)[0]))  # the benchmark's PSNR: inf when identical
            if len(rows) < 4:
                lq = item["lq"].permute(1, 2, 0).numpy()
                lq = np.repeat(np.repeat(lq, gt.shape[0] // lq.shape[0], 0), gt.shape[1] // lq.shape[1], 1)
                rows.append(np.concatenate([lq, pred, gt], 1))
        self.G.train()
        return psnrs, rows

    def validate(self, out_dir: Path, iteration: int) -> dict[str, float]:
        """Mean held-out PSNR, and an image grid (`samples/iter_N.png`)."""
        psnrs, rows = self.validation_psnrs()
        if not psnrs:
            return {}
        write_png(Path(out_dir) / "samples" / f"iter_{iteration:08d}.png", np.concatenate(rows, 0))
        return {"val/psnr": float(np.mean(psnrs))}

    def export(self, out_dir: Path, iteration: int) -> dict[str, str]:
        """`generator.pth`: the restorer weights (`state_dict`, our key names) with the model configuration
        (`panini_config`) and the iteration, so `create_method(..., weights=path)` rebuilds the model."""
        path = Path(out_dir) / "generator.pth"
        state = {k: v.detach().cpu() for k, v in self.G.state_dict().items()}
        save_atomic({"state_dict": state, "panini_config": panini_config_to_data(self.model_config),
                     "iteration": iteration}, path)
        return {"generator": str(path)}

