"""The per-model cache every sweep reads: :class:`LayerCache`.

For each layer of one model it holds what every metric needs, computed on
first use: the centred Gram matrix with the two float64 offsets that restore
the layer's inner products (see :func:`prh.preprocess.centre_layer`), and
the per-family terms, each defined beside its family's sweeps
(:class:`prh.sweep.knn.KnnTerms`, :class:`prh.sweep.kernel.KernelTerms`,
:class:`prh.sweep.cca.CcaTerms`).
"""

from __future__ import annotations

from typing import Any, Callable

import torch

from ..devices import resolve_device
from ..preprocess import mean_offsets, prepare_centred_layers
from .cca import CcaTerms
from .kernel import KernelTerms
from .knn import KnnTerms

#: A layer whose samples' spread 1 - sum(G) / (N trace G) (0 for identical
#: rows, 1 - 1/N at most) is below this is constant: its scores are NaN, since
#: ties between identical rows would otherwise give kNN metrics a perfect 1.0.
#: 1e-12 is a variation of ~1e-6 of the rows' norm, ~16 float32 ulps of the
#: stored features: below it the rows differ by rounding alone. Anisotropic
#: layers of large LMs (mean cosine 0.9999999: spread ~1e-7) stay scored.
CONSTANT_SPREAD = 1e-12


class Memo:
    """What both representations of a model's cache share (this module's
    :class:`LayerCache`, :class:`prh.sweep.representation.FeatureCache`):
    terms built once and kept in ``_cache``, and the distinct samples of a
    resample (``_source``: the original sample at each position)."""

    def distinct_samples(self) -> int:
        return self.n if self._source is None else int(torch.unique(self._source).numel())

    def _cached(self, key: tuple, build: Callable[[], Any]) -> Any:
        if key not in self._cache:
            with torch.inference_mode():
                self._cache[key] = build()
        return self._cache[key]


