"""SIGMA: masked video modeling whose targets are Sinkhorn cluster assignments of learned features.

Paper: Salehi, Dorkenwald, Thoker, Gavves, Snoek, Asano, "SIGMA: Sinkhorn-Guided Masked Video
Modeling", ECCV 2024. Official code followed: QUVA-Lab/SIGMA @ 9876f09 (``modeling_pretrain.py``,
``engine_for_pretraining.py``, ``utils.py``), a fork of VideoMAE; spec videomae-sigma.md §2.

One step: VideoMAE's tube mask, encoder and decoder (``vssl_core.nn.masked_modeling``), but the
decoder head outputs a d-dim feature per masked tubelet instead of pixels. A projection phi
turns the same masked tubelets into target features (an MLP over normalized pixels, or a frozen
DINO image ViT). Both branches are scored against K learned prototypes (unit rows, renormalized
every step), Sinkhorn turns each branch's scores into balanced hard pseudo-labels, and each branch
predicts the other's labels (``loss.py``). Submodule names equal the official keys
(``encoder_to_decoder``, ``mask_token``, ``decoder.*``, ``prototypes``, ``head.{0,2,4,6}`` for the
MLP phi); the encoder lives under ``backbone.``; the frozen teacher is not saved.

Shape legend: B batch, C channels, T frames, H height, W width, N tokens, V visible tokens,
M masked tokens per clip, D encoder width, E decoder width, P pixels per token, F feature width
d, K prototypes.
"""

from itertools import chain
from pathlib import Path
from typing import Literal

import torch
import torch.nn.functional as F
from torch import nn

from vssl_core.interfaces import Batch, Objective, ObjectiveOutput, ViewSpec
from vssl_core.nn import (
    MaskedDecoder,
    decoder_input,
    default_decoder_heads,
    gather_tokens,
    masked_per_slot,
    order_visible_first,
    patchify_target,
    sinusoid_table,
    trunc_normal_sigma_,
    tube_mask,
)
from vssl_core.registry import component
from vssl_sigma.loss import SigmaLossTerms, sigma_loss
from vssl_sigma.projection import (
    DEFAULT_MLP_DIM,
    DEFAULT_MLP_HIDDEN,
    TEACHERS,
    image_teacher,
    load_teacher_weights,
    mlp_projection,
    teacher_targets,
)

__all__ = ["Sigma"]


