"""The smoke test's rows, built from llm_usage as it is rather than as the baseline made it.

Known columns are filled with meaningful values when the table has them and they are writable;
an unknown NOT NULL column without a default is filled by its type, or from `--set COLUMN=VALUE`;
generated and identity-always columns are left out. Rows are found again by their primary key
(from RETURNING), or, without one, by a marker in a text or jsonb column proven unused first.
"""

import contextlib
import re
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation

from kit.errors import CheckError, InputError

AGENT = "kit-smoke"


@dataclass
class Col:
    name: str
    type: str  # the base type as format_type writes it, e.g. "character varying(255)", "integer"
    not_null: bool = False
    has_default: bool = False
    writable: bool = True
    enum_labels: list[str] = field(default_factory=list)


@dataclass
class Shape:
    columns: dict[str, Col]
    key: list[str]

    def marker(self) -> tuple[str, str] | None:
        """(column, kind) that can carry this run's marker: a jsonb metadata, else a text column."""
        cols = self.columns
        for name in ("metadata",) + tuple(cols):
            col = cols.get(name)
            if col and col.writable and col.type in ("jsonb", "json"):
                return name, "json"
        for name in ("agent_name",) + tuple(cols):
            col = cols.get(name)
            if col and col.writable and (length := _text_length(col.type)) is not None and length >= 30:
                return name, "text"
        return None


def _text_length(typ: str) -> int | None:
    """Room in a text-like type (10**6 for unbounded); None when it is not text."""
    if typ == "text" or typ == "character varying":
        return 10 ** 6
    match = re.fullmatch(r"character varying\((\d+)\)|character\((\d+)\)", typ)
    return int(match.group(1) or match.group(2)) if match else None


class Builder:
    """Rows for one run: builder.row(model, provider, i)."""

    def __init__(self, shape: Shape, run_id: str, overrides: dict[str, str] | None = None):
        self.shape, self.run_id, self.overrides = shape, run_id, dict(overrides or {})
        check_overrides(shape, self.overrides)
        self.marker = shape.marker()
        self.detail = ""  # how the run's rows are found again, for the check that built it
        if not shape.key and self.marker is None:
            raise CheckError("llm_usage has no primary key and no writable jsonb or text column to mark the smoke "
                             "rows with, so they could not be found again: add a primary key")

    def marker_value(self) -> str:
        """The prefix of a text marker: kit-smoke-<run id>-<n>."""
        return f"{AGENT}-{self.run_id}"

    def row(self, model: str, provider: str, i: int) -> dict:
        cols, run = self.shape.columns, self.run_id
        known = {"provider_name": provider, "model_name": model, "agent_name": AGENT, "prompt_tokens": 100 + i,
                 "completion_tokens": 20 + i, "cost_usd": "0.001250"}
        row = {k: v for k, v in known.items() if k in cols and cols[k].writable}
        if self.marker:
            column, kind = self.marker
            row[column] = {"smoke_run": run, "n": i} if kind == "json" else f"{self.marker_value()}-{i}"
        for col in cols.values():
            if col.name in row or not col.writable or col.has_default or not col.not_null:
                continue
            row[col.name] = self._by_type(col, i)
        for name, value in self.overrides.items():
            row[name] = value
        return row

    def _by_type(self, col: Col, i: int):
        if col.name in self.overrides:
            return self.overrides[col.name]
        typ = col.type
        if col.enum_labels:
            return col.enum_labels[0]
        length = _text_length(typ)
        if length is not None:
            return f"{AGENT}-{self.run_id}-{i}"[:length]
        if typ == "uuid":
            return str(uuid.uuid4())
        if typ in ("integer", "bigint", "smallint"):
            return i
        if typ.startswith("numeric") or typ in ("real", "double precision"):
            return 0
        if typ.startswith("timestamp"):
            return datetime.now(UTC).isoformat()
        if typ == "date":
            return datetime.now(UTC).date().isoformat()
        if typ in ("jsonb", "json"):
            return {}
        if typ == "boolean":
            return False
        raise InputError(f"llm_usage.{col.name} ({typ}) is NOT NULL without a default and the smoke test cannot "
                         f"fill that type: pass --set {col.name}=VALUE")


def check_overrides(shape: Shape, overrides: dict) -> None:
    """Every --set column exists in llm_usage and can be written."""
    for name in overrides:
        col = shape.columns.get(name)
        if col is None:
            raise InputError(f"--set {name}=...: llm_usage has no column {name}"
                             + (" after the migration" if name in ("provider_id", "model_id") else "")
                             + "; fix or drop that --set")
        if not col.writable:
            raise InputError(f"--set {name}=...: llm_usage.{name} is generated or an identity column and cannot be "
                             "written; drop that --set")


def check_inputs(shape: Shape, overrides: dict) -> None:
    """Refuse (InputError) the --set flags and NOT NULL columns a smoke row could not satisfy."""
    check_overrides(shape, overrides)
    with contextlib.suppress(CheckError):  # not about the inputs (no key and no marker column): the smoke step says
        Builder(shape, "preflight", overrides).row("probe", "probe", 0)


def key_of(shape: Shape, row: dict) -> tuple:
    return tuple(row[c] for c in shape.key)


def same(sent, got) -> bool:
    """A value as sent and as read back, compared by meaning (numbers, timestamps, JSON)."""
    if sent is None or got is None:
        return sent is got
    if isinstance(sent, dict) or isinstance(got, dict):
        return sent == got
    try:
        return Decimal(str(sent)) == Decimal(str(got))
    except (InvalidOperation, ValueError):
        pass
    if isinstance(got, datetime) or (isinstance(sent, str) and re.match(r"^\d{4}-\d\d-\d\dT", sent)):
        try:
            a = sent if isinstance(sent, datetime) else datetime.fromisoformat(str(sent))
            b = got if isinstance(got, datetime) else datetime.fromisoformat(str(got))
            return a == b
        except ValueError:
            return False
    return str(sent) == str(got)
