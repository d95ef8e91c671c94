"""Files the kit writes (backups, manifests, reports): private, safely named, stamped in UTC.

They are readable by their owner only, as they hold rows.
"""

import os
from datetime import UTC, datetime
from pathlib import Path


def open_private(path: Path, mode: str = "w"):
    """Open `path` for writing, created or truncated with mode 0600 (an existing file too); text modes are UTF-8."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    os.fchmod(fd, 0o600)
    return os.fdopen(fd, mode, encoding=None if "b" in mode else "utf-8")


def safe_name(label: str) -> str:
    """`label` (a target or host-port-database) as one file or folder name."""
    safe = "".join(c if c.isalnum() or c in "-_." else "-" for c in label)
    return safe if safe.strip(".") else "target"


def utc_now() -> str:
    """The time as manifests and reports record it: 2026-11-25T18:04:05Z."""
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
