"""Validation of exported artifacts on their own runtimes against the Keras reference."""
from edgekit.validate.validator import ValidationResult, infer_target, parse_artifacts, to_markdown, validate

__all__ = ["ValidationResult", "infer_target", "parse_artifacts", "to_markdown", "validate"]
