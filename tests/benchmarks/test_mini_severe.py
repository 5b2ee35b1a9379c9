"""benchmarks/mini_severe.py: the whole pipeline runs end to end and resumes; budgets, arms,
gains over random init and the goal verdict are computed as documented."""

import json
from pathlib import Path

import pytest


def _metrics(out: Path, arm: str, seed: int, protocol: str, setting: str, **metrics) -> None:
    path = out / "eval" / f"{arm}-s{seed}" / protocol / setting / "metrics.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"metrics": metrics}))


def _args(mini_severe, out: Path, *extra: str):
    return mini_severe.parse_args(["--out", str(out), *extra])


@pytest.mark.slow
def test_tiny_runs_every_stage_writes_the_results_and_a_rerun_skips_finished_runs(
    mini_severe, tmp_path
):
    out = tmp_path / "mini"
    argv = ["--tiny", "--methods", "rotation", "--settings", "ucf101_1k,ucf_rc", "--out", str(out)]
    argv += ["--seeds", "0", "1"]
    assert mini_severe.main(argv) == 0
    results = json.loads((out / "results.json").read_text())
    assert list(results["arms"]) == ["rotation", "random_cnn3d_small"]
    assert results["arms"]["rotation"]["baseline"] == "random_cnn3d_small"
    assert results["pretrain_steps"]["rotation"] >= 2
    assert results["calibration"]["rotation"]["steps_per_s"] > 0
    for protocol in ("finetune", "linear"):
        for arm in ("rotation", "random_cnn3d_small"):
            for setting in ("ucf101_1k", "ucf_rc"):
                stat = results["scores"][protocol][arm][setting]
                assert stat["n"] == 2 and stat["mean"] is not None, (protocol, arm, setting)
        gains = results["factors"][protocol]["rotation"]["gain"]
        assert gains["samples"]["n"] == 2 and gains["tasks"]["n"] == 2
        assert gains["domain"]["n"] == 0  # no domain-shift setting was run
    table = (out / "results.md").read_text()
    assert "| rotation | random_cnn3d_small |" in table and "ucf_rc (mae ↓)" in table
    assert (out / "results.png").stat().st_size > 10_000
    done = sorted(out.glob("*/**/benchmark_done.json"))
    assert len(done) == 2 + 2 * 2 * 2  # 2 pretrainings; 2 arms x 2 seeds x 2 protocols
    stamps = [p.stat().st_mtime_ns for p in done]
    assert mini_severe.main(argv) == 0
    assert [p.stat().st_mtime_ns for p in done] == stamps  # nothing ran again


def test_points_turn_an_error_into_a_higher_is_better_score(mini_severe):
    assert mini_severe.points(mini_severe.BY_KEY["ucf101_1k"], 42.0) == 42.0
    assert mini_severe.points(mini_severe.BY_KEY["ucf_rc"], 0.25) == 75.0


def test_gain_is_the_mean_over_the_factors_settings_and_the_goal_needs_three_factors(
    mini_severe, tmp_path
):
    args = _args(mini_severe, tmp_path, "--seeds", "0", "1")
    arms = [
        mini_severe.Arm("rotation", Path("r.yaml"), {}, "random"),
        mini_severe.Arm("random", None, {}, "random"),
    ]
    for seed in (0, 1):
        for key in mini_severe.SETTINGS:
            setting = mini_severe.BY_KEY[key]
            base = 0.5 if not setting.higher_is_better else 20.0
            _metrics(tmp_path, "random", seed, "finetune", key, **{setting.metric: base})
            if setting.factor == "tasks":  # counting 0.1 better (10 points), charades 2 worse
                mine = 0.4 if not setting.higher_is_better else 18.0
            elif setting.factor == "actions":
                mine = 24.0 + seed  # 4 and 5 points: mean 4.5, below the goal
            else:
                mine = 30.0 + 2 * seed  # 10 and 12 points
            _metrics(tmp_path, "rotation", seed, "finetune", key, **{setting.metric: mine})
    args.protocols = ["finetune"]
    summary = mini_severe.summarize(arms, args)
    info = summary["factors"]["finetune"]["rotation"]
    assert info["gain"]["domain"]["mean"] == pytest.approx(11.0)
    assert info["gain"]["domain"]["values"] == pytest.approx([10.0, 12.0])
    assert info["gain"]["tasks"]["mean"] == pytest.approx(4.0)  # (10 - 2) / 2
    assert info["gain"]["actions"]["mean"] == pytest.approx(4.5)
    assert info["factors_beaten"] == ["domain", "samples"]
    assert info["goal_met"] is False
    assert summary["scores"]["finetune"]["random"]["ucf_rc"]["mean"] == 0.5
    assert "random" not in summary["factors"]["finetune"]  # a baseline has no gain over itself


