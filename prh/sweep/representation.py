"""The features representation of one model's layers: :class:`FeatureCache`.

The dense representation (:class:`prh.sweep.cache.LayerCache`) keeps an
N x N Gram matrix per layer, and entry-major N^2 copies of it and of the kNN
masks for the sweeps: memory and time grow as N^2 (1 GiB a layer at N =
16384). A FeatureCache keeps per layer what the metrics with a feature-space
form need, O(N (D + k)):

- the clamped, normalised layer as centred float32 rows (N x D), with the
  two float64 offsets that restore its inner products
  (:func:`prh.preprocess.prepare_centred_layers`, as the dense path builds
  them), and the rows' norms before normalisation (Euclidean neighbours);
- per k, the kNN lists from the exact blocked search (:mod:`.search`), with
  the float32 products and ranking values at their entries: the same lists
  and values as the dense path's; or, with ``knn="approximate"``, from a
  FAISS index (:func:`.approximate.search_lists`), their recall@k against
  the exact ranking measured on a sample of rows (``knn_recall``);
- on first use, what the feature-space forms read: row sums and squared
  norms of the linear kernel, ||X^T X||_F^2 (:mod:`.features_kernel`),
  SVCCA bases, Procrustes factors and PWCCA bases (their modules'
  functions, which read the layers).

The dense sweeps of the kNN family and of CKNNA read Y's kNN mask and
ranking matrix at chosen entries (``by_entry(...).index_select``);
:class:`EntryTable` answers the same reads from the kNN lists, so those
sweeps run unchanged and count exactly what they count on dense Gram
matrices. Which metrics have a feature-space form: docs/large-n.md.
"""

from __future__ import annotations

from typing import Any

import torch

from ..devices import resolve_device
from ..preprocess import prepare_centred_layers, rows_dot
from .cache import CONSTANT_SPREAD, Memo
from .cca import CcaTerms
from .kernel import _masked_hsic
from .search import Neighbours, search_many

#: bytes of one chunk of the temporaries of an EntryTable read
_READ_BYTES = 64 * 2**20
#: bytes of float64 rows converted at once for the kernel terms
_CHUNK_BYTES = 32 * 2**20
#: how the kNN lists are searched (alignment.knn)
KNN_METHODS = ("exact", "approximate")


