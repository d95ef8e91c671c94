"""The split files, derived from the one archive `kit backup` dumps: the table of contents, filtered by schema.

`pg_restore --list` prints one line per archive entry: `ID; CATALOG OID DESC NAMESPACE NAME OWNER`. The
entries of Supabase-managed schemas stay in database.dump only; the rest become schema.sql (definitions),
data.sql (rows and sequence values) and history.sql (the supabase_migrations schema).
"""

import fnmatch
import re
from dataclasses import dataclass
from pathlib import Path

# Schemas Supabase manages; `supabase db dump` leaves them out too.
MANAGED_SCHEMAS = ("information_schema", "pg_*", "_analytics", "_realtime", "_supavisor", "auth", "extensions",
                   "pgbouncer", "realtime", "storage", "supabase_functions", "supabase_migrations", "cron", "dbdev",
                   "graphql", "graphql_public", "net", "pgmq", "pgsodium", "pgsodium_masks", "pgtle", "repack",
                   "tiger", "tiger_data", "timescaledb_*", "_timescaledb_*", "topology", "vault")
# data.sql keeps the users' data in these managed schemas, as `supabase db dump --data-only` does (for a move
# to a new project), but not the data of the other managed schemas and tables, which the platform maintains.
USERS_DATA_SCHEMAS = ("auth", "storage", "supabase_functions", "dbdev")
DATA_EXCLUDED = tuple(s for s in MANAGED_SCHEMAS if s not in USERS_DATA_SCHEMAS)
DATA_EXCLUDED_TABLES = ("auth.schema_migrations", "storage.migrations", "supabase_functions.migrations")
HISTORY_SCHEMA = "supabase_migrations"
# Entry kinds of more than one word, longest first (pg_dump's names for them).
KINDS = sorted(["TABLE DATA", "SEQUENCE SET", "SEQUENCE OWNED BY", "FK CONSTRAINT", "CHECK CONSTRAINT", "DEFAULT ACL",
                "MATERIALIZED VIEW DATA", "MATERIALIZED VIEW", "FOREIGN TABLE", "FOREIGN DATA WRAPPER",
                "FOREIGN SERVER", "EVENT TRIGGER", "ACCESS METHOD", "ROW SECURITY", "USER MAPPING", "OPERATOR CLASS",
                "OPERATOR FAMILY", "TEXT SEARCH PARSER", "TEXT SEARCH DICTIONARY", "TEXT SEARCH TEMPLATE",
                "TEXT SEARCH CONFIGURATION", "PUBLICATION TABLE", "PUBLICATION TABLES IN SCHEMA", "LARGE OBJECT",
                "BLOB DATA", "BLOB METADATA", "LARGE OBJECTS", "SHELL TYPE", "PROCEDURAL LANGUAGE", "INDEX ATTACH",
                "STATISTICS DATA", "TABLE ATTACH", "DATABASE PROPERTIES", "SECURITY LABEL"], key=len, reverse=True)
DATA_KINDS = ("TABLE DATA", "SEQUENCE SET", "BLOB DATA", "BLOBS", "LARGE OBJECTS", "MATERIALIZED VIEW DATA")
ON_SCHEMA = ("ACL", "COMMENT", "SECURITY LABEL")  # entries about a schema itself: `ACL - SCHEMA auth owner`


@dataclass(frozen=True)
class Entry:
    line: str
    kind: str
    namespace: str
    oid: int

    @property
    def schema(self) -> str:
        """The schema the entry belongs to; for a schema (or its ACL or comment) the schema itself."""
        if self.namespace != "-":
            return self.namespace
        rest = self.line.split(self.kind + " - ", 1)[-1]
        if self.kind == "SCHEMA":
            return rest.rsplit(" ", 1)[0]
        if self.kind in ON_SCHEMA and rest.startswith("SCHEMA "):
            return rest[len("SCHEMA "):].rsplit(" ", 1)[0]
        return "-"

    @property
    def name(self) -> str:
        """The object's name for an entry in a schema (a table's name for TABLE DATA)."""
        rest = self.line.split(f"{self.kind} {self.namespace} ", 1)[-1]
        return rest.rsplit(" ", 1)[0]

    @property
    def is_data(self) -> bool:
        return self.kind in DATA_KINDS


def parse_list(listing: str) -> list[Entry]:
    entries = []
    for line in listing.splitlines():
        match = re.match(r"^\d+; (\d+) (\d+) (.*)$", line)
        if not match:
            continue
        rest = match.group(3)
        kind = next((k for k in KINDS if rest.startswith(k + " ")), rest.split(" ", 1)[0])
        namespace = rest[len(kind) + 1:].split(" ", 1)[0]
        entries.append(Entry(line, kind, namespace, int(match.group(2))))
    return entries


def managed(schema: str, patterns: tuple[str, ...] = MANAGED_SCHEMAS) -> bool:
    return any(fnmatch.fnmatchcase(schema, pattern) for pattern in patterns)


def user_data(schema: str, name: str) -> bool:
    """Data that data.sql carries: not of a platform schema, nor a platform migrations table."""
    return not managed(schema, DATA_EXCLUDED) and f"{schema}.{name}" not in DATA_EXCLUDED_TABLES


def split(entries: list[Entry]) -> dict[str, list[Entry]]:
    """Entries for schema.sql, data.sql, history.sql, and the rest of the table data (counted only)."""
    parts: dict[str, list[Entry]] = {"schema.sql": [], "data.sql": [], "history.sql": [], "other_data": []}
    for entry in entries:
        schema = entry.schema
        if schema == HISTORY_SCHEMA:
            parts["history.sql"].append(entry)
        elif not entry.is_data and not managed(schema) and not _platforms(entry):
            parts["schema.sql"].append(entry)
        if entry.is_data and user_data(entry.schema, entry.name):
            parts["data.sql"].append(entry)
        elif entry.kind == "TABLE DATA":
            parts["other_data"].append(entry)
    return parts


def _platforms(entry: Entry) -> bool:
    """What a Supabase project has already and its login role cannot set again: an extension's comment, the
    realtime publication itself (the tables added to it stay), the platform roles' default privileges."""
    about = entry.line.split(" - ", 1)[-1]
    if entry.kind == "DEFAULT ACL":  # the platform's own default grants: only that role could set them again
        return bool(re.fullmatch(r"supabase_\w+", entry.line.rsplit(" ", 1)[-1]))
    return about.startswith("EXTENSION ") or (entry.kind == "PUBLICATION" and about.startswith("supabase_realtime "))


def write_list(path: Path, entries: list[Entry]) -> Path:
    path.write_text("".join(e.line + "\n" for e in entries))
    return path


def extensions(entries: list[Entry]) -> list[str]:
    """The extensions the archive creates, by name."""
    names = []
    for entry in entries:
        if entry.kind == "EXTENSION":
            names.append(entry.line.split("EXTENSION - ", 1)[-1].rsplit(" ", 1)[0])
    return names
