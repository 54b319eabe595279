import pytest

from edgekit.errors import UsageError
from edgekit.train import DEFAULT_LR, OPTIMIZERS, SCHEDULES, TrainConfig


def test_registries_hold_what_the_docs_promise():
    assert set(OPTIMIZERS.names()) == {"gd", "sgd", "momentum", "nesterov", "adagrad", "rmsprop", "adam", "adamw"}
    assert set(SCHEDULES.names()) == {"constant", "exponential", "step", "cosine"}
    assert TrainConfig(optimizer="sgd").learning_rate == DEFAULT_LR["sgd"]
    assert TrainConfig(optimizer="sgd", lr=0.5).learning_rate == 0.5


def test_seed_defaults():
    c = TrainConfig()
    assert (c.model, c.optimizer, c.batch_size, c.epochs) == ("cnn", "adam", 64, 10)


def test_roundtrip_dict():
    c = TrainConfig(optimizer="momentum", schedule="cosine", l2=1e-4)
    assert TrainConfig.from_dict(c.to_dict()) == c


@pytest.mark.parametrize(
    "kw, match",
    [
        ({"optimizer": "adma"}, 'Did you mean "adam"'),
        ({"schedule": "stpe"}, 'Did you mean "step"'),
        ({"epochs": 0}, "epochs must be a positive integer"),
        ({"batch_size": -1}, "batch_size must be a positive integer"),
        ({"lr": 0.0}, "lr must be a positive number"),
        ({"l2": -1.0}, "l2 must be >= 0"),
        ({"decay_rate": 1.5}, r"decay_rate must be in \(0, 1\]"),
    ],
)
def test_bad_values(kw, match):
    with pytest.raises(UsageError, match=match):
        TrainConfig(**kw)


def test_unknown_key_suggests():
    with pytest.raises(UsageError, match='Did you mean "epochs"'):
        TrainConfig.from_dict({"epoch": 3})


def test_model_options_validated_and_backward_compatible():
    from edgekit.errors import UsageError
    from edgekit.train import TrainConfig

    plain = TrainConfig()
    assert "model_options" not in plain.to_dict()  # configs written before the field keep their hash
    assert TrainConfig.from_dict(plain.to_dict()) == plain
    mb = TrainConfig(model="mobilenet-v1", model_options={"alpha": 0.5})
    assert mb.to_dict()["model_options"] == {"alpha": 0.5}
    assert TrainConfig.from_dict(mb.to_dict()) == mb
    with pytest.raises(UsageError, match="Model 'resnet8' has no option 'alpha'"):
        TrainConfig(model="resnet8", model_options={"alpha": 0.5})
    with pytest.raises(UsageError, match="model_options must be a mapping"):
        TrainConfig(model_options=["alpha"])


def test_cli_model_option_parses_values():
    from edgekit.cli.train_cmds import _model_options
    from edgekit.errors import UsageError

    assert _model_options(("alpha=0.5",)) == {"alpha": 0.5}
    with pytest.raises(UsageError, match="--model-option must be KEY=VALUE"):
        _model_options(("alpha",))
