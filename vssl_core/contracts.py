"""What the core and the built-in objectives rely on of a backbone, a head and an objective,
checked when the component is built (and, for backbones, by ``vssl validate``), so that a
missing ``num_features`` is one message naming the attribute and the plugin instead of a
traceback deep inside another component.

The contracts are data (:class:`Member` lists): the checks and the API reference
(docs/reference/api.md) are both made from them, so they cannot disagree.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from vssl_core.interfaces import Backbone, Objective

DOCS = "docs/reference/api.md"


class ContractError(ValueError):
    """A built component lacks what the core relies on; the message names the member, the
    component, its plugin and the fix."""


def _positive_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 1


def _int_triple(value: Any) -> bool:
    return isinstance(value, tuple | list) and len(value) == 3 and all(map(_positive_int, value))


def _overrides(base: type, name: str) -> Callable[[Any], bool]:
    """The object's class or one between it and ``base`` overrides ``name`` (the base's raises
    NotImplementedError)."""

    def check(obj: Any) -> bool:
        own = getattr(type(obj), name, None)
        return callable(own) and own is not getattr(base, name, None)

    return check


def _accepts(*params: str) -> Callable[[Any], bool]:
    def check(method: Any) -> bool:
        try:
            names = inspect.signature(method).parameters
        except (TypeError, ValueError):
            return False
        return all(p in names for p in params)

    return check


@dataclass(frozen=True)
class Member:
    """One attribute or method a component must have: ``check`` gets the attribute's value
    (``on_object``: the component itself)."""

    name: str
    type: str
    meaning: str
    check: Callable[[Any], bool]
    on_object: bool = False


BACKBONE: tuple[Member, ...] = (
    Member(
        "num_features",
        "int >= 1",
        "width of the pooled features `forward` returns; heads (`in_features`) and projectors "
        "are built with it",
        _positive_int,
    ),
    Member(
        "input_size",
        "(T, H, W), ints >= 1",
        "the clip size it is built for; objectives derive their `ViewSpec` (frames, crop) from it",
        _int_triple,
    ),
    Member(
        "forward",
        "method",
        "`forward(clip_BCTHW) -> [B, num_features]`: pooled features of normalized clips",
        _overrides(Backbone, "forward"),
        on_object=True,
    ),
    Member(
        "capabilities",
        "frozenset[str]",
        "what it offers beyond the above (e.g. `token_mask`); must include what its "
        "`@component(capabilities=...)` mark declares (default: empty, from `Backbone`)",
        lambda v: isinstance(v, frozenset | set) and all(isinstance(c, str) for c in v),
    ),
)

# what objectives that mask tokens (VideoMAE, SIGMA) read of a backbone with "token_mask"
TOKEN_MASK: tuple[Member, ...] = (
    Member(
        "forward_features",
        "method",
        "`forward_features(clip_BCTHW, mask_BN=None, num_visible=None) -> [B, V, D]`: the "
        "visible tokens (ascending index) under a boolean mask (True = masked)",
        _accepts("mask_BN", "num_visible"),
    ),
    Member("embed_dim", "int >= 1", "token width D", _positive_int),
    Member("grid_size", "(T', H', W'), ints >= 1", "the token grid", _int_triple),
    Member("num_tokens", "int >= 1", "T' * H' * W'", _positive_int),
    Member("patch_size", "int >= 1", "spatial size of a tubelet", _positive_int),
    Member("tubelet_size", "int >= 1", "frames of a tubelet", _positive_int),
)

CAPABILITY_CONTRACTS: dict[str, tuple[Member, ...]] = {"token_mask": TOKEN_MASK}

HEAD: tuple[Member, ...] = (
    Member(
        "forward",
        "method",
        "`forward(features_BD) -> [B, num_outputs]`; built with the injected `in_features` "
        "(the backbone's `num_features`) and `num_outputs` (classes, or 1 for counting); checked "
        "on a zero batch [2, in_features] when built",
        lambda obj: isinstance(obj, nn.Module),
        on_object=True,
    ),
)

OBJECTIVE: tuple[Member, ...] = (
    Member(
        "backbone",
        "nn.Module",
        "the backbone it was given (the core injects `backbone=`); evaluation and conversion "
        "read its weights under `backbone.`",
        lambda v: isinstance(v, nn.Module),
    ),
    Member(
        "views",
        "method",
        "`views() -> ViewSpec`: the data it needs per sample",
        _overrides(Objective, "views"),
        on_object=True,
    ),
    Member(
        "forward",
        "method",
        "`forward(batch: Batch) -> ObjectiveOutput`: the loss and metrics",
        _overrides(Objective, "forward"),
        on_object=True,
    ),
)


def _missing(obj: Any, members: tuple[Member, ...]) -> list[str]:
    problems = []
    for m in members:
        if m.on_object:
            ok = m.check(obj)
        else:
            if not hasattr(obj, m.name):
                problems.append(f"it has no `{m.name}` ({m.type}: {m.meaning})")
                continue
            ok = m.check(getattr(obj, m.name))
        if not ok and m.type == "method":
            problems.append(f"`{m.name}` is not implemented as needed: {m.meaning}")
        elif not ok:
            shown = repr(getattr(obj, m.name))[:80]
            problems.append(f"`{m.name}` must be {m.type}, got {shown} ({m.meaning})")
    return problems


def _fail(kind: str, name: str, plugin: str, obj: Any, problems: list[str], fix: str) -> None:
    if not problems:
        return
    lines = [
        f"{kind} {name!r} (plugin {plugin!r}, {type(obj).__name__}) does not meet the {kind} "
        "contract:",
        *[f"  - {p}" for p in problems],
        f"{fix} (the contract: {DOCS})",
    ]
    raise ContractError("\n".join(lines))


def check_backbone(obj: Any, name: str, plugin: str, declared: frozenset[str]) -> None:
    """Raise :class:`ContractError` listing every unmet member; ``declared`` are the
    capabilities of the component's mark."""
    if not isinstance(obj, nn.Module):
        _fail("backbone", name, plugin, obj, ["it is not a torch.nn.Module"], "Return a module")
    problems = _missing(obj, BACKBONE)
    has = set(getattr(obj, "capabilities", ()) or ())
    if declared - has:
        problems.append(
            f"its mark declares capabilities {sorted(declared)} but the built module's "
            f"`capabilities` is {sorted(has)}: set `capabilities` on the class"
        )
    for capability in sorted(declared | has):
        problems += [
            f"[{capability}] {p}" for p in _missing(obj, CAPABILITY_CONTRACTS.get(capability, ()))
        ]
    _fail(
        "backbone",
        name,
        plugin,
        obj,
        problems,
        "Set these in the backbone's __init__ (subclass vssl_core.interfaces.Backbone)",
    )


