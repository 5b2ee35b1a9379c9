"""Model size and cost per clip (`vssl info`): parameters, and FLOPs counted by fvcore.

fvcore counts one fused multiply-add as one FLOP (so its "FLOPs" are MACs); the hardware-peak
convention is twice that. fvcore has no handler for ``scaled_dot_product_attention``; we add one
that counts its two matmuls (q k^T and attn v) in the same convention.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from numbers import Number
from typing import Any

import torch
from fvcore.nn import FlopCountAnalysis
from torch import nn

from vssl_core.interfaces import Batch, ViewSpec
from vssl_core.random import sample_key


def _shape(value: Any) -> list[int]:
    return list(value.type().sizes())


def sdpa_flop(inputs: list[Any], outputs: list[Any]) -> Number:
    """q [.., Nq, d], k [.., Nk, d], v [.., Nk, dv]: Nq*Nk*d + Nq*Nk*dv multiply-adds per head."""
    q, k, v = (_shape(x) for x in inputs[:3])
    batch_heads = 1
    for s in q[:-2]:
        batch_heads *= s
    nq, d, nk, dv = q[-2], q[-1], k[-2], v[-1]
    return batch_heads * nq * nk * (d + dv)


HANDLES = {"aten::scaled_dot_product_attention": sdpa_flop}


@dataclass
class ModelInfo:
    backbone_params: int
    objective_params: int  # everything trained: backbone + the objective's own modules
    trainable_params: int
    backbone_flops: int | None
    objective_flops: int | None
    input_shape: tuple[int, ...]
    unsupported_ops: dict[str, int]


def count_flops(module: nn.Module, inputs: tuple) -> tuple[int, dict[str, int]]:
    analysis = FlopCountAnalysis(module, inputs).set_op_handle(**HANDLES)
    analysis.unsupported_ops_warnings(False).uncalled_modules_warnings(False)
    with warnings.catch_warnings():  # fvcore traces with torch.jit, which warns about itself
        warnings.simplefilter("ignore")
        return int(analysis.total()), dict(analysis.unsupported_ops())


class _ObjectiveOnClip(nn.Module):
    """Lets fvcore trace ``objective(batch)`` from plain tensors (tracing needs tensor inputs)."""

    def __init__(self, objective: nn.Module):
        super().__init__()
        self.objective = objective

    def forward(self, keys: torch.Tensor, *clips: torch.Tensor) -> torch.Tensor:
        label = torch.zeros(keys.shape[0], dtype=torch.long)
        batch = Batch(clips=list(clips), label=label, index=label, keys=keys)
        return self.objective(batch).loss


def describe_model(objective: nn.Module, views: ViewSpec) -> ModelInfo:
    backbone = objective.backbone
    shape = (1, 3, views.frames, views.crop_size, views.crop_size)
    clip = torch.randn(shape)
    objective.eval()
    with torch.no_grad():
        bb_flops, unsupported = count_flops(backbone, (clip,))
        try:
            keys = torch.tensor([sample_key(0, 0, 0)])
            inputs = (keys, *[clip] * views.num_clips)
            obj_flops, more = count_flops(_ObjectiveOnClip(objective), inputs)
            unsupported.update(more)
        except Exception:  # an objective whose forward fvcore cannot trace: report the backbone
            obj_flops = None
    return ModelInfo(
        backbone_params=sum(p.numel() for p in backbone.parameters()),
        objective_params=sum(p.numel() for p in objective.parameters()),
        trainable_params=sum(p.numel() for p in objective.parameters() if p.requires_grad),
        backbone_flops=bb_flops,
        objective_flops=obj_flops,
        input_shape=shape,
        unsupported_ops=unsupported,
    )
