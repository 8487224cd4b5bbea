"""Imports run one way: faces -> use cases -> capabilities -> vault -> search -> store ->
shared records. A lower package never imports a higher one, not even for a type."""

from __future__ import annotations

import ast
from pathlib import Path

import mailvault

ROOT = Path(mailvault.__file__).parent

# Lower number = lower layer. A module may import its own layer or any lower one.
LAYERS = {
    "records": 0, "errors": 0, "config": 0, "fsnames": 0, "message": 0, "multipart": 0,
    "charsets": 0, "mime_leaves": 0, "lifeline": 0,
    "store": 1,
    "search": 2,
    "vault": 3,
    "accounts": 4, "ingest": 4, "outlook": 4, "capture": 4, "sources": 4, "compliance": 4,
    "usecases": 5,
    "cli": 6, "web": 6, "serve": 6, "__main__": 6,
}


def _unit(module: str) -> str:
    """The layer unit of a dotted module name below ``mailvault``."""
    return module.split(".")[0]


def _imports(path: Path) -> set[str]:
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            if node.module == "mailvault":
                found.update(alias.name for alias in node.names)
            elif node.module.startswith("mailvault."):
                found.add(node.module.removeprefix("mailvault."))
        elif isinstance(node, ast.Import):
            found.update(a.name.removeprefix("mailvault.") for a in node.names
                         if a.name.startswith("mailvault."))
    return found


def test_every_module_has_a_layer() -> None:
    units = {_unit(str(p.relative_to(ROOT).with_suffix("")).replace("/", "."))
             for p in ROOT.rglob("*.py") if p.name != "__init__.py" or p.parent != ROOT}
    assert units - LAYERS.keys() == set()


def test_no_module_imports_a_higher_layer() -> None:
    upward = []
    for path in sorted(ROOT.rglob("*.py")):
        name = str(path.relative_to(ROOT).with_suffix("")).replace("/", ".")
        if name == "__init__":
            continue
        layer = LAYERS[_unit(name)]
        for imported in _imports(path):
            if LAYERS[_unit(imported)] > layer:
                upward.append(f"{name} imports {imported}")
    assert upward == []
