"""CLI commands for smoke (filled in by its issue)."""


def register(commands, common) -> None:
    pass
