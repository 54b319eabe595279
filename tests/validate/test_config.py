"""ValidateConfig: one place for the validation settings and their checks."""
from __future__ import annotations

import pytest
from click.testing import CliRunner

from edgekit.errors import UsageError
from edgekit.validate import ValidateConfig


@pytest.mark.parametrize("kw, message", [
    ({"max_diff": 0}, "max_diff must be > 0. Received: 0."),
    ({"max_diff": -1e-3}, "max_diff must be > 0. Received: -0.001."),
    ({"threads": 0}, "threads must be >= 1. Received: 0."),
    ({"runs": 0}, "runs must be >= 1. Received: 0."),
    ({"devices": "ssh://pi"}, "devices must be a list of device URIs such as ssh://pi@raspberrypi or "
                              "exec:///usr/bin/python3. Received: 'ssh://pi'."),
    ({"device_timeout_s": 0}, "device_timeout_s must be > 0. Received: 0."),
])
def test_bad_values_are_one_line_usage_errors(kw, message):
    with pytest.raises(UsageError) as e:
        ValidateConfig(**kw)
    assert str(e.value) == message


def test_dict_round_trip_and_unknown_keys():
    c = ValidateConfig(max_diff=1e-3, threads=2, runs=7, probe=False)
    assert ValidateConfig.from_dict(c.to_dict()) == c
    assert c.to_dict() == {"max_diff": 1e-3, "threads": 2, "runs": 7, "probe": False, "devices": [],
                           "device_timeout_s": 120.0}
    d = ValidateConfig(devices=["exec:///usr/bin/python3", " exec:///usr/bin/python3"], device_timeout_s=5)
    assert d.devices == ("exec:///usr/bin/python3",) and ValidateConfig.from_dict(d.to_dict()) == d
    with pytest.raises(UsageError, match="Unknown validate option 'max_dif'. Did you mean \"max_diff\""):
        ValidateConfig.from_dict({"max_dif": 1})
    assert ValidateConfig.of(c, runs=3) == c.replace(runs=3)
    assert ValidateConfig.of(None) == ValidateConfig()
    with pytest.raises(UsageError, match="Unknown validate option 'run'"):
        ValidateConfig.of(c, run=3)


def test_cli_options_take_their_defaults_from_the_dataclass():
    from edgekit.cli.main import cli

    cmd = cli.commands["validate"]
    opts = {p.name: p for p in cmd.params}
    d = ValidateConfig()
    assert (opts["max_diff"].default, opts["threads"].default, opts["runs"].default) == (d.max_diff, d.threads, d.runs)
    r = CliRunner().invoke(cli, ["export", "m.keras", "--target", "tflite", "--out", "o", "--runs", "0"])
    assert r.exit_code == 2 and r.output.strip().splitlines() == ["Error: runs must be >= 1. Received: 0."]


def test_recipe_validate_section_is_a_validate_config():
    from edgekit.recipe import Recipe

    r = Recipe.from_dict({"export": {"targets": ["tflite"]}, "validate": {"max_diff": 1e-3, "runs": 5}})
    assert isinstance(r.validate, ValidateConfig)
    assert r.validate.settings() == ValidateConfig(max_diff=1e-3, runs=5, probe=False)
    assert r.to_dict()["validate"] == {"enabled": True, "max_diff": 1e-3, "threads": None, "runs": 5, "devices": [],
                                       "device_timeout_s": 120.0}
    with pytest.raises(UsageError, match="validate: runs must be >= 1. Received: 0."):
        Recipe.from_dict({"validate": {"runs": 0}})
    with pytest.raises(UsageError, match="Unknown key validate.probe"):
        Recipe.from_dict({"validate": {"probe": True}})
