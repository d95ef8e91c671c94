"""`kit smoke`: insert LLM usage rows the way agents do, read them back, and leave nothing behind.

Two routes share the checks: `rest` goes through supabase-py to the project's API as the service
role; `sql` (the local default, where PostgREST cannot run) does what PostgREST does for such a
request: one transaction, `set local role service_role`, the JWT claims in request.jwt.claims.
"""

import asyncio
import statistics
import time
import uuid
from dataclasses import asdict, dataclass, field

from kit.errors import ConfigError, KitError
from kit.settings import Settings

AGENT = "kit-smoke"
LEGACY_ADVICE = ("clients that still send model_id will break after the migration: remove model_id (and "
                 "provider_id) from their llm_usage payloads and send model_name and provider_name")


@dataclass
class Check:
    name: str
    ok: bool
    detail: str
    seconds: float = 0.0

    def as_dict(self) -> dict:
        return asdict(self)


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


class CheckError(Exception):
    """A request the check made was answered with an error; the message says which."""


def default_route(settings: Settings) -> str:
    if settings.supabase_url and not settings.service_role_key:
        url, key = settings.var("supabase_url"), settings.var("service_role_key")
        raise ConfigError(f"{url} is set but {key} is not: add the service_role key "
                          f"(Dashboard > Project Settings > API), or unset {url} to smoke-test over SQL")
    return "rest" if settings.supabase_url else "sql"


def driver_for(settings: Settings, via: str, check_only: bool = False):
    """The route's driver; with check_only, just refuse a configuration the route cannot use."""
    if via == "rest":
        from kit.smoke_rest import RestDriver

        default_route(settings)
        if not settings.supabase_url:
            raise ConfigError(f"the rest route needs {settings.var('supabase_url')} and "
                              f"{settings.var('service_role_key')} (or use --via sql)")
        return None if check_only else RestDriver(settings.supabase_url, settings.service_role_key, settings.secrets)
    if check_only:
        return None
    from kit.smoke_sql import SqlDriver

    return SqlDriver(settings)


def run(settings: Settings, via: str | None = None, *, concurrency: int = 20, progress=None) -> SmokeResult:
    """Run every check; a failed check makes ok False, a setup problem raises a kit error."""
    via = via or default_route(settings)
    driver = driver_for(settings, via)
    result = SmokeResult(via, uuid.uuid4().hex[:12])
    say = progress or (lambda message: None)
    ledger = Ledger(settings)
    try:
        _sweep(driver, result, ledger, say)
        ledger.add(result.run_id)
        _checks(driver, result, concurrency, say)
    finally:
        if _cleanup(driver, result, say):
            ledger.remove(result.run_id)
        driver.close()
    return result


class Ledger:
    """Run ids whose rows may still be in the database (the run was cut off), kept in the report folder."""

    def __init__(self, settings: Settings):
        self.path = settings.cwd / settings.report_dir / "smoke-unfinished-runs.txt"  # beside the deploy reports

    def ids(self) -> list[str]:
        return self.path.read_text().split() if self.path.exists() else []

    def add(self, run_id: str) -> None:
        self._write(self.ids() + [run_id])

    def remove(self, run_id: str) -> None:
        self._write([i for i in self.ids() if i != run_id])

    def _write(self, ids: list[str]) -> None:
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self.path.write_text("".join(f"{i}\n" for i in ids))
        except OSError:
            pass  # the ledger only helps the next run; the smoke test itself does not depend on it


def _sweep(driver, result: SmokeResult, ledger: Ledger, say) -> None:
    """Delete the rows of earlier runs that were cut off before their cleanup (a crash, a restart)."""
    stale = ledger.ids()
    if not stale:
        return
    say("rows left by unfinished earlier runs")
    try:
        for run_id in stale:
            driver.delete(run_id)
            ledger.remove(run_id)
    except CheckError as exc:
        result.checks.append(Check("rows of unfinished earlier runs deleted", False, str(exc)))
        return
    result.checks.append(Check("rows of unfinished earlier runs deleted", True, ", ".join(stale)))


