"""`vssl new-plugin NAME`: write a ready-to-install method plugin package.

The package is rendered from ``vssl_core/templates/plugin/``: a pyproject with the ``vssl``
entry point, a plugin module that registers an objective and a recipe folder, an arrow-of-time
objective that really trains, a recipe on the embedded synthetic data, and a pytest file.
Template files end in ``.tmpl`` (so no tool mistakes them for vssl's own code); their contents
hold ``{{key}}`` placeholders, and the path segments ``PACKAGE`` and ``NAME`` become the package
and the plugin name.
"""

from __future__ import annotations

import argparse
import importlib.util
import re
from pathlib import Path

import vssl_core
from vssl_core.cli.commands import CliCommand

TEMPLATE_DIR = Path(vssl_core.__file__).parent / "templates" / "plugin"
NAME_PATTERN = re.compile(r"[a-z][a-z0-9_]*")
_PLACEHOLDER = re.compile(r"\{\{(\w+)\}\}")
_PATH_TOKEN = re.compile(r"(?<![A-Za-z])(PACKAGE|NAME)(?![A-Za-z])")


def check_name(name: str, host=None) -> None:
    """Raise ValueError, naming the problem and the fix, when ``name`` cannot be a plugin name
    (it becomes the entry-point name, the objective name and the package ``vssl_<name>``)."""
    if not NAME_PATTERN.fullmatch(name):
        fixed = re.sub(r"[^a-z0-9_]", "_", name.lower()).strip("_")
        hint = f", e.g. {fixed!r}" if fixed and NAME_PATTERN.fullmatch(fixed) else ""
        raise ValueError(
            f"plugin name {name!r}: use lowercase letters, digits and underscores, starting "
            f"with a letter{hint} (it becomes the objective name and the package vssl_<name>)"
        )
    if name.startswith("vssl_"):
        raise ValueError(
            f"plugin name {name!r}: give it without the vssl_ prefix ({name[5:]!r}); the "
            f"package is named vssl_<name>"
        )
    package = f"vssl_{name}"
    if importlib.util.find_spec(package) is not None:
        raise ValueError(
            f"plugin name {name!r}: a Python package {package!r} is already importable, and "
            "yours would shadow it; choose another name"
        )
    if host is None:
        return
    taken = {p.name for p in host.plugins}
    if name in taken:
        raise ValueError(f"plugin name {name!r}: a plugin of that name exists; choose another")
    if name in host.registry.entries.get("objective", {}):
        owner = host.registry.entries["objective"][name].plugin
        raise ValueError(
            f"plugin name {name!r}: objective {name!r} is already registered by plugin "
            f"{owner!r}; choose another name"
        )


def template_values(name: str) -> dict[str, str]:
    """What the placeholders of the templates stand for."""
    major_minor = ".".join(vssl_core.__version__.split(".")[:2])
    return {
        "name": name,
        "package": f"vssl_{name}",
        "dist": f"vssl-{name.replace('_', '-')}",
        "class_name": "".join(part.capitalize() for part in name.split("_") if part),
        "vssl_requirement": f"vssl>={major_minor}",
    }


def render(text: str, values: dict[str, str], where: str) -> str:
    def sub(match: re.Match) -> str:
        key = match.group(1)
        if key not in values:
            raise KeyError(f"template {where}: unknown placeholder {{{{{key}}}}}")
        return values[key]

    return _PLACEHOLDER.sub(sub, text)


def plugin_files(name: str) -> dict[Path, str]:
    """The package's files: relative path -> rendered content."""
    values = template_values(name)
    tokens = {"PACKAGE": values["package"], "NAME": name}
    files = {}
    for src in sorted(TEMPLATE_DIR.rglob("*.tmpl")):
        rel = src.relative_to(TEMPLATE_DIR).as_posix().removesuffix(".tmpl")
        rel = _PATH_TOKEN.sub(lambda m: tokens[m.group(1)], rel)
        files[Path(rel)] = render(src.read_text(), values, src.name)
    if not files:
        raise FileNotFoundError(f"no plugin templates in {TEMPLATE_DIR}; reinstall vssl")
    return files


def write_plugin(
    name: str, parent: Path, force: bool = False, host=None
) -> tuple[Path, list[Path]]:
    """Write the package for plugin ``name`` into ``parent/vssl_<name>``; return that folder
    and the files written (relative to it)."""
    check_name(name, host)
    root = Path(parent) / f"vssl_{name}"
    if root.exists() and not root.is_dir():
        raise ValueError(f"{root} exists and is not a folder; remove it or choose another --dir")
    if root.exists() and not force:
        raise ValueError(
            f"folder {root} already exists; choose another NAME or --dir, or pass --force to "
            "overwrite the files the template writes (other files there are kept)"
        )
    files = plugin_files(name)
    for rel, text in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return root, sorted(files)


def configure(p: argparse.ArgumentParser) -> None:
    p.add_argument("name", help="plugin name: lowercase letters, digits, underscores (e.g. arrow)")
    p.add_argument(
        "--dir",
        default=".",
        type=Path,
        help="folder in which to create vssl_NAME/ (default: the current folder)",
    )
    p.add_argument(
        "--force",
        action="store_true",
        help="write into an existing vssl_NAME/ folder, overwriting the template's files",
    )


def run(args: argparse.Namespace, host) -> int:
    root, files = write_plugin(args.name, args.dir, force=args.force, host=host)
    print(f"wrote plugin {args.name!r} to {root}/:")
    for rel in files:
        print(f"  {rel.as_posix()}")
    steps = [
        (f"pip install -e {root}", "vssl finds it through its entry point"),
        ("vssl list objective", f"shows {args.name}"),
        (f"vssl train {args.name}/synthetic.yaml", "trains it on the synthetic data"),
        (f"python -m pytest {root / 'tests'}", "its tests"),
    ]
    width = max(len(cmd) for cmd, _ in steps)
    print("next:")
    for cmd, why in steps:
        print(f"  {cmd:<{width}}  # {why}")
    return 0


COMMANDS: list[CliCommand] = [
    CliCommand(
        name="new-plugin",
        help="Write a ready-to-install method plugin package (objective, recipe, test).",
        description=(
            "Write vssl_NAME/: a pip-installable package with the `vssl` entry point, an "
            "arrow-of-time objective that trains, a recipe on the embedded synthetic data and a "
            "pytest file. Make it your method by editing its objective.py."
        ),
        run=run,
        configure=configure,
    )
]
