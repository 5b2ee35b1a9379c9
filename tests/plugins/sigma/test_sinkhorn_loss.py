"""SIGMA's Sinkhorn-Knopp and swapped-prediction loss (spec videomae-sigma.md §2.4-2.6, §3, §5).

Shape legend: M tokens, K prototypes, D feature width.
"""

import math

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
import torch.nn.functional as F
from vssl_sigma.loss import prototype_scores, sigma_loss, swapped_cross_entropy
from vssl_sigma.sinkhorn import (
    MAX_KERNEL_RANGE,
    TOKEN_BLOCK,
    _Scaling,
    _sum_over_tokens,
    sinkhorn,
    sinkhorn_labels,
)


def random_scores(M: int, K: int, seed: int = 0) -> torch.Tensor:
    """Cosine similarities of random unit features and prototypes, [M, K]."""
    g = torch.Generator().manual_seed(seed)
    z = F.normalize(torch.randn(M, 16, generator=g), dim=1)
    c = F.normalize(torch.randn(K, 16, generator=g), dim=1)
    return z @ c.t()


def official_sinkhorn(scores_MK: torch.Tensor, eps: float, iters: int, column_target: float):
    """The official SIGMA/SwAV iteration in float64 without the log domain: normalize the total,
    then rows to 1/K and columns to ``column_target`` (SwAV 1/B, SIGMA W/M), finally columns to 1."""
    P_KM = torch.exp(scores_MK.double() / eps).t()
    P_KM /= P_KM.sum()
    K = P_KM.shape[0]
    for _ in range(iters):
        P_KM /= P_KM.sum(dim=1, keepdim=True) * K
        P_KM /= P_KM.sum(dim=0, keepdim=True) / column_target
    return (P_KM / P_KM.sum(dim=0, keepdim=True)).t()


# ------------------------------------------------------------------------------ sinkhorn


@pytest.mark.parametrize("M, K", [(600, 30), (2000, 100), (64, 64)])
def test_every_token_code_sums_to_one_and_prototypes_are_balanced(M, K):
    q_MK = sinkhorn(random_scores(M, K), epsilon=0.05, iterations=10)
    assert q_MK.shape == (M, K) and q_MK.dtype == torch.float32
    torch.testing.assert_close(q_MK.sum(dim=1), torch.ones(M), rtol=0, atol=1e-5)
    mass_K = q_MK.sum(dim=0)
    assert (mass_K / (M / K) - 1).abs().max() < 0.05, mass_K  # ~M/K each after 10 iterations


@pytest.mark.parametrize("column_target", [1 / 500, 4 / 500, 1.0, 37.5])  # SwAV, SIGMA W/M, ...
def test_equals_the_official_iteration_whatever_the_column_marginal(column_target):
    scores_MK = random_scores(500, 40, seed=1)
    ours_MK = sinkhorn(scores_MK, epsilon=0.05, iterations=10)
    ref_MK = official_sinkhorn(scores_MK, 0.05, 10, column_target)
    torch.testing.assert_close(ours_MK.double(), ref_MK, rtol=1e-4, atol=1e-6)


def test_stays_finite_where_the_plain_exponential_overflows_float32():
    scores_MK = random_scores(300, 20) * 1.5  # exp(1.5 / 0.01) = exp(150) > float32 max
    assert not torch.isfinite(torch.exp(scores_MK / 0.01)).all()
    q_MK = sinkhorn(scores_MK, epsilon=0.01, iterations=10)
    assert torch.isfinite(q_MK).all()
    torch.testing.assert_close(q_MK.sum(dim=1), torch.ones(300), rtol=0, atol=1e-5)


def test_runs_in_float32_without_gradient_from_half_precision_scores():
    scores_MK = random_scores(100, 10).half().requires_grad_()
    q_MK = sinkhorn(scores_MK, epsilon=0.05, iterations=3)
    assert q_MK.dtype == torch.float32 and not q_MK.requires_grad


def test_is_equivariant_to_a_permutation_of_the_tokens():
    scores_MK = random_scores(200, 16)
    perm = torch.randperm(200, generator=torch.Generator().manual_seed(0))
    q_MK = sinkhorn(scores_MK, 0.05, 10)
    torch.testing.assert_close(sinkhorn(scores_MK[perm], 0.05, 10), q_MK[perm])