def test_a_gain_of_exactly_the_goal_counts_despite_floating_point(mini_severe, tmp_path):
    args = _args(mini_severe, tmp_path, "--seeds", "0", "1", "--settings", "ssv2")
    arms = [
        mini_severe.Arm("tubelet", Path("t.yaml"), {}, "random"),
        mini_severe.Arm("random", None, {}, "random"),
    ]
    # gains 4.375 and 19.375 - 13.75...02 = 5.62...98: the mean is 5 in decimals, 4.99... in floats
    for seed, base, mine in ((0, 10.0, 14.375), (1, 13.750000000000002, 19.375)):
        _metrics(tmp_path, "random", seed, "finetune", "ssv2", top1=base)
        _metrics(tmp_path, "tubelet", seed, "finetune", "ssv2", top1=mine)
    args.protocols = ["finetune"]
    info = mini_severe.summarize(arms, args)["factors"]["finetune"]["tubelet"]
    assert info["factors_beaten"] == ["domain"]


def test_a_missing_result_leaves_the_factor_unscored_instead_of_guessing(mini_severe, tmp_path):
    args = _args(mini_severe, tmp_path, "--seeds", "0", "--settings", "ssv2,gym99")
    arm = mini_severe.Arm("moco", Path("m.yaml"), {}, "random")
    _metrics(tmp_path, "moco", 0, "finetune", "ssv2", top1=50.0)
    _metrics(tmp_path, "random", 0, "finetune", "ssv2", top1=40.0)
    _metrics(tmp_path, "moco", 0, "finetune", "gym99", top1=50.0)  # random's gym99 missing
    assert mini_severe.factor_gain(args, arm, 0, "finetune", "domain") is None
    _metrics(tmp_path, "random", 0, "finetune", "gym99", top1=30.0)
    assert mini_severe.factor_gain(args, arm, 0, "finetune", "domain") == pytest.approx(15.0)


def test_steady_rate_is_the_median_after_the_start_up_window(mini_severe, tmp_path):
    path = tmp_path / "metrics.jsonl"
    rows = [{"step": 10, "clips_per_s": 16.0}, {"step": 20, "clips_per_s": 64.0}]
    rows += [{"step": 30, "clips_per_s": 80.0}, {"step": 40, "clips_per_s": 48.0}]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    assert mini_severe.steady_steps_per_s(path, global_batch=16) == pytest.approx(4.0)


def test_budget_steps_are_minutes_times_the_calibrated_rate(mini_severe, tmp_path):
    args = _args(mini_severe, tmp_path, "--budget-minutes", "2")
    (tmp_path / "calibration.json").write_text(json.dumps({"moco": {"steps_per_s": 1.5}}))
    arm = mini_severe.Arm("moco", Path("m.yaml"), {}, "random")
    assert mini_severe.budget_steps(arm, args) == 180


