"""The smoke test's `rest` route: supabase-py, sync and async, as the service role."""

import asyncio
import time
from typing import cast

import httpx
from postgrest.exceptions import APIError

from kit.errors import CheckError, ConfigError, ConnectError
from kit.redact import redact
from kit.smoke.driver import KeyColumns
from kit.smoke.rows import AGENT, Col, Shape, same

TABLE = "llm_usage"
AUTH_CODES = ("PGRST300", "PGRST301", "PGRST302")


class RestDriver(KeyColumns):
    def __init__(self, url: str, key: str, secrets: tuple[str, ...] = ()):
        from supabase import create_client

        self.url, self.key, self.secrets = url.rstrip("/"), key, secrets
        self.client = create_client(self.url, key)

    def where(self) -> str:
        return f"rest:{self.url}"

    def _call(self, request):
        try:
            return request.execute().data
        except APIError as exc:
            raise self._error(exc) from None
        except httpx.HTTPError as exc:
            raise ConnectError(f"cannot reach the API at {self.url}: {exc.__class__.__name__}; check SUPABASE_URL") \
                from None

    def _error(self, exc: APIError) -> Exception:
        code, message = exc.code, redact(str(exc.message or exc), self.secrets)
        if code in AUTH_CODES or gateway_refused_key(message):
            return ConfigError(f"the API at {self.url} refused SUPABASE_SERVICE_ROLE_KEY ({code or 401}: {message}); "
                               "copy the service_role key from Dashboard > Project Settings > API")
        return CheckError(f"{code}: {message}", code)

    def models(self) -> list[tuple[str, str]]:
        models = self._call(self.client.table("llm_models").select("*").order("name"))
        providers = {p.get("id"): p["name"] for p in self._call(self.client.table("llm_providers").select("*"))}
        return [(m["name"], m.get("provider_name") or providers.get(m.get("provider_id"), "")) for m in models]

    def shape(self) -> Shape:
        """llm_usage's columns from the OpenAPI description PostgREST serves at /rest/v1/."""
        try:
            answer = httpx.get(f"{self.url}/rest/v1/", headers={"apikey": self.key,
                                                                "Authorization": f"Bearer {self.key}"}, timeout=30)
        except httpx.HTTPError as exc:
            raise ConnectError(f"cannot reach the API at {self.url}: {exc.__class__.__name__}; check SUPABASE_URL") \
                from None
        if answer.status_code == 401:
            try:
                message = redact(str(answer.json().get("message", "")), self.secrets)
            except ValueError:
                message = ""
            said = f": {message}" if message else ""
            raise ConfigError(f"the API at {self.url} refused SUPABASE_SERVICE_ROLE_KEY (401{said}); "
                              "copy the service_role key from Dashboard > Project Settings > API")
        try:
            table = answer.json()["definitions"][TABLE]
        except (ValueError, KeyError, TypeError):
            raise CheckError(f"the API at {self.url} describes no {TABLE} table (HTTP {answer.status_code}): push the "
                             "migrations, or reload PostgREST's schema cache") from None
        required = set(table.get("required", []))
        cols = {name: Col(name, prop.get("format", prop.get("type", "")), name in required,
                          "default" in prop or name not in required, True, list(prop.get("enum", [])))
                for name, prop in table.get("properties", {}).items()}
        key = [n for n, prop in table.get("properties", {}).items() if "<pk/>" in prop.get("description", "")]
        return Shape(cols, key)

    def insert(self, row: dict) -> dict:
        return self._call(self.client.table(TABLE).insert(row))[0]

    def insert_each(self, rows: list[dict]) -> list:
        """One request per row, as agents send them: the row written, or the CheckError, per row."""
        outcomes: list = []
        for row in rows:
            try:
                outcomes.append(self.insert(row))
            except CheckError as exc:
                outcomes.append(exc)
        return outcomes

    def compare_each(self, items: list[tuple], types: dict) -> list:
        """For each (sent, key, marker): (the row read back or None, the columns that differ), or the CheckError."""
        outcomes: list = []
        for sent, key, marker in items:
            try:
                found = self._call(self._locate(self.client.table(TABLE).select("*"), sent, key, marker))
                outcomes.append((found[0], self.differences(sent, found[0], key, marker, types)) if found
                                else (None, []))
            except CheckError as exc:
                outcomes.append(exc)
        return outcomes

    def delete_and_count(self, keys: list[tuple], marker: list | None) -> int:
        left = 0
        if keys:
            self.delete_keys(keys)
            left += len(self.select_keys(keys))
        if marker:
            self.delete_marker(*marker)
            left += len(self.select_marker(*marker))
        return left

    def _where(self, request, key: tuple):
        for column, value in zip(self._key(), key, strict=True):
            request = request.eq(column, value)
        return request

    def differences(self, sent: dict, got: dict, key: tuple | None, marker: list | None, types: dict) -> list[str]:
        """The columns of `sent` whose stored value differs, judged by PostgREST's eq filters (the value cast to
        the column's type by PostgreSQL, as the insert cast it), not by the JSON forms; JSON values as JSON."""
        scalars = {k: v for k, v in sent.items() if v is not None and not isinstance(v, (dict, list))}
        wrong = [k for k, v in sent.items() if k not in scalars and not same(v, got.get(k))]

        def matches(names: list[str]) -> bool:
            request = self._locate(self.client.table(TABLE).select("*"), sent, key, marker)
            for name in names:
                request = request.eq(name, scalars[name])
            return bool(self._call(request))

        if matches(list(scalars)):
            return wrong
        if not matches([]):
            raise CheckError(f"the row for {sent.get('model_name')} was not read back")
        return wrong + [n for n in scalars if not matches([n])]

    def _locate(self, request, sent: dict, key: tuple | None, marker: list | None):
        if key is not None:
            return self._where(request, key)
        if marker is None:  # without a key the builder marks every row: not reached
            raise CheckError("a smoke row has neither a primary key nor a marker to find it by")
        column, kind, run_id = marker
        if kind == "json":
            return request.eq(f"{column}->>smoke_run", run_id).eq(f"{column}->>n", sent[column]["n"])
        return request.eq(column, sent[column])

    def select_keys(self, keys: list[tuple]) -> list[dict]:
        return [r for k in keys for r in self._call(self._where(self.client.table(TABLE).select("*"), k))]

    def delete_keys(self, keys: list[tuple]) -> None:
        for k in keys:
            self._call(self._where(self.client.table(TABLE).delete(), k))

    def _marker(self, request, column: str, kind: str, run_id: str):
        if kind == "json":
            return request.eq(f"{column}->>smoke_run", run_id)
        return request.like(column, f"{AGENT}-{run_id}-*")

    def select_marker(self, column: str, kind: str, run_id: str) -> list[dict]:
        return self._call(self._marker(self.client.table(TABLE).select("*"), column, kind, run_id))

    def delete_marker(self, column: str, kind: str, run_id: str) -> None:
        self._call(self._marker(self.client.table(TABLE).delete(), column, kind, run_id))

    def legacy_insert(self, row: dict) -> tuple[str | None, dict | None]:
        """(the refusal when it is about model_id, else None; the row written when it was accepted)."""
        try:
            return None, self.insert(row)
        except CheckError as exc:
            if exc.code == "PGRST204" and self.refused_only_model_id(row):
                return str(exc), None
            raise

    async def insert_many(self, rows: list[dict]) -> tuple[list[float], list[dict]]:
        """The async client, as agents running many calls at once use it."""
        from supabase import acreate_client

        client = await acreate_client(self.url, self.key)
        latencies: list[float] = []
        returned: list[dict] = []

        async def one(row: dict) -> None:
            start = time.perf_counter()
            try:
                returned.extend(cast("list[dict]", (await client.table(TABLE).insert(row).execute()).data))
            except APIError as exc:
                raise self._error(exc) from None
            except httpx.HTTPError as exc:
                raise ConnectError(f"cannot reach the API at {self.url}: {exc.__class__.__name__}") from None
            latencies.append(time.perf_counter() - start)

        await asyncio.gather(*(one(r) for r in rows))
        return latencies, returned

    def close(self) -> None:
        pass


def gateway_refused_key(message: str) -> bool:
    """Whether an answer's message says the key was refused. The API gateway in front of PostgREST answers a
    bad key with a message alone ("Invalid API key"), no code, and supabase-py keeps no HTTP status, so its
    text is all there is; PostgREST's own refusals have their codes (AUTH_CODES)."""
    text = message.lower()
    return "api key" in text or "jwt" in text
