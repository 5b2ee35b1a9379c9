"""Bad recipes and overrides: one clear message naming the key, exit 2, never a traceback or a
hang (issue 18, defects 4, 7 and the messages of 10)."""

from __future__ import annotations

import pytest
from kit.cli import run_cli

from vssl_core.recipe import merge_into


def refused(capsys, *argv: str) -> str:
    """The error text of a command that must end with exit 2 and no traceback."""
    code = run_cli(list(argv))
    err = capsys.readouterr().err
    assert code == 2, err
    assert "Traceback" not in err, err
    assert err.startswith("error: "), err
    return err


@pytest.mark.parametrize(
    ("override", "expected"),
    [
        ("train.grad_clip=-1", "train.grad_clip: must be > 0"),
        ("train.grad_clip=0", "train.grad_clip: must be > 0"),
        ("train.max_steps=-3", "train.max_steps: must be >= 1"),
        ("train.epochs=0", "train.epochs: must be >= 1"),
        ("log.every_steps=0", "log.every_steps: must be >= 1"),
        ("optim.lr_base_batch=0", "optim.lr_base_batch: must be >= 1"),
        ("optim.lr=.nan", "optim.lr: must be a finite number"),
        ("optim.lr=-1e-3", "optim.lr: must be >= 0"),
        ("optim.weight_decay=.inf", "optim.weight_decay: must be a finite number"),
        ("schedule.warmup_epochs=-1", "schedule.warmup_epochs: must be >= 0"),
        ("batch.global_size=-8", "batch.global_size: must be >= 1"),
        ("batch.per_rank=0", "batch.per_rank: must be >= 1"),
        ("data.prefetch_factor=0", "data.prefetch_factor: must be >= 1"),
        ("data.num_workers=-1", "data.num_workers: must be in [0, 1024]"),
        ("data.max_failed_fraction=1.5", "data.max_failed_fraction: must be in [0, 1]"),
        ("checkpoint.every_steps=0", "checkpoint.every_steps: must be >= 1"),
        ("run.seed=-1", "run.seed: must be >= 0"),
        ("run.name=", "run.name: must be a non-empty"),
        ("run.name=../elsewhere", "run.name: "),
        ("run.name=/abs/path", "run.name: "),
        ("objective.mask_ratio=.nan", "objective.mask_ratio: must be a finite number"),
        ("objective.mask_ratio=-.inf", "objective.mask_ratio: must be a finite number"),
    ],
)
def test_out_of_range_values_are_refused_naming_the_key(tiny_recipe, capsys, override, expected):
    err = refused(capsys, "validate", str(tiny_recipe), override)
    assert expected in err


def test_non_string_keys_and_component_names_are_refused_with_the_path(tiny_recipe, capsys):
    err = refused(capsys, "validate", str(tiny_recipe), "objective.name={}")
    assert "objective.name: expected" in err and "got mapping {}" in err
    err = refused(capsys, "validate", str(tiny_recipe), "train={1: 2}")
    assert "train: key 1 (int) is not a string" in err
    err = refused(capsys, "validate", str(tiny_recipe), "objective={? [a, b]: c}")
    assert "objective" in err and "key" in err


def test_a_non_string_key_in_a_file_names_the_file(tmp_path, capsys):
    path = tmp_path / "r.yaml"
    path.write_text("train:\n  1: a\n")
    err = refused(capsys, "validate", str(path))
    assert str(path) in err and "train: key 1 (int) is not a string" in err
    path.write_text("? [a, b]\n: c\n")
    err = refused(capsys, "validate", str(path))
    assert str(path) in err and "not a string" in err


def test_an_alias_bomb_is_refused_quickly(tmp_path, capsys):
    lines = ["a0: &a0 [x, x, x, x, x, x, x, x, x, x]"]
    for i in range(1, 10):
        refs = ", ".join([f"*a{i - 1}"] * 10)
        lines.append(f"a{i}: &a{i} [{refs}]")
    path = tmp_path / "bomb.yaml"
    path.write_text("\n".join(lines) + "\n")
    err = refused(capsys, "validate", str(path))
    assert str(path) in err and "values" in err and "alias" in err


