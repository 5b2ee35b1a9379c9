"""Component registries: one name in one registry per kind, with the plugin that provided it.

Components are marked at their definition site with :func:`component`; a plugin's
``vssl_register_components`` hook hands its modules (or objects) to the :class:`Registry`, which
records which plugin registered each name. There is no global registry: the plugin host owns one.
"""

from __future__ import annotations

import difflib
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from types import ModuleType
from typing import Any

KINDS: tuple[str, ...] = (
    "dataset",
    "decoder",
    "backbone",
    "objective",
    "head",
    "protocol",
    "monitor",
    "logger",
)

_MARK = "__vssl_component__"


@dataclass(frozen=True)
class ComponentMark:
    kind: str
    name: str
    aliases: tuple[str, ...] = ()
    capabilities: frozenset[str] = frozenset()
    requires: frozenset[str] = frozenset()


def component(
    kind: str,
    name: str | None = None,
    aliases: Iterable[str] = (),
    capabilities: Iterable[str] = (),
    requires: Iterable[str] = (),
) -> Callable[[Callable], Callable]:
    """Mark a class or factory as a component of ``kind``; the name defaults to its own name.

    ``capabilities`` (what a backbone offers, e.g. "token_mask") and ``requires`` (what an
    objective needs of its backbone) let a recipe pairing be checked before anything is built.
    Marking does not register anything: the plugin's hook passes the module to
    :meth:`Registry.add_module`, so importing a plugin never mutates shared state.
    """
    if kind not in KINDS:
        raise ValueError(f"unknown component kind {kind!r}; valid kinds: {', '.join(KINDS)}")

    def mark(obj: Callable) -> Callable:
        setattr(
            obj,
            _MARK,
            ComponentMark(
                kind,
                name or obj.__name__,
                tuple(aliases),
                frozenset(capabilities),
                frozenset(requires),
            ),
        )
        return obj

    return mark


@dataclass(frozen=True)
class Entry:
    kind: str
    name: str
    factory: Callable[..., Any]
    plugin: str
    alias_of: str | None = None

    @property
    def mark(self) -> ComponentMark:
        return getattr(self.factory, _MARK, None) or ComponentMark(self.kind, self.name)

    @property
    def doc(self) -> str:
        text = (self.factory.__doc__ or "").strip()
        return text.splitlines()[0] if text else ""


class RegistryError(Exception):
    """A registration or lookup problem; the message names the fix."""


class DuplicateComponentError(RegistryError):
    pass


class UnknownComponentError(RegistryError, KeyError):
    def __str__(self) -> str:  # KeyError would otherwise quote the message
        return str(self.args[0])


@dataclass
class Registry:
    """All registered components, by kind then name."""

    entries: dict[str, dict[str, Entry]] = field(default_factory=lambda: {k: {} for k in KINDS})
    loaded_plugins: list[str] = field(default_factory=list)
    failed_plugins: dict[str, str] = field(default_factory=dict)

    def add(self, obj: Callable, plugin: str, kind: str | None = None, name: str | None = None):
        """Register ``obj``; ``kind``/``name`` default to its :func:`component` mark."""
        mark: ComponentMark | None = getattr(obj, _MARK, None)
        kind = kind or (mark.kind if mark else None)
        if kind not in KINDS:
            raise RegistryError(
                f"plugin {plugin!r}: cannot register {obj!r} without a kind; mark it with "
                f"@component(kind) (kinds: {', '.join(KINDS)})"
            )
        name = name or (mark.name if mark else obj.__name__)
        self._put(Entry(kind, name, obj, plugin))
        for alias in mark.aliases if mark else ():
            self._put(Entry(kind, alias, obj, plugin, alias_of=name))

    def add_module(self, module: ModuleType, plugin: str) -> int:
        """Register every marked component defined in ``module``; returns how many."""
        found = [
            obj
            for obj in vars(module).values()
            if isinstance(getattr(obj, _MARK, None), ComponentMark)
            and getattr(obj, "__module__", None) == module.__name__
        ]
        for obj in found:
            self.add(obj, plugin)
        return len(found)

    def _put(self, entry: Entry) -> None:
        table = self.entries[entry.kind]
        old = table.get(entry.name)
        if old is not None and old.factory is not entry.factory:
            raise DuplicateComponentError(
                f"{entry.kind} {entry.name!r} is registered twice: by plugin {old.plugin!r} and by "
                f"plugin {entry.plugin!r}. Rename one of them, or block one plugin with "
                f"--no-plugin {entry.plugin}."
            )
        table[entry.name] = entry

    def get(self, kind: str, name: str) -> Entry:
        if kind not in KINDS:
            raise RegistryError(f"unknown component kind {kind!r}; valid kinds: {', '.join(KINDS)}")
        table = self.entries[kind]
        if name in table:
            return table[name]
        raise UnknownComponentError(self._unknown_message(kind, name))

    def names(self, kind: str) -> list[str]:
        return sorted(self.entries[kind])

    def providing(self, kind: str, capabilities: Iterable[str]) -> list[str]:
        """Names of ``kind`` components that declare all of ``capabilities``."""
        need = set(capabilities)
        return [n for n in self.names(kind) if need <= self.entries[kind][n].mark.capabilities]

    def _unknown_message(self, kind: str, name: str) -> str:
        available = self.names(kind)
        close = difflib.get_close_matches(str(name), available, n=3, cutoff=0.5)
        lines = [f"unknown {kind} {name!r}."]
        if close:
            lines.append(f"  did you mean: {', '.join(close)}?")
        lines.append(f"  available {kind}s: {', '.join(available) or '(none)'}")
        lines.append(f"  loaded plugins: {', '.join(self.loaded_plugins) or '(none)'}")
        if self.failed_plugins:
            failed = "; ".join(f"{p} ({why})" for p, why in self.failed_plugins.items())
            lines.append(f"  plugins that failed to load: {failed}")
        lines.append(
            "  `vssl list " + kind + "` shows them all; a component from another package needs "
            "that package installed (it registers through the `vssl` entry-point group)."
        )
        return "\n".join(lines)
