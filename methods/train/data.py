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
    """A file in the data folder that cannot be decoded (or has the wrong size)."""


def _read_rgb(path: Path) -> np.ndarray:
    """uint8 RGB (H, W, 3) of an image file (bench.io's decoder); CorruptImage when it cannot be decoded."""
    try:
        return read_rgb8(path)
    except BadImageError as exc:
        raise CorruptImage(str(exc)) from exc


def _read_square(path: Path, size: int, resize: bool) -> np.ndarray:
    """A square image at `size` px: area-resized when `resize`, else a wrong size is CorruptImage."""
    img = _read_rgb(path)
    if img.shape[0] != img.shape[1]:
        raise CorruptImage(f"{path}: not square ({img.shape[1]}x{img.shape[0]})")
    if img.shape[0] != size:
        if not resize:
            raise CorruptImage(f"{path}: {img.shape[0]} px, expected {size} px")
        import cv2

        img = cv2.resize(img, (size, size), interpolation=cv2.INTER_AREA)
    return img


def _image_files(root: Path, key: str) -> list[Path]:
    """Image files under `root` (recursive, sorted); a missing or empty folder names the config key."""
    if not root.is_dir():
        raise BenchError(f"{key}: folder {root} does not exist; set {key} to a folder of face images")
    paths = sorted(p for p in root.rglob("*") if is_image_file(p))
    if not paths:
        raise BenchError(f"{key}: folder {root} holds no images ({', '.join(sorted(IMAGE_EXTENSIONS))})")
    return paths


class Source:
    """Items by index: `load(i)` (an image, or an (lq, gt) pair), `name(i)` for messages and records."""

    spec: str

    def __len__(self) -> int:
        raise NotImplementedError

    def name(self, index: int) -> str:
        raise NotImplementedError

    def load(self, index: int):
        raise NotImplementedError

    def load_readable(self, index: int) -> tuple[object, int, list[str]]:
        """The item at `index`, or the next readable one; also the index used and skipped files."""
        skipped = []
        for step in range(len(self)):
            i = (index + step) % len(self)
            try:
                return self.load(i), i, skipped
            except CorruptImage as exc:
                skipped.append(str(exc))
        raise BenchError(f"no readable image in {self.spec}: {skipped[0] if skipped else ''}")


class ImageSource(Source):
    """HQ faces by index: a folder (recursive, sorted paths) or `synthetic` faces.

    `load(i)` returns uint8 RGB (size, size, 3), area-resized when the file has another size.
    `key` is the config key that named the folder, for error messages.
    """

    def __init__(self, spec: str, size: int, synthetic_count: int = 0, seed: int = 0, key: str = "data.source"):
        self.spec, self.size, self.seed = spec, size, seed
        if spec == "synthetic":
            if synthetic_count <= 0:
                raise BenchError(f"data.synthetic_count must be positive when {key} = 'synthetic'")
            self.paths: list[Path] | None = None
            self.count = synthetic_count
            return
        self.paths = _image_files(Path(spec).expanduser(), key)
        self.count = len(self.paths)

    def __len__(self) -> int:
        return self.count

    def name(self, index: int) -> str:
        return str(self.paths[index]) if self.paths is not None else f"synthetic:{index}"

    def load(self, index: int) -> np.ndarray:
        if self.paths is None:
            from bench.datasets.synthetic import synthetic_face

            return synthetic_face(index, size=self.size, seed=self.seed)
        return _read_square(self.paths[index], self.size, resize=True)


class PairSource(Source):
    """Fixed LQ/GT pairs (the official layout): `{ lq = DIR, gt = DIR }`, files matched by stem.

    `load(i)` returns (lq, gt) uint8 RGB at (lq_size, gt_size); GT files of another size are
    area-resized like `ImageSource`, LQ files must already have `lq_size` (their resize is part of
    the degradation that made them).
    """

    def __init__(self, folders: dict, gt_size: int, lq_size: int, key: str = "data.pairs"):
        if set(folders) != {"lq", "gt"} or not all(isinstance(v, str) for v in folders.values()):
            raise BenchError(f"{key} must be {{ lq = DIR, gt = DIR }}, got {folders!r}")
        self.spec = f"{key} {folders['lq']} | {folders['gt']}"
        self.gt_size, self.lq_size = gt_size, lq_size
        lq = {p.stem: p for p in _image_files(Path(folders["lq"]).expanduser(), f"{key}.lq")}
        gt = {p.stem: p for p in _image_files(Path(folders["gt"]).expanduser(), f"{key}.gt")}
        for stems, has, lacks in ((set(gt) - set(lq), "gt", "lq"), (set(lq) - set(gt), "lq", "gt")):
            if stems:
                shown = ", ".join(sorted(stems)[:5])
                raise BenchError(f"{key}: {len(stems)} file(s) in {key}.{has} have no file of the same stem in "
                                 f"{key}.{lacks} (e.g. {shown}); pairs are matched by file name without extension")
        self.stems = sorted(gt)
        self.lq_paths = [lq[s] for s in self.stems]
        self.gt_paths = [gt[s] for s in self.stems]
        first = _read_rgb(self.lq_paths[0])
        if first.shape[:2] != (lq_size, lq_size):
            raise BenchError(f"{key}.lq: {self.lq_paths[0]} is {first.shape[1]}x{first.shape[0]}, but data.lq_size "
                             f"= {lq_size}; set data.lq_size to the LQ files' size")

    def __len__(self) -> int:
        return len(self.stems)

    def name(self, index: int) -> str:
        return str(self.gt_paths[index])

    def load(self, index: int) -> tuple[np.ndarray, np.ndarray]:
        lq = _read_square(self.lq_paths[index], self.lq_size, resize=False)
        return lq, _read_square(self.gt_paths[index], self.gt_size, resize=True)


