"""The shape of the package: imports point one way (core -> layers -> outputs -> automation -> definitions -> cli),
and no module imports itself back through others, function-level imports counted."""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent.parent / "crm_assets"
RANKS = {"core": 0, "layers": 1, "outputs": 2, "automation": 3, "definitions": 4, "cli": 5}


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
    return RANKS.get(parts[1]) if len(parts) > 1 else None


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
