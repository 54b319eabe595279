"""Training: optimizers and schedules by name, the fit loop, evaluation and sweeps."""
from edgekit.train.config import TrainConfig
from edgekit.train.evaluate import evaluate
from edgekit.train.optimizers import DEFAULT_LR, OPTIMIZERS
from edgekit.train.schedules import SCHEDULES
from edgekit.train.sweep import sweep
from edgekit.train.trainer import TrainResult, compile_for_training, fit, seed_everything, test_metrics, train

__all__ = ["TrainConfig", "TrainResult", "train", "fit", "compile_for_training", "seed_everything",
           "test_metrics", "evaluate", "sweep", "OPTIMIZERS", "SCHEDULES", "DEFAULT_LR"]
