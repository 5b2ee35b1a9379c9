"""docs/reference/api.md: the plugin author's and the Python user's API, rendered from the code
(the interfaces' field comments and docstrings, the contracts of :mod:`vssl_core.contracts`,
``component``'s signature, the hooks, :mod:`vssl_core.api`), so the page cannot drift from it.
"""

from __future__ import annotations

import dataclasses
import inspect
import typing
from collections.abc import Callable

from vssl_core import api, contracts, hookspecs, interfaces, registry
from vssl_core.nn import schedules
from vssl_core.schema import INJECTED
from vssl_core.typecheck import type_name


def field_comments(cls: type) -> dict[str, str]:
    """The trailing ``# comment`` of each dataclass field: the class's own documentation."""
    comments = {}
    for line in inspect.getsource(cls).splitlines():
        name, _, rest = line.strip().partition(":")
        if "#" in rest and name.isidentifier():
            comments[name] = rest.split("#", 1)[1].strip()
    return comments


def _doc(obj: object) -> str:
    return inspect.cleandoc(inspect.getdoc(obj) or "")


def _signature(fn: Callable, name: str | None = None) -> str:
    """``name(arg: type = default, ...) -> type`` with annotations as written (no quotes) and
    defaults as their repr; ``self`` left out."""
    sig = inspect.signature(fn)

    def ann(a: object) -> str:
        return a if isinstance(a, str) else inspect.formatannotation(a)

    parts = []
    for p in sig.parameters.values():
        if p.name == "self":
            continue
        text = p.name if p.annotation is p.empty else f"{p.name}: {ann(p.annotation)}"
        parts.append(text if p.default is p.empty else f"{text} = {p.default!r}")
    ret = "" if sig.return_annotation is sig.empty else f" -> {ann(sig.return_annotation)}"
    return f"{name or fn.__name__}({', '.join(parts)}){ret}"


def _fields_table(cls: type) -> list[str]:
    """Every field with its type, default and meaning; a field without a comment is an error
    (the comment is its documentation)."""
    comments = field_comments(cls)
    hints = typing.get_type_hints(cls)
    out = ["| field | type | default | meaning |", "|---|---|---|---|"]
    for f in dataclasses.fields(cls):
        if f.name not in comments:
            raise ValueError(
                f"{cls.__name__}.{f.name} has no trailing # comment; document the field there"
            )
        if f.default is not dataclasses.MISSING:
            default = f"`{f.default!r}`"
        elif f.default_factory is not dataclasses.MISSING:
            default = f"`{f.default_factory()!r}`"
        else:
            default = "required"
        out.append(f"| `{f.name}` | {type_name(hints[f.name])} | {default} | {comments[f.name]} |")
    return out + [""]


def _members(cls: type, names: list[str]) -> list[str]:
    out = []
    for name in names:
        member = inspect.getattr_static(cls, name)
        if isinstance(member, property):
            out += [f"#### `{cls.__name__}.{name}` (property)", "", _doc(member.fget), ""]
        else:
            out += [f"#### `{cls.__name__}.{_signature(member, name)}`", "", _doc(member), ""]
    return out


def _contract_table(members: tuple[contracts.Member, ...]) -> list[str]:
    out = ["| member | type | what the core relies on |", "|---|---|---|"]
    out += [f"| `{m.name}` | {m.type} | {m.meaning} |" for m in members]
    return out + [""]


def _section(cls: type) -> list[str]:
    return [f"## `{cls.__module__}.{cls.__name__}`", "", _doc(cls), ""]


def _objective() -> list[str]:
    out = _section(interfaces.Objective)
    out += ["What `vssl_core.build` checks when an objective is built:", ""]
    out += _contract_table(contracts.OBJECTIVE)
    out += ["### Methods", ""]
    out += _members(
        interfaces.Objective,
        [
            "views",
            "forward",
            "after_step",
            "begin_run",
            "set_run_step",
            "run_fraction",
            "no_weight_decay",
        ],
    )
    return out


def _run_info() -> list[str]:
    out = _section(interfaces.RunInfo) + _fields_table(interfaces.RunInfo)
    out += _members(interfaces.RunInfo, ["epochs", "epoch", "fraction"])
    out += [
        "### Schedules (`vssl_core.nn.schedules`)",
        "",
        _doc(schedules),
        "",
    ]
    for fn in (schedules.cosine_ramp, schedules.linear_ramp):
        out += [f"#### `{_signature(fn)}`", "", _doc(fn), ""]
    return out


