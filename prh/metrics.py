"""The alignment metrics between two sets of paired features: the paper's
eight and the measures of the follow-up literature.

Definitions follow ``docs/metrics.md`` (the contract with the paper's
reference code). ``measure(name, A, B, **params)`` scores one pair of N x D
matrices directly from those definitions; it is the plain per-pair algorithm.
The layer sweep in :mod:`prh.alignment` computes the same numbers for every
layer pair at once, reusing per-layer work; the tests check the two agree.

Gram matrices are formed in float32 (as the reference does), but of rows
centred first (:func:`prh.preprocess.centre_layer`), with float64 offsets
where the uncentred values matter (kNN lists, CKNNA): on
anisotropic layers, whose rows are nearly parallel, an uncentred float32 Gram
matrix rounds away the variations the metrics measure. HSIC sums and every
other accumulation over N^2 terms run in float64 so that cancellation in the
unbiased estimator costs no accuracy.
"""

from __future__ import annotations

from typing import Any, Callable, Mapping

import torch

from .metric_info import CKA_EPS, METRICS, MetricInfo, get_metric, list_metrics  # noqa: F401
from .checks import as_tensor, check_float, check_int, check_same_n, check_topk
from .preprocess import centre_layer
from .sequences import lcs_length, levenshtein

SVCCA_STD_EPS = 1e-8


def resolve_params(name: str, params: Mapping[str, Any], n: int | None = None,
                   dims: tuple[int, ...] = ()) -> dict[str, Any]:
    """Fill in defaults and check every parameter of metric ``name``.

    ``n`` (samples) and ``dims`` (feature widths) enable the checks that depend
    on the data: k <= N - 1, N >= 4 for unbiased HSIC, cca_dim <= min(N, D).
    """
    info = get_metric(name)
    unknown = sorted(set(params) - set(info.defaults))
    if unknown:
        allowed = ", ".join(info.defaults) or "none"
        raise ValueError(
            f"unknown parameter {unknown[0]!r}={params[unknown[0]]!r} for metric {name!r}; "
            f"its parameters are: {allowed}"
        )
    out = {**info.defaults, **params}
    for key, allowed in info.choices.items():
        if out[key] not in allowed:
            raise ValueError(
                f"{key}={out[key]!r} is not valid for metric {name!r}; choose one of {allowed}"
            )
    if "sigma" in out:
        out["sigma"] = check_float(out["sigma"], "sigma", low=0.0, low_open=True)
    if "eps" in out:
        out["eps"] = check_float(out["eps"], "eps", low=0.0)
    if n is not None and n < info.min_samples:
        raise ValueError(
            f"metric {name!r} needs N >= {info.min_samples} samples, got N={n}"
        )
    if "topk" in out:
        low = 2 if name == "cknna" else 1
        out["topk"] = (check_topk(out["topk"], n, low=low) if n is not None
                       else check_int(out["topk"], "topk", low=low))
    if "cca_dim" in out:
        high = min([n, *dims]) if n is not None else None
        out["cca_dim"] = check_int(out["cca_dim"], "cca_dim", low=1, high=high)
    if "pca_dim" in out:  # a layer narrower than pca_dim keeps all its directions
        out["pca_dim"] = check_int(out["pca_dim"], "pca_dim", low=1)
    if "penalty" in out:
        out["penalty"] = check_float(out["penalty"], "penalty", low=0.0, low_open=True)
    return out


# ----------------------------------------------------------------------------
# Building blocks (shared with the layer sweep where the operation is the same)


def knn_from_gram(gram: torch.Tensor, k: int, inplace: bool = False
                  ) -> tuple[torch.Tensor, torch.Tensor]:
    """Indices and similarities of each row's k most similar other rows, most similar first.

    Works on one (N, N) Gram matrix or a stack (..., N, N); ``inplace`` lets it
    overwrite the diagonal of ``gram`` instead of copying it.
    """
    n = gram.shape[-1]
    masked = gram if inplace else gram.clone()
    masked.diagonal(dim1=-2, dim2=-1).fill_(float("-inf"))
    vals, idx = torch.topk(masked, k, dim=-1, largest=True, sorted=True)
    del masked
    assert k <= n - 1
    return idx, vals


