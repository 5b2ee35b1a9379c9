"""Backbone weights from other code bases: checkpoint formats, conversion and strict loading.

Why: the usual way to load a foreign checkpoint is ``load_state_dict(strict=False)`` after a few
regex renames (SEVERE does this for every model it evaluates), and a misnamed key then leaves part
of the network random without a word. Here every format is an explicit key mapping, and a load
succeeds only when every source key was either used or deliberately dropped (with the reason) and
every backbone key was filled with a tensor of the right shape. Otherwise the error lists the
leftover keys with the closest names on the other side.

Formats are contributed by plugins through the ``vssl_checkpoint_formats`` hook; the core knows
only its own: ``vssl`` (a training checkpoint, whose objective keeps its backbone under
``backbone.``, or a bare backbone state dict).

Names: a *source* key is a key of the checkpoint being read; a *backbone* key is a key of the vssl
backbone's ``state_dict()``. Tensors here are whole parameters; no shape legend is needed.
"""

from __future__ import annotations

import argparse
import difflib
import re
from collections.abc import Callable, Collection, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from vssl_core.engine.checkpoint import (
    FORMAT_VERSION,
    CheckpointError,
    unsafe_global,
    verify_checkpoint,
)

Tensor = torch.Tensor
# Containers that hold the weights in the files we read: our trainer and VideoMAE ("model"),
# DeepSpeed-saved VideoMAE fine-tuning ("module"), mmcv / pyvrl / SEVERE ("state_dict").
CONTAINER_KEYS = ("model", "module", "state_dict")
MAX_LISTED = 20  # keys listed per group in an error message


class ConversionError(CheckpointError):
    """A checkpoint could not be converted or does not fit the backbone (the message says why)."""


class SourceState(Mapping[str, Tensor]):
    """The source tensors a converter sees, recording which ones it read and which it dropped.

    Reading a key (``src[key]``) marks it used; ``drop(key, reason)`` marks it deliberately left
    out. After the converter returns, any key neither used nor dropped is an error, so a converter
    cannot lose a tensor by forgetting a rename rule.
    """

    def __init__(self, tensors: Mapping[str, Tensor]) -> None:
        self._tensors = dict(tensors)
        self.used: set[str] = set()
        self.dropped: dict[str, str] = {}
        self.notes: list[str] = []

    def __getitem__(self, key: str) -> Tensor:
        value = self._tensors[key]
        self.used.add(key)
        return value

    def __iter__(self) -> Iterator[str]:
        return iter(self._tensors)

    def __len__(self) -> int:
        return len(self._tensors)

    def drop(self, key: str, reason: str) -> None:
        """Leave ``key`` out on purpose; ``reason`` is shown to the user."""
        if key not in self._tensors:
            raise KeyError(f"cannot drop {key!r}: not a source key")
        self.dropped[key] = reason

    def note(self, text: str) -> None:
        """Something the user should know about this conversion (shown in reports and errors)."""
        if text not in self.notes:
            self.notes.append(text)

    def unused(self) -> list[str]:
        return [k for k in self._tensors if k not in self.used and k not in self.dropped]


Converter = Callable[[SourceState, "str | None"], dict[str, Tensor]]


@dataclass
class ObjectivePart:
    """What a format can read beyond the backbone (``CheckpointFormat.objective``): the
    objective's own tensors (named as in its ``state_dict()``, e.g. ``decoder.*``), the
    objective spec that builds it, the backbone spec (when the file's config says it) and the
    source keys they came from (no longer dropped)."""

    objective: dict[str, Any]
    tensors: dict[str, Tensor]
    used: list[str]
    backbone: dict[str, Any] | None = None
    notes: list[str] = field(default_factory=list)


