"""One cluster command everywhere: every place that tells a user how to run
the paper config on SLURM gives the same command, in full (issue 13)."""

from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
COMMAND = ("snakemake --workflow-profile profiles/slurm --configfile config/paper.yaml "
           "--replace-workflow-config")
PLACES = ["README.md", "docs/cluster.md", "config/paper.yaml", "profiles/slurm/config.yaml"]


def cluster_command_lines(text: str) -> list[str]:
    """Lines that run snakemake with the slurm profile or the paper config."""
    return [line for line in text.splitlines()
            if "snakemake" in line and ("profiles/slurm" in line or "paper.yaml" in line)]


@pytest.mark.parametrize("place", PLACES)
def test_cluster_command_is_the_one_command(place):
    lines = cluster_command_lines((ROOT / place).read_text())
    assert lines, f"{place} does not give the cluster command"
    for line in lines:
        assert COMMAND in line, f"{place}: {line.strip()!r} is not {COMMAND!r}"

