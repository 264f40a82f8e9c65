"""How a model pair is scored by the nulls and the resamples alike: in which
orders (asymmetric metrics both ways) and with which aggregates."""

from __future__ import annotations

from typing import Any, Iterable, Mapping

from ..metrics import get_metric, resolve_params
from ..scoring import AGGREGATES

Orders = list[tuple[str, str, dict]]  # (order "xy" or "yx", metric, resolved params)


def check_aggregates(aggregates: Iterable[str]) -> tuple[str, ...]:
    out = tuple(aggregates)
    for how in out:
        if how not in AGGREGATES:
            raise ValueError(f"unknown aggregate {how!r}; choose one of {', '.join(AGGREGATES)}")
    if not out:
        raise ValueError("aggregates is empty; name at least one of " + ", ".join(AGGREGATES))
    return out


def scored_orders(sx, metrics: Mapping[str, Mapping[str, Any]], both_orders: bool) -> Orders:
    """Every (order, metric) to score for models with ``sx.n`` samples:
    asymmetric metrics in both orders when asked."""
    out = []
    for name, params in metrics.items():
        p = resolve_params(name, dict(params or {}), n=sx.n)
        out.append(("xy", name, p))
        if both_orders and not get_metric(name).symmetric:
            out.append(("yx", name, p))
    return out


def in_order(sx, sy, order: str) -> tuple:
    """(sx, sy) for order "xy", (sy, sx) for "yx"."""
    return (sx, sy) if order == "xy" else (sy, sx)
