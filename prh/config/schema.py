"""The config schema: load it, fill its defaults in, read ``--config`` strings,
validate, and the one error a config that cannot run raises.

``schema.yaml`` beside this module is the one home of every setting's
default; :func:`validate` is the first thing :class:`prh.config.Config` does.
"""

from __future__ import annotations

import copy
import math
from pathlib import Path
from typing import Any, Mapping

SCHEMA_PATH = Path(__file__).with_name("schema.yaml")


class ConfigError(ValueError):
    """A config that cannot run; the message names the key and what to do."""


def load_schema() -> dict:
    import yaml

    with open(SCHEMA_PATH) as fh:
        return yaml.safe_load(fh)


def key_path(path) -> str:
    """A key's dotted name (``calibration.alpha``) in error messages."""
    return ".".join(str(p) for p in path) or "(top level)"


def _resolve(schema: Mapping, root: Mapping) -> Mapping:
    ref = schema.get("$ref")
    if ref is None:
        return schema
    node: Any = root
    for part in ref.lstrip("#/").split("/"):
        node = node[part]
    return node


def fill_defaults(schema: Mapping, instance: Any, root: Mapping | None = None) -> None:
    """Set every absent key that has a ``default`` in ``schema``, recursively
    (through ``$ref``, ``properties`` and map-like ``additionalProperties``)."""
    root = schema if root is None else root
    if not isinstance(instance, dict):
        return
    parts = [schema, _resolve(schema, root)]
    for part in parts:
        props = part.get("properties", {})
        for key, sub in props.items():
            if key not in instance and "default" in sub:
                instance[key] = copy.deepcopy(sub["default"])
            if key in instance:
                fill_defaults(sub, instance[key], root)
        extra = part.get("additionalProperties")
        if isinstance(extra, dict):
            for key, value in instance.items():
                if key not in props:
                    fill_defaults(extra, value, root)


_SCALARS = {"integer": int, "number": (int, float), "boolean": bool, "null": type(None)}


def _types(schema: Mapping) -> list[str]:
    t = schema.get("type", [])
    return [t] if isinstance(t, str) else list(t)


def coerce_strings(schema: Mapping, instance: Any, root: Mapping | None = None) -> Any:
    """``instance`` with strings read as YAML where the schema wants a number,
    boolean or null and no string: Snakemake passes the values inside a
    ``--config key={...}`` mapping as strings (``plots={"dpi": 100}`` gives
    ``"100"``)."""
    import yaml

    root = schema if root is None else root
    parts = [schema, _resolve(schema, root)]
    if isinstance(instance, str):
        wanted = [t for part in parts for t in _types(part)]
        if wanted and "string" not in wanted and any(t in _SCALARS for t in wanted):
            try:
                value = yaml.safe_load(instance)
            except yaml.YAMLError:
                return instance
            if any(isinstance(value, _SCALARS[t]) and not (t != "boolean" and isinstance(value, bool))
                   for t in wanted if t in _SCALARS):
                return value
        return instance
    if isinstance(instance, dict):
        for key in list(instance):
            for part in parts:
                sub = part.get("properties", {}).get(key)
                if sub is None and isinstance(part.get("additionalProperties"), dict):
                    sub = part["additionalProperties"]
                if sub is not None:
                    instance[key] = coerce_strings(sub, instance[key], root)
    elif isinstance(instance, list):
        for part in parts:
            if isinstance(part.get("items"), dict):
                instance[:] = [coerce_strings(part["items"], v, root) for v in instance]
    return instance


def schema_defaults(*path: str) -> Any:
    """The schema's default of one setting, e.g. ``schema_defaults("calibration",
    "n_permutations")``; for code outside the workflow (the CLI) that offers the same
    settings."""
    schema = load_schema()
    node: Mapping = schema
    for key in path:
        props = {**_resolve(node, schema).get("properties", {}), **node.get("properties", {})}
        node = props[key]
    return copy.deepcopy(node["default"])


def check_finite(value: Any, path: tuple = ()) -> None:
    """Refuse NaN and infinities anywhere (YAML's ``.nan``, ``.inf``), which
    the schema's ranges let through: every comparison with NaN is false. A
    ``py:`` model's ``options`` are its factory's own arguments and are left
    to it."""
    if isinstance(value, float) and not math.isfinite(value):
        raise ConfigError(f"config: {key_path(path)}: {value} is not a finite number; "
                          "give a finite value")
    if isinstance(value, dict):
        for key, sub in value.items():
            if not (len(path) == 2 and path[0] == "models" and key == "options"):
                check_finite(sub, (*path, key))
    elif isinstance(value, list):
        for i, sub in enumerate(value):
            check_finite(sub, (*path, i))


def _explain(error) -> str | None:
    """What to write instead, for the mistakes jsonschema's own words leave
    unexplained; None for the others."""
    path, value = tuple(error.absolute_path), error.instance
    if (error.validator == "enum" and path[:1] == ("datasets",) and path[2:] == ("source",)
            and isinstance(value, str)):
        # the command line's --dataset folder:DIR spelling
        base, sep, arg = value.partition(":")
        if sep and base in error.validator_value:
            return (f"{value!r} is the command line's spelling; in the config write "
                    f"`source: {base}` with `path: {arg}` (see `prh datasets`)")
    if error.validator == "dependentRequired" and isinstance(value, Mapping):
        missing = [k for k, needs in error.validator_value.items() if k in value
                   for n in needs if n not in value]
        if missing:
            key = missing[0]
            needs = [n for n in error.validator_value[key] if n not in value]
            return f"{key} needs {' and '.join(needs)} as well; add {'them' if len(needs) > 1 else 'it'}"
    return None


def validate(raw: Mapping[str, Any]) -> dict[str, Any]:
    """A validated copy of ``raw`` with the schema's defaults filled in; the
    first problem is a one-line :class:`ConfigError` naming the key."""
    import jsonschema

    schema = load_schema()
    raw = coerce_strings(schema, copy.deepcopy(dict(raw)))
    validator = jsonschema.Draft202012Validator(schema)
    error = jsonschema.exceptions.best_match(validator.iter_errors(raw))
    if error is not None:
        message = _explain(error) or " ".join(error.message.split())
        if len(message) > 300:
            message = message[:300] + " ..."
        raise ConfigError(f"config: {key_path(error.absolute_path)}: {message}")
    check_finite(raw)
    cfg = copy.deepcopy(dict(raw))
    fill_defaults(schema, cfg)
    return cfg
