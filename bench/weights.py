"""Registry of every external artefact the suite uses: where it comes from, where it lives, its hash.

One cache directory holds all files under their official names. By default it is torch.hub's
checkpoint directory (`$TORCH_HOME/hub/checkpoints`), so pytorch-fid (FID Inception) and torchvision
(the LPIPS backbones, VGG16) find the same files the suite verified; `PANINI_BENCH_WEIGHTS=DIR`
moves the whole cache. Nothing is ever downloaded implicitly: `resolve` only looks, `fetch` downloads.

Hashes: `sha256` is the full digest where it is known; `sha256_prefix` is the 8-hex prefix that
torch.hub / OpenMMLab put into file names; where neither is known, the first `fetch` records the
digest in a side file `<file>.sha256.json` and later verifications compare against it.
Standard library only at import time (the CLI imports this module lazily anyway).
"""

from __future__ import annotations

import json
import os
import time
import urllib.error
import urllib.request
from dataclasses import asdict, dataclass, replace
from pathlib import Path

from bench.errors import BenchError, MissingWeightsError
from bench.io import atomic_write_text, sha256_file

ENV_WEIGHTS_DIR = "PANINI_BENCH_WEIGHTS"
_CHUNK = 1 << 20


@dataclass(frozen=True)
class Artefact:
    """One downloadable file: official URL, file name in the cache, and what is known about it."""

    name: str
    filename: str
    url: str
    consumer: str
    sha256: str | None = None
    sha256_prefix: str | None = None
    size: int | None = None
    page: str | None = None
    note: str = ""
    manual: bool = False  # no direct download link: the user places the file by hand

    @property
    def expected_hash(self) -> str:
        """Human-readable description of the hash we check against."""
        if self.sha256:
            return self.sha256
        if self.sha256_prefix:
            return f"{self.sha256_prefix}... (prefix only; full digest recorded on first fetch)"
        return "unknown (recorded on first fetch)"


def _gdrive(file_id: str) -> str:
    return f"https://drive.usercontent.google.com/download?id={file_id}&export=download&confirm=t"


def _gdrive_page(file_id: str) -> str:
    return f"https://drive.google.com/file/d/{file_id}/view"


_TV = "https://download.pytorch.org/models/"
_GFPGAN = "https://github.com/TencentARC/GFPGAN/releases/download/v1.3.0/"

