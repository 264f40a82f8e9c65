"""Which library files a workflow script runs: its import closure within prh.

Snakemake tracks a rule's ``script:`` file but not the modules it imports, so
each rule takes the files of its script's import closure as inputs: editing
a module reruns exactly the rules whose code imports it. The closure is read
from the source (every ``import`` statement, function-level ones included)
and never imports anything.
"""

from __future__ import annotations

import ast
import os
import re
import sys
from functools import lru_cache
from pathlib import Path
from typing import Iterable

PACKAGE = "prh"


def _module_file(root: Path, module: str) -> Path | None:
    base = root.joinpath(*module.split("."))
    if (base / "__init__.py").is_file():
        return base / "__init__.py"
    if base.with_suffix(".py").is_file():
        return base.with_suffix(".py")
    return None


# Every DAG build (each `snakemake` call) scans ~90 modules. Parsing only the
# lines that start an import statement, not whole modules, takes this from
# 0.2-0.3 s to about 30 ms. A line inside a string that reads like an import only
# adds an input (a rerun too many, never one too few); statements that do not
# start their line (`if x: import y`) are not seen, and tests/test_imports.py
# checks the closure against Python's own modulefinder.
_IMPORT_LINE = re.compile(r"^[ \t]*(?:from[ \t]+[\w.]+[ \t]+import|import[ \t]+\w)[^\n]*", re.M)


def _import_statements(source: str):
    for match in _IMPORT_LINE.finditer(source):
        line = match.group()
        text, end = line, match.end()
        while text.rstrip().endswith("\\"):  # a backslash continues the statement
            nxt = source.find("\n", end + 1)
            end = len(source) if nxt < 0 else nxt
            text = source[match.start():end]
        if "(" in text and ")" not in text:  # `from x import (a,\n b)`
            close = source.find(")", end)
            text = source[match.start():close + 1] if close >= 0 else text
        for candidate in (text, line):  # a "(" in a comment spoils only the longer one
            try:
                yield from ast.parse(candidate.strip()).body
                break
            except SyntaxError:
                continue


@lru_cache(maxsize=None)  # every rule's closure walks the same modules again
def _imported_modules(path: Path, module: str | None) -> frozenset[str]:
    """Every prh module a file's import statements name (with the packages
    above it, which Python runs first)."""
    is_package = path.name == "__init__.py"
    names: set[str] = set()
    for node in _import_statements(path.read_text()):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                if module is None:
                    continue
                parts = module.split(".")
                keep = len(parts) - node.level + (1 if is_package else 0)
                base = ".".join(parts[:keep])
                target = f"{base}.{node.module}" if node.module else base
            else:
                target = node.module or ""
            names.add(target)
            # `from pkg import name` may import the submodule pkg.name
            names.update(f"{target}.{alias.name}" for alias in node.names)
    out = set()
    for name in names:
        if name == PACKAGE or name.startswith(PACKAGE + "."):
            parts = name.split(".")
            out.update(".".join(parts[:i]) for i in range(1, len(parts) + 1))
    return frozenset(out)


@lru_cache(maxsize=None)
def library_files(script: str | Path, root: str | Path) -> tuple[str, ...]:
    """Sorted paths of the prh files ``script`` imports, directly or through
    other prh modules, under the checkout ``root``."""
    root = Path(root)
    todo = [(Path(script), None)]
    seen: set[str] = set()
    files: set[Path] = set()
    while todo:
        path, module = todo.pop()
        for name in _imported_modules(path, module):
            if name in seen:
                continue
            seen.add(name)
            file = _module_file(root, name)
            if file is not None:  # `from prh.x import function` names no module
                files.add(file)
                todo.append((file, name))
    return tuple(sorted(str(f) for f in files))


def workdir_paths(paths: Iterable[str | Path], workdir: str | Path | None = None) -> list[str]:
    """Paths as Snakemake should record them: relative to the working
    directory (default: the current one) when under it, so that a run moved
    or copied with its checkout plans nothing; absolute otherwise, so that a
    working directory outside the checkout (``snakemake -d``) can move alone."""
    start = os.path.abspath(workdir if workdir is not None else os.curdir)
    out = []
    for path in paths:
        path = os.path.abspath(path)
        rel = os.path.relpath(path, start)
        out.append(path if rel == os.pardir or rel.startswith(os.pardir + os.sep) else rel)
    return out


def use_checkout(root: str | Path) -> None:
    """Make ``root``'s prh the one imported here and, through PYTHONPATH, in
    every process started from here (each job's script, also in a conda
    environment that does not install prh)."""
    root = str(root)
    if root not in sys.path:
        sys.path.insert(0, root)
    rest = [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p and p != root]
    os.environ["PYTHONPATH"] = os.pathsep.join([root] + rest)
