"""`kit smoke`: insert LLM usage rows the way agents do, read them back, and leave nothing behind.

Two routes share the checks: `rest` goes through supabase-py to the project's API as the service
role; `sql` (the local default, where PostgREST cannot run) does what PostgREST does for such a
request: one transaction, `set local role service_role`, the JWT claims in request.jwt.claims.
"""

import asyncio
import statistics
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal, overload

import psycopg

from kit.checks import Check
from kit.errors import CheckError, ConfigError, KitError
from kit.settings import Settings
from kit.smoke.driver import Driver
from kit.smoke.ledger import Ledger
from kit.smoke.rows import AGENT, Builder, key_of
from kit.smoke.sql import SqlDriver

CONCURRENCY = 20  # concurrent inserts the smoke test times, unless told otherwise
LEGACY_ADVICE = ("clients that still send model_id will break after the migration: remove model_id (and "
                 "provider_id) from their llm_usage payloads and send model_name and provider_name")


@dataclass
class SmokeResult:
    via: str
    run_id: str
    checks: list[Check] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    latency: dict = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return all(c.ok for c in self.checks)

    def as_dict(self) -> dict:
        return {"ok": self.ok, "via": self.via, "run_id": self.run_id, "checks": [c.as_dict() for c in self.checks],
                "warnings": self.warnings, "latency": self.latency}


def default_route(settings: Settings) -> str:
    if settings.supabase_url and not settings.service_role_key:
        url, key = settings.var("supabase_url"), settings.var("service_role_key")
        raise ConfigError(f"{url} is set but {key} is not: add the service_role key "
                          f"(Dashboard > Project Settings > API), or unset {url} to smoke-test over SQL")
    return "rest" if settings.supabase_url else "sql"


@overload
def driver_for(settings: Settings, via: str, check_only: Literal[False] = False,
               conn: psycopg.Connection | None = None) -> Driver: ...
@overload
def driver_for(settings: Settings, via: str, check_only: Literal[True],
               conn: psycopg.Connection | None = None) -> None: ...
def driver_for(settings: Settings, via: str, check_only: bool = False,
               conn: psycopg.Connection | None = None) -> Driver | None:
    """The route's driver (the sql one on `conn` when given); with check_only, just refuse a configuration the
    route cannot use."""
    if via == "rest":
        # supabase-py takes a third of a second to import: only this route needs it
        from kit.smoke.rest import RestDriver

        default_route(settings)  # a URL without its key is refused there
        url, key = settings.supabase_url, settings.service_role_key
        if not url or not key:
            raise ConfigError(f"the rest route needs {settings.var('supabase_url')} and "
                              f"{settings.var('service_role_key')} (or use --via sql)")
        return None if check_only else RestDriver(url, key, settings.secrets)
    if check_only:
        return None
    return SqlDriver(settings, conn)


def run(settings: Settings, via: str | None = None, *, concurrency: int = CONCURRENCY,
        progress: Callable[[str], Any] | None = None, overrides: dict[str, str] | None = None,
        conn: psycopg.Connection | None = None) -> SmokeResult:
    """Run every check; a failed check makes ok False, a setup problem raises a kit error. Over SQL, `conn` (a
    deploy's) is used rather than a connection of the smoke test's own."""
    via = via or default_route(settings)
    driver = driver_for(settings, via, conn=conn)
    result = SmokeResult(via, uuid.uuid4().hex[:12])
    say = progress or (lambda message: None)
    ledger = Ledger(settings, driver.where())
    run_ = Run(result, None, [])
    try:
        _sweep(driver, result, ledger, say)
        builder = _step(result, "llm_usage's shape read and a row built from it",
                        lambda: _builder(driver, result.run_id, overrides), say)
        if builder is not None:
            run_.builder = builder
            ledger.add(result.run_id, _marker(builder))
            _checks(driver, run_, concurrency, say, ledger)
    finally:
        if run_.builder is None or _cleanup(driver, run_, say):
            ledger.remove(result.run_id)
        driver.close()
    return result


@dataclass
class Run:
    result: SmokeResult
    builder: Builder | None  # None until llm_usage's shape is read; every check that writes runs after
    keys: list[tuple]  # the primary keys of every row this run wrote, from RETURNING

    @property
    def rows(self) -> Builder:
        """The builder, for the checks that write (they run only once it is made)."""
        if self.builder is None:
            raise CheckError("llm_usage's shape was not read, so no smoke row can be built")
        return self.builder


