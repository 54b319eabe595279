"""CompressConfig: every choice of a compression run, frozen, validated, to/from dict."""
from __future__ import annotations

import dataclasses
import math
import typing
from typing import Any, Mapping

from edgekit.compress.resolution import FACTORS
from edgekit.errors import UsageError
from edgekit.registry import did_you_mean, reject_unknown_keys, renamed_keys

PRUNE_SCHEDULES = ("constant", "polynomial")
CLUSTER_INITS = ("kmeans++", "linear", "density", "random")
QUANTIZE_MODES = ("none", "qat", "ptq")


MAX_STAGE_EPOCHS = 10  # the cap of a fine-tune that stops on validation loss
STAGE_PATIENCE = 2  # epochs without a better validation loss before it stops
PRUNE_EPOCHS = 4  # the pruning fine-tune's default length


@dataclasses.dataclass(frozen=True)
class CompressConfig:
    """How to compress a trained model: prune -> cluster -> quantize, each with a short fine-tune.

    ``skip_layers`` are left out of the model-wide ``prune`` and ``cluster`` values (e.g.
    the first conv and the classifier); a per-layer value still applies to them.

    Pruning: ``prune`` is the target sparsity of every prunable layer (conv/dense kernels)
    that is not in ``skip_layers``; ``prune_layers`` sets or overrides it per layer
    (``{"dense1": 0.9}``). ``prune_structure="2:4"`` prunes M of every N consecutive
    weights instead (sparsity M/N in each pruned layer).

    Clustering: ``cluster`` is the number of shared values (centroids) per kernel of every
    clusterable layer not skipped; ``cluster_layers`` sets or overrides it per layer.
    Clustering after pruning keeps the zeros (sparsity-preserving clustering).

    Channels (structured pruning, before everything else; edgekit/compress/channels.py):
    ``channels`` is the fraction of filters/units REMOVED from every Conv2D/Dense whose
    channels can shrink (not the classifier, not ``skip_layers``), or a mapping per layer
    (``{"conv2": 0.5}``); the result is a narrower dense model, fine-tuned
    ``channels_epochs`` epochs at the full rate.

    Resolution (``downsample``, before channels; edgekit/compress/resolution.py): 2 multiplies the
    stem convolution's stride by 2, so every later layer computes on a quarter of the positions while
    the model takes the same input (models whose features end in global pooling); fine-tuned like
    channels, in the same fine-tune when both run.

    Distillation (``distill``): a fine-tune's loss is
    ``distill_alpha * CE(labels) + (1 - distill_alpha) * T^2 * KL(teacher || student)``
    at ``temperature`` T, the teacher being the input (uncompressed) model. ``None`` (default):
    the channels fine-tune only; ``True``: every fine-tune; ``False``: none.

    Quantization: ``qat`` fine-tunes with fake-quantization (collaborative PQAT / CQAT /
    PCQAT when pruning and/or clustering ran first); ``ptq`` only records that the
    export stage should quantize after training; ``none`` keeps float32. ``qat_calibrate``
    starts every QAT activation range at the float model's range on the representative images
    (tfmot starts them at [-6, 6] and moves them 0.1% per step: a short fine-tune keeps them there).
    """

    channels: float | Mapping[str, float] | None = None
    channels_epochs: int | None = None
    downsample: int = 1
    prune: float | None = None
    prune_layers: Mapping[str, float] = dataclasses.field(default_factory=dict)
    skip_layers: tuple[str, ...] = ()
    prune_schedule: str = "constant"
    prune_structure: str | None = None  # "M:N", e.g. "2:4"
    prune_begin_step: int = 0
    prune_end_step: int | None = None  # None: 70% of the pruning fine-tune's steps
    prune_frequency: int | None = None  # None: about 20 mask updates over the fine-tune
    cluster: int | None = None
    cluster_layers: Mapping[str, int] = dataclasses.field(default_factory=dict)
    cluster_init: str = "kmeans++"
    quantize: str = "none"
    # None: each fine-tune but pruning's runs up to MAX_STAGE_EPOCHS, stopping when validation loss has not
    # improved for STAGE_PATIENCE epochs (best weights kept); pruning runs PRUNE_EPOCHS (its schedule needs a
    # length). A number: exactly that many epochs, pruning twice that
    epochs_per_stage: int | None = None
    prune_epochs: int | None = None  # None: 2 x epochs_per_stage
    cluster_epochs: int | None = None
    qat_epochs: int | None = None
    optimizer: str = "adam"
    lr: float | None = None  # None: the optimizer's default rate
    cluster_lr: float | None = None  # None: lr / 10 (centroids move fast)
    qat_lr: float | None = None  # None: lr / 10
    schedule: str = "constant"
    batch_size: int = 64
    seed: int = 0
    representative_samples: int = 300  # calibration images (int8 .tflite in the report)
    # None: only the channels fine-tune learns from the input model. A narrower network relearns its
    # features; on keras.applications MobileNetV2 channels 0.25 lost 4.0 pt without the teacher, 1.7
    # with it. The weight-level stages stay on labels: distilling them cost the reference CNN's default
    # PCQAT 0.5-0.7 pt (docs/compress.md, "Defaults"). True: every fine-tune; False: none
    distill: bool | None = None
    distill_alpha: float = 0.5
    # QAT activation ranges start at the float model's (on the representative images) instead of
    # tfmot's [-6, 6], which a short fine-tune barely moves: MobileNetV1-0.25 QAT agreement 92.7% ->
    # 98.2% (benchmarks/standard_models.py), keras.applications MobileNetV2 prune 0.5 + QAT 1.83 ->
    # -0.33 pt drop (benchmarks/keras_apps_compress.py)
    qat_calibrate: bool = True
    temperature: float = 4.0
    # BatchNorm moving statistics re-estimated on training images after every stage (NNCF's default):
    # keras.applications' momentum 0.999 leaves them at the weights before a short fine-tune
    bn_adapt: bool = True
    # the most the compressed model may lose against the input, in points of validation accuracy;
    # beyond it the run is written and fails (exit 1) with the numbers; None: no limit
    max_drop: float | None = 2.0

    KEY_ALIASES: typing.ClassVar[dict[str, str]] = {"representative_size": "representative_samples"}  # old spellings

    def __post_init__(self) -> None:
        # normalise containers so the frozen config hashes/serialises the same way
        object.__setattr__(self, "prune_layers", dict(self.prune_layers or {}))
        object.__setattr__(self, "cluster_layers", dict(self.cluster_layers or {}))
        object.__setattr__(self, "skip_layers", tuple(self.skip_layers or ()))
        if isinstance(self.channels, Mapping):
            object.__setattr__(self, "channels", dict(self.channels))
            for name, v in self.channels.items():
                _fraction(f"channels[{name!r}]", v)
        elif self.channels is not None:
            _fraction("channels", self.channels)
        if self.downsample not in FACTORS or isinstance(self.downsample, bool):
            raise UsageError(f"downsample must be 1 (off) or 2 (the stem's stride doubled). Received: {self.downsample!r}.")
        if self.distill is not None and not isinstance(self.distill, bool):
            raise UsageError(f"distill must be true, false or null (the channels fine-tune only). "
                             f"Received: {self.distill!r}.")
        for name in ("bn_adapt", "qat_calibrate"):
            if not isinstance(getattr(self, name), bool):
                raise UsageError(f"{name} must be true or false. Received: {getattr(self, name)!r}.")
        if self.max_drop is not None and not (isinstance(self.max_drop, (int, float)) and not isinstance(
                self.max_drop, bool) and 0 <= self.max_drop <= 100):
            raise UsageError(f"max_drop must be a number of accuracy points from 0 to 100. Received: {self.max_drop!r}.")
        from edgekit.train.distill import check_distill

        check_distill(self.distill_alpha, self.temperature)
        if self.prune is not None:
            _sparsity("prune", self.prune)
        for name, v in self.prune_layers.items():
            _sparsity(f"prune_layers[{name!r}]", v)
        if self.cluster is not None:
            _clusters("cluster", self.cluster)
        for name, v in self.cluster_layers.items():
            _clusters(f"cluster_layers[{name!r}]", v)
        _choice("prune_schedule", self.prune_schedule, PRUNE_SCHEDULES)
        _choice("cluster_init", self.cluster_init, CLUSTER_INITS)
        _choice("quantize", self.quantize, QUANTIZE_MODES)
        if self.prune_structure is not None:
            self.structure  # validates
        for name in ("batch_size", "representative_samples"):
            _positive_int(name, getattr(self, name))
        for name in ("epochs_per_stage", "channels_epochs", "prune_epochs", "cluster_epochs", "qat_epochs", "prune_frequency", "prune_end_step"):
            if getattr(self, name) is not None:
                _positive_int(name, getattr(self, name))
        if not isinstance(self.prune_begin_step, int) or self.prune_begin_step < 0:
            raise UsageError(f"prune_begin_step must be an integer >= 0. Received: {self.prune_begin_step!r}.")
        if self.prune_end_step is not None and self.prune_end_step <= self.prune_begin_step:
            raise UsageError(
                f"prune_end_step must be after prune_begin_step ({self.prune_begin_step}). "
                f"Received: {self.prune_end_step}."
            )
        for name in ("lr", "cluster_lr", "qat_lr"):
            v = getattr(self, name)
            if v is not None and not (isinstance(v, (int, float)) and not isinstance(v, bool) and v > 0 and math.isfinite(v)):
                raise UsageError(f"{name} must be a positive number. Received: {v!r}.")
        self.train_config("prune")  # validates optimizer / schedule names

    # -- derived ---------------------------------------------------------------------
    @property
    def structure(self) -> tuple[int, int] | None:
        """``prune_structure`` as ``(m, n)``: m zeros in every n consecutive weights."""
        if self.prune_structure is None:
            return None
        try:
            m, n = (int(v) for v in str(self.prune_structure).split(":"))
        except ValueError:
            raise UsageError(
                f"prune_structure must be M:N such as 2:4. Received: {self.prune_structure!r}."
            ) from None
        if not 0 < m < n:
            raise UsageError(f"prune_structure M:N needs 0 < M < N. Received: {self.prune_structure!r}.")
        return m, n

    @property
    def narrows(self) -> bool:
        """True when channels (whole filters/units) are removed."""
        return self.channels is not None

    @property
    def downsamples(self) -> bool:
        """True when the stem strides further (the model computes at a lower resolution)."""
        return self.downsample > 1

    @property
    def prunes(self) -> bool:
        return self.prune is not None or bool(self.prune_layers) or self.structure is not None

    @property
    def clusters(self) -> bool:
        return self.cluster is not None or bool(self.cluster_layers)

    @property
    def qat(self) -> bool:
        return self.quantize == "qat"

    @property
    def technique(self) -> str:
        """Short name of the combination: prune, cluster, PQAT, CQAT, PCQAT, QAT, channels+PQAT, ..."""
        head = ("resolution+" if self.downsamples else "") + ("channels+" if self.narrows else "")
        if self.qat:
            return head + ("P" if self.prunes else "") + ("C" if self.clusters else "") + "QAT"
        parts = [n for n, on in (("resolution", self.downsamples), ("channels", self.narrows),
                                 ("prune", self.prunes), ("cluster", self.clusters)) if on]
        if self.quantize == "ptq":
            parts.append("PTQ")
        return "+".join(parts) or "none"

    def _own_epochs(self, stage: str) -> int | None:
        return {"channels": self.channels_epochs, "resolution": self.channels_epochs, "prune": self.prune_epochs,
                "cluster": self.cluster_epochs,
                "quantize": self.qat_epochs}[stage]

    def distills(self, stage: str) -> bool:
        """True when ``stage``'s fine-tune learns from the input model's outputs too."""
        return bool(self.distill) if self.distill is not None else stage in ("channels", "resolution")

    def stops_early(self, stage: str) -> bool:
        """True when ``stage``'s fine-tune ends on validation loss (no epoch count given for it)."""
        return stage != "prune" and self.epochs_per_stage is None and self._own_epochs(stage) is None

    def stage_epochs(self, stage: str) -> int:
        """The epochs of ``stage``'s fine-tune (the cap, when it stops early)."""
        own = self._own_epochs(stage)
        if own:
            return own
        if self.epochs_per_stage is None:
            return PRUNE_EPOCHS if stage == "prune" else MAX_STAGE_EPOCHS
        # pruning gets twice the others' fine-tune by default: on the reference CNN's default PCQAT, 4 pruning
        # epochs instead of 2 took the drop from 0.25 to -0.17 pt (3 seeds, docs/compress.md "Defaults")
        return 2 * self.epochs_per_stage if stage == "prune" else self.epochs_per_stage

    def train_config(self, stage: str):
        """The TrainConfig of one stage's fine-tune (optimizer, schedule, rate, batch, seed)."""
        from edgekit.train import TrainConfig
        from edgekit.train.optimizers import OPTIMIZERS, DEFAULT_LR

        OPTIMIZERS.get(self.optimizer)
        lr = self.lr if self.lr is not None else DEFAULT_LR[self.optimizer]
        if stage == "cluster":
            lr = self.cluster_lr if self.cluster_lr is not None else lr / 10
        elif stage == "quantize":
            lr = self.qat_lr if self.qat_lr is not None else lr / 10
        return TrainConfig(
            optimizer=self.optimizer, lr=lr, schedule=self.schedule, batch_size=self.batch_size,
            seed=self.seed, epochs=self.stage_epochs(stage),
            early_stopping=STAGE_PATIENCE if self.stops_early(stage) else 0,
        )

    # -- (de)serialisation -------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d["skip_layers"] = list(self.skip_layers)
        if isinstance(self.channels, Mapping):
            d["channels"] = dict(self.channels)
        return d

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> "CompressConfig":
        d = renamed_keys("compress", d, cls.KEY_ALIASES)
        reject_unknown_keys("compress", d, [f.name for f in dataclasses.fields(cls)])
        if "skip_layers" in d and d["skip_layers"] is not None:
            d["skip_layers"] = tuple(d["skip_layers"])
        return cls(**d)

    def replace(self, **changes: Any) -> "CompressConfig":
        return dataclasses.replace(self, **changes)


