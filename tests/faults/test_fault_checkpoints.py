"""Corrupt checkpoints, full disks and interrupted saves (issue 18, defects 1 and 3)."""

from __future__ import annotations

import errno
import io
import logging
import os
import shutil
import subprocess
import uuid

import pytest
from kit.cli import run_cli
from kit.corrupt import flip_bit_in_a_tensor
from kit.runs import last_weights, same_weights, train_run

from vssl_core.engine import checkpoint as ckpt

SHORT = ("train.max_steps=4", "checkpoint.every_steps=2")


def test_a_flipped_bit_in_a_tensor_is_refused_naming_the_file(tiny_recipe):
    done = train_run(tiny_recipe, *SHORT)
    last = done.run_dir / "checkpoints" / "last.pt"
    flip_bit_in_a_tensor(last)
    with pytest.raises(ckpt.CheckpointError, match=f"checkpoint {last} is corrupt"):
        ckpt.load_checkpoint(last)


def test_evaluation_and_conversion_refuse_a_corrupt_checkpoint(tiny_recipe):
    from vssl_core.convert import read_checkpoint

    done = train_run(tiny_recipe, "train.max_steps=2")
    last = done.run_dir / "checkpoints" / "last.pt"
    flip_bit_in_a_tensor(last)
    with pytest.raises(ckpt.CheckpointError, match=f"checkpoint {last} is corrupt"):
        read_checkpoint(last)  # what vssl eval, vssl severe and vssl convert read with


def test_resume_falls_back_to_the_newest_intact_checkpoint_and_ends_identical(tiny_recipe, caplog):
    full = train_run(tiny_recipe, "run.name=full", *SHORT)
    cut = train_run(tiny_recipe, "run.name=cut", *SHORT)
    last = cut.run_dir / "checkpoints" / "last.pt"
    flip_bit_in_a_tensor(last)
    with caplog.at_level(logging.WARNING):
        resumed = train_run(tiny_recipe, "run.name=cut", "resume=true", *SHORT)
    assert f"checkpoint {last} is corrupt" in caplog.text
    assert "previous.pt (step 2), the newest intact checkpoint" in caplog.text
    assert (last.parent / "last.pt.corrupt").is_file()  # kept for inspection, not reused
    assert resumed.status == "completed" and resumed.step == 4
    assert same_weights(last_weights(full.run_dir), last_weights(resumed.run_dir))


def test_resuming_from_a_named_corrupt_file_names_the_intact_one(tiny_recipe, capsys):
    done = train_run(tiny_recipe, *SHORT)
    last = done.run_dir / "checkpoints" / "last.pt"
    flip_bit_in_a_tensor(last)
    code = run_cli(["train", str(tiny_recipe), *SHORT, "run.name=other", f"resume={last}"])
    err = capsys.readouterr().err
    assert code == 2 and "Traceback" not in err
    assert f"checkpoint {last} is corrupt" in err
    assert f"resume={last.parent / 'previous.pt'}" in err


def test_no_intact_checkpoint_left_is_a_clear_error(tiny_recipe, capsys):
    done = train_run(tiny_recipe, *SHORT, "checkpoint.keep_previous=false")
    last = done.run_dir / "checkpoints" / "last.pt"
    flip_bit_in_a_tensor(last)
    code = run_cli(["train", str(tiny_recipe), *SHORT, "resume=true"])
    err = capsys.readouterr().err
    assert code == 2 and "Traceback" not in err
    assert "is corrupt" in err and "No intact checkpoint is left" in err


class _FullDisk(io.FileIO):
    """A file on a disk that fills up after ``room`` bytes."""

    room = 4096

    def write(self, data) -> int:
        if self.tell() + len(data) > self.room:
            raise OSError(errno.ENOSPC, "No space left on device")
        return super().write(data)


def _full_disk_open(path, mode="r", *args, **kwargs):
    if "w" in mode and ".tmp-" in str(path):
        return _FullDisk(path, mode.replace("b", ""))
    return open(path, mode, *args, **kwargs)


def test_disk_full_inside_torch_save_is_one_message_and_keeps_the_last_checkpoint(
    tiny_recipe, capsys, monkeypatch
):
    done = train_run(tiny_recipe, "train.max_steps=2")
    folder = done.run_dir / "checkpoints"
    before = (folder / "last.pt").read_bytes()
    monkeypatch.setattr(ckpt, "open", _full_disk_open, raising=False)
    code = run_cli(["train", str(tiny_recipe), "train.max_steps=4", "resume=true"])
    err = capsys.readouterr().err
    assert code == 2 and "Traceback" not in err, err
    assert f"could not write {folder / 'last.pt'}: [Errno 28] No space left on device" in err
    assert "is intact" in err and "resume=true" in err
    assert (folder / "last.pt").read_bytes() == before
    assert sorted(p.name for p in folder.iterdir()) == ["last.pt"]  # no temporary file left


def _as_root() -> bool:
    return hasattr(os, "geteuid") and os.geteuid() == 0 and shutil.which("mount") is not None


@pytest.mark.skipif(not _as_root(), reason="mounting a small tmpfs needs root")
def test_a_really_full_disk_ends_with_one_message_naming_the_path(tiny_recipe, tmp_path, capsys):
    mnt = tmp_path / f"small-{uuid.uuid4().hex[:6]}"
    mnt.mkdir()
    size = ckpt_size(tiny_recipe, tmp_path) * 3 // 2  # room for one checkpoint, not two
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(mnt)])
    if mounted.returncode != 0:
        pytest.skip("mount -t tmpfs failed (no privilege in this container)")
    try:
        argv = ["train", str(tiny_recipe), f"run.output_root={mnt}", *SHORT]
        code = run_cli(argv)
        err = capsys.readouterr().err
        assert code == 2 and "Traceback" not in err, err
        assert f"could not write {mnt}/" in err and "No space left on device" in err
        folder = mnt / "tiny" / "checkpoints"
        assert ckpt.load_checkpoint(folder / "last.pt")["step"] == 2
        assert not [p for p in folder.iterdir() if ".tmp-" in p.name]
    finally:
        subprocess.run(["umount", str(mnt)], check=False)


def test_a_full_disk_under_tensorboard_names_its_folder(tiny_recipe, capsys, monkeypatch):
    from torch.utils.tensorboard import SummaryWriter

    def full(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(SummaryWriter, "add_scalar", full)
    code = run_cli(["train", str(tiny_recipe), "train.max_steps=2", "log.tensorboard=true"])
    err = capsys.readouterr().err
    assert code == 2 and "Traceback" not in err
    folder = tiny_recipe.parent / "runs" / "tiny" / "tensorboard"
    assert f"could not write {folder}: [Errno 28] No space left on device" in err


def ckpt_size(recipe, tmp_path) -> int:
    done = train_run(recipe, "train.max_steps=1", f"run.output_root={tmp_path / 'measure'}")
    return (done.run_dir / "checkpoints" / "last.pt").stat().st_size


def test_temporary_files_of_killed_saves_are_removed_at_the_next_start(tiny_recipe, caplog):
    done = train_run(tiny_recipe, "train.max_steps=2")
    folder = done.run_dir / "checkpoints"
    orphan = folder / ".last.pt.tmp-999999"
    orphan.write_bytes(b"half a checkpoint")
    with caplog.at_level(logging.WARNING):
        train_run(tiny_recipe, "train.max_steps=3", "resume=true")
    assert not orphan.exists()
    assert ".last.pt.tmp-999999" in caplog.text and "interrupted" in caplog.text
