"""`kit verify`: the target schema, checked point by point from pg_catalog."""

from dataclasses import asdict, dataclass

import psycopg

from kit import catalog, history, workdir
from kit.settings import Settings
from kit.status import CHANGE_MIGRATION, names_not_null, usage_foreign_keys

NAME_TYPE = "character varying(255)"


@dataclass
class Check:
    name: str
    ok: bool
    detail: str

    def as_dict(self) -> dict:
        return asdict(self)


def run(conn: psycopg.Connection, settings: Settings) -> list[Check]:
    cat = catalog.read(conn)
    missing = [t for t in catalog.TABLES if t not in cat.tables]
    if missing:
        return [Check("tables exist", False, "missing: " + ", ".join(missing))]
    checks = [Check("tables exist", True, ", ".join(catalog.TABLES))]
    checks += _keys(cat) + _usage(cat) + [_history(conn, settings)]
    return checks


def _keys(cat: catalog.Catalog) -> list[Check]:
    checks = []
    for table in ("llm_providers", "llm_models"):
        pk = cat.tables[table].primary_key
        checks.append(Check(f"{table} primary key is name", pk == ["name"], f"primary key ({', '.join(pk)})"))
        column = cat.tables[table].columns.get("name")
        checks.append(Check(f"{table}.name is varchar(255)", bool(column and column.type == NAME_TYPE),
                            column.type if column else "no name column"))
    left = cat.uuid_columns_left()
    checks.append(Check("no UUID key columns remain", not left, ", ".join(left) or "none left"))
    provider = cat.tables["llm_models"].columns.get("provider_name")
    checks.append(Check("llm_models.provider_name is varchar(255) not null",
                        bool(provider and provider.type == NAME_TYPE and provider.not_null),
                        f"{provider.type}, {'not null' if provider.not_null else 'nullable'}" if provider
                        else "no provider_name column"))
    fks = [fk for fk in cat.foreign_keys if fk.table == "llm_models" and fk.ref_table == "llm_providers"]
    wanted = [fk for fk in fks if fk.columns == ["provider_name"] and fk.ref_columns == ["name"]
              and fk.on_delete == "cascade" and fk.on_update == "cascade"]
    checks.append(Check("llm_models.provider_name references llm_providers(name), cascading",
                        len(wanted) == 1 and len(fks) == 1,
                        "; ".join(f"{fk.name} ({', '.join(fk.columns)}) on delete {fk.on_delete}, "
                                  f"on update {fk.on_update}" for fk in fks) or "no foreign key"))
    return checks


def _usage(cat: catalog.Catalog) -> list[Check]:
    usage = cat.tables["llm_usage"]
    fks = usage_foreign_keys(cat)
    outside = [f"{fk.table}.{fk.name}" for fk in cat.foreign_keys
               if fk.ref_table in catalog.TABLES and fk.table not in catalog.TABLES]
    return [
        Check("llm_usage has no foreign keys", not fks, ", ".join(fk.name for fk in fks) or "none"),
        Check("llm_usage names are not null", names_not_null(cat),
              ", ".join(f"{c} {'not null' if usage.columns[c].not_null else 'nullable'}"
                        for c in ("provider_name", "model_name") if c in usage.columns)),
        Check("llm_usage has row level security", usage.rls,
              f"enabled, {len(usage.policies)} policies" if usage.rls else "disabled"),
        Check("no other table references the LLM tables", not outside, ", ".join(outside) or "none"),
    ]


def _history(conn: psycopg.Connection, settings: Settings) -> Check:
    change = next((m for m in workdir.migrations(settings) if m.name == CHANGE_MIGRATION), None)
    applied = history.applied_versions(conn)
    recorded = change is not None and change.version in applied
    return Check("migration recorded in supabase_migrations.schema_migrations", recorded,
                 f"{change.version if change else '?'} {'recorded' if recorded else 'not recorded'}")
