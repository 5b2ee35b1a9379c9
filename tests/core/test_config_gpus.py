"""`vssl config RECIPE --gpus N`: the batch layout and scaled lr it prints are the trainer's."""

import logging

import pytest

from vssl_core.cli.main import main


def _header(capsys, *args) -> list[str]:
    assert main(["config", *map(str, args)]) == 0
    return [line for line in capsys.readouterr().out.splitlines() if line.startswith("#")][1:]


@pytest.mark.slow
def test_the_header_matches_what_the_trainer_logs(tiny_recipe, capsys, caplog):
    layout, lr = _header(capsys, tiny_recipe, "optim.lr_scaling=linear", "--gpus", 1)
    assert (
        layout == "# on 1 GPU(s): global batch 8 = 8 per rank x 1 rank(s) x 1 accumulation step(s)"
    )
    assert lr == "# lr 3.125e-05 = base lr 0.001 x 8/256; min lr 3.125e-07"
    with caplog.at_level(logging.INFO, logger="vssl.train"):
        assert (
            main(["train", str(tiny_recipe), "optim.lr_scaling=linear", "train.max_steps=1"]) == 0
        )
    started = next(r.getMessage() for r in caplog.records if "global batch" in r.getMessage())
    assert layout.split(": ", 1)[1] in started and lr.removeprefix("# ") in started


def test_fewer_gpus_accumulate_and_keep_the_lr(tiny_recipe, capsys):
    args = [tiny_recipe, "batch.global_size=64", "batch.per_rank=4", "optim.lr_scaling=linear"]
    one = _header(capsys, *args, "--gpus", 1)
    many = _header(capsys, *args, "--gpus", 16)
    assert one[0].endswith("global batch 64 = 4 per rank x 1 rank(s) x 16 accumulation step(s)")
    assert many[0].endswith("global batch 64 = 4 per rank x 16 rank(s) x 1 accumulation step(s)")
    assert one[1] == many[1] == "# lr 0.00025 = base lr 0.001 x 64/256; min lr 2.5e-06"


def test_without_gpus_the_output_is_unchanged(tiny_recipe, capsys):
    assert _header(capsys, tiny_recipe) == []


@pytest.mark.parametrize(
    ("gpus", "message"),
    [(3, "must be a multiple of batch.per_rank"), (0, "--gpus 0: give the number of GPUs")],
)
def test_a_layout_that_cannot_exist_is_a_clear_error(tiny_recipe, gpus, message, capsys):
    assert main(["config", str(tiny_recipe), "--gpus", str(gpus)]) == 2
    assert message in capsys.readouterr().err
