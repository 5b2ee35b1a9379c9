"""SIGMA objective: sizes, keys, projection variants, gradient flow, the frozen teacher and a
training step (spec videomae-sigma.md §2.1-2.3, §2.6, §2.10-2.11, §5).

Shape legend: B batch, C channels, T frames, H height, W width, N tokens, M masked tokens,
G images, S patches per image, D width, K prototypes.
"""

import math

import pytest
import torch
import torch.nn.functional as F
from vssl_backbones import vit
from vssl_sigma import objective as sigma_module
from vssl_sigma.objective import Sigma
from vssl_sigma.projection import ImageViT, load_teacher_weights, normalize_over_tokens

from vssl_core.engine.optim import param_groups
from vssl_core.interfaces import IMAGENET_MEAN, IMAGENET_STD, Batch, ViewSpec
from vssl_core.nn import patchify_target, tube_mask
from vssl_core.random import sample_key
from vssl_core.registry import Registry


def keys(n: int, seed: int = 0) -> torch.Tensor:
    return torch.tensor([sample_key(seed, 0, i) for i in range(n)], dtype=torch.int64)


def batch_of(clip_BCTHW: torch.Tensor, keys_B: torch.Tensor | None = None) -> Batch:
    B = clip_BCTHW.shape[0]
    keys_B = keys(B) if keys_B is None else keys_B
    return Batch(clips=[clip_BCTHW], label=torch.zeros(B), index=torch.arange(B), keys=keys_B)


def tiny(**kw) -> Sigma:
    """img 32, 4 frames, 8x8x2 tubelets: grid (2, 4, 4), N = 32, 28 masked at 0.9, P = 384."""
    backbone = vit.vit_tiny(img_size=32, num_frames=4, patch_size=8, depth=1)
    args = {"decoder_depth": 1, "num_prototypes": 16, "projection_hidden": [32, 32, 16]}
    if kw.get("target") == "dino":
        args = {"decoder_depth": 1, "num_prototypes": 16, "teacher": "dino_s"}
        args["teacher_random_init"] = "teacher_weights" not in kw
    return Sigma(backbone, **{**args, **kw})


def clip(B: int = 2, seed: int = 0) -> torch.Tensor:
    return torch.randn(B, 3, 4, 32, 32, generator=torch.Generator().manual_seed(seed))


# ------------------------------------------------------------------------------ sizes and keys


def test_sigma_base_decoder_with_a_768_head_has_the_spec_size():
    with torch.device("meta"):
        model = Sigma(vit.vit_base(), target="dino", teacher_random_init=True)
    assert sum(p.numel() for p in model.decoder.parameters()) == 7_392_768
    assert tuple(model.decoder.head.weight.shape) == (768, 384)
    assert tuple(model.prototypes.shape) == (3000, 768)


def test_sigma_mlp_projection_has_the_spec_size_and_official_keys():
    with torch.device("meta"):
        model = Sigma(vit.vit_base())
    head = {k: tuple(v.shape) for k, v in model.state_dict().items() if k.startswith("head.")}
    assert head == {
        "head.0.weight": (1024, 1536), "head.0.bias": (1024,),
        "head.2.weight": (1024, 1024), "head.2.bias": (1024,),
        "head.4.weight": (512, 1024), "head.4.bias": (512,),
        "head.6.weight": (256, 512), "head.6.bias": (256,),
    }  # fmt: skip
    assert sum(p.numel() for p in model.head.parameters()) == 3_279_616
    assert tuple(model.state_dict()["decoder.head.weight"].shape) == (256, 384)
    assert tuple(model.state_dict()["prototypes"].shape) == (3000, 256)
    assert model.num_masked == 1408


def test_the_checkpoint_holds_no_teacher_and_reloads_strictly():
    torch.manual_seed(0)
    model = tiny(target="dino")
    state = model.state_dict()
    assert not any(k.startswith("teacher.") for k in state)
    assert {"prototypes", "mask_token", "decoder.head.weight", "backbone.norm.weight"} <= set(state)
    other = tiny(target="dino")
    own_teacher = other.teacher.blocks[0].attn.qkv.weight.clone()
    other.load_state_dict(state)  # strict: the absent teacher is not "missing"
    torch.testing.assert_close(other.prototypes, model.prototypes)
    assert torch.equal(other.teacher.blocks[0].attn.qkv.weight, own_teacher)  # left as built


def test_registered_as_the_sigma_objective_needing_token_masking():
    registry = Registry()
    assert registry.add_module(sigma_module, "sigma") == 1
    entry = registry.get("objective", "sigma")
    assert entry.factory is Sigma and "token_mask" in entry.mark.requires


