"""VideoMAE tube masking, drawn on the device from per-sample keys.

Follows ``TubeMaskingGenerator`` of the official code (MCG-NJU/VideoMAE ``masking_generator.py``):
one spatial mask of ``int(mask_ratio * H'W')`` positions per clip, repeated over every temporal
slot. The official draw is a numpy shuffle in the data loader; here the positions with the
smallest keyed noise are masked, so a sample's mask depends only on its key (not on its rank,
batch or worker) and costs nothing in the loader. Same distribution: a uniform m-subset.

Shape legend: B batch, T' temporal slots, S = H' * W' spatial positions, N = T' * S tokens.
"""

import torch

from vssl_core.random import keyed_uniform

MASK_STREAM = 0  # keyed_uniform stream of the mask noise


def masked_per_slot(grid: tuple[int, int, int], mask_ratio: float) -> int:
    """How many spatial positions a tube mask hides: ``int(mask_ratio * H' * W')`` (floor)."""
    _, h, w = grid
    return int(mask_ratio * h * w)


def tube_mask(
    keys_B: torch.Tensor, grid: tuple[int, int, int], mask_ratio: float, stream: int = MASK_STREAM
) -> torch.Tensor:
    """Boolean tube mask [B, N] (True = masked) over a (T', H', W') token grid, flattened in
    (t, h, w) order; row b depends only on ``keys_B[b]``. Runs on the device of ``keys_B``."""
    t, h, w = grid
    num_masked = masked_per_slot(grid, mask_ratio)
    if not 0 < num_masked < h * w:
        raise ValueError(
            f"mask_ratio={mask_ratio} masks {num_masked} of the {h * w} positions of a {h}x{w} "
            "slot; it must mask at least one and keep at least one (VideoMAE uses 0.9)"
        )
    noise_BS = keyed_uniform(keys_B, h * w, stream=stream)
    # stable: ties in the 24-bit noise break by position, identically on every device
    order_BS = torch.argsort(noise_BS, dim=1, stable=True)
    rank_BS = torch.argsort(order_BS, dim=1)  # each position's rank in the noise order
    mask_BS = rank_BS < num_masked
    return mask_BS.unsqueeze(1).expand(-1, t, -1).reshape(mask_BS.shape[0], t * h * w)
