"""Running the docs: every shell command of README.md and docs/*.md, in document order.

What counts as a command: every line of a ``bash``/``sh``/``shell`` block (``\\`` continues a
line, ``#`` starts a comment), and every ``$ `` line of a ``console`` block or of a block without
a language (their other lines are output). A console command whose shown output has an
``error:`` line (or a traceback) is expected to fail.

Each command is run with bash in a scratch folder set up like a checkout (``recipes/``,
``benchmarks/`` linked, ``examples/`` copied), one folder per document, so a document's
sequence runs as a reader follows it. Files a document asks the reader to write (a ``yaml`` block
whose first line is ``# NAME.yaml``) are written there first. A :class:`Rule` table says how a
command is shortened or prepared, and which commands are not run here, each with its reason:
nothing is skipped silently.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from kit.optional import installed

ROOT = Path(__file__).resolve().parents[2]
SHELL = {"bash", "sh", "shell"}
PROMPT = "$ "


@dataclass(frozen=True)
class Command:
    doc: str  # the document, relative to the checkout ("docs/evaluation.md")
    line: int  # its line in the document
    text: str  # as written, continuation lines joined
    expect_error: bool = False  # its shown output is an error

    def __str__(self) -> str:
        return f"{self.doc}:{self.line}: {self.text}"


def documents(root: Path = ROOT) -> list[Path]:
    return [root / "README.md", *sorted((root / "docs").glob("*.md"))]


def _blocks(text: str) -> list[tuple[str, int, list[str]]]:
    """(language, line of the first content line, lines) of every fenced block."""
    out, lang, start, body = [], None, 0, []
    for i, line in enumerate(text.splitlines(), 1):
        fence = re.match(r"^\s*```+\s*([\w+-]*)", line)
        if fence and lang is None:
            lang, start, body = fence.group(1).lower(), i + 1, []
        elif fence and line.strip().strip("`") == "":
            out.append((lang, start, body))
            lang = None
        elif lang is not None:
            body.append(line)
    return out


def _strip_comment(line: str) -> str:
    """The line without a trailing `# comment` (a `#` after a blank, outside quotes)."""
    quote = None
    for i, ch in enumerate(line):
        if quote:
            quote = None if ch == quote else quote
        elif ch in "'\"":
            quote = ch
        elif ch == "#" and (i == 0 or line[i - 1].isspace()):
            return line[:i].rstrip()
    return line.rstrip()


def _join(lines: list[tuple[int, str]]) -> list[tuple[int, str]]:
    """Join ``\\``-continued lines; (line of the first, joined text)."""
    out: list[tuple[int, str]] = []
    pending: tuple[int, str] | None = None
    for n, raw in lines:
        text = _strip_comment(raw) if pending is None else _strip_comment(raw).strip()
        if pending is not None:
            text = f"{pending[1]} {text}"
            n = pending[0]
        if text.endswith("\\"):
            pending = (n, text[:-1].rstrip())
            continue
        pending = None
        if text.strip():
            out.append((n, text.strip()))
    return out


def extract(path: Path, root: Path = ROOT) -> list[Command]:
    doc = path.relative_to(root).as_posix()
    commands = []
    for lang, start, body in _blocks(path.read_text()):
        numbered = list(enumerate(body, start))
        if lang in SHELL:
            commands += [Command(doc, n, text) for n, text in _join(numbered)]
        elif lang in ("console", ""):
            commands += _console(doc, numbered)
    return commands


def _console(doc: str, numbered: list[tuple[int, str]]) -> list[Command]:
    """The ``$`` lines of a console block (with their continuations); expect an error where
    the output shown below one (up to the next ``$``) has one."""
    found: list[tuple[int, str, list[str]]] = []
    i = 0
    while i < len(numbered):
        n, line = numbered[i]
        if not line.startswith(PROMPT):
            if found:
                found[-1][2].append(line)
            i += 1
            continue
        parts = [(n, line[len(PROMPT) :])]
        while parts[-1][1].rstrip().endswith("\\") and i + 1 < len(numbered):
            i += 1
            parts.append(numbered[i])
        (_, text), *_ = _join(parts)
        found.append((n, text, []))
        i += 1
    return [
        Command(doc, n, text, any(o.startswith(("error:", "Traceback")) for o in output))
        for n, text, output in found
    ]


def named_files(paths: Sequence[Path]) -> dict[str, str]:
    """Files the documents ask the reader to write: ``yaml`` blocks whose first line is
    ``# NAME.yaml`` (name -> content)."""
    files = {}
    for path in paths:
        for lang, _, body in _blocks(path.read_text()):
            head = re.match(r"#\s*([\w./-]+\.ya?ml)\s*$", body[0]) if body else None
            if lang in ("yaml", "yml") and head:
                files[head.group(1)] = "\n".join(body[1:]) + "\n"
    return files