def _marker(builder: Builder) -> list | None:
    return [*builder.marker, builder.run_id] if builder.marker else None


def _builder(driver: Driver, run_id: str, overrides: dict[str, str] | None) -> Builder:
    builder = Builder(driver.shape(), run_id, overrides)
    builder.row("probe", "probe", 0)  # a column it cannot fill fails here, naming the column and --set
    if builder.marker and driver.select_marker(*builder.marker, run_id):  # proves the marker is this run's alone
        raise CheckError(f"rows marked with run id {run_id} exist already; run kit smoke again")
    shape = builder.shape
    how = (f"by primary key ({', '.join(shape.key)})" if shape.key or not builder.marker
           else f"by the marker in {builder.marker[0]} (no primary key)")
    builder.detail = f"{len(shape.columns)} columns; rows found {how}"
    return builder


def _sweep(driver, result: SmokeResult, ledger: Ledger, say) -> None:
    """Delete the rows of earlier runs that were cut off before their cleanup (a crash, a restart)."""
    stale = ledger.entries()
    if not stale:
        return
    say("rows left by unfinished earlier runs")
    try:
        for entry in stale:
            if entry.keys:
                driver.delete_keys([tuple(k) for k in entry.keys])
            if entry.marker:
                driver.delete_marker(*entry.marker)  # column, kind, run id
            ledger.remove(entry.run)
    except CheckError as exc:
        result.checks.append(Check("rows of unfinished earlier runs deleted", False, str(exc), seconds=0.0))
        return
    result.checks.append(Check("rows of unfinished earlier runs deleted", True, ", ".join(e.run for e in stale),
                               seconds=0.0))


def _checks(driver: Driver, run: Run, concurrency: int, say: Callable[[str], Any], ledger: Ledger) -> None:
    result, builder = run.result, run.rows
    models = _step(result, "registered models are readable", lambda: _models(driver), say)
    if models is None:
        return

    rows = [builder.row(model, provider, i) for i, (model, provider) in enumerate(models)]
    stray = builder.row(f"kit-smoke-unregistered-{result.run_id}", "kit-smoke-provider", len(rows))
    try:
        outcomes = driver.insert_each(rows + [stray])  # one flight over SQL; each row its own request
    except CheckError as exc:  # the connection itself failed: every request with it
        outcomes = [exc] * (len(rows) + 1)
    _keep(run, ledger, [o for o in outcomes if not isinstance(o, CheckError)])
    written = _step(result, f"insert a usage row for each of {len(rows)} registered model(s)",
                    lambda: _written(outcomes[:-1]), say)
    stray_back = _step(result, "insert a usage row for a model that is not registered",
                       lambda: _written(outcomes[-1:]), say)
    if written is not None:
        pairs = list(zip(rows, written, strict=False)) + ([(stray, stray_back[0])] if stray_back else [])
        _step(result, "rows read back with every field intact", lambda: _compare(driver, builder, pairs), say)
    _step(result, f"{concurrency} concurrent inserts", lambda: _concurrent(driver, run, models, concurrency, ledger),
          say)
    _legacy(driver, run, models, say, ledger)


def _written(outcomes: list) -> list[dict]:
    """The rows written, or the first request's error."""
    failed = next((o for o in outcomes if isinstance(o, CheckError)), None)
    if failed:
        raise failed
    return outcomes


def _keep(run: Run, ledger: Ledger, returned: list[dict]) -> None:
    shape = run.rows.shape
    if shape.key:
        run.keys += [key_of(shape, r) for r in returned]
        ledger.add(run.result.run_id, _marker(run.rows),
                   run.keys)


def _step(result: SmokeResult, name: str, action, say):
    say(name)
    start = time.perf_counter()
    try:
        value = action()
        detail = getattr(value, "detail", None) or (value if isinstance(value, str) else f"{len(value)} row(s)"
                                                    if isinstance(value, list) else "ok")
        result.checks.append(Check(name, True, detail, seconds=time.perf_counter() - start))
        return value if value is not None else True
    except CheckError as exc:
        result.checks.append(Check(name, False, str(exc), seconds=time.perf_counter() - start))
        return None