@component("objective", name="sigma", requires=("token_mask",))
class Sigma(Objective):
    """SIGMA pretraining: tube-masked encoder, feature decoder, projection phi, prototypes and
    the symmetric swapped Sinkhorn loss."""

    def __init__(
        self,
        backbone: nn.Module,
        mask_ratio: float = 0.9,
        decoder_depth: int = 4,
        decoder_dim: int | None = None,
        decoder_heads: int | None = None,
        target: Literal["mlp", "dino"] = "mlp",
        normalize_target: bool = True,
        projection_dim: int | None = None,
        projection_hidden: list[int] | None = None,
        teacher: Literal["dino_s", "dino_b"] = "dino_b",
        teacher_weights: str | None = None,
        teacher_random_init: bool = False,
        num_prototypes: int = 3000,
        temperature: float = 0.1,
        epsilon: float = 0.05,
        sinkhorn_iterations: int = 10,
        soft_targets: bool = False,
        sampling_stride: int = 4,
        augmentation: Literal["none", "multiscale_crop", "random_resized_crop"] = "multiscale_crop",
    ) -> None:
        super().__init__()
        _check_backbone(backbone)
        _check_target_args(
            target, projection_dim, projection_hidden, teacher_weights, teacher_random_init
        )
        _check_loss_args(num_prototypes, temperature, epsilon, sinkhorn_iterations)
        frames, size, _ = backbone.input_size
        self._views = ViewSpec(  # built now so a bad stride/augmentation fails at build time
            frames=frames,
            crop_size=size,
            stride=sampling_stride,
            num_clips=1,
            augmentation=augmentation,
        )
        self.grid_size: tuple[int, int, int] = tuple(backbone.grid_size)
        self.mask_ratio = mask_ratio
        self.num_masked = self.grid_size[0] * masked_per_slot(self.grid_size, mask_ratio)
        if not 0 < self.num_masked < backbone.num_tokens:
            raise ValueError(
                f"sigma mask_ratio={mask_ratio} masks {self.num_masked} of {backbone.num_tokens} "
                f"tokens; choose a ratio in (0, 1) that masks at least one of the "
                f"{self.grid_size[1] * self.grid_size[2]} positions per slot and keeps one"
            )
        self.target, self.normalize_target = target, normalize_target
        self.tubelet_size, self.patch_size = backbone.tubelet_size, backbone.patch_size
        self.temperature, self.epsilon = temperature, epsilon
        self.sinkhorn_iterations, self.soft_targets = sinkhorn_iterations, soft_targets

        self.backbone = backbone
        self.teacher = None
        if target == "mlp":
            pixels = 3 * self.tubelet_size * self.patch_size**2
            hidden = DEFAULT_MLP_HIDDEN if projection_hidden is None else projection_hidden
            feature_dim = DEFAULT_MLP_DIM if projection_dim is None else projection_dim
            self.head = mlp_projection(pixels, hidden, feature_dim)  # official keys head.{0,2,..}
        else:
            feature_dim = TEACHERS[teacher][0]
            self.teacher = image_teacher(teacher, size, self.patch_size)
            if teacher_weights is not None:
                load_teacher_weights(self.teacher, teacher_weights)
            _exclude_from_checkpoints(self.teacher)

        embed_dim = backbone.embed_dim
        decoder_dim = embed_dim // 2 if decoder_dim is None else decoder_dim
        heads = default_decoder_heads(decoder_dim) if decoder_heads is None else decoder_heads
        self.encoder_to_decoder = nn.Linear(embed_dim, decoder_dim, bias=False)  # default init
        self.mask_token = nn.Parameter(trunc_normal_sigma_(torch.empty(1, 1, decoder_dim)))
        self.decoder = MaskedDecoder(decoder_dim, decoder_depth, heads, feature_dim)
        self.register_buffer(
            "decoder_pos_embed", sinusoid_table(backbone.num_tokens, decoder_dim), persistent=False
        )
        # randn like the official; 2-D, so AdamW decays it (it is renormalized every step anyway)
        self.prototypes = nn.Parameter(torch.randn(num_prototypes, feature_dim))

    def views(self) -> ViewSpec:
        return self._views

    def no_weight_decay(self) -> set[str]:
        """The official skip list adds ``mask_token``; the prototypes are decayed (as official)."""
        return super().no_weight_decay() | {"mask_token"}

    def train(self, mode: bool = True) -> "Sigma":
        """The frozen teacher stays in eval mode whatever the trainer asks."""
        super().train(mode)
        if self.teacher is not None:
            self.teacher.eval()
        return self

    def forward(self, batch: Batch) -> ObjectiveOutput:
        terms = self.loss_terms(batch)
        used_K = torch.zeros(self.prototypes.shape[0], device=terms.total.device)
        used_K.index_fill_(0, terms.labels_projection_M, 1.0)  # no host sync, unlike unique()
        metrics = {
            "loss_projection": terms.projection.detach(),  # L1: phi predicts the decoder's codes
            "loss_prediction": terms.prediction.detach(),  # L2: decoder predicts phi's codes
            "codes_used": used_K.mean(),  # fraction of prototypes phi's tokens are assigned to
            "acc": terms.acc,  # the decoder predicts the prototype of phi's code (chance ~1/K)
        }
        return ObjectiveOutput(loss=terms.total, metrics=metrics)

    def loss_terms(self, batch: Batch) -> SigmaLossTerms:
        """Both loss terms with their graphs (``forward`` sums them)."""
        clip_BCTHW = batch.clips[0]
        B = clip_BCTHW.shape[0]
        assert batch.keys.shape == (B,), f"keys {list(batch.keys.shape)} for a batch of {B}"
        with torch.no_grad():  # official: in-place row normalization at the start of forward
            self.prototypes.copy_(F.normalize(self.prototypes, dim=1))
        mask_BN = tube_mask(batch.keys.to(clip_BCTHW.device), self.grid_size, self.mask_ratio)
        order_BN = order_visible_first(mask_BN)
        masked_BM = order_BN[:, -self.num_masked :]  # masked tokens, ascending

        projected_BMF = self.project(clip_BCTHW, masked_BM)
        visible_BVD = self.backbone.forward_features(
            clip_BCTHW, mask_BN=mask_BN, num_visible=mask_BN.shape[1] - self.num_masked
        )
        tokens_BNE = decoder_input(
            self.encoder_to_decoder(visible_BVD), self.mask_token, self.decoder_pos_embed, order_BN
        )
        predicted_BMF = self.decoder(tokens_BNE, num_predict=self.num_masked)
        assert predicted_BMF.shape == projected_BMF.shape, (
            f"decoder output {list(predicted_BMF.shape)} vs targets {list(projected_BMF.shape)}"
        )
        width = predicted_BMF.shape[-1]
        return sigma_loss(
            projected_BMF.reshape(-1, width),
            predicted_BMF.reshape(-1, width),
            self.prototypes,
            self.temperature,
            self.epsilon,
            self.sinkhorn_iterations,
            self.soft_targets,
        )

    def project(self, clip_BCTHW: torch.Tensor, masked_BM: torch.Tensor) -> torch.Tensor:
        """Target features [B, M, F] of the masked tubelets: phi of a no-grad input."""
        with torch.no_grad():
            if self.teacher is not None:
                features_BNF = teacher_targets(
                    self.teacher, clip_BCTHW, self.tubelet_size, self.normalize_target
                )
                return gather_tokens(features_BNF, masked_BM)
            pixels_BMP = patchify_target(
                clip_BCTHW,
                self.tubelet_size,
                self.patch_size,
                self._views.mean,
                self._views.std,
                normalize=self.normalize_target,
                index_BK=masked_BM,
            ).to(clip_BCTHW.dtype)
        return self.head(pixels_BMP)  # phi is per token: masked tokens only, as the official


