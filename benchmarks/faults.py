"""Fault-injection campaign: what an operator's bad day does to a vssl run, tried many times.

Each scenario injects one kind of fault into tiny VideoMAE runs (the test suite's recipe: 32
moving-shapes videos, a one-block ViT, a step in tens of milliseconds) and checks the outcome
the project promises: one clear message, a non-zero exit, nothing lost, and a resume that ends
with the weights of the uninterrupted run (tensor for tensor).

- ``kill9_step``: SIGKILL at a random step; ``resume=auto`` ends identical to the reference.
- ``kill9_save``: SIGKILL the moment a checkpoint's temporary file appears (during a save);
  last.pt is never corrupt, the orphan is removed at the next start, the resume is exact.
- ``bitflip``: one bit flipped in a checkpoint (anywhere in the file, or inside a tensor) is
  refused on load, or left the content identical (a flip in zip padding); never accepted
  corrupt. A few end-to-end: resume=true on a flipped last.pt falls back and ends identical.
- ``two_writers``: two runs of one run name started together; one trains, the other is
  refused; metrics hold each step once; the result is the reference.
- ``disk_full``: the run's disk fills up at a random point (a small tmpfs when root, else an
  injected ENOSPC; TensorBoard on): exit 2, one message naming the file under it that could not
  be written, no traceback, no temporary file, last.pt intact; with room again, resume=auto ends
  identical.
- ``torn_log``: a kill tears the last line of metrics.jsonl; the resume drops it, says so, and
  ends identical with each step logged once.
- ``videos``: random videos of an on-disk UCF-101 layout deleted, emptied, truncated or
  scrambled; ``vssl data check`` lists every one of them (and no intact one).
- ``ddp_kill`` / ``ddp_stall``: 2-rank gloo torchrun; rank 1 killed at, or stuck in data loading
  from, a random step: every rank ends with a message naming rank 1 well within the stall, and
  resume=true ends identical to the uninterrupted 2-rank run.
- ``fuzz``: seeded malformed recipes and overrides (out-of-range and non-finite values, wrong
  types, unknown keys and components, non-string keys, YAML errors, alias bombs, deep nesting,
  oversized files, bad encodings, include cycles, broken overrides and interpolations): each is
  `vssl validate`d in this process and must exit 2 with no traceback in under 5 s; every 50th
  also runs as its own process (exit code and output end to end).

    python benchmarks/faults.py                      # the campaign (~35 min on a 2-core machine)
    python benchmarks/faults.py --tiny               # one or two trials each, no DDP (tests)
    python benchmarks/faults.py --only fuzz,bitflip --seed 3
    python benchmarks/faults.py --only ddp_stall --trials 1
    python benchmarks/faults.py --json benchmarks/results/faults_cpu.json

One torch thread everywhere (OMP_NUM_THREADS=1): the numbers are exact-equality checks and
counts, not speeds, and a 2-core machine shared with other work stays usable.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import io
import json
import logging
import math
import os
import random
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import ROOT  # noqa: E402  (puts a checkout on sys.path when not installed)

from vssl_core.engine import checkpoint as ckpt  # noqa: E402
from vssl_core.engine.integrity import content_digest  # noqa: E402

STEPS, EVERY = 16, 4  # steps of a campaign run; checkpoint cadence
DDP_TIMEOUT_S = 5  # train.collective_timeout_s of the DDP scenarios
STALL_S = 120  # how long a stalled rank would stay stuck without the watchdog
FUZZ_LIMIT_S = 5.0

TINY_RECIPE = """\
run: {name: tiny, seed: 0}
data:
  dataset: {name: moving_shapes, num_samples: 32, num_classes: 4, num_frames: 8, size: 32}
  num_workers: 0
backbone: {name: vit_tiny, img_size: 32, num_frames: 4, patch_size: 8, tubelet_size: 2, depth: 1}
objective:
  name: videomae
  mask_ratio: 0.75
  decoder_depth: 1
  sampling_stride: 2
  augmentation: multiscale_crop
batch: {global_size: 8}
optim: {name: adamw, lr: 0.001, lr_scaling: none, betas: [0.9, 0.95]}
schedule: {warmup_epochs: 1, min_lr: 1.0e-05}
log: {every_steps: 1, progress_bar: false, tensorboard: false}
"""

# fault plugins for the subprocesses (`-p faultkit`), written into the work folder
FAULTKIT = '''\
"""Fault plugins of benchmarks/faults.py."""
import os, signal, sys, time
from vssl_core import component, hookimpl
from vssl_datasets.moving_shapes import MovingShapes


@hookimpl
def vssl_step_end(run, step, metrics):
    kill = os.environ.get("FAULTKIT_KILL")  # "rank:step"
    if kill:
        rank, at = map(int, kill.split(":"))
        if run.rank == rank and step == at:
            os.kill(os.getpid(), signal.SIGKILL)


@component("dataset")
class stalling_shapes(MovingShapes):
    """moving_shapes whose ``after``-th load on rank ``rank`` hangs for ``seconds``."""

    def __init__(self, rank: int = 1, after: int = 0, seconds: float = 0.0):
        super().__init__(num_samples=32, num_classes=4, num_frames=8, size=32)
        self.stall_rank, self.after, self.seconds, self.loads = rank, after, seconds, 0

    def __getitem__(self, index):
        self.loads += 1
        if self.loads == self.after and int(os.environ.get("RANK", "0")) == self.stall_rank:
            time.sleep(self.seconds)
        return super().__getitem__(index)


@hookimpl
def vssl_register_components(registry, plugin):
    registry.add_module(sys.modules[__name__], plugin)
'''

# an injected full disk for machines where a tmpfs cannot be mounted (not root)
ENOSPC_RUNNER = """\
import builtins, errno, io, os, sys
budget = [int(os.environ["FAULTKIT_ROOM"])]
under = os.environ["FAULTKIT_DISK"]
real_open = builtins.open