# ------------------------------------------------------------------------------ arguments


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"target": "dino"}, "teacher_weights"),
        ({"teacher_random_init": True}, "target: dino only"),
        ({"teacher_weights": "x.pth"}, "target: dino only"),
        ({"target": "dino", "teacher_random_init": True, "projection_dim": 64}, "MLP phi"),
        ({"target": "dino", "teacher_weights": "x.pth", "teacher_random_init": True}, "not both"),
        ({"target": "dino", "teacher_weights": "/nonexistent/dino.pth"}, "not a file"),
        ({"num_prototypes": 1}, "num_prototypes"),
        ({"epsilon": 0.0}, "epsilon"),
        ({"temperature": -1.0}, "temperature"),
        ({"sinkhorn_iterations": 0}, "sinkhorn_iterations"),
        ({"mask_ratio": 0.05}, "mask_ratio"),
        ({"augmentation": "flip"}, "augmentation"),
    ],
)
def test_bad_arguments_are_rejected_with_the_fix(kwargs, match):
    backbone = vit.vit_tiny(img_size=32, num_frames=4, patch_size=8, depth=1)
    with pytest.raises((ValueError, FileNotFoundError), match=match):
        Sigma(backbone, decoder_depth=1, **kwargs)


def test_views_follow_the_backbone_and_recipe():
    model = tiny(sampling_stride=2, augmentation="none")
    assert model.views() == ViewSpec(
        frames=4, crop_size=32, stride=2, num_clips=1, augmentation="none"
    )
    assert tiny().views().augmentation == "multiscale_crop" and tiny().views().stride == 4


def test_prototypes_are_decayed_and_renormalized_every_step():
    model = tiny()
    assert model.no_weight_decay() == {"mask_token"}
    decayed = {
        id(p) for g in param_groups(model, 0.05) if g["weight_decay"] > 0 for p in g["params"]
    }
    assert id(model.prototypes) in decayed
    with torch.no_grad():
        model.prototypes.mul_(3.0)
    model(batch_of(clip()))
    torch.testing.assert_close(model.prototypes.norm(dim=1), torch.ones(16))


# ------------------------------------------------------------------------------ projection phi


def test_mlp_phi_sees_the_no_grad_normalized_pixels_of_the_masked_tubelets():
    torch.manual_seed(0)
    model = tiny()
    seen = {}
    model.head.register_forward_hook(lambda m, i, o: seen.update(input=i[0]))
    clip_BCTHW = clip()
    model(batch_of(clip_BCTHW))
    mask_BN = tube_mask(keys(2), (2, 4, 4), 0.9)
    pixels_BNP = patchify_target(clip_BCTHW, 2, 8, IMAGENET_MEAN, IMAGENET_STD)
    expected = pixels_BNP[mask_BN].reshape(2, 28, 384)
    torch.testing.assert_close(seen["input"], expected)
    assert not seen["input"].requires_grad


def test_dino_teacher_sees_the_first_frame_of_every_tubelet():
    torch.manual_seed(0)
    model = tiny(target="dino")
    seen = {}
    model.teacher.patch_embed.proj.register_forward_hook(lambda m, i, o: seen.update(input=i[0]))
    clip_BCTHW = clip()
    model(batch_of(clip_BCTHW))
    frames_GCHW = clip_BCTHW[:, :, [0, 2]].transpose(1, 2).reshape(4, 3, 32, 32)
    torch.testing.assert_close(seen["input"], frames_GCHW)


def test_dino_targets_are_normalized_per_video_and_channel_across_tokens():
    g = torch.Generator().manual_seed(0)
    f_BNX = torch.randn(2, 50, 6, generator=g) * 3 + 5
    out_BNX = normalize_over_tokens(f_BNX)
    torch.testing.assert_close(out_BNX.mean(dim=1), torch.zeros(2, 6), atol=1e-5, rtol=0)
    torch.testing.assert_close(out_BNX.std(dim=1), torch.ones(2, 6), atol=1e-5, rtol=0)
    scale_X, shift_X = torch.rand(6, generator=g) + 0.5, torch.randn(6, generator=g)
    torch.testing.assert_close(
        normalize_over_tokens(f_BNX * scale_X + shift_X), out_BNX, atol=1e-4, rtol=0
    )
    # not a per-token LayerNorm: a token's own channels are not standardized
    assert (out_BNX.mean(dim=2).abs() > 1e-3).any()


def test_the_dino_teacher_is_frozen_in_eval_and_outside_the_optimizer():
    model = tiny(target="dino").train()
    assert not model.teacher.training and model.backbone.training
    assert all(not p.requires_grad for p in model.teacher.parameters())
    in_optimizer = {id(p) for g in param_groups(model, 0.05) for p in g["params"]}
    assert not in_optimizer & {id(p) for p in model.teacher.parameters()}
    assert in_optimizer == {id(p) for p in model.parameters() if p.requires_grad}
    model(batch_of(clip())).loss.backward()
    assert all(p.grad is None for p in model.teacher.parameters())


