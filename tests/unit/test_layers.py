"""The package's layers (docs/ARCHITECTURE.md, "Layers"): no module imports from a layer above its own, at module
level or inside a function, and the lowest layers start without torch."""

import ast
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support import ROOT

PACKAGE = ROOT / "runner"

# lowest first; a module belongs to the first entry that is its name or a package above it
LAYERS: list[tuple[str, ...]] = [
    ("runner.errors", "runner.layout", "runner.atomic_file", "runner.text"),
    ("runner.config", "runner.store", "runner.result", "runner.cache"),
    ("runner.data", "runner.device", "runner.metrics", "runner.clel"),
    ("runner.run",),
    ("runner.plan",),
    ("runner.report", "runner.cluster"),
    ("runner.launch",),
    ("runner.cli", "runner.__main__"),
]


def layer_of(module: str) -> int | None:
    for index, members in enumerate(LAYERS):
        if any(module == m or module.startswith(m + ".") for m in members):
            return index
    return None


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports(path: Path) -> list[tuple[int, str]]:
    """(line, module) of every import in the file, wherever it is."""
    found = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found += [(node.lineno, node.module)]
            found += [(node.lineno, f"{node.module}.{alias.name}") for alias in node.names]
    return found


MODULES = sorted(p for p in PACKAGE.rglob("*.py") if p != PACKAGE / "__init__.py")  # the package file is empty


def test_every_module_has_a_layer():
    assert [module_name(p) for p in MODULES if layer_of(module_name(p)) is None] == []


@pytest.mark.parametrize("path", MODULES, ids=lambda p: module_name(p))
def test_no_import_goes_up(path):
    own = layer_of(module_name(path))
    upward = []
    for line, target in imports(path):
        layer = layer_of(target)
        if target.startswith("runner") and layer is not None and layer > own:
            upward.append(f"{path.relative_to(ROOT)}:{line} imports {target} (layer {layer} > {own})")
    assert upward == []


@pytest.mark.parametrize(
    "path", [p for p in MODULES if (layer_of(module_name(p)) or 0) <= 1], ids=lambda p: module_name(p)
)
def test_the_lowest_layers_never_name_torch_or_the_method(path):
    heavy = [t for _, t in imports(path) if t.split(".")[0] == "torch" or t.startswith("runner.clel")]
    assert heavy == []


def test_config_store_and_layout_load_without_torch():
    code = (
        "import sys, runner.config, runner.store, runner.layout, runner.result;"
        "print(sorted(m for m in sys.modules if m == 'torch' or m.startswith('runner.clel')))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, check=True)
    assert out.stdout.strip() == "[]"


def test_no_module_is_over_300_lines():
    long = {module_name(p): n for p in MODULES if (n := len(p.read_text().splitlines())) > 300}
    assert long == {}


def test_no_circle_among_the_modules():
    """The import graph (module level and inside functions) has no cycle: each module can be read after the ones
    it imports."""
    names = {module_name(p) for p in MODULES}
    graph = {module_name(p): sorted({t for _, t in imports(p) if t in names} - {module_name(p)}) for p in MODULES}
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    circles = []

    def visit(module: str, path: list[str]) -> None:
        state[module] = 1
        for target in graph[module]:
            if state.get(target) == 1:
                circles.append(" -> ".join([*path[path.index(target) :], target]))
            elif target not in state:
                visit(target, [*path, target])
        state[module] = 2

    for module in sorted(graph):
        if module not in state:
            visit(module, [module])
    assert circles == []


def test_the_root_holds_at_most_ten_modules():
    """`ls runner` shows the layers: the folders, and at the root only what every layer uses."""
    root = sorted(p.name for p in PACKAGE.glob("*.py"))
    assert len(root) <= 10, root