def test_a_self_referencing_alias_is_refused(tmp_path, capsys):
    path = tmp_path / "loop.yaml"
    path.write_text("a: &a [*a]\n")
    err = refused(capsys, "validate", str(path))
    assert str(path) in err and "refers to itself" in err


def test_deep_nesting_is_refused(tmp_path, capsys):
    path = tmp_path / "deep.yaml"
    path.write_text("a: " + "[" * 5000 + "]" * 5000 + "\n")
    err = refused(capsys, "validate", str(path))
    assert str(path) in err and "nested" in err
    err = refused(capsys, "validate", str(path), "objective=" + "{a: " * 200 + "1" + "}" * 200)
    assert "nested" in err


def test_an_oversized_recipe_is_refused(tmp_path, capsys):
    path = tmp_path / "huge.yaml"
    path.write_text("".join(f"k{i}: {i}\n" for i in range(200_000)))
    err = refused(capsys, "validate", str(path))
    assert str(path) in err and "bytes" in err


def test_many_unknown_keys_are_summarised(tiny_recipe, capsys):
    keys = ", ".join(f"k{i}: {i}" for i in range(5000))
    err = refused(capsys, "validate", str(tiny_recipe), f"train={{{keys}}}")
    assert "train.k0: unknown key" in err and "more unknown keys under train" in err
    assert err.count("\n") < 100


class _CountingDict(dict):
    """A provenance table that counts how many keys were iterated over."""

    visits = 0

    def __iter__(self):
        for key in super().__iter__():
            _CountingDict.visits += 1
            yield key


def test_merging_many_keys_is_linear():
    """200k keys took > 60 s: each merged key scanned the whole provenance table."""
    n = 4000
    prov = _CountingDict()
    _CountingDict.visits = 0
    merge_into({}, {f"k{i}": i for i in range(n)}, prov, "a.yaml")
    merge_into({}, {f"j{i}": {"x": i} for i in range(n)}, prov, "b.yaml")
    assert len(prov) == 2 * n
    assert _CountingDict.visits <= 4 * n  # quadratic: ~n**2 / 2 = 8 million


def test_a_non_utf8_include_names_the_file(tmp_path, capsys):
    bad = tmp_path / "latin1.yaml"
    bad.write_bytes("run: {name: caf\xe9}\n".encode("latin-1"))
    top = tmp_path / "top.yaml"
    top.write_text("defaults: [latin1.yaml]\n")
    err = refused(capsys, "validate", str(top))
    assert str(bad) in err and "UTF-8" in err


def test_a_path_that_is_not_a_file_is_named_once(capsys):
    err = refused(capsys, "validate", "/dev/null")
    assert err.count("/dev/null") == 1, err
    assert "not a regular file" in err


def test_a_disk_full_message_at_start_names_the_path(tiny_recipe, capsys, monkeypatch):
    """[Errno 28] at start named nothing; the first write names its file."""
    import errno
    import pathlib

    real = pathlib.Path.write_text

    def full(self, *args, **kwargs):
        if self.name == "recipe.yaml":
            raise OSError(errno.ENOSPC, "No space left on device")
        return real(self, *args, **kwargs)

    monkeypatch.setattr(pathlib.Path, "write_text", full)
    err = refused(capsys, "train", str(tiny_recipe))
    assert "recipe.yaml" in err and "No space left on device" in err


def test_every_numeric_trainer_key_has_a_range():
    import dataclasses
    import typing

    from vssl_core.schema import RecipeSchema
    from vssl_core.schema_ranges import RANGES

    numeric = []
    for section in dataclasses.fields(RecipeSchema):
        cls = typing.get_type_hints(RecipeSchema)[section.name]
        if not dataclasses.is_dataclass(cls):
            continue
        for f in dataclasses.fields(cls):
            hint = str(typing.get_type_hints(cls)[f.name])
            if ("int" in hint or "float" in hint) and "Literal" not in hint:
                numeric.append(f"{section.name}.{f.name}")
    assert sorted(numeric) == sorted(RANGES)