ARTEFACTS: tuple[Artefact, ...] = (
    Artefact(
        "inception-fid",
        "pt_inception-2015-12-05-6726825d.pth",
        "https://github.com/mseitzer/pytorch-fid/releases/download/fid_weights/pt_inception-2015-12-05-6726825d.pth",
        consumer="FID/KID (pytorch-fid backend); also clean-fid legacy_pytorch",
        sha256="6726825d0af5f729cebd5821db510b11b1cfad8faad88a03f1befd49fb9129b2",
        size=95_628_359,
        note="digest as reported by several public projects; torch.hub never checks it",
    ),
    Artefact(
        "inception-cleanfid",
        "inception-2015-12-05.pt",
        "https://nvlabs-fi-cdn.nvidia.com/stylegan2-ada-pytorch/pretrained/metrics/inception-2015-12-05.pt",
        consumer="FID/KID (clean-fid backend, TorchScript)",
        note="digest unknown; clean-fid itself checks nothing",
    ),
    Artefact(
        "lpips-alex",
        "alexnet-owt-7be5be79.pth",
        _TV + "alexnet-owt-7be5be79.pth",
        consumer="LPIPS net='alex' backbone (torchvision); linear heads ship inside the lpips package",
        sha256_prefix="7be5be79",
    ),
    Artefact(
        "lpips-vgg",
        "vgg16-397923af.pth",
        _TV + "vgg16-397923af.pth",
        consumer="LPIPS net='vgg' backbone (torchvision); same file as vgg16",
        sha256_prefix="397923af",
    ),
    Artefact(
        "vgg16",
        "vgg16-397923af.pth",
        _TV + "vgg16-397923af.pth",
        consumer="VGG16 perceptual loss (Panini training, features[21] = conv4_3 pre-ReLU)",
        sha256_prefix="397923af",
    ),
    Artefact(
        "stylegan2-ffhq-1024",
        "stylegan2-ffhq-config-f-official_20210327_171224-bce9310c.pth",
        "https://download.openmmlab.com/mmgen/stylegan2/official_weights/"
        "stylegan2-ffhq-config-f-official_20210327_171224-bce9310c.pth",
        consumer="StyleGAN2 FFHQ 1024 prior (MMGeneration layout, prefix generator_ema)",
        sha256_prefix="bce9310c",
    ),
    Artefact(
        "panini-mfr",
        "panini_mfr_latest.pth",
        _gdrive("1iwiWoAxNTyp3NKHQfCj0FCEX9uwX27CQ"),
        consumer="Panini-Net MFR 512->1024 (mmcv runner checkpoint)",
        size=1_504_266_704,
        page=_gdrive_page("1iwiWoAxNTyp3NKHQfCj0FCEX9uwX27CQ"),
        note="Google Drive; size from the official Colab log; digest unknown",
    ),
    Artefact(
        "panini-sr16",
        "panini_sr_latest.pth",
        _gdrive("1ewSBfxXJmDMioGx95lLvD95l8lhgPaGU"),
        consumer="Panini-Net 16x SR 64->1024 (mmcv runner checkpoint)",
        size=1_679_679_195,
        page=_gdrive_page("1ewSBfxXJmDMioGx95lLvD95l8lhgPaGU"),
        note="Google Drive; size from the official Colab log; digest unknown",
    ),
    Artefact(
        "moco-dre",
        "moco_checkpoint_0199.pth.tar",
        _gdrive("1VqFRXJGlDcn1zbT0eT7tAuclh6tgvvHA"),
        consumer="MoCo degradation representation encoder (Panini DRE init)",
        size=23_769_682,
        page=_gdrive_page("1VqFRXJGlDcn1zbT0eT7tAuclh6tgvvHA"),
        note="Google Drive; size from the official Colab log; digest unknown",
    ),
    Artefact(
        "gfpgan-v1.3",
        "GFPGANv1.3.pth",
        _GFPGAN + "GFPGANv1.3.pth",
        consumer="GFP-GAN v1.3 (GFPGANv1Clean, params_ema)",
        note="digest unknown (a third party names it GFPGANv1.3-c953a88f.pth, unverified, so not enforced)",
    ),
    Artefact(
        "gfpgan-v1.4",
        "GFPGANv1.4.pth",
        _GFPGAN + "GFPGANv1.4.pth",
        consumer="GFP-GAN v1.4 (GFPGANv1Clean, params_ema)",
        sha256="e2cd4703ab14f4d01fd1383a8a8b266f9a5833dacee8e6a79d3bf21a1b6be5ad",
        note="digest agreed by two unrelated public projects",
    ),
    Artefact(
        "gpen-bfr-512",
        "GPEN-BFR-512.pth",
        "https://public-vigen-video.oss-cn-shanghai.aliyuncs.com/robin/models/GPEN-BFR-512.pth",
        consumer="GPEN-BFR-512 (plain state dict)",
        note="digest unknown",
    ),
    Artefact(
        "glean-ffhq-16x",
        "glean_ffhq_16x_20210527-61a3afad.pth",
        "https://download.openmmlab.com/mmediting/restorers/glean/glean_ffhq_16x_20210527-61a3afad.pth",
        consumer="GLEAN FFHQ 16x (MMEditing checkpoint, generator.* keys)",
        sha256_prefix="61a3afad",
    ),
    Artefact(
        "psp-celebs-sr",
        "psp_celebs_super_resolution.pt",
        _gdrive("1ZpmSXBpJ9pFEov6-jjQstAlfYbkebECu"),
        consumer="pSp CelebA-HQ super-resolution",
        page=_gdrive_page("1ZpmSXBpJ9pFEov6-jjQstAlfYbkebECu"),
        note="Google Drive; digest unknown",
    ),
    Artefact(
        "fid-stats-ffhq-512",
        "inception_FFHQ_512-f7b384ab.pth",
        "https://github.com/XPixelGroup/BasicSR/blob/master/docs/Metrics.md",
        consumer="FID reference statistics (BasicSR/GFP-GAN protocol: dict with mean/cov)",
        sha256_prefix="f7b384ab",
        note="hosted on Google Drive/Baidu (links in BasicSR docs/Metrics.md); place it by hand",
        manual=True,
    ),
)


class Registry:
    """A name -> Artefact table. Tests pass their own (e.g. with fixture hashes); users never need to."""

    def __init__(self, artefacts=ARTEFACTS):
        self._by_name = {a.name: a for a in artefacts}

    def names(self) -> list[str]:
        return list(self._by_name)

    def get(self, name: str) -> Artefact:
        try:
            return self._by_name[name]
        except KeyError:
            raise BenchError(
                f"unknown weights name {name!r}; known: {', '.join(self._by_name)} (see `bench weights list`)"
            ) from None

    def with_overrides(self, name: str, **changes) -> Registry:
        """A copy where one artefact has some fields replaced (test hook: fixture hashes, local URLs)."""
        new = dict(self._by_name)
        new[name] = replace(self.get(name), **changes)
        return Registry(new.values())


