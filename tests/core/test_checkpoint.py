import pytest
import torch

from vssl_core.engine import checkpoint as ckpt


def test_atomic_save_keeps_the_previous_file_when_a_write_fails(tmp_path, monkeypatch):
    path = tmp_path / "last.pt"
    ckpt.save_atomic({"format": "vssl", "model": {"w": torch.ones(2)}, "step": 1}, path)

    def fail(obj, f):
        f.write(b"partial")
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(torch, "save", fail)
    with pytest.raises(
        ckpt.CheckpointError, match="No space left.*previous checkpoint .* is intact"
    ):
        ckpt.save_atomic({"format": "vssl", "model": {}, "step": 2}, path)
    monkeypatch.undo()
    assert ckpt.load_checkpoint(path)["step"] == 1
    assert list(tmp_path.iterdir()) == [path]  # no temporary file left behind


def test_load_rejects_missing_and_foreign_files(tmp_path):
    with pytest.raises(ckpt.CheckpointError, match="does not exist"):
        ckpt.load_checkpoint(tmp_path / "nope.pt")
    torch.save({"state_dict": {}}, tmp_path / "other.pt")
    with pytest.raises(ckpt.CheckpointError, match="not a vssl training checkpoint"):
        ckpt.load_checkpoint(tmp_path / "other.pt")


def test_load_refuses_pickled_code(tmp_path):
    torch.save(
        {"format": "vssl", "model": {}, "obj": ckpt.CheckpointError("x")}, tmp_path / "evil.pt"
    )
    with pytest.raises(ckpt.CheckpointError, match="cannot read checkpoint"):
        ckpt.load_checkpoint(tmp_path / "evil.pt")


def test_rng_state_round_trips():
    import random

    import numpy as np

    state = ckpt.rng_state()
    a = (random.random(), np.random.rand(), torch.rand(1).item())
    ckpt.set_rng_state(state)
    assert (random.random(), np.random.rand(), torch.rand(1).item()) == a