def _models(driver) -> list[tuple[str, str]]:
    models = driver.models()
    if not models:
        raise CheckError("llm_models is empty: load supabase/seed.sql (or register a model) first")
    return models


def row(run_id: str, model: str, provider: str, i: int) -> dict:
    """A row for the baseline's llm_usage (the request-shape tests pin what supabase-py sends)."""
    return {"provider_name": provider, "model_name": model, "agent_name": AGENT, "prompt_tokens": 100 + i,
            "completion_tokens": 20 + i, "cost_usd": "0.001250", "metadata": {"smoke_run": run_id, "n": i}}


def _compare(driver, builder: Builder, pairs: list[tuple[dict, dict]]) -> str:
    """Read each row back by its key (or the run's marker) and compare the columns it was sent with."""
    shape = builder.shape
    types = {name: col.type for name, col in shape.columns.items()}
    items = [(sent, key_of(shape, got) if shape.key else None, _marker(builder)) for sent, got in pairs]
    extra = []
    for (sent, _, _), outcome in zip(items, driver.compare_each(items, types), strict=True):
        if isinstance(outcome, CheckError):
            raise outcome
        got, wrong = outcome
        if got is None:
            raise CheckError(f"the row for {sent.get('model_name')} was not read back")
        cols = shape.columns
        if "total_tokens" in cols and not cols["total_tokens"].writable and {"prompt_tokens", "completion_tokens"} \
                <= set(sent) and got.get("total_tokens") != sent["prompt_tokens"] + sent["completion_tokens"]:
            wrong.append("total_tokens")
        if "created_at" in cols and cols["created_at"].has_default and not got.get("created_at"):
            wrong.append("created_at")
        if wrong:
            raise CheckError(f"the row for {sent.get('model_name')} came back with different {', '.join(wrong)}")
        extra = [c for c in ("total_tokens", "created_at") if c in cols]
    return f"{len(pairs)} row(s) intact" + (f", {' and '.join(extra)} as expected" if extra else "")


def _concurrent(driver, run: Run, models, n: int, ledger: Ledger) -> str:
    model, provider = models[0]
    result = run.result
    rows = [run.rows.row(model, provider, 1000 + i) for i in range(n)]
    latencies, returned = asyncio.run(driver.insert_many(rows))
    _keep(run, ledger, returned)
    result.latency = {"inserts": n, "median_ms": round(statistics.median(latencies) * 1000, 1),
                      "p95_ms": round(sorted(latencies)[max(0, int(len(latencies) * 0.95) - 1)] * 1000, 1)}
    return f"median {result.latency['median_ms']} ms, p95 {result.latency['p95_ms']} ms"


def _legacy(driver, run: Run, models, say, ledger: Ledger) -> None:
    """An old client's payload, still carrying model_id: accepted before the migration, refused after."""
    model, provider = models[0]
    result = run.result
    legacy = {**run.rows.row(model, provider, 9999), "model_id": None}
    say("legacy payload with model_id")
    try:
        refusal, returned = driver.legacy_insert(legacy)
    except CheckError as exc:
        result.checks.append(Check("legacy payload with model_id (reported, not failed)", False, str(exc),
                                   seconds=0.0))
        return
    if returned:
        _keep(run, ledger, [returned])
    if refusal:
        result.warnings.append(f"{refusal}: {LEGACY_ADVICE}")
    detail = f"refused ({refusal}); see warnings" if refusal else "accepted (the model_id column still exists)"
    result.checks.append(Check("legacy payload with model_id (reported, not failed)", True, detail, seconds=0.0))


def _cleanup(driver, run: Run, say) -> bool:
    say("cleanup")
    result = run.result
    start = time.perf_counter()
    try:
        left = driver.delete_and_count(run.keys, _marker(run.rows))
        result.checks.append(Check("every smoke row deleted", left == 0,
                                   f"{left} row(s) left from run {result.run_id}" if left else
                                   f"none left (run id {result.run_id})", seconds=time.perf_counter() - start))
        return left == 0
    except KitError as exc:
        result.checks.append(Check("every smoke row deleted", False,
                                   f"{exc}; the next kit smoke run from this folder deletes them (run id "
                                   f"{result.run_id})", seconds=0.0))
        return False
