"""Recipes: YAML files that describe a whole run, and the runner with stage reuse."""
from edgekit.recipe.schema import (
    DataSection, ExportSection, ModelSection, Recipe, ValidateSection, apply_overrides, load_recipe,
)

__all__ = ["Recipe", "DataSection", "ModelSection", "ExportSection", "ValidateSection", "load_recipe",
           "apply_overrides", "run"]


def __getattr__(name: str):
    if name == "run":
        from edgekit.recipe.run import run

        return run
    raise AttributeError(name)