# ------------------------------------------------------------------------------ rules


@dataclass(frozen=True)
class Rule:
    """How to run the commands of ``doc`` (``*``: any document) that ``match`` (a regex)
    finds. ``skip``: not run here, and why. ``before``: shell run first, doing what the text
    around the command describes in prose. ``rewrite``: the command as run (shortened).
    ``rc``/``output``: the exit status and a regex of the output expected. ``needs``: a module
    without which it is not run (an optional extra: its pass in CI runs it)."""

    doc: str
    match: str
    skip: str = ""
    before: str = ""
    rewrite: Callable[[str], str] | None = None
    rc: int | None = None
    output: str = ""
    needs: str = ""
    used: list = field(default_factory=list, compare=False)  # commands it applied to

    def applies(self, cmd: Command) -> bool:
        return self.doc in ("*", cmd.doc) and re.search(self.match, cmd.text) is not None


@dataclass
class Plan:
    command: Command
    run: str  # what is run ("" when skipped)
    skip: str = ""
    before: list[str] = field(default_factory=list)
    rc: int | None = None  # None: 0, or any failure where the document shows one
    output: str = ""
    seconds: float = 0.0


def plan(cmd: Command, rules: Sequence[Rule]) -> Plan:
    p = Plan(cmd, cmd.text)
    for rule in rules:
        if not rule.applies(cmd):
            continue
        rule.used.append(cmd)
        if rule.skip:
            return Plan(cmd, "", skip=rule.skip)
        if rule.needs and not installed(rule.needs):
            return Plan(cmd, "", skip=f"needs {rule.needs} (an optional extra), not installed")
        if rule.before:
            p.before.append(rule.before)
        if rule.rewrite:
            p.run = rule.rewrite(p.run)
        p.rc = rule.rc if rule.rc is not None else p.rc
        p.output = rule.output or p.output
    return p


def workspace(folder: Path, docs: Sequence[Path]) -> Path:
    """A scratch folder laid out like a checkout, holding the files the documents define."""
    folder.mkdir(parents=True, exist_ok=True)
    for name in ("recipes", "benchmarks"):
        (folder / name).symlink_to(ROOT / name)
    shutil.copytree(ROOT / "examples", folder / "examples", ignore=shutil.ignore_patterns(
        "build", "*.egg-info", "__pycache__"))  # fmt: skip
    for name, text in named_files(docs).items():
        (folder / name).write_text(text)
    return folder


def environment(site: Path) -> dict[str, str]:
    """vssl, torchrun and python of this test's interpreter first on PATH; packages a document
    installs go to ``site`` (on PYTHONPATH), never into the environment running the tests."""
    env = dict(os.environ)
    env["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", "")])
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(site), env.get("PYTHONPATH", "")) if p)
    env.update(OMP_NUM_THREADS="1", MPLBACKEND="Agg", VSSL_DOCS_SITE=str(site))
    env.pop("VSSL_DEBUG", None)
    # torchrun without --standalone listens on one port (29500): a port per pytest-xdist
    # worker, so that two documents' torchrun commands running at once do not meet
    worker = os.environ.get("PYTEST_XDIST_WORKER", "gw0").removeprefix("gw")
    env.setdefault("PET_MASTER_PORT", str(29500 + 7 * int(worker or 0)))
    return env


def run(p: Plan, cwd: Path, env: dict[str, str], timeout: float = 600) -> str | None:
    """Run one planned command; None if it went as expected, else what went wrong. Its wall
    time goes to ``p.seconds``."""
    start = time.monotonic()
    try:
        return _run(p, cwd, env, timeout)
    finally:
        p.seconds = time.monotonic() - start


def _run(p: Plan, cwd: Path, env: dict[str, str], timeout: float) -> str | None:
    for setup in p.before:
        done = _bash(setup, cwd, env, timeout)
        if done.returncode != 0:
            return f"setup `{setup}` exited {done.returncode}:\n{_tail(done.stdout)}"
    done = _bash(p.run, cwd, env, timeout)
    ok = (done.returncode == p.rc) if p.rc is not None else (
        done.returncode != 0 if p.command.expect_error else done.returncode == 0
    )  # fmt: skip
    if ok and p.output and not re.search(p.output, done.stdout):
        return f"output lacks /{p.output}/:\n{_tail(done.stdout)}"
    if not ok:
        return f"exited {done.returncode}:\n{_tail(done.stdout)}"
    return None


def _bash(script: str, cwd: Path, env: dict[str, str], timeout: float):
    return subprocess.run(
        ["bash", "-o", "pipefail", "-c", script],
        cwd=cwd,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        timeout=timeout,
    )


def _tail(text: str, n: int = 40) -> str:
    return "\n".join(text.splitlines()[-n:])
