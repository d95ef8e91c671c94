"""CLI commands for backup (filled in by its issue)."""


def register(commands, common) -> None:
    pass
