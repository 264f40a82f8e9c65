"""SVCCA (svcca): each layer's top-d singular basis of its standardised
features, and the sweep, batched singular values of the d x d products of
two models' bases. A permutation reorders Y's basis rows (``perm``)."""

from __future__ import annotations

import torch

from ..metrics import standardize_columns, top_left_singular_vectors
from .blocks import layer_blocks


class CcaTerms:
    """The SVCCA bases of :class:`prh.sweep.cache.LayerCache` (a mixin: it
    reads the cache's layers and stores its results there)."""

    def svcca_basis(self, d: int) -> torch.Tensor:
        """(L, N, d) float64 top-d left singular vectors of the standardised layers."""
        if not self.layers and ("svcca", d) not in self._cache:
            have = sorted(key[1] for key in self._cache if key[0] == "svcca")
            raise ValueError(
                f"SVCCA with cca_dim={d} needs this model's features: its layer cache holds bases "
                f"for cca_dim in {have} only; recompute the layer cache with cca_dim={d}"
            )
        return self._cached(
            ("svcca", d),
            lambda: torch.stack([top_left_singular_vectors(standardize_columns(x), d)
                                 for x in self.layers]))


def _sweep_svcca(sx, sy, cca_dim, perm=None):
    ux, uy = sx.svcca_basis(cca_dim), sy.svcca_basis(cca_dim)
    if perm is not None:
        uy = uy[:, perm]
    out = torch.empty(sx.n_layers, sy.n_layers, dtype=torch.float64, device=sx.device)
    for sl in layer_blocks(sx.n_layers, sy.n_layers * cca_dim * cca_dim * 8 * 4):
        cross = torch.einsum("ind,jne->ijde", ux[sl], uy)
        out[sl] = torch.linalg.svdvals(cross).mean(dim=-1)
    return out


#: this family's sweeps: fn(sx, sy, **params, perm=None) -> (Lx, Ly) float64,
#: with ``perm`` Y's samples reordered (see :mod:`prh.sweep.dispatch`)
SWEEPS = {"svcca": _sweep_svcca}
