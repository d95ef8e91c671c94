"""A PostgreSQL URL in one canonical form: host, port, user, password and database in their own places.

libpq also takes them as query parameters (`postgresql://@/db?host=db.example.com&password=...`), and
a query parameter wins over the URL's own part. Everything in the kit that decides from a URL (is the
host local, what is the label, what is masked, what goes into a child's argv) reads those places only,
so a URL is rewritten into this form as it comes in: the same connection for libpq, and nothing hidden
in the query.
"""

from urllib.parse import parse_qsl, quote, unquote, urlencode, urlsplit, urlunsplit

from kit.errors import ConfigError

MOVED = ("host", "port", "user", "password", "dbname")


def canonical(url: str) -> str:
    """`url` with its host, port, user, password and dbname query parameters moved into the URL's own parts."""
    try:
        parts = urlsplit(url)
        query = parse_qsl(parts.query, keep_blank_values=True)
    except ValueError:
        return url  # db.check_url names what is wrong with it
    given = {k: v for k, v in query if k in MOVED}
    if not given or parts.scheme not in ("postgres", "postgresql"):
        return url
    host = given.get("host", parts.hostname or "")
    if "," in host or "," in given.get("port", ""):
        raise ConfigError("the database URL names several hosts; give one: postgresql://USER:PASSWORD@HOST:5432/postgres")
    if host.startswith("/"):  # a Unix socket's folder stays in the query: it has no place in the URL's host
        given.pop("host")
        host = parts.hostname or ""
    user = given.get("user", unquote(parts.username or ""))
    password = given.get("password", unquote(parts.password) if parts.password else None)
    port = given.get("port", str(parts.port) if parts.port else "")
    userinfo = quote(user, safe="") + (f":{quote(password, safe='')}" if password is not None else "")
    hostport = (f"[{host}]" if ":" in host else host) + (f":{port}" if port else "")
    netloc = (f"{userinfo}@" if userinfo else "") + hostport
    path = "/" + quote(given["dbname"], safe="") if "dbname" in given else parts.path
    rest = urlencode([(k, v) for k, v in query if k not in given], safe="/:,", quote_via=quote)  # libpq: no "+"
    return urlunsplit((parts.scheme, netloc, path, rest, parts.fragment))