def _view_spec() -> list[str]:
    spec = interfaces.ViewSpec
    out = _section(spec) + _fields_table(spec)
    out += [
        f"`augmentation`: {', '.join(f'`{v}`' for v in spec.AUGMENTATIONS)}; "
        f"`temporal`: {', '.join(f'`{v}`' for v in spec.TEMPORAL)}; "
        f"`pad`: {', '.join(f'`{v}`' for v in spec.PADS)}. A bad value or combination raises "
        "`ValueError` listing every problem when the spec is made.",
        "",
    ]
    return out + _members(spec, ["clip_span", "frames_needed", "num_views", "has_photometric"])


def _backbone() -> list[str]:
    out = ["## The backbone contract", "", _doc(interfaces.Backbone), ""]
    out += [
        "Checked when a backbone is built, and by `vssl validate` (built on the meta device); a "
        "problem names the member, the component and its plugin.",
        "",
    ]
    out += _contract_table(contracts.BACKBONE)
    for capability, members in contracts.CAPABILITY_CONTRACTS.items():
        out += [f"With the capability `{capability}` also:", ""]
        out += _contract_table(members)
    out += [
        "Optional, read when present: `unused_checkpoint_keys` (checkpoint keys the backbone "
        "has no place for, with the reason; see `vssl_core.convert`), `blocks` (transformer "
        "blocks, for `layer_decay`), `no_weight_decay()`.",
        "",
    ]
    return out


def _head() -> list[str]:
    injected = ", ".join(f"`{n}`" for n in INJECTED["head"])
    out = [
        "## The head contract",
        "",
        f"A `head` component's factory receives {injected} from vssl (the backbone's "
        "`num_features`, and the class count or 1 for counting); its other arguments come from "
        "the recipe's `objective.head` mapping. The built head:",
        "",
    ]
    return out + _contract_table(contracts.HEAD)


def _component() -> list[str]:
    out = [f"## `vssl_core.{_signature(registry.component)}`", "", _doc(registry.component), ""]
    out += [f"Kinds: {', '.join(f'`{k}`' for k in registry.KINDS)}.", ""]
    for name in ("add", "add_module"):
        fn = getattr(registry.Registry, name)
        out += [f"#### `Registry.{_signature(fn, name)}`", "", _doc(fn), ""]
    injected = "; ".join(
        f"{kind}: {', '.join(f'`{n}`' for n in names)}" for kind, names in INJECTED.items()
    )
    out += [f"Arguments vssl injects (a recipe cannot set them): {injected}.", ""]
    return out


def _hooks() -> list[str]:
    out = [
        "## Hooks",
        "",
        "Implement with `@vssl_core.hookimpl`; details in [hooks.md](hooks.md).",
        "",
        "| hook | when |",
        "|---|---|",
    ]
    for name in hookspecs.hook_names():
        first = _doc(getattr(hookspecs, name)).split("\n\n")[0].replace("\n", " ")
        out.append(f"| `{name}` | {first} |")
    return out + [""]


def _python_api() -> list[str]:
    out = ["## Python API (`vssl_core.api`)", "", _doc(api), ""]
    for name in api.__all__:
        obj = getattr(api, name)
        title = _signature(obj, name) if callable(obj) and not inspect.isclass(obj) else name
        out += [f"#### `{title}`", "", _doc(obj), ""]
    return out


def render_api_reference() -> str:
    out = [
        "# API reference",
        "",
        "Generated by `python -m vssl_core.cli.docs` from `vssl_core/interfaces.py`, "
        "`vssl_core/contracts.py`, `vssl_core/registry.py`, `vssl_core/hookspecs.py` and "
        "`vssl_core/api.py`. Do not edit. A plugin imports these from `vssl_core`; nothing else "
        "of the core is needed to write a method.",
        "",
    ]
    for part in (
        _component,
        _objective,
        _run_info,
        _view_spec,
        lambda: _section(interfaces.Batch) + _fields_table(interfaces.Batch),
        lambda: _section(interfaces.ObjectiveOutput) + _fields_table(interfaces.ObjectiveOutput),
        _backbone,
        _head,
        _hooks,
        _python_api,
    ):
        out += part()
    return "\n".join(out)
