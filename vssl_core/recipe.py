"""Recipe files: YAML with one composition rule, CLI overrides, interpolation and provenance.

Composition: a recipe may list other recipe files under ``defaults:`` (paths relative to the file,
else looked up in the plugins' recipe search paths). They are merged in order, then the file
itself: later values override earlier ones, mappings merge key by key, lists and scalars replace.
One refinement keeps components honest: a component mapping whose ``name`` changes is replaced
whole, so arguments of the old component never leak into the new one. CLI ``a.b=value`` overrides
apply last (values parsed as YAML). ``${a.b}`` interpolation is resolved after all merging.
"""

from __future__ import annotations

import copy
import io
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from omegaconf import OmegaConf
from omegaconf.errors import OmegaConfBaseException

from vssl_core.recipe_limits import (
    MAX_BYTES,
    MAX_OVERRIDES,
    check_structure,
    check_text_size,
)
from vssl_core.schema import RecipeError

CLI = "command line"
DEFAULT = "default"


@dataclass
class ComposedRecipe:
    """A recipe after composition: plain data plus, per leaf key path, who set it."""

    path: Path
    data: dict
    provenance: dict[str, str]


class _UniqueKeyLoader(yaml.SafeLoader):
    """A YAML loader that rejects duplicate keys (a silent last-wins is a classic config trap)."""


def _construct_mapping(loader: yaml.SafeLoader, node: yaml.MappingNode, deep: bool = False):
    seen: dict[Any, int] = {}
    for key_node, _ in node.value:
        key = loader.construct_object(key_node, deep=deep)
        if not isinstance(key, str | int | float | bool | None):  # a list or mapping as a key
            raise RecipeError(
                f"{node.start_mark.name}:{key_node.start_mark.line + 1}: key {key!r} is not a "
                "string; recipe keys are names"
            )
        if key in seen:
            raise RecipeError(
                f"{node.start_mark.name}:{key_node.start_mark.line + 1}: duplicate key {key!r} "
                f"(first at line {seen[key] + 1}); keep one"
            )
        seen[key] = key_node.start_mark.line
    return loader.construct_mapping(node, deep=deep)


_UniqueKeyLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)
# YAML 1.2 floats: PyYAML (YAML 1.1) reads `1e-3` as a string; a recipe means a number.
_UniqueKeyLoader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(
        r"""^(?:[-+]?(?:[0-9][0-9_]*)\.[0-9_]*(?:[eE][-+]?[0-9]+)?
        |[-+]?(?:[0-9][0-9_]*)(?:[eE][-+]?[0-9]+)
        |\.[0-9_]+(?:[eE][-+]?[0-9]+)?
        |[-+]?\.(?:inf|Inf|INF)
        |\.(?:nan|NaN|NAN))$""",
        re.X,
    ),
    list("-+0123456789."),
)


def load_yaml_text(text: str, source: str = "<text>"):
    """Parse ``text``; a document nested too deeply for the parser is a :class:`RecipeError`."""
    stream = io.StringIO(text)
    stream.name = source  # what the parser's error marks call the document
    try:
        return yaml.load(stream, Loader=_UniqueKeyLoader)
    except RecursionError:
        raise RecipeError(f"{source}: nested too deeply for a recipe") from None


def read_yaml(path: Path) -> dict:
    with open(path, "rb") as f:
        raw = f.read(MAX_BYTES + 1)
    check_text_size(raw, str(path))
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise RecipeError(
            f"{path}: not UTF-8 text (byte {exc.start}: {raw[exc.start : exc.start + 1]!r}); "
            "save the recipe as UTF-8"
        ) from None
    try:
        data = load_yaml_text(text, str(path))
    except yaml.YAMLError as exc:
        raise RecipeError(f"{path}: not valid YAML: {exc}") from None
    check_structure(data, str(path))
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise RecipeError(
            f"{path}: a recipe must be a mapping at the top, got {type(data).__name__}"
        )
    return data


class RecipeNotFoundError(RecipeError):
    """A recipe name that is neither a file nor in a recipe folder."""


