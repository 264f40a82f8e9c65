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