def test_random_arms_one_per_distinct_backbone(mini_severe, host):
    recipes = mini_severe.ROOT / "recipes"
    arms = mini_severe.make_arms(["rotation", "videomae", "moco", "sigma"], recipes, [], host)
    names = [a.name for a in arms]
    assert names[:4] == ["rotation", "videomae", "moco", "sigma"]
    assert names[4:] == ["random_cnn3d_small", "random_vit_tiny"]
    by = {a.name: a for a in arms}
    assert by["moco"].baseline == "random_cnn3d_small"
    assert by["sigma"].baseline == "random_vit_tiny"
    assert by["random_vit_tiny"].backbone == by["videomae"].backbone
    assert not by["random_vit_tiny"].pretrained and by["rotation"].pretrained


def test_finished_runs_are_skipped_and_interrupted_ones_resume(mini_severe, tmp_path):
    args = _args(mini_severe, tmp_path, "--budget-minutes", "1")
    (tmp_path / "calibration.json").write_text(json.dumps({"rotation": {"steps_per_s": 2.0}}))
    arm = mini_severe.Arm("rotation", Path("recipes/rotation.yaml"), {}, "random")
    run = tmp_path / "pretrain" / "rotation-s0"
    task = mini_severe.pretrain_task(arm, 0, args, [])
    assert "train.max_steps=120" in task.argv() and "resume=true" not in task.argv()
    (run / "checkpoints").mkdir(parents=True)
    (run / "checkpoints" / "last.pt").write_bytes(b"")
    assert "resume=true" in task.argv()
    task.finish(12.0)
    assert json.loads((run / "benchmark_done.json").read_text()) == {"steps": 120, "wall_s": 12.0}
    assert mini_severe.pretrain_task(arm, 0, args, []) is None


def test_linear_protocol_and_random_init_reach_vssl_severe(mini_severe, tmp_path):
    args = _args(mini_severe, tmp_path, "--settings", "ssv2,ucf_rc")
    arm = mini_severe.Arm("random", None, {"name": "cnn3d_small", "width": 8}, "random")
    argv = mini_severe.eval_task(arm, 1, "linear", args, args.settings).argv()
    assert argv[:6] == [
        "severe",
        "--synthetic",
        "--settings",
        "ssv2,ucf_rc",
        "--out",
        str(tmp_path / "eval" / "random-s1" / "linear"),
    ]
    assert argv[6] == "none" and json.loads(argv[7].split("=", 1)[1])["width"] == 8
    assert "run.seed=1" in argv and "objective.freeze_backbone=true" in argv
    assert "eval.protocol.name=linear" in argv


def test_a_rerun_with_another_budget_is_refused(mini_severe, tmp_path):
    mini_severe._check_same_budget(_args(mini_severe, tmp_path, "--budget-minutes", "3"))
    with pytest.raises(SystemExit, match="another --out"):
        mini_severe._check_same_budget(_args(mini_severe, tmp_path, "--budget-minutes", "4"))


def test_data_options_reach_every_video_and_are_part_of_out(mini_severe, tmp_path, host):
    """--data measures a candidate design of the videos end to end: the pretraining, each
    setting's training and test videos and the random-init arms all see it."""
    args = _args(mini_severe, tmp_path, "--data", "looks=1", "--data", "centre_jitter=0")
    assert args.data_overrides == ["data.dataset.looks=1", "data.dataset.centre_jitter=0"]
    arm = mini_severe.Arm("random", None, {"name": "cnn3d_small", "width": 8}, "random")
    argv = mini_severe.eval_task(arm, 0, "finetune", args, ["ssv2"]).argv()
    for key in ("data.dataset.", "eval.test_dataset."):
        assert f"{key}looks=1" in argv and f"{key}centre_jitter=0" in argv
    method = mini_severe.make_arms(["rotation"], mini_severe.ROOT / "recipes", [], host, [])[0]
    (tmp_path / "calibration.json").write_text(json.dumps({"rotation": {"steps_per_s": 1.0}}))
    overrides = mini_severe.common_pretrain_overrides(args)
    pretrain = mini_severe.pretrain_task(method, 0, args, overrides).argv()
    assert "data.dataset.looks=1" in pretrain
    mini_severe._check_same_budget(args)
    with pytest.raises(SystemExit, match="another --out"):  # the default videos: another OUT
        mini_severe._check_same_budget(_args(mini_severe, tmp_path))


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--data", "data.dataset.looks=1"], "write a moving_shapes option as KEY=VALUE"),
        (["--data", "style=shaded"], "--data object_light=0.6 --data gravity=0"),
        (["--in-process", "--jobs", "2"], "--jobs 1"),
        (["--settings", "ssv2,kinetics"], "unknown kinetics"),
        (["--budget-minutes", "0"], "must be > 0"),
    ],
)
def test_bad_arguments_are_refused_with_the_fix(mini_severe, argv, message, capsys):
    with pytest.raises(SystemExit):
        mini_severe.parse_args(argv)
    assert message in capsys.readouterr().err


