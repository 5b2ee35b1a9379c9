"""Plugin discovery and loading (the pytest model: built-ins load exactly like third parties).

Every plugin is an entry point in the ``vssl`` group whose value is a module with hook
implementations. A plugin that fails to import or to register is reported, named, and left out;
everything else keeps working. Two plugins claiming one component name is a hard error.

Environment:
    VSSL_DISABLE_PLUGIN_AUTOLOAD=1   load only the plugins named in VSSL_PLUGINS (comma-separated)
    VSSL_NO_PLUGINS=a,b              never load these (same as ``--no-plugin`` on the CLI)
"""

from __future__ import annotations

import os
import traceback
import warnings
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any

import pluggy

from vssl_core import hookspecs
from vssl_core.registry import DuplicateComponentError, Registry

ENTRY_POINT_GROUP = "vssl"


class VsslPluginWarning(UserWarning):
    """A plugin could not be loaded; the rest of vssl still works."""


@dataclass
class PluginInfo:
    name: str
    distribution: str
    version: str
    status: str  # "loaded", "failed" or "blocked"
    reason: str = ""
    components: int = 0


@dataclass
class PluginHost:
    """The loaded plugins, their hooks and the components they registered."""

    pm: pluggy.PluginManager
    registry: Registry
    plugins: list[PluginInfo] = field(default_factory=list)

    @property
    def hook(self) -> Any:
        return self.pm.hook

    def recipe_folders(self) -> list[tuple[str, Path]]:
        """(plugin, folder) for every recipe folder, in search order: plugin load order."""
        return [
            (impl.plugin_name, Path(p))
            for impl in self.pm.hook.vssl_recipe_search_paths.get_hookimpls()
            for p in impl.function() or []
        ]

    def recipe_search_paths(self) -> list[Path]:
        return [folder for _, folder in self.recipe_folders()]

    def failed_note(self) -> str:
        """A line for "not found" errors: the plugins that failed to load, one of which may be
        what provides the missing recipe or component ("" when none failed)."""
        failed = self.registry.failed_plugins
        if not failed:
            return ""
        return "  plugins that failed to load (one may provide it): " + "; ".join(
            f"{name} ({why})" for name, why in failed.items()
        )


def _entry_points() -> list[metadata.EntryPoint]:
    eps = metadata.entry_points(group=ENTRY_POINT_GROUP)
    seen: dict[str, metadata.EntryPoint] = {}
    for ep in eps:  # the same distribution can be visible twice on sys.path; keep the first
        seen.setdefault(ep.name, ep)
    return sorted(seen.values(), key=lambda ep: ep.name)


def _csv_env(name: str) -> set[str]:
    return {p.strip() for p in os.environ.get(name, "").split(",") if p.strip()}


def load_plugins(blocked: Iterable[str] = (), extra: Sequence[tuple[str, Any]] = ()) -> PluginHost:
    """Discover, load and register every plugin; ``extra`` adds (name, module) pairs directly."""
    pm = pluggy.PluginManager(hookspecs.PROJECT)
    pm.add_hookspecs(hookspecs)
    host = PluginHost(pm=pm, registry=Registry())
    blocked = set(blocked) | _csv_env("VSSL_NO_PLUGINS")
    only = _csv_env("VSSL_PLUGINS") if os.environ.get("VSSL_DISABLE_PLUGIN_AUTOLOAD") else None

    candidates: list[tuple[str, str, str, Any]] = []
    for ep in _entry_points():
        dist = ep.dist.name if ep.dist else "?"
        version = ep.dist.version if ep.dist else "?"
        candidates.append((ep.name, dist, version, ep))
    candidates += [(name, "(in-process)", "", module) for name, module in extra]

    for name, dist, version, target in candidates:
        info = PluginInfo(name, dist, version, "loaded")
        host.plugins.append(info)
        if name in blocked or (only is not None and name not in only):
            info.status, info.reason = (
                "blocked",
                ("--no-plugin / VSSL_NO_PLUGINS" if name in blocked else "autoload disabled"),
            )
            continue
        try:
            module = target.load() if isinstance(target, metadata.EntryPoint) else target
            pm.register(module, name=name)
        except Exception as exc:  # an import error must not take vssl down with it
            _fail(host, info, describe_failure(exc, _package_of(target)))
    _check_unknown_hooks(host)
    _register_components(host)
    host.registry.loaded_plugins = [p.name for p in host.plugins if p.status == "loaded"]
    return host


