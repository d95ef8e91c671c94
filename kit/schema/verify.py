"""`kit verify`: what the migration guarantees, checked point by point from pg_catalog.

The migration only re-keys the three tables; properties it leaves alone (RLS, the names' types,
other tables' references, llm_usage's other foreign keys, columns, policies, publications) are
compared with the shape a backup recorded when one is given, and shown as info otherwise.
"""

from pathlib import Path

import psycopg

from kit import db
from kit.backup import manifest
from kit.checks import Check
from kit.migrations import history, workdir
from kit.schema import catalog
from kit.schema.phases import Phase
from kit.schema.status import names_not_null, usage_foreign_keys
from kit.settings import Settings

UUIDS = {f"{t}.{c}" for t, cols in catalog.UUID_COLUMNS.items() for c in cols}
# Columns the migration adds, changes or removes; every other recorded column must be unchanged.
CHANGED = UUIDS | {"llm_models.provider_name", "llm_usage.provider_name", "llm_usage.model_name"}
LOOKUPS = ("llm_providers", "llm_models")


def run(conn: psycopg.Connection, settings: Settings, backup: Path | None = None) -> list[Check]:
    """Every check, from two round trips: the catalog, the name indexes and whether there is a history table;
    then the history's versions. What is checked follows the history: the expanded phase when the expand step is
    the last change recorded, else the migrated one."""
    reads = catalog.statements() + [(NAME_INDEXES_SQL, (catalog.qualified(t),)) for t in LOOKUPS] + [history.EXISTS]
    results = db.batch(conn, reads)
    cat = catalog.from_rows(results[:catalog.READS])
    indexes = {t: [r[0] for r in rows]
               for t, rows in zip(LOOKUPS, results[catalog.READS:catalog.READS + 2], strict=True)}
    applied = history.versions(db.batch(conn, [history.VERSIONS])[0]) if results[-1][0][0] else []
    missing = [t for t in catalog.TABLES if t not in cat.tables]
    if missing:
        return [Check("tables exist", False, "missing: " + ", ".join(missing))]
    change = recorded_change(settings, applied)
    checks = [Check("tables exist", True, ", ".join(catalog.TABLES))]
    if change is not None and change.name == workdir.EXPAND:
        checks += _keys(cat, indexes, Phase.EXPANDED) + _usage(cat, Phase.EXPANDED) + [_fill(cat),
                                                                                     _history(change, applied)]
    else:
        checks += _keys(cat, indexes) + _usage(cat) + [_history(change, applied)]
    recorded = manifest.load(backup).catalog if backup else None
    if backup and recorded is None:
        checks.append(Check("unchanged properties", True, f"{backup} records no catalog shape (an older kit took "
                            "it); take a new backup to compare", "info"))
    return checks + (_unchanged(cat, recorded) if recorded else _info(cat))


def recorded_change(settings: Settings, applied: list[str]) -> workdir.Migration | None:
    """The change file verify holds the database to: the last one the history records (the expand step alone:
    the expanded phase), else the folder's last change file (not recorded: the history check fails)."""
    changes = [m for m in workdir.migrations(settings, applied) if m.name in workdir.CHANGES]
    recorded = [m for m in changes if m.version in applied]
    found = recorded or changes
    return found[-1] if found else None


def _fill(cat: catalog.Catalog) -> Check:
    found = sorted(t for table in catalog.FILL_TRIGGERS for t in cat.tables[table].triggers
                   if t == catalog.FILL_TRIGGERS[table])
    return Check("old clients' rows get their names (triggers " + ", ".join(sorted(catalog.FILL_TRIGGERS.values()))
                 + ")", len(found) == len(catalog.FILL_TRIGGERS), ", ".join(found) or "none")


def _kept(cat: catalog.Catalog) -> Check:
    """Expanded: every UUID column is there for old clients, nullable (an identity column fills itself)."""
    cols = {f"{t}.{c}": cat.tables[t].columns.get(c) for t, names in catalog.UUID_COLUMNS.items() for c in names}
    bad = [name for name, col in cols.items() if col is None or (col.not_null and not col.identity)]
    return Check("UUID columns kept for old clients, nullable", not bad,
                 "missing or not null: " + ", ".join(bad) if bad else ", ".join(cols))


