"""Weights registry: names, cache location, offline errors, verified resumable downloads (local server)."""

from __future__ import annotations

import hashlib
import http.server
import threading

import pytest

from bench import weights
from bench.cli import main
from bench.errors import BenchError, MissingWeightsError

REQUIRED = [
    "inception-fid",
    "lpips-alex",
    "lpips-vgg",
    "vgg16",
    "stylegan2-ffhq-1024",
    "panini-mfr",
    "panini-sr16",
    "moco-dre",
    "gfpgan-v1.3",
    "gfpgan-v1.4",
    "gpen-bfr-512",
    "glean-ffhq-16x",
    "psp-celebs-sr",
]


class _RangeHandler(http.server.BaseHTTPRequestHandler):
    """Serves `payload` at any path; honours `Range: bytes=N-` with 206 like a release CDN."""

    payload = b""
    requests: list = []

    def do_GET(self):  # noqa: N802 (http.server API)
        range_header = self.headers.get("Range")
        type(self).requests.append(range_header)
        body, status = self.payload, 200
        if range_header:
            start = int(range_header.split("=")[1].rstrip("-"))
            body, status = self.payload[start:], 206
        self.send_response(status)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


@pytest.fixture
def server():
    payload = bytes(range(256)) * 4096  # 1 MiB
    handler = type("Handler", (_RangeHandler,), {"payload": payload, "requests": []})
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}/file.bin", payload, handler
    httpd.shutdown()
    httpd.server_close()


@pytest.fixture
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv("PANINI_BENCH_WEIGHTS", str(tmp_path / "w"))
    return tmp_path / "w"


def _registry(url, payload, **changes):
    fields = {
        "url": url,
        "sha256": hashlib.sha256(payload).hexdigest(),
        "size": len(payload),
        "sha256_prefix": None,
    }
    fields.update(changes)
    return weights.DEFAULT_REGISTRY.with_overrides("moco-dre", **fields)


def test_every_required_name_has_a_filename_and_url():
    for name in REQUIRED:
        art = weights.DEFAULT_REGISTRY.get(name)
        assert art.filename and art.url.startswith("http"), name
    with pytest.raises(BenchError, match="unknown weights name"):
        weights.DEFAULT_REGISTRY.get("nope")


def test_cache_dir_follows_torch_home_and_override(tmp_path, monkeypatch):
    monkeypatch.delenv("PANINI_BENCH_WEIGHTS", raising=False)
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "th"))
    assert weights.weights_dir() == tmp_path / "th" / "hub" / "checkpoints"
    import torch

    assert weights.weights_dir() == __import__("pathlib").Path(torch.hub.get_dir()) / "checkpoints"
    monkeypatch.setenv("PANINI_BENCH_WEIGHTS", str(tmp_path / "mine"))
    assert weights.expected_path("gpen-bfr-512") == tmp_path / "mine" / "GPEN-BFR-512.pth"


def test_missing_file_error_names_artefact_url_and_path(cache):
    with pytest.raises(MissingWeightsError) as info:  # a type callers catch, not a message to parse
        weights.resolve("gfpgan-v1.4")
    message = str(info.value)
    assert "gfpgan-v1.4" in message and weights.DEFAULT_REGISTRY.get("gfpgan-v1.4").url in message
    assert str(cache / "GFPGANv1.4.pth") in message


def test_fetch_downloads_verifies_and_records(server, cache):
    url, payload, handler = server
    path = weights.fetch("moco-dre", registry=_registry(url, payload), progress=False)
    assert path.read_bytes() == payload and handler.requests == [None]
    assert weights.resolve("moco-dre", registry=_registry(url, payload), verify=True) == path
    assert weights.describe("moco-dre")["recorded_sha256"] == hashlib.sha256(payload).hexdigest()


def test_fetch_resumes_a_partial_download_with_range(server, cache):
    url, payload, handler = server
    cache.mkdir(parents=True)
    (cache / "moco_checkpoint_0199.pth.tar.part").write_bytes(payload[:300_000])
    path = weights.fetch("moco-dre", registry=_registry(url, payload), progress=False)
    assert handler.requests == ["bytes=300000-"]
    assert path.read_bytes() == payload
    assert not (cache / "moco_checkpoint_0199.pth.tar.part").exists()


def test_fetch_hash_mismatch_is_an_error_and_leaves_nothing(server, cache):
    url, payload, _ = server
    registry = _registry(url, payload, sha256="0" * 64)
    with pytest.raises(BenchError, match="do not match the registry"):
        weights.fetch("moco-dre", registry=registry, progress=False)
    assert list(cache.iterdir()) == []


def test_unknown_digest_is_recorded_on_fetch_and_enforced_later(server, cache):
    url, payload, _ = server
    registry = _registry(url, payload, sha256=None, size=None)
    path = weights.fetch("moco-dre", registry=registry, progress=False)
    assert (
        weights.verify_file(registry.get("moco-dre"), path, force=True) == hashlib.sha256(payload).hexdigest()
    )
    path.write_bytes(payload[:-1] + b"x")  # corrupted after the fact
    with pytest.raises(BenchError, match="was recorded"):
        weights.verify_file(registry.get("moco-dre"), path, force=True)


def test_offline_fetch_is_a_clear_error_not_urlerror(cache):
    registry = weights.DEFAULT_REGISTRY.with_overrides("moco-dre", url="http://127.0.0.1:9/none")
    with pytest.raises(BenchError, match="place it at"):
        weights.fetch("moco-dre", registry=registry, progress=False, timeout=2)


def test_verify_catches_a_corrupted_known_file(cache):
    cache.mkdir(parents=True)
    (cache / "pt_inception-2015-12-05-6726825d.pth").write_bytes(b"not the inception weights")
    with pytest.raises(BenchError, match="size 25 bytes"):
        weights.resolve("inception-fid", verify=True)
    assert main(["weights", "verify", "inception-fid"]) == 1


def test_cli_list_and_path(cache, capsys):
    assert main(["weights", "list", "--json"]) == 0
    listed = __import__("json").loads(capsys.readouterr().out)
    assert {row["name"] for row in listed} >= set(REQUIRED)
    assert main(["weights", "path", "psp-celebs-sr"]) == 0
    assert capsys.readouterr().out.strip() == str(cache / "psp_celebs_super_resolution.pt")
    assert main(["weights", "fetch", "fid-stats-ffhq-512"]) == 2  # manual artefact: clear error, no HTML


def test_hub_scope_lets_torch_hub_find_a_file_in_an_override_dir(cache):
    import torch

    cache.mkdir(parents=True)
    path = cache / "tiny.pth"
    torch.save({"w": torch.ones(2)}, path)
    with weights.hub_scope(path):
        loaded = torch.hub.load_state_dict_from_url("http://127.0.0.1:9/tiny.pth", weights_only=True)
    assert torch.equal(loaded["w"], torch.ones(2))
    assert torch.hub._hub_dir is None


def test_fetch_refuses_an_html_page(server, cache):
    url, _, handler = server
    handler.payload = b"<!DOCTYPE html><html>confirm download</html>"
    registry = weights.DEFAULT_REGISTRY.with_overrides("psp-celebs-sr", url=url)
    with pytest.raises(BenchError, match="returned a web page"):
        weights.fetch("psp-celebs-sr", registry=registry, progress=False)
    assert not any(cache.iterdir())
