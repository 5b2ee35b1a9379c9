"""benchmarks/e2e_throughput.py at a tiny size on the CPU: the Kinetics-like set is synthesized
(and packed) once and reused, the real trainer runs from a batch on the device, from the files
through PyAV with repeated sampling, and from the .beton through ffcv; each loader alone gives
its per-core cost. ffcv's rows skip cleanly without ffcv."""

import importlib.util
import json

import pytest

HAS_FFCV = importlib.util.find_spec("ffcv") is not None


@pytest.mark.slow
def test_tiny_run_trains_from_every_path_and_prices_each_loader(
    e2e_throughput, tmp_path, monkeypatch
):
    out = tmp_path / "e2e.json"
    argv = ["--tiny", "--cpu", "--data", str(tmp_path / "data"), "--json", str(out)]
    assert e2e_throughput.main(argv) == 0
    report = json.loads(out.read_text())
    data = report["meta"]["data"]
    assert (data["videos"], data["frames"], data["size"]) == (8, 50, 32) and "synth_s" in data
    rows = {(r["kind"], r["path"]): r for r in report["rows"]}
    assert set(rows) == {
        ("train", "device"), ("train", "ffcv"), ("train", "pyav"),
        ("loader", "ffcv"), ("loader", "pyav"), ("loader", "pyav_x1"),
    }  # fmt: skip
    trained = ["device", "pyav"] + (["ffcv"] if HAS_FFCV else [])
    for path in trained:
        row = rows["train", path]
        assert row["status"] == "ok" and row["clips_per_s"] > 0, row
        assert 0 <= row["data_wait"] <= 1 and row["last_loss"] > 0
        assert row["gpu_busy_fraction"] is None and "unavailable" in row["gpu_busy_reason"]
        assert row["timeline"]["window_ms_per_step"] > 0  # the profiled steps, host side
    assert rows["train", "pyav"]["repeats"] == 2 and rows["train", "device"]["workers"] == 0
    for path, repeats in [("pyav", 2), ("pyav_x1", 1)] + ([("ffcv", 1)] if HAS_FFCV else []):
        row = rows["loader", path]
        assert row["status"] == "ok" and row["repeats"] == repeats, row
        assert row["clips_per_s"] > 0 and row["cpu_ms_per_clip"] > 0
        assert row["clips_per_core_s"] == pytest.approx(1e3 / row["cpu_ms_per_clip"])
        device = rows["train", "device"]["clips_per_s"]
        assert row["cores_to_feed_device_row"] == pytest.approx(device / row["clips_per_core_s"])
    summary = report["summary"]
    ratio = rows["train", "pyav"]["clips_per_s"] / rows["train", "device"]["clips_per_s"]
    assert summary["pyav_vs_device"] == pytest.approx(ratio)
    assert ("ffcv_vs_device" in summary) is HAS_FFCV
    if not HAS_FFCV:
        for key in (("train", "ffcv"), ("loader", "ffcv")):
            assert rows[key]["status"] == "skipped" and "ffcv" in rows[key]["reason"]

    # a second run reuses the data (no synth), and without ffcv its rows are skipped, not failed
    videos = sorted((tmp_path / "data" / "k400" / "train").iterdir())
    written = [v.stat().st_mtime_ns for v in videos]
    monkeypatch.setattr(e2e_throughput, "ffcv_missing", lambda: "ffcv cannot be imported (test)")
    argv = [*argv[:-2], "--paths", "device,ffcv", "--json", str(tmp_path / "b.json")]
    assert e2e_throughput.main(argv) == 0
    second = json.loads((tmp_path / "b.json").read_text())
    assert "synth_s" not in second["meta"]["data"]
    assert [v.stat().st_mtime_ns for v in videos] == written
    skipped = [r for r in second["rows"] if r["path"] == "ffcv"]
    assert [r["status"] for r in skipped] == ["skipped", "skipped"]
    assert second["rows"][0]["path"] == "device" and second["rows"][0]["status"] == "ok"
