"""Command line: ``prh embed``, ``prh prepare-dataset``, ``prh models``, ``prh datasets``.

Heavy libraries (torch, timm, transformers) are imported inside the commands
that need them, so ``prh --help`` and the listings answer at once. Errors the
user can fix (unknown names, unreachable hub, bad files) print one line and
exit with status 2, without a traceback.
"""

from __future__ import annotations

import argparse
import logging
import sys
from typing import Any, Sequence

log = logging.getLogger("prh")


def _options(pairs: Sequence[str] | None) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for p in pairs or []:
        key, sep, value = p.partition("=")
        if not sep or not key:
            raise ValueError(f"--dataset-option {p!r} is not KEY=VALUE")
        if key in out:
            raise ValueError(f"--dataset-option {key} is given twice ({out[key]!r} and {value!r}); "
                             "keep one")
        out[key] = value
    return out


def _setup_logging(log_file: str | None, quiet: bool = False) -> None:
    root = logging.getLogger("prh")
    root.setLevel(logging.INFO)
    root.handlers.clear()
    fmt = logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s", "%Y-%m-%d %H:%M:%S")
    console = logging.StreamHandler(sys.stderr)
    console.setFormatter(fmt)
    console.setLevel(logging.WARNING if quiet else logging.INFO)
    root.addHandler(console)
    if log_file:
        from pathlib import Path
        Path(log_file).parent.mkdir(parents=True, exist_ok=True)
        fh = logging.FileHandler(log_file)
        fh.setFormatter(fmt)
        root.addHandler(fh)
    root.propagate = False


def _manifest_from_args(args: argparse.Namespace):
    from . import datasets
    if getattr(args, "manifest", None):
        if args.dataset:
            raise ValueError("give either --dataset or --manifest, not both")
        m = datasets.load_manifest(args.manifest)
        if args.n_samples is not None and args.n_samples != m.n:
            raise ValueError(f"--n-samples {args.n_samples} differs from the manifest's {m.n} samples "
                             f"({args.manifest}); drop --n-samples or prepare a new manifest")
        return m
    if not args.dataset:
        raise ValueError("give --dataset NAME (see `prh datasets`) or --manifest FILE")
    # a folder or ids file is the user's own set: all of it unless told otherwise
    n = args.n_samples
    if n is None and args.dataset.partition(":")[0] not in datasets.TAKES_ALL:
        n = datasets.DEFAULT_N_SAMPLES
    return datasets.prepare(args.dataset, n, **_options(args.dataset_option))


def _modality(model: str, modality: str | None) -> str | None:
    """The modality of ``--model``: ``--modality`` for the sources that need
    it (py:), checked against the model's own for the others."""
    from .models.registry import USER_PREFIXES, parse_source

    if model.startswith(USER_PREFIXES):
        if modality is None:
            raise ValueError(f"--model {model}: a {model.split(':', 1)[0]}: source cannot say what "
                             "it embeds; add --modality vision or --modality language")
        return modality
    if modality is not None and modality != parse_source(model).modality:
        raise ValueError(f"--modality {modality}: {model} is a {parse_source(model).modality} model")
    return modality


def cmd_embed(args: argparse.Namespace) -> int:
    from .jobio import check_output_target
    from .models.registry import get_embedder
    check_output_target(args.out)  # before any work: only ever replace a regular file
    # unknown names and unsupported weights fail before any data work
    embedder = get_embedder(args.model, args.pool, args.weights, args.seed,
                            modality=_modality(args.model, args.modality))
    manifest = _manifest_from_args(args)
    from .embed import embed
    res = embed(manifest, embedder, args.out, batch_size=args.batch_size, device=args.device,
                dtype=args.dtype, model_dtype=args.model_dtype, pool=args.pool, force=args.force,
                progress=not args.no_progress, threads=args.threads, weights=args.weights, seed=args.seed)
    if res["skipped"]:
        print(f"{args.out}: up to date (use --force to recompute)")
    else:
        print(f"{args.out}: {manifest.n} samples x {res['n_layers']} layers, {res['seconds']:.1f}s "
              f"(forward {res['forward_seconds']:.1f}s, load {res['load_seconds']:.1f}s)")
    return 0


def cmd_prepare(args: argparse.Namespace) -> int:
    from . import datasets
    from .jobio import check_output_target
    check_output_target(args.out)
    # a folder or ids file is the user's own set: all of it unless told otherwise
    n = args.n_samples
    if n is None and args.dataset.partition(":")[0] not in datasets.TAKES_ALL:
        n = datasets.DEFAULT_N_SAMPLES
    m = datasets.prepare(args.dataset, n, **_options(args.dataset_option))
    m.save(args.out)
    log.info("wrote %s: %s, %d samples, content sha256 %s", args.out, m.dataset, m.n, m.content_sha256)
    print(f"{args.out}: {m.dataset}, {m.n} samples, content_sha256 {m.content_sha256[:16]}...")
    return 0