def rbf_from_gram(gram: torch.Tensor, sigma: float) -> torch.Tensor:
    """exp(-||a_n - a_m||^2 / (2 sigma^2)) - 1 from inner products, without re-reading features.

    The kernel less the constant 1, which HSIC (biased and unbiased) ignores:
    when distances are small against sigma (nearly parallel rows) the kernel is
    1 minus a little, and float32 keeps that little only in this form. Pass the
    Gram matrix of centred rows: distances then come without cancellation.
    """
    sq = gram.diagonal(dim1=-2, dim2=-1)
    d2 = (sq[..., :, None] + sq[..., None, :] - 2.0 * gram).clamp_min_(0.0)
    return torch.expm1(-d2 / (2.0 * sigma * sigma))


def ranking_gram(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """K = x x^T of (N, D) rows as a float32 R = xc xc^T + 1 a^T, which orders
    each row as K does, and the float64 K itself, R + a 1^T + c (see
    :func:`prh.preprocess.centre_layer`): R holds the variations between rows to
    float32 accuracy however nearly parallel they are; the uncentred float32
    K does not."""
    xc, a, c = centre_layer(x)
    r = xc @ xc.T + a.float()[None, :]
    return r, r.double() + a[:, None] + c


def kernel_matrix(x: torch.Tensor, kernel: str, sigma: float) -> torch.Tensor:
    """The kernel of rows x up to what HSIC ignores: the centred linear kernel
    H K H, or RBF - 1; float32, formed from the centred rows."""
    xc = centre_layer(x)[0]
    gram = xc @ xc.T
    return gram if kernel == "ip" else rbf_from_gram(gram, sigma)


def center(k: torch.Tensor) -> torch.Tensor:
    """H K H with H = I - 11^T/N, for (..., N, N) kernels."""
    return (k - k.mean(dim=-1, keepdim=True) - k.mean(dim=-2, keepdim=True)
            + k.mean(dim=(-2, -1), keepdim=True))


def hsic_biased(k: torch.Tensor, l: torch.Tensor) -> torch.Tensor:
    """trace(K H L H), unnormalised, as the reference computes it."""
    k, l = k.double(), l.double()
    return (center(k) * l.T).sum()


def hsic_unbiased(k: torch.Tensor, l: torch.Tensor) -> torch.Tensor:
    """Unbiased HSIC of Song et al. (2012, eq. 5); K and L need not be symmetric."""
    n = k.shape[0]
    kt = k.double().clone()
    lt = l.double().clone()
    kt.fill_diagonal_(0.0)
    lt.fill_diagonal_(0.0)
    # sum(K~ L~) = 1^T K~ L~ 1 = (column sums of K~) . (row sums of L~)
    prod_sum = kt.sum(dim=0) @ lt.sum(dim=1)
    value = ((kt * lt.T).sum()
             + kt.sum() * lt.sum() / ((n - 1) * (n - 2))
             - 2.0 * prod_sum / (n - 2))
    return value / (n * (n - 3))


def cka_ratio(kl: torch.Tensor, kk: torch.Tensor, ll: torch.Tensor,
              eps: float = CKA_EPS) -> torch.Tensor:
    """kl / (sqrt(kk * ll) + eps); a negative product (possible for unbiased HSIC
    estimates of near-zero kernels) gives NaN, as the reference's square root
    does, never a huge kl / eps; with eps = 0 a zero denominator (a constant
    kernel) gives 0."""
    den = torch.sqrt(kk * ll) + eps
    if eps > 0:
        return kl / den
    return torch.where(den == 0, torch.zeros_like(kl), kl / den)


def knn_mask(idx: torch.Tensor, n: int) -> torch.Tensor:
    """0/1 float64 matrix with ones at each row's kNN indices."""
    mask = torch.zeros(idx.shape[0], n, dtype=torch.float64, device=idx.device)
    return mask.scatter_(1, idx, 1.0)


def standardize_columns(x: torch.Tensor) -> torch.Tensor:
    """Zero-mean, unit-std columns (std with N - 1, plus 1e-8), as SVCCA's preprocessing."""
    x = x.double()
    x = x - x.mean(dim=0, keepdim=True)
    return x / (x.std(dim=0, keepdim=True, unbiased=True) + SVCCA_STD_EPS)


def top_left_singular_vectors(x: torch.Tensor, d: int) -> torch.Tensor:
    """An orthonormal basis of the top-d left singular subspace of x (float64).

    SVCCA's score depends on this subspace only, so the basis comes from the
    symmetric eigenproblem of the smaller of x^T x and x x^T, several times
    cheaper than a full SVD (resamples recompute it for every layer).
    When the top d singular values are not well above zero that basis is
    ill-defined, and the SVD is used instead.
    """
    n, dim = x.shape
    if dim <= n:
        w, v = torch.linalg.eigh(x.T @ x)
    else:
        w, v = torch.linalg.eigh(x @ x.T)
    top_w = w[-d:].flip(0)
    if d <= w.numel() and bool(top_w.min() > 1e-8 * w[-1].clamp(min=1e-300)):
        top_v = v[:, -d:].flip(1)
        if dim <= n:
            u = (x @ top_v) / top_w.sqrt()
            # One Gram-Schmidt pass restores orthonormality lost to rounding.
            q, r = torch.linalg.qr(u)
            return q * torch.sign(r.diagonal())
        return top_v
    u, _, _ = torch.linalg.svd(x, full_matrices=False)
    return u[:, :d]


def average_ranks(v: torch.Tensor) -> torch.Tensor:
    """1-based ranks of a 1-d tensor, ties sharing their mean rank (as
    ``scipy.stats.rankdata``), float64."""
    order = torch.argsort(v)  # ties share their mean rank: their order does not matter
    _, group, counts = torch.unique_consecutive(v[order], return_inverse=True, return_counts=True)
    last = counts.cumsum(0).double()
    ranks = torch.empty(v.shape, dtype=torch.float64, device=v.device)
    ranks[order] = (last - (counts.double() - 1.0) / 2.0)[group]
    return ranks


# ----------------------------------------------------------------------------
# The metrics, one pair of matrices at a time.


def _knn(x: torch.Tensor, k: int, distance: str = "cosine") -> torch.Tensor:
    """Neighbour lists by inner products (cosine on unit rows) or by Euclidean
    distance, from the centred rows (no cancellation against their mean)."""
    if distance == "cosine":
        return knn_from_gram(ranking_gram(x)[0], k, inplace=True)[0]
    xc = centre_layer(x)[0]
    sq = (xc * xc).sum(dim=1)
    return knn_from_gram(2.0 * (xc @ xc.T) - sq[:, None] - sq[None, :], k, inplace=True)[0]


def _mutual_knn(a, b, topk, distance="cosine"):
    ka, kb = _knn(a, topk, distance), _knn(b, topk, distance)
    shared = (ka[:, :, None] == kb[:, None, :]).sum()
    return shared.double() / (a.shape[0] * topk)


def _jaccard_knn(a, b, topk, distance="cosine"):
    ka, kb = _knn(a, topk, distance), _knn(b, topk, distance)
    shared = (ka[:, :, None] == kb[:, None, :]).sum(dim=(1, 2)).double()
    return (shared / (2 * topk - shared)).mean()


def _cycle_knn(a, b, topk, distance="cosine"):
    ka, kb = _knn(a, topk, distance), _knn(b, topk, distance)
    back = ka[kb]  # (N, k, k): A's neighbours of each of n's B-neighbours
    n = a.shape[0]
    found = (back == torch.arange(n, device=a.device)[:, None, None]).flatten(1).any(dim=1)
    return found.double().mean()


def _lcs_knn(a, b, topk, distance="cosine"):
    return lcs_length(_knn(a, topk, distance), _knn(b, topk, distance)).double().mean()


def _edit_distance_knn(a, b, topk, distance="cosine"):
    dist = levenshtein(_knn(a, topk, distance), _knn(b, topk, distance)).double()
    return 1.0 - dist.mean() / topk


def _cka(a, b, kernel, sigma, eps):
    k, l = kernel_matrix(a, kernel, sigma), kernel_matrix(b, kernel, sigma)
    return cka_ratio(hsic_biased(k, l), hsic_biased(k, k), hsic_biased(l, l), eps)


def _unbiased_cka(a, b, kernel, sigma, eps):
    k, l = kernel_matrix(a, kernel, sigma), kernel_matrix(b, kernel, sigma)
    return cka_ratio(hsic_unbiased(k, l), hsic_unbiased(k, k), hsic_unbiased(l, l), eps)


def _cknna(a, b, topk):
    (rk, k), (rl, l) = ranking_gram(a), ranking_gram(b)
    n = k.shape[0]
    mk = knn_mask(knn_from_gram(rk, topk, inplace=True)[0], n)
    ml = knn_mask(knn_from_gram(rl, topk, inplace=True)[0], n)

    def sim(p, mp, q, mq):
        m = mp * mq
        return hsic_unbiased(m * p, m * q)

    return cka_ratio(sim(k, mk, l, ml), sim(k, mk, k, mk), sim(l, ml, l, ml))


def _svcca(a, b, cca_dim):
    u1 = top_left_singular_vectors(standardize_columns(a), cca_dim)
    u2 = top_left_singular_vectors(standardize_columns(b), cca_dim)
    return torch.linalg.svdvals(u1.T @ u2).mean()


def _centred_nuclear_norm(a, b):
    """||A^T B||_* of the column-centred A and B scaled to unit Frobenius norm
    (float64); zero-padding the narrower to a common width would add zero rows
    or columns to A^T B and leave it unchanged. 0 when either is constant."""
    a, b = a.double(), b.double()
    a, b = a - a.mean(dim=0), b - b.mean(dim=0)
    norms = torch.linalg.matrix_norm(a) * torch.linalg.matrix_norm(b)
    if not bool(norms > 0):
        return torch.zeros((), dtype=torch.float64)
    return torch.linalg.svdvals(a.T @ b).sum() / norms


def _procrustes(a, b):
    return _centred_nuclear_norm(a, b)


def _procrustes_angular(a, b):
    theta = torch.arccos(_centred_nuclear_norm(a, b).clamp(0.0, 1.0))
    return 1.0 - theta / (torch.pi / 2)


def _rdm(x, distance):
    """Upper triangle (row by row) of the RDM of rows x, float64: 1 - cosine
    (1 where a row is zero), or the Euclidean distance."""
    x = x.double()
    n = x.shape[0]
    iu = torch.triu_indices(n, n, 1, device=x.device)
    if distance == "euclidean":
        return torch.cdist(x, x)[iu[0], iu[1]]
    norms = torch.linalg.vector_norm(x, dim=1)
    unit = x / torch.where(norms > 0, norms, torch.ones_like(norms))[:, None]
    return (1.0 - unit @ unit.T)[iu[0], iu[1]]


def _correlation(u, v):
    """Pearson correlation of two vectors; 0 when either is constant."""
    u, v = u - u.mean(), v - v.mean()
    den = torch.linalg.vector_norm(u) * torch.linalg.vector_norm(v)
    return (u @ v) / den if bool(den > 0) else torch.zeros((), dtype=torch.float64)


def _rsa_pearson(a, b, distance):
    return _correlation(_rdm(a, distance), _rdm(b, distance))


def _rsa_spearman(a, b, distance):
    return _correlation(average_ranks(_rdm(a, distance)), average_ranks(_rdm(b, distance)))


PWCCA_RANK_TOL = 1e-6  # singular values below this fraction of the largest are noise


def _top_directions(x, d):
    """Column-centred x (float64) and its top left singular vectors, at most
    d, those with singular values above PWCCA_RANK_TOL of the largest."""
    xc = x.double() - x.double().mean(dim=0)
    u, sv, _ = torch.linalg.svd(xc, full_matrices=False)
    r = int((sv > PWCCA_RANK_TOL * sv[0]).sum()) if bool(sv[0] > 0) else 0
    return xc, u[:, :min(d, r)]


def _pwcca(a, b, pca_dim):
    """Morcos et al. (2018): canonical correlations of the two top principal
    subspaces, weighted by how much of A's centred neurons each canonical
    variate of A accounts for (sum over neurons of |<variate, neuron>|)."""
    xa, ua = _top_directions(a, pca_dim)
    _, ub = _top_directions(b, pca_dim)
    if ua.shape[1] == 0 or ub.shape[1] == 0:
        return torch.zeros((), dtype=torch.float64)
    p, corr, _ = torch.linalg.svd(ua.T @ ub, full_matrices=False)
    variates = ua @ p                          # (N, min(ra, rb)), orthonormal
    alpha = (variates.T @ xa).abs().sum(dim=1)
    if not bool(alpha.sum() > 0):
        return torch.zeros((), dtype=torch.float64)
    return (alpha * corr).sum() / alpha.sum()


def _ridge_r2(a, b, penalty):
    """Leave-one-out R^2 of B predicted from A by ridge regression with an
    intercept: the primal hat matrix S = 11^T/N + Ac (Ac^T Ac + penalty I)^-1 Ac^T,
    each residual [(I - S) B]_i / (1 - S_ii); 1 - their summed squares over
    those of B about its mean."""
    a, b = a.double(), b.double()
    n = a.shape[0]
    ac = a - a.mean(dim=0)
    gram = ac.T @ ac
    gram.diagonal().add_(penalty)
    hat = ac @ torch.linalg.solve(gram, ac.T) + 1.0 / n
    resid = (b - hat @ b) / (1.0 - hat.diagonal())[:, None]
    sst = ((b - b.mean(dim=0)) ** 2).sum()
    return 1.0 - (resid ** 2).sum() / sst if bool(sst > 0) else torch.zeros((), dtype=torch.float64)


def _rv(a, b):
    """Escoufier's RV coefficient of the column-centred A and B:
    ||A^T B||_F^2 / (||A^T A||_F ||B^T B||_F); 0 when either is constant."""
    a, b = a.double(), b.double()
    a, b = a - a.mean(dim=0), b - b.mean(dim=0)
    den = torch.linalg.matrix_norm(a.T @ a) * torch.linalg.matrix_norm(b.T @ b)
    if not bool(den > 0):
        return torch.zeros((), dtype=torch.float64)
    return torch.linalg.matrix_norm(a.T @ b) ** 2 / den


_IMPLEMENTATIONS: dict[str, Callable[..., torch.Tensor]] = {
    "mutual_knn": _mutual_knn,
    "cycle_knn": _cycle_knn,
    "lcs_knn": _lcs_knn,
    "edit_distance_knn": _edit_distance_knn,
    "cka": _cka,
    "unbiased_cka": _unbiased_cka,
    "cknna": _cknna,
    "svcca": _svcca,
    "procrustes": _procrustes,
    "procrustes_angular": _procrustes_angular,
    "rsa_pearson": _rsa_pearson,
    "rsa_spearman": _rsa_spearman,
    "jaccard_knn": _jaccard_knn,
    "pwcca": _pwcca,
    "ridge_r2": _ridge_r2,
    "rv": _rv,
}


def measure(name: str, A: Any, B: Any, **params: Any) -> float:
    """Score the alignment of paired features A (N x Da) and B (N x Db) with metric ``name``.

    Row n of A and row n of B must describe the same datum. No preprocessing is
    applied here (the layer sweep clamps and normalises); kNN metrics use raw
    inner products, which are cosine similarities for unit rows.
    """
    get_metric(name)
    a = as_tensor(A, "A", ndim=2)
    b = as_tensor(B, "B", ndim=2, device=a.device)
    n = check_same_n(a, b)
    p = resolve_params(name, params, n=n, dims=(a.shape[1], b.shape[1]))
    with torch.inference_mode():
        return float(_IMPLEMENTATIONS[name](a, b, **p))
