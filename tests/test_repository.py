"""The repository stands alone: what its code relies on is in its own docs."""

from __future__ import annotations

import subprocess
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def test_no_file_cites_material_outside_the_repository():
    files = subprocess.run(["git", "ls-files"], cwd=REPO, capture_output=True, text=True,
                           check=True).stdout.split()
    offenders = []
    for name in files:
        path = REPO / name
        if not path.is_file() or path.suffix in (".png", ".pdf", ".h5", ".gguf"):
            continue
        text = path.read_text(errors="ignore")
        if ("shared" + "/spec") in text or ("../" + "shared") in text:
            offenders.append(name)
    assert offenders == [], f"cite docs/ instead: {offenders}"
    for doc in ("docs/metrics.md", "docs/models.md"):
        assert (REPO / doc).is_file()


# issue 22's sizes: a module or class a newcomer can read in one sitting
MAX_MODULE_LINES, MAX_CLASS_LINES = 600, 300


def test_no_library_module_or_class_outgrows_one_reading():
    import ast

    too_long = []
    for path in sorted((REPO / "prh").rglob("*.py")):
        text = path.read_text()
        name = path.relative_to(REPO).as_posix()
        if len(text.splitlines()) > MAX_MODULE_LINES:
            too_long.append(f"{name}: {len(text.splitlines())} lines")
        for node in ast.walk(ast.parse(text)):
            if isinstance(node, ast.ClassDef) and \
                    node.end_lineno - node.lineno + 1 > MAX_CLASS_LINES:
                too_long.append(f"{name}: class {node.name} "
                                f"{node.end_lineno - node.lineno + 1} lines")
    assert too_long == [], f"split by concept: {too_long}"
