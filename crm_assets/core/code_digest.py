"""Versions of code taken from its text: what a result depends on, not where the code lives or how it reads.

A module's digest is a hash of its syntax tree without docstrings, comments, imports and layout, so that moving
a module or editing its documentation changes nothing, while changing a statement or a line of code does.
"""

from __future__ import annotations

import ast
import hashlib
import importlib.resources
from collections.abc import Sequence
from pathlib import Path


class _Normalise(ast.NodeTransformer):
    """A module's tree without what does not change a result: docstrings and imports."""

    def _strip_docstring(self, node):
        self.generic_visit(node)
        body = getattr(node, "body", None) or []
        first = body[0] if body else None
        if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant) and isinstance(first.value.value, str):
            node.body = body[1:] or [ast.Pass()]
        return node

    visit_Module = visit_FunctionDef = visit_AsyncFunctionDef = visit_ClassDef = _strip_docstring

    def visit_Import(self, node):
        return None

    def visit_ImportFrom(self, node):
        return None


def code_text_digest(source: str) -> str:
    """The digest of a module's code: its syntax tree without docstrings, comments, imports and layout."""
    tree = _Normalise().visit(ast.parse(source))
    return hashlib.sha256(ast.dump(tree, annotate_fields=False).encode()).hexdigest()


def sql_text_digest(source: str) -> str:
    """The digest of a SQL file: its words, whatever the layout."""
    return hashlib.sha256(" ".join(source.split()).encode()).hexdigest()


def code_files(modules: Sequence[str] = (), packages: Sequence[str] = ()) -> list[Path]:
    """The files of ``modules`` (dotted names, read, not imported) and every ``.py`` and ``.sql`` file of
    ``packages``, their folders included."""
    files = []
    for module in modules:
        package, _, name = module.rpartition(".")
        files.append(Path(str(importlib.resources.files(package).joinpath(f"{name}.py"))))
    for package in packages:
        root = Path(str(importlib.resources.files(package)))
        files += [p for p in root.rglob("*") if p.suffix in (".py", ".sql") and "__pycache__" not in p.parts]
    return files


def version_of_code(modules: Sequence[str] = (), packages: Sequence[str] = ()) -> str:
    """A short hash of the code of ``modules`` and of every module and SQL file of ``packages``, independent of
    where each lives (the digests are sorted, not the names)."""
    digests = []
    for path in code_files(modules, packages):
        text = path.read_text(encoding="utf-8")
        digests.append(code_text_digest(text) if path.suffix == ".py" else sql_text_digest(text))
    return hashlib.sha256("".join(sorted(digests)).encode()).hexdigest()[:12]