@pytest.mark.parametrize("epsilon", [0.05, 0.03, 0.025])  # SIGMA's K400 / SSv2 ViT-B; the limit
def test_the_kernel_path_for_cosines_equals_the_official_iteration(epsilon):
    scores_MK = random_scores(500, 40, seed=2)
    assert _Scaling(scores_MK, epsilon, 1.0, None, False).use_kernel
    ours_MK = sinkhorn(scores_MK, epsilon, 10, score_bound=1.0)
    torch.testing.assert_close(
        ours_MK.double(), official_sinkhorn(scores_MK, epsilon, 10, 1.0), rtol=1e-4, atol=1e-6
    )
    torch.testing.assert_close(ours_MK, sinkhorn(scores_MK, epsilon, 10), rtol=1e-4, atol=1e-6)


def test_the_kernel_keeps_a_prototype_every_token_scores_at_minus_one():
    """At the largest kernel range (2 / eps = 80) a prototype opposite to every token has kernel
    entries e^-80 only: its sums must stay finite and its codes equal the float64 reference."""
    epsilon = 2 / MAX_KERNEL_RANGE
    scores_MK = random_scores(300, 20, seed=4)
    scores_MK[:, 0] = -1.0
    scores_MK[0, 1:] = 1.0  # and one token at the upper bound for every other prototype
    ours_MK = sinkhorn(scores_MK, epsilon, 10, score_bound=1.0)
    assert torch.isfinite(ours_MK).all()
    torch.testing.assert_close(
        ours_MK.double(), official_sinkhorn(scores_MK, epsilon, 10, 1.0), rtol=1e-4, atol=1e-6
    )
    assert ours_MK.sum(dim=0)[0] > 300 / 20 / 2  # still gets about its share (15), not zero


@pytest.mark.parametrize("M", [3 * TOKEN_BLOCK, 3 * TOKEN_BLOCK + 17, 100])
def test_the_token_sum_adds_whole_blocks_and_the_rest(M):
    g = torch.Generator().manual_seed(M)
    w_M, kernel_MK = torch.rand(M, generator=g), torch.rand(M, 6, generator=g)
    torch.testing.assert_close(
        _sum_over_tokens(w_M, kernel_MK).double(),
        w_M.double() @ kernel_MK.double(),
        rtol=1e-5,  # float32 rounding; a dropped remainder of 17 tokens would be 1e-3 off
        atol=0,
    )


def test_the_kernel_path_stays_accurate_over_a_paper_sized_token_count():
    """SIGMA ViT-B balances ~576k tokens per step. A float32 vector-matrix product accumulated
    in sequence over 200k tokens puts the codes 1e-4 off; summed in blocks they stay ~5e-6 off
    float64."""
    scores_MK = random_scores(200_000, 16, seed=7)
    ours_MK = sinkhorn(scores_MK, 0.05, 10, score_bound=1.0).double()
    ref_MK = official_sinkhorn(scores_MK, 0.05, 10, 1.0)
    assert ((ours_MK - ref_MK).abs() / ref_MK).max() < 2e-5
    assert torch.equal(ours_MK.argmax(dim=1), ref_MK.argmax(dim=1))


def test_a_kernel_range_beyond_float32_falls_back_to_log_sum_exp():
    scores_MK = random_scores(300, 20)
    assert not _Scaling(scores_MK, 0.01, 1.0, None, False).use_kernel  # 2 / 0.01 = 200 > 80
    assert not _Scaling(scores_MK, 0.05, None, None, False).use_kernel  # no bound: any scores
    q_MK = sinkhorn(scores_MK, epsilon=0.01, iterations=10, score_bound=1.0)
    torch.testing.assert_close(
        q_MK.double(), official_sinkhorn(scores_MK, 0.01, 10, 1.0), rtol=1e-4, atol=1e-6
    )


@pytest.mark.parametrize("score_bound, epsilon", [(None, 0.05), (1.0, 0.05), (1.0, 0.01)])
def test_labels_are_the_argmax_of_the_codes(score_bound, epsilon):
    scores_MK = random_scores(700, 50, seed=5)
    labels_M = sinkhorn_labels(scores_MK, epsilon, 10, score_bound=score_bound)
    assert labels_M.dtype == torch.int64 and labels_M.shape == (700,)
    codes_MK = sinkhorn(scores_MK, epsilon, 10, score_bound=score_bound)
    torch.testing.assert_close(labels_M, codes_MK.argmax(dim=1), rtol=0, atol=0)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