def test_an_evaluation_reruns_only_for_settings_it_has_not_run(mini_severe, tmp_path):
    args = _args(mini_severe, tmp_path, "--settings", "ssv2,ucf_rc")
    arm = mini_severe.Arm("random", None, {"name": "cnn3d_small"}, "random")
    task = mini_severe.eval_task(arm, 0, "finetune", args, ["ssv2", "ucf_rc"])
    task.finish(30.0)
    assert mini_severe.eval_task(arm, 0, "finetune", args, ["ucf_rc"]) is None
    more = mini_severe.eval_task(arm, 0, "finetune", args, ["ssv2", "ucf_rc", "charades"])
    assert "ssv2,ucf_rc,charades" in more.argv()
    more.finish(10.0)
    done = json.loads(
        (tmp_path / "eval" / "random-s0" / "finetune" / "benchmark_done.json").read_text()
    )
    assert done["settings"] == ["charades", "ssv2", "ucf_rc"]


def test_a_variant_is_a_method_with_overrides_and_a_budget_multiple(mini_severe):
    v = mini_severe.parse_variant("moco_colour=moco objective.photometric=mocov2 optim.lr=0.1")
    assert v == mini_severe.Variant(
        "moco_colour", "moco", 1.0, ("objective.photometric=mocov2", "optim.lr=0.1")
    )
    assert mini_severe.parse_variant("tubelet_x4=tubelet*4") == mini_severe.Variant(
        "tubelet_x4", "tubelet", 4.0, ()
    )
    for bad in ("moco", "=moco", "x=moco*two", "x=moco*0", "x=moco photometric", "moco=moco*2"):
        with pytest.raises(ValueError, match="--variant"):
            mini_severe.parse_variant(bad)


def test_variants_make_their_methods_steps_times_x_with_their_own_overrides(mini_severe, tmp_path):
    from vssl_core.plugins import load_plugins

    args = _args(
        mini_severe,
        tmp_path,
        "--budget-minutes", "2",
        "--methods", "rotation",
        "--variant", "rotation_flat=rotation data.dataset.style=flat",
        "--variant", "clip_order_x3=clip_order*3",
    )  # fmt: skip
    arms = mini_severe.make_arms(
        args.methods, mini_severe.ROOT / "recipes", [], load_plugins(), args.variants
    )
    names = [a.name for a in arms]
    assert names == ["rotation", "rotation_flat", "clip_order_x3", "random_cnn3d_small"]
    assert {a.baseline for a in arms} == {"random_cnn3d_small"}  # same backbone, one random arm
    calib = mini_severe.calibration_tasks(arms, args, [])
    # one calibration per method, of the method's own recipe (no variant's overrides)
    assert [t.name for t in calib] == ["calibrate-rotation", "calibrate-clip_order"]
    assert not any("style=flat" in a for t in calib for a in t.argv())
    (tmp_path / "calibration.json").write_text(
        json.dumps({"rotation": {"steps_per_s": 10.0}, "clip_order": {"steps_per_s": 5.0}})
    )
    steps = {a.name: mini_severe.budget_steps(a, args) for a in arms if a.pretrained}
    assert steps == {"rotation": 1200, "rotation_flat": 1200, "clip_order_x3": 1800}
    flat = mini_severe.pretrain_task(arms[1], 0, args, [])
    assert "data.dataset.style=flat" in flat.argv() and "train.max_steps=1200" in flat.argv()
    assert flat.after == ("calibrate-rotation",)
    assert mini_severe.pretrain_task(arms[2], 0, args, []).after == ("calibrate-clip_order",)
    meta = {"budget": "2 min", "threads": "1", "pretrain_min": 0.0, "eval_min": 0.0}
    table = mini_severe.markdown(arms, args, mini_severe.summarize(arms, args), meta)
    assert "- rotation_flat: rotation with data.dataset.style=flat\n" in table
    assert "- clip_order_x3: clip_order with its method's recipe, 3x the steps\n" in table


