"""Child processes that reach the database: the password goes through PGPASSWORD, never argv."""

import os
from typing import IO, AnyStr
from urllib.parse import urlsplit, urlunsplit

from kit import tls
from kit.settings import Settings, db_password

TLS_VARIABLES = ("PGSSLMODE", "PGSSLROOTCERT", "PGSSLCERT", "PGSSLKEY")  # written into the URL instead


def dbname(settings: Settings, url: str) -> str:
    """What a child is given to connect with: the URL with its TLS parameters (kit/tls.py), no password."""
    return url_without_password(tls.url_for(settings, url))


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


def pipe(stream: IO[AnyStr] | None) -> IO[AnyStr]:
    """A child's stream opened with subprocess.PIPE: never None then, which Popen's types cannot say."""
    if stream is None:
        raise ValueError("the child's stream was not opened with subprocess.PIPE")
    return stream


def child_env(url: str, extra: dict[str, str] | None = None) -> dict[str, str]:
    """The environment for a child that connects to `url`: ours, with PGPASSWORD the URL's password when it has
    one (else the PGPASSWORD the kit's own connections use too, if set)."""
    env = dict(os.environ)  # the child needs PATH, HOME and friends; it is not configuration
    for name in TLS_VARIABLES:  # the URL carries the TLS settings; a stray variable must not weaken them
        env.pop(name, None)
    password = db_password(url)
    if password:
        env["PGPASSWORD"] = password
    env.update(extra or {})
    return env