# ------------------------------------------------------------------------------ DINO weights


def dino_checkpoint(teacher: ImageViT, seed: int, wrap: bool) -> dict:
    """Random DINO/timm-named weights for ``teacher``'s architecture: a fused ``attn.qkv.bias``
    with a nonzero key part; ``wrap`` = a DINO training checkpoint (teacher/backbone./head.)."""
    g = torch.Generator().manual_seed(seed)
    state = {}
    for k, v in teacher.state_dict().items():
        if k.endswith("attn.v_bias"):
            continue
        if k.endswith("attn.q_bias"):
            k, v = k.replace("q_bias", "qkv.bias"), torch.zeros(3 * v.numel())
        state[k] = torch.randn(v.shape, generator=g) * 0.2
    if wrap:
        state = {"backbone." + k: v for k, v in state.items()}
        state["head.mlp.0.weight"] = torch.zeros(4, 4)
        state = {"teacher": state, "student": {}, "epoch": 100}
    return state


def reference_dino_tokens(sd: dict, images_GCHW: torch.Tensor, heads: int) -> torch.Tensor:
    """DINO/timm ViT forward written out with the fused qkv bias; patch tokens after the norm."""
    p = sd["patch_embed.proj.weight"].shape[-1]
    x = F.conv2d(images_GCHW, sd["patch_embed.proj.weight"], sd["patch_embed.proj.bias"], stride=p)
    x = x.flatten(2).transpose(1, 2)
    x = torch.cat((sd["cls_token"].expand(x.shape[0], -1, -1), x), dim=1) + sd["pos_embed"]
    G, L, D = x.shape
    ln = lambda t, n: F.layer_norm(t, (D,), sd[n + ".weight"], sd[n + ".bias"], 1e-6)  # noqa: E731
    i = 0
    while f"blocks.{i}.norm1.weight" in sd:
        b = f"blocks.{i}."
        qkv = F.linear(ln(x, b + "norm1"), sd[b + "attn.qkv.weight"], sd[b + "attn.qkv.bias"])
        q, k, v = qkv.reshape(G, L, 3, heads, D // heads).permute(2, 0, 3, 1, 4)
        attn = ((q * (D // heads) ** -0.5) @ k.transpose(-2, -1)).softmax(-1)
        out = (attn @ v).transpose(1, 2).reshape(G, L, D)
        x = x + F.linear(out, sd[b + "attn.proj.weight"], sd[b + "attn.proj.bias"])
        h = F.gelu(F.linear(ln(x, b + "norm2"), sd[b + "mlp.fc1.weight"], sd[b + "mlp.fc1.bias"]))
        x = x + F.linear(h, sd[b + "mlp.fc2.weight"], sd[b + "mlp.fc2.bias"])
        i += 1
    return ln(x, "norm")[:, 1:]


@pytest.mark.parametrize("wrap", [False, True], ids=["hub_backbone", "training_checkpoint"])
def test_dino_weights_load_exactly_with_the_key_bias_dropped(tmp_path, wrap):
    teacher = ImageViT(embed_dim=32, depth=2, num_heads=2, img_size=32, patch_size=16)
    state = dino_checkpoint(teacher, seed=1, wrap=wrap)
    torch.save(state, tmp_path / "dino.pth")
    load_teacher_weights(teacher, tmp_path / "dino.pth")
    plain = state["teacher"] if wrap else state
    plain = {k.removeprefix("backbone."): v for k, v in plain.items() if not k.startswith("head.")}
    images_GCHW = torch.randn(3, 3, 32, 32, generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        got = teacher.patch_tokens(images_GCHW)
    torch.testing.assert_close(
        got, reference_dino_tokens(plain, images_GCHW, 2), rtol=1e-4, atol=1e-5
    )


def test_a_dino_file_missing_backbone_keys_is_an_error(tmp_path):
    teacher = ImageViT(embed_dim=32, depth=2, num_heads=2, img_size=32, patch_size=16)
    state = dino_checkpoint(teacher, seed=1, wrap=False)
    del state["blocks.1.mlp.fc2.weight"]
    state["blocks.0.attn.extra"] = torch.zeros(1)
    torch.save(state, tmp_path / "dino.pth")
    with pytest.raises(ValueError, match=r"missing \['blocks.1.mlp.fc2.weight'\].*attn.extra"):
        load_teacher_weights(teacher, tmp_path / "dino.pth")


def test_a_224_position_table_is_resized_to_the_teachers_grid(tmp_path):
    source = ImageViT(embed_dim=32, depth=1, num_heads=2, img_size=64, patch_size=16)  # 4x4
    torch.save(dino_checkpoint(source, seed=3, wrap=False), tmp_path / "dino.pth")
    teacher = ImageViT(embed_dim=32, depth=1, num_heads=2, img_size=32, patch_size=16)  # 2x2
    load_teacher_weights(teacher, tmp_path / "dino.pth")
    assert tuple(teacher.pos_embed.shape) == (1, 5, 32)


def test_a_checkpoint_with_another_patch_size_is_an_error(tmp_path):
    source = ImageViT(embed_dim=32, depth=1, num_heads=2, img_size=32, patch_size=16)
    torch.save(dino_checkpoint(source, seed=3, wrap=False), tmp_path / "dino.pth")
    teacher = ImageViT(embed_dim=32, depth=1, num_heads=2, img_size=32, patch_size=8)
    with pytest.raises(ValueError, match="patch embedding"):
        load_teacher_weights(teacher, tmp_path / "dino.pth")


# ------------------------------------------------------------------------------ gradient flow


def grads(loss: torch.Tensor, params: dict) -> dict:
    got = torch.autograd.grad(loss, list(params.values()), retain_graph=True, allow_unused=True)
    return {n: g for n, g in zip(params, got, strict=True)}


def nonzero(g) -> bool:
    return g is not None and g.abs().sum() > 0


@pytest.mark.parametrize("target", ["mlp", "dino"])
def test_gradient_flow_follows_the_official_stop_gradients(target):
    torch.manual_seed(0)
    model = tiny(target=target)
    terms = model.loss_terms(batch_of(clip()))
    params = {n: p for n, p in model.named_parameters() if p.requires_grad}
    g1, g2 = grads(terms.projection, params), grads(terms.prediction, params)
    video = [n for n in params if n.split(".")[0] in ("backbone", "encoder_to_decoder", "mask_token", "decoder")]  # fmt: skip
    phi = [n for n in params if n.startswith("head.")]
    assert len(video) > 10 and len(phi) == (8 if target == "mlp" else 0)
    assert all(g1[n] is None for n in video)  # the encoder/decoder learn from L2 only
    assert all(nonzero(g2[n]) for n in video)
    assert nonzero(g1["prototypes"]) and g2["prototypes"] is None  # C from L1 only
    assert all(nonzero(g1[n]) and g2[n] is None for n in phi)  # the MLP phi from L1 only


# ------------------------------------------------------------------------------ a step


@pytest.mark.parametrize("target", ["mlp", "dino"])
def test_a_step_is_finite_and_every_trainable_parameter_gets_a_gradient(target):
    torch.manual_seed(0)
    model = tiny(target=target)
    out = model(batch_of(clip(4)))
    assert out.loss.ndim == 0 and out.loss.dtype == torch.float32 and torch.isfinite(out.loss)
    assert set(out.metrics) == {"loss_projection", "loss_prediction", "codes_used", "acc"}
    torch.testing.assert_close(
        out.loss.detach(), out.metrics["loss_projection"] + out.metrics["loss_prediction"]
    )
    assert 0 < out.metrics["codes_used"] <= 1 and 0 <= out.metrics["acc"] <= 1
    assert 0.8 * 2 * math.log(16) < out.loss.item() < 1.5 * 2 * math.log(16)  # ~2 ln K (loose)
    out.loss.backward()
    for name, p in model.named_parameters():
        if p.requires_grad:
            assert p.grad is not None and torch.isfinite(p.grad).all(), name
            assert p.grad.abs().sum() > 0, name


def test_loss_does_not_depend_on_the_batch_order():
    torch.manual_seed(0)
    model = tiny().eval()
    clip_BCTHW, k = clip(3), keys(3)
    perm = torch.tensor([2, 0, 1])
    a = model(batch_of(clip_BCTHW, k)).loss
    b = model(batch_of(clip_BCTHW[perm], k[perm])).loss
    torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-5)


def test_the_loss_falls_on_a_fixed_batch():
    torch.manual_seed(0)
    model = tiny(num_prototypes=8)
    opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-3)
    batch = batch_of(clip(4))
    losses = []
    for _ in range(15):
        loss = model(batch).loss
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < losses[0] - 0.3, losses


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_cuda_bf16_step_matches_cpu():
    torch.manual_seed(0)
    model = tiny().eval()
    batch = batch_of(clip(2))
    cpu = model(batch).loss
    model = model.cuda()
    with torch.autocast("cuda", dtype=torch.bfloat16):
        out = model(batch.to("cuda"))
    assert out.loss.dtype == torch.float32
    torch.testing.assert_close(out.loss.cpu(), cpu, rtol=0.05, atol=0.05)
