"""The layer sweep: every layer of one model against every layer of another.

Speed comes from doing per-layer work once. A :class:`~prh.sweep.cache.LayerCache`
holds, for each layer of one model, what every metric needs: the Gram matrix,
its kNN lists and masks, kernel row sums, SVCCA bases. Pairs are then combined
in batches:

- products are taken of each layer's centred rows (float32 rows minus their
  mean), with two float64 offsets that restore its inner products (see
  :func:`prh.preprocess.centre_layer`): the stored Gram matrix is then the
  centred linear kernel H K H itself, and holds the variations between
  samples to float32 accuracy even on anisotropic layers, whose samples are
  nearly parallel (mean cosine 0.999 and above, as in large LMs), where an
  uncentred float32 K rounds them away;
- kNN metrics read one model's neighbour lists in the other's dense kNN mask
  (:mod:`.knn`);
- kernel metrics become float64 products of flattened kernels with
  corrections from row sums, CKNNA sparse masked kernels (:mod:`.kernel`);
- SVCCA takes batched singular values of the d x d products of bases
  (:mod:`.cca`), PWCCA too, weighted (:mod:`.pwcca`);
- RSA and ridge regression are inner products of one N x N matrix per layer
  (standardised dissimilarities; leave-one-out residual forms), plain and
  permuted (:mod:`.pairwise`, :mod:`.rsa`, :mod:`.regression`); Procrustes
  takes the singular values of each pair's cross product (:mod:`.procrustes`);
  Euclidean neighbours and Jaccard sets are in :mod:`.neighbours`.

Modules: :mod:`.cache` (the per-model container and what all families
share), one module per metric family holding its cached terms, its sweep and
its permuted sweep, :mod:`.dispatch` (a pair, any metric: ``sweep``,
``permuted_sweep(s)``, ``layer_scores``) and :mod:`.blocks` (how sweeps cut
their work). Pairs are processed in blocks of X's layers so temporary memory
stays under ``PRH_SWEEP_BLOCK_BYTES`` (default 256 MiB) whatever Lx, Ly and N
are. :mod:`prh.alignment` is the public import path.
"""