class Subset(Source):
    """The items of `source` at `indices` (in that order)."""

    def __init__(self, source: Source, indices: list[int]):
        self.source, self.indices, self.spec = source, list(indices), source.spec

    def __len__(self) -> int:
        return len(self.indices)

    def name(self, index: int) -> str:
        return self.source.name(self.indices[index])

    def load(self, index: int):
        return self.source.load(self.indices[index])


@dataclass
class DataSplit:
    """Training and validation sources of a run, and what to record about the validation set.

    A source whose `*_is_pairs` flag is set yields (lq, gt) pairs; otherwise HQ faces to degrade.
    """

    train: Source
    val: Source
    record: dict
    train_is_pairs: bool
    val_is_pairs: bool


def split_data(d, seed: int, pairs_allowed: bool = True) -> DataSplit:
    """Resolve `[data]` (a DataConfig) into sources, checking every folder before any model is built.

    Validation: `val_pairs`, else `val_source`, else `val_count` items drawn from the training data
    with `numpy.random.default_rng([seed, 2])` and left out of training.
    """
    if not pairs_allowed and (d.pairs or d.val_pairs):
        raise BenchError("data.pairs / data.val_pairs: UDRL makes its pairs on the fly from HQ faces "
                         "(data.source); fixed LQ/GT pairs are for `bench train panini`")
    if d.val_count < 1:
        raise BenchError(f"data.val_count must be at least 1, got {d.val_count}")
    if d.pairs:
        train: Source = PairSource(d.pairs, d.gt_size, d.lq_size)
    else:
        train = ImageSource(d.source, d.gt_size, d.synthetic_count, seed=seed)
    if d.val_pairs:
        val: Source = PairSource(d.val_pairs, d.gt_size, d.lq_size, key="data.val_pairs")
        record = {"from": "data.val_pairs"}
    elif d.val_source:
        val = ImageSource(d.val_source, d.gt_size, d.val_count, seed=seed + VALIDATION_SEED_OFFSET,
                          key="data.val_source")
        record = {"from": "data.val_source"}
    else:
        if len(train) <= d.val_count:
            raise BenchError(f"the training data has {len(train)} images, not enough to carve data.val_count = "
                             f"{d.val_count} for validation; set data.val_source (or data.val_pairs) or a "
                             "smaller data.val_count")
        order = np.random.default_rng([seed, 2]).permutation(len(train))
        held_out = sorted(int(i) for i in order[: d.val_count])
        kept = sorted(int(i) for i in order[d.val_count :])
        train, val = Subset(train, kept), Subset(train, held_out)
        record = {"from": "carved from the training data", "seed": [seed, 2]}
    val = Subset(val, range(min(d.val_count, len(val))))
    record.update(count=len(val), items=[val.name(i) for i in range(len(val))])
    return DataSplit(train, val, record, bool(d.pairs), bool(d.val_pairs) or (bool(d.pairs) and not d.val_source))


def make_preset(data_cfg):
    """The `bench.degradations` preset that makes LQ images from `[data]` (its `lq_size` set to `lq_size`)."""
    from bench.degradations.presets import get_preset

    options = {"lq_size": data_cfg.lq_size, **data_cfg.degradation_options}
    try:
        return get_preset(data_cfg.degradation, **options)
    except ValueError as exc:
        raise BenchError(f"data.degradation / data.degradation_options: {exc}") from exc


def resize_to(img: np.ndarray, size: int) -> np.ndarray:
    """PIL-bilinear resize to size x size (as main_moco.py's transforms.Resize); no-op at that size."""
    from bench.degradations.ops import resize_pil_bilinear

    return img if img.shape[0] == size else resize_pil_bilinear(img, size)


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
