"""Which Supabase project a URL names, and the rule that one command works on one project.

A database URL names its project in the direct host (`db.<ref>.supabase.co`) or in the pooler's
user name (`postgres.<ref>`); a REST URL in its host (`https://<ref>.supabase.co`). A command that
uses two of these (a database URL and SUPABASE_PROJECT_REF, say) refuses to start when they name
different projects, before it reads or writes anything.
"""

import re
from dataclasses import dataclass
from urllib.parse import unquote, urlsplit

from kit.errors import ConfigError
from kit.redact import url_host
from kit.settings import Settings, is_local_url

DIRECT_HOST = re.compile(r"^db\.(?P<ref>[a-z0-9]+)\.supabase\.(co|in|red)$")
POOLER_USER = re.compile(r"^[a-z_]+\.(?P<ref>[a-z0-9]+)$")
SUPABASE_HOST = re.compile(r"(^|\.)supabase\.(co|com|in|red)$")
API_HOST = re.compile(r"^(?P<ref>[a-z0-9]+)\.supabase\.(co|in|red)$")


def db_ref(url: str | None) -> str | None:
    """The project ref a database URL names, or None (not a Supabase host, or no ref in it)."""
    parts = _split(url)
    if parts is None or not SUPABASE_HOST.search(parts.hostname or ""):
        return None
    direct = DIRECT_HOST.match(parts.hostname or "")
    if direct:
        return direct["ref"]
    pooled = POOLER_USER.match(unquote(parts.username or ""))
    return pooled["ref"] if pooled else None


def rest_ref(url: str | None) -> str | None:
    parts = _split(url)
    match = API_HOST.match(parts.hostname or "") if parts else None
    return match["ref"] if match else None


def is_supabase_host(url: str | None) -> bool:
    parts = _split(url)
    return bool(parts and SUPABASE_HOST.search(parts.hostname or ""))


def _split(url: str | None):
    try:
        return urlsplit(url) if url else None
    except ValueError:
        return None


def check(settings: Settings, *, database: bool = False, project: bool = False, rest: bool = False) -> str | None:
    """Refuse (exit 2) when the parts a command uses name different projects.

    Returns the plan line when the command reaches a project (a project ref or a REST URL), else None.
    """
    named: list[tuple[str, str]] = []
    notes: list[str] = []
    if database and settings.db_url:
        ref = db_ref(settings.db_url)
        if ref:
            named.append((f"the database URL ({settings.db_url_from or 'SUPABASE_DB_URL'})", ref))
        elif project or rest:
            notes.append(f"{url_host(settings.db_url)} is not a Supabase host, so its project is not checked")
    if project and settings.project_ref:
        named.append((settings.var("project_ref"), settings.project_ref))
    if rest and settings.supabase_url:
        ref = rest_ref(settings.supabase_url)
        if ref:
            named.append((settings.var("supabase_url"), ref))
        elif project or database:
            notes.append(f"{url_host(settings.supabase_url)} is not a Supabase host, so its project is not checked")
    for what, ref in named[1:]:
        if ref != named[0][1]:
            raise ConfigError(f"{named[0][0]} is project {named[0][1]} but {what} is project {ref}: one command "
                              "works on one project; make them name the same project (see docs/targets.md)")
    if not ((project and settings.project_ref) or (rest and settings.supabase_url)):
        return None
    return plan_line(settings, named[0][1] if named else None, notes, database=database)


def plan_line(settings: Settings, ref: str | None, notes: list[str], *, database: bool) -> str:
    parts = [f"target {settings.label if settings.db_url or settings.named else 'default'}"]
    if database and settings.db_url:
        parts.append(f"database {url_host(settings.db_url)}")
    parts.append(f"project {ref}" if ref else "no Supabase project")
    return "plan: " + ", ".join(parts) + "".join(f"; {n}" for n in notes)


@dataclass(frozen=True)
class Destination:
    """What a change is about to reach, for the confirmation prompt."""

    label: str
    host: str
    ref: str | None
    local: bool

    def __str__(self) -> str:
        return f"target {self.label} (host {self.host}, project {self.ref or 'not known'})"


def database(settings: Settings) -> Destination:
    url = settings.db_url
    return Destination(settings.label, url_host(url), db_ref(url) or settings.project_ref,
                       url is None or is_local_url(url))


def management(settings: Settings) -> Destination:
    """A project changed through the Management API: never local, whatever the API's address."""
    label = settings.target if settings.named else "default"
    return Destination(label, url_host(settings.api_url).removesuffix(":5432"), settings.project_ref, False)


def rest(settings: Settings, url: str | None = None) -> Destination:
    url = url or settings.supabase_url
    return Destination(settings.label, url_host(url).removesuffix(":5432"), rest_ref(url) or settings.project_ref,
                       bool(url and is_local_url(url)))
