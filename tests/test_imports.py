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


def test_import_scan_reads_every_statement_form(tmp_path):
    """The scan reads import lines only: wrapped statements, a "(" in a
    comment, relative imports and function-level ones; an import-like line in
    a string adds its module (a rerun too many, never one too few)."""
    pkg = tmp_path / "prh"
    for name in ("a", "b", "c", "d", "e", "f", "g", "unused"):
        (pkg / f"{name}.py").parent.mkdir(exist_ok=True)
        (pkg / f"{name}.py").write_text("")
    (pkg / "__init__.py").write_text("")
    (pkg / "sub").mkdir()
    (pkg / "sub" / "__init__.py").write_text("from .. import g\n")
    (pkg / "a.py").write_text(
        "from prh.b import (x,\n    y)\n"
        "import prh.c as c  # see (notes\n"
        "from prh import \\\n    d\n"
        "def f():\n    from . import e\n"
        'DOC = """\nimport prh.f\n"""\n'
        "import prh.sub\n")
    script = tmp_path / "script.py"
    script.write_text("import prh.a\n")
    got = {Path(f).relative_to(tmp_path).as_posix() for f in library_files(script, tmp_path)}
    assert got == {f"prh/{m}.py" for m in "abcdefg"} | {"prh/__init__.py", "prh/sub/__init__.py"}


def test_steps_are_separate_rerun_boundaries():
    files = {s.name: {Path(f).relative_to(REPO).as_posix() for f in library_files(s, REPO)}
             for s in SCRIPTS}
    assert "prh/steps/embed.py" not in files["prepare_dataset.py"]
    assert "prh/formats/tables.py" not in files["layer_cache.py"] | files["pair_scores.py"]
    assert "prh/formats/tables.py" not in files["sample_size_curve.py"]
    assert "prh/models/registry.py" not in files["pair_scores.py"]
    assert "prh/steps/aggregate.py" in files["aggregate.py"]


@pytest.mark.parametrize("script", SCRIPTS, ids=lambda p: p.name)
def test_no_step_imports_the_config(script):
    # an edit to the config package (plan, cost model, paths) reruns no job
    files = {Path(f).relative_to(REPO).as_posix() for f in library_files(script, REPO)}
    assert not sorted(f for f in files if f.startswith(("prh/config/", "prh/config_"))), script


# Each workflow job is a fresh process, so what its step imports is paid once
# per job: torch alone takes seconds. Steps that only read and write scores
# must not load it (nor scipy), including the imports inside run().
TORCH_FREE_DAG = "import prh.config, prh.imports, prh.hub, prh.reruns, prh.provenance, prh.datasets"


@pytest.fixture(scope="module")
def torch_free_jobs(tmp_path_factory):
    """(step, function, args, kwargs, output) of the torch-free steps, on tiny
    inputs written by the workflow's own steps."""
    import csv

    import numpy as np
    from PIL import Image

    from prh.datasets import load_manifest
    from prh.steps import aggregate, embed, layer_cache, pair_scores, prepare_dataset

    d = tmp_path_factory.mktemp("torch_free")
    n = 12
    rng = np.random.default_rng(0)
    with open(d / "captions.csv", "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["image", "caption"])
        for i in range(n):
            Image.fromarray(rng.integers(0, 255, (4, 4, 3), dtype=np.uint8)).save(d / f"{i}.png")
            w.writerow([f"{i}.png", f"sample {i}"])
    dataset = {"source": "folder", "n_samples": n, "path": str(d / "captions.csv")}
    manifest = str(d / "manifest.json")
    prepare_dataset.run(dataset, manifest)
    ids = load_manifest(manifest).ids
    models = {}
    modalities = {"a": "vision", "b": "language"}
    for name, width in (("a", 6), ("b", 5)):
        np.savez(d / f"{name}.npz", sample_ids=np.array(ids),
                 l0=rng.standard_normal((n, width)).astype(np.float32))
        models[name] = {"source": f"file:{d / name}.npz", "modality": modalities[name],
                        "storage_dtype": "float32"}
    feats = {m: str(d / f"{m}.features.h5") for m in models}
    for m in models:
        embed.run(models[m], manifest, feats[m], name=m)
        layer_cache.run(feats[m], d / f"{m}.cache.h5", q=0.95, exact=True, normalize=True,
                        topk=[3], cca_dims=[], layers=False, device="cpu")
    metrics = ["mutual_knn", "cycle_knn"]
    pair = str(d / "a__b.h5")
    pair_scores.run(d / "a.cache.h5", d / "b.cache.h5", pair, model_x="a", model_y="b",
                    metrics={m: {"topk": 3} for m in metrics}, device="cpu",
                    calibration={"n_permutations": 20, "alpha": 0.05, "seed": 0,
                                 "aggregates": ["max", "mean"], "metrics": metrics})
    aggregate.run([pair], dataset="t", models=["a", "b"], metrics=metrics,
                  out_h5=d / "alignment.h5", out_tsv=d / "alignment.tsv")
    out = d / "out"
    return {
        "prepare_dataset": ("prepare_dataset", "run", [dataset, f"{out}/manifest.json"], {},
                            f"{out}/manifest.json"),
        "embed file:": ("embed", "run", [models["a"], manifest, f"{out}/a.h5"], {"name": "a"},
                        f"{out}/a.h5"),
        "aggregate": ("aggregate", "run", [[pair]],
                      {"dataset": "t", "models": ["a", "b"], "metrics": metrics,
                       "out_h5": f"{out}/al.h5", "out_tsv": f"{out}/al.tsv",
                       "out_aggregates_tsv": f"{out}/agg.tsv", "pairs": [["a", "b"]]},
                      f"{out}/agg.tsv"),
        "scorecard": ("scorecard", "run", ["a", [pair]],
                      {"dataset": "t", "features": feats, "metrics": metrics,
                       "modalities": modalities, "alpha": 0.05, "out_tsv": f"{out}/sc.tsv",
                       "out_png": f"{out}/sc.png", "dpi": 30}, f"{out}/sc.png"),
        "plots": ("plots", "heatmaps",
                  [str(d / "alignment.h5"), {"h": {"metric": "mutual_knn", "calibrated": False}},
                   {"h": [f"{out}/h.png"]}],
                  {"modalities": modalities, "features": feats, "dpi": 30}, f"{out}/h.png"),
    }


@pytest.mark.parametrize("job", ["prepare_dataset", "embed file:", "aggregate", "scorecard",
                                 "plots"])
def test_score_reading_steps_run_without_torch(torch_free_jobs, job, tmp_path):
    import json
    import subprocess
    import sys

    module, func, args, kwargs, output = torch_free_jobs[job]
    spec = tmp_path / "job.json"
    spec.write_text(json.dumps([args, kwargs]))
    code = (f"import json, sys\nfrom prh.steps import {module} as step\n"
            f"args, kwargs = json.load(open({str(spec)!r}))\n"
            f"step.{func}(*args, **kwargs)\n"
            "loaded = sorted({'torch', 'scipy'} & set(sys.modules))\n"
            "assert not loaded, f'{loaded} imported'\n")
    res = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True)
    assert res.returncode == 0, res.stderr[-1500:]
    assert Path(output).stat().st_size > 0


