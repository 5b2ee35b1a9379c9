"""The `vssl` command line, in-process: help, config, validate, list, plugins, info, errors."""

import pytest

from vssl_core.cli.main import main

COMMANDS = ["train", "config", "validate", "info", "list", "plugins"]


@pytest.mark.parametrize("command", COMMANDS)
def test_every_command_has_useful_help(command, capsys):
    with pytest.raises(SystemExit) as exit_:
        main([command, "--help"])
    assert exit_.value.code == 0
    text = capsys.readouterr().out
    assert f"vssl {command}" in text and len(text.splitlines()) > 3


def test_config_prints_the_resolved_recipe_with_provenance(tiny_recipe, capsys):
    assert main(["config", str(tiny_recipe), "train.max_steps=3", "--provenance"]) == 0
    out = capsys.readouterr().out
    assert "max_steps: 3  # command line" in out
    assert "mask_ratio: 0.75  # " in out and "tiny.yaml" in out
    assert "grad_clip: null  # default" in out


def test_overrides_may_follow_a_flag_and_unknown_flags_stay_errors(tiny_recipe, capsys):
    assert main(["config", str(tiny_recipe), "--provenance", "train.max_steps=3"]) == 0
    assert "max_steps: 3  # command line" in capsys.readouterr().out
    with pytest.raises(SystemExit):
        main(["config", str(tiny_recipe), "--provenance", "--bogus", "train.max_steps=3"])
    assert "unrecognized arguments: --bogus" in capsys.readouterr().err


def test_validate_reports_every_problem_and_exits_2(tiny_recipe, capsys):
    code = main(["validate", str(tiny_recipe), "objective.mask_ration=0.5", "train.epochs=x"])
    err = capsys.readouterr().err
    assert code == 2
    assert "2 problems" in err
    assert "objective.mask_ration: unknown key; did you mean 'mask_ratio'?" in err
    assert "train.epochs: expected int, got str 'x'" in err


def test_unknown_component_name_is_a_clear_error(tiny_recipe, capsys):
    assert main(["validate", str(tiny_recipe), "backbone.name=vit_smal"]) == 2
    err = capsys.readouterr().err
    assert "unknown backbone 'vit_smal'" in err and "did you mean: vit_small" in err


def test_list_shows_each_component_with_its_plugin(capsys):
    assert main(["list"]) == 0
    out = capsys.readouterr().out
    assert "vit_base                 [backbones]" in out
    assert "videomae                 [videomae]" in out
    assert "moving_shapes            [datasets]" in out
    for kind in ("decoders", "heads", "protocols"):
        assert kind in out


def test_plugins_lists_status_and_distribution(capsys):
    assert main(["plugins"]) == 0
    out = capsys.readouterr().out
    assert any(
        line.startswith("videomae") and "loaded" in line and "vssl" in line
        for line in out.splitlines()
    )


def test_info_counts_parameters_and_flops(tiny_recipe, capsys):
    assert main(["info", str(tiny_recipe)]) == 0
    out = capsys.readouterr().out
    assert "3 x 4 x 32 x 32" in out
    assert "vit_tiny:" in out and "GFLOPs per clip (full clip)" in out
    assert "(training forward)" in out and "n/a" not in out


def test_vit_base_info_matches_the_published_size(tiny_recipe, capsys):
    args = [
        "info",
        str(tiny_recipe),
        "backbone={name: vit_base, img_size: 224, num_frames: 16}",
        "objective.decoder_depth=4",
        "objective.mask_ratio=0.9",
    ]
    assert main(args) == 0
    out = capsys.readouterr().out
    assert "vit_base: 86,227,200 parameters; 180.4" in out  # VideoMAE paper: 180 GFLOPs
    assert "videomae: 94,210,944 parameters" in out


def test_a_missing_recipe_names_where_it_looked(capsys):
    assert main(["config", "no_such_recipe.yaml"]) == 2
    assert "recipe 'no_such_recipe.yaml' not found" in capsys.readouterr().err


def test_train_from_the_cli(tiny_recipe, tmp_path, capsys):
    assert main(["train", str(tiny_recipe), "train.max_steps=2"]) == 0
    assert "completed at step 2" in capsys.readouterr().out
    assert main(["train", str(tiny_recipe), "train.max_steps=2"]) == 2
    assert "already holds a checkpoint" in capsys.readouterr().err


def test_a_torchrun_rank_ends_without_the_interpreters_teardown(monkeypatch, capsys):
    """Under torchrun every command's rank leaves through _exit_rank (os._exit after flushing):
    freeing a gloo process group at teardown can deadlock a rank that finished its work."""
    import vssl_core.cli.main as cli

    exited = []

    def fake_exit(code):
        exited.append(code)
        raise SystemExit(code)

    monkeypatch.setattr(cli, "_exit_rank", fake_exit)
    monkeypatch.setenv("WORLD_SIZE", "2")
    with pytest.raises(SystemExit):
        cli.main(["list", "recipes"])
    assert exited == [0]
    monkeypatch.setenv("WORLD_SIZE", "1")
    assert cli.main(["list", "recipes"]) == 0 and exited == [0]
