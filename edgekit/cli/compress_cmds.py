"""CLI commands of the compress stage (filled in by that stage)."""
COMMANDS: list = []