DEFAULT_REGISTRY = Registry()


def torch_hub_dir() -> Path:
    """torch.hub's directory as torch computes it ($TORCH_HOME or $XDG_CACHE_HOME/torch), minus `set_dir`."""
    torch_home = os.environ.get("TORCH_HOME")
    if not torch_home:
        xdg = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
        torch_home = os.path.join(xdg, "torch")
    return Path(os.path.expanduser(torch_home)) / "hub"


def weights_dir() -> Path:
    """The cache directory: `$PANINI_BENCH_WEIGHTS`, else torch.hub's `checkpoints` folder."""
    override = os.environ.get(ENV_WEIGHTS_DIR)
    if override:
        return Path(os.path.expanduser(override))
    return torch_hub_dir() / "checkpoints"


def expected_path(name: str, registry: Registry = DEFAULT_REGISTRY) -> Path:
    return weights_dir() / registry.get(name).filename


def _missing_message(art: Artefact, path: Path) -> str:
    where = f" (page: {art.page})" if art.page else ""
    return (
        f"weights {art.name!r} are missing: expected the file {path}; download {art.url}{where} "
        f"with `bench weights fetch {art.name}`, or place the file there by hand "
        f"(directory set by ${ENV_WEIGHTS_DIR} or $TORCH_HOME)"
    )


def resolve(name: str, registry: Registry = DEFAULT_REGISTRY, verify: bool = False) -> Path:
    """The cached file of artefact NAME, or BenchError naming the artefact, URL and expected path.

    With verify=True the file's SHA-256 is checked too (cached per size+mtime in a side file).
    """
    art = registry.get(name)
    path = weights_dir() / art.filename
    if not path.is_file():
        raise MissingWeightsError(_missing_message(art, path))
    if verify:
        verify_file(art, path)
    return path


def _record_path(path: Path) -> Path:
    return path.with_name(path.name + ".sha256.json")


def _read_record(path: Path) -> dict | None:
    try:
        return json.loads(_record_path(path).read_text())
    except (OSError, ValueError):
        return None


def _write_record(path: Path, digest: str) -> None:
    stat = path.stat()
    record = {"sha256": digest, "size": stat.st_size, "mtime_ns": stat.st_mtime_ns, "recorded": time.time()}
    try:
        atomic_write_text(_record_path(path), json.dumps(record))
    except OSError:
        pass  # a read-only shared cache: verification still works, it just re-hashes next time


def _check_digest(art: Artefact, digest: str, size: int, path: Path, recorded: dict | None) -> None:
    problem = None
    if art.size is not None and size != art.size:
        problem = f"size {size} bytes, expected {art.size}"
    elif art.sha256 and digest != art.sha256:
        problem = f"sha256 {digest}, expected {art.sha256}"
    elif art.sha256_prefix and not digest.startswith(art.sha256_prefix):
        problem = f"sha256 {digest}, expected a digest starting {art.sha256_prefix}"
    elif not art.sha256 and recorded and recorded.get("sha256") not in (None, digest):
        problem = f"sha256 {digest}, but {recorded['sha256']} was recorded when it was fetched"
    if problem:
        raise BenchError(
            f"weights {art.name!r} at {path} do not match the registry: {problem}; the file is corrupt "
            f"or a different release: delete it and run `bench weights fetch {art.name}` ({art.url})"
        )


def verify_file(art: Artefact, path: Path, force: bool = False) -> str:
    """Check PATH against ART and return its SHA-256.

    The digest is cached in `<file>.sha256.json` keyed by size and mtime, so repeated metric
    construction does not re-hash a 1.5 GB checkpoint; force=True always re-hashes.
    """
    stat = path.stat()
    recorded = _read_record(path)
    fresh = recorded and recorded.get("size") == stat.st_size and recorded.get("mtime_ns") == stat.st_mtime_ns
    if fresh and not force:
        digest = recorded["sha256"]
        _check_digest(art, digest, stat.st_size, path, None)
        return digest
    digest = sha256_file(path)
    _check_digest(art, digest, stat.st_size, path, recorded)
    if not recorded or recorded.get("sha256") == digest:
        _write_record(path, digest)
    return digest


def file_sha256(name: str, registry: Registry = DEFAULT_REGISTRY) -> str:
    """Verified SHA-256 of artefact NAME (for protocol ids)."""
    art = registry.get(name)
    return verify_file(art, resolve(name, registry))