@dataclass
class ExportSource:
    """A vssl model to write in another format: the objective's ``state_dict()`` (the backbone
    under ``backbone.``, or the backbone alone), the recipe's ``backbone`` and ``objective``
    specs (``objective`` may be empty) and the backbone built from its spec on the meta device
    (for its architecture: widths, depth, heads; it holds no weights)."""

    state: dict[str, Tensor]
    backbone_spec: dict[str, Any]
    objective_spec: dict[str, Any]
    backbone: nn.Module


@dataclass
class Exported:
    """A model in another code base's layout: its ``state`` and ``config`` (written as
    ``config.json``), the architecture it loads into, and notes for the user."""

    state: dict[str, Tensor]
    config: dict[str, Any]
    architecture: str
    notes: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class CheckpointFormat:
    """One checkpoint layout that vssl can read into a backbone.

    ``convert(src, backbone_name)`` maps the source tensors (a :class:`SourceState`) to a vssl
    backbone state dict; ``backbone_name`` is the target backbone component's name when known
    (else None). ``drops`` are ``(regex, reason)`` pairs for source keys that are deliberately not
    part of the backbone (a decoder, a classifier, a queue); the converter never sees them.
    ``backbones`` names the backbone components the weights fit (empty: any). ``detect(keys)``
    says whether a set of source keys is in this format (None: never chosen automatically);
    detectors of different formats must not claim the same checkpoint.

    Optional, for ``vssl convert``: ``objective(state, config)`` reads the objective's own
    modules (e.g. a pretraining decoder) from the whole source state dict and the file's
    ``config.json`` (or ``{}``), so a converted checkpoint keeps them (None: not such a file);
    ``export(source)`` writes a vssl model in this format (``vssl convert --to``).
    """

    name: str
    summary: str
    convert: Converter
    backbones: tuple[str, ...] = ()
    drops: tuple[tuple[str, str], ...] = ()
    detect: Callable[[frozenset[str]], bool] | None = None
    objective: Callable[[Mapping[str, Tensor], dict], ObjectivePart | None] | None = None
    export: Callable[[ExportSource], Exported] | None = None

    def __post_init__(self) -> None:
        if not re.fullmatch(r"[a-z][a-z0-9_]*", self.name):
            raise ValueError(f"checkpoint format name {self.name!r}: use lower_snake_case")
        for pattern, _ in self.drops:
            re.compile(pattern)  # a bad pattern fails when the plugin loads, not mid-conversion

    def drop_reason(self, key: str) -> str | None:
        for pattern, reason in self.drops:
            if re.fullmatch(pattern, key):
                return reason
        return None


@dataclass
class Conversion:
    """A converted checkpoint: the backbone ``state`` and what happened to the other keys."""

    format: str
    source: str
    state: dict[str, Tensor]
    dropped: dict[str, str] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    def describe(self) -> str:
        """Multi-line text: tensors kept, dropped keys grouped by reason, notes."""
        lines = [f"{len(self.state)} backbone tensors ({_numel(self.state):,} values)"]
        if self.dropped:
            lines.append(f"dropped {len(self.dropped)} source keys:")
            by_reason: dict[str, list[str]] = {}
            for key, reason in self.dropped.items():
                by_reason.setdefault(reason, []).append(key)
            lines += [f"  {summarize_keys(keys)}: {reason}" for reason, keys in by_reason.items()]
        lines += [f"note: {n}" for n in self.notes]
        return "\n".join(lines)


@dataclass
class LoadReport:
    """What :func:`load_backbone_checkpoint` did: the format, keys loaded, keys dropped, notes."""

    source: str
    format: str
    loaded: list[str]
    dropped: dict[str, str]
    notes: list[str]

    def summary(self) -> str:
        dropped = f", dropped {summarize_keys(list(self.dropped))}" if self.dropped else ""
        return f"loaded {len(self.loaded)} tensors from {self.source} ({self.format}){dropped}"


# ---------------------------------------------------------------------------------------------
# helpers for converters


