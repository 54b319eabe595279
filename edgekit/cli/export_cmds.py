"""CLI commands of the export stage (filled in by that stage)."""
COMMANDS: list = []