def fetch(
    name: str, registry: Registry = DEFAULT_REGISTRY, progress: bool | None = None, timeout: float = 30.0
) -> Path:
    """Download artefact NAME into the cache (resumable via HTTP Range), verify it, then move it in place.

    The partial download lives in `<file>.part`; run again after an interruption to continue.
    """
    art = registry.get(name)
    path = weights_dir() / art.filename
    if path.is_file():
        verify_file(art, path)
        return path
    if art.manual:
        raise BenchError(f"{art.name!r} has no direct download: get it via {art.url} and place it at {path}")
    path.parent.mkdir(parents=True, exist_ok=True)
    part = path.with_name(path.name + ".part")
    _download(art, part, progress=progress, timeout=timeout)
    with open(part, "rb") as f:
        head = f.read(512).lstrip().lower()
    if head.startswith((b"<!doctype html", b"<html")):  # e.g. a Google Drive confirmation page
        part.unlink()
        raise BenchError(
            f"{art.url} returned a web page, not {art.filename}; download it in a browser"
            f"{' from ' + art.page if art.page else ''} and place it at {path}"
        )
    digest = sha256_file(part)
    try:
        _check_digest(art, digest, part.stat().st_size, path, None)
    except BenchError:
        part.unlink()
        raise
    os.replace(part, path)
    _write_record(path, digest)
    return path


def _download(art: Artefact, part: Path, progress: bool | None, timeout: float) -> None:
    from tqdm import tqdm

    offset = part.stat().st_size if part.exists() else 0
    request = urllib.request.Request(art.url, headers={"User-Agent": "panini-bench"})
    if offset:
        request.add_header("Range", f"bytes={offset}-")
    try:
        response = urllib.request.urlopen(request, timeout=timeout)
    except urllib.error.HTTPError as exc:
        if exc.code == 416 and offset:  # the part file is already complete
            return
        raise BenchError(
            f"downloading {art.name!r} from {art.url} failed: HTTP {exc.code}; {_place_hint(art, part)}"
        ) from None
    except (urllib.error.URLError, OSError) as exc:
        raise BenchError(
            f"cannot download {art.name!r} from {art.url} ({exc}); {_place_hint(art, part)}"
        ) from None
    with response:
        resumed = offset and response.status == 206
        if not resumed:
            offset = 0
        length = response.headers.get("Content-Length")
        total = offset + int(length) if length else art.size
        disable = None if progress is None else not progress  # None: only on a terminal
        with (
            open(part, "ab" if resumed else "wb") as out,
            tqdm(
                total=total, initial=offset, unit="B", unit_scale=True, desc=art.filename, disable=disable
            ) as bar,
        ):
            try:
                while chunk := response.read(_CHUNK):
                    out.write(chunk)
                    bar.update(len(chunk))
            except (urllib.error.URLError, OSError) as exc:
                raise BenchError(
                    f"download of {art.name!r} from {art.url} broke off ({exc}); "
                    f"run `bench weights fetch {art.name}` again to resume"
                ) from None


def _place_hint(art: Artefact, part: Path) -> str:
    final = part.with_name(part.name[: -len(".part")])
    return f"download it by hand and place it at {final}"


def describe(name: str, registry: Registry = DEFAULT_REGISTRY) -> dict:
    """Registry row plus cache status, for `bench weights list`."""
    art = registry.get(name)
    path = weights_dir() / art.filename
    row = asdict(art)
    row["path"] = str(path)
    row["present"] = path.is_file()
    recorded = _read_record(path) if row["present"] else None
    row["recorded_sha256"] = recorded.get("sha256") if recorded else None
    return row


def hub_scope(path: Path):
    """Context manager: point torch.hub at a directory whose `checkpoints/` holds PATH.

    pytorch-fid and torchvision look up weights in `torch.hub.get_dir()/checkpoints/<filename>`.
    When the suite's cache is that folder this is a no-op re-pointing; with $PANINI_BENCH_WEIGHTS
    elsewhere a private folder with a symlink is used, so the libraries load exactly the verified file.
    """
    import contextlib
    import tempfile

    import torch

    @contextlib.contextmanager
    def scope():
        previous = torch.hub._hub_dir  # restore "unset" as unset, so $TORCH_HOME keeps working
        try:
            if path.parent.name == "checkpoints":
                torch.hub.set_dir(str(path.parent.parent))
                yield
                return
            with tempfile.TemporaryDirectory(prefix="panini-bench-hub-") as tmp:
                (Path(tmp) / "checkpoints").mkdir()
                (Path(tmp) / "checkpoints" / path.name).symlink_to(path.resolve())
                torch.hub.set_dir(tmp)
                yield
        finally:
            torch.hub._hub_dir = previous

    return scope()