def _package_of(target: Any) -> str:
    """The top-level package of a plugin (an entry point or a module), to find its own frames."""
    if isinstance(target, metadata.EntryPoint):
        return target.value.split(":")[0].split(".")[0]
    return (getattr(target, "__name__", "") or "").split(".")[0]


_MACHINERY = ("<frozen importlib", f"{os.sep}importlib{os.sep}", f"{os.sep}pluggy{os.sep}")


def describe_failure(exc: BaseException, package: str = "") -> str:
    """``Type: message (at file:line: source)``: where a plugin's import or hook failed. The
    place is the plugin's own line that led to the error (the innermost frame in its package),
    else the innermost frame outside the import machinery; a SyntaxError's own position."""
    text = f"{type(exc).__name__}: {exc}"
    if isinstance(exc, SyntaxError) and exc.filename:
        return f"{text} (at {exc.filename}:{exc.lineno})"
    frames = [
        f
        for f in traceback.extract_tb(exc.__traceback__)
        if not any(m in f.filename for m in _MACHINERY) and f.filename != __file__
    ]
    marks = (f"{os.sep}{package}{os.sep}", f"{os.sep}{package}.py")
    own = [f for f in frames if package and any(m in f.filename for m in marks)]
    if not (own or frames):
        return text
    f = (own or frames)[-1]
    line = f": {f.line.strip()}" if f.line else ""
    return f"{text} (at {f.filename}:{f.lineno}{line})"


def _fail(host: PluginHost, info: PluginInfo, reason: str) -> None:
    info.status, info.reason = "failed", reason
    host.registry.failed_plugins[info.name] = reason
    if host.pm.has_plugin(info.name):
        host.pm.unregister(name=info.name)
    warnings.warn(
        VsslPluginWarning(
            f"vssl plugin {info.name!r} (from {info.distribution}) failed to load and is skipped: "
            f"{reason}. Everything else still works; `vssl plugins` lists it as failed."
        ),
        stacklevel=3,
    )


def _check_unknown_hooks(host: PluginHost) -> None:
    """A ``vssl_*`` function marked as a hook but unknown to the specs is a typo: reject the plugin."""
    for hook_name, caller in list(vars(host.pm.hook).items()):
        if hook_name.startswith("vssl_") and getattr(caller, "spec", None) is None:
            for impl in list(caller.get_hookimpls()):
                info = next(p for p in host.plugins if p.name == impl.plugin_name)
                _fail(
                    host,
                    info,
                    f"implements unknown hook {hook_name!r}; known hooks: "
                    f"{', '.join(hookspecs.hook_names())}",
                )


def _register_components(host: PluginHost) -> None:
    for impl in host.pm.hook.vssl_register_components.get_hookimpls():
        info = next(p for p in host.plugins if p.name == impl.plugin_name)
        before = {k: dict(v) for k, v in host.registry.entries.items()}
        try:
            impl.function(registry=host.registry, plugin=impl.plugin_name)
        except DuplicateComponentError:
            raise
        except Exception as exc:
            host.registry.entries = before  # drop whatever it half-registered
            where = _package_of(impl.plugin)
            _fail(host, info, f"registering components raised {describe_failure(exc, where)}")
            continue
        info.components = sum(
            1
            for table in host.registry.entries.values()
            for e in table.values()
            if e.plugin == impl.plugin_name
        )