def summarize_keys(keys: Collection[str]) -> str:
    """``decoder.* (52), mask_token``: keys grouped by their first name component."""
    groups: dict[str, list[str]] = {}
    for key in keys:
        groups.setdefault(key.split(".")[0], []).append(key)
    parts = []
    for head, members in groups.items():
        parts.append(members[0] if len(members) == 1 else f"{head}.* ({len(members)})")
    return ", ".join(parts)


def strip_prefix(src: SourceState, prefix: str) -> dict[str, Tensor]:
    """The tensors under ``prefix``, renamed without it (other keys are left untouched)."""
    return {k[len(prefix) :]: src[k] for k in src if k.startswith(prefix)}


def rename(src: SourceState, rules: list[tuple[str, str]], prefix: str = "") -> dict[str, Tensor]:
    """Rename the keys under ``prefix`` by ``(regex, template)`` rules applied to the key without
    the prefix: the first rule whose regex fully matches gives the new name (``re`` template
    syntax, e.g. ``r"stem.0.\\1"``). Keys no rule matches are left unread, so they are reported
    as unused unless something else takes them."""
    compiled = [(re.compile(p), t) for p, t in rules]
    out: dict[str, Tensor] = {}
    origin: dict[str, str] = {}
    for key in src:
        if not key.startswith(prefix):
            continue
        for regex, template in compiled:
            match = regex.fullmatch(key[len(prefix) :])
            if match:
                name = match.expand(template)
                if name in origin:
                    raise ConversionError(
                        f"both {origin[name]!r} and {key!r} map to {name!r}: the checkpoint "
                        "mixes two layouts; convert a file of one model only"
                    )
                out[name], origin[name] = src[key], key
                break
    return out


def _numel(state: Mapping[str, Tensor]) -> int:
    return sum(t.numel() for t in state.values())


def _closest(key: str, candidates: Collection[str]) -> str:
    match = difflib.get_close_matches(key, list(candidates), n=1, cutoff=0.6)
    return f" (closest: {match[0]})" if match else ""


def _listing(keys: list[str], candidates: Collection[str]) -> list[str]:
    lines = [f"    {k}{_closest(k, candidates)}" for k in keys[:MAX_LISTED]]
    if len(keys) > MAX_LISTED:
        lines.append(f"    ... and {len(keys) - MAX_LISTED} more")
    return lines


# ---------------------------------------------------------------------------------------------
# the core's own format


def _convert_vssl(src: SourceState, backbone_name: str | None) -> dict[str, Tensor]:
    """A training checkpoint keeps the backbone (for MoCo-like objectives: the query encoder)
    under ``backbone.``; everything else belongs to the objective. A bare dict is the backbone."""
    del backbone_name
    if not any(k.startswith("backbone.") for k in src):
        return {k: src[k] for k in src}
    for key in src:
        if not key.startswith("backbone."):
            module = key.split(".")[0]
            src.drop(key, f"the objective's own module '{module}' (not the backbone)")
    return strip_prefix(src, "backbone.")


VSSL_FORMAT = CheckpointFormat(
    name="vssl",
    summary="a vssl training checkpoint (the objective's `backbone.*`) or a bare backbone "
    "state dict; recognized by its `format: vssl` marker",
    convert=_convert_vssl,
)


# ---------------------------------------------------------------------------------------------
# reading files


def _safe_globals() -> list[Any]:
    """Plain-data classes that well-known checkpoints pickle beside their tensors (VideoMAE saves
    its argparse ``args``; numpy scalars appear in SEVERE's files); allowing them keeps
    ``weights_only`` loading, so reading a checkpoint never runs code from it."""
    import numpy as np

    allowed: list[Any] = [argparse.Namespace, np.dtype]
    try:
        allowed.append(np._core.multiarray.scalar)
    except AttributeError:  # numpy < 2
        allowed.append(np.core.multiarray.scalar)
    allowed += [getattr(np.dtypes, n) for n in dir(np.dtypes) if n.endswith("DType")]
    return allowed


