"""VideoMAE objective: tube mask, normalized-pixel target, decoder and loss (spec §1.4-1.7, §5).

Shape legend: B batch, C channels, T frames, H height, W width, N tokens, V visible tokens,
M masked tokens, D encoder width, E decoder width, P pixels per token.
"""

import math

import pytest
import torch
import torch.nn.functional as F
from vssl_backbones import vit
from vssl_videomae import objective as videomae_module
from vssl_videomae.objective import VideoMAE

from vssl_core.interfaces import IMAGENET_MEAN, IMAGENET_STD, Backbone, Batch, ViewSpec
from vssl_core.nn import default_decoder_heads, patchify_target, sinusoid_table, tube_mask
from vssl_core.random import sample_key
from vssl_core.registry import Registry

FACTORIES = [vit.vit_tiny, vit.vit_small, vit.vit_base, vit.vit_large]


def keys(n: int, seed: int = 0) -> torch.Tensor:
    return torch.tensor([sample_key(seed, 0, i) for i in range(n)], dtype=torch.int64)


def normalize(pixels_BCTHW: torch.Tensor) -> torch.Tensor:
    """ImageNet normalization, as the data pipeline does on the device."""
    mean_C111 = torch.tensor(IMAGENET_MEAN, dtype=pixels_BCTHW.dtype).view(3, 1, 1, 1)
    std_C111 = torch.tensor(IMAGENET_STD, dtype=pixels_BCTHW.dtype).view(3, 1, 1, 1)
    return (pixels_BCTHW - mean_C111) / std_C111


def tiny_objective(factory=vit.vit_tiny, **kw) -> VideoMAE:
    """img 32, 4 frames, 16x16x2 tubelets: grid (2, 2, 2), N = 8, P = 1536."""
    depth = 1 if factory is vit.vit_large else 2
    backbone = factory(img_size=32, num_frames=4, depth=depth)
    return VideoMAE(backbone, **{"decoder_depth": 1, **kw})


def batch_of(clip_BCTHW: torch.Tensor, keys_B: torch.Tensor) -> Batch:
    B = clip_BCTHW.shape[0]
    return Batch(clips=[clip_BCTHW], label=torch.zeros(B), index=torch.arange(B), keys=keys_B)


# ------------------------------------------------------------------------------ tube mask


@pytest.mark.parametrize(
    "ratio, per_slot, masked, visible", [(0.9, 176, 1408, 160), (0.75, 147, 1176, 392)]
)
def test_tube_mask_counts(ratio, per_slot, masked, visible):
    mask_BN = tube_mask(keys(4), (8, 14, 14), ratio)
    assert mask_BN.shape == (4, 1568) and mask_BN.dtype == torch.bool
    assert mask_BN.reshape(4, 8, 196).sum(-1).eq(per_slot).all()
    assert mask_BN.sum(1).eq(masked).all() and (~mask_BN).sum(1).eq(visible).all()


def test_tube_mask_is_identical_in_every_temporal_slot():
    mask_BTS = tube_mask(keys(3), (8, 14, 14), 0.9).reshape(3, 8, 196)
    assert torch.equal(mask_BTS, mask_BTS[:, :1].expand_as(mask_BTS))


def test_tube_mask_depends_only_on_the_key():
    k = keys(3)
    mask_BN = tube_mask(torch.stack([k[0], k[1], k[0], k[2]]), (8, 14, 14), 0.9)
    assert torch.equal(mask_BN[0], mask_BN[2])  # same key, other batch position
    assert not torch.equal(mask_BN[0], mask_BN[1]) and not torch.equal(mask_BN[1], mask_BN[3])
    assert torch.equal(tube_mask(k[1:2], (8, 14, 14), 0.9)[0], mask_BN[1])  # other batch size


def test_tube_mask_is_uniform_over_positions():
    mask_BN = tube_mask(keys(4000), (1, 14, 14), 0.5)  # 98 of 196 per clip
    freq_S = mask_BN.float().mean(0)
    assert (freq_S - 0.5).abs().max() < 0.05  # ~6 sigma at 4000 draws


