"""The one settings object: flag > environment > .env > default, loaded once."""

import os
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Mapping
from urllib.parse import unquote, urlsplit

from dotenv import dotenv_values

from kit.errors import ConfigError
from kit.redact import MASK, mask_url

# Setting name -> environment variable. A profile NAME reads NAME_<variable> first.
ENV_NAMES = {
    "db_url": "SUPABASE_DB_URL",
    "supabase_url": "SUPABASE_URL",
    "service_role_key": "SUPABASE_SERVICE_ROLE_KEY",
    "access_token": "SUPABASE_ACCESS_TOKEN",
    "project_ref": "SUPABASE_PROJECT_REF",
    "api_url": "SUPABASE_API_URL",
    "branch_url": "KIT_BRANCH_URL",
    "supabase_cli": "SUPABASE_CLI",
    "local_dir": "KIT_LOCAL_DIR",
    "pg_bin": "KIT_PG_BIN",
    "backup_dir": "KIT_BACKUP_DIR",
    "report_dir": "KIT_REPORT_DIR",
    "connect_timeout": "KIT_CONNECT_TIMEOUT",
    "pg_major": "KIT_PG_MAJOR",
    "cache_dir": "KIT_CACHE_DIR",
}
SECRET_FIELDS = ("service_role_key", "access_token")
PROFILE_FIELDS = ("db_url", "supabase_url", "service_role_key", "project_ref")


@dataclass(frozen=True)
class Settings:
    db_url: str | None = None
    target: str = "local"
    workdir: Path | None = None
    supabase_url: str | None = None
    service_role_key: str | None = None
    access_token: str | None = None
    project_ref: str | None = None
    api_url: str = "https://api.supabase.com"
    branch_url: str = "https://{ref}.supabase.co"
    supabase_cli: str | None = None
    local_dir: Path = field(default_factory=lambda: default_local_dir())
    pg_bin: Path | None = None
    pg_major: int = 17
    cache_dir: Path = field(default_factory=lambda: default_cache_dir())
    backup_dir: Path = Path("backups")
    report_dir: Path = Path("reports")
    connect_timeout: int = 10
    cwd: Path = field(default_factory=Path.cwd)

    def __repr__(self) -> str:
        shown = []
        for f in fields(self):
            value = getattr(self, f.name)
            if f.name in SECRET_FIELDS and value:
                value = MASK
            elif f.name == "db_url":
                value = mask_url(value)
            shown.append(f"{f.name}={value!r}")
        return f"Settings({', '.join(shown)})"

    __str__ = __repr__

    @property
    def secrets(self) -> tuple[str, ...]:
        """Values that must never be printed or written."""
        values = [getattr(self, name) for name in SECRET_FIELDS]
        values.append(db_password(self.db_url))
        return tuple(v for v in values if v)

    @property
    def is_local(self) -> bool:
        return self.db_url is None or is_local_url(self.db_url)

    def with_db_url(self, url: str) -> "Settings":
        return replace(self, db_url=url)


def default_local_dir(environ: Mapping[str, str] | None = None) -> Path:
    environ = os.environ if environ is None else environ
    base = environ.get("XDG_DATA_HOME") or str(Path(environ.get("HOME") or Path.home()) / ".local" / "share")
    return Path(base) / "supabase-kit" / "local"


def default_cache_dir(environ: Mapping[str, str] | None = None) -> Path:
    """Where server binaries are copied: as root a folder the server user can reach, else the user's cache."""
    environ = os.environ if environ is None else environ
    if os.geteuid() == 0:
        return Path("/var/lib/supabase-kit")
    base = environ.get("XDG_CACHE_HOME") or str(Path(environ.get("HOME") or Path.home()) / ".cache")
    return Path(base) / "supabase-kit"


def db_password(url: str | None) -> str | None:
    try:
        password = urlsplit(url or "").password
    except ValueError:
        return None
    return unquote(password) if password else None


def is_local_url(url: str) -> bool:
    try:
        host = urlsplit(url).hostname or ""
    except ValueError:
        return False
    return host in ("", "localhost", "::1") or host.startswith("127.") or host.startswith("/")


def load(flags: Mapping[str, object] | None = None, environ: Mapping[str, str] | None = None,
         cwd: Path | None = None) -> Settings:
    """Build the settings; `environ` defaults to the process environment (read only here)."""
    flags = {k: v for k, v in (flags or {}).items() if v is not None}
    environ = dict(os.environ if environ is None else environ)
    cwd = Path(cwd or Path.cwd())
    dotenv = _read_dotenv(cwd / ".env")
    target = str(flags.get("target") or environ.get("KIT_TARGET") or dotenv.get("KIT_TARGET") or "local")
    values: dict[str, object] = {"cwd": cwd, "target": target,
                                 "local_dir": default_local_dir(environ), "cache_dir": default_cache_dir(environ)}
    for name, var in ENV_NAMES.items():
        value = _lookup(name, var, target, environ, dotenv)
        if value not in (None, ""):
            values[name] = value
    if target != "local" and "db_url" not in flags and not _profile_value("db_url", target, environ, dotenv):
        raise ConfigError(f"unknown target {target!r}: set {target.upper()}_SUPABASE_DB_URL in .env "
                          "or the environment (see .env.example)")
    values.update({k: v for k, v in flags.items() if k in {f.name for f in fields(Settings)}})
    return Settings(**_typed(values))


def _lookup(name, var, target, environ, dotenv):
    if name in PROFILE_FIELDS and target != "local":
        value = _profile_value(name, target, environ, dotenv)
        if value:
            return value
    return environ.get(var) or dotenv.get(var)


def _profile_value(name, target, environ, dotenv):
    var = f"{target.upper()}_{ENV_NAMES[name]}"
    return environ.get(var) or dotenv.get(var)


def _read_dotenv(path: Path) -> dict[str, str]:
    if not path.is_file():
        return {}
    try:
        return {k: v for k, v in dotenv_values(path).items() if v is not None}
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"cannot read {path}: {exc.__class__.__name__}; fix or remove the file") from None


def _typed(values: dict[str, object]) -> dict[str, object]:
    for name in ("workdir", "local_dir", "pg_bin", "backup_dir", "report_dir", "cache_dir"):
        if values.get(name) is not None:
            values[name] = Path(str(values[name])).expanduser()
    if "connect_timeout" in values:
        try:
            values["connect_timeout"] = int(str(values["connect_timeout"]))
            assert values["connect_timeout"] > 0
        except (ValueError, AssertionError):
            raise ConfigError(f"KIT_CONNECT_TIMEOUT must be a whole number of seconds above 0, "
                              f"not {values['connect_timeout']!r}") from None
    if "pg_major" in values:
        given = str(values["pg_major"])
        if given not in ("15", "17", "18"):
            raise ConfigError(f"KIT_PG_MAJOR must be 15, 17 or 18 (the server majors package.json installs), "
                              f"not {given!r}")
        values["pg_major"] = int(given)
    for name in ("db_url", "supabase_url", "api_url"):
        url = values.get(name)
        if url is not None and "://" not in str(url):
            var = ENV_NAMES[name]
            raise ConfigError(f"{var} is not a URL ({mask_url(str(url))!r}); "
                              f"expected e.g. {_EXAMPLES[name]}")
    return values


_EXAMPLES = {
    "db_url": "postgresql://postgres:PASSWORD@db.PROJECT.supabase.co:5432/postgres",
    "supabase_url": "https://PROJECT.supabase.co",
    "api_url": "https://api.supabase.com",
}
