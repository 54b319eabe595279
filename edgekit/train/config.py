"""TrainConfig: every choice of a training run, frozen, validated, to/from dict."""
from __future__ import annotations

import dataclasses
from typing import Any, Mapping

from edgekit.configs import FrozenConfig
from edgekit.errors import UsageError


@dataclasses.dataclass(frozen=True)
class TrainConfig(FrozenConfig):
    """How to train. ``lr=None`` takes the optimizer's default rate; ``model_options`` are the
    zoo model's own keywords (``{"alpha": 0.5}`` for mobilenet-v1), left out of ``to_dict``
    when empty so configs written before the field existed keep their hash."""

    KIND = "train"

    model: str = "cnn"
    model_options: Mapping[str, Any] = dataclasses.field(default_factory=dict)
    optimizer: str = "adam"
    lr: float | None = None
    schedule: str = "constant"
    decay_rate: float = 0.9  # exponential: factor per epoch
    step_every: int = 3  # step: epochs between drops
    step_factor: float = 0.5  # step: factor of each drop
    cosine_alpha: float = 0.0  # cosine: final rate as a fraction of lr
    l2: float = 0.0
    epochs: int = 10
    batch_size: int = 64
    seed: int = 0
    early_stopping: int = 0  # patience in epochs on val_loss; 0 = off
    augment: bool = False  # random shifts of training images (input pipeline only)
    deterministic: bool = False  # TF op determinism: guaranteed, ~3-5% slower (see seed_everything)
    strategy: str = "default"
    mixed_precision: bool = False
    jit: bool = False
    teacher: str | None = None  # a .keras model to distill from (see edgekit/train/distill.py)
    distill_alpha: float = 0.5  # weight of the label loss; 1 - alpha goes to the teacher's
    temperature: float = 4.0
    # transfer learning (edgekit/models/backbones.py, docs/transfer.md); left out of to_dict while unset
    pretrained: str | None = None  # "imagenet" or a weights file / trained .keras model of the backbone
    freeze_backbone: bool = False  # phase 1 trains only the head
    fine_tune_from: str | int | None = None  # phase 2: unfreeze from this layer (name or model.layers index)
    fine_tune_lr: float | None = None  # phase 2's rate; default lr / 10
    fine_tune_epochs: int | None = None  # phase 2's epochs; default epochs

    TRANSFER_KEYS = ("pretrained", "freeze_backbone", "fine_tune_from", "fine_tune_lr", "fine_tune_epochs")

    def __post_init__(self) -> None:
        from edgekit.models import MODELS
        from edgekit.train.optimizers import OPTIMIZERS
        from edgekit.train.schedules import SCHEDULES

        from edgekit.models.zoo import check_options

        MODELS.get(self.model)
        if not isinstance(self.model_options, Mapping):
            raise UsageError(f"model_options must be a mapping of option names to values. "
                             f"Received: {self.model_options!r}.")
        object.__setattr__(self, "model_options", dict(self.model_options))
        check_options(self.model, self.model_options)
        OPTIMIZERS.get(self.optimizer)
        SCHEDULES.get(self.schedule)
        from edgekit.train.strategy import STRATEGIES

        STRATEGIES.get(self.strategy)
        _positive("epochs", self.epochs, int)
        _positive("batch_size", self.batch_size, int)
        _positive("step_every", self.step_every, int)
        if self.lr is not None:
            _positive("lr", self.lr, float)
        for name in ("decay_rate", "step_factor"):
            v = getattr(self, name)
            if not 0 < v <= 1:
                raise UsageError(f"{name} must be in (0, 1]. Received: {v}.")
        if not 0 <= self.cosine_alpha <= 1:
            raise UsageError(f"cosine_alpha must be in [0, 1]. Received: {self.cosine_alpha}.")
        if self.l2 < 0:
            raise UsageError(f"l2 must be >= 0. Received: {self.l2}.")
        if self.teacher is not None:
            from edgekit.train.distill import check_distill

            check_distill(self.distill_alpha, self.temperature)
        if self.early_stopping < 0:
            raise UsageError(f"early_stopping must be >= 0 epochs. Received: {self.early_stopping}.")
        self._check_transfer()

    def _check_transfer(self) -> None:
        from edgekit.models.backbones import check_pretrained, is_backbone

        if self.pretrained is not None:
            check_pretrained(self.model, self.model_options, self.pretrained)
        if not isinstance(self.freeze_backbone, bool):
            raise UsageError(f"freeze_backbone must be true or false. Received: {self.freeze_backbone!r}.")
        if (self.freeze_backbone or self.fine_tune_from is not None) and self.pretrained is None:
            what = "freeze_backbone" if self.freeze_backbone else "fine_tune_from"
            hint = "" if is_backbone(self.model) else f" ({self.model} has none: use a backbone such as mobilenet-v2)"
            raise UsageError(f"{what} needs pretrained weights (--pretrained imagenet or PATH){hint}: "
                             "a frozen random backbone learns nothing.")
        if self.fine_tune_from is not None:
            ok = isinstance(self.fine_tune_from, str) and self.fine_tune_from.strip() or \
                isinstance(self.fine_tune_from, int) and not isinstance(self.fine_tune_from, bool)
            if not ok:
                raise UsageError(f"fine_tune_from must be a layer name or index. Received: {self.fine_tune_from!r}.")
            if not self.freeze_backbone:
                raise UsageError("fine_tune_from is phase 2, after phase 1 trains the head on a frozen backbone: "
                                 "add --freeze-backbone (recipe: freeze_backbone: true).")
            if self.teacher is not None:
                raise UsageError("teacher (distillation) and fine_tune_from (two phases) do not combine yet; "
                                 "drop one of them.")
        else:
            for name in ("fine_tune_lr", "fine_tune_epochs"):
                if getattr(self, name) is not None:
                    raise UsageError(f"{name} sets phase 2, which needs fine_tune_from (the layer to unfreeze from).")
        if self.fine_tune_lr is not None:
            _positive("fine_tune_lr", self.fine_tune_lr, float)
        if self.fine_tune_epochs is not None:
            _positive("fine_tune_epochs", self.fine_tune_epochs, int)

    @property
    def two_phase(self) -> bool:
        """Head on a frozen backbone, then fine-tuning from ``fine_tune_from``."""
        return self.fine_tune_from is not None

    def fine_tune_config(self) -> "TrainConfig":
        """The config phase 2 trains with: ``fine_tune_lr`` (default lr / 10) for ``fine_tune_epochs`` (default epochs)."""
        return self.replace(lr=self.fine_tune_lr if self.fine_tune_lr is not None else self.learning_rate / 10,
                            epochs=self.fine_tune_epochs or self.epochs)

    @property
    def learning_rate(self) -> float:
        from edgekit.train.optimizers import DEFAULT_LR

        return self.lr if self.lr is not None else DEFAULT_LR[self.optimizer]

    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        if not d["model_options"]:
            del d["model_options"]
        for k in self.TRANSFER_KEYS:  # configs written before transfer learning keep their hash
            if d[k] is None or d[k] is False:
                del d[k]
        return d


def _positive(name: str, value: Any, kind: type) -> None:
    ok = isinstance(value, (int, float)) and not isinstance(value, bool) and value > 0
    if kind is int:
        ok = ok and float(value).is_integer()
    if not ok:
        raise UsageError(f"{name} must be a positive {'integer' if kind is int else 'number'}. Received: {value!r}.")
