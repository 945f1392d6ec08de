"""Training data: image sources, a resumable sharded batch sampler and per-sample randomness.

Every random choice for a sample (degradation parameters, flip, the partner image of a UDRL pair)
comes from `numpy.random.default_rng([seed, 0, epoch, index])`, so a sample is the same whatever
the worker count, the process count or where training was resumed. Corrupt files are skipped with
a deterministic replacement (the next readable index) and reported back with the batch, never
raised in a worker mid-epoch.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from bench.errors import BenchError
from bench.io import IMAGE_EXTENSIONS, BadImageError, is_image_file, read_rgb8

VALIDATION_SEED_OFFSET = 1_000_003  # synthetic validation faces never coincide with training ones


class CorruptImage(Exception):
    """A file in the data folder that cannot be decoded."""


class ImageSource:
    """HQ faces by index: a folder (recursive, sorted paths) or `synthetic` faces.

    `load(i)` returns uint8 RGB (size, size, 3), area-resized when the file has another size.
    """

    def __init__(self, spec: str, size: int, synthetic_count: int = 0, seed: int = 0):
        self.spec, self.size, self.seed = spec, size, seed
        if spec == "synthetic":
            if synthetic_count <= 0:
                raise BenchError("data.synthetic_count must be positive when data.source = 'synthetic'")
            self.paths: list[Path] | None = None
            self.count = synthetic_count
            return
        root = Path(spec).expanduser()
        if not root.is_dir():
            raise BenchError(f"data folder {root} does not exist; set data.source to a folder of face images")
        self.paths = sorted(p for p in root.rglob("*") if is_image_file(p))
        if not self.paths:
            raise BenchError(f"data folder {root} holds no images ({', '.join(sorted(IMAGE_EXTENSIONS))})")
        self.count = len(self.paths)

    def __len__(self) -> int:
        return self.count

    def name(self, index: int) -> str:
        return str(self.paths[index]) if self.paths is not None else f"synthetic:{index}"

    def load(self, index: int) -> np.ndarray:
        if self.paths is None:
            from bench.datasets.synthetic import synthetic_face

            return synthetic_face(index, size=self.size, seed=self.seed)
        try:
            img = read_rgb8(self.paths[index])
        except BadImageError as exc:
            raise CorruptImage(str(exc)) from exc
        if img.shape[0] != img.shape[1]:
            raise CorruptImage(f"{self.paths[index]}: not square ({img.shape[1]}x{img.shape[0]})")
        if img.shape[0] != self.size:
            import cv2

            img = cv2.resize(img, (self.size, self.size), interpolation=cv2.INTER_AREA)
        return img

    def load_readable(self, index: int) -> tuple[np.ndarray, int, list[str]]:
        """The image at `index`, or the next readable one; also the index used and skipped files."""
        skipped = []
        for step in range(self.count):
            i = (index + step) % self.count
            try:
                return self.load(i), i, skipped
            except CorruptImage as exc:
                skipped.append(str(exc))
        raise BenchError(f"no readable image in {self.spec}: {skipped[0] if skipped else ''}")


def sample_rng(seed: int, epoch: int, index: int) -> np.random.Generator:
    return np.random.default_rng([seed, 0, epoch, index])


def validation_rng(seed: int, index: int) -> np.random.Generator:
    return np.random.default_rng([seed, 1, index])


def to_tensor(img: np.ndarray) -> torch.Tensor:
    """uint8 HWC RGB -> uint8 CHW tensor. Samples travel as bytes (4x less worker IPC and host-to-device
    copy than float32); `to_model_input` makes the float [-1, 1] tensor on the training device."""
    return torch.from_numpy(np.ascontiguousarray(img.transpose(2, 0, 1)))


def to_model_input(t: torch.Tensor, device: torch.device | str) -> torch.Tensor:
    """uint8 (N)CHW -> float32 in [-1, 1] (the models' native range) on `device`."""
    return t.to(device, non_blocking=True).float().div_(127.5).sub_(1.0)


def collate(samples: list[dict]) -> dict:
    """Stack tensors; concatenate the lists of skipped files."""
    out = {}
    for key in samples[0]:
        values = [s[key] for s in samples]
        if isinstance(values[0], torch.Tensor):
            out[key] = torch.stack(values)
        elif isinstance(values[0], list):
            out[key] = [v for vs in values for v in vs]
        else:
            out[key] = values
    return out


@dataclass
class ShardedBatchSampler:
    """Yields per-rank batches of (epoch, index) from `start_iteration` to `iterations`.

    Epoch e uses `randperm(n)` from a generator seeded with (seed, e). Step s of an epoch takes the
    global batch perm[s*B:(s+1)*B] (drop_last semantics) and rank r gets its contiguous slice of
    B/world items, so the global batch is the same for any process count, and resuming only needs
    the iteration. (torch's DistributedSampler cannot start mid-epoch, hence this sampler.)
    """

    dataset_size: int
    global_batch: int
    rank: int
    world_size: int
    seed: int
    start_iteration: int
    iterations: int
    shuffle: bool = True

    def __post_init__(self):
        if self.global_batch % self.world_size:
            raise BenchError(
                f"run.batch_size = {self.global_batch} is the global batch; it must be divisible by the "
                f"number of processes ({self.world_size})"
            )
        if self.dataset_size < self.global_batch:
            raise BenchError(
                f"the training set has {self.dataset_size} images, fewer than run.batch_size = {self.global_batch}"
            )
        self.local_batch = self.global_batch // self.world_size
        self.steps_per_epoch = self.dataset_size // self.global_batch

    def epoch_order(self, epoch: int) -> torch.Tensor:
        if not self.shuffle:
            return torch.arange(self.dataset_size)
        g = torch.Generator().manual_seed(self.seed * 1_000_003 + epoch)
        return torch.randperm(self.dataset_size, generator=g)

    def __len__(self) -> int:
        return max(0, self.iterations - self.start_iteration)

    def __iter__(self):
        it = self.start_iteration
        while it < self.iterations:
            epoch, step = divmod(it, self.steps_per_epoch)
            order = self.epoch_order(epoch)
            for s in range(step, self.steps_per_epoch):
                if it >= self.iterations:
                    return
                lo = s * self.global_batch + self.rank * self.local_batch
                yield [(epoch, int(i)) for i in order[lo : lo + self.local_batch]]
                it += 1


def worker_init(_worker_id: int) -> None:
    """One thread per DataLoader worker: the degradations use OpenCV, which would oversubscribe."""
    import cv2

    torch.set_num_threads(1)
    cv2.setNumThreads(1)
