"""A literal, slow, float64 reading of docs/metrics.md, for tests only.

Written independently of prh (numpy, explicit centring matrix, Python loops)
so that agreement with prh's torch code is evidence, not a tautology.
"""

from __future__ import annotations

import numpy as np


def knn(x: np.ndarray, k: int) -> np.ndarray:
    sims = x.astype(np.float64) @ x.astype(np.float64).T
    np.fill_diagonal(sims, -np.inf)
    order = np.argsort(-sims, axis=1, kind="stable")
    return order[:, :k]


def lcs(x, y) -> int:
    dp = [[0] * (len(y) + 1) for _ in range(len(x) + 1)]
    for i in range(1, len(x) + 1):
        for j in range(1, len(y) + 1):
            dp[i][j] = dp[i - 1][j - 1] + 1 if x[i - 1] == y[j - 1] else max(dp[i - 1][j], dp[i][j - 1])
    return dp[-1][-1]


def levenshtein(x, y) -> int:
    prev = list(range(len(y) + 1))
    for i in range(1, len(x) + 1):
        cur = [i] + [0] * len(y)
        for j in range(1, len(y) + 1):
            cur[j] = min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (x[i - 1] != y[j - 1]))
        prev = cur
    return prev[-1]


def mutual_knn(a, b, topk, distance="cosine"):
    ka, kb = knn(a, topk), knn(b, topk)
    return float(np.mean([len(set(ka[n]) & set(kb[n])) / topk for n in range(len(a))]))


def jaccard_knn(a, b, topk, distance="cosine"):
    ka, kb = knn(a, topk), knn(b, topk)
    return float(np.mean([len(set(ka[n]) & set(kb[n])) / len(set(ka[n]) | set(kb[n]))
                          for n in range(len(a))]))


def cycle_knn(a, b, topk, distance="cosine"):
    ka, kb = knn(a, topk), knn(b, topk)
    return float(np.mean([n in set(ka[kb[n]].ravel()) for n in range(len(a))]))


def lcs_knn(a, b, topk, distance="cosine"):
    ka, kb = knn(a, topk), knn(b, topk)
    return float(np.mean([lcs(list(ka[n]), list(kb[n])) for n in range(len(a))]))


def edit_distance_knn(a, b, topk, distance="cosine"):
    ka, kb = knn(a, topk), knn(b, topk)
    return 1.0 - float(np.mean([levenshtein(list(ka[n]), list(kb[n])) for n in range(len(a))])) / topk


def _kernel(x, kernel="ip", sigma=1.0):
    x = x.astype(np.float64)
    if kernel == "ip":
        return x @ x.T
    d2 = ((x[:, None, :] - x[None, :, :]) ** 2).sum(-1)
    return np.exp(-d2 / (2 * sigma**2))


def hsic_biased(k, l):
    n = k.shape[0]
    h = np.eye(n) - np.ones((n, n)) / n
    return float(np.trace(k @ h @ l @ h))


def hsic_unbiased(k, l):
    n = k.shape[0]
    kt, lt = k.copy(), l.copy()
    np.fill_diagonal(kt, 0.0)
    np.fill_diagonal(lt, 0.0)
    value = (np.sum(kt * lt.T) + kt.sum() * lt.sum() / ((n - 1) * (n - 2))
             - 2.0 * np.sum(kt @ lt) / (n - 2))
    return float(value / (n * (n - 3)))


def cka(a, b, kernel="ip", sigma=1.0, eps=1e-6):
    k, l = _kernel(a, kernel, sigma), _kernel(b, kernel, sigma)
    return hsic_biased(k, l) / (np.sqrt(hsic_biased(k, k) * hsic_biased(l, l)) + eps)


def unbiased_cka(a, b, kernel="ip", sigma=1.0, eps=1e-6):
    k, l = _kernel(a, kernel, sigma), _kernel(b, kernel, sigma)
    return hsic_unbiased(k, l) / (np.sqrt(hsic_unbiased(k, k) * hsic_unbiased(l, l)) + eps)


def cknna(a, b, topk):
    k, l = _kernel(a), _kernel(b)
    n = len(a)

    def mask(p):
        m = np.zeros((n, n))
        for row, cols in enumerate(knn_from_kernel(p, topk)):
            m[row, cols] = 1.0
        return m

    def sim(p, q):
        m = mask(p) * mask(q)
        return hsic_unbiased(m * p, m * q)

    return sim(k, l) / (np.sqrt(sim(k, k) * sim(l, l)) + 1e-6)


def knn_from_kernel(p, k):
    p = p.copy()
    np.fill_diagonal(p, -np.inf)
    return np.argsort(-p, axis=1, kind="stable")[:, :k]


def svcca(a, b, cca_dim=10):
    def top_u(x):
        x = x.astype(np.float64)
        x = x - x.mean(0)
        x = x / (x.std(0, ddof=1) + 1e-8)
        u, _, _ = np.linalg.svd(x, full_matrices=False)
        return u[:, :cca_dim]

    return float(np.linalg.svd(top_u(a).T @ top_u(b), compute_uv=False).mean())


def _centred_unit(x):
    x = x.astype(np.float64)
    x = x - x.mean(0)
    norm = np.linalg.norm(x)
    return x / norm if norm > 0 else x


