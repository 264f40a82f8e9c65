"""A failed job costs no finished result it did not produce, and never lets
old results pass as current: real Snakemake runs on ``file:`` features."""

from __future__ import annotations

import pytest

from file_workflow import D, IDS, TABLES, snapshot, write_features
from prh.config import RESULTS
from prh.reruns import marks_path, read_marks
from workflow_helpers import copy_run, pending, smk

pytestmark = pytest.mark.slow
MARKS = marks_path(RESULTS)


def test_a_failed_import_keeps_every_result_and_the_next_good_run_rebuilds_its_own(
        file_run, tmp_path):
    wd = copy_run(file_run, tmp_path / "wf")  # a finished run: figures and report too
    before = snapshot(wd)
    assert set(TABLES) <= set(before)
    own, prev = f"{D}/features/vis_a.h5", f"{D}/features/.vis_a.h5.prev"
    downstream = {f"{D}/layer_cache/vis_a.h5", f"{D}/pairs/lang_b__vis_a.h5",
                  f"{D}/pairs/lang_c__vis_a.h5", *TABLES}
    swapped = list(IDS)
    swapped[0], swapped[1] = swapped[1], swapped[0]
    write_features(wd, "vis_a", swapped)

    # the failing file alone as the target, then a plain rerun of everything
    marks = None
    for target in (own, "align"):
        res = smk(wd, target, check=False)
        assert res.returncode != 0
        assert "row 0 is sample 's01'" in (wd / "logs/toy/embed/vis_a.log").read_text()
        after = snapshot(wd)
        # only the failed job's own output is gone, kept aside for a rerun that can use it
        assert own not in after and after.pop(prev) == before[own]
        after.pop(MARKS)
        assert after == {f: v for f, v in before.items() if f != own}
        # kept, but named out of date and marked: planned again, never "Nothing to be done"
        if marks is None:
            assert f"kept {D}/layer_cache/vis_a.h5" in res.stderr
            assert f"since {own} is missing" in res.stderr
            marks = read_marks(wd / MARKS)
            assert set(marks) == downstream
        else:  # the rerun lost nothing more, so it marks nothing anew
            assert read_marks(wd / MARKS) == marks and "prh: kept" not in res.stderr
        assert pending(wd, "align") == downstream | {own}

    write_features(wd, "vis_a", IDS, seed=1)  # fixed, with other values
    smk(wd, "align")
    final = snapshot(wd)
    assert prev not in final and pending(wd, "align") == set()
    changed = {f for f in before if final[f] != before[f]}
    assert changed == downstream | {own}
    assert final[f"{D}/alignment.tsv"][0] != before[f"{D}/alignment.tsv"][0]
    res = smk(wd, "-n", "align")  # the marks they were rebuilt with rerun nothing
    assert "Nothing to be done" in res.stdout + res.stderr

