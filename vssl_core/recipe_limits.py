"""Bounds on what a recipe may hold, so that every malformed input is a fast, clear error.

A real recipe is a few hundred values in a few kilobytes (the largest shipped one is 12 KB).
Without bounds, a 10-line YAML alias bomb expands to a billion values when the recipe is merged,
a 5,000-deep list overflows the parser's recursion, and a 2-MB file of keys takes a minute to
parse. The bounds here are 20x or more above any real recipe and keep the worst input under a
second or two. The checks walk each shared (aliased) node once, so they cost what the loaded
document costs, never what it would expand to.
"""

from __future__ import annotations

from typing import Any

from vssl_core.schema import RecipeError

MAX_BYTES = 256 * 1024  # one recipe file or one override value
MAX_VALUES = 20_000  # mappings, lists and scalars of a recipe, aliases expanded
MAX_DEPTH = 32  # nesting of mappings and lists
MAX_OVERRIDES = 10_000  # key=value arguments on one command line


def check_text_size(text: str | bytes, source: str) -> None:
    if len(text) > MAX_BYTES:
        raise RecipeError(
            f"{source}: {len(text):,} bytes, more than the {MAX_BYTES:,} a recipe may have; "
            "a recipe holds settings, not data (point to data files instead)"
        )


def check_structure(data: Any, source: str, root: str = "") -> None:
    """Refuse non-string keys (naming the key path), self-references, nesting deeper than
    ``MAX_DEPTH`` and more than ``MAX_VALUES`` values once aliases are expanded. ``root`` is the
    key path of ``data`` inside the recipe (an override's key)."""
    sizes: dict[int, tuple[int, int]] = {}  # id(container) -> (values, depth), aliases expanded
    open_ids: set[int] = set()  # containers whose children are being walked: a cycle if seen
    stack: list[tuple[Any, str, bool]] = [(data, root, False)]
    while stack:
        node, path, children_done = stack.pop()
        if not isinstance(node, dict | list):
            continue
        key = id(node)
        if children_done:
            kids = [sizes.get(id(c), (1, 0)) for c in _children(node)]
            values = 1 + sum(v for v, _ in kids)
            depth = 1 + max((d for _, d in kids), default=0)
            sizes[key] = (values, depth)
            open_ids.discard(key)
            _check_bounds(values, depth, path, source)
            continue
        if key in open_ids:
            raise RecipeError(
                f"{source}: {path or 'the recipe'} refers to itself (a YAML alias "
                "inside its own anchor); write the values out"
            )
        if key in sizes:
            continue
        if len(open_ids) >= MAX_DEPTH:
            raise _too_deep(path, source)
        open_ids.add(key)
        stack.append((node, path, True))
        items = node.items() if isinstance(node, dict) else enumerate(node)
        for k, child in items:
            if isinstance(node, dict) and not isinstance(k, str):
                raise RecipeError(
                    f"{source}: {path or 'the top level'}: key {k!r} ({type(k).__name__}) is not "
                    f"a string; recipe keys are names (quote it: '{k}': ...)"
                )
            stack.append((child, f"{path}.{k}" if path else str(k), False))


def _children(node: dict | list) -> list:
    return list(node.values()) if isinstance(node, dict) else node


def _check_bounds(values: int, depth: int, path: str, source: str) -> None:
    if depth > MAX_DEPTH:
        raise _too_deep(path, source)
    if values > MAX_VALUES:
        where = f" under {path}" if path else ""
        raise RecipeError(
            f"{source}: {values:,} values{where} once YAML aliases are expanded, more than the "
            f"{MAX_VALUES:,} a recipe may have (an alias bomb?); write the values out or "
            "point to a data file"
        )


def _too_deep(path: str, source: str) -> RecipeError:
    return RecipeError(
        f"{source}: {path or 'the recipe'} is nested more than {MAX_DEPTH} levels deep; a "
        "recipe is a few levels of sections and components"
    )
