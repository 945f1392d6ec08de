"""bench.distributed: one device/process-group helper for `bench run` and `bench train`."""

from __future__ import annotations

import pytest
import torch

from bench.distributed import Dist
from bench.errors import BenchError


def test_single_process_is_rank_zero_with_no_op_collectives(monkeypatch):
    monkeypatch.delenv("WORLD_SIZE", raising=False)
    env = Dist.from_env("cpu")
    assert (env.rank, env.world, env.main, env.enabled, env.device) == (0, 1, True, False, "cpu")
    assert env.torch_device == torch.device("cpu")
    assert env.shard([1, 2, 3]) == [1, 2, 3] and env.gather("x") == ["x"] and env.broadcast(5) == 5
    assert env.any(True) and not env.any(False)
    env.barrier()
    env.close()


def test_device_names_are_resolved_or_refused(monkeypatch):
    monkeypatch.delenv("WORLD_SIZE", raising=False)
    expected = "cuda" if torch.cuda.is_available() else "cpu"
    assert Dist.from_env("auto").device == expected
    with pytest.raises(BenchError, match="'gpu0' is not a device"):
        Dist.from_env("gpu0")
    if not torch.cuda.is_available():
        with pytest.raises(BenchError, match="no CUDA device is visible"):
            Dist.from_env("cuda:0")


def test_shards_are_contiguous_blocks_in_rank_order():
    items = list(range(7))
    shards = [Dist(rank, 3).shard(items) for rank in range(3)]
    assert shards == [[0, 1, 2], [3, 4, 5], [6]] and sum(shards, []) == items