def read_checkpoint(path: str | Path) -> Any:
    """The object stored in ``path`` (``.safetensors`` or a torch file), loaded without
    executing code (``weights_only``)."""
    path = Path(path)
    if not path.is_file():
        raise ConversionError(f"checkpoint {path} does not exist")
    if path.suffix == ".safetensors":
        try:
            from safetensors.torch import load_file
        except ImportError as exc:
            raise ConversionError(f"{path} is a safetensors file: pip install safetensors") from exc
        return load_file(str(path))
    try:
        with torch.serialization.safe_globals(_safe_globals()):
            obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:
        found = unsafe_global(exc)
        why = (
            f"it stores a Python object ({found}) besides tensors, and unpickling it could run code"
            if found
            else f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"
        )
        raise ConversionError(
            f"cannot read checkpoint {path} safely: {why}. If you trust the file, re-save only its "
            f"weights and convert that file: python -c \"import torch; c = torch.load('{path}', "
            "weights_only=False); torch.save(c.get('model', c), 'weights.pt')\""
        ) from exc
    if isinstance(obj, dict) and obj.get("format") == "vssl":
        verify_checkpoint(obj, path)  # a vssl checkpoint's checksum, as training loads verify it
    return obj


def stored_backbone(checkpoint: str | Path) -> dict | None:
    """The backbone spec a vssl checkpoint stores in its recipe (a training run's, or the one
    ``vssl convert --backbone`` keeps); None for other formats or when none is stored. Evaluating
    a checkpoint with it builds the backbone the weights were trained in."""
    state = read_checkpoint(checkpoint)
    if not isinstance(state, dict) or state.get("format") != "vssl":
        return None
    spec = (state.get("recipe") or {}).get("backbone")
    return dict(spec) if isinstance(spec, dict) and spec.get("name") else None


def _is_tensor_dict(obj: Any) -> bool:
    return (
        isinstance(obj, Mapping)
        and len(obj) > 0
        and all(isinstance(k, str) and isinstance(v, Tensor) for k, v in obj.items())
    )


def unwrap_state_dict(obj: Any, source: str = "checkpoint") -> tuple[dict[str, Tensor], bool]:
    """The tensor dict inside a loaded checkpoint, and whether it carries the vssl marker."""
    if _is_tensor_dict(obj):
        return dict(obj), False
    if isinstance(obj, Mapping):
        is_vssl = obj.get("format") == "vssl"
        for key in CONTAINER_KEYS:
            if _is_tensor_dict(obj.get(key)):
                return dict(obj[key]), is_vssl
        bad = [k for k, v in obj.items() if isinstance(k, str) and not isinstance(v, Tensor)]
        found = ", ".join(map(repr, list(obj)[:10]))
        raise ConversionError(
            f"{source}: no state dict found: expected a mapping of names to tensors, or one under "
            f"{' / '.join(CONTAINER_KEYS)}; the top-level keys are {found}"
            + (f" (non-tensor values: {', '.join(bad[:5])})" if bad else "")
            + ". Re-save the model's state_dict() and convert that file."
        )
    raise ConversionError(f"{source}: holds a {type(obj).__name__}, not a state dict")


# ---------------------------------------------------------------------------------------------
# formats and detection


def checkpoint_formats(host: Any = None) -> dict[str, CheckpointFormat]:
    """Every known format by name: ``vssl``, then those of the loaded plugins (``host``; the
    installed plugins are loaded when it is None). A name claimed twice is an error."""
    if host is None:
        from vssl_core.plugins import load_plugins

        host = load_plugins()
    formats = {VSSL_FORMAT.name: VSSL_FORMAT}
    owner = {VSSL_FORMAT.name: "vssl"}
    for impl in host.pm.hook.vssl_checkpoint_formats.get_hookimpls():
        for fmt in impl.function() or []:
            if not isinstance(fmt, CheckpointFormat):
                raise ConversionError(
                    f"plugin {impl.plugin_name!r}: vssl_checkpoint_formats must return "
                    f"CheckpointFormat objects, got {type(fmt).__name__}"
                )
            if fmt.name in formats:
                raise ConversionError(
                    f"checkpoint format {fmt.name!r} of plugin {impl.plugin_name!r} clashes "
                    f"with the one of {owner[fmt.name]!r}; rename one of them"
                )
            formats[fmt.name], owner[fmt.name] = fmt, impl.plugin_name
    return formats


