"""Magnitude pruning (tfmot ``prune_low_magnitude``): per-layer targets, constant or
polynomial-decay schedules, optional M:N structured sparsity, and stripping."""
from __future__ import annotations

import math

from edgekit.compress.config import CompressConfig
from edgekit.compress.layers import clone, kernel_of, resolve_names
from edgekit.errors import UsageError


def prunable_layers(model) -> list[str]:
    """Layers tfmot really prunes: a kernel, and tfmot names at least one weight to prune.

    tfmot 0.8.1 lists DepthwiseConv2D as supported but prunes none of its weights (its
    registry maps it to no weight names), so such a layer is left out here rather than
    reported at a sparsity it never reaches (see ``unprunable_layers``).
    """
    return [layer.name for layer in model.layers if _prune_weight_names(layer)]


def unprunable_layers(model) -> list[str]:
    """Layers with a kernel that tfmot accepts but prunes nothing of (e.g. DepthwiseConv2D)."""
    return [layer.name for layer in model.layers
            if kernel_of(layer) is not None and _prune_weight_names(layer) == ()]


def _prune_weight_names(layer) -> tuple[str, ...] | None:
    """The weights tfmot prunes in ``layer`` (None: not prunable at all, () : accepted but none)."""
    from tensorflow_model_optimization.python.core.sparsity.keras.prunable_layer import PrunableLayer
    from tensorflow_model_optimization.python.core.sparsity.keras.prune_registry import PruneRegistry

    if kernel_of(layer) is None:
        return None
    if isinstance(layer, PrunableLayer):
        return ("custom",)
    if not PruneRegistry.supports(layer):
        return None
    try:
        return tuple(PruneRegistry._weight_names(layer))  # noqa: SLF001 (tfmot has no public accessor)
    except KeyError:  # a layer supported another way (e.g. a recurrent cell): trust supports()
        return ("kernel",)


def layer_targets(model, config: CompressConfig) -> dict[str, float]:
    """Target sparsity per layer name (only layers that get pruned, target > 0)."""
    allowed = prunable_layers(model)
    resolve_names(model, config.prune_layers, "prune_layers (--prune-layer)", allowed)
    resolve_names(model, config.skip_layers, "skip_layers (--skip-layer)", [l.name for l in model.layers])
    if not config.prunes:
        return {}
    default = config.prune
    structure = config.structure
    if structure is not None and default is None and not config.prune_layers:
        default = structure[0] / structure[1]
    targets = {}
    for name in allowed:
        if name in config.prune_layers:
            t = config.prune_layers[name]
        elif name in config.skip_layers or default is None:
            continue
        else:
            t = default
        if structure is not None:
            if not _fits_structure(model.get_layer(name), structure[1]):
                if name in config.prune_layers:
                    raise UsageError(
                        f"Layer {name!r} cannot take {config.prune_structure} sparsity: its "
                        f"{_in_channels(model.get_layer(name))} input channels are not a multiple of "
                        f"{structure[1]}."
                    )
                continue  # e.g. the first conv on a 1-channel image: left dense
            t = structure[0] / structure[1]
        if t > 0:
            targets[name] = float(t)
    return targets


def _in_channels(layer) -> int:
    """Size of the axis M:N groups run along (input channels; TFLite's innermost kernel axis)."""
    k = kernel_of(layer)
    return int(k.shape[-2])


def _fits_structure(layer, n: int) -> bool:
    return _in_channels(layer) % n == 0


def schedule_steps(config: CompressConfig, total_steps: int) -> tuple[int, int, int]:
    """(begin, end, frequency) in optimizer steps for a fine-tune of ``total_steps``."""
    begin = config.prune_begin_step
    end = config.prune_end_step or max(begin + 1, int(math.ceil(0.7 * total_steps)))
    if begin >= total_steps:
        raise UsageError(
            f"prune_begin_step {begin} is past the end of the pruning fine-tune ({total_steps} steps). "
            "Lower it or raise prune_epochs."
        )
    if end > total_steps:
        raise UsageError(
            f"prune_end_step {end} is past the end of the pruning fine-tune ({total_steps} steps): the "
            "target sparsity would never be reached. Lower it or raise prune_epochs."
        )
    freq = config.prune_frequency or max(1, (end - begin) // 20)
    if config.prune_schedule == "polynomial" and (end - begin) % freq:
        if config.prune_end_step is not None and config.prune_frequency is not None:
            raise UsageError(
                f"prune_end_step - prune_begin_step ({end - begin}) must be a multiple of prune_frequency "
                f"({freq}), or the final sparsity is never applied."
            )
        end = begin + (end - begin) // freq * freq  # end on a pruning turn
    return begin, end, freq


def make_schedule(config: CompressConfig, target: float, total_steps: int):
    import tensorflow_model_optimization as tfmot

    begin, end, freq = schedule_steps(config, total_steps)
    S = tfmot.sparsity.keras
    if config.prune_schedule == "polynomial" and config.structure is None:
        return S.PolynomialDecay(initial_sparsity=0.0, final_sparsity=target, begin_step=begin, end_step=end,
                                 frequency=freq)
    return S.ConstantSparsity(target, begin_step=begin, end_step=-1 if config.prune_end_step is None else end,
                              frequency=freq)


def apply_pruning(model, targets: dict[str, float], config: CompressConfig, total_steps: int):
    """A pruning-wrapped copy of ``model`` (the input's variables are never touched)."""
    import tensorflow_model_optimization as tfmot
    from edgekit._lazy import keras

    work = clone(model)
    structure = config.structure

    def wrap(layer):
        if layer.name not in targets:
            return layer
        kw = {"sparsity_m_by_n": structure} if structure else {}
        try:
            return tfmot.sparsity.keras.prune_low_magnitude(
                layer, pruning_schedule=make_schedule(config, targets[layer.name], total_steps), **kw)
        except ValueError as e:
            raise UsageError(f"Layer {layer.name!r} cannot be pruned this way: {str(e).splitlines()[0]}") from None

    return keras().models.clone_model(work, clone_function=wrap)


def describe_emptied(emptied: dict[str, list[int]]) -> str:
    """One line for the layers that pruning left with whole output channels (filters, units) of zeros."""
    parts = ", ".join(f"{name} {n}/{c}" for name, (n, c) in emptied.items())
    return (f"output channels left without any weight (they only pass their bias on): {parts}; if accuracy "
            "drops, leave such small layers out (--skip-layer) or prune them less (--prune-layer)")


def callbacks() -> list:
    import tensorflow_model_optimization as tfmot

    return [tfmot.sparsity.keras.UpdatePruningStep()]


def strip(model):
    """The plain model with the pruned (zeroed) kernels and no wrappers."""
    import tensorflow_model_optimization as tfmot

    return clone(tfmot.sparsity.keras.strip_pruning(model))
