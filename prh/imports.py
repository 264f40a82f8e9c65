"""Which library files a workflow script runs: its import closure within prh.

Snakemake tracks a rule's ``script:`` file but not the modules it imports, so
each rule takes the files of its script's import closure as inputs: editing
a module reruns exactly the rules whose code imports it. The closure is read
from the source (every ``import`` statement, function-level ones included),
so it costs a fraction of a second when the DAG is built (each module
parsed once) and never imports anything.
"""

from __future__ import annotations

import ast
import os
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


@lru_cache(maxsize=None)  # every rule's closure walks the same modules again
def _imported_modules(path: Path, module: str | None) -> frozenset[str]:
    """Every prh module a file's import statements name (with the packages
    above it, which Python runs first)."""
    tree = ast.parse(path.read_text(), filename=str(path))
    is_package = path.name == "__init__.py"
    names: set[str] = set()
    for node in ast.walk(tree):
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
