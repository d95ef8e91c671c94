"""data.sql, the row counts and the LLM tables' UUID maps, all from one read of the archive's table data."""

import os
import re
from pathlib import Path

from kit import pgtools
from kit.backup_archive import Entry, write_list
from kit.copy_stream import CopyReader, fields, unescape
from kit.errors import BackupError
from kit.settings import Settings

LINKS = "llm_usage_links.csv"
REPLICA = b"SET session_replication_role = replica;\n\n"
NULL = b"\\N"
LINKED = re.compile(rb"^(\d+)\t(?!\\N\t\\N[\t\n])([^\t\n]*)\t([^\t\n]*)[\t\n]", re.M)
MAP_COLUMNS = {"public.llm_providers": ("id", "name"), "public.llm_models": ("id", "name", "provider_id"),
               "public.llm_usage": ("id", "provider_id", "model_id")}


class Maps:
    """The providers' and models' UUID-name maps, and every linked usage row written to the links CSV."""

    def __init__(self, links: Path):
        self.providers: dict[str, str] = {}
        self.models: dict[str, dict] = {}
        self.path = links
        self._links = os.fdopen(os.open(links, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), "wb")

    def block(self, table: str, columns: list[str], block: bytes) -> None:
        if not all(c in columns for c in MAP_COLUMNS[table]):
            return
        if table == "public.llm_usage":
            self._links.write(_links(block, columns))
            return
        rows = fields(block, columns, MAP_COLUMNS[table])
        if table == "public.llm_providers":
            self.providers.update((r[0].decode(), unescape(r[1])) for r in rows)
        else:
            self.models.update((r[0].decode(), {"name": unescape(r[1]), "provider_id": unescape(r[2])})
                               for r in rows)

    def close(self) -> dict:
        self._links.close()
        return {"llm_providers": self.providers, "llm_models": self.models, "llm_usage": LINKS}


def read(settings: Settings, folder: Path, archive: Path, parts: dict[str, list[Entry]], *, maps: bool,
         on_bytes) -> tuple[dict, dict | None]:
    """Write data.sql from the archive, count every table's rows; the UUID maps when `maps`."""
    mapper = Maps(folder / LINKS) if maps else None
    reader = CopyReader(MAP_COLUMNS if maps else {}, mapper.block if mapper else None)
    path = folder / "data.sql"
    written = 0
    with open(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), "wb") as out:
        out.write(REPLICA)

        def consume(chunk: bytes) -> None:
            nonlocal written
            try:
                out.write(chunk)
            except OSError as exc:
                raise BackupError(f"writing data.sql failed: {exc.strerror}; {folder} is marked incomplete: "
                                  "free space or pass --out DIR, then take the backup again") from None
            reader.feed(chunk)
            written += len(chunk)
            on_bytes(written)

        _restore(settings, folder, archive, parts["data.sql"], consume, "writing data.sql")
    reader.close()
    if parts["other_data"]:
        _restore(settings, folder, archive, parts["other_data"], reader.feed, "counting the platform's tables")
        reader.close()
    on_bytes(written, done=True)
    return reader.counts, mapper.close() if mapper else None


def _links(block: bytes, columns: list[str]) -> bytes:
    """CSV lines `id,provider_id,model_id` of the rows that have a link; a regular expression when the three
    columns lead (the baseline's order: 1M rows in a fraction of a second), else field by field."""
    if columns[:3] == ["id", "provider_id", "model_id"]:
        found = LINKED.findall(block)
        return b"".join(b"%b,%b,%b\n" % row for row in found).replace(NULL, b"")
    return b"".join(b"%b,%b,%b\n" % (i, b"" if p == NULL else p, b"" if m == NULL else m)
                    for i, p, m in fields(block, columns, MAP_COLUMNS["public.llm_usage"]) if p != NULL or m != NULL)


def _restore(settings: Settings, folder: Path, archive: Path, entries: list[Entry], consume, what: str) -> None:
    listing = write_list(folder / ".restore.list", entries)
    try:
        pgtools.stream(settings, "pg_restore", ["--data-only", "--use-list", str(listing), "--file", "-",
                                                str(archive)], consume, what=what)
    finally:
        listing.unlink(missing_ok=True)