def test_a_typo_in_a_variant_names_the_arm_and_the_closest_key_before_anything_runs(mini_severe):
    from vssl_core.plugins import load_plugins

    typo = mini_severe.parse_variant("rotation_flat=rotation data.dataset.stlye=flat")
    with pytest.raises(SystemExit, match=r"(?s)arm 'rotation_flat'.*did you mean 'style'"):
        mini_severe.make_arms([], mini_severe.ROOT / "recipes", [], load_plugins(), [typo])


def test_an_example_method_is_found_through_its_plugins_recipe_path(mini_severe, tmp_path):
    class Host:  # a plugin host whose search path holds the example plugin's recipes
        def recipe_search_paths(self):
            return [tmp_path]

    with pytest.raises(SystemExit, match=r"pip install examples/vssl_speed first"):
        mini_severe.method_recipe("speed", mini_severe.ROOT / "recipes", Host())
    assert "speed" not in mini_severe.default_methods(Host())
    (tmp_path / "speed").mkdir()
    (tmp_path / "speed" / "synthetic.yaml").write_text("run: {name: speed}\n")
    recipe = mini_severe.method_recipe("speed", mini_severe.ROOT / "recipes", Host())
    assert recipe == Path("speed/synthetic.yaml")
    assert mini_severe.default_methods(Host())[-2:] == ["speed", "supervised"]
    with pytest.raises(SystemExit, match="choose from rotation"):
        mini_severe.method_recipe("byol", mini_severe.ROOT / "recipes", Host())


class _Runner:
    """Runs nothing: a task's exit code is given per task name."""

    def __init__(self, codes: dict[str, int]) -> None:
        self.codes, self.started = codes, []

    def start(self, name, argv):
        self.started.append(name)
        return lambda: self.codes.get(name, 0)


def test_a_run_stopped_by_sigterm_stops_the_benchmark_and_starts_nothing_more(mini_severe):
    tasks = [mini_severe.Task(n, lambda: []) for n in ("a", "b", "c")]
    tasks[2].after = ("b",)
    runner = _Runner({"a": 143})
    stop = mini_severe.StopFlag()
    mini_severe.run_tasks(tasks, runner, jobs=1, say=lambda _: None, stop=stop)
    assert runner.started == ["a"]
    assert [t.status for t in tasks] == ["failed", "stopped", "stopped"]
    assert stop.exit_code == 143


def test_sigterm_to_the_driver_is_forwarded_to_its_runs(mini_severe, tmp_path):
    import os
    import signal
    import subprocess
    import sys

    runner = mini_severe.Runner(tmp_path, threads=1, in_process=False)
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    runner.children.append(child)
    stop = mini_severe.StopFlag()
    with stop.catching(runner):
        os.kill(os.getpid(), signal.SIGTERM)
    assert child.wait(timeout=10) == -signal.SIGTERM
    assert stop.exit_code == 143
