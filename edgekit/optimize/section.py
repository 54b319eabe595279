"""The recipe's ``optimize:`` section: the :class:`OptimizeConfig` keys (target, max_accuracy_drop,
max_size, max_latency_us, budget_minutes, levels, epochs ...). ``edgekit run`` then searches
between train and export (``edgekit.stages.optimize``), and export takes the winning model."""
from __future__ import annotations

from typing import Any

from edgekit.errors import UsageError
from edgekit.optimize.config import OptimizeConfig


def parse_optimize(section: Any, compress: Any = None) -> OptimizeConfig | None:
    """The section as an OptimizeConfig (None when absent or null); the search chooses the compression,
    so a compress section beside it is refused."""
    if section is None:
        return None
    from edgekit.recipe.strict import parse_dataclass

    config = parse_dataclass(OptimizeConfig, section, "optimize")
    if compress is not None:
        raise UsageError("optimize searches for the compression settings itself: remove the compress section "
                         "(or the optimize section). Received: both.")
    return config
