"""CLI commands for push (filled in by its issue)."""


def register(commands, common) -> None:
    pass