def _candidates(name: Path, search_paths: Sequence[Path], relative_to: Path | None) -> list[Path]:
    """Where ``name`` may be, in lookup order, each once. In a recipe folder, a name may also
    start with the folder's own name: ``recipes/sigma.yaml`` finds ``sigma.yaml`` of a folder
    called ``recipes``, so the paths of a checkout work from any folder."""
    out = [name if relative_to is None or name.is_absolute() else relative_to / name]
    if not name.is_absolute():
        for folder in map(Path, search_paths):
            out.append(folder / name)
            if len(name.parts) > 1 and name.parts[0] == folder.name:
                out.append(folder.joinpath(*name.parts[1:]))
    return list(dict.fromkeys(out))


def find_recipe(
    name: str | Path, search_paths: Sequence[Path], relative_to: Path | None = None
) -> Path:
    """Resolve a recipe reference: as given (relative to the including file, if any), then in
    the recipe folders."""
    name = Path(name)
    for c in _candidates(name, search_paths, relative_to):
        if c.is_file():
            return c.resolve()
        if c.exists() and not c.is_dir():
            raise RecipeError(f"recipe {str(c)!r} is not a regular file; give a YAML file")
    raise RecipeNotFoundError(_not_found(name, search_paths, relative_to))


def _not_found(name: Path, search_paths: Sequence[Path], relative_to: Path | None) -> str:
    from vssl_core.recipe_catalog import catalog, suggest

    here = "the working directory" if relative_to is None else display_path(relative_to)
    folders = list(dict.fromkeys(str(p) for p in search_paths))
    lines = [
        f"recipe {str(name)!r} not found: no such file in {here}"
        + (f", nor in the recipe folders {', '.join(folders)}" if folders else "")
    ]
    runnable, fragments = suggest(
        str(name), catalog([(Path(p).name, Path(p)) for p in search_paths])
    )
    if runnable:
        lines.append(f"  did you mean: {', '.join(e.shown() for e in runnable)}?")
    if fragments:
        lines.append(
            f"  {'or' if runnable else 'did you mean'}: {', '.join(e.name for e in fragments)}? "
            "(a fragment, for the defaults: of a recipe)"
        )
    if relative_to is None:
        lines.append("  `vssl list recipes` lists the recipes found by name from any folder.")
    return "\n".join(lines)


def _leaves(data: Any, prefix: str = "") -> list[str]:
    if isinstance(data, dict) and data:
        return [leaf for k, v in data.items() for leaf in _leaves(v, f"{prefix}{k}.")]
    return [prefix[:-1]] if prefix else []


def _forget(prov: dict[str, str], path: str, old: Any) -> None:
    """Drop the provenance of the value at ``path`` (``old``): its own leaves, so merging n keys
    costs O(n), not a scan of the whole table per key."""
    for leaf in _leaves(old, path + ".") or [path]:
        prov.pop(leaf, None)


def merge_into(
    base: dict, top: dict, prov: dict[str, str], source: str | dict[str, str], prefix: str = ""
) -> None:
    """Merge ``top`` into ``base`` in place (the composition rule), recording provenance.

    ``source`` names where ``top`` came from, or maps each of its leaf paths to a source.
    """
    for key, value in top.items():
        path = f"{prefix}{key}"
        old = base.get(key)
        same_component = not (
            isinstance(old, dict)
            and isinstance(value, dict)
            and "name" in old
            and "name" in value
            and old["name"] != value["name"]
        )
        if isinstance(old, dict) and isinstance(value, dict) and same_component:
            merge_into(old, value, prov, source, path + ".")
            continue
        _forget(prov, path, old)
        base[key] = copy.deepcopy(value)
        for leaf in _leaves(value, path + ".") or [path]:
            prov[leaf] = source if isinstance(source, str) else source.get(leaf, "?")


def _compose(
    path: Path, search_paths: Sequence[Path], stack: tuple[Path, ...]
) -> tuple[dict, dict]:
    if path in stack:
        cycle = " -> ".join(str(p) for p in (*stack, path))
        raise RecipeError(f"recipe defaults form a cycle: {cycle}")
    raw = read_yaml(path)
    defaults = raw.pop("defaults", []) or []
    if not isinstance(defaults, list) or not all(isinstance(d, str) for d in defaults):
        raise RecipeError(f"{path}: `defaults:` must be a list of recipe file paths")
    data: dict = {}
    prov: dict[str, str] = {}
    for ref in defaults:
        sub_path = find_recipe(ref, search_paths, relative_to=path.parent)
        sub_data, sub_prov = _compose(sub_path, search_paths, (*stack, path))
        merge_into(data, sub_data, prov, sub_prov)
    merge_into(data, raw, prov, display_path(path))
    return data, prov


