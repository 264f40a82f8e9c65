"""Sample provenance: which samples, in which order, a file was computed from.

Every derived file (features, layer cache, pair, alignment) records the manifest's
``content_sha256`` and :func:`ids_sha256` of its sample ids; each stage checks
its inputs against the manifest and against each other with
:func:`check_same_samples`, so a features file whose rows were reordered, that
comes from another subset, or that is another model's file copied into place
is refused in one line instead of being scored (torch-free).
"""

from __future__ import annotations

import hashlib
import json
from typing import Any, Mapping, Sequence

MANIFEST = "manifest_sha256"
IDS = "sample_ids_sha256"


class ProvenanceError(ValueError):
    """Two files disagree on the samples they were computed from."""


def ids_sha256(ids: Sequence[str]) -> str:
    """Hash of the sample ids in order (JSON list, UTF-8)."""
    return hashlib.sha256(json.dumps([str(i) for i in ids], ensure_ascii=False)
                          .encode("utf-8")).hexdigest()


def first_difference(a: Sequence[str], b: Sequence[str]) -> tuple[int, str, str] | None:
    """(position, a's id, b's id) of the first place two id lists differ; a
    missing id reads "<none>". None when they are equal."""
    for i in range(max(len(a), len(b))):
        x = str(a[i]) if i < len(a) else "<none>"
        y = str(b[i]) if i < len(b) else "<none>"
        if x != y:
            return i, x, y
    return None


def check_same_samples(a_ids: Sequence[str], a_name: Any, b_ids: Sequence[str], b_name: Any,
                       what: str = "rerun the workflow so both come from the same manifest") -> None:
    """Refuse two files whose sample ids differ (order included), naming both
    files, the first differing position and both ids."""
    diff = first_difference(list(a_ids), list(b_ids))
    if diff is not None:
        i, x, y = diff
        raise ProvenanceError(
            f"{a_name} and {b_name} disagree on their samples ({len(a_ids)} vs {len(b_ids)}): "
            f"at position {i} {a_name} has {x!r}, {b_name} has {y!r}; {what}")


def check_same_hashes(a: Mapping[str, Any], a_name: Any, b: Mapping[str, Any], b_name: Any) -> None:
    """Refuse two files whose recorded manifest or sample-id hashes differ (for
    files that store the hashes but not the ids)."""
    for key in (MANIFEST, IDS):
        x, y = a.get(key), b.get(key)
        if not x or not y:
            raise ProvenanceError(f"{a_name if not x else b_name}: no {key} recorded; it was "
                                  "written by an older prh, rerun the job that writes it")
        if x != y:
            raise ProvenanceError(f"{a_name} and {b_name} come from different samples: "
                                  f"{key} {str(x)[:12]} vs {str(y)[:12]}; rerun the workflow")


def record(manifest_sha256: str, ids: Sequence[str]) -> dict[str, str]:
    """The provenance attributes of a derived file."""
    return {MANIFEST: str(manifest_sha256), IDS: ids_sha256(ids)}
