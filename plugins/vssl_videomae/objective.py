"""VideoMAE: masked video autoencoding with tube masking and normalized-pixel targets.

Paper: Tong, Song, Wang, Wang, "VideoMAE: Masked Autoencoders are Data-Efficient Learners for
Self-Supervised Video Pre-Training", NeurIPS 2022. Official code followed: MCG-NJU/VideoMAE @
14ef8d8 (``modeling_pretrain.py`` ``PretrainVisionTransformer``, ``engine_for_pretraining.py``,
``masking_generator.py``); the mask, target and decoder live in ``vssl_core.nn.masked_modeling``
(shared with SIGMA). Submodule names (``encoder_to_decoder``, ``mask_token``,
``decoder.{blocks,norm,head}``) equal the official keys; the encoder lives under ``backbone.``
where the official checkpoint says ``encoder.``.

One step: a tube mask hides ~90% of the tubelets; the encoder sees the visible ones; the decoder
gets [visible tokens..., mask tokens...] (each group in ascending token order) plus its own
sinusoid table gathered in that order, and regresses the normalized pixels of the masked
tubelets; the loss is the MSE over masked tubelets only.

With ``uint8_input`` the objective takes the loader's uint8 clips (``ViewSpec.normalized``
False) and normalizes them in its forward; the target is standardized from the integer pixels
(x / 255 standardized with eps equals x standardized with 255 eps). Under ``train.compile`` the
normalization then fuses into the visible tubelets' gather, the full float clip is never
written, and the target's gather reads 1 byte per pixel instead of 4. Same numbers up to float
rounding (the encoder's input is bit for bit the same).

Shape legend: B batch, C channels, T frames, H height, W width, N tokens, V visible tokens,
M masked tokens, D encoder width, E decoder width, P pixels per token (3 * tubelet * patch^2).
"""

from typing import Literal

import torch
import torch.nn.functional as F
from torch import nn

from vssl_core.data.clips import normalize_uint8
from vssl_core.interfaces import Batch, Objective, ObjectiveOutput, ViewSpec
from vssl_core.nn import (
    MaskedDecoder,
    decoder_input,
    default_decoder_heads,
    masked_per_slot,
    order_visible_first,
    patchify_target,
    sinusoid_table,
    trunc_normal_sigma_,
    tube_mask,
)
from vssl_core.registry import component

__all__ = ["VideoMAE"]


def _require_token_mask(backbone: nn.Module) -> None:
    if "token_mask" not in getattr(backbone, "capabilities", frozenset()):
        raise ValueError(
            f"videomae needs a backbone with token masking (capability 'token_mask'); "
            f"{type(backbone).__name__} has {sorted(getattr(backbone, 'capabilities', ()))}. "
            "Use a ViT backbone: vit_tiny, vit_small, vit_base or vit_large."
        )