def test_tube_mask_rejects_ratios_that_mask_nothing_or_everything():
    with pytest.raises(ValueError, match="at least one"):
        tube_mask(keys(1), (2, 2, 2), 0.2)  # int(0.8) = 0
    with pytest.raises(ValueError, match="at least one"):
        tube_mask(keys(1), (2, 2, 2), 1.0)


# ------------------------------------------------------------------------------ target


def test_target_length_and_token_count_of_the_default_clip():
    clip_BCTHW = torch.zeros(1, 3, 16, 224, 224)
    target_BNP = patchify_target(clip_BCTHW, 2, 16, IMAGENET_MEAN, IMAGENET_STD)
    assert target_BNP.shape == (1, 1568, 1536)


def test_target_follows_the_official_recipe_and_its_indexed_form_is_a_gather():
    """Un-normalize to [0, 1], standardize each tubelet per channel (unbiased, eps on the std):
    computed here the official way; the implementation skips the un-normalization."""
    torch.manual_seed(0)
    clip_BCTHW = torch.randn(2, 3, 4, 32, 48)  # grid (2, 2, 3)
    mean, std = torch.tensor(IMAGENET_MEAN), torch.tensor(IMAGENET_STD)
    pixels_BCTHW = clip_BCTHW * std.view(3, 1, 1, 1) + mean.view(3, 1, 1, 1)
    x = pixels_BCTHW.reshape(2, 3, 2, 2, 2, 16, 3, 16).permute(0, 2, 4, 6, 3, 5, 7, 1)
    x = x.reshape(2, 12, 512, 3)
    x = (x - x.mean(2, keepdim=True)) / (x.var(2, unbiased=True, keepdim=True).sqrt() + 1e-6)
    want_BNP = x.reshape(2, 12, 1536)
    got_BNP = patchify_target(clip_BCTHW, 2, 16, IMAGENET_MEAN, IMAGENET_STD)
    torch.testing.assert_close(got_BNP, want_BNP, rtol=1e-4, atol=1e-4)
    index_BK = torch.tensor([[1, 4, 11], [0, 6, 7]])
    got_BKP = patchify_target(clip_BCTHW, 2, 16, IMAGENET_MEAN, IMAGENET_STD, index_BK=index_BK)
    torch.testing.assert_close(
        got_BKP, want_BNP.gather(1, index_BK[..., None].expand(-1, -1, 1536))
    )


def test_target_of_a_constant_colour_clip_is_zero():
    pixels_BCTHW = torch.tensor([0.2, 0.5, 0.9]).view(1, 3, 1, 1, 1).expand(2, 3, 4, 32, 32)
    target_BNP = patchify_target(normalize(pixels_BCTHW), 2, 16, IMAGENET_MEAN, IMAGENET_STD)
    assert torch.equal(target_BNP, torch.zeros_like(target_BNP))


def test_target_of_flat_tubelets_is_exactly_zero():
    """Each tubelet one colour, different per tubelet: numerator 0 for every token, exactly."""
    torch.manual_seed(0)
    colours_BCthw = torch.rand(2, 3, 2, 2, 2)
    pixels_BCTHW = colours_BCthw.repeat_interleave(2, 2).repeat_interleave(16, 3)
    pixels_BCTHW = pixels_BCTHW.repeat_interleave(16, 4)
    target_BNP = patchify_target(normalize(pixels_BCTHW), 2, 16, IMAGENET_MEAN, IMAGENET_STD)
    assert torch.equal(target_BNP, torch.zeros_like(target_BNP))


def test_target_is_invariant_to_a_per_channel_affine_colour_change():
    torch.manual_seed(0)
    pixels_BCTHW = torch.rand(2, 3, 4, 32, 32, dtype=torch.float64)
    scale_C111 = torch.tensor([0.5, 2.0, 1.3], dtype=torch.float64).view(3, 1, 1, 1)
    shift_C111 = torch.tensor([0.1, -0.4, 0.7], dtype=torch.float64).view(3, 1, 1, 1)
    before = patchify_target(normalize(pixels_BCTHW), 2, 16, IMAGENET_MEAN, IMAGENET_STD)
    after = patchify_target(
        normalize(pixels_BCTHW * scale_C111 + shift_C111), 2, 16, IMAGENET_MEAN, IMAGENET_STD
    )
    torch.testing.assert_close(after, before, rtol=0, atol=1e-4)  # eps on the std: ~1e-5 here


