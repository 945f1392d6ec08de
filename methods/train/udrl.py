"""UDRL (paper Fig. 2): MoCo pre-training of the degradation representation encoder (DRE).

Positive pairs as the paper says: for every sample one fresh set of Eq. (10) parameters is drawn
and applied to two different HQ faces (query and key); negatives are the queue of earlier keys.
MoCo settings are those `moco/builder.py` actually ran (spec 5.2): 256-d MLP projection, queue 8192,
key-encoder momentum 0.999, temperature 0.07, shuffle-BN across processes, cross-entropy over
[q.k, q.queue] (the positive is in the denominator, as in standard MoCo). SGD 0.03 / 0.9 / 1e-4,
lr x0.1 at epochs 120 and 160 (the official README's command).

The exported artefact `dre.pth` (rewritten at every checkpoint) has the official MoCo layout
(`state_dict` with `module.queue`, `module.queue_ptr`, `module.encoder_q.*`, `module.encoder_k.*`),
which the Panini MFR model loads.
"""

from __future__ import annotations

import copy
import math
from pathlib import Path

import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch import nn

from bench.errors import BenchError
from bench.methods.dre import DegradationEncoder
from bench.methods.train import checkpoint as ckpt
from bench.methods.train.data import Source, resize_to, sample_rng, to_model_input, to_tensor, validation_rng
from bench.methods.train.loop import Trainer, seeded


class UdrlPairs(torch.utils.data.Dataset):
    """Item (epoch, i): face i and a different face j, both degraded with one fresh parameter set."""

    def __init__(self, source: Source, preset, input_size: int, seed: int):
        if len(source) < 2:
            raise BenchError(f"UDRL needs at least two training images; {source.spec} has {len(source)}")
        self.source, self.preset, self.input_size, self.seed = source, preset, input_size, seed

    def __len__(self) -> int:
        return len(self.source)

    def pair(self, rng, i: int, j: int) -> dict:
        params = self.preset.sample(rng)
        # same degradation, own noise realisation: a shared noise field would let the encoder match
        # pixels instead of learning the degradation
        key_params = {**params, "noise_seed": int(rng.integers(2**63))} if "noise_seed" in params else params
        hq_q, _, skipped_q = self.source.load_readable(i)
        hq_k, _, skipped_k = self.source.load_readable(j)
        query = resize_to(self.preset.apply(hq_q, params), self.input_size)
        key = resize_to(self.preset.apply(hq_k, key_params), self.input_size)
        return {"query": to_tensor(query), "key": to_tensor(key), "skipped": skipped_q + skipped_k}

    def __getitem__(self, item: tuple[int, int]) -> dict:
        epoch, index = item
        rng = sample_rng(self.seed, epoch, index)
        partner = int(rng.integers(len(self.source) - 1))
        partner += partner >= index  # a different face
        return self.pair(rng, index, partner)


def _gather(x: torch.Tensor) -> torch.Tensor:
    parts = [torch.empty_like(x) for _ in range(dist.get_world_size())]
    dist.all_gather(parts, x.contiguous())
    return torch.cat(parts)


