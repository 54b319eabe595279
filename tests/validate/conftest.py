"""The validate tests reuse the session-wide export of every target."""
from tests.export.conftest import exported_all  # noqa: F401