def _keys(cat: catalog.Catalog, indexes: dict[str, list[str]], phase: Phase = Phase.MIGRATED) -> list[Check]:
    checks = []
    for table in LOOKUPS:
        pk = cat.tables[table].primary_key
        checks.append(Check(f"{table} primary key is name", pk == ["name"], f"primary key ({', '.join(pk)})"))
        dupes = indexes[table]
        checks.append(Check(f"{table}: no index on name besides the key", not dupes, ", ".join(dupes) or "none"))
    if phase == Phase.EXPANDED:
        checks.append(_kept(cat))
    else:
        left = cat.uuid_columns_left()
        checks.append(Check("no UUID key columns remain", not left, ", ".join(left) or "none left"))
    provider = cat.tables["llm_models"].columns.get("provider_name")
    checks.append(Check("llm_models.provider_name is not null", bool(provider and provider.not_null),
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


NAME_INDEXES_SQL = """
select i.indexrelid::regclass::text from pg_index i
where i.indrelid = to_regclass(%s) and not i.indisprimary and i.indnkeyatts = 1 and i.indexprs is null
  and i.indpred is null and i.indkey[0] = (select attnum from pg_attribute where attrelid = i.indrelid
                                           and attname = 'name') order by 1
"""


def _usage(cat: catalog.Catalog, phase: Phase = Phase.MIGRATED) -> list[Check]:
    usage = cat.tables["llm_usage"]
    fks = usage_foreign_keys(cat)
    no_fks = Check("llm_usage has no UUID foreign keys", not fks, ", ".join(fk.name for fk in fks) or "none")
    if phase == Phase.EXPANDED:  # the names become NOT NULL in the contract
        return [no_fks]
    return [
        no_fks,
        Check("llm_usage names are not null", names_not_null(cat),
              ", ".join(f"{c} {'not null' if usage.columns[c].not_null else 'nullable'}"
                        for c in ("provider_name", "model_name") if c in usage.columns)),
    ]


def _facts(shape: dict) -> dict[str, str]:
    """The properties the migration leaves alone, as name -> value, from a catalog's as_dict()."""
    facts = {}
    for name, table in shape["tables"].items():
        facts[f"{name}: row level security"] = "enabled" if table["rls"] else "disabled"
        facts[f"{name}: policies"] = ", ".join(sorted(table["policies"])) or "none"
        facts[f"{name}: partitions"] = ", ".join(sorted(table["partitions"])) or "none"
        pubs = [p["name"] for p in table["publications"] if p["whole_table"]]
        facts[f"{name}: whole-table publications"] = ", ".join(sorted(pubs)) or "none"
        for col in table["columns"].values():
            if f"{name}.{col['name']}" not in CHANGED:
                facts[f"{name}.{col['name']}"] = _column(col)
        for col in ("name", "provider_name", "model_name"):
            if col in table["columns"]:
                facts[f"{name}.{col} type"] = table["columns"][col]["type"]
    for fk in shape["foreign_keys"]:
        if not (set(fk["columns"]) | set(fk["ref_columns"])) & {"id", "provider_id", "model_id"}:
            facts[f"foreign key {fk['name']} on {fk['table']}"] = fk["definition"]
    return facts


def _column(col: dict) -> str:
    parts = [col["type"], "not null" if col["not_null"] else "nullable"]
    parts += [f"default {col['default']}"] if col["default"] else []
    parts += [f"identity {col['identity']}"] if col["identity"] else []
    parts += [f"generated {col['generated']}"] if col["generated"] else []
    return ", ".join(parts)


def _unchanged(cat: catalog.Catalog, recorded: dict) -> list[Check]:
    now, then = _facts(cat.as_dict()), _facts(recorded)
    # The migration adds this key; before it, a half-migrated table may have had it already.
    then.pop("foreign key llm_models_provider_name_fkey on llm_models", None)
    now.pop("foreign key llm_models_provider_name_fkey on llm_models", None)
    return [Check(f"unchanged since the backup: {k}", now.get(k) == v,
                  v if now.get(k) == v else f"was {v}, now {now.get(k, 'gone')}") for k, v in sorted(then.items())]


def _info(cat: catalog.Catalog) -> list[Check]:
    return [Check(k, True, v, "info") for k, v in sorted(_facts(cat.as_dict()).items())
            if not k.startswith("llm_") or ":" in k or k.endswith(" type")]


def _history(change: workdir.Migration | None, applied: list[str]) -> Check:
    recorded = change is not None and change.version in applied
    return Check("migration recorded in supabase_migrations.schema_migrations", recorded,
                 f"{change.version if change else '?'} {'recorded' if recorded else 'not recorded'}")
