"""torchrun support for the runner: rank/world from the environment, contiguous shards, object gathers.

Without torchrun (WORLD_SIZE unset or 1) every helper is a no-op for a single process, so the
runner has one code path. Shards are contiguous blocks in manifest order, so concatenating the
ranks' states in rank order restores the single-process order exactly (bootstrap intervals, which
depend on order, come out identical).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any


@dataclass
class Dist:
    rank: int = 0
    world: int = 1
    device: str = "cpu"
    initialised_here: bool = False

    @property
    def enabled(self) -> bool:
        return self.world > 1

    @property
    def main(self) -> bool:
        return self.rank == 0

    @classmethod
    def from_env(cls, device: str) -> Dist:
        world = int(os.environ.get("WORLD_SIZE", "1"))
        if world <= 1:
            return cls(0, 1, device)
        import torch
        import torch.distributed as dist

        rank = int(os.environ.get("RANK", "0"))
        local = int(os.environ.get("LOCAL_RANK", str(rank)))
        if device.startswith("cuda"):
            device = f"cuda:{local}"
            torch.cuda.set_device(local)
        here = False
        if not dist.is_initialized():
            dist.init_process_group("nccl" if device.startswith("cuda") else "gloo")
            here = True
        return cls(rank, world, device, here)

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

    def barrier(self) -> None:
        if self.enabled:
            import torch.distributed as dist

            dist.barrier()

    def close(self) -> None:
        if self.initialised_here:
            import torch.distributed as dist

            dist.destroy_process_group()
