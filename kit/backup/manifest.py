"""manifest.json: what a backup holds, its checksums, row counts, and the LLM tables' UUID maps."""

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg
import psycopg.sql

from kit import db
from kit.backup.contents import MANIFEST_KEYS, FileSum, Identity, Manifest, Maps, Model
from kit.errors import BackupError
from kit.files import open_private
from kit.redact import mask_url
from kit.schema import catalog
from kit.settings import Settings

NAME = "manifest.json"
LINKS = "llm_usage_links.tsv"  # COPY text format: tab-separated, NULL as \N
# Of the LLM tables that exist (a missing one is left out, not an error).
SHAPE_SQL = """
with present as (select name, to_regclass(qualified) as rel from unnest(%(names)s::text[], %(rels)s::text[]) t
                 (name, qualified) where to_regclass(qualified) is not null)
select 'constraint', conrelid::regclass::text, conname, contype::text, pg_get_constraintdef(oid)
from pg_constraint where conrelid in (select rel from present) and contype in ('p', 'u', 'f', 'c')
union all
select 'index', tablename, indexname, '', indexdef from pg_indexes
where schemaname = 'public' and tablename in (select name from present)
  and indexname not in (select conname from pg_constraint where conrelid in (select rel from present))
union all
select 'column', c.relname, a.attname, case when a.attnotnull then 'not null' else '' end,
       format_type(a.atttypid, a.atttypmod) || coalesce(' default ' || pg_get_expr(d.adbin, d.adrelid), '')
from pg_class c join pg_attribute a on a.attrelid = c.oid and a.attnum > 0 and not a.attisdropped
left join pg_attrdef d on d.adrelid = c.oid and d.adnum = a.attnum
where c.oid in (select rel from present)
order by 1, 2, 3
"""
SHAPE = (SHAPE_SQL, {"names": list(catalog.TABLES), "rels": [catalog.qualified(t) for t in catalog.TABLES]})


def shape(conn: psycopg.Connection) -> list[list[str]]:
    """Columns, constraints and indexes of the LLM tables: what a rollback rebuilds. One round trip."""
    return [list(r) for r in conn.execute(*SHAPE)]


def reads() -> list[tuple[Any, ...]]:
    """What collect_from needs, for the backup's snapshot batch: the catalog, then the shape."""
    return [*catalog.statements(), SHAPE]


@dataclass
class Facts:
    """What the backup's snapshot transaction read of the LLM tables (maps: None after the migration)."""

    shape: list[list[str]]
    catalog: dict[str, Any]
    maps: Maps | None


def collect_from(conn: psycopg.Connection, results: list[list[Any]], folder: Path,
                 links_from_dump: bool = False) -> Facts:
    """From the results of reads(), in the backup's snapshot transaction: the shape and catalog of the LLM
    tables and, before the migration, their UUID maps and every usage row's links (one more round trip). Row
    counts come from the dump itself."""
    cat = catalog.from_rows(results[:catalog.READS])
    facts = Facts([list(r) for r in results[catalog.READS]], cat.as_dict(), None)
    if len(cat.uuid_columns_left()) == sum(len(c) for c in catalog.UUID_COLUMNS.values()):
        facts.maps = maps(conn, folder, cat, read_links=not (links_from_dump and streamable(cat)))
    return facts


def streamable(cat: catalog.Catalog) -> bool:
    """None of the links file's columns is generated (pg_dump leaves those out of its COPY): the file can come
    from the dump's own rows, whatever the key (or none) and partitioning."""
    usage = cat.tables.get("llm_usage")
    return usage is not None and not any(usage.columns[c].generated for c in link_columns(cat))


def link_columns(cat: catalog.Catalog) -> list[str]:
    """The links file's columns, in the table's own column order (the order `cut` keeps them in): llm_usage's
    key and its two UUID links; without a key, the two names and the two links of every row."""
    usage = cat.tables["llm_usage"]
    wanted = {*(usage.primary_key or ("provider_name", "model_name")), "provider_id", "model_id"}
    return [c for c in usage.columns if c in wanted]


def usage_tables(cat: catalog.Catalog) -> list[str]:
    """The tables whose COPY blocks hold llm_usage's rows in a dump: itself, or its leaf partitions."""
    usage = cat.tables["llm_usage"]
    return sorted(usage.leaves) if usage.partitioned else ["public.llm_usage"]


def maps(conn: psycopg.Connection, folder: Path, cat: catalog.Catalog, read_links: bool = True) -> Maps:
    """The UUID maps; call it inside the backup's snapshot so they match the dump. Without read_links the
    links file is left to the caller, which writes it from the dump (see streamable)."""
    provider_rows, model_rows = db.batch(conn, [("select id, name from public.llm_providers", None),
                                                ("select id, name, provider_id from public.llm_models", None)])
    providers = {str(i): n for i, n in provider_rows}
    models = {str(i): Model(n, str(p) if p else None) for i, n, p in model_rows}
    if read_links:
        return Maps(providers, models, **links(conn, folder, cat))
    return Maps(providers, models, **link_fields(cat), usage_from="dump", usage_tables=usage_tables(cat))


