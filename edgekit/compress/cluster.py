"""Weight clustering (tfmot ``cluster_weights``): k shared values per kernel, per-layer
counts, centroid initialization by name, sparsity-preserving after pruning, and stripping."""
from __future__ import annotations

from edgekit.compress.config import CompressConfig
from edgekit.compress.layers import clone, kernel_of, resolve_names
from edgekit.errors import UsageError


def centroid_init(name: str):
    """The tfmot CentroidInitialization for ``kmeans++``, ``linear``, ``density`` or ``random``."""
    import tensorflow_model_optimization as tfmot

    CI = tfmot.clustering.keras.CentroidInitialization
    return {"kmeans++": CI.KMEANS_PLUS_PLUS, "linear": CI.LINEAR, "density": CI.DENSITY_BASED,
            "random": CI.RANDOM}[name]


def clusterable_layers(model) -> list[str]:
    """Layers whose kernel tfmot can cluster (DepthwiseConv2D is excluded by tfmot)."""
    from tensorflow_model_optimization.python.core.clustering.keras.clusterable_layer import ClusterableLayer
    from tensorflow_model_optimization.python.core.clustering.keras.clustering_registry import ClusteringRegistry

    out = []
    for layer in model.layers:
        if kernel_of(layer) is None:
            continue
        if isinstance(layer, ClusterableLayer) or (
            ClusteringRegistry.supports(layer) and ClusteringRegistry._weight_names(layer)
        ):
            out.append(layer.name)
    return out


def layer_clusters(model, config: CompressConfig) -> dict[str, int]:
    """Number of clusters per layer name (only layers that get clustered)."""
    allowed = clusterable_layers(model)
    resolve_names(model, config.cluster_layers, "cluster_layers (--cluster-layer)", allowed)
    if not config.clusters:
        return {}
    out = {}
    for name in allowed:
        if name in config.cluster_layers:
            out[name] = int(config.cluster_layers[name])
        elif config.cluster is not None and name not in config.skip_layers:
            out[name] = int(config.cluster)
    for name, k in out.items():
        size = int(kernel_of(model.get_layer(name)).shape.num_elements())
        if k >= size:
            raise UsageError(f"Layer {name!r} has {size} kernel weights; it cannot be clustered into {k} values.")
    return out


def sparse_fit(weights, k: int) -> int:
    """The most clusters (<= ``k``) tfmot's sparsity-preserving initialization can place in
    ``weights``: it keeps one centroid for zero and splits the other ``k - 1`` between the negative
    and the positive weights in proportion to their counts, and k-means++ needs at least as many
    weights as centroids on each side (else it fails: "Expected num_to_sample <= points.rows()").
    0: not even one centroid besides zero fits (no non-zero weight)."""
    import numpy as np

    w = np.asarray(weights)
    neg, pos = int((w < 0).sum()), int((w > 0).sum())
    for n in range(k, 1, -1):
        k_neg = int(np.round((n - 1) * neg / (neg + pos))) if neg + pos else 0
        if neg + pos and k_neg <= neg and n - 1 - k_neg <= pos:
            return n
    return 0


def fit_sparse_clusters(model, clusters: dict[str, int]) -> tuple[dict[str, int], dict[str, str]]:
    """``(clusters that fit, {layer: what changed})`` for sparsity-preserving clustering of a pruned
    ``model``: a layer pruned to fewer non-zero weights than its clusters gets fewer (or none)."""
    fitted, changed = {}, {}
    for name, k in clusters.items():
        w = kernel_of(model.get_layer(name)).numpy()
        n = sparse_fit(w, k)
        if n >= 2:
            fitted[name] = n
        if n != k:
            nz = int((w != 0).sum())
            changed[name] = f"{name} {k} -> {n if n >= 2 else 'unclustered'} ({nz} non-zero weights)"
    return fitted, changed


def apply_clustering(model, clusters: dict[str, int], config: CompressConfig, preserve_sparsity: bool):
    """A clustering-wrapped copy of ``model``; zeros stay zero when ``preserve_sparsity``."""
    import tensorflow_model_optimization as tfmot
    from edgekit._lazy import keras

    work = clone(model)
    init = centroid_init(config.cluster_init)

    def wrap(layer):
        if layer.name not in clusters:
            return layer
        try:
            return tfmot.clustering.keras.cluster_weights(
                layer, number_of_clusters=clusters[layer.name], cluster_centroids_init=init,
                preserve_sparsity=preserve_sparsity)
        except ValueError as e:
            raise UsageError(f"Layer {layer.name!r} cannot be clustered: {str(e).splitlines()[0]}") from None

    return keras().models.clone_model(work, clone_function=wrap)


def strip(model):
    """The plain model whose kernels hold only the centroid values."""
    import tensorflow_model_optimization as tfmot

    return clone(tfmot.clustering.keras.strip_clustering(model))
