"""The one settings object, loaded once from flags, the environment and .env files.

Precedence: flag > environment > .env of the current folder > .env of the app's folder (--workdir,
else the nearest folder upward holding supabase/migrations) > default."""

import os
from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

from dotenv import dotenv_values

from kit import urls
from kit.errors import ConfigError
from kit.redact import MASK, mask_url

# Setting name -> environment variable; variables() says which ones a named target reads instead.
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
    "sslmode": "PGSSLMODE",  # libpq's own variables: read here and written into every URL (kit/tls.py)
    "sslrootcert": "PGSSLROOTCERT",
    "sslcert": "PGSSLCERT",
    "sslkey": "PGSSLKEY",
}
SECRET_FIELDS = ("service_role_key", "access_token")
CERT_FILES = ("sslrootcert", "sslcert", "sslkey")
PROFILE_FIELDS = ("db_url", "supabase_url", "service_role_key", "project_ref")
DEFAULT_TARGET = "local"
LOCAL_DEFAULT = "the local default"  # db_url_from when local.resolve started or found the kit's own server


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
    sslmode: str | None = None
    sslrootcert: str | None = None
    sslcert: str | None = None
    sslkey: str | None = None
    allow_plaintext: bool = False  # --allow-plaintext: sslmode disable, allow or prefer to a non-local host
    expand: bool = False  # --expand: the first of the change's two steps (the kit's own folder: its expand file)
    cwd: Path = field(default_factory=Path.cwd)
    db_url_from: str | None = None  # "--db-url", the variable it was read from, or LOCAL_DEFAULT
    db_url_file: Path | None = None  # the .env file the variable was read from, if not the environment
    read_from: dict = field(default_factory=dict, repr=False, hash=False)  # setting -> the variable load() read it from

    def __repr__(self) -> str:
        shown = []
        for f in (f for f in fields(self) if f.repr):
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

    def with_db_url(self, url: str, source: str | None = None) -> "Settings":
        if source:
            return replace(self, db_url=url, db_url_from=source, db_url_file=None)
        return replace(self, db_url=url)

    @property
    def db_url_source(self) -> str:
        """Where the URL came from, for advice: `--db-url`, `SUPABASE_DB_URL`, `STAGING_SUPABASE_DB_URL in ./.env`."""
        if not self.db_url_from:
            return "the database URL"
        if self.db_url_from == LOCAL_DEFAULT:
            return "the local default's URL (`kit local url`)"
        return f"{self.db_url_from} in {self.db_url_file}" if self.db_url_file else self.db_url_from

    @property
    def named(self) -> bool:
        """True for --target NAME / KIT_TARGET=NAME; False for the default target."""
        return self.target != DEFAULT_TARGET

    def var(self, name: str) -> str:
        """The variable a setting was read from (STAGING_SUPABASE_PROJECT_REF, SUPABASE_URL, ...); for one not
        set, those it is read from for this target (`STAGING_SUPABASE_ACCESS_TOKEN or SUPABASE_ACCESS_TOKEN`)."""
        return self.read_from.get(name) or " or ".join(variables(name, self.target))

    @property
    def label(self) -> str:
        """What backups and reports are filed under: the target name, `local` for the local default,
        else host-port-database of the URL."""
        if self.named:
            return self.target
        if self.db_url is None or self.db_url_from == LOCAL_DEFAULT:
            return DEFAULT_TARGET
        return url_label(self.db_url)


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


def url_label(url: str) -> str:
    """host-port-database, e.g. db.abcd.supabase.co-5432-postgres."""
    try:
        parts = urlsplit(url)
        host, port = parts.hostname or "localhost", parts.port or 5432
    except ValueError:
        return "unparsable-url"
    database = unquote(parts.path.lstrip("/")) or parts.username or "postgres"
    return f"{host}-{port}-{database}"


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
    files = dotenv_files(cwd, flags.get("workdir"))
    dotenvs = [(path, _read_dotenv(path)) for path in files]
    sources = [(None, environ)] + dotenvs

    def lookup(var: str) -> tuple[str | None, Path | None]:
        for path, found in sources:
            if found.get(var):
                return found[var], path
        return None, None

    target = str(flags.get("target") or lookup("KIT_TARGET")[0] or DEFAULT_TARGET)
    values: dict[str, object] = {"cwd": cwd, "target": target,
                                 "local_dir": default_local_dir(environ), "cache_dir": default_cache_dir(environ)}
    read_from: dict[str, str] = {}
    for name in ENV_NAMES:
        for var in variables(name, target):
            value, path = lookup(var)
            if value:
                if name in CERT_FILES and path is not None and value != "system":
                    value = str(path.parent / Path(value).expanduser())  # relative to the .env that names it
                values[name], read_from[name] = value, var
                if name == "db_url":
                    values["db_url_from"], values["db_url_file"] = var, path
                break
    if target != DEFAULT_TARGET and "db_url" not in flags and "db_url" not in values:
        looked = ", ".join(str(p) for p in dotenv_candidates(cwd, flags.get("workdir")))
        raise ConfigError(f"unknown target {target!r}: set {target.upper()}_SUPABASE_DB_URL in .env or the "
                          f"environment (.env looked for in: {looked}; see .env.example)")
    if "db_url" in flags:
        values["db_url_from"], values["db_url_file"] = "--db-url", None
    values.update({k: v for k, v in flags.items() if k in {f.name for f in fields(Settings)}})
    values["read_from"] = {k: v for k, v in read_from.items() if k not in flags}
    return Settings(**_typed(values))