@pytest.mark.parametrize("score_bound", [None, 1.0], ids=["log_sum_exp", "kernel"])
def test_on_cuda_both_paths_equal_the_official_iteration(score_bound):
    """The device's kernels (blocked bmm, logsumexp) over more tokens than one block, with
    bf16-rounded scores as autocast would hand them: codes match float64, labels their argmax."""
    scores_MK = random_scores(3 * TOKEN_BLOCK + 5, 60, seed=8).bfloat16().float()
    codes_MK = sinkhorn(scores_MK.cuda(), 0.05, 10, score_bound=score_bound)
    labels_M = sinkhorn_labels(scores_MK.cuda(), 0.05, 10, score_bound=score_bound)
    ref_MK = official_sinkhorn(scores_MK, 0.05, 10, 1.0)
    torch.testing.assert_close(codes_MK.cpu().double(), ref_MK, rtol=1e-4, atol=1e-6)
    assert torch.equal(labels_M.cpu(), codes_MK.argmax(dim=1).cpu())


def test_rejects_a_bound_that_is_not_positive():
    with pytest.raises(ValueError, match="score_bound"):
        sinkhorn(random_scores(10, 4), 0.05, 3, score_bound=0.0)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"epsilon": 0.0, "iterations": 3}, "epsilon"),
        ({"epsilon": 0.05, "iterations": 0}, "iterations"),
    ],
)
def test_rejects_bad_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        sinkhorn(random_scores(10, 4), **kwargs)
    with pytest.raises(ValueError, match=r"\[M, K\]"):
        sinkhorn(torch.zeros(2, 3, 4), 0.05, 3)


def _rank_main(
    rank: int, world: int, init_file: str, out_dir: str, bound: float | None, split: int
) -> None:
    dist.init_process_group("gloo", init_method=f"file://{init_file}", rank=rank, world_size=world)
    try:
        scores_MK = random_scores(80, 12, seed=3)
        mine = scores_MK[:split] if rank == 0 else scores_MK[split:]
        q_MK = sinkhorn(mine, epsilon=0.05, iterations=10, score_bound=bound)
        torch.save(q_MK, f"{out_dir}/q{rank}.pt")
        # gloo aborts a rank (SIGABRT) that tears its group down while a peer still reads
        # from it: leave together
        dist.barrier()
    finally:
        dist.destroy_process_group()


@pytest.mark.slow
@pytest.mark.parametrize("bound", [None, 1.0], ids=["log_sum_exp", "kernel"])
@pytest.mark.parametrize("split", [30, 0], ids=["30+50_tokens", "0+80_tokens"])
def test_two_ranks_equal_one_process_on_the_concatenated_tokens(tmp_path, bound, split):
    args = (2, str(tmp_path / "init"), str(tmp_path), bound, split)
    mp.spawn(_rank_main, args=args, nprocs=2, join=True)
    q_MK = torch.cat([torch.load(tmp_path / f"q{r}.pt") for r in range(2)])
    single_MK = sinkhorn(random_scores(80, 12, seed=3), epsilon=0.05, iterations=10)
    torch.testing.assert_close(q_MK, single_MK, rtol=1e-5, atol=1e-6)
    if split:
        local_MK = sinkhorn(random_scores(80, 12, seed=3)[:split], epsilon=0.05, iterations=10)
        assert not torch.allclose(q_MK[:split], local_MK, atol=1e-3)  # balanced over all ranks


# ------------------------------------------------------------------------------ loss


