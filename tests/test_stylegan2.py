"""StyleGAN2: native ops against brute-force definitions, tiny G/D forward+backward, key remapping."""

from __future__ import annotations

import json

import pytest
import torch

from bench.errors import BenchError
from bench.methods.checkpoints import load_strict
from bench.methods.stylegan2 import (
    StyleGAN2Discriminator,
    StyleGAN2Generator,
    SynthesisHooks,
    make_fir_kernel,
    mmgen_discriminator_to_ours,
    mmgen_generator_to_ours,
    rosinality_to_ours,
    upfirdn2d,
)
from conftest import shared_path

TINY_CHANNELS = {4: 16, 8: 16, 16: 8, 32: 8}


def brute_upfirdn2d(x, kernel, up, down, pad0, pad1):
    """Definition, in float64 loops: zero-insert, pad (negative crops), true convolution, decimate."""
    x = x.double()
    n, c, h, w = x.shape
    z = torch.zeros(n, c, h * up, w * up, dtype=torch.float64)
    z[:, :, ::up, ::up] = x
    big = torch.zeros(n, c, h * up + abs(pad0) + abs(pad1) * 2 + 8, w * up + abs(pad0) + abs(pad1) * 2 + 8,
                      dtype=torch.float64)
    off = 4 + abs(pad0)
    big[:, :, off : off + h * up, off : off + w * up] = z
    start, stop_h, stop_w = off - pad0, off + h * up + pad1, off + w * up + pad1
    padded = big[:, :, start:stop_h, start:stop_w]
    kh, kw = kernel.shape
    oh, ow = padded.shape[2] - kh + 1, padded.shape[3] - kw + 1
    k = kernel.double()
    out = torch.zeros(n, c, oh, ow, dtype=torch.float64)
    for i in range(kh):
        for j in range(kw):
            out += k[kh - 1 - i, kw - 1 - j] * padded[:, :, i : i + oh, j : j + ow]
    return out[:, :, ::down, ::down]


@pytest.mark.parametrize(
    "up,down,pad",
    [(2, 1, (2, 1)), (1, 1, (1, 1)), (1, 2, (2, 2)), (1, 2, (1, 1)), (2, 2, (1, -1))],
)
def test_upfirdn2d_matches_definition(up, down, pad):
    g = torch.Generator().manual_seed(1)
    x = torch.randn(2, 3, 7, 7, generator=g, dtype=torch.float64)
    kernel = torch.randn(4, 4, generator=g, dtype=torch.float64)
    got = upfirdn2d(x, kernel, up=up, down=down, pad=pad)
    want = brute_upfirdn2d(x, kernel, up, down, *pad)
    assert got.shape == want.shape
    assert torch.allclose(got, want, atol=1e-12)


def tiny_generator(**kw):
    return StyleGAN2Generator(32, style_dim=16, n_mlp=2, channels=TINY_CHANNELS, **kw)


@pytest.mark.parametrize("kw", [{}, {"resample": "bilinear"}])
def test_tiny_generator_forward_backward(kw):
    gen = tiny_generator(**kw)
    assert gen.num_latents == 8 and gen.num_layers == 7
    g = torch.Generator().manual_seed(0)
    w = gen.mapping(torch.randn(2, 16, generator=g))
    out = gen(w)
    assert out.shape == (2, 3, 32, 32) and torch.isfinite(out).all()
    assert torch.equal(out, gen(w)), "stored noise must make the forward deterministic"
    out.square().mean().backward()
    assert all(p.grad is not None for p in gen.parameters()), "every parameter gets a gradient"
    for conv in [gen.conv1, *gen.convs]:
        conv.noise.weight.data.fill_(0.5)  # official init is 0, which would hide the noise path
    out = gen(w)
    noisy = gen(w.detach(), noise=gen.random_noise(2, torch.Generator().manual_seed(3)))
    assert not torch.allclose(noisy, out.detach())


def test_concat_noise_mode_doubles_channels_and_uses_features():
    gen = StyleGAN2Generator(16, style_dim=8, n_mlp=1, channels={4: 8, 8: 6, 16: 4}, noise_mode="concat",
                             noise_buffers=False)
    assert gen.conv1.activate.bias.shape == (16,) and gen.convs[0].conv.weight.shape[2] == 16
    feats = [torch.randn(1, gen.channels[gen.noise_shape(n)[-1]], *gen.noise_shape(n)[2:])
             for n in range(gen.num_layers)]
    gen.conv1.noise.weight.data.fill_(1.0)
    w = torch.randn(1, 8)
    out = gen(w, noise=feats)
    feats[0] = feats[0] + 1
    assert out.shape == (1, 3, 16, 16) and not torch.allclose(out, gen(w, noise=feats))
    with pytest.raises(ValueError, match="no stored noise"):
        gen(torch.randn(1, 8))