def detect_format(
    keys: Collection[str], formats: Mapping[str, CheckpointFormat], source: str = "checkpoint"
) -> CheckpointFormat:
    """The single format whose detector claims ``keys``; none or several is an error."""
    keyset = frozenset(keys)
    hits = [f for f in formats.values() if f.detect is not None and f.detect(keyset)]
    if len(hits) == 1:
        return hits[0]
    names = ", ".join(formats)
    if hits:
        raise ConversionError(
            f"{source}: the keys match several checkpoint formats ({', '.join(f.name for f in hits)}); "
            f"name the format (vssl convert --from NAME, or fmt=NAME). Formats: {names}"
        )
    sample = ", ".join(sorted(keyset)[:6])
    raise ConversionError(
        f"{source}: no checkpoint format recognizes these keys (e.g. {sample}); name the format "
        f"(vssl convert --from NAME, or fmt=NAME; `vssl convert --list` describes them: {names})"
    )


def resolve_format(
    fmt: str | CheckpointFormat, formats: Mapping[str, CheckpointFormat]
) -> CheckpointFormat:
    """The format named ``fmt`` (or ``fmt`` itself); an unknown name suggests the closest."""
    if isinstance(fmt, CheckpointFormat):
        return fmt
    if fmt not in formats:
        near = difflib.get_close_matches(fmt, list(formats), n=3)
        hint = f"; did you mean {', '.join(near)}?" if near else ""
        raise ConversionError(
            f"unknown checkpoint format {fmt!r}{hint} Known formats: {', '.join(formats)} "
            "(`vssl convert --list` describes them)"
        )
    return formats[fmt]


def _read_source(src: str | Path | Mapping[str, Any]) -> tuple[dict[str, Tensor], bool, str]:
    if isinstance(src, Mapping):
        state, is_vssl = unwrap_state_dict(src, "the given state dict")
        return state, is_vssl, "the given state dict"
    state, is_vssl = unwrap_state_dict(read_checkpoint(src), str(src))
    return state, is_vssl, str(src)


# ---------------------------------------------------------------------------------------------
# conversion and loading


def run_format(
    fmt: CheckpointFormat,
    state: Mapping[str, Tensor],
    backbone_name: str | None = None,
    source: str = "checkpoint",
) -> Conversion:
    """Apply ``fmt`` to a state dict and check that every source key was used or dropped."""
    if backbone_name is not None and fmt.backbones and backbone_name not in fmt.backbones:
        raise ConversionError(
            f"format {fmt.name!r} converts to the backbones {', '.join(fmt.backbones)}, not "
            f"{backbone_name!r}; pick one of those (or the right format for {backbone_name})"
        )
    dropped = {}
    kept = {}
    for key, value in state.items():
        reason = fmt.drop_reason(key)
        if reason is None:
            kept[key] = value
        else:
            dropped[key] = reason
    src = SourceState(kept)
    out = fmt.convert(src, backbone_name)
    unused = src.unused()
    if unused:
        lines = [
            f"{source}: format {fmt.name!r} has no place for {len(unused)} of its keys:",
            *_listing(unused, src.used),
            *[f"  note: {n}" for n in src.notes],
            f"Check that this is a {fmt.name!r} checkpoint (`vssl convert --list` shows every format); "
            "a key that is not part of the backbone must be dropped explicitly by the "
            "format.",
        ]
        raise ConversionError("\n".join(lines))
    bad = [k for k, v in out.items() if not isinstance(v, Tensor)]
    if bad:
        raise ConversionError(f"format {fmt.name!r} produced non-tensor values for {bad[:5]}")
    return Conversion(fmt.name, source, out, {**dropped, **src.dropped}, list(src.notes))


