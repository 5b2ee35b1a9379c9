"""`vssl validate` checks the recipe's datasets too: a root that does not exist is reported."""

from pathlib import Path

from vssl_core.cli.main import main

ROOT = Path(__file__).resolve().parents[2]


def test_validate_reports_a_dataset_root_that_does_not_exist(tmp_path, capsys):
    recipe = ROOT / "recipes" / "severe" / "ucf101_1k.yaml"
    missing = tmp_path / "no_ucf101_here"
    assert main(["validate", str(recipe), f"data.dataset.root={missing}"]) == 2
    err = capsys.readouterr().err
    assert "2 problems" in err  # the training and the test set, both from that root
    assert (
        f"- data.dataset: building dataset 'ucf101' (plugin datasets): ucf101: folder {missing} does not exist"
        in err
    )
    assert (
        f"- eval.test_dataset: building dataset 'ucf101' (plugin datasets): ucf101: folder {missing} does not exist"
        in err
    )


def test_validate_builds_the_datasets_of_a_monitor_and_an_evaluation(tiny_recipe, capsys):
    assert main(["validate", str(tiny_recipe)]) == 0
    assert capsys.readouterr().out.strip().endswith(": ok")
    bad = "eval.test_dataset={name: moving_shapes, num_samples: 0}"
    assert main(["validate", str(tiny_recipe), bad]) == 2
    assert "- eval.test_dataset: building dataset 'moving_shapes'" in capsys.readouterr().err
