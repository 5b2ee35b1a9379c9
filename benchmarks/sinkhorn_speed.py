"""SIGMA's Sinkhorn-Knopp against its previous implementation: time on this machine, memory
traffic at the paper's size.

SIGMA-MLP ViT-B ran at 8% MFU on an H200 (docs/performance.md), 2.7x VideoMAE's step time at
similar FLOPs. Its step runs Sinkhorn twice (one per branch) on fp32 scores of every masked token
against 3,000 prototypes: at batch 408 that is ~574k x 3,000 = 6.9 GB per score matrix, and the
previous implementation rewrote that matrix in the log domain ~16 times per iteration, 10
iterations. The current one (``vssl_sigma.sinkhorn``) iterates two scaling vectors and, for cosine
scores, reads a kernel exp((S - 1) / eps) twice per iteration. The reference below is the code
before this change, op for op.

Two measurements:
- ``traffic``: bytes each side moves at SIGMA ViT-B's size, counted without running anything:
  both sides are traced on the meta device into ATen ops (composite ops decomposed as eager
  kernels run them, e.g. ``logsumexp`` into amax, sub, exp, sum; ops that eager runs as one
  kernel, such as ``mv``, kept whole), and every op that is not a view counts its tensor inputs
  read once and its output written once (a gather: its indices and one value each). Sinkhorn
  is elementwise ops, reductions and matrix-vector products, which is what their eager kernels
  do, and no cache holds a 6.9 GB matrix: so its count, divided by a memory bandwidth, is a
  lower bound of an eager GPU run's time. The whole loss (``loss_traffic``) adds the
  cross-entropy, whose kernels the rule fits less well (its backward does not read all its
  inputs): an estimate. Bandwidths from spec performance-and-data-path.md §4 (the H200's marked
  unverified there).
- ``time``: both sides on this machine, interleaved rounds at a size that fits (``--tokens``),
  outputs compared first; the speed-up is taken per round (median and IQR).

Cases: ``labels`` (SIGMA's default, hard argmax targets: ``sinkhorn_labels``) and ``codes``
(``soft_targets: true``: the soft codes, ``sinkhorn``).

    python benchmarks/sinkhorn_speed.py                      # ~1-2 min on 2 CPU cores
    python benchmarks/sinkhorn_speed.py --tokens 32768 --rounds 9
    python benchmarks/sinkhorn_speed.py --quick              # a seconds-long smoke run (tests)
    python benchmarks/sinkhorn_speed.py --json benchmarks/results/sinkhorn_speed_cpu.json
    python benchmarks/sinkhorn_speed.py --device cuda --tokens 574464   # the paper size, a GPU

Shape legend: M tokens, K prototypes, D feature width.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import sys
from collections.abc import Callable
from pathlib import Path
from unittest import mock

import torch
import torch.nn.functional as F
from torch._decomp import core_aten_decompositions
from torch.fx.experimental.proxy_tensor import make_fx

sys.path.insert(0, str(Path(__file__).resolve().parent))
import vssl_sigma.loss  # noqa: E402
from common import StepClock, describe_device, pick_device, spread  # noqa: E402
from vssl_sigma.loss import sigma_loss  # noqa: E402
from vssl_sigma.sinkhorn import sinkhorn, sinkhorn_labels  # noqa: E402

EPSILON = 0.05  # SIGMA K400 ViT-B (0.03 for SSv2 ViT-B: the same path and cost)
ITERATIONS = 10
TEMPERATURE = 0.1
PROTOTYPES = 3000
FEATURE_DIM = 256  # SIGMA-MLP's phi output
# SIGMA ViT-B at the batch the H200 table ran (408 clips x 1,408 masked tubelets of 1,568)
PAPER_TOKENS = 408 * 1408
BANDWIDTH_TB_S = {"H100 SXM (3.35 TB/s)": 3.35, "H200 (4.8 TB/s, unverified)": 4.8}
MIN_SAME_LABELS = 0.999  # near-ties may flip under different float rounding, nothing more
MAX_CODE_DIFF = 1e-5


# ------------------------------------------------------------------------------- reference


def sinkhorn_codes_matrix_update(scores_MK: torch.Tensor, epsilon: float, iterations: int):
    """The implementation before this change (single process): the whole [M, K] log matrix is
    renormalized over tokens, then over prototypes, ``iterations`` times; softmax per token."""
    M, K = scores_MK.shape
    log_B = math.log(max(M, 1))
    log_p_MK = scores_MK.detach().float() / epsilon
    for _ in range(iterations):
        log_p_MK = log_p_MK - (torch.logsumexp(log_p_MK, dim=0) + math.log(K))
        log_p_MK = log_p_MK - (torch.logsumexp(log_p_MK, dim=1, keepdim=True) + log_B)
    return torch.softmax(log_p_MK, dim=1)


def labels_matrix_update(scores_MK: torch.Tensor, epsilon: float, iterations: int):
    """The previous hard-label path: the argmax of the soft codes (SIGMA's default targets)."""
    return sinkhorn_codes_matrix_update(scores_MK, epsilon, iterations).argmax(dim=1)


def sides(case: str) -> dict[str, Callable[[torch.Tensor], torch.Tensor]]:
    """The reference and current function of a case, on cosine scores (as SIGMA calls them)."""
    if case == "labels":
        return {
            "reference": lambda s: labels_matrix_update(s, EPSILON, ITERATIONS),
            "current": lambda s: sinkhorn_labels(s, EPSILON, ITERATIONS, score_bound=1.0),
        }
    return {
        "reference": lambda s: sinkhorn_codes_matrix_update(s, EPSILON, ITERATIONS),
        "current": lambda s: sinkhorn(s, EPSILON, ITERATIONS, score_bound=1.0),
    }


# ------------------------------------------------------------------------------- traffic


def _decompositions() -> dict:
    """Core ATen decompositions, but ops that eager runs as one kernel stay one op: decomposed,
    ``mv`` would become a broadcast multiply and a sum over the whole matrix, and the
    cross-entropy's NLL and log-softmax backward a one-hot matrix and several passes."""
    table = core_aten_decompositions()
    aten = torch.ops.aten
    single_kernels = (  # one eager kernel each (the cross-entropy's forward and backward too)
        aten.mv.default,
        aten.dot.default,
        aten.nll_loss_forward.default,
        aten.nll_loss_backward.default,
        aten._log_softmax_backward_data.default,
    )
    for op in single_kernels:
        table.pop(op, None)
    return table


def _gathers() -> set:
    """Ops that read one source value per index, not their whole source tensor."""
    aten = torch.ops.aten
    return {aten.nll_loss_forward.default, aten.gather.default, aten.index.Tensor}


def graph_traffic(graph: torch.fx.Graph) -> dict:
    """Bytes read and written by a traced ATen graph: each op that is not a view reads its tensor
    inputs once and writes its output once; a gather reads its indices and one value for each."""

    def value(node):
        return node.meta.get("val") if hasattr(node, "meta") else None

    def size(node) -> int:
        v = value(node)
        return v.numel() * v.element_size() if isinstance(v, torch.Tensor) else 0

    def is_index(node) -> bool:
        v = value(node)
        return isinstance(v, torch.Tensor) and not v.is_floating_point()

    gathers = _gathers()
    total, ops, by_op = 0, 0, {}
    for node in graph.nodes:
        if node.op != "call_function" or getattr(node.target, "is_view", False):
            continue
        if node.target in gathers:
            indices = [a for a in node.all_input_nodes if is_index(a)]
            moved = sum(size(a) + value(a).numel() * 4 for a in indices) + size(node)
        else:
            moved = sum(size(a) for a in node.all_input_nodes) + size(node)
        if moved == 0:
            continue
        name = str(node.target).removeprefix("aten.")
        by_op[name] = by_op.get(name, 0) + moved
        total += moved
        ops += 1
    largest = dict(sorted(by_op.items(), key=lambda kv: -kv[1])[:6])
    return {"bytes": total, "ops": ops, "largest_ops_bytes": largest}


def bytes_moved(fn: Callable[[torch.Tensor], torch.Tensor], tokens: int, prototypes: int) -> dict:
    """Bytes read and written by ``fn`` on fp32 scores [tokens, prototypes], traced on meta."""
    scores_MK = torch.empty(tokens, prototypes, device="meta")
    return graph_traffic(make_fx(fn, decomposition_table=_decompositions())(scores_MK).graph)


def ms_at_bandwidths(moved: dict[str, dict]) -> dict[str, dict[str, float]]:
    """Milliseconds to move each side's bytes at each memory bandwidth of ``BANDWIDTH_TB_S``."""
    return {
        name: {side: traffic["bytes"] / (tb * 1e12) * 1e3 for side, traffic in moved.items()}
        for name, tb in BANDWIDTH_TB_S.items()
    }


def loss_traffic(tokens: int, prototypes: int) -> dict:
    """Bytes of SIGMA's whole loss, forward and backward: both branches' cosine scores, Sinkhorn
    labels and cross-entropies, from bf16 features (the decoder's and phi's outputs under
    autocast), with the current Sinkhorn and with the reference patched in. Traced with fake
    tensors on the CPU (autocast has no meta device), from real inputs of the full size."""
    projected_MD = torch.zeros(tokens, FEATURE_DIM, dtype=torch.bfloat16, requires_grad=True)
    predicted_MD = torch.zeros(tokens, FEATURE_DIM, dtype=torch.bfloat16, requires_grad=True)
    prototypes_KD = F.normalize(torch.randn(prototypes, FEATURE_DIM), dim=1).requires_grad_()

    def loss_and_grads(p_MD, z_MD, c_KD):
        terms = sigma_loss(p_MD, z_MD, c_KD, TEMPERATURE, EPSILON, ITERATIONS)
        return torch.autograd.grad(terms.total, (p_MD, z_MD, c_KD))

    def traced() -> dict:
        trace = make_fx(loss_and_grads, tracing_mode="fake", decomposition_table=_decompositions())
        return graph_traffic(trace(projected_MD, predicted_MD, prototypes_KD).graph)

    current = traced()
    before = lambda s, eps, iters, group=None, score_bound=None: labels_matrix_update(  # noqa: E731
        s, eps, iters
    )
    with mock.patch.object(vssl_sigma.loss, "sinkhorn_labels", before):
        reference = traced()
    result = {
        "tokens": tokens,
        "prototypes": prototypes,
        "reference": reference,
        "current": current,
        "estimate_ms": ms_at_bandwidths({"reference": reference, "current": current}),
    }
    print(
        f"traffic of SIGMA's whole loss, forward and backward ({tokens} x {prototypes}): "
        f"reference {reference['bytes'] / 1e9:.0f} GB, current {current['bytes'] / 1e9:.0f} GB",
        flush=True,
    )
    for name, ms in result["estimate_ms"].items():
        print(f"  at {name}: ~{ms['reference']:.1f} ms vs ~{ms['current']:.1f} ms per step")
    return result


def traffic_case(case: str, tokens: int, prototypes: int) -> dict:
    fns = sides(case)
    moved = {side: bytes_moved(fn, tokens, prototypes) for side, fn in fns.items()}
    matrix = tokens * prototypes * 4
    result = {
        "case": case,
        "tokens": tokens,
        "prototypes": prototypes,
        "score_matrix_gb": matrix / 1e9,
        "reference": moved["reference"],
        "current": moved["current"],
        "ratio": moved["reference"]["bytes"] / moved["current"]["bytes"],
        "lower_bound_ms": ms_at_bandwidths(moved),
    }
    print(
        f"traffic {case}: {tokens} x {prototypes} fp32 scores ({matrix / 1e9:.2f} GB); reference "
        f"{moved['reference']['bytes'] / 1e9:.1f} GB in {moved['reference']['ops']} ops "
        f"({moved['reference']['bytes'] / matrix:.0f} matrices), current "
        f"{moved['current']['bytes'] / 1e9:.1f} GB in {moved['current']['ops']} ops "
        f"({moved['current']['bytes'] / matrix:.0f} matrices): {result['ratio']:.2f}x less",
        flush=True,
    )
    for name, ms in result["lower_bound_ms"].items():
        print(f"  at {name}: >= {ms['reference']:.1f} ms vs >= {ms['current']:.1f} ms per call")
    return result


# ------------------------------------------------------------------------------- time


def cosine_scores(
    tokens: int, prototypes: int, seed: int = 0, device: torch.device | str = "cpu"
) -> torch.Tensor:
    """Cosine scores of random unit features against random unit prototypes, fp32 [M, K], on
    ``device`` (drawn on the host, so every device scores the same features)."""
    g = torch.Generator().manual_seed(seed)
    z_MD = F.normalize(torch.randn(tokens, FEATURE_DIM, generator=g), dim=1).to(device)
    c_KD = F.normalize(torch.randn(prototypes, FEATURE_DIM, generator=g), dim=1).to(device)
    return z_MD @ c_KD.t()


def compare(case: str, ref: torch.Tensor, cur: torch.Tensor) -> dict:
    if case == "labels":
        same = (ref == cur).double().mean().item()
        return {
            "same_labels": same,
            "tolerance": f">= {MIN_SAME_LABELS} of the labels equal",
            "agree": same >= MIN_SAME_LABELS,
        }
    diff = (ref - cur).abs().max().item()
    return {
        "max_abs_diff": diff,
        "tolerance": f"codes within {MAX_CODE_DIFF:g}",
        "agree": diff <= MAX_CODE_DIFF,
    }


def time_case(case: str, scores_MK: torch.Tensor, rounds: int) -> dict:
    fns = sides(case)
    same = compare(case, fns["reference"](scores_MK), fns["current"](scores_MK))
    print(f"time {case}: {list(scores_MK.shape)} fp32 scores; outputs {same}", flush=True)
    result = {"case": case, "shape": list(scores_MK.shape), "outputs": same, "speedup": None}
    if not same["agree"]:
        print("  outputs disagree beyond the tolerance: no speed-up reported", flush=True)
        return result
    seconds = {side: {"wall": [], "cpu": []} for side in fns}
    for r in range(rounds):
        order = ("reference", "current") if r % 2 == 0 else ("current", "reference")
        for side in order:
            clock = StepClock(scores_MK.device, 0, 1)  # synchronizes a GPU at both marks
            clock.mark(0)
            fns[side](scores_MK)
            clock.mark(1)
            for name in ("wall", "cpu"):
                seconds[side][name].append(clock.per_step(name))
        ref, cur = seconds["reference"]["wall"][-1], seconds["current"]["wall"][-1]
        print(
            f"  round {r + 1}/{rounds} ({order[0]} first, wall): reference {ref * 1e3:.1f} ms, "
            f"current {cur * 1e3:.1f} ms, speed-up {ref / cur:.2f}",
            flush=True,
        )
    result["speedup"], result["ms"] = {}, {}
    for name in ("wall", "cpu"):
        pairs = zip(seconds["reference"][name], seconds["current"][name], strict=True)
        ratio = spread([ref / cur for ref, cur in pairs])
        result["speedup"][name] = dataclasses.asdict(ratio)
        result["ms"][name] = {
            side: dataclasses.asdict(spread([s * 1e3 for s in v]))
            for side, v in ((s, seconds[s][name]) for s in fns)
        }
        print(
            f"  {name:4} clock: reference {spread(seconds['reference'][name]).describe('.1f', 1e3)}"
            f" ms, current {spread(seconds['current'][name]).describe('.1f', 1e3)} ms, "
            f"speed-up {ratio.describe('.2f')}"
        )
    return result


# ------------------------------------------------------------------------------- CLI

CASES = ("labels", "codes")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", nargs="+", choices=CASES, default=list(CASES))
    parser.add_argument("--tokens", type=int, help="tokens timed here (16384; quick 512)")
    parser.add_argument("--prototypes", type=int, help=f"K ({PROTOTYPES}; quick 64)")
    parser.add_argument(
        "--census-tokens",
        type=int,
        help=f"tokens of the traffic count ({PAPER_TOKENS}: SIGMA ViT-B at batch 408; quick 1408)",
    )
    parser.add_argument("--rounds", type=int, help="interleaved timing rounds (7; quick 2)")
    parser.add_argument("--threads", type=int, help="torch intra-op threads (torch's default)")
    parser.add_argument(
        "--device",
        default="cpu",
        choices=("cpu", "cuda"),
        help="where the timed calls run (the traffic count needs no device)",
    )
    parser.add_argument("--quick", action="store_true", help="tiny sizes: a smoke run")
    parser.add_argument("--json", help="also write the results to this JSON file")
    ns = parser.parse_args(argv)
    defaults = {
        "tokens": (512, 16384),
        "prototypes": (64, PROTOTYPES),
        "census_tokens": (1408, PAPER_TOKENS),
        "rounds": (2, 7),
    }
    for name, (quick, full) in defaults.items():
        if getattr(ns, name) is None:
            setattr(ns, name, quick if ns.quick else full)
        if getattr(ns, name) < 1:
            parser.error(f"--{name.replace('_', '-')} must be >= 1")
    if ns.threads is not None and ns.threads < 1:
        parser.error("--threads must be >= 1")
    return ns


def table(traffic: list[dict], timed: list[dict]) -> str:
    lines = [
        "| case | GB moved at SIGMA ViT-B size, reference / current | less traffic "
        "| H200 lower bound ms, reference / current | time here, speed-up median (IQR), wall |",
        "|---|---|---:|---|---|",
    ]
    h200 = next(name for name in BANDWIDTH_TB_S if name.startswith("H200"))
    for moved, t in zip(traffic, timed, strict=True):
        ms = moved["lower_bound_ms"][h200]
        speed = (
            "outputs differ"
            if t["speedup"] is None
            else (
                f"{t['speedup']['wall']['median']:.2f} "
                f"({t['speedup']['wall']['q1']:.2f}-{t['speedup']['wall']['q3']:.2f})"
            )
        )
        lines.append(
            f"| {moved['case']} | {moved['reference']['bytes'] / 1e9:.0f} / "
            f"{moved['current']['bytes'] / 1e9:.0f} | {moved['ratio']:.2f}x "
            f"| {ms['reference']:.0f} / {ms['current']:.0f} | {speed} |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    run_on = pick_device(args.device)
    device = describe_device(run_on)
    print(
        f"sinkhorn: reference (matrix updates) vs current (scaling vectors), eps {EPSILON}, "
        f"{ITERATIONS} iterations; {device}, torch {torch.__version__}"
    )
    traffic = [traffic_case(c, args.census_tokens, args.prototypes) for c in args.cases]
    whole_loss = loss_traffic(args.census_tokens, args.prototypes)
    scores_MK = cosine_scores(args.tokens, args.prototypes, device=run_on)
    timed = [time_case(c, scores_MK, args.rounds) for c in args.cases]
    print()
    print(table(traffic, timed))
    if args.json:
        payload = {
            "device": device,
            "torch": torch.__version__,
            "epsilon": EPSILON,
            "iterations": ITERATIONS,
            "rounds": args.rounds,
            "quick": args.quick,
            "traffic": traffic,
            "loss_traffic": whole_loss,
            "time": timed,
        }
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps(payload, indent=2) + "\n")
    return 0 if all(t["outputs"]["agree"] for t in timed) else 1


if __name__ == "__main__":
    sys.exit(main())
