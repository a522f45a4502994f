"""The shape of the package: imports point one way (core -> engines -> layers -> outputs -> automation -> definitions
-> cli), and no module imports itself back through others, function-level imports counted."""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent.parent / "crm_assets"
# The engines come after core (the Spark engine and its resource build on core's Warehouse), before the layers that
# compute on them; but the Engine protocol (engines.base) and the DuckDB engine, which core's Warehouse opens, sit
# with core: core's write machinery is typed against the protocol. A module's own rank comes before its package's.
RANKS = {
    "core": 0,
    "engines.base": 0,
    "engines.duckdb": 0,
    "engines": 1,
    "layers": 2,
    "outputs": 3,
    "automation": 4,
    "definitions": 5,
    "cli": 6,
}


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {module_name(p): p for p in PACKAGE.rglob("*.py")}


def imports_of(path: Path) -> set[str]:
    """Every project module ``path`` imports, anywhere in it (a ``from package import module`` names the module)."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names if a.name.startswith("crm_assets")}
        elif isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("crm_assets"):
            submodules = {f"{node.module}.{a.name}" for a in node.names} & set(MODULES)
            found |= submodules or {node.module}
    return {m for m in found if m in MODULES}


GRAPH = {name: imports_of(path) - {name} for name, path in MODULES.items()}


def rank(module: str) -> int | None:
    parts = module.split(".")
    return RANKS.get(".".join(parts[1:3]), RANKS.get(parts[1])) if len(parts) > 1 else None


def test_every_module_has_a_place_in_the_layers():
    assert sorted(m for m in MODULES if m != "crm_assets" and rank(m) is None) == []


def test_imports_point_one_way():
    wrong = sorted(
        f"{src} imports {dst}"
        for src, targets in GRAPH.items()
        for dst in targets
        if rank(src) is not None and rank(dst) is not None and rank(dst) > rank(src)
    )
    assert wrong == []


def test_no_import_cycles():
    cycles, state = [], {}

    def visit(node: str, stack: list[str]) -> None:
        state[node] = "open"
        for nxt in sorted(GRAPH[node]):
            if state.get(nxt) == "open":
                cycles.append(" -> ".join(stack[stack.index(nxt) :] + [nxt]))
            elif nxt not in state:
                visit(nxt, [*stack, nxt])
        state[node] = "done"

    for module in sorted(GRAPH):
        if module not in state:
            visit(module, [module])
    assert cycles == []


def test_the_checker_sees_function_level_imports():
    source = PACKAGE / "cli" / "main.py"
    assert "crm_assets.cli.runner" in imports_of(source)  # imported inside cmd_run only


def private_imports(path: Path) -> list[str]:
    """The private modules of a library (a dotted name with a part starting ``_``, dunders aside) ``path`` imports,
    anywhere in it, or names as a string to import (``importlib``, ``monkeypatch.setattr("dagster._...")``)."""
    found = []
    for node in ast.walk(ast.parse(path.read_text())):
        names = []
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            names = [node.module]
        elif isinstance(node, ast.Constant) and isinstance(node.value, str) and " " not in node.value:
            names = [node.value] if node.value.startswith(("dagster._", "dagster_", "duckdb._", "pyspark._")) else []
        for name in names:
            if not name.startswith(("crm_assets", "benchmarks")) and any(
                part.startswith("_") and not part.startswith("__") for part in name.split(".")
            ):
                found.append(name)
    return found


def test_no_private_module_of_a_library_is_imported_or_patched():
    """Public APIs only: an upgrade of Dagster, DuckDB or Spark cannot break a private import silently."""
    roots = [PACKAGE, PACKAGE.parent / "crm_assets_tests", PACKAGE.parent / "benchmarks"]
    found = {
        str(p.relative_to(PACKAGE.parent)): names
        for root in roots
        for p in root.rglob("*.py")
        if p != Path(__file__).resolve() and (names := private_imports(p))  # this file names some, as samples
    }
    assert not found


def test_the_private_import_check_can_fail(tmp_path):
    sample = tmp_path / "sample.py"
    sample.write_text(
        "from dagster._core.storage import x\nimport duckdb\n"
        "def f(monkeypatch):\n    monkeypatch.setattr('dagster._core.y', 1)\n"
    )
    assert private_imports(sample) == ["dagster._core.storage", "dagster._core.y"]
