"""What manifest.json holds, as dataclasses read from its JSON and written back to the same JSON.

A manifest written back (kit backup verify adds its rehearsal) keeps its keys in their order, keys this
kit does not know (a newer kit's), and leaves out what an older kit did not record: existing backups
load and stay byte for byte what they were, apart from what was changed.
"""

from dataclasses import dataclass, field
from typing import Any

DEFAULT_ARCHIVE = "database.dump"  # backups from before --jobs record no archive name
JSON = dict[str, Any]


def _kept(known: JSON, keys: tuple[str, ...], extra: JSON) -> JSON:
    """The JSON object: the known values (those absent when it was read left out while still unset), the unknown
    keys as they were, in the order it was read in (keys set since come last)."""
    values = {k: v for k, v in known.items() if k in keys or v not in (None, {}, [])}
    values.update(extra)
    return {**{k: values[k] for k in keys if k in values}, **{k: v for k, v in values.items() if k not in keys}}


def _extra(data: JSON, known: tuple[str, ...]) -> JSON:
    return {k: v for k, v in data.items() if k not in known}


def _pairs(value: list[list[str]] | None) -> list[tuple[str, str]] | None:
    return None if value is None else [(c, t) for c, t in value]


def _lists(value: list[tuple[str, str]] | None) -> list[list[str]] | None:
    return None if value is None else [[c, t] for c, t in value]


@dataclass
class FileSum:
    """One file of the backup: its size and SHA-256, checked before the backup is used."""

    bytes: int
    sha256: str

    def as_dict(self) -> JSON:
        return {"bytes": self.bytes, "sha256": self.sha256}


@dataclass
class Model:
    name: str
    provider_id: str | None


MAPS_KEYS = ("llm_providers", "llm_models", "llm_usage", "llm_usage_key", "llm_usage_columns", "llm_usage_names",
             "llm_usage_from", "llm_usage_tables")


@dataclass
class Maps:
    """The LLM tables' UUID maps, recorded before the migration: what an in-place rollback gives back.

    `usage_file` is the links file (every llm_usage row's key and links); `usage_key` the table's primary key as
    (column, type) pairs, None in backups from before it was recorded (a bigint id then); `usage_from` is "dump"
    when the links file was cut from the dump's rows of `usage_tables`."""

    providers: dict[str, str]
    models: dict[str, Model]
    usage_file: str
    usage_key: list[tuple[str, str]] | None = None
    usage_columns: list[str] | None = None
    usage_names: list[tuple[str, str]] | None = None
    usage_from: str | None = None
    usage_tables: list[str] | None = None
    keys: tuple[str, ...] = MAPS_KEYS
    extra: JSON = field(default_factory=dict)

    @classmethod
    def from_json(cls, data: JSON) -> "Maps":
        models = {i: Model(m["name"], m.get("provider_id")) for i, m in data.get("llm_models", {}).items()}
        return cls(dict(data.get("llm_providers", {})), models, data.get("llm_usage", ""),
                   _pairs(data.get("llm_usage_key")), data.get("llm_usage_columns"),
                   _pairs(data.get("llm_usage_names")), data.get("llm_usage_from"), data.get("llm_usage_tables"),
                   tuple(data), _extra(data, MAPS_KEYS))

    def to_json(self) -> JSON:
        models = {i: {"name": m.name, "provider_id": m.provider_id} for i, m in self.models.items()}
        known = {"llm_providers": self.providers, "llm_models": models, "llm_usage": self.usage_file,
                 "llm_usage_key": _lists(self.usage_key), "llm_usage_columns": self.usage_columns,
                 "llm_usage_names": _lists(self.usage_names), "llm_usage_from": self.usage_from,
                 "llm_usage_tables": self.usage_tables}
        return _kept(known, self.keys, self.extra)


IDENTITY_KEYS = ("system_identifier", "database", "database_oid", "host", "port", "user", "project_ref", "target",
                 "url_from", "parameters")