def _choose(
    fmt: str | CheckpointFormat,
    state: Mapping[str, Tensor],
    is_vssl: bool,
    source: str,
    host: Any,
    backbone_keys: Collection[str] | None = None,
) -> tuple[CheckpointFormat, dict[str, CheckpointFormat]]:
    """The format to apply: the one given, or (``"auto"``) the vssl format for a marked vssl
    checkpoint or a bare dict of exactly ``backbone_keys``, else the detected one."""
    if isinstance(fmt, CheckpointFormat):
        return fmt, {fmt.name: fmt}
    formats = checkpoint_formats(host)
    if fmt != "auto":
        return resolve_format(fmt, formats), formats
    if is_vssl or (backbone_keys is not None and set(state) == set(backbone_keys)):
        return formats["vssl"], formats
    return detect_format(state, formats, source), formats


def _run(
    chosen: CheckpointFormat,
    formats: Mapping[str, CheckpointFormat],
    state: Mapping[str, Tensor],
    backbone_name: str | None,
    source: str,
) -> Conversion:
    """:func:`run_format`; when it fails and another format claims the keys, say which."""
    try:
        return run_format(chosen, state, backbone_name, source)
    except ConversionError as exc:
        others = [
            f.name
            for f in formats.values()
            if f is not chosen and f.detect is not None and f.detect(frozenset(state))
        ]
        if len(others) != 1:
            raise
        raise ConversionError(
            f"{exc}\nThese keys look like format {others[0]!r}: use --from {others[0]} "
            f"(fmt={others[0]!r})"
        ) from exc


def convert(
    fmt: str | CheckpointFormat,
    src: str | Path | Mapping[str, Any],
    backbone_name: str | None = None,
    host: Any = None,
) -> Conversion:
    """Read ``src`` (a path or an already loaded checkpoint / state dict) in format ``fmt``
    (a name, ``"auto"`` or a :class:`CheckpointFormat`) and map it onto vssl backbone names."""
    return convert_model(fmt, src, backbone_name, host)[0]


def convert_model(
    fmt: str | CheckpointFormat,
    src: str | Path | Mapping[str, Any],
    backbone_name: str | None = None,
    host: Any = None,
    config: dict | None = None,
) -> tuple[Conversion, ObjectivePart | None]:
    """:func:`convert`, plus the objective's own modules where the format reads them
    (``CheckpointFormat.objective``, given the file's ``config.json`` as ``config``); their
    source keys are then used, not dropped."""
    state, is_vssl, source = _read_source(src)
    chosen, formats = _choose(fmt, state, is_vssl, source, host)
    conversion = _run(chosen, formats, state, backbone_name, source)
    part = chosen.objective(state, config or {}) if chosen.objective is not None else None
    if part is not None:
        for key in part.used:
            conversion.dropped.pop(key, None)
        conversion.notes += part.notes
    return conversion, part


def convert_checkpoint(
    fmt: str | CheckpointFormat,
    src: str | Path | Mapping[str, Any],
    backbone_name: str | None = None,
    host: Any = None,
) -> dict[str, Tensor]:
    """The vssl backbone state dict of checkpoint ``src`` in format ``fmt`` (see :func:`convert`;
    every source key is used or deliberately dropped, else :class:`ConversionError`)."""
    return convert(fmt, src, backbone_name, host).state


