"""Versions of code taken from its text: what a result depends on, not where the code lives or how it reads.

A module's digest is a hash of its syntax tree without docstrings, comments, imports and layout, so that moving
a module or editing its documentation changes nothing, while changing a statement or a line of code does.
"""

from __future__ import annotations

import ast
import hashlib
import importlib.resources
from collections.abc import Iterable, Sequence


class _Normalise(ast.NodeTransformer):
    """A module's tree without what does not change a result: docstrings and imports."""

    def _strip_docstring(self, node):
        self.generic_visit(node)
        body = getattr(node, "body", None)
        if body and isinstance(body[0], ast.Expr) and isinstance(getattr(body[0], "value", None), ast.Constant):
            if isinstance(body[0].value.value, str):
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


def package_files(package: str) -> Iterable[tuple[str, str]]:
    """``(name, text)`` of every ``.py`` and ``.sql`` file of a package, its folders included."""
    stack = [importlib.resources.files(package)]
    while stack:
        node = stack.pop()
        for child in node.iterdir():
            if child.is_dir() and child.name != "__pycache__":
                stack.append(child)
            elif child.name.endswith((".py", ".sql")):
                yield child.name, child.read_text(encoding="utf-8")


def module_text(module: str) -> tuple[str, str]:
    """``(file name, text)`` of a module named by its dotted name (read, not imported)."""
    package, _, name = module.rpartition(".")
    return f"{name}.py", importlib.resources.files(package).joinpath(f"{name}.py").read_text(encoding="utf-8")


def version_of_code(modules: Sequence[str] = (), packages: Sequence[str] = ()) -> str:
    """A short hash of the code of ``modules`` and of every module and SQL file of ``packages``, independent of
    where each lives (the digests are sorted, not the names)."""
    texts = [module_text(m) for m in modules]
    for package in packages:
        texts += [(name, text) for name, text in package_files(package)]
    digests = sorted(code_text_digest(t) if n.endswith(".py") else sql_text_digest(t) for n, t in texts)
    return hashlib.sha256("".join(digests).encode()).hexdigest()[:12]