def procrustes(a, b):
    # zero-pad the narrower to a common width, then 1 - min over orthogonal R of ||A R - B||^2 / 2
    a, b = _centred_unit(a), _centred_unit(b)
    width = max(a.shape[1], b.shape[1])
    a = np.pad(a, ((0, 0), (0, width - a.shape[1])))
    b = np.pad(b, ((0, 0), (0, width - b.shape[1])))
    u, _, vt = np.linalg.svd(a.T @ b)
    r = u @ vt
    return 1.0 - np.sum((a @ r - b) ** 2) / 2 if np.any(a) and np.any(b) else 0.0


def procrustes_angular(a, b):
    return 1.0 - np.arccos(np.clip(procrustes(a, b), 0.0, 1.0)) / (np.pi / 2)


def _rdm_upper(x, distance):
    x = x.astype(np.float64)
    n = len(x)
    if distance == "cosine":
        norms = np.linalg.norm(x, axis=1)
        d = np.array([[1.0 - (x[i] @ x[j] / (norms[i] * norms[j]) if norms[i] * norms[j] > 0 else 0.0)
                       for j in range(n)] for i in range(n)])
    else:
        d = np.array([[np.linalg.norm(x[i] - x[j]) for j in range(n)] for i in range(n)])
    return d[np.triu_indices(n, 1)]


def _corr(u, v):
    u, v = u - u.mean(), v - v.mean()
    den = np.linalg.norm(u) * np.linalg.norm(v)
    return float(u @ v / den) if den > 0 else 0.0


def rsa_pearson(a, b, distance="cosine"):
    return _corr(_rdm_upper(a, distance), _rdm_upper(b, distance))


def rsa_spearman(a, b, distance="cosine"):
    from scipy.stats import rankdata

    return _corr(rankdata(_rdm_upper(a, distance)), rankdata(_rdm_upper(b, distance)))


def pwcca(a, b, pca_dim=10):
    def top(x):
        x = x.astype(np.float64) - x.astype(np.float64).mean(0)
        u, sv, _ = np.linalg.svd(x, full_matrices=False)
        r = int(np.sum(sv > 1e-6 * sv[0])) if sv[0] > 0 else 0
        return x, u[:, :min(pca_dim, r)]

    xa, ua = top(a)
    _, ub = top(b)
    if ua.shape[1] == 0 or ub.shape[1] == 0:
        return 0.0
    p, corr, _ = np.linalg.svd(ua.T @ ub, full_matrices=False)
    weights = np.abs((ua @ p).T @ xa).sum(1)
    return float(weights @ corr / weights.sum()) if weights.sum() > 0 else 0.0


def ridge_r2(a, b, penalty=1.0):
    a, b = a.astype(np.float64), b.astype(np.float64)
    n = len(a)
    pred = np.empty_like(b)
    for i in range(n):  # leave sample i out, fit on the others, predict it
        train = np.arange(n) != i
        ma, mb = a[train].mean(0), b[train].mean(0)
        x, y = a[train] - ma, b[train] - mb
        coef = np.linalg.inv(x.T @ x + penalty * np.eye(a.shape[1])) @ x.T @ y
        pred[i] = (a[i] - ma) @ coef + mb
    sst = np.sum((b - b.mean(0)) ** 2)
    return 1.0 - np.sum((b - pred) ** 2) / sst if sst > 0 else 0.0


def rv(a, b):
    return cka(a - a.mean(0), b - b.mean(0), eps=0.0)


METRICS = {
    "rv": rv, "ridge_r2": ridge_r2, "pwcca": pwcca, "jaccard_knn": jaccard_knn, "rsa_pearson": rsa_pearson, "rsa_spearman": rsa_spearman,
    "procrustes": procrustes, "procrustes_angular": procrustes_angular,
    "mutual_knn": mutual_knn, "cycle_knn": cycle_knn, "lcs_knn": lcs_knn,
    "edit_distance_knn": edit_distance_knn, "cka": cka, "unbiased_cka": unbiased_cka,
    "cknna": cknna, "svcca": svcca,
}


def clamp(layers: list[np.ndarray], q: float, exact: bool) -> list[np.ndarray]:
    """The spec's outlier clamp over the layers taken together."""
    if q == 1:
        return layers
    allabs = np.concatenate([np.abs(x).reshape(len(x), -1) for x in layers], axis=1)
    if exact:
        flat = np.sort(allabs.ravel())
        t = flat[int(q * flat.size)]
    else:
        t = np.quantile(allabs, q, axis=1).mean()
    return [np.clip(x, -t, t) for x in layers]


def prepare(features, q=0.95, exact=False):
    if isinstance(features, list):
        layers = [clamp([x.astype(np.float64)], q, exact)[0] for x in features]
    else:
        layers = clamp([features[:, i].astype(np.float64) for i in range(features.shape[1])], q, exact)
    return [x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12) for x in layers]


def layer_scores(X, Y, metric, q=0.95, exact=False, **params):
    xs, ys = prepare(X, q, exact), prepare(Y, q, exact)
    fn = METRICS[metric]
    return np.array([[fn(x, y, **params) for y in ys] for x in xs])
