"""The folders read as the pipeline (docs/architecture.md): a layer imports only the layers
before it, and no two modules share a name.

The table below is written from the order in docs/architecture.md, not read from the code: a
new import that crosses the flow fails here, and moving a layer means changing the doc and this
table together. Every import counts, also those inside functions (the CLI and the registries
import lazily).
"""

from __future__ import annotations

import ast
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SRC = ROOT / "src" / "rereel"
DOC = ROOT / "docs" / "architecture.md"

BASE = {"errors", "device", "outputs"}  # importable by every layer
FLOW = ["media", "shots", "encoders", "library", "match", "timeline"]  # the data flow, in order


def _flow_before(layer: str) -> set[str]:
    return BASE | set(FLOW[: FLOW.index(layer)])


# layer -> the rereel layers it may import (besides itself)
ALLOWED: dict[str, set[str]] = {
    "rereel": set(),  # the package's __init__: the version only
    "errors": set(),
    "device": {"errors"},
    "outputs": {"errors"},
    **{layer: _flow_before(layer) for layer in FLOW},
    "render": BASE | {"media", "timeline"},  # plays a timeline; it chooses nothing
    "target_cache": BASE | {"media", "shots", "encoders", "library"},  # analyses kept between remakes
    "pipeline": BASE | set(FLOW) | {"render", "target_cache"},  # the remake: analyse -> match -> timeline -> render
    "explore": BASE | set(FLOW) | {"render"},
    "learn": BASE | {"media"},
    "sample_footage": {"errors"},
    "credits": {"errors", "outputs", "sample_footage", "timeline"},
    "web": BASE | set(FLOW) | {"render", "pipeline", "target_cache", "explore", "learn", "sample_footage", "credits"},
    "cli": BASE | set(FLOW) | {"render", "pipeline", "explore", "learn", "sample_footage", "credits", "web"},
    "__main__": {"cli"},
}


def layer_of(path: Path, src: Path) -> str:
    """`rereel/<package>/...` belongs to <package>; `rereel/<module>.py` is a layer of its own."""
    parts = path.relative_to(src).parts
    if len(parts) > 1:
        return parts[0]
    return "rereel" if parts[0] == "__init__.py" else parts[0][:-3]


def _absolute(node: ast.ImportFrom, path: Path, src: Path) -> str:
    if node.level == 0:
        return node.module or ""
    package = ["rereel", *path.relative_to(src).parts[:-1]]
    base = package[: len(package) - (node.level - 1)]
    return ".".join(base + ([node.module] if node.module else []))


def imported_layers(path: Path, src: Path) -> set[tuple[str, int]]:
    """(layer, line) of every rereel module `path` imports, at any depth of the file."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        names: list[str] = []
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            module = _absolute(node, path, src)
            # `from rereel import explore` imports the layer named by each alias
            names = [f"{module}.{a.name}" for a in node.names] if module == "rereel" else [module]
        elif (isinstance(node, ast.Call) and getattr(node.func, "attr", getattr(node.func, "id", None)) == "import_module"
              and node.args and isinstance(node.args[0], ast.Constant) and isinstance(node.args[0].value, str)):
            names = [node.args[0].value]
        for name in names:
            parts = name.split(".")
            if parts[0] == "rereel" and len(parts) > 1:
                found.add((parts[1], node.lineno))
    return found


def modules(src: Path) -> list[Path]:
    return sorted(p for p in src.rglob("*.py") if "__pycache__" not in p.parts)


def crossings(src: Path) -> list[str]:
    """Imports that go against the flow (or from a module no layer owns), one line each."""
    bad = []
    for path in modules(src):
        layer = layer_of(path, src)
        if layer not in ALLOWED:
            bad.append(f"{path.relative_to(src)}: layer {layer!r} is not in docs/architecture.md")
            continue
        for imported, line in sorted(imported_layers(path, src)):
            if imported != layer and imported not in ALLOWED[layer]:
                bad.append(f"{path.relative_to(src)}:{line}: {layer} imports {imported}")
    return bad


def shared_names(src: Path) -> dict[str, list[str]]:
    by_name = defaultdict(list)
    for path in modules(src):
        if path.name not in ("__init__.py", "__main__.py"):
            by_name[path.name].append(str(path.relative_to(src)))
    return {name: paths for name, paths in by_name.items() if len(paths) > 1}


def test_lower_layers_never_import_higher_ones():
    assert crossings(SRC) == []


def test_no_two_modules_share_a_name():
    assert shared_names(SRC) == {}


def test_the_doc_names_every_layer():
    doc = DOC.read_text()
    missing = [layer for layer in ALLOWED if layer != "rereel" and f"`{layer}`" not in doc]
    assert missing == []


def test_the_doc_lists_every_module():
    doc = DOC.read_text()
    missing = [str(p.relative_to(SRC.parent)) for p in modules(SRC) if f"`{p.relative_to(SRC.parent).as_posix()}`" not in doc]
    assert missing == [], "add a line for each to docs/architecture.md's 'Every module'"


def test_the_check_sees_function_level_and_relative_imports(tmp_path):
    src = tmp_path / "rereel"
    (src / "render").mkdir(parents=True)
    (src / "render" / "__init__.py").write_text(
        "from rereel.timeline import x\n"
        "def f():\n    from rereel.match.choose import y\n"
        "def g():\n    from ..library import z\n"
        "def h():\n    import importlib; importlib.import_module('rereel.encoders')\n"
    )
    assert sorted(crossings(src)) == [
        "render/__init__.py:3: render imports match",
        "render/__init__.py:5: render imports library",
        "render/__init__.py:7: render imports encoders",
    ]
