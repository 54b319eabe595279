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

    @property
    def learning_rate(self) -> float:
        from edgekit.train.optimizers import DEFAULT_LR

        return self.lr if self.lr is not None else DEFAULT_LR[self.optimizer]

    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        if not d["model_options"]:
            del d["model_options"]
        return d


def _positive(name: str, value: Any, kind: type) -> None:
    ok = isinstance(value, (int, float)) and not isinstance(value, bool) and value > 0
    if kind is int:
        ok = ok and float(value).is_integer()
    if not ok:
        raise UsageError(f"{name} must be a positive {'integer' if kind is int else 'number'}. Received: {value!r}.")