def reference_target(pixels_CTHW: torch.Tensor, tubelet: int, patch: int, normalize: bool):
    """Element by element from spec §1.6: index ((p0*patch + p1)*patch + p2)*C + c."""
    C, T, H, W = pixels_CTHW.shape
    rows = []
    for t in range(T // tubelet):
        for h in range(H // patch):
            for w in range(W // patch):
                cube = pixels_CTHW[
                    :, t * tubelet : (t + 1) * tubelet, h * patch : (h + 1) * patch,
                    w * patch : (w + 1) * patch,
                ].reshape(C, -1)  # fmt: skip
                if normalize:
                    n = cube.shape[1]
                    mu = cube.sum(1, keepdim=True) / n
                    sd = ((cube - mu).square().sum(1, keepdim=True) / (n - 1)).sqrt()
                    cube = (cube - mu) / (sd + 1e-6)
                rows.append([cube[c, p].item() for p in range(cube.shape[1]) for c in range(C)])
    return torch.tensor(rows, dtype=torch.float64)


@pytest.mark.parametrize("normalize_target", [False, True])
def test_target_layout_is_p0_p1_p2_with_channel_fastest(normalize_target):
    torch.manual_seed(0)
    pixels_BCTHW = torch.rand(1, 3, 4, 8, 12, dtype=torch.float64)
    got_BNP = patchify_target(
        normalize(pixels_BCTHW), 2, 4, IMAGENET_MEAN, IMAGENET_STD, normalize=normalize_target
    )
    ref_NP = reference_target(pixels_BCTHW[0], 2, 4, normalize_target)
    assert got_BNP.shape == (1, 2 * 2 * 3, 2 * 4 * 4 * 3)
    torch.testing.assert_close(got_BNP[0], ref_NP, rtol=1e-9, atol=1e-9)


def test_raw_target_on_a_hand_built_clip():
    """Pixel value 1000*c + 100*t + 10*h + w, tubelet 2, patch 2: read back known indices."""
    c, t, h, w = torch.meshgrid(*(torch.arange(n) for n in (3, 4, 4, 4)), indexing="ij")
    pixels_BCTHW = (1000 * c + 100 * t + 10 * h + w).double().unsqueeze(0)
    target_BNP = patchify_target(pixels_BCTHW, 2, 2, (0.0,) * 3, (1.0,) * 3, normalize=False)
    assert target_BNP.shape == (1, 2 * 2 * 2, 2 * 2 * 2 * 3)
    # token (t'=1, h'=0, w'=1) is n = 1*4 + 0*2 + 1 = 5; pixel (p0=1, p1=0, p2=1) is p = 5
    assert target_BNP[0, 5, 5 * 3 + 2].item() == 1000 * 2 + 100 * 3 + 10 * 0 + 3
    assert target_BNP[0, 5, :3].tolist() == [200 + 2, 1200 + 2, 2200 + 2]  # channel fastest
    assert target_BNP[0, 0, 3].item() == 1  # p = 1 is (p0, p1, p2) = (0, 0, 1), channel 0


# ------------------------------------------------------------------------------ model


def official_keys(depth: int, decoder_depth: int) -> set[str]:
    """Keys of an official VideoMAE pretraining checkpoint (spec §1.12)."""
    block = [
        "norm1.weight", "norm1.bias", "attn.q_bias", "attn.v_bias", "attn.qkv.weight",
        "attn.proj.weight", "attn.proj.bias", "norm2.weight", "norm2.bias",
        "mlp.fc1.weight", "mlp.fc1.bias", "mlp.fc2.weight", "mlp.fc2.bias",
    ]  # fmt: skip
    keys = {
        "encoder.patch_embed.proj.weight", "encoder.patch_embed.proj.bias",
        "encoder.norm.weight", "encoder.norm.bias", "encoder_to_decoder.weight", "mask_token",
        "decoder.norm.weight", "decoder.norm.bias", "decoder.head.weight", "decoder.head.bias",
    }  # fmt: skip
    keys |= {f"encoder.blocks.{i}.{k}" for i in range(depth) for k in block}
    return keys | {f"decoder.blocks.{j}.{k}" for j in range(decoder_depth) for k in block}


def test_videomae_base_parameter_count_and_keys():
    with torch.device("meta"):
        model = VideoMAE(vit.vit_base())
    assert sum(p.numel() for p in model.parameters()) == 94_210_944
    sd = model.state_dict()
    renamed = {"encoder." + k[len("backbone.") :] if k.startswith("backbone.") else k for k in sd}
    assert renamed == official_keys(12, 4)
    assert tuple(sd["encoder_to_decoder.weight"].shape) == (384, 768)
    assert tuple(sd["mask_token"].shape) == (1, 1, 384)
    assert tuple(sd["decoder.blocks.0.attn.qkv.weight"].shape) == (1152, 384)
    assert tuple(sd["decoder.head.weight"].shape) == (1536, 384)
    assert model.decoder.blocks[0].attn.num_heads == 6
    assert model.num_masked == 1408


@pytest.mark.parametrize(
    "factory, decoder_depth, millions",
    [(vit.vit_small, 4, 24.03), (vit.vit_large, 12, 343.00)],
)
def test_other_pretraining_model_sizes_match_spec(factory, decoder_depth, millions):
    with torch.device("meta"):
        model = VideoMAE(factory(), decoder_depth=decoder_depth)
    assert round(sum(p.numel() for p in model.parameters()) / 1e6, 2) == millions


@pytest.mark.parametrize(
    "width, heads", [(96, 3), (192, 3), (384, 6), (512, 8), (640, 10), (100, 2), (64, 2)]
)
def test_default_decoder_heads_rule(width, heads):
    assert default_decoder_heads(width) == heads


@pytest.mark.parametrize(
    "factory, width, heads",
    [
        (vit.vit_tiny, 96, 3),
        (vit.vit_small, 192, 3),
        (vit.vit_base, 384, 6),
        (vit.vit_large, 512, 8),
    ],
)
def test_default_decoder_width_and_heads_per_size(factory, width, heads):
    with torch.device("meta"):
        model = VideoMAE(factory(depth=1))
    attn = model.decoder.blocks[0].attn
    assert model.decoder.head.in_features == width and attn.num_heads == heads


def test_init_and_buffers():
    torch.manual_seed(0)
    model = tiny_objective(decoder_dim=64, decoder_heads=4)
    assert model.mask_token.abs().max() <= 0.02 and model.mask_token.std() > 0.005
    assert model.encoder_to_decoder.bias is None
    head = model.decoder.head
    bound = math.sqrt(6 / (head.in_features + head.out_features))
    assert head.weight.abs().max() <= bound and torch.equal(head.bias, torch.zeros(1536))
    assert model.decoder.norm.eps == 1e-6
    assert "decoder_pos_embed" not in model.state_dict()
    torch.testing.assert_close(model.decoder_pos_embed, sinusoid_table(8, 64))
    assert model.no_weight_decay() == {"mask_token"}


def test_views_follow_the_backbone_and_recipe():
    model = tiny_objective(sampling_stride=2, augmentation="none")
    assert model.views() == ViewSpec(
        frames=4, crop_size=32, stride=2, num_clips=1, augmentation="none"
    )
    assert tiny_objective().views().augmentation == "multiscale_crop"
    assert tiny_objective().views().stride == 4
    with pytest.raises(ValueError, match="augmentation"):
        tiny_objective(augmentation="flip")


class NoMaskBackbone(Backbone):
    num_features, input_size = 8, (4, 32, 32)


def test_a_backbone_without_token_masking_is_rejected():
    with pytest.raises(ValueError, match="token masking.*vit_tiny, vit_small, vit_base"):
        VideoMAE(NoMaskBackbone())


def test_bad_mask_ratio_is_rejected_at_build_time():
    with pytest.raises(ValueError, match="mask_ratio"):
        tiny_objective(mask_ratio=0.1)  # int(0.4) = 0 of a 2x2 slot


def test_decoder_output_shape_is_batch_by_masked_by_1536():
    torch.manual_seed(0)
    model = tiny_objective(mask_ratio=0.75)  # 3 of 4 per slot: M = 6, V = 2
    seen = {}
    model.decoder.register_forward_hook(lambda m, i, out: seen.setdefault("out", out))
    model(batch_of(torch.randn(2, 3, 4, 32, 32), keys(2)))
    assert seen["out"].shape == (2, 6, 1536)


def official_reference_loss(model: VideoMAE, clip_BCTHW, mask_BN) -> torch.Tensor:
    """The official forward with boolean indexing (modeling_pretrain.py, engine)."""
    B = clip_BCTHW.shape[0]
    # engine_for_pretraining.py: un-normalize, 'b c (t p0) (h p1) (w p2) -> b (t h w) (p0 p1 p2) c'
    mean_C111 = torch.tensor(IMAGENET_MEAN).view(3, 1, 1, 1)
    std_C111 = torch.tensor(IMAGENET_STD).view(3, 1, 1, 1)
    v = clip_BCTHW * std_C111 + mean_C111
    _, C, T, H, W = v.shape
    v = v.reshape(B, C, T // 2, 2, H // 16, 16, W // 16, 16).permute(0, 2, 4, 6, 3, 5, 7, 1)
    v = v.reshape(B, -1, 2 * 16 * 16, C)
    v = (v - v.mean(dim=-2, keepdim=True)) / (
        v.var(dim=-2, unbiased=True, keepdim=True).sqrt() + 1e-6
    )
    target_BNP = v.reshape(B, v.shape[1], -1)  # 'b n p c -> b n (p c)'
    labels = target_BNP[mask_BN].reshape(B, -1, target_BNP.shape[-1])

    enc = model.backbone
    x = enc.patch_embed(clip_BCTHW) + enc.pos_embed
    x = x[~mask_BN].reshape(B, -1, enc.embed_dim)
    for block in enc.blocks:
        x = block(x)
    x = model.encoder_to_decoder(enc.norm(x))
    pos = model.decoder_pos_embed.expand(B, -1, -1)
    E = pos.shape[-1]
    pos_vis, pos_mask = pos[~mask_BN].reshape(B, -1, E), pos[mask_BN].reshape(B, -1, E)
    x = torch.cat([x + pos_vis, model.mask_token + pos_mask], dim=1)
    for block in model.decoder.blocks:
        x = block(x)
    out = model.decoder.head(model.decoder.norm(x[:, -pos_mask.shape[1] :]))
    return F.mse_loss(out, labels)


def test_loss_equals_the_official_reference():
    torch.manual_seed(0)
    backbone = vit.vit_tiny(img_size=64, num_frames=4, depth=2)  # grid (2, 4, 4), N = 32
    model = VideoMAE(backbone, decoder_depth=2).eval()
    clip_BCTHW = normalize(torch.rand(3, 3, 4, 64, 64))
    k = keys(3)
    loss = model(batch_of(clip_BCTHW, k)).loss
    reference = official_reference_loss(model, clip_BCTHW, tube_mask(k, (2, 4, 4), 0.9))
    torch.testing.assert_close(loss, reference, rtol=1e-5, atol=1e-6)


def test_raw_pixel_target_when_not_normalized():
    torch.manual_seed(0)
    model = tiny_objective(normalize_target=False, mask_ratio=0.75)
    pixels_BCTHW = torch.rand(2, 3, 4, 32, 32)
    seen = {}
    model.decoder.register_forward_hook(lambda m, i, out: seen.setdefault("out", out))
    loss = model(batch_of(normalize(pixels_BCTHW), keys(2))).loss
    mask_BN = tube_mask(keys(2), (2, 2, 2), 0.75)
    raw_BNP = patchify_target(pixels_BCTHW, 2, 16, (0.0,) * 3, (1.0,) * 3, normalize=False)
    expected = F.mse_loss(seen["out"], raw_BNP[mask_BN].reshape(2, 6, 1536))
    torch.testing.assert_close(loss, expected)


def twin_objectives(**kw) -> tuple[VideoMAE, VideoMAE]:
    """The same weights, one fed normalized clips and one fed the uint8 clips (uint8_input)."""
    torch.manual_seed(0)
    normalized = tiny_objective(mask_ratio=0.75, **kw)
    torch.manual_seed(0)
    from_uint8 = tiny_objective(mask_ratio=0.75, uint8_input=True, **kw)
    return normalized, from_uint8


@pytest.mark.parametrize("normalize_target", [True, False])
def test_uint8_input_keeps_the_loss_and_the_gradients(normalize_target):
    """The objective normalizing the loader's uint8 clips itself, and standardizing the target
    from the integer pixels, trains as the normalized path does: the encoder sees the same
    input bit for bit, the target differs by float rounding only."""
    from vssl_core.data.clips import normalize_on_device

    normalized, from_uint8 = twin_objectives(normalize_target=normalize_target)
    assert normalized.views().normalized and not from_uint8.views().normalized
    clip_BCTHW = torch.randint(0, 256, (3, 3, 4, 32, 32), dtype=torch.uint8)
    batch = batch_of(clip_BCTHW, keys(3))
    a_batch = normalize_on_device(batch_of(clip_BCTHW, keys(3)), normalized.views())
    b_batch = normalize_on_device(batch, from_uint8.views())
    assert a_batch.clips[0].dtype == torch.float32 and b_batch.clips[0] is clip_BCTHW
    seen = {}
    for name, model in (("a", normalized), ("b", from_uint8)):
        model.backbone.register_forward_hook(lambda m, i, o, n=name: seen.setdefault(n, i[0]))
    a, b = normalized(a_batch).loss, from_uint8(b_batch).loss
    torch.testing.assert_close(b, a, rtol=1e-6, atol=0)
    a.backward()
    b.backward()
    for (name, p), q in zip(normalized.named_parameters(), from_uint8.parameters(), strict=True):
        torch.testing.assert_close(q.grad, p.grad, rtol=1e-4, atol=1e-7, msg=name)


@pytest.mark.parametrize("levels", [256, 2])  # 2: flat tubelets, where eps matters most
def test_uint8_target_is_the_normalized_target_from_integer_pixels(levels):
    clip_BCTHW = torch.randint(100, min(256, 100 + levels), (2, 3, 4, 32, 32), dtype=torch.uint8)
    mean, std = IMAGENET_MEAN, IMAGENET_STD
    from vssl_core.data.clips import normalize_uint8

    reference = patchify_target(normalize_uint8(clip_BCTHW, mean, std), 2, 16, mean, std)
    from_uint8 = patchify_target(clip_BCTHW, 2, 16, (0.0,) * 3, (1 / 255,) * 3)
    assert from_uint8.dtype == torch.float32
    torch.testing.assert_close(from_uint8, reference, rtol=1e-5, atol=1e-5)
    if levels == 2:  # on low contrast the eps's scale shows
        wrong_eps = patchify_target(clip_BCTHW, 2, 16, (0.0,) * 3, (1.0,) * 3)
        assert not torch.allclose(wrong_eps, reference, rtol=1e-5, atol=1e-5)


def test_loss_of_a_sample_does_not_depend_on_its_batch_position():
    torch.manual_seed(0)
    model = tiny_objective().eval()
    clip_BCTHW, k = torch.randn(3, 3, 4, 32, 32), keys(3)
    perm = torch.tensor([2, 0, 1])
    a = model(batch_of(clip_BCTHW, k)).loss
    b = model(batch_of(clip_BCTHW[perm], k[perm])).loss
    torch.testing.assert_close(a, b)


@pytest.mark.parametrize("factory", FACTORIES, ids=lambda f: f.__name__)
def test_every_size_loss_is_finite_and_every_parameter_gets_a_gradient(factory):
    torch.manual_seed(0)
    model = tiny_objective(factory, mask_ratio=0.75)
    out = model(batch_of(torch.randn(2, 3, 4, 32, 32), keys(2)))
    assert out.loss.ndim == 0 and out.loss.dtype == torch.float32
    assert torch.isfinite(out.loss) and out.metrics == {}
    out.loss.backward()
    for name, p in model.named_parameters():
        assert p.grad is not None and torch.isfinite(p.grad).all(), name
        assert p.grad.abs().sum() > 0, name


def test_registered_as_the_videomae_objective():
    registry = Registry()
    assert registry.add_module(videomae_module, "videomae") == 1
    assert registry.get("objective", "videomae").factory is VideoMAE


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_cuda_mask_and_loss_match_cpu():
    torch.manual_seed(0)
    model = tiny_objective().eval()
    clip_BCTHW, k = torch.randn(2, 3, 4, 32, 32), keys(2)
    cpu = model(batch_of(clip_BCTHW, k)).loss
    assert torch.equal(tube_mask(k.cuda(), (8, 14, 14), 0.9).cpu(), tube_mask(k, (8, 14, 14), 0.9))
    gpu = model.cuda()(batch_of(clip_BCTHW, k).to("cuda")).loss
    torch.testing.assert_close(gpu.cpu(), cpu, rtol=1e-3, atol=1e-3)


@pytest.mark.slow
def test_full_size_videomae_base_step():
    torch.manual_seed(0)
    model = VideoMAE(vit.vit_base())
    clip_BCTHW = normalize(torch.rand(1, 3, 16, 224, 224))
    seen = {}
    model.decoder.register_forward_hook(lambda m, i, out: seen.setdefault("out", out))
    loss = model(batch_of(clip_BCTHW, keys(1))).loss
    assert seen["out"].shape == (1, 1408, 1536)
    assert torch.isfinite(loss) and 0.5 < loss.item() < 5.0  # ~1 + |head output|^2 at init
    loss.backward()
    assert all(p.grad is not None for p in model.parameters())


def trained_losses(recipe, *overrides) -> list[float]:
    from kit.runs import read_metrics

    from vssl_core.config import load_config
    from vssl_core.engine.trainer import train
    from vssl_core.plugins import load_plugins

    host = load_plugins()
    result = train(load_config(recipe, list(overrides), host), host)
    assert result.status == "completed"
    return [r["loss"] for r in read_metrics(result.run_dir)]


def test_training_on_uint8_input_logs_the_losses_of_the_normalized_path(tiny_recipe, monkeypatch):
    """Through the trainer: the clips stay uint8 up to the objective (ViewSpec.normalized)."""
    dtypes = []
    forward = VideoMAE.forward

    def spy(self, batch):
        dtypes.append(batch.clips[0].dtype)
        return forward(self, batch)

    monkeypatch.setattr(VideoMAE, "forward", spy)
    plain = trained_losses(tiny_recipe, "run.name=plain")
    plain_dtypes, dtypes[:] = set(dtypes), []
    fused = trained_losses(tiny_recipe, "run.name=uint8", "objective.uint8_input=true")
    assert plain_dtypes == {torch.float32} and set(dtypes) == {torch.uint8}
    # the same losses up to rounding: bit-equal on some CPUs, not on others
    assert fused == pytest.approx(plain, rel=1e-5)


@pytest.mark.slow
def test_compiled_uint8_input_matches_eager(tiny_recipe):
    """Under train.compile the normalization and the target join the objective's graph."""
    fused = ("objective.uint8_input=true",)
    eager = trained_losses(tiny_recipe, "run.name=eager", *fused)
    compiled = trained_losses(tiny_recipe, "run.name=compiled", "train.compile=true", *fused)
    assert compiled == pytest.approx(eager, rel=1e-3)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_cuda_uint8_input_matches_the_normalized_path(tiny_recipe):
    cuda = ("train.device=cuda", "train.precision=bf16")
    plain = trained_losses(tiny_recipe, "run.name=cuda_plain", *cuda)
    fused = trained_losses(tiny_recipe, "run.name=cuda_uint8", "objective.uint8_input=true", *cuda)
    assert fused == pytest.approx(plain, rel=2e-2)
