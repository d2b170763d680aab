"""Layers point one way: the shared library (altvoice.*) at the bottom, then transforms and model,
then pipelines, then the command line on top; nothing imports a layer above its own."""
import ast
import pathlib

import pytest

ROOT = pathlib.Path(__file__).resolve().parent.parent
FOLDERS = {"altvoice": "altvoice", "model": "altvoice.model", "pipelines": "altvoice.pipelines",
           "transforms": "altvoice.transforms"}
LAYERS = (("altvoice.cli", 4), ("altvoice.demo", 4), ("altvoice.api", 4), ("altvoice.pipelines", 3), ("altvoice.model", 2),
          ("altvoice.transforms", 2), ("altvoice", 1))


def layer(module: str) -> int:
    return next(rank for prefix, rank in LAYERS if module == prefix or module.startswith(prefix + "."))


def modules():
    for folder, package in FOLDERS.items():
        for path in sorted((ROOT / folder).rglob("*.py")):
            parts = path.relative_to(ROOT / folder).with_suffix("").parts
            yield ".".join((package, *[p for p in parts if p != "__init__"])), path


def imported(path: pathlib.Path):
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            yield node.module


@pytest.mark.parametrize("module, path", list(modules()), ids=lambda x: x if isinstance(x, str) else "")
def test_imports_point_down(module, path):
    for name in imported(path):
        top = name.split(".")[0]
        assert top not in ("model", "pipelines", "transforms"), f"{module} imports {name}: use altvoice.{name}"
        if top == "altvoice":
            assert layer(name) <= layer(module), f"{module} (layer {layer(module)}) imports {name} (layer {layer(name)})"


def test_the_flags_name_every_backbone():
    from altvoice.flags import BACKBONES
    from altvoice.model.backbones import BACKBONES as BUILT

    assert BACKBONES == tuple(sorted(BUILT))
