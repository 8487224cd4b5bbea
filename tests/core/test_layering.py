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
    "charsets": 0, "mime_leaves": 0, "lifeline": 0, "days": 0, "password_files": 0,
    "store": 1,
    "search": 2,
    "vault": 3,
    "accounts": 4, "backup": 4, "ingest": 4, "outlook": 4, "capture": 4, "sources": 4,
    "compliance": 4, "discovery": 4, "review": 4, "gateway": 4,
    "usecases": 5,
    "cli": 6, "web": 6, "serve": 6, "__main__": 6, "entry": 6,
}


def _unit(module: str) -> str:
    """The layer unit of a dotted module name below ``mailvault``."""
    return module.split(".")[0]


def _imports(path: Path, *, for_types: bool = True) -> set[str]:
    """The mailvault modules a file imports (``store.catalog``); with ``for_types`` off,
    leaving out those imported only for annotations (under ``if TYPE_CHECKING:``)."""
    return {module for module, _name in _imported_names(path, for_types=for_types)}


def _imported_names(path: Path, *, for_types: bool = True) -> set[tuple[str, str]]:
    """(module, name) for each name a file imports from mailvault (name '' for a whole
    module, as in ``import mailvault.x`` or ``from mailvault import x``)."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    skipped: set[int] = set()
    if not for_types:
        for node in ast.walk(tree):
            if isinstance(node, ast.If) and ast.unparse(node.test) in ("TYPE_CHECKING",
                                                                      "typing.TYPE_CHECKING"):
                skipped.update(id(inner) for inner in ast.walk(node))
    found: set[tuple[str, str]] = set()
    for node in ast.walk(tree):
        if id(node) in skipped:
            continue
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            if node.module == "mailvault":
                found.update((alias.name, "") for alias in node.names)
            elif node.module.startswith("mailvault."):
                module = node.module.removeprefix("mailvault.")
                found.update((module, alias.name) for alias in node.names)
        elif isinstance(node, ast.Import):
            found.update((a.name.removeprefix("mailvault."), "") for a in node.names
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


# What a command module may import from mailvault: other faces' helpers, the use cases, and
# the shared records every layer may use (who acts, the error tree, how a day or a password
# file is read). Everything else it gets through a use case.
FACE_MAY_IMPORT = ("cli", "usecases", "errors", "days", "password_files",
                   "accounts.principal", "accounts.roles",
                   # the runner of the long-running services, itself a face (see serve.py)
                   "serve",
                   # the web face's service, which `serve` runs beside the others, and how
                   # it names its own address (serve prints the URL to open)
                   "web.service")
# Names taken from lower layers for option help only, never to decide anything.
FACE_OPTION_NAMES = {
    ("ingest.files", "FORMATS"),  # the format names --format lists in its help
}


def test_the_command_line_reaches_the_vault_only_through_use_cases() -> None:
    """No command module imports the catalog, index, store, pipeline, compliance, capture or
    source modules at run time (an import under TYPE_CHECKING names a type and decides
    nothing), beyond the option names allowed above."""
    reaching = []
    for path in sorted((ROOT / "cli").glob("*.py")):
        for module, name in _imported_names(path, for_types=False):
            allowed = any(module == m or module.startswith(m + ".") for m in FACE_MAY_IMPORT)
            if not allowed and (module, name) not in FACE_OPTION_NAMES:
                reaching.append(f"cli.{path.stem} imports {name or module} from {module}")
    assert reaching == []


# What no face (cli/, web/) may import at all, not even for a type: a record it names comes
# re-exported through the use case that returns it (``finding.MessageRow``). serve.py is the
# runner that starts the capabilities' services, not a face in this sense.
FACE_NEVER_IMPORTS = ("store", "search", "compliance")


def test_the_runner_of_services_imports_no_face() -> None:
    """serve.py starts the capabilities' services; the faces served beside them (the web
    application) are handed to it by the command that runs it."""
    faces = [module for module, _ in _imported_names(ROOT / "serve.py", for_types=True)
             if module.split(".")[0] in ("web", "cli")]
    assert faces == []


def test_faces_never_import_store_search_or_compliance() -> None:
    reaching = []
    for face in ("cli", "web"):
        for path in sorted((ROOT / face).rglob("*.py")):
            for module in _imports(path):
                if _unit(module) in FACE_NEVER_IMPORTS:
                    reaching.append(f"{face}.{path.stem} imports {module}")
    assert reaching == []


def test_nothing_imports_the_command_line() -> None:
    """The command line is a face: the web, the use cases and every capability work without
    it. Only the program's entry point (``mailvault.entry``, which ``python -m mailvault``
    and the installed ``mailvault`` call) starts it."""
    importing = [str(path.relative_to(ROOT)) for path in sorted(ROOT.rglob("*.py"))
                 if path.parent != ROOT / "cli" and path != ROOT / "entry.py"
                 and any(_unit(m) == "cli" for m in _imports(path))]
    assert importing == []
