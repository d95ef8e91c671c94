"""Files the kit writes (backups, manifests, reports): readable by their owner only, as they hold rows."""

import os
from pathlib import Path


def open_private(path: Path, mode: str = "w"):
    """Open `path` for writing, created or truncated with mode 0600; text modes are UTF-8."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    return os.fdopen(fd, mode, encoding=None if "b" in mode else "utf-8")