def check_fits(state: Mapping[str, Tensor], backbone: nn.Module, conversion: Conversion) -> None:
    """Raise listing every missing, unexpected and mis-shaped key unless ``state`` fills exactly
    the backbone's state dict."""
    expected = backbone.state_dict()
    missing = [k for k in expected if k not in state]
    unexpected = [k for k in state if k not in expected]
    shapes = [
        f"    {k}: checkpoint {list(state[k].shape)}, backbone {list(expected[k].shape)}"
        for k in expected
        if k in state and state[k].shape != expected[k].shape
    ]
    if not (missing or unexpected or shapes):
        return
    lines = [
        f"{conversion.source} (format {conversion.format}) does not fit the backbone "
        f"{type(backbone).__name__}:"
    ]
    if missing:
        lines += [f"  {len(missing)} backbone keys are not in the checkpoint:"]
        lines += _listing(missing, state)
    if unexpected:
        lines += [f"  {len(unexpected)} checkpoint keys have no place in the backbone:"]
        lines += _listing(unexpected, expected)
    if shapes:
        lines += [f"  {len(shapes)} tensors have another shape:", *shapes[:MAX_LISTED]]
    lines += [f"  note: {n}" for n in conversion.notes]
    lines.append(
        "Build the backbone the checkpoint was trained with (its size, depth, patch and tubelet "
        "size), or name the right format (`vssl convert --list`)."
    )
    raise ConversionError("\n".join(lines))


def load_backbone_checkpoint(
    backbone: nn.Module,
    path: str | Path | Mapping[str, Any],
    fmt: str | CheckpointFormat = "auto",
    host: Any = None,
    backbone_name: str | None = None,
) -> LoadReport:
    """Load a checkpoint of any known format into ``backbone``, strictly.

    With ``fmt="auto"`` a vssl checkpoint is recognized by its marker, a bare state dict whose
    keys are exactly the backbone's loads as is, and anything else is detected from its keys.
    Every source key must be used or dropped by the format and every backbone key filled with a
    tensor of its shape; otherwise :class:`ConversionError` lists the offending keys and nothing
    is loaded.
    """
    state, is_vssl, source = _read_source(path)
    expected = backbone.state_dict()
    chosen, formats = _choose(fmt, state, is_vssl, source, host, expected)
    conversion = _run(chosen, formats, state, backbone_name, source)
    _drop_declared_unused(conversion, backbone)
    check_fits(conversion.state, backbone, conversion)
    backbone.load_state_dict(conversion.state, strict=True)
    return LoadReport(
        source, chosen.name, list(conversion.state), conversion.dropped, conversion.notes
    )


def _drop_declared_unused(conversion: Conversion, backbone: nn.Module) -> None:
    """A backbone may name checkpoint keys it deliberately has no place for, with the reason
    (``unused_checkpoint_keys``: e.g. a ViT built without its final norm, as VideoMAE
    fine-tunes it); those are dropped and reported, never silently."""
    for key, reason in getattr(backbone, "unused_checkpoint_keys", {}).items():
        if key in conversion.state:
            del conversion.state[key]
            conversion.dropped[key] = reason


def converted_checkpoint(
    conversion: Conversion,
    backbone: Mapping[str, Any] | None,
    objective: ObjectivePart | None = None,
) -> dict:
    """A vssl checkpoint holding the backbone (``model`` = ``backbone.*``) and, with an
    ``objective`` part, that objective's own tensors, readable by
    :func:`load_backbone_checkpoint` and by :func:`vssl_core.engine.checkpoint.load_checkpoint`.
    ``backbone`` (a ``{name: ..., **kwargs}`` spec), when known, is stored where a training
    checkpoint keeps it (``recipe.backbone``), as is the objective's spec."""
    model = {f"backbone.{k}": v.contiguous() for k, v in conversion.state.items()}
    recipe = {"backbone": dict(backbone)} if backbone else {}
    if objective is not None:
        model.update({k: v.contiguous() for k, v in objective.tensors.items()})
        recipe["objective"] = dict(objective.objective)
    return {
        "format": "vssl",
        "version": FORMAT_VERSION,
        "model": model,
        "recipe": recipe,
        "converted_from": {
            "source": conversion.source,
            "format": conversion.format,
            "dropped": dict(conversion.dropped),
            "notes": list(conversion.notes),
        },
    }