class Full:
    def __init__(self, f):
        self._f = f
    def write(self, data):
        budget[0] -= len(data)
        if budget[0] < 0:
            raise OSError(errno.ENOSPC, "No space left on device")
        return self._f.write(data)
    def __getattr__(self, name):
        return getattr(self._f, name)
    def __enter__(self):
        return self
    def __exit__(self, *exc):
        self._f.close()
    def __iter__(self):
        return iter(self._f)

def full_open(file, mode="r", *args, **kwargs):
    f = real_open(file, mode, *args, **kwargs)
    writing = any(c in mode for c in "wax+")
    return Full(f) if writing and str(os.path.abspath(file)).startswith(under) else f

builtins.open = io.open = full_open
from vssl_core.cli.main import main
sys.exit(main(sys.argv[1:]))
"""


@dataclass
class Trial:
    ok: bool
    detail: str = ""
    counts: dict[str, int] = field(default_factory=dict)


@dataclass
class Campaign:
    work: Path
    rng: random.Random
    tiny: bool
    env: dict[str, str]
    refs: dict[str, dict] = field(default_factory=dict)
    procs: list[subprocess.Popen] = field(default_factory=list)

    # ------------------------------------------------------------------ running vssl
    @property
    def recipe(self) -> Path:
        return self.work / "tiny.yaml"

    def cmd(self, *args: str, plugin: bool = False) -> list[str]:
        extra = ["-p", "faultkit"] if plugin else []
        return [sys.executable, "-m", "vssl_core.cli", *extra, *args]

    def train(
        self, name: str, *overrides: str, timeout: float = 300, **kw
    ) -> subprocess.CompletedProcess:
        args = ["train", str(self.recipe), f"run.name={name}", f"train.max_steps={STEPS}"]
        args += [f"checkpoint.every_steps={EVERY}", *overrides]
        return subprocess.run(
            kw.pop("cmd", self.cmd(*args, plugin=kw.pop("plugin", False))),
            capture_output=True,
            text=True,
            env={**self.env, **kw.pop("env", {})},
            cwd=self.work,
            timeout=timeout,
        )

    def spawn(self, name: str, *overrides: str, every: int = EVERY) -> subprocess.Popen:
        args = ["train", str(self.recipe), f"run.name={name}", f"train.max_steps={STEPS}"]
        args += [f"checkpoint.every_steps={every}", *overrides]
        proc = subprocess.Popen(
            self.cmd(*args),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=self.env,
            cwd=self.work,
            start_new_session=True,
        )
        self.procs.append(proc)
        return proc

    def torchrun(
        self, name: str, *overrides: str, env=None
    ) -> tuple[subprocess.CompletedProcess, float]:
        cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2"]
        cmd += ["-m", "vssl_core.cli", "-p", "faultkit", "train", str(self.recipe)]
        cmd += [f"run.name={name}", f"train.max_steps={STEPS}", f"checkpoint.every_steps={EVERY}"]
        cmd += [f"train.collective_timeout_s={DDP_TIMEOUT_S}", *overrides]
        start = time.monotonic()
        out = run_group(cmd, env={**self.env, **(env or {})}, cwd=self.work, timeout=STALL_S + 240)
        return out, time.monotonic() - start

    def run_dir(self, name: str) -> Path:
        return self.work / "runs" / name

    def weights(self, run_dir: Path) -> dict:
        return ckpt.load_checkpoint(run_dir / "checkpoints" / "last.pt")["model"]

    def matches(self, ref: str, run_dir: Path) -> bool:
        try:
            got = self.weights(run_dir)
        except ckpt.CheckpointError:
            return False
        want = self.refs[ref]
        return got.keys() == want.keys() and all(torch.equal(got[k], want[k]) for k in want)

    def reference(self, ref: str = "single") -> None:
        if ref in self.refs:
            return
        if ref == "single":
            out = self.train("reference")
            run_dir = self.run_dir("reference")
        else:
            out, _ = self.torchrun("reference_ddp", stalling())
            run_dir = self.run_dir("reference_ddp")
        if out.returncode != 0:
            said = [li for li in out.stderr.splitlines() if li.startswith("error")]
            raise SystemExit(f"the reference run failed: {said}\n{out.stderr[-3000:]}")
        self.refs[ref] = self.weights(run_dir)

    def cleanup(self) -> None:
        for proc in self.procs:
            if proc.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
        self.procs.clear()


def stalling(after: int = 0, seconds: int = 0) -> str:
    """The DDP scenarios' dataset: rank 1's ``after``-th load hangs ``seconds`` (0: never)."""
    return f"data.dataset={{name: stalling_shapes, rank: 1, after: {after}, seconds: {seconds}}}"


def run_group(cmd: list[str], timeout: float, **kw) -> subprocess.CompletedProcess:
    """Run ``cmd`` in a process group of its own and kill what is left of the group when it
    ends: a rank that outlives torchrun must not outlive the trial."""
    proc = subprocess.Popen(
        cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True, **kw
    )
    try:
        out, err = proc.communicate(timeout=timeout)
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
    return subprocess.CompletedProcess(cmd, proc.returncode, out, err)


def steps_logged(run_dir: Path) -> list[int]:
    path = run_dir / "metrics.jsonl"
    if not path.exists():
        return []
    return [json.loads(li)["step"] for li in path.read_text().splitlines() if li.strip()]


def no_traceback(text: str) -> bool:
    return "Traceback (most recent call last)" not in text


def wait_for(predicate: Callable[[], bool], timeout: float, poll: float = 0.005) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(poll)
    return False


def rows(run_dir: Path) -> int:
    path = run_dir / "metrics.jsonl"
    return path.read_bytes().count(b"\n") if path.exists() else 0


# ---------------------------------------------------------------------------- scenarios
def kill_at(c: Campaign, name: str, at: int) -> int | None:
    """Start a run, SIGKILL it once it logged step ``at``; the steps logged by then (None: it
    ended first)."""
    proc = c.spawn(name)
    wait_for(lambda: rows(c.run_dir(name)) >= at or proc.poll() is not None, 120)
    if proc.poll() is not None:
        return None
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    return rows(c.run_dir(name))


def resumed_exactly(c: Campaign, out: subprocess.CompletedProcess, name: str) -> bool:
    """The resume exited 0, logged each step once and ended with the reference's weights."""
    steps = steps_logged(c.run_dir(name))
    return (
        out.returncode == 0
        and steps == list(range(1, STEPS + 1))
        and c.matches("single", c.run_dir(name))
    )