@dataclass
class Identity:
    """Which database a backup is of (see kit/backup/identity.py); a field an older kit did not record is None."""

    system_identifier: int | str | None = None
    database: str | None = None
    database_oid: int | None = None
    host: str | None = None
    port: int | None = None
    user: str | None = None
    project_ref: str | None = None
    target: str | None = None
    url_from: str | None = None
    parameters: dict[str, str] | None = None  # the URL's (sslmode, hostaddr...) and the TLS settings, no password
    keys: tuple[str, ...] = IDENTITY_KEYS
    extra: JSON = field(default_factory=dict)

    @classmethod
    def from_json(cls, data: JSON) -> "Identity":
        return cls(**{k: data.get(k) for k in IDENTITY_KEYS}, keys=tuple(data), extra=_extra(data, IDENTITY_KEYS))

    def to_json(self) -> JSON:
        return _kept({k: getattr(self, k) for k in IDENTITY_KEYS}, self.keys, self.extra)


@dataclass
class Rehearsal:
    """The last rehearsal restore of the backup: whether every row count matched, on which server, when."""

    ok: bool
    server: str
    at: str
    detail: str

    def as_dict(self) -> JSON:
        return {"ok": self.ok, "server": self.server, "at": self.at, "detail": self.detail}


MANIFEST_KEYS = ("complete", "target", "database", "server", "client", "started", "finished", "snapshot", "archive",
                 "jobs", "compress", "extensions", "seconds", "bytes", "mb_per_s", "files", "shape", "catalog",
                 "maps", "row_counts", "identity", "platform", "rehearsal")


@dataclass
class Manifest:
    """manifest.json. `catalog` is the LLM tables' catalog as kit.schema.catalog.Catalog.as_dict() gives it,
    `shape` their columns, constraints and indexes (rows of kit.backup.manifest.SHAPE_SQL), `maps` None after
    the migration, `platform` the project's platform backups (or the error reading them), None without a
    project."""

    complete: bool | None = None
    target: str | None = None
    database: str | None = None
    server: str | None = None
    client: str | None = None
    started: str | None = None
    finished: str | None = None
    snapshot: dict[str, str] | None = None
    archive: str | None = None
    jobs: int | None = None
    compress: int | None = None
    extensions: list[str] | None = None
    seconds: float | None = None
    bytes: int | None = None
    mb_per_s: float | None = None
    files: dict[str, FileSum] = field(default_factory=dict)
    shape: list[list[str]] = field(default_factory=list)
    catalog: JSON | None = None
    maps: Maps | None = None
    row_counts: dict[str, int] = field(default_factory=dict)
    identity: Identity | None = None
    platform: JSON | None = None
    rehearsal: Rehearsal | None = None
    keys: tuple[str, ...] = MANIFEST_KEYS[:-1]
    extra: JSON = field(default_factory=dict)

    @property
    def archive_name(self) -> str:
        return self.archive or DEFAULT_ARCHIVE

    def require_maps(self) -> Maps:
        """The UUID maps, which kit rollback checks for before it reads them."""
        if self.maps is None:
            raise ValueError("this backup holds no UUID maps")
        return self.maps

    @classmethod
    def from_json(cls, data: JSON) -> "Manifest":
        plain = {k: data.get(k) for k in MANIFEST_KEYS if k not in ("files", "maps", "identity", "rehearsal")}
        rehearsal = data.get("rehearsal")
        return cls(**{k: v for k, v in plain.items() if v is not None},
                   files={n: FileSum(f["bytes"], f["sha256"]) for n, f in (data.get("files") or {}).items()},
                   maps=Maps.from_json(data["maps"]) if data.get("maps") else None,
                   identity=Identity.from_json(data["identity"]) if data.get("identity") else None,
                   rehearsal=Rehearsal(rehearsal.get("ok"), rehearsal.get("server"), rehearsal.get("at"),
                                       rehearsal.get("detail")) if rehearsal else None,
                   keys=tuple(data), extra=_extra(data, MANIFEST_KEYS))

    def to_json(self) -> JSON:
        known = {k: getattr(self, k) for k in MANIFEST_KEYS}
        known.update(files={n: f.as_dict() for n, f in self.files.items()},
                     maps=self.maps.to_json() if self.maps else None,
                     identity=self.identity.to_json() if self.identity else None,
                     rehearsal=self.rehearsal.as_dict() if self.rehearsal else None)
        return _kept(known, self.keys, self.extra)
