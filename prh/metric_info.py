"""The metrics' names, parameters with their defaults, and properties.

Torch-free, so that the workflow's configuration (:mod:`prh.config`) checks
metric parameters when the DAG is built, without loading torch. This table is
the one home of every metric parameter's default; :mod:`prh.metrics` computes
the scores (definitions: docs/metrics.md).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Mapping


#: the sample sizes at which the intervals' coverage was measured
#: (docs/statistics.md, "Measured coverage"); below the smallest it is not known
COVERAGE_SAMPLE_SIZES = (256, 1024)


@dataclass(frozen=True)
class MetricInfo:
    """One metric: its parameters with their defaults, and how its scores behave."""

    name: str
    defaults: Mapping[str, Any]
    symmetric: bool
    # the per-layer terms it is computed from: "knn" (neighbour lists),
    # "kernel" (Gram matrices), "cca" (singular bases), "shape" (centred
    # layers), "rsa" (dissimilarity matrices), "regression" (ridge residuals)
    family: str
    description: str
    min_samples: int = 2
    choices: Mapping[str, tuple] = field(default_factory=dict)
    # (scheme, replicates) of its intervals, chosen by measured coverage
    # (README "Statistics"): CKA's jackknife needs 20 groups for its width;
    # the kNN metrics, CKNNA and SVCCA few large ones (removing samples
    # reshuffles the neighbour lists of the rest, so small groups inflate se)
    interval: tuple[str, int] = ("jackknife", 5)
    # what the simulation measured for that scheme's nominal 95 % intervals
    # (benchmarks/bench_coverage.py, N = COVERAGE_SAMPLE_SIZES, 200 draws each):
    # "calibrated" when coverage stayed in [0.92, 0.98], "conservative" when
    # above (intervals too wide, p-values of comparisons and trends too large)
    interval_coverage: str = "calibrated"
    # what the follow-up literature compares across: "local" (neighbourhoods),
    # "global" (the whole geometry) or "predictive" (one space fitted from the other)
    kind: str = "global"
    # the `similarity` registry's (nacloos/similarity-repository) id of the same
    # number, "" where it has none (docs/metrics.md, "Measure ids")
    registry_id: str = ""
    # computed from the preprocessed layers themselves, not only their Gram
    # matrices: layer caches then keep the layers (prh.config.plan)
    needs_layers: bool = False
    # why its current implementation needs N x N matrices (each pair of
    # samples), which the features representation does not hold; "" when it
    # has a feature-space form (docs/large-n.md)
    n_by_n: str = ""

    def needs_n_by_n(self, **params: Any) -> str:
        """Why the metric with ``params`` needs N x N matrices, in parentheses,
        or "" when the features representation scores it: an RBF kernel has
        no finite feature-space form."""
        if {**self.defaults, **params}.get("kernel") == "rbf":
            return "(the RBF kernel exp(-|x_n - x_m|^2 / 2 sigma^2) has no feature-space form)"
        return self.n_by_n

    def max_score(self, **params: Any) -> float:
        """The largest score the metric can reach (lcs_knn is not normalised: k)."""
        if self.name == "lcs_knn":
            return float(params.get("topk", self.defaults["topk"]))
        return 1.0

    def fewest_samples(self, **params: Any) -> dict[str, int]:
        """The fewest samples the metric can score with ``params`` (defaults
        filled in), per what sets the floor: "N" its own minimum, "topk" k + 1
        (a sample is not its own neighbour), "cca_dim" the dimension itself
        (:func:`prh.metrics.resolve_params` refuses fewer)."""
        p = {**self.defaults, **params}
        out = {"N": self.min_samples}
        if "topk" in p:
            out["topk"] = int(p["topk"]) + 1
        if "cca_dim" in p:
            out["cca_dim"] = int(p["cca_dim"])
        return out


# Added to the CKA / CKNNA denominators, as the reference does. CKA and unbiased
# CKA take it as their parameter ``eps`` (0: the plain ratio); see docs/cka_epsilon.md.
CKA_EPS = 1e-6

_KNN = {"topk": 10, "distance": "cosine"}
_KERNEL = {"kernel": "ip", "sigma": 1.0, "eps": CKA_EPS}
#: neighbours and dissimilarities: cosine of the preprocessed rows, or
#: Euclidean between the clamped rows before their L2 normalisation
#: (docs/metrics.md, section 2)
DISTANCES = ("cosine", "euclidean")
_DISTANCE = {"distance": DISTANCES}
#: RSA correlates every pair of samples' dissimilarities
_RDM = "(the correlation of the RDMs reads all N(N-1)/2 dissimilarities)"

METRICS: dict[str, MetricInfo] = {
    m.name: m
    for m in [
        MetricInfo("mutual_knn", _KNN, True, "knn",
                   "mean fraction of shared k nearest neighbours",
                   interval_coverage="conservative", choices=_DISTANCE, kind="local"),
        MetricInfo("cycle_knn", _KNN, False, "knn",
                   "fraction of samples found among A's neighbours of their B-neighbours",
                   interval_coverage="conservative", choices=_DISTANCE, kind="local"),
        MetricInfo("lcs_knn", _KNN, True, "knn",
                   "mean longest common subsequence of the ordered kNN lists (0..k)",
                   interval_coverage="conservative", choices=_DISTANCE, kind="local"),
        MetricInfo("edit_distance_knn", _KNN, True, "knn",
                   "1 - mean Levenshtein distance of the ordered kNN lists / k",
                   interval_coverage="conservative", choices=_DISTANCE, kind="local"),
        MetricInfo("cka", _KERNEL, True, "kernel",
                   "centred kernel alignment, biased HSIC",
                   choices={"kernel": ("ip", "rbf")}, interval=("jackknife", 20),
                   registry_id="cka-kernel=linear-hsic=gretton-score"),
        MetricInfo("unbiased_cka", _KERNEL, True, "kernel",
                   "centred kernel alignment, unbiased HSIC (Song et al. 2012)",
                   min_samples=4, choices={"kernel": ("ip", "rbf")},
                   interval=("jackknife", 20), registry_id="cka-kernel=linear-hsic=song-score"),
        # HSIC_u(M*K, M*L) is not symmetric in its arguments once the mask breaks
        # the kernels' symmetry, so cknna(A, B) and cknna(B, A) can differ slightly.
        MetricInfo("cknna", {"topk": 10}, False, "kernel",
                   "CKA restricted to mutual k-nearest-neighbour pairs", min_samples=4,
                   interval_coverage="conservative", kind="local"),
        MetricInfo("svcca", {"cca_dim": 10}, True, "cca",
                   "mean canonical correlation of the top singular subspaces"),
        MetricInfo("procrustes", {}, True, "shape",
                   "orthogonal Procrustes similarity: nuclear norm of Xc^T Yc, unit-Frobenius layers",
                   registry_id="shape_metric-alpha=1-score", needs_layers=True,
                   interval=("jackknife", 20), interval_coverage="not measured"),
        MetricInfo("procrustes_angular", {}, True, "shape",
                   "1 - (Procrustes angle arccos(procrustes)) / (pi/2) (Williams et al. 2021)",
                   registry_id="procrustes-angular-score", needs_layers=True,
                   interval=("jackknife", 20), interval_coverage="not measured"),
        MetricInfo("rsa_pearson", {"distance": "cosine"}, True, "rsa",
                   "Pearson correlation of the RDMs' upper triangles",
                   choices=_DISTANCE, registry_id="rsa-rdm=squared_euclidean-compare=corr",
                   interval=("jackknife", 20), interval_coverage="not measured", n_by_n=_RDM),
        MetricInfo("rsa_spearman", {"distance": "cosine"}, True, "rsa",
                   "Spearman correlation of the RDMs' upper triangles",
                   choices=_DISTANCE, registry_id="rsa-rdm=squared_euclidean-compare=spearman",
                   interval=("jackknife", 20), interval_coverage="not measured", n_by_n=_RDM),
        MetricInfo("jaccard_knn", _KNN, True, "knn",
                   "mean Jaccard index |A & B| / |A | B| of the two kNN sets",
                   choices=_DISTANCE, kind="local", interval_coverage="not measured"),
        # The weights come from the first argument's neurons, so pwcca(A, B)
        # and pwcca(B, A) differ; the reference weighs by the narrower layer.
        MetricInfo("pwcca", {"pca_dim": 10}, False, "cca",
                   "projection-weighted mean canonical correlation of the top principal "
                   "subspaces (Morcos et al. 2018)", registry_id="pwcca", needs_layers=True,
                   interval_coverage="not measured"),
        # Y predicted from X: the two orders answer different questions.
        MetricInfo("ridge_r2", {"penalty": 1.0}, False, "regression",
                   "leave-one-out R^2 of the second argument predicted from the first by "
                   "ridge regression", kind="predictive", min_samples=3,
                   interval=("jackknife", 20), interval_coverage="not measured",
                   n_by_n="(its leave-one-out residuals come from an N x N inverse per layer)"),
        # The same number as cka with kernel ip and eps 0 (docs/metrics.md,
        # section 3.14), so CKA's measured intervals hold for it.
        MetricInfo("rv", {}, True, "kernel",
                   "RV coefficient: linear CKA without the 1e-6 in its denominator",
                   interval=("jackknife", 20), registry_id="cka-kernel=linear-hsic=gretton-score"),
    ]
}


#: replicates per interval scheme when it is chosen by name (groups for the jackknife)
DEFAULT_RESAMPLES = {"jackknife": 20, "subsample": 50}


def interval_scheme(metric: str, method: str = "auto", n_resamples: int | None = None
                    ) -> tuple[str, int]:
    """(scheme, replicates) of ``metric``'s intervals: ``method`` "auto" takes
    the metric's own (:attr:`MetricInfo.interval`), "jackknife" or "subsample"
    :data:`DEFAULT_RESAMPLES`; ``n_resamples`` overrides the count."""
    info = get_metric(metric)
    if method == "auto":
        meth, count = info.interval
    elif method in DEFAULT_RESAMPLES:
        meth, count = method, DEFAULT_RESAMPLES[method]
    else:
        raise ValueError(f"unknown interval method {method!r}; choose auto, "
                         + " or ".join(DEFAULT_RESAMPLES))
    return meth, (count if n_resamples is None else int(n_resamples))


def units_needed(scheme: str, count: int) -> int:
    """The fewest independent units (samples, or blocks of them) a scheme can
    resample: one per group for the jackknife, two for half-samples (each
    keeps half the units, at least one)."""
    return count if scheme == "jackknife" else 2


def smallest_resample(n: int, scheme: str, count: int) -> int:
    """The fewest of ``n`` samples (each its own unit) that an index set of
    the scheme keeps, as :func:`prh.calibration.resample_indices` draws them:
    the jackknife leaves out groups of at most ceil(n / count), half-samples
    keep n // 2."""
    return n - math.ceil(n / count) if scheme == "jackknife" else n // 2


#: the kinds in the order the findings and figures group them
KINDS = ("global", "local", "predictive")


def by_kind(metrics) -> dict[str, list[str]]:
    """kind -> the given metrics of that kind (an unknown metric counts as
    global, the dataclass's default), kinds in :data:`KINDS` order."""
    out: dict[str, list[str]] = {}
    for m in metrics:
        info = METRICS.get(m)
        out.setdefault(info.kind if info is not None else "global", []).append(m)
    return {k: out[k] for k in sorted(out, key=lambda k: (KINDS.index(k) if k in KINDS else 9, k))}


def list_metrics() -> list[str]:
    return list(METRICS)


def get_metric(name: str) -> MetricInfo:
    try:
        return METRICS[name]
    except (KeyError, TypeError):
        raise ValueError(
            f"unknown metric {name!r}; known metrics: {', '.join(METRICS)}"
        ) from None