class EntryTable:
    """What ``LayerCache.by_entry`` holds, (N*N, L) entry-major, read from kNN
    lists instead of stored: entry n*N + m of layer l is whether m is among
    n's neighbours (``values`` None: a kNN mask), or the float32 ranking
    value R[n, m] there, 0 elsewhere (``values``: what the sweeps read only
    where m is a neighbour of n)."""

    def __init__(self, idx: torch.Tensor, values: torch.Tensor | None = None):
        self.idx, self.values = idx, values
        self.n = idx.shape[1]
        self.shape = (self.n * self.n, idx.shape[0])
        self.dtype = torch.bool if values is None else values.dtype

    def _read(self, layers: torch.Tensor | None, lin: torch.Tensor) -> torch.Tensor:
        rows, cols = lin // self.n, lin % self.n
        if layers is None:  # every layer: (L, c, k)
            lists = self.idx[:, rows]
            hit = lists == cols[None, :, None]
        else:  # layer layers[i] at entry lin[i]: (c, k)
            lists = self.idx[layers, rows]
            hit = lists == cols[:, None]
        if self.values is None:
            return hit.any(dim=-1)
        vals = self.values[:, rows] if layers is None else self.values[layers, rows]
        # at most one hit a list (neighbours are distinct): the sum is that value
        return torch.where(hit, vals, torch.zeros((), dtype=vals.dtype, device=vals.device)).sum(-1)

    def index_select(self, dim: int, lin: torch.Tensor) -> torch.Tensor:
        """(len(lin), L) entries lin of every layer (dim must be 0)."""
        assert dim == 0
        lin = lin.reshape(-1)
        out = torch.empty(len(lin), self.shape[1], dtype=self.dtype, device=lin.device)
        step = max(1, _READ_BYTES // (self.shape[1] * self.idx.shape[2] * 24))
        for s in range(0, len(lin), step):
            out[s:s + step] = self._read(None, lin[s:s + step]).T
        return out

    def __getitem__(self, key: tuple[torch.Tensor, torch.Tensor]) -> torch.Tensor:
        """Entry lin[i] of layer j[i], for two equally long index tensors."""
        lin, layers = key
        return self._read(layers, lin)


class FeatureCache(CcaTerms, Memo):
    """Per-layer terms of one model's preprocessed features, in O(N (D + k)) memory.

    ``layers`` (N, D_l) float32 rows centred on their mean, ``offsets`` =
    (mean_dots (L, N), mean_sq (L,)) float64 as
    :func:`prh.preprocess.prepare_centred_layers` gives them; the layers'
    products are those of :class:`prh.sweep.cache.LayerCache` built from the
    same features (same rows, same offsets). ``block_rows``: rows per block
    of the kNN search (default: a 256 MiB budget, :mod:`.search`). ``knn``:
    "exact" (that search) or "approximate" (a FAISS index; cosine
    neighbours of normalised rows only); ``knn_recall`` then holds, per k,
    the (L,) recall@k of each layer's lists and ``knn_index`` the index's
    (L,) ``nlist`` and ``nprobe``.
    """

    representation = "features"

    def __init__(self, layers: list[torch.Tensor], offsets: tuple[torch.Tensor, torch.Tensor], *,
                 row_norms: torch.Tensor | None = None, block_rows: int | None = None,
                 knn: str = "exact"):
        if not layers:
            raise ValueError("the features representation needs the layers themselves")
        if knn not in KNN_METHODS:
            raise ValueError(f"knn={knn!r}: choose one of {', '.join(KNN_METHODS)}")
        self.knn_method = knn
        self.knn_recall: dict[int, torch.Tensor] = {}
        self.knn_index: dict[int, dict[str, list[int]]] = {}
        self.layers = layers
        self.n = int(layers[0].shape[0])
        self.widths = tuple(int(x.shape[1]) for x in layers)
        self.device = layers[0].device
        self._offsets = tuple(t.to(self.device, torch.float64) for t in offsets)
        self._cache: dict[tuple, Any] = {}
        if row_norms is not None:
            self._cache[("row_norms",)] = row_norms.to(self.device, torch.float64)
        self.block_rows = block_rows
        # as LayerCache._source: the original sample at each position of a resample
        self._source: torch.Tensor | None = None
        self._distance = "cosine"
        # (parent, idx) of a resample at distinct positions of a full sample
        self._subset_of: tuple[FeatureCache, torch.Tensor] | None = None

    @classmethod
    def from_features(cls, features: Any, *, name: str = "X", q: float = 0.95,
                      exact: bool = False, normalize: bool = True,
                      device: torch.device | str | None = None,
                      block_rows: int | None = None, knn: str = "exact") -> "FeatureCache":
        """Clamp, normalise and centre as LayerCache.from_features does."""
        if knn == "approximate" and not normalize:
            raise ValueError(f"{name}: approximate kNN lists rank by Euclidean distance, which "
                             "is the cosine order only of normalised rows; normalise, or "
                             "search exactly")
        dev = resolve_device(device, accelerators=("cuda",))
        with torch.inference_mode():
            prepared = prepare_centred_layers(features, name, q=q, exact=exact,
                                              normalize=normalize, device=dev)
        return cls(prepared.layers, (prepared.mean_dots, prepared.mean_sq),
                   row_norms=prepared.row_norms, block_rows=block_rows, knn=knn)

    @property
    def n_layers(self) -> int:
        return len(self.widths)

    @property
    def mean_dots(self) -> torch.Tensor:
        """(L, N) float64 a = xc @ m (see LayerCache)."""
        return self._offsets[0]

    @property
    def mean_sq(self) -> torch.Tensor:
        """(L,) float64 c = m . m."""
        return self._offsets[1]

    def centred_layers(self) -> list[torch.Tensor]:
        return list(self.layers)

    # -- neighbours ------------------------------------------------------------

    def neighbours(self, k: int) -> Neighbours:
        """(L, N, k) kNN lists with their products and ranking values (:mod:`.search`)."""
        self.search_neighbours([k])
        return self._cache[("knn", k, "lists")]

    def search_neighbours(self, ks) -> None:
        """Search the kNN lists of every k in ``ks`` not known yet, in one pass
        over each layer's blocks (the layer_cache job's topk values), or read
        them from wider lists where those say the answer (:meth:`_read_from_wider`)."""
        todo = sorted({int(k) for k in ks if ("knn", int(k), "lists") not in self._cache})
        if not todo:
            return
        if todo[-1] > self.distinct_samples() - 1:
            raise ValueError(
                f"topk={todo[-1]} is too large for a resample with {self.distinct_samples()} "
                f"distinct samples (of {self.n}): use a smaller topk or more samples")
        norms = self._row_norms() if self._distance == "euclidean" else None
        if norms is None:
            todo = self._read_from_wider(todo)
        if todo:
            self._search(todo, norms)

    def _read_from_wider(self, todo: list[int]) -> list[int]:
        """Lists of ``todo`` read from wider ones (:mod:`.subsets`): a subset's
        from its parent's, a full sample's from its own widest, which is
        searched first when several k are asked for (one ``topk`` per block
        instead of one per k); the k left to search. A resample with repeats
        reads nothing: its copies of a sample tie, and are never each other's
        neighbours, which only its own search knows. With ``knn:
        approximate`` the wider lists are the index's, so a subset inherits
        their recall."""
        from .subsets import subset_neighbours

        parent = self._subset_of
        if parent is None:
            if self._source is not None or self._approximate():
                # an index search gives every k its prefix of one list and its
                # own recall, which lists read from a wider one would lack
                return todo
            if len(todo) > 1:
                self._search(todo[-1:], None)
                todo = todo[:-1]
            parent = (self, torch.arange(self.n, device=self.device))
        with torch.inference_mode():
            for k in list(todo):
                got = subset_neighbours(*parent, self, k)
                if got is not None:
                    self._cache[("knn", k, "lists")] = got
                    todo.remove(k)
        return todo

    def _search(self, todo: list[int], norms: torch.Tensor | None) -> None:
        if self._approximate():
            parts = self._search_approximately(todo)
        else:
            with torch.inference_mode():
                parts = [search_many(x, self.mean_dots[l], todo, block_rows=self.block_rows,
                                     source=self._source, norms=None if norms is None else norms[l])
                         for l, x in enumerate(self.layers)]
        for k in todo:
            self._cache[("knn", k, "lists")] = Neighbours(
                *(torch.stack(t) for t in zip(*(p[k] for p in parts))))

    def _approximate(self) -> bool:
        """Whether this search is approximate: asked for, and no sample
        repeated (a bootstrap resample's repeats must never be each other's
        neighbours, which only the exact search masks)."""
        if self.knn_method != "approximate":
            return False
        if self._distance == "euclidean":
            raise ValueError("distance: euclidean has no approximate kNN search (its lists rank "
                             "unnormalised rows): use distance cosine, or search exactly")
        return self._source is None or self.distinct_samples() == self.n

    def _search_approximately(self, ks: list[int]) -> list[dict[int, Neighbours]]:
        """Per layer, one index for the largest k; on the full sample, each
        k's recall (:func:`.approximate.lists_recall`) and the index's nlist and nprobe."""
        from .approximate import lists_recall, search_lists

        parts, recall, infos = [], {k: [] for k in ks}, []
        with torch.inference_mode():
            for l, x in enumerate(self.layers):
                lists, info = search_lists(x, self.mean_dots[l], ks)
                parts.append(lists)
                infos.append(info)
                if self._source is None:
                    got = lists_recall(x, self.mean_dots[l], {k: nb.idx for k, nb in lists.items()})
                    for k in ks:
                        recall[k].append(got[k])
        if self._source is None:
            for k in ks:
                self.knn_recall[k] = torch.tensor(recall[k], dtype=torch.float64)
                self.knn_index[k] = {"nlist": [i.nlist for i in infos],
                                     "nprobe": [i.nprobe for i in infos]}
        return parts

    def _row_norms(self) -> torch.Tensor:
        from .distances import row_norms
        return row_norms(self)

    def knn(self, k: int) -> tuple[torch.Tensor, torch.Tensor]:
        """(L, N, k) neighbour indices and their float64 Gram values, as LayerCache.knn."""
        def build():
            nb = self.neighbours(k)
            a = self.mean_dots
            cols = torch.gather(a, 1, nb.idx.reshape(self.n_layers, -1)).view_as(nb.idx)
            # LayerCache.gram_values, term by term
            return nb.idx, nb.gram.double() + cols + a[:, :, None] + self.mean_sq[:, None, None]
        return self._cached(("knn", k), build)

    def by_entry(self, what: str, k: int = 0) -> EntryTable:
        """The kNN mask ("mask") or ranking values ("gram") of the k-lists as
        an :class:`EntryTable`; the ranking values are known on the lists only,
        so "gram" needs k too (see :func:`prh.sweep.features_kernel.at_topk`)."""
        if k <= 0:
            raise ValueError(f"by_entry({what!r}) of the features representation needs topk")
        nb = self.neighbours(k)
        return EntryTable(nb.idx, None if what == "mask" else nb.rank)

    def cknna_terms(self, k: int) -> tuple[torch.Tensor, torch.Tensor]:
        """As KernelTerms.cknna_terms: whether n is among the neighbours of its
        a-th neighbour (from the lists), and each layer's sim(K, K)."""
        def build():
            idx, vals = self.knn(k)
            arange = torch.arange(self.n, device=self.device)[:, None, None]
            mutual = torch.stack([(i[i] == arange).any(dim=-1) for i in idx])
            self_sim = _masked_hsic(idx[:, None], vals[:, None], vals[:, None], mutual[:, None],
                                    self.n)[:, 0]
            return mutual, self_sim
        return self._cached(("cknna", k), build)

    def euclidean_neighbours(self) -> "FeatureCache":
        """This model with neighbours by Euclidean distance before normalisation
        (``distance: euclidean``); every other term is shared with it."""
        from .neighbours import _SharedCache

        def build():
            view = FeatureCache.__new__(FeatureCache)
            view.__dict__.update(self.__dict__)
            view._cache = _SharedCache(self._cache)
            view._distance = "euclidean"
            return view
        return self._cached(("euclidean_view",), build)

    # -- the linear kernel -------------------------------------------------------

    def kernel_terms(self, kernel: str, sigma: float) -> dict[str, torch.Tensor]:
        """What the HSIC estimators read of K = xc xc^T, in float64, from the
        rows: ``rows`` (L, N) = K 1 = xc (xc^T 1), ``total`` (L,), ``diag`` (L, N)
        the rows' squared norms, ``sq`` (L,) <K, K> = ||xc^T xc||_F^2."""
        if kernel != "ip":
            raise ValueError(f"kernel={kernel!r} needs N x N kernels, which the features "
                             "representation does not hold: use kernel ip or the dense one")

        def build():
            sq = torch.empty(self.n_layers, dtype=torch.float64, device=self.device)
            for l, x in enumerate(self.layers):
                cov = torch.zeros(x.shape[1], x.shape[1], dtype=torch.float64, device=self.device)
                step = max(1, _CHUNK_BYTES // (8 * x.shape[1]))
                for s in range(0, self.n, step):
                    part = x[s:s + step].double()
                    cov.addmm_(part.T, part)
                sq[l] = (cov * cov).sum()
            return {**self._row_terms(), "sq": sq}
        return self._cached(("kernel_terms", kernel, sigma), build)

    def _row_terms(self) -> dict[str, torch.Tensor]:
        """``rows``, ``total`` and ``diag`` of :meth:`kernel_terms`: O(N D)."""
        def build():
            rows = torch.stack([rows_dot(x, x.sum(dim=0, dtype=torch.float64)) for x in self.layers])
            diag = torch.empty(self.n_layers, self.n, dtype=torch.float64, device=self.device)
            for l, x in enumerate(self.layers):
                step = max(1, _CHUNK_BYTES // (8 * x.shape[1]))
                for s in range(0, self.n, step):
                    part = x[s:s + step].double()
                    diag[l, s:s + step] = (part * part).sum(dim=1)
            return {"rows": rows, "total": rows.sum(dim=1), "diag": diag}
        return self._cached(("row_terms",), build)

    def constant_layers(self) -> list[int]:
        """As LayerCache.constant_layers, from the rows: trace(G) is the sum of
        the rows' squared norms, sum(G) the total of K 1."""
        def build():
            t = self._row_terms()
            trace_c = t["diag"].sum(-1)
            trace = trace_c + 2 * self.mean_dots.sum(-1) + self.n * self.mean_sq
            spread = (trace_c - t["total"] / self.n) / trace.clamp_min(1e-300)
            return [i for i in range(self.n_layers)
                    if not bool(trace[i] > 0) or bool(spread[i] < CONSTANT_SPREAD)]
        return self._cached(("constant",), build)

    # -- resamples -------------------------------------------------------------

    def resample(self, idx: torch.Tensor) -> "FeatureCache":
        """The same model on samples ``idx`` (with or without repeats), as
        LayerCache.resample: rows gathered, still centred on the full sample's
        mean; kNN lists searched again, skipping positions of the same sample
        (exactly then, even with ``knn="approximate"``: see :meth:`_approximate`)."""
        idx = torch.as_tensor(idx, dtype=torch.int64, device=self.device)
        with torch.inference_mode():
            norms = self._cache.get(("row_norms",))
            out = FeatureCache([x[idx] for x in self.layers],
                               (self.mean_dots[:, idx], self.mean_sq),
                               row_norms=None if norms is None else norms[:, idx],
                               block_rows=self.block_rows, knn=self.knn_method)
        out._source = idx if self._source is None else self._source[idx]
        if (self._source is None and self._distance == "cosine"
                and int(torch.unique(idx).numel()) == len(idx)):
            out._subset_of = (self, idx)
        return out
