"""Video ViT backbone and the shared transformer blocks, against VideoMAE spec §1.1-1.3, §1.12, §5.

Shape legend: B batch, C channels, T frames, H height, W width, N tokens, V visible, D width,
H heads (in attention), Dh head width.
"""

import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn
from vssl_backbones import vit

from vssl_core.nn import Attention, Block, DropPath, Mlp, sinusoid_table
from vssl_core.registry import Registry

FACTORIES = [vit.vit_tiny, vit.vit_small, vit.vit_base, vit.vit_large]
TINY = dict(img_size=32, num_frames=4, patch_size=16, tubelet_size=2)  # grid (2, 2, 2), N = 8


def tiny(factory, **kw):
    """A fast instance of any registered size (vit_large gets one block)."""
    depth = 1 if factory is vit.vit_large else 2
    return factory(**{**TINY, "depth": depth, **kw})


# ------------------------------------------------------------------------------ sinusoid table


def test_sinusoid_interleaves_sin_and_cos():
    d = 64
    pe = sinusoid_table(1568, d)
    assert pe.shape == (1, 1568, d) and pe.dtype == torch.float32
    p = torch.arange(1568, dtype=torch.float64)
    torch.testing.assert_close(pe[0, :, 0], torch.sin(p).float())
    torch.testing.assert_close(pe[0, :, 1], torch.cos(p).float())
    torch.testing.assert_close(pe[0, :, 2], torch.sin(p / 10000 ** (2 / d)).float())
    torch.testing.assert_close(pe[0, :, 3], torch.cos(p / 10000 ** (2 / d)).float())
    j = d - 1  # last channel: cos, angle p / 10000^(2*floor(j/2)/d)
    torch.testing.assert_close(pe[0, :, j], torch.cos(p / 10000 ** (2 * (j // 2) / d)).float())


def test_sinusoid_matches_float64_reference_bitwise():
    n, d = 50, 12
    ref = [
        [p / math.pow(10000, 2 * (j // 2) / d) for j in range(d)] for p in range(n)
    ]  # the official formula, element by element
    ref = torch.tensor(ref, dtype=torch.float64)
    ref[:, 0::2], ref[:, 1::2] = torch.sin(ref[:, 0::2]), torch.cos(ref[:, 1::2])
    assert torch.equal(sinusoid_table(n, d)[0], ref.float())


# ------------------------------------------------------------------------------ blocks


def test_attention_equals_explicit_reference():
    torch.manual_seed(0)
    B, N, D, H = 2, 7, 24, 3
    attn = Attention(D, H)
    with torch.no_grad():
        for p in attn.parameters():
            p.normal_()
    x_BND = torch.randn(B, N, D)

    bias = torch.cat([attn.q_bias, torch.zeros(D), attn.v_bias])
    qkv = x_BND @ attn.qkv.weight.T + bias
    q, k, v = qkv.reshape(B, N, 3, H, D // H).permute(2, 0, 3, 1, 4)
    weights = torch.softmax((q * (D // H) ** -0.5) @ k.transpose(-2, -1), dim=-1)
    ref_BND = (weights @ v).transpose(1, 2).reshape(B, N, D) @ attn.proj.weight.T + attn.proj.bias
    torch.testing.assert_close(attn(x_BND), ref_BND, rtol=1e-4, atol=1e-4)


def test_attention_gradients_equal_the_explicit_reference():
    torch.manual_seed(0)
    B, N, D, H = 2, 7, 24, 3
    attn = Attention(D, H).double()  # float64: the two formulations round differently
    with torch.no_grad():
        for p in attn.parameters():
            p.normal_()
    x_BND = torch.randn(B, N, D, dtype=torch.float64, requires_grad=True)
    params = [x_BND, attn.qkv.weight, attn.q_bias, attn.v_bias, attn.proj.weight]
    ours = torch.autograd.grad(attn(x_BND).square().sum(), params)

    bias = torch.cat([attn.q_bias, torch.zeros_like(attn.q_bias), attn.v_bias])
    q, k, v = (x_BND @ attn.qkv.weight.T + bias).reshape(B, N, 3, H, D // H).permute(2, 0, 3, 1, 4)
    weights = torch.softmax((q * (D // H) ** -0.5) @ k.transpose(-2, -1), dim=-1)
    ref_BND = (weights @ v).transpose(1, 2).reshape(B, N, D) @ attn.proj.weight.T + attn.proj.bias
    for got, want in zip(ours, torch.autograd.grad(ref_BND.square().sum(), params), strict=True):
        torch.testing.assert_close(got, want, rtol=1e-10, atol=1e-10)


def test_attention_backward_copies_the_qkv_gradient_once():
    """SDPA's backward returns q, k and v gradients apart; they must land in qkv's [B, N, 3D]
    layout with one copy. Permuting to [3, B, H, N, Dh] before the split cost a stack and then a
    clone of the permuted stack: on an H200 the eager VideoMAE step spent ~24 ms of 434 in that
    stack alone."""
    from torch.fx.experimental.proxy_tensor import make_fx

    B, N, D, H = 2, 10, 64, 4
    attn = Attention(D, H)
    names = [n for n, _ in attn.named_parameters()]

    def step(x_BND, *params):
        out = torch.func.functional_call(attn, dict(zip(names, params, strict=True)), (x_BND,))
        return torch.autograd.grad(out.sum(), [x_BND, *params])

    inputs = [torch.randn(B, N, D, requires_grad=True)]
    inputs += [p.detach().requires_grad_() for p in attn.parameters()]
    graph = make_fx(step)(*inputs).graph
    copies = ("stack", "cat", "clone", "copy", "_to_copy", "contiguous")
    full_copies = [
        str(node.target)
        for node in graph.nodes
        if node.op == "call_function"
        and any(c in str(node.target) for c in copies)
        and getattr(node.meta.get("val"), "numel", lambda: 0)() == B * N * 3 * D
    ]
    assert full_copies == ["aten.stack.default"], full_copies


def test_attention_bias_layout_and_init():
    attn = Attention(16, 2)
    assert attn.qkv.bias is None
    assert torch.equal(attn.q_bias, torch.zeros(16)) and torch.equal(attn.v_bias, torch.zeros(16))
    with torch.no_grad():
        attn.q_bias.fill_(1.0), attn.v_bias.fill_(2.0)
    assert attn.qkv_bias().tolist() == [1.0] * 16 + [0.0] * 16 + [2.0] * 16
    with pytest.raises(ValueError, match="divisible"):
        Attention(10, 3)


def test_block_names_and_structure():
    block = Block(32, 4, drop_path=0.1)
    names = {n for n, _ in block.named_parameters()}
    assert names == {
        "norm1.weight", "norm1.bias", "attn.q_bias", "attn.v_bias", "attn.qkv.weight",
        "attn.proj.weight", "attn.proj.bias", "norm2.weight", "norm2.bias",
        "mlp.fc1.weight", "mlp.fc1.bias", "mlp.fc2.weight", "mlp.fc2.bias",
    }  # fmt: skip
    assert block.norm1.eps == 1e-6 and block.norm2.eps == 1e-6
    assert block.mlp.fc1.out_features == 128
    assert isinstance(block.mlp.act, nn.GELU) and block.mlp.act.approximate == "none"
    assert isinstance(block.drop_path, DropPath)


def test_block_equals_prenorm_reference():
    torch.manual_seed(0)
    block = Block(16, 2).eval()
    x = torch.randn(3, 5, 16)
    h = x + block.attn(block.norm1(x))
    ref = h + block.mlp.fc2(F.gelu(block.mlp.fc1(block.norm2(h))))
    torch.testing.assert_close(block(x), ref)


def test_mlp_dropout_only_after_fc2():
    mlp = Mlp(8, 32, drop=0.5)
    assert [n for n, _ in mlp.named_children()] == ["fc1", "act", "fc2", "drop"]


def test_drop_path_is_identity_in_eval_and_unbiased_in_train():
    torch.manual_seed(0)
    dp = DropPath(0.25)
    x = torch.ones(20000, 1, 1)
    assert torch.equal(dp.eval()(x), x)
    y = dp.train()(x)
    assert set(y.unique().tolist()) <= {0.0, torch.tensor(1 / 0.75).item()}
    assert abs(y.mean().item() - 1.0) < 0.03


# ------------------------------------------------------------------------------ backbone


def test_token_geometry_of_the_default_clip():
    with torch.device("meta"):
        model = vit.vit_base()
    assert model.input_size == (16, 224, 224)
    assert model.grid_size == (8, 14, 14)
    assert model.num_tokens == 1568
    assert model.patch_embed.proj.kernel_size == (2, 16, 16)
    assert model.patch_embed.proj.stride == (2, 16, 16)
    assert model.pos_embed.shape == (1, 1568, 768)
    assert 3 * model.tubelet_size * model.patch_size**2 == 1536
    assert model.num_features == model.embed_dim == 768
    assert model.capabilities == frozenset({"token_mask"})
    assert model.no_weight_decay() == set()


def count(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def test_vit_base_parameter_count_is_exact():
    with torch.device("meta"):
        assert count(vit.vit_base()) == 86_227_200


@pytest.mark.parametrize(
    "factory, millions", [(vit.vit_small, 21.88), (vit.vit_base, 86.23), (vit.vit_large, 303.86)]
)
def test_parameter_counts_match_spec(factory, millions):
    with torch.device("meta"):
        assert round(count(factory()) / 1e6, 2) == millions


def official_encoder_keys(depth: int) -> set[str]:
    """The ``encoder.*`` keys of an official pretraining checkpoint (spec §1.12), prefix removed."""
    block = [
        "norm1.weight", "norm1.bias", "attn.q_bias", "attn.v_bias", "attn.qkv.weight",
        "attn.proj.weight", "attn.proj.bias", "norm2.weight", "norm2.bias",
        "mlp.fc1.weight", "mlp.fc1.bias", "mlp.fc2.weight", "mlp.fc2.bias",
    ]  # fmt: skip
    keys = {"patch_embed.proj.weight", "patch_embed.proj.bias", "norm.weight", "norm.bias"}
    return keys | {f"blocks.{i}.{k}" for i in range(depth) for k in block}


def test_vit_base_state_dict_matches_official_encoder_keys():
    with torch.device("meta"):
        sd = vit.vit_base().state_dict()
    assert set(sd) == official_encoder_keys(12)
    assert "pos_embed" not in sd
    shapes = {
        "patch_embed.proj.weight": (768, 3, 2, 16, 16),
        "blocks.0.attn.qkv.weight": (2304, 768),
        "blocks.11.attn.q_bias": (768,),
        "blocks.3.mlp.fc1.weight": (3072, 768),
        "blocks.3.mlp.fc2.weight": (768, 3072),
        "norm.weight": (768,),
    }
    for key, shape in shapes.items():
        assert tuple(sd[key].shape) == shape, key


def test_pos_embed_is_a_non_persistent_buffer_that_moves():
    model = tiny(vit.vit_tiny)
    assert "pos_embed" in dict(model.named_buffers())
    assert "pos_embed" not in model.state_dict()
    assert "pos_embed" not in dict(model.named_parameters())
    torch.testing.assert_close(model.pos_embed, sinusoid_table(model.num_tokens, 192))
    assert model.to(torch.float64).pos_embed.dtype == torch.float64
    assert model.to("meta").pos_embed.device.type == "meta"


def test_init_follows_videomae():
    torch.manual_seed(0)
    model = vit.vit_small(img_size=32, num_frames=4, depth=2)
    block = model.blocks[1]
    for linear in (block.attn.qkv, block.attn.proj, block.mlp.fc1, block.mlp.fc2):
        bound = math.sqrt(6 / (linear.in_features + linear.out_features))  # xavier-uniform
        assert linear.weight.abs().max() <= bound
        assert linear.weight.abs().max() > 0.9 * bound
        if linear.bias is not None:
            assert torch.equal(linear.bias, torch.zeros_like(linear.bias))
    assert torch.equal(model.norm.weight, torch.ones(384))
    assert torch.equal(model.norm.bias, torch.zeros(384))
    # Conv3d keeps PyTorch's default (kaiming-uniform a=sqrt(5)): bound 1/sqrt(fan_in), nonzero bias
    fan_in = 3 * 2 * 16 * 16
    assert model.patch_embed.proj.weight.abs().max() <= 1 / math.sqrt(fan_in)
    assert model.patch_embed.proj.bias.abs().sum() > 0


@pytest.mark.parametrize("factory", FACTORIES, ids=lambda f: f.__name__)
def test_every_size_shapes_and_gradients(factory):
    torch.manual_seed(0)
    model = tiny(factory)
    clip_BCTHW = torch.randn(2, 3, 4, 32, 32)
    tokens_BND = model.forward_features(clip_BCTHW)
    assert tokens_BND.shape == (2, 8, model.embed_dim)
    pooled_BD = model(clip_BCTHW)
    assert pooled_BD.shape == (2, model.num_features)
    torch.testing.assert_close(pooled_BD, tokens_BND.mean(1))
    assert torch.isfinite(pooled_BD).all()
    pooled_BD.square().mean().backward()
    for name, p in model.named_parameters():
        assert p.grad is not None and torch.isfinite(p.grad).all(), name
        assert p.grad.abs().sum() > 0, name


@pytest.mark.parametrize("factory", FACTORIES, ids=lambda f: f.__name__)
def test_every_size_masked_forward_returns_visible_tokens(factory):
    model = tiny(factory).eval()
    clip_BCTHW = torch.randn(3, 3, 4, 32, 32)
    mask_BN = torch.zeros(3, 8, dtype=torch.bool)
    mask_BN[:, [0, 2, 3, 5, 6]] = True
    assert model.forward_features(clip_BCTHW, mask_BN=mask_BN).shape == (3, 3, model.embed_dim)


def test_masked_forward_runs_visible_tokens_in_ascending_order():
    torch.manual_seed(0)
    model = vit.vit_tiny(img_size=64, num_frames=4, depth=2).eval()  # N = 2 * 4 * 4 = 32
    clip_BCTHW = torch.randn(2, 3, 4, 64, 64)
    mask_BN = torch.rand(2, 32).argsort(1) < 24  # 24 masked, 8 visible per row
    got_BVD = model.forward_features(clip_BCTHW, mask_BN=mask_BN)

    proj = model.patch_embed.proj  # the official Conv3d embedding, then its boolean gather
    x = F.conv3d(clip_BCTHW, proj.weight, proj.bias, stride=proj.stride).flatten(2).transpose(1, 2)
    x = x + model.pos_embed
    x = x[~mask_BN].reshape(2, -1, 192)
    for block in model.blocks:
        x = block(x)
    torch.testing.assert_close(got_BVD, model.norm(x))

    no_mask_BN = torch.zeros(2, 32, dtype=torch.bool)
    torch.testing.assert_close(
        model.forward_features(clip_BCTHW, mask_BN=no_mask_BN), model.forward_features(clip_BCTHW)
    )


def test_a_given_visible_count_gives_the_same_tokens_without_a_graph_break():
    torch.manual_seed(0)
    model = vit.vit_tiny(img_size=64, num_frames=4, depth=1).eval()  # N = 32
    clip_BCTHW = torch.randn(2, 3, 4, 64, 64)
    mask_BN = torch.rand(2, 32).argsort(1) < 24  # 8 visible per row
    want_BVD = model.forward_features(clip_BCTHW, mask_BN=mask_BN)  # reads the count on the host
    torch.testing.assert_close(
        model.forward_features(clip_BCTHW, mask_BN=mask_BN, num_visible=8), want_BVD
    )

    def masked_forward(clip, mask):
        return model.forward_features(clip, mask_BN=mask, num_visible=8)

    explained = torch._dynamo.explain(masked_forward)(clip_BCTHW, mask_BN)
    assert explained.graph_break_count == 0, explained.break_reasons
    without_count = torch._dynamo.explain(lambda c, m: model.forward_features(c, mask_BN=m))
    assert without_count(clip_BCTHW, mask_BN).graph_break_count > 0  # what num_visible avoids


def test_a_wrong_visible_count_is_rejected():
    model = tiny(vit.vit_tiny)
    clip_BCTHW = torch.randn(2, 3, 4, 32, 32)
    mask_BN = torch.zeros(2, 8, dtype=torch.bool)
    mask_BN[:, :6] = True  # 2 visible
    with pytest.raises(RuntimeError, match="num_visible=3"):  # checked on the device
        model.forward_features(clip_BCTHW, mask_BN=mask_BN, num_visible=3)
    with pytest.raises(ValueError, match="must be in 1..8"):
        model.forward_features(clip_BCTHW, mask_BN=mask_BN, num_visible=9)
    with pytest.raises(ValueError, match="pass both"):
        model.forward_features(clip_BCTHW, num_visible=2)


def test_patch_embedding_equals_the_official_conv3d_for_all_and_for_indexed_tokens():
    """Off the CPU the embedding is a matmul over flattened tubelets; it must equal the Conv3d
    the official model runs (kernel = stride), and the indexed form must equal a gather."""
    torch.manual_seed(0)
    embed = vit.PatchEmbed3D(embed_dim=24, patch_size=8, tubelet_size=2)
    clip_BCTHW = torch.randn(2, 3, 4, 16, 24)  # grid (2, 2, 3): a non-square one catches h/w
    conv_BND = F.conv3d(clip_BCTHW, embed.proj.weight, embed.proj.bias, stride=(2, 8, 8))
    conv_BND = conv_BND.flatten(2).transpose(1, 2)
    torch.testing.assert_close(embed(clip_BCTHW), conv_BND, rtol=1e-5, atol=1e-5)
    every_BN = torch.arange(12).expand(2, -1)  # the matmul path over all tokens (GPU's path)
    torch.testing.assert_close(embed(clip_BCTHW, every_BN), conv_BND, rtol=1e-5, atol=1e-5)
    index_BV = torch.tensor([[0, 5, 7, 11], [2, 3, 8, 10]])
    want_BVD = conv_BND.gather(1, index_BV[..., None].expand(-1, -1, 24))
    torch.testing.assert_close(embed(clip_BCTHW, index_BV), want_BVD, rtol=1e-5, atol=1e-5)


def test_token_order_is_t_h_w():
    """Token n = t*H'W' + h*W' + w: a clip lit only in tubelet (t=1, h=0, w=1) changes only the
    patch embedding of token 1*4 + 0*2 + 1 = 5."""
    model = vit.vit_tiny(img_size=32, num_frames=4, depth=1)
    clip_BCTHW = torch.zeros(1, 3, 4, 32, 32)
    clip_BCTHW[:, :, 2:4, 0:16, 16:32] = 1.0
    delta_BND = model.patch_embed(clip_BCTHW) - model.patch_embed(torch.zeros_like(clip_BCTHW))
    changed = delta_BND.abs().sum(-1)[0].nonzero().flatten().tolist()
    assert changed == [5]


def test_uneven_masks_and_wrong_shapes_are_rejected():
    model = tiny(vit.vit_tiny)
    clip_BCTHW = torch.randn(2, 3, 4, 32, 32)
    mask_BN = torch.zeros(2, 8, dtype=torch.bool)
    mask_BN[0, 0] = True
    with pytest.raises(ValueError, match="same number"):
        model.forward_features(clip_BCTHW, mask_BN=mask_BN)
    with pytest.raises(ValueError, match="bool"):
        model.forward_features(clip_BCTHW, mask_BN=mask_BN.float())
    with pytest.raises(ValueError, match="num_frames/img_size"):
        model(torch.randn(2, 3, 4, 48, 48))


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(img_size=40), "img_size=40 must be a positive multiple of patch_size=16"),
        (dict(num_frames=5), "num_frames=5 must be a positive multiple of tubelet_size=2"),
        (dict(depth=0), "depth"),
    ],
)
def test_indivisible_inputs_raise_clear_errors(kwargs, match):
    with pytest.raises(ValueError, match=match):
        vit.vit_tiny(**{**TINY, **kwargs})


def test_depth_override_and_drop_path_schedule():
    model = vit.vit_small(**TINY, depth=3, drop_path_rate=0.2)
    assert len(model.blocks) == 3
    assert isinstance(model.blocks[0].drop_path, nn.Identity)
    assert [b.drop_path.drop_prob for b in model.blocks[1:]] == pytest.approx([0.1, 0.2])
    assert len(vit.vit_large(**TINY, depth=1).blocks) == 1


def test_grad_checkpointing_gives_the_same_gradients():
    torch.manual_seed(0)
    plain = tiny(vit.vit_tiny)
    ckpt = tiny(vit.vit_tiny, grad_checkpointing=True)
    ckpt.load_state_dict(plain.state_dict())
    clip_BCTHW = torch.randn(2, 3, 4, 32, 32)
    for model in (plain, ckpt):
        model(clip_BCTHW).square().sum().backward()
    for (name, a), (_, b) in zip(plain.named_parameters(), ckpt.named_parameters(), strict=True):
        torch.testing.assert_close(a.grad, b.grad, msg=name)


def test_factories_register_as_backbones():
    registry = Registry()
    assert registry.add_module(vit, "backbones") == 4
    assert registry.names("backbone") == ["vit_base", "vit_large", "vit_small", "vit_tiny"]


@pytest.mark.parametrize("factory", FACTORIES, ids=lambda f: f.__name__)
def test_factory_signatures_are_plainly_typed(factory):
    import inspect

    params = inspect.signature(factory).parameters
    assert list(params) == [
        "img_size", "num_frames", "patch_size", "tubelet_size", "drop_path_rate", "depth",
        "grad_checkpointing", "final_norm",
    ]  # fmt: skip
    hints = {name: p.annotation for name, p in params.items()}
    assert hints["img_size"] is int and hints["drop_path_rate"] is float
    assert hints["depth"] == (int | None) and hints["grad_checkpointing"] is bool


def test_without_final_norm_the_model_has_no_norm_keys_and_pools_raw_tokens():
    from vssl_backbones.vit import vit_tiny

    torch.manual_seed(0)
    normed = vit_tiny(img_size=32, num_frames=4, patch_size=16, depth=1)
    raw = vit_tiny(img_size=32, num_frames=4, patch_size=16, depth=1, final_norm=False)
    state = {k: v for k, v in normed.state_dict().items() if not k.startswith("norm.")}
    raw.load_state_dict(state, strict=True)  # exactly the keys of VideoMAE's fine-tune layout
    clip = torch.randn(2, 3, 4, 32, 32)
    tokens = raw.forward_features(clip)
    assert torch.allclose(normed.forward_features(clip), normed.norm(tokens), atol=1e-6)
    assert torch.allclose(raw(clip), tokens.mean(dim=1))


def test_a_checkpoint_norm_is_dropped_and_reported_for_a_backbone_without_one():
    from vssl_backbones.vit import vit_tiny

    from vssl_core.convert import load_backbone_checkpoint

    source = vit_tiny(img_size=32, num_frames=4, patch_size=16, depth=1).state_dict()
    raw = vit_tiny(img_size=32, num_frames=4, patch_size=16, depth=1, final_norm=False)
    report = load_backbone_checkpoint(raw, dict(source), fmt="vssl")
    assert set(report.dropped) == {"norm.weight", "norm.bias"}
    assert "final_norm" in report.dropped["norm.weight"]
    assert torch.equal(
        raw.state_dict()["blocks.0.attn.qkv.weight"], source["blocks.0.attn.qkv.weight"]
    )
