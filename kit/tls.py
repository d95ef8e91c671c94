"""TLS for every connection: the URL each connection and child program gets, with the sslmode it must use.

One rule for psycopg, pg_dump, pg_dumpall, pg_restore, psql and the Supabase CLI: each is handed the
same URL, carrying `sslmode`, `sslrootcert`, `sslcert` and `sslkey` from the URL or else from the
PGSSL* variables. A non-local host without an sslmode gets `require`: libpq's own default, `prefer`,
falls back to cleartext without a word. `disable`, `allow` or `prefer` to a non-local host is refused
unless --allow-plaintext says so.
"""

from pathlib import Path
from urllib.parse import parse_qsl, quote, urlencode, urlsplit, urlunsplit

from kit import urls
from kit.errors import ConfigError
from kit.redact import url_host
from kit.settings import Settings, is_local_url

PARAMS = ("sslmode", "sslrootcert", "sslcert", "sslkey")  # libpq's names; the PGSSL* variables carry the same
FILES = ("sslrootcert", "sslcert", "sslkey")
PLAINTEXT = ("disable", "allow", "prefer")  # modes under which libpq may send the data in cleartext
ENCRYPTED = ("require", "verify-ca", "verify-full")
DEFAULT_REMOTE = "require"


def params(settings: Settings, url: str) -> dict[str, str]:
    """The TLS parameters a connection to `url` uses: the URL's own, else the PGSSL* settings, else
    sslmode=require for a non-local host (none for a local one: libpq's default). A relative file path in the
    URL is taken from the folder of the .env that held the URL (else where the kit runs); one in a PGSSL*
    variable was made absolute as the settings were loaded."""
    url = urls.canonical(url)
    given = dict(parse_qsl(urlsplit(url).query))
    base = settings.db_url_file.parent if settings.db_url_file and url == settings.db_url else settings.cwd
    chosen = {}
    for name in PARAMS:
        value = given.get(name) or getattr(settings, name)
        if value:
            chosen[name] = _absolute(base, value) if name in FILES else value
    if "sslmode" not in chosen and not is_local_url(url):
        chosen["sslmode"] = DEFAULT_REMOTE
    return chosen


def url_for(settings: Settings, url: str) -> str:
    """`url` (canonical: kit/urls.py) with its TLS parameters written in; refuses cleartext to a non-local host
    unless allowed, and a certificate file that is not there."""
    url = urls.canonical(url)
    check(settings, url)
    chosen = params(settings, url)
    parts = urlsplit(url)
    query = [(k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True) if k not in PARAMS]
    query += sorted(chosen.items(), key=lambda kv: PARAMS.index(kv[0]))
    encoded = urlencode(query, safe="/:", quote_via=quote)  # %20, not "+": libpq decodes only %XX
    return urlunsplit((parts.scheme, parts.netloc, parts.path, encoded, parts.fragment))


def check(settings: Settings, url: str | None = None) -> str | None:
    """None, or the warning to print when cleartext to a non-local host was allowed; ConfigError (exit 2)
    when it was not."""
    url = urls.canonical(url or settings.db_url or "")
    if not url:
        return None
    chosen = params(settings, url)
    for name in FILES:
        if chosen.get(name, "system") != "system" and not Path(chosen[name]).is_file():
            raise ConfigError(f"{name} {chosen[name]} is not a file: download the project's CA (dashboard > Database "
                              "> SSL configuration) there, or fix the path in the URL or PGSSL* variable")
    if is_local_url(url):
        return None
    mode = chosen.get("sslmode", DEFAULT_REMOTE)
    if mode not in PLAINTEXT:
        if mode not in ENCRYPTED:
            raise ConfigError(f"sslmode={mode} is not a libpq sslmode; use require, verify-ca or verify-full")
        return None
    if not settings.allow_plaintext:
        raise ConfigError(f"sslmode={mode} to {url_host(url)} may send the database in cleartext; use "
                          "sslmode=require or verify-full, or pass --allow-plaintext to accept the risk")
    return f"sslmode={mode} to {url_host(url)}: the connection may be unencrypted (--allow-plaintext)"


def requires_tls(settings: Settings, url: str) -> bool:
    """True when a connection to `url` must be encrypted: a client tool without TLS cannot make it."""
    return params(settings, url).get("sslmode") in ENCRYPTED


def _absolute(base: Path, value: str) -> str:
    """A certificate path relative to `base` made absolute (a child may run elsewhere); `system` stays."""
    if value == "system":
        return value
    path = Path(value).expanduser()
    return str(path if path.is_absolute() else (base / path).resolve())
