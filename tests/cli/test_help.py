"""Every command answers --help, quickly and without importing TensorFlow."""
import subprocess
import sys

import pytest
from click.testing import CliRunner

from edgekit.cli.main import cli

COMMANDS = sorted(cli.commands)


def test_core_commands_are_registered():
    assert {"train", "evaluate", "sweep", "models"} <= set(COMMANDS)


@pytest.mark.parametrize("name", COMMANDS)
def test_help(name):
    r = CliRunner().invoke(cli, [name, "--help"])
    assert r.exit_code == 0, r.output
    assert "Usage: " in r.output and name in r.output
    assert "--help" in r.output


def test_root_help_does_not_import_tensorflow():
    code = "import sys; from edgekit.cli.main import cli; assert 'tensorflow' not in sys.modules, 'tf imported'"
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)
