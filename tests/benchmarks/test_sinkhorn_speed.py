"""benchmarks/sinkhorn_speed.py: its reference is the matrix-update Sinkhorn the current one
replaced and computes the same codes, the traffic count sees the difference, and a quick run
reports both cases.

Shape legend: M tokens, K prototypes.
"""

import json

import pytest
import torch
from vssl_sigma.sinkhorn import sinkhorn


def test_quick_run_reports_traffic_and_time_of_both_cases(sinkhorn_speed, tmp_path, capsys):
    out = tmp_path / "sinkhorn.json"
    assert sinkhorn_speed.main(["--quick", "--json", str(out)]) == 0
    payload = json.loads(out.read_text())
    assert [t["case"] for t in payload["traffic"]] == ["labels", "codes"]
    for moved in payload["traffic"]:
        assert moved["tokens"] == 1408 and moved["prototypes"] == 64
        assert moved["reference"]["bytes"] > 3 * moved["current"]["bytes"]  # ~5x at any size
        for ms in moved["lower_bound_ms"].values():
            assert ms["reference"] > ms["current"] > 0
    whole = payload["loss_traffic"]  # the loss forward and backward, both Sinkhorns inside
    assert whole["reference"]["bytes"] > whole["current"]["bytes"] > 0
    for timed in payload["time"]:
        assert timed["outputs"]["agree"] and timed["shape"] == [512, 64]
        ratio = timed["speedup"]["wall"]
        assert ratio["n"] == 2 and 0 < ratio["q1"] <= ratio["median"] <= ratio["q3"]
    assert "| labels |" in capsys.readouterr().out


@pytest.mark.parametrize("epsilon", [0.05, 0.03])
def test_the_reference_computes_the_current_codes(sinkhorn_speed, epsilon):
    scores_MK = sinkhorn_speed.cosine_scores(300, 40, seed=1)
    ref_MK = sinkhorn_speed.sinkhorn_codes_matrix_update(scores_MK, epsilon, 10)
    torch.testing.assert_close(ref_MK, sinkhorn(scores_MK, epsilon, 10), rtol=1e-4, atol=1e-6)


def test_the_traffic_count_reads_a_matrix_vector_product_once(sinkhorn_speed):
    """An mv over [M, K] moves the matrix once (plus two vectors), as eager runs it; decomposed
    into a broadcast multiply and a sum it would count the matrix three times."""
    moved = sinkhorn_speed.bytes_moved(lambda s: s @ s.new_ones(s.shape[1]), 1000, 50)
    mv_bytes = (1000 * 50 + 50 + 1000) * 4
    assert moved["bytes"] == mv_bytes + 50 * 4 and moved["ops"] == 2  # the ones written, the mv


def test_the_traffic_count_reads_one_value_per_index_of_a_gather(sinkhorn_speed):
    moved = sinkhorn_speed.bytes_moved(
        lambda s: s.gather(1, s.new_zeros(s.shape[0], 1, dtype=torch.long)), 1000, 50
    )
    indices, values, out = 1000 * 8, 1000 * 4, 1000 * 4
    assert moved["bytes"] == indices + (indices + values + out)  # the zeros written, the gather


def test_a_disagreeing_current_side_gets_no_speedup(sinkhorn_speed, monkeypatch):
    def broken(case):
        fns = dict(real_sides(case))
        fns["current"] = lambda s: torch.zeros_like(fns["reference"](s))
        return fns

    real_sides = sinkhorn_speed.sides
    monkeypatch.setattr(sinkhorn_speed, "sides", broken)
    assert sinkhorn_speed.main(["--quick", "--cases", "codes", "--rounds", "1"]) == 1


@pytest.mark.skipif(torch.cuda.is_available(), reason="the message for a machine without a GPU")
def test_asking_for_a_gpu_on_a_machine_without_one_says_so(sinkhorn_speed):
    with pytest.raises(SystemExit, match="no CUDA device is visible"):
        sinkhorn_speed.main(["--quick", "--device", "cuda"])