def compose_defaults(path: Path, search_paths: Sequence[Path] = ()) -> dict:
    """A recipe file with its ``defaults:`` merged in; interpolations and ``???`` left as
    written (what the file says, before a command line completes it)."""
    return _compose(Path(path).resolve(), search_paths, ())[0]


def display_path(path: Path) -> str:
    """A path as the user would type it: relative to the working directory when inside it."""
    try:
        return str(path.relative_to(Path.cwd()))
    except ValueError:
        return str(path)


def parse_override(text: str) -> tuple[list[str], Any]:
    if "=" not in text:
        raise RecipeError(f"override {text!r}: expected key.path=value (e.g. train.epochs=3)")
    key, value = text.split("=", 1)
    keys = key.strip().split(".")
    if not all(keys):
        raise RecipeError(f"override {text[:100]!r}: empty part in the key path {key[:100]!r}")
    source = f"override {key.strip()[:100]}="
    check_text_size(text, source)
    try:
        parsed = load_yaml_text(value, source) if value != "" else ""
    except yaml.YAMLError:
        parsed = value
    check_structure(parsed, source, root=key.strip())
    return keys, parsed


def apply_overrides(data: dict, prov: dict[str, str], overrides: Sequence[str]) -> None:
    if len(overrides) > MAX_OVERRIDES:
        raise RecipeError(
            f"{len(overrides):,} overrides, more than {MAX_OVERRIDES:,}; put them in a recipe file"
        )
    for text in overrides:
        keys, value = parse_override(text)
        node = data
        for i, k in enumerate(keys[:-1]):
            nxt = node.get(k)
            if nxt is None:
                nxt = node[k] = {}
            elif not isinstance(nxt, dict):
                where = ".".join(keys[: i + 1])
                raise RecipeError(f"override {text!r}: {where} is a value, not a mapping")
            node = nxt
        merge_into(
            node, {keys[-1]: value}, prov, CLI, ".".join(keys[:-1]) + "." if len(keys) > 1 else ""
        )


def _has_interpolation(node: Any) -> bool:
    if isinstance(node, dict):
        return any(_has_interpolation(v) for v in node.values())
    if isinstance(node, list):
        return any(_has_interpolation(v) for v in node)
    return isinstance(node, str) and "${" in node


def resolve_interpolations(data: dict, source: str) -> dict:
    if not _has_interpolation(data):  # omegaconf costs ~80 us per value: only when needed
        return data
    try:
        return OmegaConf.to_container(OmegaConf.create(data), resolve=True)  # type: ignore[return-value]
    except OmegaConfBaseException as exc:
        raise RecipeError(f"{source}: cannot resolve an interpolation: {exc}") from None


def compose_recipe(
    recipe: str | Path, overrides: Sequence[str] = (), search_paths: Sequence[Path] = ()
) -> ComposedRecipe:
    """Load ``recipe`` with its defaults and ``overrides``; interpolations resolved."""
    path = find_recipe(recipe, search_paths)
    data, prov = _compose(path, search_paths, ())
    apply_overrides(data, prov, overrides)
    check_structure(data, display_path(path))  # the sum of the files and overrides
    return ComposedRecipe(path=path, data=resolve_interpolations(data, str(path)), provenance=prov)


def add_default_provenance(recipe: dict, prov: dict[str, str]) -> dict[str, str]:
    """Provenance for a validated recipe: keys nobody set came from the schema defaults."""
    return {leaf: prov.get(leaf, DEFAULT) for leaf in _leaves(recipe)}


def dump_yaml(data: dict) -> str:
    return yaml.safe_dump(data, sort_keys=False, default_flow_style=None, width=100)


def dump_with_provenance(data: dict, prov: dict[str, str]) -> str:
    """YAML with a trailing ``# from <source>`` comment on every leaf line."""
    lines: list[str] = []

    def walk(node: Any, indent: int, prefix: str) -> None:
        for key, value in node.items():
            path = f"{prefix}{key}"
            pad = "  " * indent
            if isinstance(value, dict) and value:
                lines.append(f"{pad}{key}:")
                walk(value, indent + 1, path + ".")
            else:
                text = yaml.safe_dump({key: value}, default_flow_style=True, width=1000).strip()
                text = text[1:-1] if text.startswith("{") else text
                lines.append(f"{pad}{text}  # {prov.get(path, DEFAULT)}")

    walk(data, 0, "")
    return "\n".join(lines) + "\n"
