"""The search space of ``optimize``: which layers each knob acts on, and a candidate (one point of
it) as the :class:`~edgekit.compress.CompressConfig` that builds it."""
from __future__ import annotations

import dataclasses
from typing import Any, Mapping

from edgekit.compress.config import CompressConfig
from edgekit.optimize.config import OptimizeConfig


@dataclasses.dataclass(frozen=True)
class Candidate:
    """One point: the resolution inside the model (``downsample`` 2: the stem strides twice as far),
    channels removed, sparsity and shared values per layer, and how it is quantized.

    ``baseline`` is the input model exported as it is (no compress stage at all); ``tune``
    multiplies every fine-tune's epochs (the search spends leftover time on longer fine-tunes)."""

    channels: tuple[tuple[str, float], ...] = ()
    prune: tuple[tuple[str, float], ...] = ()
    cluster: tuple[tuple[str, int], ...] = ()
    quantize: str = "qat"
    baseline: bool = False
    tune: int = 1
    downsample: int = 1

    @classmethod
    def of(cls, channels: Mapping[str, float] | None = None, prune: Mapping[str, float] | None = None,
           cluster: Mapping[str, int] | None = None, quantize: str = "qat", tune: int = 1,
           downsample: int = 1) -> "Candidate":
        """A candidate from mappings; zero values (the layer untouched) are left out."""
        def items(m: Mapping[str, Any] | None) -> tuple:
            return tuple(sorted((k, v) for k, v in (m or {}).items() if v))

        return cls(items(channels), items(prune), items(cluster), quantize, tune=tune, downsample=downsample)

    @property
    def key(self) -> str:
        """A stable name: the same knobs always give the same key (the resume state is keyed by it)."""
        if self.baseline:
            return "baseline"
        part = lambda name, kv: f"{name}[{','.join(f'{k}={v:g}' for k, v in kv)}]" if kv else ""
        body = " ".join(p for p in (f"downsample={self.downsample}" if self.downsample > 1 else "",
                                    part("channels", self.channels), part("prune", self.prune),
                                    part("cluster", self.cluster)) if p)
        return f"{body} {self.quantize}".strip() + (f" x{self.tune} epochs" if self.tune > 1 else "")

    def to_dict(self) -> dict[str, Any]:
        return {"channels": dict(self.channels), "prune": dict(self.prune), "cluster": dict(self.cluster),
                "quantize": self.quantize, "baseline": self.baseline, "tune": self.tune, "downsample": self.downsample}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> "Candidate":
        """The candidate :meth:`to_dict` wrote (a result in optimize.json or the resume state)."""
        if d.get("baseline"):
            return cls(baseline=True)
        return cls.of(d.get("channels"), d.get("prune"), d.get("cluster"), d.get("quantize", "qat"),
                      tune=int(d.get("tune", 1)), downsample=int(d.get("downsample", 1)))

    def compress_config(self, config: OptimizeConfig) -> CompressConfig | None:
        """The compress settings that build this candidate (None for the baseline: no compress stage)."""
        if self.baseline:
            return None
        kw: dict[str, Any] = dict(quantize=self.quantize, seed=config.seed, batch_size=config.batch_size,
                                  representative_samples=config.representative_samples, distill=False,
                                  max_drop=None)  # the search judges accuracy itself
        t = self.tune
        if self.channels or self.downsample > 1:  # one structure fine-tune
            kw.update(channels=dict(self.channels) or None, downsample=self.downsample,
                      channels_epochs=config.channels_epochs * t)
        if self.prune:
            kw.update(prune_layers=dict(self.prune), prune_schedule="polynomial", prune_epochs=config.prune_epochs * t)
        if self.cluster:
            kw.update(cluster_layers=dict(self.cluster), cluster_epochs=config.cluster_epochs * t)
        if self.quantize == "qat":
            kw.update(qat_epochs=config.qat_epochs * t)
        return CompressConfig(**kw)


BASELINE = Candidate(baseline=True)


@dataclasses.dataclass(frozen=True)
class Space:
    """The layers of a model each knob can act on (names, parameter counts)."""

    narrowable: tuple[str, ...]  # one name per channel group (Conv2D/Dense that may lose filters/units)
    prunable: tuple[str, ...]
    clusterable: tuple[str, ...]
    params: Mapping[str, int]
    channels: Mapping[str, int] = dataclasses.field(default_factory=dict)  # filters/units of each narrowable group
    downsample: bool = False  # the stem may stride twice as far (the features end in global pooling)

    def to_dict(self) -> dict[str, Any]:
        return {"narrowable": list(self.narrowable), "prunable": list(self.prunable),
                "clusterable": list(self.clusterable), "params": dict(self.params), "channels": dict(self.channels),
                "downsample": self.downsample}


def space_of(model) -> Space:
    """What can be compressed in ``model``: whether its stem may stride further, channel groups that
    may shrink (not the classifier, not behind a layer the rewiring cannot pass), and the layers tfmot
    prunes and clusters."""
    from edgekit.compress import channels as narrowing
    from edgekit.compress.cluster import clusterable_layers
    from edgekit.compress.layers import layer_params
    from edgekit.compress.prune import prunable_layers
    from edgekit.compress.resolution import blocker

    g = narrowing.walk(model)
    narrowable = []
    for members in g.groups().values():
        if not any(m in g.fixed or m in g.blocked for m in members) and g.sizes[members[0]] > 1:
            narrowable.append(members[0])
    return Space(tuple(narrowable), tuple(prunable_layers(model)), tuple(clusterable_layers(model)),
                 layer_params(model), {n: int(g.sizes[n]) for n in narrowable}, blocker(model) is None)