# ---------------------------------------------------------------------------------- helpers


def _check_backbone(backbone: nn.Module) -> None:
    if "token_mask" not in getattr(backbone, "capabilities", frozenset()):
        raise ValueError(
            f"sigma needs a backbone with token masking (capability 'token_mask'); "
            f"{type(backbone).__name__} has {sorted(getattr(backbone, 'capabilities', ()))}. "
            "Use a ViT backbone: vit_tiny, vit_small, vit_base or vit_large."
        )
    _, height, width = backbone.input_size
    if height != width:
        raise ValueError(f"sigma needs square crops; backbone input is {height}x{width}")


def _check_target_args(
    target: str,
    projection_dim: int | None,
    projection_hidden: list[int] | None,
    teacher_weights: str | None,
    teacher_random_init: bool,
) -> None:
    if target == "mlp":
        if teacher_weights is not None or teacher_random_init:
            raise ValueError(
                "sigma teacher_weights/teacher_random_init apply to target: dino only; "
                "remove them or set target: dino"
            )
        if projection_dim is not None and projection_dim < 1:
            raise ValueError(f"sigma projection_dim must be >= 1, got {projection_dim}")
        if projection_hidden is not None and any(h < 1 for h in projection_hidden):
            raise ValueError(f"sigma projection_hidden widths must be >= 1: {projection_hidden}")
        return
    if projection_dim is not None or projection_hidden is not None:
        raise ValueError(
            "sigma projection_dim/projection_hidden shape the MLP phi (target: mlp); with "
            "target: dino the feature width is the teacher's (dino_s 384, dino_b 768): remove them"
        )
    if teacher_weights is None and not teacher_random_init:
        raise ValueError(
            "sigma target: dino needs teacher_weights: <path to a DINO v1 ViT backbone file, e.g. "
            "dino_vitbase16_pretrain.pth>. A randomly initialized teacher gives meaningless "
            "targets; set teacher_random_init: true only for tests"
        )
    if teacher_weights is not None and teacher_random_init:
        raise ValueError("sigma: give teacher_weights or teacher_random_init: true, not both")
    if teacher_weights is not None and not Path(teacher_weights).is_file():
        raise FileNotFoundError(  # before building an 86M-parameter teacher
            f"sigma teacher_weights {teacher_weights!r} is not a file; download the DINO "
            "backbone (e.g. dino_vitbase16_pretrain.pth from the DINO repository) and give its path"
        )


def _check_loss_args(
    num_prototypes: int, temperature: float, epsilon: float, iterations: int
) -> None:
    checks = {  # name: (value, valid, rule)
        "num_prototypes": (num_prototypes, num_prototypes >= 2, ">= 2 (the paper uses 3000)"),
        "temperature": (temperature, temperature > 0, "> 0 (the paper uses 0.1)"),
        "epsilon": (epsilon, epsilon > 0, "> 0 (0.05; 0.03 for SSv2 ViT-B)"),
        "sinkhorn_iterations": (iterations, iterations >= 1, ">= 1 (the paper uses 10)"),
    }
    for name, (value, ok, rule) in checks.items():
        if not ok:
            raise ValueError(f"sigma {name}={value}: must be {rule}")


def _exclude_from_checkpoints(module: nn.Module) -> None:
    """Leave a frozen module's tensors out of ``state_dict()`` (the official checkpoints hold no
    teacher), and let ``load_state_dict`` accept their absence (they come from
    ``teacher_weights`` when the objective is built)."""

    def drop(mod, state_dict, prefix, local_metadata):
        for key in [k for k in state_dict if k.startswith(prefix)]:
            del state_dict[key]

    def fill(mod, state_dict, prefix, local_metadata, strict, missing, unexpected, errors):
        for name, tensor in chain(mod.named_parameters(), mod.named_buffers()):
            state_dict.setdefault(prefix + name, tensor.detach())

    module.register_state_dict_post_hook(drop)
    module.register_load_state_dict_pre_hook(fill)
