"""The embedding loop and the command line: order, re-runs, atomicity, errors."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest
import torch
from PIL import Image

from prh import cli
from prh.formats import features as storage
from prh import datasets as D
from prh.embed import embed
from prh.models.language import HFTextEmbedder
from prh.models.vision import TimmEmbedder
from tiny_models import tiny_causal_lm, tiny_vit, word_tokenizer

CAPTIONS = ["red apple", "a smiling face", "cat", "blue heart", "flag of the sun", "green tree", "dog"]


@pytest.fixture
def folder(tmp_path):
    d = tmp_path / "pairs"
    d.mkdir()
    rng = np.random.default_rng(0)
    lines = ["image,caption"]
    for i, cap in enumerate(CAPTIONS):
        Image.fromarray(rng.integers(0, 255, (20, 20, 3), dtype=np.uint8)).save(d / f"{i}.png")
        lines.append(f"{i}.png,{cap}")
    (d / "captions.csv").write_text("\n".join(lines) + "\n")
    return d


def _lm():
    return HFTextEmbedder("tiny-llama", model=tiny_causal_lm(), tokenizer=word_tokenizer("left"))


def _vit():
    return TimmEmbedder("tiny-vit", model=tiny_vit(), pretrained=False)


def test_embed_language_keeps_order_and_writes_bpb(folder, tmp_path):
    m = D.prepare(f"folder:{folder}", None)
    out = tmp_path / "f.h5"
    res = embed(m, _lm(), out, batch_size=3, device="cpu", progress=False)
    assert not res["skipped"]
    meta = storage.read_metadata(out)
    assert meta["sample_ids"] == m.ids
    assert meta["model"] == "tiny-llama" and meta["modality"] == "language" and meta["pool"] == "mean"
    assert meta["dataset"] == "folder" and meta["manifest_sha256"] == m.content_sha256
    assert meta["n_samples"] == 7 and meta["n_layers"] == 4 and meta["param_count"] > 0
    assert meta["transformers_version"] and meta["seconds"] > 0
    feats = storage.read_features(out)
    bpb = storage.read_bpb(out)
    # Every caption, one-word ones included, is scored after the start token, which the file records.
    assert np.isfinite(bpb).all() and (bpb > 0).all() and meta["bpb_start_token"] == "[BOS]"
    # Row n is sample n: the same caption embedded alone gives the same row.
    lm = _lm()
    lm.load(torch.device("cpu"))
    with torch.inference_mode():
        alone = lm.embed_batch([CAPTIONS[4]])
    for l in range(4):
        np.testing.assert_allclose(feats[l][4], alone.layers[l][0], atol=2e-5)
    assert bpb[4] == pytest.approx(alone.bpb[0].item(), rel=1e-4)


def test_embed_vision_batches_do_not_change_results(folder, tmp_path):
    m = D.prepare(f"folder:{folder}", None)
    a, b = tmp_path / "a.h5", tmp_path / "b.h5"
    embed(m, _vit(), a, batch_size=2, device="cpu", progress=False, dtype="float16")
    embed(m, _vit(), b, batch_size=7, device="cpu", progress=False, dtype="float16")
    fa, fb = storage.read_features(a), storage.read_features(b)
    assert len(fa) == 3 and storage.read_metadata(a)["dtype"] == "float16"
    for x, y in zip(fa, fb):
        np.testing.assert_allclose(x, y, atol=2e-3)
    assert storage.read_bpb(a) is None


def test_rerun_is_a_noop_unless_forced(folder, tmp_path):
    m = D.prepare(f"folder:{folder}", None)
    out = tmp_path / "f.h5"
    embed(m, "glove_6b_50d", out, progress=False)
    created = storage.read_metadata(out)["created"]
    mtime = out.stat().st_mtime_ns
    assert embed(m, "glove_6b_50d", out, progress=False)["skipped"]
    assert out.stat().st_mtime_ns == mtime
    assert not embed(m, "glove_6b_50d", out, progress=False, force=True)["skipped"]
    # Other samples: the file is stale and is recomputed without --force.
    m2 = D.prepare(f"folder:{folder}", 5)
    assert not embed(m2, "glove_6b_50d", out, progress=False)["skipped"]
    assert storage.read_metadata(out)["n_samples"] == 5
    assert created


def test_untrained_baseline_is_recorded_and_not_mixed_up_with_trained(folder, tmp_path):
    m = D.prepare(f"folder:{folder}", None)
    out = tmp_path / "f.h5"
    embed(m, "efficientnet_lite0", out, device="cpu", progress=False, weights="random", seed=3)
    meta = storage.read_metadata(out)
    assert meta["weights"] == "random" and meta["seed"] == 3 and meta["model"] == "efficientnet_lite0"
    untrained = storage.read_features(out)
    assert embed(m, "efficientnet_lite0", out, progress=False, weights="random", seed=3)["skipped"]
    # another seed, or the trained weights, is not up to date
    assert not embed(m, "efficientnet_lite0", out, device="cpu", progress=False, weights="random",
                     seed=4)["skipped"]
    assert storage.read_metadata(out)["seed"] == 4
    assert not embed(m, "efficientnet_lite0", out, device="cpu", progress=False)["skipped"]
    meta = storage.read_metadata(out)
    assert meta["weights"] == "pretrained" and "seed" not in meta
    assert not np.allclose(storage.read_features(out)[-1], untrained[-1], atol=1e-3)


def test_cli_embeds_an_untrained_baseline(folder, tmp_path):
    out = tmp_path / "u.h5"
    assert cli.main(["embed", "--dataset", f"folder:{folder}", "--n-samples", "7",
                     "--model", "efficientnet_lite0", "--weights", "random", "--seed", "7",
                     "--device", "cpu", "--no-progress", "--out", str(out)]) == 0
    meta = storage.read_metadata(out)
    assert (meta["weights"], meta["seed"]) == ("random", 7)


def test_killed_run_leaves_no_partial_file(folder, tmp_path):
    m = D.prepare(f"folder:{folder}", None)
    lm = _lm()
    real = lm.embed_batch
    calls = []

    def dies(batch):
        calls.append(1)
        if len(calls) == 2:
            raise KeyboardInterrupt
        return real(batch)

    lm.embed_batch = dies
    with pytest.raises(KeyboardInterrupt):
        embed(m, lm, tmp_path / "out" / "f.h5", batch_size=2, device="cpu", progress=False)
    assert list((tmp_path / "out").iterdir()) == []


def test_unreadable_image_names_its_sample(folder, tmp_path, capsys):
    m = D.prepare(f"folder:{folder}", None)
    (folder / "3.png").write_bytes(b"garbage")
    # preparing now refuses it, naming the captions row
    with pytest.raises(D.DatasetError, match=r"captions\.csv: row 4: image file .*3\.png cannot be read"):
        D.prepare(f"folder:{folder}", None)
    # an image that breaks after preparing (no recorded hash here) fails in the embedding
    m = D.Manifest(m.dataset, [D.Sample(s.id, s.caption, s.image) for s in m.samples])
    with pytest.raises(D.DatasetError, match="sample 3.png"):
        embed(m, _vit(), tmp_path / "f.h5", batch_size=2, device="cpu", progress=False)
    assert not (tmp_path / "f.h5").exists()


def test_cli_prepare_then_embed_from_the_manifest(folder, tmp_path, capsys):
    man = tmp_path / "manifest.json"
    assert cli.main(["prepare-dataset", "--dataset", f"folder:{folder}", "--n-samples", "6",
                     "--out", str(man)]) == 0
    saved = json.loads(man.read_text())
    assert saved["n_samples"] == 6 and len(saved["samples"]) == 6
    out = tmp_path / "g.h5"
    log = tmp_path / "logs" / "embed.log"
    assert cli.main(["embed", "--manifest", str(man), "--model", "glove_6b_50d", "--out", str(out),
                     "--no-progress", "--log", str(log)]) == 0
    meta = storage.read_metadata(out)
    assert meta["sample_ids"] == [s["id"] for s in saved["samples"]]
    assert meta["manifest_sha256"] == saved["content_sha256"]
    assert "wrote" in log.read_text()
    assert cli.main(["embed", "--manifest", str(man), "--model", "glove_6b_50d", "--out", str(out)]) == 0
    assert "up to date" in capsys.readouterr().out


@pytest.mark.parametrize("argv, message", [
    (["--dataset", "nope", "--model", "glove_6b_50d"], "unknown dataset 'nope'; known: emoji, prh_wit, folder"),
    (["--dataset", "emoji", "--model", "nope"], "unknown model 'nope'; known: efficientnet_lite0"),
    (["--manifest", "/no/such/manifest.json", "--model", "glove_6b_50d"], "manifest not found"),
    (["--dataset", "emoji", "--model", "minilm_l6", "--weights", "random"],
     "model minilm_l6: weights 'random' is not supported for language models"),
    (["--dataset", "emoji", "--model", "efficientnet_lite0", "--seed", "1"],
     "model efficientnet_lite0: seed 1 applies only with weights 'random'"),
])
def test_cli_errors_are_one_line(tmp_path, capsys, argv, message):
    code = cli.main(["embed", *argv, "--out", str(tmp_path / "x.h5")])
    err = capsys.readouterr().err.strip()
    assert code == 2 and message in err and "\n" not in err and "Traceback" not in err


def test_cli_imports_without_torch_and_lists():
    code = ("import sys, prh.cli\nassert 'torch' not in sys.modules\n"
            "prh.cli.main(['models']); prh.cli.main(['datasets'])\nassert 'torch' not in sys.modules\n")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    assert "efficientnet_lite0" in r.stdout and "minilm_l6" in r.stdout and "emoji" in r.stdout


def test_progress_log_lines_every_interval_with_rate_and_eta():
    import logging

    from prh.embed import ProgressLog

    now = [100.0]
    lines = []

    class Sink(logging.Handler):
        def emit(self, record):
            lines.append(record.getMessage())

    logger = logging.getLogger("test.progress")
    logger.setLevel(logging.INFO)
    logger.addHandler(Sink())
    p = ProgressLog(1000, "m on d", interval=15, clock=lambda: now[0], logger=logger)
    now[0] += 10
    assert p.update(100) is None  # 10 s: not yet
    now[0] += 10
    line = p.update(100)  # 20 s, 200 done: 10 samples/s, 800 left
    assert line == "m on d: 200/1000 samples (20%), 10.0 samples/s, elapsed 20s, ETA 1m20s"
    now[0] += 5
    assert p.update(100) is None  # 5 s after the last line
    now[0] += 3575
    assert p.update(700) == ("m on d: 1000/1000 samples (100%), 0.3 samples/s, "
                             "elapsed 1h00m00s, ETA 0s")
    assert len(lines) == 2 and lines[0] == line and lines[1].startswith("m on d: 1000/1000")
    # a loop over before the first line is due logs nothing (the summary line says it)
    q = ProgressLog(10, "fast", interval=15, clock=lambda: now[0], logger=logger)
    assert q.update(10) is None and len(lines) == 2


def test_embed_without_progress_bar_logs_progress_lines(folder, tmp_path, caplog):
    import logging

    m = D.prepare(f"folder:{folder}", None)
    with caplog.at_level(logging.INFO, logger="prh.embed"):
        embed(m, _lm(), tmp_path / "f.h5", batch_size=3, device="cpu", progress=False,
              progress_interval=0)
    lines = [r.getMessage() for r in caplog.records if "samples/s" in r.getMessage()]
    assert [ln.split(": ", 1)[1].split(" samples")[0] for ln in lines] == ["3/7", "6/7", "7/7"]
    assert all(ln.startswith("tiny-llama on folder: ") and "ETA" in ln for ln in lines)
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="prh.embed"):
        embed(m, _lm(), tmp_path / "g.h5", batch_size=3, device="cpu", progress=True,
              progress_interval=0)
    assert not [r for r in caplog.records if "samples/s" in r.getMessage()]  # the bar says it
