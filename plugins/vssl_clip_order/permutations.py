"""Clip-order classes: permutations of n clips and their labels, drawn per sample from its key.

VCOP (xudejing/video-clip-order-prediction @ f7353de, ``datasets/ucf101.py``) labels a shuffled
tuple by the index of its order (pi_0, ..., pi_{n-1}) in ``itertools.permutations(range(n))``,
i.e. lexicographic order: for n = 3, (0,1,2) -> 0, (0,2,1) -> 1, (1,0,2) -> 2, (1,2,0) -> 3,
(2,0,1) -> 4, (2,1,0) -> 5. Slot j of the shuffled tuple holds original clip pi_j.

Shape legend: B batch, N clips per tuple, P permutations (N!).
"""

import itertools
import math
from collections.abc import Sequence

import torch

from vssl_core.random import keyed_uniform

__all__ = ["ORDER_STREAM", "draw_orders", "inverse", "permutation_index", "permutation_table"]

ORDER_STREAM = 0x56434F50  # "VCOP": separates order draws from other keyed draws


def permutation_table(n: int) -> torch.Tensor:
    """All orders of ``n`` clips [P, N], row y = the label-y permutation (lexicographic)."""
    return torch.tensor(list(itertools.permutations(range(n))), dtype=torch.long).reshape(-1, n)


def permutation_index(order: Sequence[int]) -> int:
    """The label of ``order``: its rank among the permutations in lexicographic order (its
    Lehmer code read in the factorial number system), without enumerating all n! of them."""
    items = list(order)
    if sorted(items) != list(range(len(items))):
        raise ValueError(f"{items} is not a permutation of 0..{len(items) - 1}")
    rank = 0
    for i, value in enumerate(items):
        smaller_later = sum(v < value for v in items[i + 1 :])
        rank += smaller_later * math.factorial(len(items) - 1 - i)
    return rank


def inverse(order_BN: torch.Tensor) -> torch.Tensor:
    """The inverse permutations [B, N]: shuffled[inverse] gives the original order back."""
    return torch.argsort(order_BN, dim=-1)


def draw_orders(keys_B: torch.Tensor, table_PN: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """One uniform order per sample from its key: labels [B] in [0, P) and orders [B, N]
    (= ``table_PN[labels]``); row b depends only on ``keys_B[b]``."""
    P = table_PN.shape[0]
    u_B = keyed_uniform(keys_B, 1, stream=ORDER_STREAM)[:, 0]
    labels_B = (u_B * P).long().clamp_(max=P - 1)
    return labels_B, table_PN.to(keys_B.device)[labels_B]
