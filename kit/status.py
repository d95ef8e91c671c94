"""`kit status`: the phase, the pending migrations and the blockers, without changing anything."""

from dataclasses import dataclass, field

import psycopg

from kit import catalog, history, workdir
from kit.settings import Settings

CHANGE_MIGRATION = "llm_name_keys"
BLOCKERS_SQLSTATE = "KB001"


@dataclass
class Status:
    phase: str
    pending: list[str]
    blockers: list[str]
    applied: list[str]
    unknown_remote: list[str]
    suggestions: list[str] = field(default_factory=list)


def phase(cat: catalog.Catalog) -> str:
    """absent, before, partial or migrated."""
    if not cat.tables:
        return "absent"
    if len(cat.tables) < len(catalog.TABLES):
        return "partial"
    left = cat.uuid_columns_left()
    keyed = [t for t in ("llm_providers", "llm_models") if cat.tables[t].primary_key == ["name"]]
    if not left and len(keyed) == 2 and not usage_foreign_keys(cat) and names_not_null(cat):
        return "migrated"
    all_uuid = sum(len(c) for c in catalog.UUID_COLUMNS.values())
    if len(left) == all_uuid and not keyed:
        return "before"
    return "partial"


def usage_foreign_keys(cat: catalog.Catalog) -> list[catalog.ForeignKey]:
    """llm_usage's foreign keys to a lookup table's UUID: the ones the migration removes."""
    return [fk for fk in cat.foreign_keys if fk.table == "llm_usage" and (
        set(fk.columns) & {"provider_id", "model_id"} or (fk.ref_table in ("llm_providers", "llm_models")
                                                          and "id" in fk.ref_columns))]


def names_not_null(cat: catalog.Catalog) -> bool:
    usage = cat.tables["llm_usage"].columns
    return all(c in usage and usage[c].not_null for c in ("provider_name", "model_name"))


SUGGESTION = "llm name keys: suggestion: "


def blockers(conn: psycopg.Connection, settings: Settings, notes: list[str] | None = None) -> list[str]:
    """Run the change migration in a READ ONLY transaction: it lists its blockers before it writes anything.

    PostgreSQL itself stops the file at its first write or exclusive lock, so nothing can change,
    and the blocker list is the migration's own rather than a copy that could drift from it.
    """
    change = next((m for m in workdir.migrations(settings) if m.name == CHANGE_MIGRATION), None)
    if change is None:
        return []

    def note(diag) -> None:
        if notes is not None and (diag.message_primary or "").startswith(SUGGESTION):
            notes.append(diag.message_primary.removeprefix(SUGGESTION))

    conn.add_notice_handler(note)
    try:
        with conn.transaction(force_rollback=True):
            conn.execute("set transaction read only")
            for statement in history.split_statements(change.sql):
                conn.execute(statement.encode(), prepare=False)
    except psycopg.Error as exc:
        diag = exc.diag
        if diag.sqlstate == BLOCKERS_SQLSTATE and diag.message_detail:
            return diag.message_detail.split("\n")
    finally:
        conn.remove_notice_handler(note)
    return []


def read(conn: psycopg.Connection, settings: Settings) -> Status:
    cat = catalog.read(conn)
    local = [m.version for m in workdir.migrations(settings)]
    applied = history.applied_versions(conn)
    current = phase(cat)
    notes: list[str] = []
    found = blockers(conn, settings, notes) if current in ("before", "partial") else []
    return Status(
        phase=current,
        pending=[v for v in local if v not in applied],
        blockers=found,
        applied=applied,
        unknown_remote=[v for v in applied if v not in local],
        suggestions=notes,
    )