def _checks(driver, result: SmokeResult, concurrency: int, say) -> None:
    models = _step(result, "registered models are readable", lambda: _models(driver), say)
    if models is None:
        return
    rows = [row(result.run_id, model, provider, i) for i, (model, provider) in enumerate(models)]
    written = _step(result, f"insert a usage row for each of {len(rows)} registered model(s)",
                    lambda: [driver.insert(r) for r in rows], say)
    stray = row(result.run_id, f"kit-smoke-unregistered-{result.run_id}", "kit-smoke-provider", len(rows))
    if _step(result, "insert a usage row for a model that is not registered", lambda: driver.insert(stray), say):
        rows.append(stray)
    if written is not None:
        _step(result, "rows read back with every field intact", lambda: _compare(driver, result.run_id, rows), say)
    _step(result, f"{concurrency} concurrent inserts", lambda: _concurrent(driver, result, models, concurrency), say)
    _legacy(driver, result, models, say)


def _step(result: SmokeResult, name: str, action, say):
    say(name)
    start = time.perf_counter()
    try:
        value = action()
        detail = value if isinstance(value, str) else f"{len(value)} row(s)" if isinstance(value, list) else "ok"
        result.checks.append(Check(name, True, detail, time.perf_counter() - start))
        return value if value is not None else True
    except CheckError as exc:
        result.checks.append(Check(name, False, str(exc), time.perf_counter() - start))
        return None


def _models(driver) -> list[tuple[str, str]]:
    models = driver.models()
    if not models:
        raise CheckError("llm_models is empty: load supabase/seed.sql (or register a model) first")
    return models


def row(run_id: str, model: str, provider: str, i: int) -> dict:
    return {"provider_name": provider, "model_name": model, "agent_name": AGENT, "prompt_tokens": 100 + i,
            "completion_tokens": 20 + i, "cost_usd": "0.001250", "metadata": {"smoke_run": run_id, "n": i}}


def _compare(driver, run_id: str, sent: list[dict]) -> str:
    back = {r["metadata"]["n"]: r for r in driver.select(run_id) if "n" in (r.get("metadata") or {})}
    for want in sent:
        got = back.get(want["metadata"]["n"])
        if got is None:
            raise CheckError(f"the row for {want['model_name']} was not read back")
        wrong = [k for k, v in want.items() if _plain(got.get(k)) != _plain(v)]
        if got.get("total_tokens") != want["prompt_tokens"] + want["completion_tokens"]:
            wrong.append("total_tokens")
        if not got.get("created_at"):
            wrong.append("created_at")
        if wrong:
            raise CheckError(f"the row for {want['model_name']} came back with different {', '.join(wrong)}")
    return f"{len(sent)} row(s) intact, created_at set"


def _plain(value):
    from decimal import Decimal

    return str(Decimal(str(value)).normalize()) if isinstance(value, (int, float, Decimal)) or (
        isinstance(value, str) and value.replace(".", "", 1).isdigit()) else value


def _concurrent(driver, result: SmokeResult, models, n: int) -> str:
    model, provider = models[0]
    rows = [row(result.run_id, model, provider, 1000 + i) for i in range(n)]
    latencies = asyncio.run(driver.insert_many(rows))
    result.latency = {"inserts": n, "median_ms": round(statistics.median(latencies) * 1000, 1),
                      "p95_ms": round(sorted(latencies)[max(0, int(len(latencies) * 0.95) - 1)] * 1000, 1)}
    return f"median {result.latency['median_ms']} ms, p95 {result.latency['p95_ms']} ms"


def _legacy(driver, result: SmokeResult, models, say) -> None:
    """An old client's payload, still carrying model_id: accepted before the migration, refused after."""
    model, provider = models[0]
    legacy = {**row(result.run_id, model, provider, 9999), "model_id": None}
    say("legacy payload with model_id")
    try:
        refusal = driver.legacy_insert(legacy)
    except CheckError as exc:
        result.checks.append(Check("legacy payload with model_id (reported, not failed)", False, str(exc)))
        return
    if refusal:
        result.warnings.append(f"{refusal}: {LEGACY_ADVICE}")
    detail = f"refused ({refusal}); see warnings" if refusal else "accepted (the model_id column still exists)"
    result.checks.append(Check("legacy payload with model_id (reported, not failed)", True, detail))


def _cleanup(driver, result: SmokeResult, say) -> bool:
    say("cleanup")
    start = time.perf_counter()
    try:
        driver.delete(result.run_id)
        left = len(driver.select(result.run_id))
        result.checks.append(Check("every smoke row deleted", left == 0,
                                   f"{left} row(s) left with run id {result.run_id}" if left else
                                   f"none left (run id {result.run_id})", time.perf_counter() - start))
        return left == 0
    except (CheckError, KitError) as exc:
        result.checks.append(Check("every smoke row deleted", False,
                                   f"{exc}; the next kit smoke run from this folder deletes them (run id "
                                   f"{result.run_id})"))
        return False
