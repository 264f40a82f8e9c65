"""envs/*.yaml pin exactly what requirements.txt pins, and every rule names one."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[1]
ENVS = sorted((REPO / "envs").glob("*.yaml"))
# Tools that run Snakemake or the tests, not a job's code: not needed in job envs.
TOOLING = {"snakemake", "snakemake-executor-plugin-slurm", "snakefmt", "pytest", "pytest-xdist",
           "execnet", "hypothesis"}


def _norm(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def requirements() -> dict[str, str]:
    pins = {}
    for line in (REPO / "requirements.txt").read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if not line:
            continue
        m = re.fullmatch(r"([A-Za-z0-9_.\-]+)==([^\s;]+)", line)
        assert m, f"requirements.txt: {line!r} is not an exact pin"
        pins[_norm(m.group(1))] = m.group(2)
    return pins


def env_pins(path: Path) -> tuple[dict[str, str], list]:
    env = yaml.safe_load(path.read_text())
    pins, conda = {}, []
    for dep in env["dependencies"]:
        if isinstance(dep, dict):
            for line in dep.get("pip", []):
                m = re.fullmatch(r"([A-Za-z0-9_.\-]+)==(\S+)", line.strip())
                assert m, f"{path.name}: pip dependency {line!r} is not an exact pin"
                pins[_norm(m.group(1))] = m.group(2)
        else:
            conda.append(dep)
    return pins, conda


def test_there_are_env_files():
    assert {p.name for p in ENVS} >= {"embed.yaml", "align.yaml", "plots.yaml"}


@pytest.mark.parametrize("path", ENVS, ids=lambda p: p.name)
def test_env_pins_agree_with_requirements(path):
    req = requirements()
    pins, conda = env_pins(path)
    assert pins, f"{path.name} pins nothing"
    for name, version in pins.items():
        assert name in req, f"{path.name}: {name} is not in requirements.txt"
        assert version == req[name], (
            f"{path.name}: {name}=={version} but requirements.txt has {req[name]}")
    # the interpreter matches the project's (pyproject: requires-python >= 3.11, Makefile 3.11)
    assert "python=3.11" in conda and "pip" in conda, conda


def test_every_runtime_requirement_is_in_some_env():
    req = requirements()
    covered = set()
    for path in ENVS:
        covered |= set(env_pins(path)[0])
    missing = sorted(set(req) - covered - TOOLING)
    assert not missing, f"in requirements.txt but in no envs/*.yaml: {missing}"


def test_every_rule_with_code_has_an_existing_conda_env():
    for smk in sorted((REPO / "rules").glob("*.smk")):
        text = smk.read_text()
        blocks = re.split(r"^rule ", text, flags=re.M)[1:]
        for block in blocks:
            name = block.split(":", 1)[0]
            if "script:" not in block and "shell:" not in block:
                continue  # target rules run nothing
            m = re.search(r"conda:\s*\n\s*\"([^\"]+)\"", block)
            assert m, f"{smk.name}: rule {name} has no conda: env"
            assert (smk.parent / m.group(1)).resolve().is_file(), f"rule {name}: {m.group(1)} missing"
            assert "log:" in block, f"{smk.name}: rule {name} has no log:"


def test_no_deps_requirements_are_hash_pinned_and_in_the_embed_env():
    """requirements-nodeps.txt: exact pins with a sha256 each; embed.post-deploy.sh installs the same lines."""
    lines = [l.split("#", 1)[0].strip() for l in (REPO / "requirements-nodeps.txt").read_text().splitlines()]
    lines = [l for l in lines if l]
    assert lines
    for line in lines:
        assert re.fullmatch(r"[A-Za-z0-9_.\-]+==\S+ --hash=sha256:[0-9a-f]{64}", line), line
        assert _norm(line.split("==")[0]) not in requirements(), f"{line} is also in requirements.txt"
    script = (REPO / "envs" / "embed.post-deploy.sh").read_text()
    assert "--no-deps --require-hashes" in script
    assert [l for l in lines if l not in script.splitlines()] == []
    makefile = (REPO / "Makefile").read_text()
    assert "--no-deps --require-hashes -r requirements-nodeps.txt" in makefile


def test_every_rule_env_covers_the_imports_of_its_code():
    """Scan the import closure of each rule's script (prh.imports) for
    third-party modules; each must be pinned in the env file the rule names
    (tqdm missing from envs/align.yaml would fail here). Module-level imports
    of every file count, and every import of the script and of the step
    modules (a rule runs its step's functions; other modules' lazy imports
    belong to functions the rule may not call)."""
    import ast
    import sys

    from prh.imports import library_files

    # import name -> the pin that provides it (cycler: a dependency of matplotlib)
    module_to_pin = {"yaml": "pyyaml", "PIL": "pillow", "sklearn": "scikit-learn",
                     "cycler": "matplotlib"}
    rules = {}
    for smk_file in (REPO / "rules").glob("*.smk"):
        for block in re.split(r"\n(?=\s*rule )", smk_file.read_text()):
            env = re.search(r'conda:\s*\n\s*"\.\./envs/([\w.]+)"', block)
            script = re.search(r'script:\s*\n\s*"\.\./scripts/([\w.]+)"', block)
            if env and script:
                rules[script.group(1)] = env.group(1)
    assert "pair_scores.py" in rules and rules["pair_scores.py"] == "align.yaml"
    for script, env in rules.items():
        pins, _ = env_pins(REPO / "envs" / env)
        files = [REPO / "scripts" / script, *library_files(REPO / "scripts" / script, REPO)]
        for f in files:
            if not str(f).endswith(".py"):
                continue
            tree = ast.parse(Path(f).read_text())
            runs_all = f == REPO / "scripts" / script or "steps" in Path(f).parts
            nodes = ast.walk(tree) if runs_all else [
                n for top in tree.body for n in ast.walk(top)
                if not isinstance(top, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef))]
            for node in nodes:
                names = ([a.name for a in node.names] if isinstance(node, ast.Import) else
                         [node.module] if isinstance(node, ast.ImportFrom) and node.level == 0
                         and node.module else [])
                for name in names:
                    top = name.split(".")[0]
                    if top in sys.stdlib_module_names or top in ("prh", "snakemake", "__future__"):
                        continue
                    assert _norm(module_to_pin.get(top, top)) in pins, (
                        f"{script} (rule env {env}) imports {top} in {Path(f).name}; "
                        f"{env} does not pin it")
