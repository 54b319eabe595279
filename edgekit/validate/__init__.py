"""Validation of exported artifacts on their own runtimes against the reference model, and the
export-and-validate pipeline step."""
from edgekit.validate.config import ValidateConfig
from edgekit.validate.step import export_and_validate
from edgekit.validate.validator import ValidationResult, infer_target, parse_artifacts, to_markdown, validate

__all__ = ["ValidateConfig", "ValidationResult", "export_and_validate", "infer_target", "parse_artifacts",
           "to_markdown", "validate"]