def kill9_step(c: Campaign, i: int) -> Trial:
    c.reference()
    name = f"kill9_step_{i}"
    killed_at = kill_at(c, name, c.rng.randint(1, STEPS - 2))
    if killed_at is None:
        return Trial(False, "the run ended before the kill")
    out = c.train(name, "resume=auto")
    ok = resumed_exactly(c, out, name)
    return Trial(
        ok,
        f"killed after step {killed_at}; resume exit {out.returncode}; "
        f"{'identical' if ok else out.stderr[-500:]}",
    )


def kill9_save(c: Campaign, i: int) -> Trial:
    c.reference()
    name, nth = f"kill9_save_{i}", c.rng.randint(2, STEPS - 3)
    proc = c.spawn(name, every=1)
    folder = c.run_dir(name) / "checkpoints"
    seen: set[str] = set()

    def in_save() -> bool:
        if proc.poll() is not None:
            return True
        with contextlib.suppress(OSError):
            for entry in os.scandir(folder):
                if ".tmp-" in entry.name:
                    seen.add(str(rows(c.run_dir(name))))
                    return len(seen) >= nth
        return False

    wait_for(in_save, 120, poll=0.0005)
    if proc.poll() is not None:
        return Trial(False, f"the run ended before the kill (exit {proc.poll()})")
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    orphans = [p for p in folder.iterdir() if ".tmp-" in p.name]
    corrupt = 0
    if (folder / "last.pt").exists():
        try:
            ckpt.load_checkpoint(folder / "last.pt")
        except ckpt.CheckpointError:
            corrupt = 1
    out = c.train(name, "resume=true", "checkpoint.every_steps=1")
    left = [p for p in folder.iterdir() if ".tmp-" in p.name]
    ok = out.returncode == 0 and not corrupt and not left and c.matches("single", c.run_dir(name))
    counts = {"killed_during_save": int(bool(orphans)), "corrupt_last_pt": corrupt}
    return Trial(
        ok,
        f"{len(orphans)} orphan(s) at the kill, {len(left)} after the resume; "
        f"last.pt corrupt: {bool(corrupt)}; resume exit {out.returncode}",
        counts,
    )


def bitflip(c: Campaign, i: int) -> Trial:
    """In this process: flip one bit of a copy of the reference checkpoint and load it."""
    c.reference()
    source = c.run_dir("reference") / "checkpoints" / "last.pt"
    if "digest" not in c.refs:
        c.refs["digest"] = {"d": content_digest(_body(ckpt.load_checkpoint(source)))}
    copy = c.work / "flip.pt"
    shutil.copyfile(source, copy)
    where = "tensor" if c.rng.random() < 0.5 else "file"
    offset = _flip_in_tensor(copy, c.rng) if where == "tensor" else _flip_anywhere(copy, c.rng)
    try:
        state = ckpt.load_checkpoint(copy)
    except ckpt.CheckpointError as exc:
        return Trial(True, f"{where} byte {offset}: refused ({str(exc)[:80]})", {"refused": 1})
    same = content_digest(_body(state)) == c.refs["digest"]["d"]
    counts = {"harmless": int(same), "corrupt_accepted": int(not same)}
    return Trial(
        same, f"{where} byte {offset}: loaded, content {'identical' if same else 'CHANGED'}", counts
    )


def bitflip_resume(c: Campaign, i: int) -> Trial:
    """End to end: resume=true on a run whose last.pt had a bit flipped inside a tensor."""
    c.reference()
    name = f"bitflip_resume_{i}"
    first = c.train(name)
    if first.returncode != 0:
        return Trial(False, f"the first run failed: {first.stderr[-300:]}")
    _flip_in_tensor(c.run_dir(name) / "checkpoints" / "last.pt", c.rng)
    out = c.train(name, "resume=true")
    fell_back = "the newest intact checkpoint instead" in out.stderr
    ok = out.returncode == 0 and fell_back and c.matches("single", c.run_dir(name))
    return Trial(ok, f"exit {out.returncode}; fell back: {fell_back}", {"refused": int(fell_back)})


def _body(state: dict) -> dict:
    return {k: v for k, v in state.items() if k != "integrity"}


def _flip_anywhere(path: Path, rng: random.Random) -> int:
    offset = rng.randrange(path.stat().st_size)
    _flip(path, offset, rng.randrange(8))
    return offset


