"""The recipes that the recipe folders hold, and what each one is: `vssl list recipes`, and the
suggestions of a "recipe not found" error.

A recipe is *runnable* when, with its ``defaults:`` merged, it names an objective, a backbone
and a dataset (``vssl train``), and an *evaluation* recipe when it also names an
``eval.protocol`` (``vssl eval``); anything else is a *fragment*, meant for other recipes'
``defaults:`` (``base/cpu.yaml``, ``sigma/pretrain.yaml``). YAML files that are not recipes at
all (the zoo's published results) are left out.
"""

from __future__ import annotations

import dataclasses
import difflib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from vssl_core.schema import RecipeError, RecipeSchema

SECTIONS = {f.name for f in dataclasses.fields(RecipeSchema)} | {"defaults"}
KIND_ORDER = ("train", "eval", "fragment")


@dataclass(frozen=True)
class RecipeEntry:
    name: str  # what finds it from any folder: its path inside its recipe folder
    path: Path
    source: str  # the plugin whose recipe folder holds it
    kind: str  # train | eval | fragment
    needs: str  # the recipe keys naming data on disk ("" for the embedded data)
    summary: str  # the file's first comment line

    def shown(self, cwd: Path | None = None) -> str:
        """How a user types it: relative to the working directory when inside it
        (``recipes/rotation.yaml`` in a checkout), else its name (``rotation.yaml``)."""
        try:
            return str(self.path.relative_to(cwd or Path.cwd()))
        except ValueError:
            return self.name


def _summary(path: Path, limit: int = 100) -> str:
    """The first sentence of the file's leading comment, cut at a word within ``limit``."""
    words: list[str] = []
    for line in path.read_text().splitlines():
        text = line.strip()
        if not text.startswith("#") or not text.lstrip("# ").strip():
            if words:
                break
            continue
        words += text.lstrip("# ").split()
        sentence = " ".join(words)
        if sentence.endswith(".") or ". " in sentence or len(sentence) > limit:
            break
    sentence = " ".join(words).split(". ")[0]
    if len(sentence) <= limit:
        return sentence
    return sentence[: sentence.rfind(" ", 0, limit - 3)] + "..."


def _dataset_files(data: dict) -> str:
    """The keys of the recipe's datasets that name files on disk (a ``root`` or a ``path``)."""
    keys = []
    specs = {"data.dataset": (data.get("data") or {}).get("dataset")}
    specs.update(
        {f"eval.{k}": v for k, v in (data.get("eval") or {}).items() if k.endswith("_dataset")}
    )
    for where, spec in specs.items():
        if isinstance(spec, dict):
            keys += [
                f"{where}.{k}"
                for k in ("root", "path")
                if spec.get(k) and not str(spec[k]).startswith("${")  # not a copy of another
            ]
    return ", ".join(keys)


def classify(path: Path, search_paths: Sequence[Path]) -> tuple[str, str] | None:
    """(kind, data keys) of a recipe file; None when the file is no recipe."""
    from vssl_core.recipe import compose_defaults, read_yaml

    try:
        if not set(read_yaml(path)) <= SECTIONS:
            return None
        data = compose_defaults(path, search_paths)  # interpolations left: `root: ???` is fine
    except RecipeError:
        return "fragment", ""  # e.g. one whose defaults are found only from its includer
    named = all(
        isinstance(node, dict) and node.get("name")
        for node in (
            data.get("objective"),
            data.get("backbone"),
            (data.get("data") or {}).get("dataset"),
        )
    )
    if not named:
        return "fragment", ""
    protocol = (data.get("eval") or {}).get("protocol")
    kind = "eval" if isinstance(protocol, dict) and protocol.get("name") else "train"
    return kind, _dataset_files(data)


def catalog(folders: Sequence[tuple[str, Path]]) -> list[RecipeEntry]:
    """Every recipe of the (plugin, folder) pairs, in search order; a name found in an earlier
    folder shadows the same name in a later one, as the lookup does."""
    search_paths = [folder for _, folder in folders]
    seen: set[str] = set()
    out = []
    for source, folder in folders:
        if not folder.is_dir():
            continue
        for path in sorted(folder.rglob("*.yaml")):
            name = path.relative_to(folder).as_posix()
            if name in seen:
                continue
            seen.add(name)
            what = classify(path, search_paths)
            if what is not None:
                out.append(RecipeEntry(name, path, source, *what, _summary(path)))
    return out


def suggest(
    name: str, entries: Sequence[RecipeEntry], n: int = 3
) -> tuple[list[RecipeEntry], list[RecipeEntry]]:
    """Recipes close to a name that was not found, each once: (runnable ones, fragments closer
    than any runnable one). A fragment cannot run alone, so it is offered only as that."""
    given = Path(name)

    def score(e: RecipeEntry) -> float:
        base = difflib.SequenceMatcher(None, given.name, Path(e.name).name).ratio()
        full = difflib.SequenceMatcher(None, str(given), e.name).ratio()
        return max(base, full) + 0.01 * full

    close = sorted(((score(e), e) for e in entries), key=lambda x: -x[0])
    close = [(s, e) for s, e in close if s >= 0.6]
    runnable = [(s, e) for s, e in close if e.kind != "fragment"][:n]
    best = runnable[0][0] if runnable else 0.0
    fragments = [e for s, e in close if e.kind == "fragment" and s > best][:n]
    return [e for _, e in runnable], fragments
