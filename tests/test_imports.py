"""The per-rule library inputs are the real import closure of each script."""

from __future__ import annotations

import modulefinder
from pathlib import Path

import pytest

from prh.imports import library_files

REPO = Path(__file__).resolve().parents[1]
SCRIPTS = sorted((REPO / "scripts").glob("*.py"))


def _oracle(script: Path) -> set[str]:
    """Python's own static import finder, limited to this checkout (so no
    third-party package is scanned)."""
    finder = modulefinder.ModuleFinder(path=[str(REPO)])
    finder.run_script(str(script))
    return {str(Path(m.__file__)) for name, m in finder.modules.items()
            if (name == "prh" or name.startswith("prh.")) and m.__file__}


@pytest.mark.parametrize("script", SCRIPTS, ids=lambda p: p.name)
def test_library_files_equal_the_import_closure(script):
    assert set(library_files(script, REPO)) == _oracle(script)


def test_steps_are_separate_rerun_boundaries():
    files = {s.name: {Path(f).relative_to(REPO).as_posix() for f in library_files(s, REPO)}
             for s in SCRIPTS}
    assert "prh/steps/embed.py" not in files["prepare_dataset.py"]
    assert "prh/formats/tables.py" not in files["model_stats.py"] | files["pair_scores.py"]
    assert "prh/formats/tables.py" not in files["sample_size_curve.py"]
    assert "prh/models/registry.py" not in files["pair_scores.py"]
    assert "prh/steps/aggregate.py" in files["aggregate.py"]