class MoCo(nn.Module):
    """Query encoder, momentum key encoder and the queue of normalised keys (MoCo v1/v2 mechanics)."""

    def __init__(self, widths, queue: int, momentum: float, temperature: float,
                 generator: torch.Generator, shuffle_bn: bool = True, bn_splits: int = 1):
        super().__init__()
        self.momentum, self.temperature, self.shuffle_bn = momentum, temperature, shuffle_bn
        self.bn_splits = bn_splits
        self.encoder_q = DegradationEncoder(widths, with_projection=True)
        self.encoder_k = DegradationEncoder(widths, with_projection=True)
        dim = self.encoder_q.dim
        self.encoder_k.load_state_dict(self.encoder_q.state_dict())
        self.encoder_k.requires_grad_(False)
        self.register_buffer("queue", F.normalize(torch.randn(dim, queue, generator=generator), dim=0))
        self.register_buffer("queue_ptr", torch.zeros(1, dtype=torch.long))

    def _encode(self, encoder: nn.Module, x: torch.Tensor) -> torch.Tensor:
        """Normalised projections; BN statistics per group of `bn_splits` (a GPU's share in official runs)."""
        chunks = x.chunk(self.bn_splits) if self.bn_splits > 1 else (x,)
        return F.normalize(torch.cat([encoder.project(encoder(c)) for c in chunks]).float(), dim=1)

    @torch.no_grad()
    def _momentum_update(self) -> None:
        for p_q, p_k in zip(self.encoder_q.parameters(), self.encoder_k.parameters(), strict=True):
            p_k.mul_(self.momentum).add_(p_q.detach(), alpha=1 - self.momentum)

    @torch.no_grad()
    def _enqueue(self, keys: torch.Tensor) -> None:
        if dist.is_initialized():
            keys = _gather(keys)
        ptr, n = int(self.queue_ptr), keys.shape[0]
        self.queue[:, ptr : ptr + n] = keys.T
        self.queue_ptr[0] = (ptr + n) % self.queue.shape[1]

    @torch.no_grad()
    def _keys(self, im_k: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        """Key features with shuffle-BN: BN statistics over a random mix of the (global) batch."""
        if not self.shuffle_bn:
            return self._encode(self.encoder_k, im_k)
        world = dist.get_world_size() if dist.is_initialized() else 1
        rank = dist.get_rank() if dist.is_initialized() else 0
        everything = _gather(im_k) if world > 1 else im_k
        # every rank draws the same permutation from its identically seeded generator
        shuffle = torch.randperm(everything.shape[0], generator=generator).to(im_k.device)
        mine = shuffle.view(world, -1)[rank]
        k = self._encode(self.encoder_k, everything[mine])
        gathered = _gather(k) if world > 1 else k
        unshuffle = torch.argsort(shuffle).view(world, -1)[rank]
        return gathered[unshuffle]

    def forward(self, im_q: torch.Tensor, im_k: torch.Tensor, generator: torch.Generator):
        """Logits [q.k, q.queue] / T (positive at column 0); enqueues this batch's keys."""
        q = self._encode(self.encoder_q, im_q)
        with torch.no_grad():
            self._momentum_update()
            k = self._keys(im_k, generator)
        logits = torch.cat([(q * k).sum(1, keepdim=True), q @ self.queue.clone().detach()], 1) / self.temperature
        self._enqueue(k)
        return logits


def lr_at(optim_cfg, iteration: int, total: int, steps_per_epoch: int) -> float:
    """The learning rate at `iteration` under `optim.schedule` (see UdrlOptimConfig).

    `step` and `cosine-epoch` follow main_moco.py's `adjust_learning_rate`, called once at the start
    of every epoch (epoch = iteration // steps_per_epoch; the run has ceil(total / steps_per_epoch) epochs).
    """
    epoch = iteration // steps_per_epoch
    if optim_cfg.schedule == "step":
        return optim_cfg.lr * optim_cfg.gamma ** sum(epoch >= m for m in optim_cfg.milestones)
    if optim_cfg.schedule == "cosine-epoch":
        return optim_cfg.lr * 0.5 * (1 + math.cos(math.pi * epoch / math.ceil(total / steps_per_epoch)))
    if optim_cfg.schedule == "cosine":
        return optim_cfg.lr * 0.5 * (1 + math.cos(math.pi * iteration / total))
    return optim_cfg.lr


class UdrlTrainer(Trainer):
    task = "udrl"
    pairs_allowed = False  # pairs are made on the fly: one parameter set, two different faces

    def __init__(self, config, env):
        super().__init__(config, env)
        m, run = config.model, config.run
        if not m.widths or min(m.widths) < 1:
            raise BenchError(f"model.widths must list positive DRE widths (official [64, 128, 256]), got {m.widths}")
        if run.batch_size % (env.world * m.bn_splits):
            raise BenchError(f"run.batch_size ({run.batch_size}) must be divisible by processes x model.bn_splits "
                             f"({env.world} x {m.bn_splits})")
        if config.data.flip:
            raise BenchError("data.flip: UDRL uses no augmentation (as main_moco.py); set data.flip = false")
        if m.queue % run.batch_size:
            raise BenchError(f"model.queue ({m.queue}) must be a multiple of run.batch_size ({run.batch_size})")
        self.shuffle_generator = torch.Generator().manual_seed(run.seed + 1)
        with seeded(run.seed):
            self.moco = MoCo(m.widths, m.queue, m.momentum, m.temperature,
                             torch.Generator().manual_seed(run.seed + 2), m.shuffle_bn, m.bn_splits)
        self.moco.to(env.torch_device)
        self.model = self.moco
        if env.enabled:
            self.model = nn.parallel.DistributedDataParallel(
                self.moco, device_ids=[env.torch_device] if env.torch_device.type == "cuda" else None)
        o = config.optim
        params = [p for p in self.moco.parameters() if p.requires_grad]
        if o.name == "sgd":
            self.optimizer = torch.optim.SGD(params, lr=o.lr, momentum=o.momentum, weight_decay=o.weight_decay)
        else:
            self.optimizer = torch.optim.Adam(params, lr=o.lr, weight_decay=o.weight_decay)
        self.scaler = torch.amp.GradScaler(env.torch_device.type, enabled=run.amp == "fp16")
        self.modules = {"moco": self.moco}
        self.optimizers = {"encoder": self.optimizer}
        self.scalers = {"encoder": self.scaler}
        self.generators = {"shuffle": self.shuffle_generator}

    def dataset(self):
        return UdrlPairs(self.data.train, self.preset, self.config.model.input_size, self.config.run.seed)

    def learning_rates(self, iteration: int, steps_per_epoch: int) -> dict[str, float]:
        return {"encoder": lr_at(self.config.optim, iteration, self.config.run.iterations, steps_per_epoch)}

    def train_step(self, batch: dict, iteration: int) -> dict[str, float]:
        self.model.train()
        query = to_model_input(batch["query"], self.env.torch_device)
        key = to_model_input(batch["key"], self.env.torch_device)
        with self.autocast():
            logits = self.model(query, key, self.shuffle_generator)
        labels = torch.zeros(logits.shape[0], dtype=torch.long, device=logits.device)
        loss = F.cross_entropy(logits.float(), labels)
        self.update(self.optimizer, self.scaler, loss)
        acc = (logits.argmax(1) == 0).float().mean()
        return {"loss": loss.item(), "acc1": acc.item()}

    @torch.no_grad()
    def validate(self, out_dir: Path, iteration: int) -> dict[str, float]:
        """Degradation retrieval on held-out pairs (faces 2i, 2i+1) with the pre-MLP feature (what Panini uses)."""
        pairs = UdrlPairs(self.data.val, self.preset, self.config.model.input_size, self.config.run.seed)
        n = len(pairs.source) // 2
        if n < 2:
            return {}
        items = [pairs.pair(validation_rng(self.config.run.seed, i), 2 * i, 2 * i + 1) for i in range(n)]
        return degradation_retrieval(self.moco.encoder_q, items, self.env.torch_device, self.config.model.temperature)

    def export(self, out_dir: Path, iteration: int) -> dict[str, str]:
        """`dre.pth` in the released MoCo layout (what `model.dre` of `bench train panini` loads)."""
        path = Path(out_dir) / "dre.pth"
        ckpt.save_atomic({"arch": "panini-dre", "iteration": iteration,
                          "state_dict": moco_state_to_official(self.moco.state_dict())}, path)
        return {"dre": str(path)}


def moco_state_to_official(state: dict) -> dict:
    """Our MoCo keys -> the released file's (`module.queue`, `module.encoder_q.E.*` / `.mlp.*`, ...)."""
    out = {}
    for key, value in state.items():
        for ours, theirs in ((".body.", ".E."), (".projection.", ".mlp.")):
            key = key.replace(ours, theirs)
        out[f"module.{key}"] = value.detach().cpu()
    return out


@torch.no_grad()
def degradation_retrieval(encoder: DegradationEncoder, items: list[dict], device,
                          temperature: float) -> dict[str, float]:
    """Held-out pairs: InfoNCE (projections), and pre-MLP feature distances same- vs different-degradation."""
    was_training = encoder.training
    encoder.eval()
    queries = to_model_input(torch.stack([it["query"] for it in items]), device)
    keys = to_model_input(torch.stack([it["key"] for it in items]), device)
    fea_q, fea_k = encoder(queries), encoder(keys)
    encoder.train(was_training)
    # InfoNCE with the other held-out keys as negatives, comparable across iterations (no queue);
    # projections with batch-statistics BN, as in training (on a copy: running stats stay untouched)
    train_copy = copy.deepcopy(encoder).train()
    proj_q, proj_k = train_copy.project(train_copy(queries)), train_copy.project(train_copy(keys))
    logits = F.normalize(proj_q.float(), dim=1) @ F.normalize(proj_k.float(), dim=1).T / temperature
    infonce = F.cross_entropy(logits, torch.arange(logits.shape[0], device=logits.device))
    # Euclidean distances of the pre-MLP features: small for same-degradation pairs (diagonal)
    dist_qk = torch.cdist(fea_q.float(), fea_k.float())
    n = dist_qk.shape[0]
    pos = dist_qk.diag().mean()
    neg = (dist_qk.sum() - dist_qk.diag().sum()) / (n * n - n)
    top1 = (dist_qk.argmin(1) == torch.arange(n, device=dist_qk.device)).float().mean()
    return {"val/infonce": infonce.item(), "val/pos_neg_distance_ratio": (pos / neg).item(), "val/top1": top1.item()}