def check_head(obj: Any, name: str, plugin: str, in_features: int, num_outputs: int) -> None:
    """The head is a module mapping [B, in_features] to [B, num_outputs] (a zero batch of 2 is
    passed through it in eval mode, without gradients; its mode is restored)."""
    problems = _missing(obj, HEAD)
    if not problems:
        was_training = obj.training
        obj.eval()
        try:
            with torch.no_grad():
                out = obj(torch.zeros(2, in_features))
        except Exception as exc:  # the head's own error, reported with the contract
            problems.append(
                f"forward on zeros [2, {in_features}] failed: {type(exc).__name__}: {exc}"
            )
        else:
            if not torch.is_tensor(out) or tuple(out.shape) != (2, num_outputs):
                got = list(out.shape) if torch.is_tensor(out) else type(out).__name__
                problems.append(
                    f"forward on zeros [2, {in_features}] returned {got}, not [2, {num_outputs}] "
                    "(in_features -> num_outputs)"
                )
        finally:
            obj.train(was_training)
    _fail("head", name, plugin, obj, problems, "Build the head from in_features and num_outputs")


def check_objective(obj: Any, name: str, plugin: str) -> None:
    if not isinstance(obj, Objective):
        _fail(
            "objective",
            name,
            plugin,
            obj,
            [
                "it does not subclass vssl_core.interfaces.Objective (the trainer calls its "
                "begin_run, set_run_step and after_step)"
            ],
            "Subclass Objective and call super().__init__()",
        )
    if "run_step" not in dict(obj.named_buffers(recurse=False)):
        _fail(
            "objective",
            name,
            plugin,
            obj,
            ["it has no `run_step` buffer: its __init__ does not call super().__init__()"],
            "Call super().__init__() first in __init__",
        )
    _fail("objective", name, plugin, obj, _missing(obj, OBJECTIVE), "Implement them")


def check_built(kind: str, obj: Any, name: str, plugin: str, mark: Any, injected: dict) -> None:
    """The contract check for a freshly built component of ``kind`` (others: nothing)."""
    if kind == "backbone":
        check_backbone(obj, name, plugin, frozenset(mark.capabilities))
    elif kind == "head":
        check_head(obj, name, plugin, injected["in_features"], injected["num_outputs"])
    elif kind == "objective":
        check_objective(obj, name, plugin)


def check_backbone_statically(registry: Any, spec: dict) -> str | None:
    """``vssl validate``: build the backbone on the meta device (no memory, no init cost) and
    check its contract. Returns the contract problem, or None (also when the backbone cannot
    be built on the meta device: the real build checks it then)."""
    entry = registry.get("backbone", spec["name"])
    kwargs = {k: v for k, v in spec.items() if k != "name"}
    try:
        with torch.device("meta"):
            obj = entry.factory(**kwargs)
    except Exception:  # e.g. a constructor that reads tensor values: checked when built
        return None
    try:
        check_backbone(obj, spec["name"], entry.plugin, frozenset(entry.mark.capabilities))
    except ContractError as exc:
        return str(exc)
    return None
