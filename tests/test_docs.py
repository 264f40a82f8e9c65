"""The documentation stays true: docs/config.md is the rendered schema, every
relative link lands on an existing file and heading, and the README stays a
first page."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Iterator

import pytest

from prh import config_docs

REPO = Path(__file__).resolve().parents[1]
PAGES = ["README.md", "CHANGELOG.md", "benchmarks/README.md",
         *sorted(str(p.relative_to(REPO)) for p in (REPO / "docs").glob("*.md"))]
LINK = re.compile(r"!?\[[^\]]*\]\(([^)\s]+)\)")


def _prose(text: str) -> list[str]:
    """The lines outside fenced code blocks."""
    out, fenced = [], False
    for line in text.splitlines():
        if line.lstrip().startswith("```"):
            fenced = not fenced
        elif not fenced:
            out.append(line)
    return out


def _anchors(page: Path) -> Iterator[str]:
    """GitHub's heading anchors of a Markdown page (lower case, punctuation
    dropped, spaces as hyphens, repeats numbered)."""
    seen: dict[str, int] = {}
    for line in _prose(page.read_text()):
        m = re.match(r"#{1,6}\s+(.*?)\s*#*\s*$", line)
        if m:
            slug = re.sub(r"[^\w\- ]", "", m.group(1).lower()).replace(" ", "-")
            n = seen.get(slug, 0)
            seen[slug] = n + 1
            yield slug if n == 0 else f"{slug}-{n}"


def test_config_doc_is_the_rendered_schema():
    assert (REPO / "docs/config.md").read_text() == config_docs.render(), (
        "docs/config.md is stale: run `make docs`")


def test_every_setting_of_the_schema_has_a_row():
    from prh.config import load_schema

    keys = {row[0] for row in config_docs.rows(load_schema())}
    text = (REPO / "docs/config.md").read_text()
    for key in ("calibration.n_permutations", "alignment.pair_block", "models.<name>.source",
                "models.<name>.batch_size", "embedding.batch_size", "metrics.svcca.cca_dim",
                "plots.layer_pairs", "datasets.<name>.options.<key>"):
        assert key in keys and f"| `{key}` |" in text, key


@pytest.mark.parametrize("page", PAGES)
def test_relative_links_resolve(page):
    path = REPO / page
    assert path.is_file(), f"{page} is missing"
    broken = []
    for line in _prose(path.read_text()):
        for target in LINK.findall(line):
            if re.match(r"[a-z]+:", target):  # https:, mailto:
                continue
            file, _, anchor = target.partition("#")
            dest = (path.parent / file).resolve() if file else path
            if not dest.exists():
                broken.append(f"{target} (no such file)")
            elif anchor and dest.suffix == ".md" and anchor not in set(_anchors(dest)):
                broken.append(f"{target} (no such heading)")
    assert not broken, f"{page}: broken links: {broken}"


def test_readme_is_a_first_page():
    text = (REPO / "README.md").read_text()
    assert len(text.splitlines()) <= 250
    assert "make run" in text and "make test" in text
    for doc in ("docs/usage.md", "docs/config.md", "docs/statistics.md", "docs/cluster.md",
                "docs/architecture.md", "docs/metrics.md", "docs/models.md"):
        assert f"]({doc})" in text, f"the README does not link {doc}"


SCHEMA = {
    "description": "A toy config.",
    "required": ["things"],
    "$defs": {
        "name": {"description": "a short key", "type": "string"},
        "common": {"type": "object", "properties": {
            "size": {"type": "integer", "minimum": 1, "description": "how big"}}},
    },
    "properties": {
        "things": {
            "type": "object",
            "propertyNames": {"$ref": "#/$defs/name"},
            "additionalProperties": {
                "$ref": "#/$defs/common",
                "required": ["kind"],
                "properties": {
                    "kind": {"type": "string", "enum": ["a", "b|c"]},
                    "score": {"type": "number", "description": "a value"},
                    "where": {"type": "string"},
                    "pair": {"type": "array", "minItems": 2, "maxItems": 2,
                             "items": {"$ref": "#/$defs/name"}},
                },
                "dependentRequired": {"score": ["where"]},
            },
        },
        "common": {"$ref": "#/$defs/common", "description": "for every thing",
                   "default": {}, "properties": {"size": {"default": 3}}},
    },
}


def test_rows_merge_references_and_name_what_the_user_names():
    assert list(config_docs.rows(SCHEMA)) == [
        ("things", "object", "required", ""),
        ("things.<name>", "object", "", "a short key"),
        ("things.<name>.kind", "`a` \\| `b\\|c`", "required", ""),
        ("things.<name>.score", "number", "", "a value. Needs `where`."),
        ("things.<name>.where", "string", "", ""),
        ("things.<name>.pair", "[name, name]", "", ""),
        ("things.<name>.size", "integer, >= 1", "", "how big"),
        ("common", "object", "`{}`", "for every thing"),
        ("common.size", "integer, >= 1", "`3`", "how big"),
    ]


def test_render_writes_one_table_per_top_level_key():
    text = config_docs.render(SCHEMA)
    assert text.startswith(config_docs.HEADER) and text.endswith("\n")
    assert "## `things`\n\nType object; required.\n" in text
    assert "## `common`\n\nfor every thing\n\nType object; default `{}`.\n" in text
    assert "| `common.size` | integer, >= 1 | `3` | how big |" in text
    assert "| `things.<name>.score` | number |  | a value. Needs `where`. |" in text


def test_metric_parameters_take_their_defaults_from_the_metric_table():
    from prh.config import load_schema
    from prh.metric_info import METRICS

    rows = {r[0]: r for r in config_docs.rows(load_schema())}
    assert rows["metrics.mutual_knn.topk"][2] == f"`{METRICS['mutual_knn'].defaults['topk']}`"
    assert rows["metrics.svcca"][3] == METRICS["svcca"].description


def test_check_says_whether_the_file_is_current(tmp_path, capsys):
    out = tmp_path / "config.md"
    assert config_docs.main(["--check", str(out)]) == 1
    assert config_docs.main([str(out)]) == 0
    assert out.read_text() == config_docs.render()
    assert config_docs.main(["--check", str(out)]) == 0
    out.write_text(out.read_text() + "edited by hand\n")
    assert config_docs.main(["--check", str(out)]) == 1
    assert f"{out} is not the rendered config schema: run `make docs`" in capsys.readouterr().err
    assert [p.name for p in tmp_path.iterdir()] == ["config.md"]  # no temp file left
