"""Child processes that reach the database: the password goes through PGPASSWORD, never argv."""

import os
from urllib.parse import urlsplit, urlunsplit

from kit.settings import db_password


def url_without_password(url: str) -> str:
    parts = urlsplit(url)
    if parts.password is None:
        return url
    user = parts.username or ""
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    netloc = f"{user}@{host}" + (f":{parts.port}" if parts.port else "")
    return urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))


def child_env(url: str, extra: dict[str, str] | None = None) -> dict[str, str]:
    """The environment for a child that connects to `url`: ours, plus PGPASSWORD from the URL."""
    env = dict(os.environ)  # the child needs PATH, HOME and friends; it is not configuration
    env.pop("PGPASSWORD", None)
    password = db_password(url)
    if password:
        env["PGPASSWORD"] = password
    env.update(extra or {})
    return env