def _sparsity(name: str, v: Any) -> None:
    ok = isinstance(v, (int, float)) and not isinstance(v, bool) and 0 <= v < 1
    if not ok:
        raise UsageError(f"{name} (a sparsity) must be in [0, 1). Received: {v!r}.")


def _fraction(name: str, v: Any) -> None:
    ok = isinstance(v, (int, float)) and not isinstance(v, bool) and 0 < v < 1
    if not ok:
        raise UsageError(f"{name} (the fraction of channels removed) must be in (0, 1). Received: {v!r}.")


def _clusters(name: str, v: Any) -> None:
    if not (isinstance(v, int) and not isinstance(v, bool) and v >= 2):
        raise UsageError(f"{name} (a number of clusters) must be an integer >= 2. Received: {v!r}.")
    if v > 256:
        raise UsageError(f"{name} must be at most 256 (int8 holds 256 values). Received: {v}.")


def _choice(name: str, v: Any, choices: tuple[str, ...]) -> None:
    if v not in choices:
        raise UsageError(f"Unknown {name} {v!r}. Expected one of: {', '.join(choices)}.{did_you_mean(str(v), list(choices))}")


def _positive_int(name: str, v: Any) -> None:
    if not (isinstance(v, int) and not isinstance(v, bool) and v > 0):
        raise UsageError(f"{name} must be a positive integer. Received: {v!r}.")