def _flip_in_tensor(path: Path, rng: random.Random) -> int:
    import zipfile

    with zipfile.ZipFile(path) as z:
        records = [r for r in z.infolist() if "/data/" in r.filename and r.file_size]
    record = rng.choice(records)
    with open(path, "rb") as f:
        f.seek(record.header_offset + 26)
        name_len, extra_len = (int.from_bytes(f.read(2), "little") for _ in range(2))
    offset = record.header_offset + 30 + name_len + extra_len + rng.randrange(record.file_size)
    _flip(path, offset, rng.randrange(8))
    return offset


def _flip(path: Path, offset: int, bit: int) -> None:
    with open(path, "r+b") as f:
        f.seek(offset)
        byte = f.read(1)[0]
        f.seek(offset)
        f.write(bytes([byte ^ (1 << bit)]))


def two_writers(c: Campaign, i: int) -> Trial:
    c.reference()
    name = f"two_writers_{i}"
    procs = [c.spawn(name, "resume=auto") for _ in range(2)]
    outs = [p.communicate(timeout=300) for p in procs]
    codes = sorted(p.returncode for p in procs)
    trained = sum("global batch" in err for _, err in outs)
    refused = sum("is in use by another run" in err for _, err in outs)
    steps = steps_logged(c.run_dir(name))
    clean = steps == list(range(1, STEPS + 1))
    concurrent = int(trained == 2 and codes == [0, 0] and not clean)
    ok = (
        clean
        and c.matches("single", c.run_dir(name))
        and (codes == [0, 2] and refused == 1 or codes == [0, 0])
    )
    return Trial(
        ok,
        f"exits {codes}; {refused} refused; steps logged once each: {clean}",
        {"concurrent_writers": concurrent, "refused": refused},
    )


def disk_full(c: Campaign, i: int) -> Trial:
    c.reference()
    # log-uniform from 1 KiB (train.log does not fit) to 3 checkpoints (a later save fails)
    room = int(math.exp(c.rng.uniform(math.log(1024), math.log(3 * _checkpoint_size(c)))))
    mnt = c.work / f"disk_{i}"
    mnt.mkdir()
    name = "full"
    over = [f"run.output_root={mnt}", f"run.name={name}", "log.tensorboard=true"]
    tmpfs = os.geteuid() == 0 and _mount(mnt, room)
    if tmpfs:
        out = c.train(name, *over)
    else:
        runner = c.work / "enospc_runner.py"
        runner.write_text(ENOSPC_RUNNER)
        args = [
            "train",
            str(c.recipe),
            *over,
            f"train.max_steps={STEPS}",
            f"checkpoint.every_steps={EVERY}",
        ]
        out = c.train(
            name,
            cmd=[sys.executable, str(runner), *args],
            env={"FAULTKIT_ROOM": str(room), "FAULTKIT_DISK": str(mnt)},
        )
    run_dir = mnt / name
    try:
        verdict, detail = _judge_full(out, run_dir, mnt)
        if not verdict:
            return Trial(False, detail)
        if tmpfs:  # room again: the same command continues
            subprocess.run(["mount", "-o", "remount,size=256m", str(mnt)], check=True)
        again = c.train(name, *over, "resume=auto")
        ok = again.returncode == 0 and c.matches("single", run_dir)
        how = "tmpfs" if tmpfs else "injected ENOSPC"
        named = re.search(r"exit 2 naming (\S+)", detail)
        return Trial(
            ok,
            f"{how}, {room} bytes: {detail}; resumed with room: exit {again.returncode}, "
            f"{'identical' if ok else again.stderr[-300:]}",
            {
                "failed_cleanly": int(out.returncode == 2),
                "fitted": int(out.returncode == 0),
                **({f"full_at_{Path(named.group(1)).name}": 1} if named else {}),
            },
        )
    finally:
        if tmpfs:
            subprocess.run(["umount", str(mnt)], check=False)


def _checkpoint_size(c: Campaign) -> int:
    return (c.run_dir("reference") / "checkpoints" / "last.pt").stat().st_size


def _mount(mnt: Path, size: int) -> bool:
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(mnt)], capture_output=True
    )
    return done.returncode == 0


def _judge_full(out, run_dir: Path, mnt: Path) -> tuple[bool, str]:
    if out.returncode == 0:
        return True, "everything fitted"
    err = out.stderr
    named = re.search(rf"could not write {re.escape(str(mnt))}/(\S+):", err)
    problems = []
    if out.returncode != 2:
        problems.append(f"exit {out.returncode}")
    if not no_traceback(err):
        problems.append("a traceback")
    if not named or "No space left on device" not in err:
        problems.append("no message naming a path on the full disk")
    folder = run_dir / "checkpoints"
    if folder.is_dir() and [p for p in folder.iterdir() if ".tmp-" in p.name]:
        problems.append("a temporary file left")
    if (folder / "last.pt").exists():
        try:
            ckpt.load_checkpoint(folder / "last.pt")
        except ckpt.CheckpointError:
            problems.append("last.pt corrupt")
    if problems:
        return False, "; ".join(problems) + f": {err[-400:]}"
    return True, f"exit 2 naming {named.group(1)}"