def cmd_models(args: argparse.Namespace) -> int:
    from .models.registry import BUNDLED, PREFIX_MODALITY, PREFIXES
    for info in BUNDLED.values():
        print(f"{info.name:20s} {info.modality:9s} {info.description}")
    for p, d in PREFIXES.items():
        print(f"{p + '<name>':20s} {PREFIX_MODALITY.get(p, '(config)'):9s} {d}")
    return 0


def cmd_datasets(args: argparse.Namespace) -> int:
    import yaml

    from .datasets import DATASETS
    print("A dataset is an entry of config.yaml's datasets: (its key names the results folder), "
          "as each example below; on the command line: --dataset SOURCE, and "
          "--dataset-option KEY=VALUE for path and each option.")
    for info in DATASETS.values():
        entry = yaml.safe_dump({"datasets": {f"my_{info.name}": info.example}},
                               default_flow_style=True, sort_keys=False, width=1000).strip()
        print(f"\n{info.name:10s} {info.description}\n{'':10s} e.g. {entry}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    from .config import schema_defaults

    from . import __version__

    p = argparse.ArgumentParser(prog="prh", description="Platonic Representation Hypothesis workflow tools")
    p.add_argument("--version", action="version", version=f"prh {__version__}")
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--log", metavar="FILE", help="also write the log to FILE")
    common.add_argument("--quiet", action="store_true", help="log warnings only")
    sub = p.add_subparsers(dest="command", required=True)

    def data_args(sp: argparse.ArgumentParser, required: bool) -> None:
        sp.add_argument("--dataset", required=required, help="dataset source (see `prh datasets`): emoji, "
                        "prh_wit or folder (with --dataset-option path=DIR, or folder:DIR)")
        sp.add_argument("--n-samples", type=int, default=None, help="number of samples (default 1024; a folder or ids file: all of it)")
        sp.add_argument("--dataset-option", action="append", metavar="KEY=VALUE",
                        help="dataset option, e.g. seed=1, path=..., caption_idx=0 (repeatable)")

    e = sub.add_parser("embed", parents=[common], help="embed a dataset with one model into an HDF5 file")
    data_args(e, required=False)
    e.add_argument("--manifest", help="a manifest from `prh prepare-dataset` (instead of --dataset)")
    e.add_argument("--model", required=True, help="model name (see `prh models`)")
    # the workflow's embedding defaults (prh/config/schema.yaml), so that
    # `prh embed` and a workflow job embed alike
    default = {k: schema_defaults("embedding", k)
               for k in ("batch_size", "device", "dtype", "storage_dtype", "pool")}
    e.add_argument("--batch-size", type=int, default=default["batch_size"])
    e.add_argument("--device", default=default["device"],
                   help="cpu, auto (cuda, then mps, then cpu), cuda, cuda:1, mps "
                   f"(default {default['device']})")
    e.add_argument("--dtype", default=default["storage_dtype"], choices=["float32", "float16"],
                   help="storage dtype")
    e.add_argument("--model-dtype", default=default["dtype"],
                   choices=["float32", "float16", "bfloat16"], help="dtype the model computes in")
    e.add_argument("--modality", choices=["vision", "language"], default=None,
                   help="what a py: model embeds (prh's own models know theirs)")
    e.add_argument("--pool", default=default["pool"],
                   help="vision: cls or mean; language: mean or last")
    e.add_argument("--weights", default=None,
                   help="random: an untrained baseline, seeded random initialisation (vision models "
                   "only); default: the pretrained weights")
    e.add_argument("--seed", type=int, default=None, help="seed of --weights random (default 0)")
    e.add_argument("--threads", type=int, default=None, help="CPU threads (default: the cores available)")
    e.add_argument("--force", action="store_true", help="recompute even if OUT is up to date")
    e.add_argument("--no-progress", action="store_true", help="no progress bar")
    e.add_argument("--out", required=True, help="output .h5 file")
    e.set_defaults(func=cmd_embed)

    pr = sub.add_parser("prepare-dataset", parents=[common], help="write the manifest of a dataset's samples")
    data_args(pr, required=True)
    pr.add_argument("--out", required=True, help="output manifest .json")
    pr.set_defaults(func=cmd_prepare)

    sub.add_parser("models", parents=[common], help="list known models").set_defaults(func=cmd_models)
    sub.add_parser("datasets", parents=[common], help="list known datasets").set_defaults(func=cmd_datasets)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    from .jobio import error_line, terminate_on_sigterm

    args = build_parser().parse_args(argv)
    try:
        terminate_on_sigterm()
        _setup_logging(args.log, args.quiet)
        return args.func(args)
    except (ValueError, OSError, RuntimeError) as e:
        # ValueError covers DatasetError and ModelError; their messages name
        # the file, model or value and what to do.
        log.debug("failed", exc_info=True)
        msg = error_line(e)
        print(f"prh: error: {msg}", file=sys.stderr)
        for h in logging.getLogger("prh").handlers:
            if isinstance(h, logging.FileHandler):
                h.emit(logging.LogRecord("prh", logging.ERROR, __file__, 0, msg, None, None))
        return 2
    except KeyboardInterrupt:
        print("prh: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