def links(conn: psycopg.Connection, folder: Path, cat: catalog.Catalog) -> dict[str, Any]:
    """Every llm_usage row's links, with its primary key (NULL links too: a rollback gives each row back
    exactly what it had), or without one its names; read here only when the dump cannot give them."""
    query = psycopg.sql.SQL("copy (select {} from public.llm_usage) to stdout").format(
        psycopg.sql.SQL(", ").join(psycopg.sql.Identifier(c) for c in link_columns(cat)))
    path = folder / LINKS
    with open_private(path, "wb") as handle, conn.cursor().copy(query) as copy:
        for chunk in copy:
            handle.write(chunk)
    return link_fields(cat)


def link_fields(cat: catalog.Catalog) -> dict[str, Any]:
    """The links file's part of the maps, as Maps' keyword arguments."""
    key = cat.tables["llm_usage"].primary_key
    columns = cat.tables["llm_usage"].columns
    return {"usage_file": LINKS, "usage_key": [(c, columns[c].type) for c in key],
            "usage_columns": link_columns(cat),
            "usage_names": [(c, columns[c].type) for c in ("provider_name", "model_name")]}


def build(folder: Path, settings: Settings, facts: Facts, row_counts: dict[str, int], *, seconds: float,
          identity: Identity, platform: dict[str, Any] | None, known: dict[str, tuple[int, str]] | None = None,
          **taken: Any) -> Manifest:
    """The manifest; `known` gives (bytes, sha256) of files hashed while they were written; `taken` the backup's
    server, client, started, finished, snapshot, archive, jobs, compress and extensions."""
    known = known or {}
    files = {}
    for p in sorted(folder.rglob("*")):
        name = str(p.relative_to(folder))
        if p.is_file() and p.name not in (NAME, "INCOMPLETE"):
            size, digest = known.get(name, (None, None))
            files[name] = FileSum(p.stat().st_size, digest if digest and size == p.stat().st_size else sha256(p))
    total = sum(f.bytes for f in files.values())
    return Manifest(True, settings.target, mask_url(settings.db_url), **taken, seconds=round(seconds, 2),
                    bytes=total, mb_per_s=round(total / 1e6 / max(seconds, 1e-6), 1), files=files, shape=facts.shape,
                    catalog=facts.catalog, maps=facts.maps, row_counts=row_counts, identity=identity,
                    platform=platform, keys=MANIFEST_KEYS[:-1])


def save(folder: Path, data: Manifest) -> None:
    path = folder / NAME
    with open_private(path) as handle:
        json.dump(data.to_json(), handle, indent=1, default=str)


def sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _pass_a_backup(folder: Path) -> str:
    """The next step for a folder that is not a backup: the newest backup found below it, if any."""
    found = sorted(folder.glob(f"*/{NAME}"), key=lambda p: p.parent.name) or sorted(
        folder.glob(f"*/*/{NAME}"), key=lambda p: p.parent.name)
    if found:
        return f"pass one of the {len(found)} backup(s) it holds, e.g. {found[-1].parent}"
    return "pass the folder `kit backup` or `kit deploy` printed (backups/<label>/<UTC time>)"


def load(folder: Path) -> Manifest:
    """The manifest of a complete, unaltered backup; a BackupError naming the problem otherwise."""
    folder = Path(folder)
    if not folder.is_dir():
        raise BackupError(f"{folder} is not a backup folder: pass the folder `kit backup` printed")
    if not (folder / "INCOMPLETE").exists() and not (folder / NAME).exists():
        raise BackupError(f"{folder} is not a backup: it has no {NAME}; {_pass_a_backup(folder)}")
    if (folder / "INCOMPLETE").exists() or not (folder / NAME).exists():
        raise BackupError(f"{folder} is an incomplete backup (it was interrupted); it is never used for a "
                          "rollback: take a new backup")
    try:
        data = json.loads((folder / NAME).read_text())
    except ValueError:
        raise BackupError(f"{NAME} in {folder} is not valid JSON: the backup was altered; take a new backup") from None
    if not isinstance(data, dict):
        raise BackupError(f"{NAME} in {folder} is not a JSON object: the backup was altered; take a new backup")
    found = Manifest.from_json(data)
    for name, expected in found.files.items():
        path = folder / name
        if not path.is_file():
            raise BackupError(f"{name} is missing from {folder}: the backup is incomplete; take a new backup")
        if path.stat().st_size != expected.bytes or sha256(path) != expected.sha256:
            raise BackupError(f"{name} in {folder} does not match its checksum: the backup was altered or "
                              "truncated; take a new backup")
    return found