def torn_log(c: Campaign, i: int) -> Trial:
    c.reference()
    name = f"torn_log_{i}"
    killed_at = kill_at(c, name, c.rng.randint(EVERY + 1, STEPS - 2))
    if killed_at is None:
        return Trial(False, "the run ended before the kill")
    with open(c.run_dir(name) / "metrics.jsonl", "a") as f:
        f.write(f'{{"step": {killed_at + 1}, "loss": 0.')  # torn mid-write
    out = c.train(name, "resume=true")
    said = "is torn (a crash mid-write); dropped it" in out.stderr
    ok = said and resumed_exactly(c, out, name)
    return Trial(
        ok,
        f"killed after step {killed_at}; torn line {'reported' if said else 'NOT reported'}; "
        f"resume exit {out.returncode}",
    )


# damage that decoding can see; FFmpeg conceals a zeroed header or scrambled bytes inside a file
# (such a video decodes, so data check calls it ok: it is usable), see docs/faults.md
DAMAGES = ("deleted", "emptied", "truncated", "scrambled")


def videos(c: Campaign, i: int) -> Trial:
    from vssl_datasets.synth_disk import SynthSpec, write_layout

    from vssl_core.cli.main import main

    root = c.work / f"ucf_{i}"
    write_layout("ucf101", root, SynthSpec(num_classes=4, videos_per_class=3, frames=12, size=32))
    listed = (root / "ucfTrainTestlist" / "trainlist01.txt").read_text().split()
    paths = [f"UCF-101/{p}" for p in listed if p.endswith(".avi")]
    damaged = {
        p: c.rng.choice(DAMAGES) for p in c.rng.sample(paths, c.rng.randint(1, len(paths) - 1))
    }
    for rel, how in damaged.items():
        _damage(root / rel, how, c.rng)
    recipe = c.work / f"check_{i}.yaml"
    recipe.write_text(json.dumps({"data": {"dataset": {"name": "ucf101", "root": str(root)}}}))
    out_list = c.work / f"quarantine_{i}.txt"
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        code = main(["data", "check", str(recipe), "--workers", "1", "--out", str(out_list)])
    quarantined = {li for li in out_list.read_text().splitlines() if li and not li.startswith("#")}
    found = sum(rel in quarantined for rel in damaged)
    false = len(quarantined - set(damaged))
    ok = code == 1 and found == len(damaged) and not false
    kinds = ", ".join(f"{damaged[r]}" for r in sorted(damaged))
    return Trial(
        ok,
        f"{found}/{len(damaged)} damaged listed ({kinds}); {false} intact listed",
        {"damaged": len(damaged), "listed": found, "false_positives": false},
    )