def variables(name: str, target: str) -> tuple[str, ...]:
    """The variables a setting is read from for a target, the first one set wins: a named target NAME reads its
    project values (PROFILE_FIELDS) from NAME_* only, and the access token from NAME_SUPABASE_ACCESS_TOKEN, else
    the shared SUPABASE_ACCESS_TOKEN (one token per account); every other setting is shared."""
    shared = ENV_NAMES[name]
    if target == DEFAULT_TARGET or name not in (*PROFILE_FIELDS, "access_token"):
        return (shared,)
    own = f"{target.upper()}_{shared}"
    return (own, shared) if name == "access_token" else (own,)


def variable(name: str, environ: Mapping[str, str] | None = None, cwd: Path | None = None,
             workdir: Path | None = None) -> str | None:
    """One variable's value from the environment, else the .env files, in load's order (for the rollback's
    password lookup)."""
    environ = os.environ if environ is None else environ
    if environ.get(name):
        return environ[name]
    for path in dotenv_files(Path(cwd or Path.cwd()), workdir):
        if _read_dotenv(path).get(name):
            return _read_dotenv(path)[name]
    return None


def upward_project(cwd: Path) -> Path | None:
    """The nearest folder at or above cwd that holds supabase/migrations: the app's repo."""
    cwd = Path(cwd).resolve()
    for folder in (cwd, *cwd.parents):
        if (folder / "supabase" / "migrations").is_dir():
            return folder
    return None


def dotenv_candidates(cwd: Path, workdir: object = None) -> list[Path]:
    """Where .env is looked for, first wins: the current folder, then the app's (--workdir, else found upward)."""
    app = Path(str(workdir)).expanduser() if workdir else upward_project(cwd)
    found: list[Path] = []
    for path in [Path(cwd) / ".env"] + ([Path(app) / ".env"] if app else []):
        if not any(path.resolve() == f.resolve() for f in found):
            found.append(path)
    return found


def dotenv_files(cwd: Path, workdir: object = None) -> list[Path]:
    """The .env files that exist, in dotenv_candidates' order."""
    return [path for path in dotenv_candidates(cwd, workdir) if path.is_file()]


def _read_dotenv(path: Path) -> dict[str, str]:
    if not path.is_file():
        return {}
    try:
        return {k: v for k, v in dotenv_values(path).items() if v is not None}
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"cannot read {path}: {exc.__class__.__name__}; fix or remove the file") from None


def _typed(values: dict[str, Any]) -> dict[str, Any]:
    """The values converted to their fields' types (paths, whole numbers), each checked; ConfigError otherwise."""
    for name in ("workdir", "local_dir", "pg_bin", "backup_dir", "report_dir", "cache_dir"):
        if values.get(name) is not None:
            values[name] = Path(str(values[name])).expanduser()
    if "connect_timeout" in values:
        given = values["connect_timeout"]
        try:
            seconds = int(str(given))
        except ValueError:
            seconds = None
        if seconds is None or seconds <= 0:
            raise ConfigError(f"KIT_CONNECT_TIMEOUT must be a whole number of seconds above 0, "
                              f"not {given if seconds is None else seconds!r}")
        values["connect_timeout"] = seconds
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
    if values.get("db_url"):
        values["db_url"] = urls.canonical(str(values["db_url"]))
    return values


_EXAMPLES = {
    "db_url": "postgresql://postgres:PASSWORD@db.PROJECT.supabase.co:5432/postgres",
    "supabase_url": "https://PROJECT.supabase.co",
    "api_url": "https://api.supabase.com",
}
