"""One process-group helper for `bench run` and `bench train` (torchrun or a single process).

Like BasicSR's `dist_util`, it reads torchrun's environment (RANK, WORLD_SIZE, LOCAL_RANK), picks
this rank's device and opens the process group (NCCL on GPU, gloo on CPU). Without torchrun
(WORLD_SIZE unset or 1) every collective is a no-op for a single process, so callers have one code
path. Shards are contiguous blocks in manifest order, so concatenating the ranks' states in rank
order restores the single-process order exactly (bootstrap intervals, which depend on order, come
out identical).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

from bench.errors import BenchError


def resolve_device(device: str, local_rank: int, world: int) -> str:
    """'auto' -> cuda when visible, else cpu; under torchrun every CUDA rank gets cuda:LOCAL_RANK.

    A CUDA device that is not visible, or a string torch does not parse, is a BenchError.
    """
    import torch

    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    try:
        parsed = torch.device(device)
    except (RuntimeError, ValueError):
        raise BenchError(f"device '{device}' is not a device; use auto, cpu, cuda or cuda:N") from None
    if parsed.type != "cuda":
        return device
    if not torch.cuda.is_available():
        raise BenchError(f"device '{device}' asked for, but no CUDA device is visible; use cpu")
    index = local_rank if world > 1 else parsed.index
    if index is None:
        return device
    torch.cuda.set_device(index)
    return f"cuda:{index}"


@dataclass
class Dist:
    rank: int = 0
    world: int = 1
    local_rank: int = 0
    device: str = "cpu"
    initialised_here: bool = False  # this process opened the group, so it closes it

    @property
    def enabled(self) -> bool:
        return self.world > 1

    @property
    def main(self) -> bool:
        return self.rank == 0

    @property
    def torch_device(self):
        import torch

        return torch.device(self.device)

    @classmethod
    def from_env(cls, device: str) -> Dist:
        world = int(os.environ.get("WORLD_SIZE", "1"))
        rank = int(os.environ.get("RANK", "0")) if world > 1 else 0
        local = int(os.environ.get("LOCAL_RANK", str(rank))) if world > 1 else 0
        device = resolve_device(device, local, world)
        if world <= 1:
            return cls(0, 1, 0, device)
        import torch.distributed as dist

        here = False
        if not dist.is_initialized():
            dist.init_process_group("nccl" if device.startswith("cuda") else "gloo")
            here = True
        return cls(rank, world, local, device, here)

    def shard(self, items: list) -> list:
        """This rank's contiguous block of `items`."""
        if not self.enabled:
            return list(items)
        size = -(-len(items) // self.world)
        return list(items[self.rank * size:(self.rank + 1) * size])

    def gather(self, obj: Any) -> list[Any]:
        """Every rank's `obj`, in rank order (a one-element list without torchrun)."""
        if not self.enabled:
            return [obj]
        import torch.distributed as dist

        out: list[Any] = [None] * self.world
        dist.all_gather_object(out, obj)
        return out

    def broadcast(self, obj: Any) -> Any:
        """Rank 0's `obj` on every rank."""
        if not self.enabled:
            return obj
        import torch.distributed as dist

        box = [obj]
        dist.broadcast_object_list(box, src=0)
        return box[0]

    def any(self, flag: bool) -> bool:
        """True on every rank when `flag` is true on any rank (a stop request, a failure)."""
        if not self.enabled:
            return flag
        import torch
        import torch.distributed as dist

        t = torch.tensor([1.0 if flag else 0.0], device=self.device if self.device.startswith("cuda") else "cpu")
        dist.all_reduce(t, op=dist.ReduceOp.MAX)
        return bool(t.item() > 0)

    def barrier(self) -> None:
        if self.enabled:
            import torch.distributed as dist

            dist.barrier()

    def close(self) -> None:
        if self.initialised_here:
            import torch.distributed as dist

            if dist.is_initialized():
                dist.destroy_process_group()