def _damage(path: Path, how: str, rng: random.Random) -> None:
    if how == "deleted":
        path.unlink()
    elif how == "emptied":
        path.write_bytes(b"")
    elif how == "truncated":
        data = path.read_bytes()
        path.write_bytes(data[: rng.randint(len(data) // 8, len(data) // 2)])
    else:  # scrambled: the file's bytes replaced by random ones (a failed download, bit rot)
        path.write_bytes(rng.randbytes(path.stat().st_size))


def ddp_kill(c: Campaign, i: int) -> Trial:
    c.reference("ddp")
    name, at = f"ddp_kill_{i}", c.rng.randint(2, STEPS - 2)
    out, seconds = c.torchrun(name, stalling(), env={"FAULTKIT_KILL": f"1:{at}"})
    named = "Rank 1 stopped responding" in out.stderr
    clean = no_traceback(out.stderr.split("failed (exitcode")[0])
    resumed, _ = c.torchrun(name, stalling(), "resume=auto")  # none before the first save
    same = resumed.returncode == 0 and c.matches("ddp", c.run_dir(name))
    ok = out.returncode != 0 and named and clean and same
    return Trial(
        ok,
        f"rank 1 killed at step {at}: job ended in {seconds:.0f} s, rank 1 named: {named}, "
        f"no rank traceback: {clean}; resume {'identical' if same else 'DIFFERS'}",
        {"ranks_named": int(named)},
    )


def ddp_stall(c: Campaign, i: int) -> Trial:
    c.reference("ddp")
    at = c.rng.randint(3, STEPS - 2)  # the step whose data rank 1 gets stuck loading
    name, load = f"ddp_stall_{i}", 4 * (at - 1) + 1  # 4 clips per rank and step
    out, seconds = c.torchrun(name, stalling(load, STALL_S))
    messages = re.findall(r"error: rank (\d) \([^)]*\)\)?: no progress for (\d+) s", out.stderr)
    ranks = sorted({int(r) for r, _ in messages})
    waited = max((int(s) for _, s in messages), default=-1)
    named = f"ank 1 is alive but still loading the data of step {at}" in out.stderr
    within = seconds < STALL_S and 0 <= waited <= DDP_TIMEOUT_S + 2
    resumed, _ = c.torchrun(name, stalling(), "resume=auto")
    same = resumed.returncode == 0 and c.matches("ddp", c.run_dir(name))
    ok = out.returncode != 0 and ranks == [0, 1] and named and within and same
    return Trial(
        ok,
        f"rank 1 stuck in step {at}: ranks {ranks} ended after {waited} s without "
        f"progress (timeout {DDP_TIMEOUT_S} s), job {seconds:.0f} s; rank 1 named: {named}; "
        f"resume {'identical' if same else 'DIFFERS'}",
        {"ranks_ended_with_message": len(ranks)},
    )


# ---------------------------------------------------------------------------- fuzzer
@dataclass
class FuzzCase:
    kind: str
    files: dict[str, bytes]  # name -> content; "recipe.yaml" is validated
    overrides: list[str]


def _typo(word: str, rng: random.Random) -> str:
    """A misspelling of ``word`` (never ``word`` itself)."""
    i = rng.randrange(len(word))
    typo = word[:i] + rng.choice("xqz") + word[i + 1 :] if rng.random() < 0.5 else word + "s"
    return typo if typo != word else word + "x"


# values of the wrong type for keys of each type (a float for an int, a bool for a float, ...)
WRONG_TYPES = {
    "train.epochs": ["1.5", "[1]", "high", "true", "{a: 1}"],
    "batch.global_size": ["8.5", "[8]", "eight", "false"],
    "log.every_steps": ["0.5", "[]", "often", "{}"],
    "run.seed": ["1.0", "[0]", "seed", "true"],
    "data.num_workers": ["2.5", "many", "[2]"],
    "backbone.depth": ["1.5", "deep", "[1]"],
    "train.precision": ["fp16", "[bf16]", "16", "true"],
    "optim.name": ["adam", "[adamw]", "1"],
    "schedule.decay": ["cos", "2", "[cosine]"],
    "train.compile": ["2", "maybe", "[true]"],
    "run.name": ["[a]", "{a: 1}", "3", "true"],
    "objective.mask_ratio": ["[0.5]", "high", "{a: 1}", "true"],
    "optim.betas": ["[0.9]", "0.9", "[0.9, 0.99, 0.999]", "[a, b]"],
}


def fuzz_cases(n: int, rng: random.Random) -> list[FuzzCase]:
    from vssl_core.schema_ranges import RANGES

    base = TINY_RECIPE.encode()
    keys = sorted(RANGES)

    def ov(kind, *o):
        return FuzzCase(kind, {"recipe.yaml": base}, list(o))

    def filed(kind, text: bytes, **more):
        return FuzzCase(kind, {"recipe.yaml": text, **more}, [])

    def out_of_range():
        key = rng.choice(keys)
        bound = RANGES[key]
        low = bound.low if bound.low is not None else 0
        candidates = [low - 1, low - 1e3, -(2**70), 2**64, (bound.high or 2**63) * 4]
        value = rng.choice([v for v in candidates if not bound.holds(v)])
        if key in ("optim.betas", "schedule.milestones"):
            return ov(
                "range", f"{key}=[{value}, 0.5]" if key == "optim.betas" else f"{key}=[{value}]"
            )
        return ov("range", f"{key}={int(value) if float(value).is_integer() else value}")

    def non_finite():
        key = rng.choice(
            [k for k in keys if k not in ("optim.betas", "schedule.milestones")]
            + ["objective.mask_ratio", "backbone.drop_path_rate"]
        )
        return ov("non_finite", f"{key}={rng.choice(['.nan', '.inf', '-.inf', '1e400', '-1e999'])}")

    def wrong_type():
        key = rng.choice(sorted(WRONG_TYPES))
        return ov("type", f"{key}={rng.choice(WRONG_TYPES[key])}")

    def unknown_key():
        where = rng.choice(
            [
                "train.max_steps",
                "optim.lr",
                "objective.mask_ratio",
                "backbone.depth",
                "data.num_workers",
                "log.every_steps",
                "schedule.min_lr",
            ]
        )
        section, key = where.split(".")
        if rng.random() < 0.5:
            return ov("unknown_key", f"{section}.{_typo(key, rng)}=1")
        return ov("unknown_key", f"{_typo(section, rng)}.{key}=1")  # never a real section

    def component():
        kind = rng.choice(["objective", "backbone", "data.dataset", "data.decoder"])
        name = rng.choice(["{}", "[]", "1", "null", "vit_tinny", "", "no_such_thing", "3.5"])
        return ov("component", f"{kind}.name={name}")

    def non_string_key():
        if rng.random() < 0.5:
            sec = rng.choice(["train", "objective", "run", "optim"])
            key = rng.choice(["1", "2.5", "true", "null", "? [a, b]", "? {a: 1}"])
            return ov("non_string_key", f"{sec}={{{key}: 1}}")
        key = rng.choice(["1", "2.5", "true", "null", "~"])
        return filed("non_string_key", base.replace(b"log: {", f"log: {{{key}: 1, ".encode()))

    def yaml_error():
        broken = rng.choice(
            [
                base + b"extra: [1, 2\n",
                base + b"run: {name: again}\n",  # a duplicate key
                base.replace(b"  num_workers: 0", b"\tnum_workers: 0"),
                base + b"key: 'unclosed\n",
                base.replace(b"batch: {global_size: 8}", b"batch: {global_size: 8"),
                base + b"- a list item after a mapping\n",
                base + b": no key\n",
                base + b"anchor: *nowhere\n",
            ]
        )
        return filed("yaml_error", broken)

    def alias_bomb():
        width, depth = rng.randint(6, 12), rng.randint(6, 10)  # >= 6**6 = 46,656 values
        lines = [f"a0: &a0 [{', '.join(['x'] * width)}]"]
        for d in range(1, depth):
            lines.append(f"a{d}: &a{d} [{', '.join([f'*a{d - 1}'] * width)}]")
        text = "\n".join(lines) + "\n"
        if rng.random() < 0.2:
            return filed("alias_bomb", b"a: &a [*a, *a]\n")
        if rng.random() < 0.5:
            flow = (
                "{"
                + ", ".join(
                    f"k{j}: &b{j} [*b{j - 1}, *b{j - 1}, *b{j - 1}, *b{j - 1}, *b{j - 1}, *b{j - 1}]"
                    if j
                    else "k0: &b0 [1, 1, 1, 1, 1, 1]"
                    for j in range(depth)
                )
                + "}"
            )
            return ov("alias_bomb", f"objective.extra={flow}")
        return filed("alias_bomb", base + text.encode())

    def deep():
        depth = rng.choice([33, 40, 100, 1000, 5000])
        if rng.random() < 0.5:
            return filed("deep", base + b"deep: " + b"[" * depth + b"]" * depth + b"\n")
        return ov("deep", "objective.deep=" + "{a: " * depth + "1" + "}" * depth)

    def oversized():
        if rng.random() < 0.5:
            n = rng.choice([30_000, 100_000, 200_000])
            return filed("oversized", base + "".join(f"k{j}: {j}\n" for j in range(n)).encode())
        return filed("oversized", base + b"# " + b"x" * (300 * 1024) + b"\n")

    def encoding():
        return filed(
            "encoding",
            rng.choice(
                [
                    base + "run2: {name: caf\xe9}\n".encode("latin-1"),
                    rng.randbytes(rng.randint(1, 4096)) + b"\xff\xfe\x00",
                    b"\x00" * 64,
                    b"",
                    b"- just\n- a list\n",
                    b"just a scalar\n",
                    b"42\n",
                ]
            ),
        )

    def includes():
        pick = rng.randrange(5)
        if pick == 0:
            return filed(
                "include",
                b"defaults: [b.yaml]\n" + base,
                **{"b.yaml": b"defaults: [recipe.yaml]\n"},
            )
        if pick == 1:
            return filed("include", b"defaults: [no_such_file.yaml]\n" + base)
        if pick == 2:
            return filed("include", b"defaults: 3\n" + base)
        if pick == 3:
            return filed("include", b"defaults: [1, 2]\n" + base)
        return filed("include", b"defaults: [/dev/null]\n" + base)

    def bad_override():
        return ov(
            "override",
            rng.choice(
                [
                    "train.max_steps",
                    "=3",
                    "train..max_steps=3",
                    "train.max_steps.x=3",
                    ".train=1",
                    "train.max_steps=",
                    "run.name.x=a",
                    "train=",
                    "train=[1, 2]",
                    "optim=3",
                    "train.max_steps=${nowhere.key}",
                    "run.name=${run.name}x${",
                    "data=",
                ]
            ),
        )

    def run_name():
        return ov(
            "run_name",
            f"run.name={rng.choice(['', '/abs/path', '../up', 'a//b', '.', 'a/../b', ' '])}",
        )

    def missing_value():
        return ov(
            "missing",
            rng.choice(
                ["data.dataset.num_samples=???", "train.epochs=???", "objective.mask_ratio=???"]
            ),
        )

    makers = [
        out_of_range,
        non_finite,
        wrong_type,
        unknown_key,
        component,
        non_string_key,
        yaml_error,
        alias_bomb,
        deep,
        oversized,
        encoding,
        includes,
        bad_override,
        run_name,
        missing_value,
    ]
    return [rng.choice(makers)() for _ in range(n)]


class _CurrentStderr:
    """A stream that writes to whatever sys.stderr is now (logging keeps its stream)."""

    def write(self, text: str) -> int:
        return sys.stderr.write(text)

    def flush(self) -> None:
        sys.stderr.flush()


def fuzz_one(c: Campaign, case: FuzzCase, i: int, subprocess_too: bool) -> Trial:
    from vssl_core.cli.main import main

    folder = c.work / "fuzz" / str(i)
    folder.mkdir(parents=True)
    for name, data in case.files.items():
        (folder / name).write_bytes(data)
    argv = ["validate", str(folder / "recipe.yaml"), *case.overrides]

    def hang(signum, frame):
        raise TimeoutError

    previous = signal.signal(signal.SIGALRM, hang)
    err, out = io.StringIO(), io.StringIO()
    start = time.perf_counter()
    signal.alarm(int(FUZZ_LIMIT_S * 4))  # a hang still ends; the limit is judged below
    try:
        with contextlib.redirect_stderr(err), contextlib.redirect_stdout(out):
            code = main(argv)
    except TimeoutError:
        code = "hang"
    except BaseException as exc:  # noqa: BLE001 (an escaped exception is the finding)
        code, err = "exception", io.StringIO(f"Traceback (most recent call last): {exc!r}")
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)
    seconds = time.perf_counter() - start
    text = err.getvalue() + out.getvalue()
    problems = []
    if code != 2:
        problems.append(f"exit {code}")
    if not no_traceback(text):
        problems.append("traceback")
    if seconds >= FUZZ_LIMIT_S:
        problems.append(f"{seconds:.1f} s")
    counts = {
        "hang": int(code == "hang"),
        "traceback": int(not no_traceback(text)),
        "accepted": int(code == 0),
        "slow": int(seconds >= FUZZ_LIMIT_S),
    }
    detail = f"{case.kind}: {(case.overrides or ['(file)'])[0][:60]!r}: {text.strip()[:100]!r}"
    if subprocess_too:
        e2e = subprocess.run(
            [sys.executable, "-m", "vssl_core.cli", *argv],
            capture_output=True,
            text=True,
            env=c.env,
            cwd=folder,
            timeout=120,
        )
        counts["subprocess"] = 1
        if e2e.returncode != 2 or not no_traceback(e2e.stderr):
            problems.append(f"as a process: exit {e2e.returncode}")
            counts["subprocess_failed"] = 1
    shutil.rmtree(folder)
    return Trial(
        not problems,
        ("; ".join(problems) + ": " if problems else "") + detail,
        {**counts, f"kind_{case.kind}": 1, "ms": int(seconds * 1000)},
    )


# ---------------------------------------------------------------------------- the campaign
SCENARIOS: dict[str, tuple[Callable[[Campaign, int], Trial], int, int]] = {
    # name: (trial, trials in the full campaign, in --tiny)
    "kill9_step": (kill9_step, 20, 1),
    "kill9_save": (kill9_save, 20, 1),
    "bitflip": (bitflip, 500, 20),
    "bitflip_resume": (bitflip_resume, 4, 1),
    "two_writers": (two_writers, 8, 1),
    "disk_full": (disk_full, 12, 1),
    "torn_log": (torn_log, 6, 1),
    "videos": (videos, 12, 1),
    "ddp_kill": (ddp_kill, 4, 0),
    "ddp_stall": (ddp_stall, 4, 0),
}
FUZZ_CASES = {"full": 1200, "tiny": 40}
SUBPROCESS_EVERY = 50


def run_campaign(args: argparse.Namespace) -> dict:
    torch.set_num_threads(1)
    # a SIGTERM to the campaign still ends its training processes (the finally below)
    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(128 + signum))
    logging.basicConfig(level=logging.INFO, stream=_CurrentStderr())  # see fuzz_one
    chosen = args.only.split(",") if args.only else [*SCENARIOS, "fuzz"]
    unknown = set(chosen) - set(SCENARIOS) - {"fuzz"}
    if unknown:
        raise SystemExit(
            f"--only: unknown scenario(s) {sorted(unknown)}; choose from {[*SCENARIOS, 'fuzz']}"
        )
    work = Path(tempfile.mkdtemp(prefix="vssl_faults_"))
    (work / "tiny.yaml").write_text(TINY_RECIPE)
    (work / "faultkit.py").write_text(FAULTKIT)
    env = dict(
        os.environ,
        OMP_NUM_THREADS="1",
        PYTHONPATH=os.pathsep.join(
            [str(work), str(ROOT), str(ROOT / "plugins"), os.environ.get("PYTHONPATH", "")]
        ),
    )
    sys.path.insert(0, str(work))
    c = Campaign(work, random.Random(args.seed), args.tiny, env)
    results, started = [], time.monotonic()
    try:
        for name in chosen:
            results.append(_scenario(c, name, args))
    finally:
        c.cleanup()
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
    return {
        "date": datetime.date.today().isoformat(),
        "command": "python benchmarks/faults.py " + " ".join(args.argv),
        "seed": args.seed,
        "machine": f"{os.cpu_count()} CPU cores, Python {sys.version.split()[0]}, torch {torch.__version__}, "
        f"{'root (tmpfs disk-full)' if os.geteuid() == 0 else 'not root (injected ENOSPC)'}",
        "minutes": round((time.monotonic() - started) / 60, 1),
        "scenarios": results,
    }


def _scenario(c: Campaign, name: str, args) -> dict:
    start = time.monotonic()
    trials: list[Trial] = []
    if name == "fuzz":
        n = args.trials if args.trials is not None else FUZZ_CASES["tiny" if args.tiny else "full"]
        for i, case in enumerate(fuzz_cases(n, c.rng)):
            trials.append(fuzz_one(c, case, i, subprocess_too=i % SUBPROCESS_EVERY == 0))
    else:
        trial, full, tiny = SCENARIOS[name]
        for i in range(args.trials if args.trials is not None else tiny if args.tiny else full):
            try:
                trials.append(trial(c, i))
            except Exception as exc:  # noqa: BLE001 (a crash of the harness is a failed trial)
                trials.append(Trial(False, f"harness error: {type(exc).__name__}: {exc}"))
            finally:
                c.cleanup()
    counts: dict[str, int] = {}
    for t in trials:
        for k, v in t.counts.items():
            counts[k] = counts.get(k, 0) + v
    if name == "fuzz" and trials:
        ms = sorted(t.counts["ms"] for t in trials)
        counts.pop("ms", None)
        counts["max_ms"], counts["median_ms"] = ms[-1], ms[len(ms) // 2]
    row = {
        "scenario": name,
        "trials": len(trials),
        "passes": sum(t.ok for t in trials),
        "failures": sum(not t.ok for t in trials),
        "counts": counts,
        "seconds": round(time.monotonic() - start, 1),
        "failed": [t.detail for t in trials if not t.ok][:20],
        "examples": [t.detail for t in trials[:3]],
    }
    print(
        f"{name:<15} {row['passes']:>5}/{row['trials']:<5} passed  ({row['seconds']:.0f} s)  "
        f"{json.dumps(counts)}",
        flush=True,
    )
    for detail in row["failed"][:5]:
        print(f"    FAILED: {detail[:300]}", flush=True)
    return row


def markdown(payload: dict) -> str:
    lines = ["| scenario | trials | passes | failures | counts |", "|---|---|---|---|---|"]
    for r in payload["scenarios"]:
        counts = ", ".join(f"{k} {v}" for k, v in r["counts"].items() if not k.startswith("kind_"))
        lines.append(
            f"| {r['scenario']} | {r['trials']} | {r['passes']} | {r['failures']} | {counts} |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--tiny", action="store_true", help="one or two trials per scenario, no DDP")
    p.add_argument("--only", metavar="A,B", help="these scenarios only")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--trials", type=int, metavar="N", help="N trials of each chosen scenario")
    p.add_argument("--json", metavar="FILE", help="write the results here")
    p.add_argument("--keep", action="store_true", help="keep the work folder (printed)")
    args = p.parse_args(argv)
    args.argv = list(argv if argv is not None else sys.argv[1:])
    payload = run_campaign(args)
    print(markdown(payload))
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps(payload, indent=1) + "\n")
    return 0 if all(r["failures"] == 0 for r in payload["scenarios"]) else 1


if __name__ == "__main__":
    sys.exit(main())
