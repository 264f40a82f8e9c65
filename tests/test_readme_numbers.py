"""The numbers README.md quotes agree with what produces them.

- ``p_models``: each "k/M! = X for the slope / the Spearman correlation" of
  the README is the smallest ``p_models`` the library's trend code gives for
  the default run's models on the competence axis (scores rising exactly with
  their competence values, the best case), M is the count of those models
  and the alpha it says no Spearman trend can reach is the config's.
- Timings: the README's timing table equals its record,
  ``benchmarks/timings.tsv``, cell by cell, and the test count it quotes is
  within :data:`TEST_COUNT_TOLERANCE` of what pytest collects now: a table
  measured on a much smaller or larger suite is stale, and whoever
  re-measures it updates the record and the table together.
"""

from __future__ import annotations

import csv
import math
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml

REPO = Path(__file__).resolve().parents[1]
#: the quoted test count may trail the suite by this fraction (tests added
#: since the last measurement) before the timings count as stale
TEST_COUNT_TOLERANCE = 0.10


def readme() -> str:
    """README.md with its lines joined (claims wrap across lines)."""
    return " ".join((REPO / "README.md").read_text().split())


def default_competence() -> dict[str, float]:
    """The default run's vision models on the competence axis: those with a
    configured competence, and untrained ones at chance."""
    from prh.competence import CHANCE_COMPETENCE
    from prh.config import Config

    raw = yaml.safe_load((REPO / "config.yaml").read_text())
    cfg = Config(raw)
    out = {}
    for m, entry in raw["models"].items():
        if cfg.modality(m) != "vision":
            continue
        if "competence" in entry:
            out[m] = float(entry["competence"])
        elif entry.get("weights") == "random":
            out[m] = CHANCE_COMPETENCE
    return out


def smallest_p_models(competence: dict[str, float]) -> dict[str, float]:
    """Statistic -> the p_models of scores that rise exactly with competence
    (no ordering of the models does better), from the library's trend code."""
    from prh.inference.resampling import PairReplicates
    from prh.inference.statistics import trend_rows

    models = list(competence)
    c = np.array([competence[m] for m in models])
    full = {(m, "t", "xy", "mutual_knn"): {"max": float(v)} for m, v in zip(models, c)}
    reps = {k: {"max": np.full(5, v["max"])} for k, v in full.items()}
    rep = PairReplicates(n=50, full=full, reps=reps,
                         schemes={"mutual_knn": ("jackknife", 5, 40.0)})
    return {r["statistic"]: r["p_models"] for r in trend_rows(rep, models, c, ["t"])
            if r["partner"] == "t"}


def test_readme_p_models_floors_are_the_trend_codes():
    text = readme()
    competence = default_competence()
    m = len(competence)
    floors = smallest_p_models(competence)
    said = re.search(r"default's (\d+) vision models on the competence axis", text)
    assert said and int(said.group(1)) == m, (said, competence)
    stat = {"slope": "slope", "Spearman correlation": "spearman"}
    claims = re.findall(r"(\d+)/(\d+)! = (0\.\d+) for the (slope|Spearman correlation)", text)
    assert {c[3] for c in claims} == set(stat), claims
    for k, n, value, name in claims:
        floor = floors[stat[name]]
        assert int(n) == m, (k, n, value, name)
        assert floor == pytest.approx(int(k) / math.factorial(m)), (name, floor)
        assert value == f"{floor:.{len(value) - 2}f}", (name, value, floor)
    alpha = re.search(r"no Spearman trend can reach alpha = (0\.\d+)", text)
    from prh.config import Config

    cfg = Config(yaml.safe_load((REPO / "config.yaml").read_text()))
    assert alpha and float(alpha.group(1)) == cfg.calibration["alpha"]
    assert floors["spearman"] > cfg.calibration["alpha"]


def timing_table() -> dict[str, str]:
    """README's timing table: command (`make X`) -> its wall-time cell."""
    lines = (REPO / "README.md").read_text().splitlines()
    start = lines.index("| command | wall time |")
    rows = {}
    for line in lines[start + 2:]:
        if not line.startswith("|"):
            break
        command, cell = [c.strip() for c in line.strip("|").split("|")]
        rows[re.match(r"`([^`]+)`", command).group(1)] = (command, cell)
    return rows


def record() -> dict[str, dict[str, str]]:
    with open(REPO / "benchmarks/timings.tsv", newline="") as fh:
        return {r["command"]: r for r in csv.DictReader(fh, delimiter="\t")}


def collected_tests(config) -> int:
    """The suite's test count: this session's, when it collected every test
    file, else from a collect-only run."""
    from conftest import COLLECTED

    here = config.stash.get(COLLECTED, [])
    if {n.split("::", 1)[0] for n in here} == {f"tests/{p.name}" for p in
                                              (REPO / "tests").glob("test_*.py")}:
        return len(here)
    res = subprocess.run([sys.executable, "-m", "pytest", "--collect-only", "-q",
                          "-p", "no:cacheprovider", "tests"],
                         cwd=REPO, capture_output=True, text=True, timeout=600)
    found = re.search(r"(\d+) tests? collected", res.stdout)
    assert found, res.stdout[-2000:] + res.stderr[-2000:]
    return int(found.group(1))


def test_readme_timings_are_the_record_and_the_suite_they_timed(pytestconfig):
    table, rec = timing_table(), record()
    assert set(table) == set(rec)
    for command, (label, cell) in table.items():
        r = rec[command]
        assert cell == (f"{r['wall']}: {r['parts']}" if r["parts"] else r["wall"]), command
        count = re.search(r"\((\d+) tests\)", label)
        assert (count.group(1) if count else "") == r["tests"], command
    quoted = int(rec["make test"]["tests"])
    now = collected_tests(pytestconfig)
    assert abs(now - quoted) <= TEST_COUNT_TOLERANCE * now, (
        f"README's timings were measured on {quoted} tests; pytest collects {now}: "
        "re-measure them (benchmarks/timings.tsv and the README's table)")


def test_readme_paper_plan_is_what_the_plan_prints():
    """The paper section's counts are config/paper.yaml's, and its requests
    the `prh: plan:` line the dry run prints (rules/common.smk)."""
    from collections import Counter

    from prh.config import Config

    text = readme()
    cfg = Config(yaml.safe_load((REPO / "config/paper.yaml").read_text()))
    count = Counter(cfg.modalities().values())
    assert (f"({count['language']} language and {count['vision']} vision models, "
            f"{len(cfg.pairs())} pairs)") in text
    plan = cfg.plan_totals()
    hours = re.search(r"(\d[\d,]*) CPU-hours", plan).group(1)
    peak = re.search(r"CPU jobs: longest statistics \S+ (\d+) min, largest statistics \S+ "
                      r"(\d+) MB", plan)
    assert peak, plan
    assert (f"{hours} CPU-hours requested; every job without a GPU fits a common CPU partition "
            f"(the longest, the statistics job, asks for {peak.group(1)} min; the largest "
            f"for {peak.group(2)} MB)") in text