@component("objective", name="videomae", requires=("token_mask",))
class VideoMAE(Objective):
    """VideoMAE pretraining: tube-masked encoder, shallow decoder, normalized-pixel MSE."""

    def __init__(
        self,
        backbone: nn.Module,
        mask_ratio: float = 0.9,
        decoder_depth: int = 4,
        decoder_dim: int | None = None,
        decoder_heads: int | None = None,
        normalize_target: bool = True,
        sampling_stride: int = 4,
        augmentation: Literal["none", "multiscale_crop", "random_resized_crop"] = "multiscale_crop",
        uint8_input: bool = False,
    ) -> None:
        super().__init__()
        _require_token_mask(backbone)
        frames, height, width = backbone.input_size
        if height != width:
            raise ValueError(f"videomae needs square crops; backbone input is {height}x{width}")
        self._views = ViewSpec(  # built now so a bad stride/augmentation fails at build time
            frames=frames,
            crop_size=height,
            stride=sampling_stride,
            num_clips=1,
            augmentation=augmentation,
            normalized=not uint8_input,
        )
        self.grid_size: tuple[int, int, int] = tuple(backbone.grid_size)
        self.mask_ratio = mask_ratio
        self.num_masked = self.grid_size[0] * masked_per_slot(self.grid_size, mask_ratio)
        if not 0 < self.num_masked < backbone.num_tokens:
            raise ValueError(
                f"videomae mask_ratio={mask_ratio} masks {self.num_masked} of "
                f"{backbone.num_tokens} tokens; choose a ratio in (0, 1) that masks at least one "
                f"of the {self.grid_size[1] * self.grid_size[2]} positions per slot and keeps one"
            )
        self.normalize_target = normalize_target
        self.tubelet_size, self.patch_size = backbone.tubelet_size, backbone.patch_size

        embed_dim = backbone.embed_dim
        decoder_dim = embed_dim // 2 if decoder_dim is None else decoder_dim
        decoder_heads = (
            default_decoder_heads(decoder_dim) if decoder_heads is None else decoder_heads
        )
        pixels = 3 * self.tubelet_size * self.patch_size**2

        self.backbone = backbone
        self.encoder_to_decoder = nn.Linear(embed_dim, decoder_dim, bias=False)  # default init
        self.mask_token = nn.Parameter(trunc_normal_sigma_(torch.empty(1, 1, decoder_dim)))
        self.decoder = MaskedDecoder(decoder_dim, decoder_depth, decoder_heads, pixels)
        self.register_buffer(
            "decoder_pos_embed",
            sinusoid_table(backbone.num_tokens, decoder_dim),
            persistent=False,
        )

    def views(self) -> ViewSpec:
        return self._views

    def no_weight_decay(self) -> set[str]:
        """The official skip list adds ``mask_token`` (3-D, so the 1-D rule would miss it)."""
        return super().no_weight_decay() | {"mask_token"}

    def forward(self, batch: Batch) -> ObjectiveOutput:
        pixels_BCTHW = clip_BCTHW = batch.clips[0]
        B = clip_BCTHW.shape[0]
        assert batch.keys.shape == (B,), f"keys {list(batch.keys.shape)} for a batch of {B}"
        mean, std = self._views.mean, self._views.std
        if clip_BCTHW.dtype == torch.uint8:  # uint8_input: normalized here, inside the graph
            clip_BCTHW = normalize_uint8(pixels_BCTHW, mean, std)
            mean, std = (0.0, 0.0, 0.0), (1 / 255, 1 / 255, 1 / 255)  # the target's: x / 255
        mask_BN = tube_mask(batch.keys.to(clip_BCTHW.device), self.grid_size, self.mask_ratio)
        order_BN = order_visible_first(mask_BN)
        with torch.no_grad():  # the masked tubelets' targets, in ascending token order
            target_BMP = patchify_target(
                pixels_BCTHW,
                self.tubelet_size,
                self.patch_size,
                mean,
                std,
                normalize=self.normalize_target,
                index_BK=order_BN[:, -self.num_masked :],
            )

        visible_BVD = self.backbone.forward_features(
            clip_BCTHW, mask_BN=mask_BN, num_visible=mask_BN.shape[1] - self.num_masked
        )
        pred_BMP = self.decode(self.encoder_to_decoder(visible_BVD), order_BN)
        assert pred_BMP.shape == target_BMP.shape, (
            f"decoder output {list(pred_BMP.shape)} vs target {list(target_BMP.shape)}"
        )
        loss = F.mse_loss(pred_BMP.float(), target_BMP.float())  # masked tubelets only, fp32
        return ObjectiveOutput(loss=loss, metrics={})

    def decode(self, visible_BVE: torch.Tensor, order_BN: torch.Tensor) -> torch.Tensor:
        """Predictions [B, M, P] for the masked tokens, in ascending token order."""
        M = self.num_masked
        assert visible_BVE.shape[1] + M == order_BN.shape[1], (
            f"{visible_BVE.shape[1]} visible + {M} masked != {order_BN.shape[1]} tokens"
        )
        tokens_BNE = decoder_input(visible_BVE, self.mask_token, self.decoder_pos_embed, order_BN)
        return self.decoder(tokens_BNE, num_predict=M)