def test_hooks_are_called_in_order_and_can_change_the_output():
    gen = tiny_generator()
    w = torch.randn(1, gen.num_latents, 16)
    calls = []

    def before(s, out, skip):
        calls.append(("before", s, out.shape[-1]))
        return (out * 0 if s == 0 else out), skip

    def mid(s, out):
        calls.append(("mid", s, out.shape[-1]))
        return out

    def after(s, out, skip):
        calls.append(("after", s, skip.shape[-1]))

    base = gen(w)
    hooked = gen(w, hooks=SynthesisHooks(before, mid, after))
    assert calls[:3] == [("before", 0, 4), ("mid", 0, 8), ("after", 0, 8)]
    assert len(calls) == 9 and not torch.allclose(base, hooked)


def test_tiny_discriminator_forward_backward():
    disc = StyleGAN2Discriminator(32, channels=TINY_CHANNELS)
    img = torch.randn(4, 3, 32, 32, requires_grad=True)
    logit = disc(img)
    assert logit.shape == (4, 1)
    logit.sum().backward()
    assert img.grad is not None and all(p.grad is not None for p in disc.parameters())


def test_rosinality_layout_drops_only_standard_kernels():
    gen = tiny_generator()
    state = dict(gen.state_dict())
    state["convs.0.conv.blur.kernel"] = make_fir_kernel() * 4
    state["to_rgbs.0.upsample.kernel"] = make_fir_kernel() * 4
    load_strict(gen, rosinality_to_ours(state), "tiny")
    state["to_rgbs.0.upsample.kernel"] = torch.ones(4, 4)
    with pytest.raises(BenchError, match="to_rgbs.0.upsample.kernel"):
        rosinality_to_ours(state)


def _spec_entries(name, prefix):
    spec = json.loads(shared_path("fixtures", "official", name, "spec.json").read_text())
    entries = spec["keys"] + spec.get("extra_entries", [])
    return {
        e["name"][len(prefix) :]: torch.empty(e["shape"], device="meta")
        for e in entries
        if e["name"].startswith(prefix)
    }


def test_mmgen_generator_and_discriminator_layout_load_strictly():
    """The official MMEditing StyleGAN2 key names and shapes (from the golden spec) map onto ours."""
    gen_state = _spec_entries("panini_mfr", "generator.")
    disc_state = _spec_entries("panini_mfr", "discriminator.")
    stored = torch.load(shared_path("fixtures", "official", "panini_mfr", "stored.pt"), weights_only=True)
    for key, value in stored.items():
        if key.startswith("generator."):
            gen_state[key[len("generator."):]] = value
        if key.startswith("discriminator."):
            disc_state[key[len("discriminator."):]] = value
    with torch.device("meta"):
        gen = StyleGAN2Generator(1024)
        disc = StyleGAN2Discriminator(1024)
    from bench.methods.checkpoints import check_keys

    check_keys(gen, mmgen_generator_to_ours(gen_state), "generator")
    check_keys(disc, mmgen_discriminator_to_ours(disc_state), "discriminator")
    assert sum(p.numel() for p in gen.parameters()) == 30_370_060
    assert sum(p.numel() for p in disc.parameters()) == 29_012_513
    bad = dict(gen_state)
    bad["style_mapping.9.bias"] = torch.zeros(512)
    with pytest.raises(BenchError, match="unexpected key.*style.9.bias"):
        check_keys(gen, mmgen_generator_to_ours(bad), "generator")


def test_mmgen_checkpoint_file_loads_generator_ema_and_discriminator(tmp_path):
    """An MMGeneration-style file (`generator_ema.` / `discriminator.` prefixes) loads into full-size G and D."""
    from bench.methods.stylegan2 import load_mmgen_checkpoint

    gen_state = {k: torch.full(v.shape, 0.5) for k, v in _spec_entries("panini_mfr", "generator.").items()}
    disc_state = {k: torch.full(v.shape, 0.25) for k, v in _spec_entries("panini_mfr", "discriminator.").items()}
    stored = torch.load(shared_path("fixtures", "official", "panini_mfr", "stored.pt"), weights_only=True)
    gen_state |= {k[len("generator."):]: v for k, v in stored.items() if k.startswith("generator.")}
    disc_state |= {k[len("discriminator."):]: v for k, v in stored.items() if k.startswith("discriminator.")}
    checkpoint = {"state_dict": {"generator_ema." + k: v for k, v in gen_state.items()}
                  | {"discriminator." + k: v for k, v in disc_state.items()}, "meta": {}}
    path = tmp_path / "stylegan2.pth"
    torch.save(checkpoint, path)
    gen = load_mmgen_checkpoint(StyleGAN2Generator(1024), path)
    assert gen.convs[3].conv.modulation.bias[0].item() == 0.5 and gen.noises.noise_16[0, 0, 0, 0].item() == 0.5
    disc = load_mmgen_checkpoint(StyleGAN2Discriminator(1024), checkpoint)
    assert disc.final_linear[1].weight[0, 0].item() == 0.25
    with pytest.raises(BenchError, match="no 'generator.\\*' entries"):
        load_mmgen_checkpoint(StyleGAN2Generator(1024), checkpoint, prefix="generator.")