def test_dag_building_modules_import_no_torch():
    import subprocess
    import sys

    code = f"import sys; {TORCH_FREE_DAG}; assert 'torch' not in sys.modules, 'torch imported'"
    subprocess.run([sys.executable, "-c", code], check=True, cwd=REPO)


def _prh_import_graph() -> dict[str, set[str]]:
    """Module -> the prh modules it imports, from the source text: top-level
    and function-level imports alike (a lazy import still runs, only later);
    ``if TYPE_CHECKING:`` blocks never run and are left out."""
    import ast

    modules = {}
    for path in sorted((REPO / "prh").rglob("*.py")):
        parts = list(path.relative_to(REPO).with_suffix("").parts)
        is_package = parts[-1] == "__init__"
        modules[".".join(parts[:-1] if is_package else parts)] = (path, is_package)

    def type_checking_only(node: ast.AST) -> bool:
        test = getattr(node, "test", None)
        return isinstance(node, ast.If) and (getattr(test, "id", None) == "TYPE_CHECKING"
                                             or getattr(test, "attr", None) == "TYPE_CHECKING")

    graph = {}
    for name, (path, is_package) in modules.items():
        package = name if is_package else name.rpartition(".")[0]
        edges, stack = set(), [ast.parse(path.read_text(), str(path))]
        while stack:
            node = stack.pop()
            if type_checking_only(node):
                stack.extend(node.orelse)
                continue
            stack.extend(ast.iter_child_nodes(node))
            if isinstance(node, ast.Import):
                edges |= {a.name for a in node.names if a.name in modules}
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    up = package.split(".")[:len(package.split(".")) - node.level + 1]
                    base = ".".join(up + ([node.module] if node.module else []))
                for a in node.names:  # `from pkg import sub` imports the submodule
                    target = f"{base}.{a.name}" if f"{base}.{a.name}" in modules else base
                    if target in modules:
                        edges.add(target)
        graph[name] = edges - {name}
    return graph


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    cycles, state = [], {}

    def visit(node: str, path: list[str]) -> None:
        state[node] = "open"
        path.append(node)
        for nxt in sorted(graph[node]):
            if state.get(nxt) == "open":
                cycles.append(path[path.index(nxt):] + [nxt])
            elif nxt not in state:
                visit(nxt, path)
        path.pop()
        state[node] = "done"

    for node in sorted(graph):
        if node not in state:
            visit(node, [])
    return cycles


def test_cycle_finder_sees_lazy_imports():
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    assert _cycles(graph) == [["a", "b", "c", "a"]]
    assert _cycles({"a": {"b"}, "b": set()}) == []
    # base.py imports the package's error module; registry's import of base
    # is a function-level one, and it is seen
    got = _prh_import_graph()
    assert "prh.models.errors" in got["prh.models.base"]
    assert "prh.models.base" in got["prh.models.registry"]


def test_prh_has_no_import_cycle():
    cycles = _cycles(_prh_import_graph())
    assert not cycles, "import cycles: " + "; ".join(" -> ".join(c) for c in cycles)