def features(M: int = 120, K: int = 24, D: int = 8, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    projected_MD = torch.randn(M, D, generator=g, requires_grad=True)
    predicted_MD = torch.randn(M, D, generator=g, requires_grad=True)
    prototypes_KD = F.normalize(torch.randn(K, D, generator=g), dim=1).requires_grad_()
    return projected_MD, predicted_MD, prototypes_KD


def official_loss(projected_MD, predicted_MD, prototypes_KD, eps=0.05, iters=10, tau=0.1):
    """The official engine path: cosine scores (C detached for the decoder branch), Sinkhorn with
    SIGMA's W/M column target, argmax labels, nn.CrossEntropyLoss on (B, K, N) logits / 0.1."""
    s_phi = F.normalize(projected_MD, dim=1) @ prototypes_KD.t()
    s_psi = F.normalize(predicted_MD, dim=1) @ prototypes_KD.detach().t()
    M = s_phi.shape[0]
    y_phi = official_sinkhorn(s_phi.detach(), eps, iters, 1 / M).argmax(1)
    y_psi = official_sinkhorn(s_psi.detach(), eps, iters, 1 / M).argmax(1)
    ce = torch.nn.CrossEntropyLoss()
    as_bkn = lambda s: (s / tau).reshape(2, -1, s.shape[1]).permute(0, 2, 1)  # noqa: E731
    l1 = ce(as_bkn(s_phi), y_psi.reshape(2, -1))
    l2 = ce(as_bkn(s_psi), y_phi.reshape(2, -1))
    return l1, l2


def test_loss_terms_equal_the_official_engine():
    p, z, c = features()
    terms = sigma_loss(p, z, c, temperature=0.1, epsilon=0.05, iterations=10)
    l1, l2 = official_loss(p, z, c)
    torch.testing.assert_close(terms.projection, l1, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(terms.prediction, l2, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(terms.total, l1 + l2)  # a sum, not a mean


def test_prototypes_learn_from_the_projection_term_only():
    p, z, c = features()
    terms = sigma_loss(p, z, c, temperature=0.1, epsilon=0.05, iterations=10)
    (g1,) = torch.autograd.grad(terms.projection, c, retain_graph=True)
    (g2,) = torch.autograd.grad(terms.prediction, c, retain_graph=True, allow_unused=True)
    assert g1.abs().sum() > 0
    assert g2 is None or torch.equal(g2, torch.zeros_like(g2))  # exactly zero


def test_each_branch_learns_from_predicting_the_other_branch_only():
    p, z, c = features()
    terms = sigma_loss(p, z, c, temperature=0.1, epsilon=0.05, iterations=10)
    g = torch.autograd.grad(terms.projection, (p, z), retain_graph=True, allow_unused=True)
    assert g[0].abs().sum() > 0 and g[1] is None  # L1: phi only; the labels carry no gradient
    g = torch.autograd.grad(terms.prediction, (p, z), allow_unused=True)
    assert g[0] is None and g[1].abs().sum() > 0  # L2: the decoder only


def test_soft_targets_weight_every_prototype_by_its_code():
    p, z, c = features()
    soft = sigma_loss(p, z, c, 0.1, 0.05, 10, soft_targets=True)
    hard = sigma_loss(p, z, c, 0.1, 0.05, 10)
    assert torch.isfinite(soft.total) and not torch.allclose(soft.total, hard.total)
    scores_MK = prototype_scores(p, c)
    codes_MK = sinkhorn(prototype_scores(z, c), 0.05, 10)
    expected = -(codes_MK * torch.log_softmax(scores_MK / 0.1, dim=1)).sum(1).mean()
    torch.testing.assert_close(soft.projection, expected)


def test_loss_at_random_init_is_about_two_log_k():
    """Independent random 256-d branches (the MLP width): cosines ~ N(0, 1/256), logits / 0.1
    spread ~0.6, so each term is ln K plus a little (spec §2.5: ~2 ln 3000 ~ 16 at init)."""
    p, z, c = features(M=2000, K=64, D=256)
    total = sigma_loss(p, z, c, 0.1, 0.05, 10).total.item()
    assert 2 * math.log(64) < total < 1.15 * 2 * math.log(64)


def test_scores_are_float32_cosines_under_autocast():
    p, _, c = features()
    with torch.autocast("cpu", dtype=torch.bfloat16):
        scores_MK = prototype_scores(p * 7.0, c)
    assert scores_MK.dtype == torch.float32
    torch.testing.assert_close(scores_MK, F.normalize(p, dim=1) @ c.t())
    assert scores_MK.abs().max() <= 1 + 1e-6


def test_cross_entropy_checks_target_shape():
    with pytest.raises(AssertionError, match="targets"):
        swapped_cross_entropy(torch.zeros(4, 3), torch.zeros(5, dtype=torch.long), 0.1)


def test_prototypes_that_are_not_unit_rows_are_refused():
    """The Sinkhorn kernel relies on cosine scores; prototypes the objective did not renormalize
    would break that bound, so the loss checks them (on the device, without a host sync)."""
    p, z, c = features()
    with pytest.raises(RuntimeError, match="unit rows"):
        sigma_loss(p, z, c.detach() * 3, temperature=0.1, epsilon=0.05, iterations=3)


def test_acc_is_how_often_the_decoder_predicts_the_projections_sinkhorn_prototype():
    p, z, c = features()
    terms = sigma_loss(p, z, c, temperature=0.1, epsilon=0.05, iterations=10)
    s_phi, s_psi = prototype_scores(p, c), prototype_scores(z, c)
    y_phi = official_sinkhorn(s_phi.detach(), 0.05, 10, 1 / s_phi.shape[0]).argmax(1)
    expected = (s_psi.argmax(1) == y_phi).float().mean()
    torch.testing.assert_close(terms.acc, expected)
    right = sigma_loss(p, p.detach().clone(), c, 0.1, 0.05, 10)  # predicting phi itself
    assert right.acc > 0.5 > terms.acc