class LayerCache(KnnTerms, KernelTerms, CcaTerms, Memo):
    """Per-layer quantities of one model's preprocessed features, computed on first use.

    ``layers`` are (N, D_l) float32 tensors that are already clamped and
    normalised (see :func:`prh.preprocess.prepare_layers`). Products are taken
    of centred rows xc = x - m (m: the float32 column mean), and layer l's
    Gram matrix is

        K = xc xc^T + a 1^T + 1 a^T + c,   a = mean_dots[l], c = mean_sq[l]

    (see :func:`prh.preprocess.centre_layer`). With ``offsets`` = (mean_dots
    (L, N), mean_sq (L,)) the layers are taken as centred already
    (:func:`prh.preprocess.prepare_centred_layers`, which centres in float64
    before rounding to float32, or a layer cache file), unless ``means`` says what
    to subtract (resamples). Uncentred float32 layers carry rounding of ~1e-7
    of |m| each, which on anisotropic layers is as large as the variations
    between samples: :meth:`from_features` centres before rounding.

    A LayerCache may also be rebuilt without its layers (from its file, see
    :mod:`prh.formats.layer_cache`): then only what was stored, and what derives from the
    Gram matrices, is available.

    The metric families' terms (kNN lists and masks, kernels and HSIC terms,
    SVCCA bases) come from the mixins, each beside its family's sweeps; all
    of them are kept in one cache keyed by what they are, which
    :meth:`resample` and the layer cache files fill directly.
    """

    def __init__(self, layers: list[torch.Tensor], *, n: int | None = None,
                 widths: tuple[int, ...] | None = None, device: torch.device | None = None,
                 offsets: tuple[torch.Tensor, torch.Tensor] | None = None,
                 means: list[torch.Tensor] | None = None):
        self.layers = layers
        self.n = int(layers[0].shape[0]) if layers else int(n)
        self.widths = tuple(int(x.shape[1]) for x in layers) if layers else tuple(widths)
        self.device = layers[0].device if layers else torch.device(device)
        if offsets is None and layers and means is None:
            # Centred where products are taken (grams), never stored centred:
            # a float32 mean is enough (any m near the mean serves).
            means = [x.mean(dim=0) for x in layers]
        elif offsets is None and not layers:  # nothing to restore: K is the stored Gram matrix
            offsets = (torch.zeros(len(self.widths), self.n, dtype=torch.float64, device=self.device),
                       torch.zeros(len(self.widths), dtype=torch.float64, device=self.device))
        self._means = means
        self._offsets = (None if offsets is None else
                         tuple(t.to(self.device, torch.float64) for t in offsets))
        self._cache: dict[tuple, Any] = {}
        # Bootstrap resamples repeat samples; a copy must never be its own
        # neighbour, so kNN search excludes every position holding the same sample.
        self._source: torch.Tensor | None = None

    @classmethod
    def from_features(cls, features: Any, *, name: str = "X", q: float = 0.95,
                      exact: bool = False, normalize: bool = True,
                      device: torch.device | str | None = None) -> "LayerCache":
        dev = resolve_device(device, accelerators=("cuda",))
        with torch.inference_mode():
            prepared = prepare_centred_layers(features, name, q=q, exact=exact,
                                              normalize=normalize, device=dev)
        cache = cls(prepared.layers, offsets=(prepared.mean_dots, prepared.mean_sq))
        cache._cache[("row_norms",)] = prepared.row_norms  # Euclidean distances (.distances)
        return cache

    @property
    def n_layers(self) -> int:
        return len(self.widths)

    def _offsets_built(self) -> tuple[torch.Tensor, torch.Tensor]:
        if self._offsets is None:
            with torch.inference_mode():
                parts = [mean_offsets(x, m) for x, m in zip(self.layers, self._means)]
                self._offsets = (torch.stack([p[0] for p in parts]), torch.stack([p[1] for p in parts]))
        return self._offsets

    @property
    def mean_dots(self) -> torch.Tensor:
        """(L, N) float64 a = xc @ m: see the class docstring."""
        return self._offsets_built()[0]

    @property
    def mean_sq(self) -> torch.Tensor:
        """(L,) float64 c = m . m: see the class docstring."""
        return self._offsets_built()[1]

    def centred_layers(self) -> list[torch.Tensor]:
        """The layers as centred float32 rows xc (what :attr:`layers` holds when
        they came centred)."""
        if self._means is None:
            return list(self.layers)
        return [x - m for x, m in zip(self.layers, self._means)]

    def resample(self, idx: torch.Tensor) -> "LayerCache":
        """The same model on samples ``idx`` (with or without repeats).

        Gram matrices are gathered, not recomputed, and stay centred on the
        full sample's mean (the offsets are gathered with them); kNN lists are
        searched again, skipping positions that hold the same original sample.
        """
        idx = torch.as_tensor(idx, dtype=torch.int64, device=self.device)
        with torch.inference_mode():
            out = LayerCache([x[idx] for x in self.layers], n=len(idx), widths=self.widths,
                             device=self.device, offsets=(self.mean_dots[:, idx], self.mean_sq),
                             means=self._means)
            # One flat gather is twice as fast as two fancy-index passes.
            lin = (idx[:, None] * self.n + idx[None, :]).reshape(-1)
            gram = self.grams().reshape(self.n_layers, -1).index_select(1, lin)
            out._cache[("gram",)] = gram.view(self.n_layers, len(idx), len(idx))
            if ("row_norms",) in self._cache:
                out._cache[("row_norms",)] = self._cache[("row_norms",)][:, idx]
        source = idx if self._source is None else self._source[idx]
        out._source = source
        return out

    def grams(self) -> torch.Tensor:
        """(L, N, N) float32 Gram matrices of the centred layers, xc xc^T.

        The Gram matrices of the layers themselves are these plus the offsets
        (see the class docstring, :meth:`ranking_grams` and :meth:`gram_values`).
        """
        def build():
            out = torch.empty(self.n_layers, self.n, self.n, device=self.device)
            scratch = (None if self._means is None else
                       torch.empty(self.n * max(self.widths), device=self.device))
            for l, (x, g) in enumerate(zip(self.layers, out)):
                if scratch is not None:  # centre into one buffer, reused layer after layer
                    x = torch.sub(x, self._means[l], out=scratch[:x.numel()].view_as(x))
                torch.mm(x, x.T, out=g)
            return out
        return self._cached(("gram",), build)

    def constant_layers(self) -> list[int]:
        """Layers whose samples are (numerically) all the same point, or all
        zero; see :data:`CONSTANT_SPREAD`. Their rows and columns of every
        sweep are NaN."""
        def build():
            # spread: the share of the rows' squared norms that is variation
            # around their mean, from the centred Gram matrices and the
            # offsets (no cancellation against the mean's norm)
            g = self.grams().double()
            trace_c = torch.diagonal(g, dim1=1, dim2=2).sum(-1)
            trace = trace_c + 2 * self.mean_dots.sum(-1) + self.n * self.mean_sq
            spread = (trace_c - g.sum(dim=(1, 2)) / self.n) / trace.clamp_min(1e-300)
            return [i for i in range(self.n_layers)
                    if not bool(trace[i] > 0) or bool(spread[i] < CONSTANT_SPREAD)]
        return self._cached(("constant",), build)

    def ranking_grams(self) -> torch.Tensor:
        """A new (L, N, N) float32 tensor xc xc^T + 1 a^T: the Gram matrices less
        c + a_n in row n, which orders every row as K does (a_n and c are
        constant along it), to float32 accuracy of the variations."""
        return torch.add(self.grams(), self.mean_dots.float()[:, None, :])

    def gram_values(self, idx: torch.Tensor) -> torch.Tensor:
        """float64 K[l, n, idx[l, n, j]] for (L, N, J) column indices idx."""
        a = self.mean_dots
        rows = torch.gather(self.grams(), 2, idx).double()
        cols = torch.gather(a, 1, idx.reshape(self.n_layers, -1)).view_as(idx)
        return rows + cols + a[:, :, None] + self.mean_sq[:, None, None]

    def by_entry(self, what: str, k: int = 0) -> torch.Tensor:
        """(N*N, L) entry-major copies of the kNN mask ("mask") or of
        :meth:`ranking_grams` ("gram": K less c + a_n in row n): a sweep reads
        scattered entries of every layer at once, and rows of L values gather
        about 5x faster than columns."""
        def build():
            if what == "mask":
                return self.knn_mask(k).T.contiguous()
            # entry (n, m) of layer l at [n, m, l]: transposed and offset in one pass
            out = torch.empty(self.n, self.n, self.n_layers, device=self.device)
            torch.add(self.grams().permute(1, 2, 0), self.mean_dots.T.float()[None], out=out)
            return out.view(self.n * self.n, self.n_layers)
        return self._cached(("by_entry", what, k), build)
