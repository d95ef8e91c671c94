"""The smoke test's `rest` route: supabase-py, sync and async, as the service role."""

import asyncio
import time

import httpx
from postgrest.exceptions import APIError

from kit.errors import ConfigError, ConnectError
from kit.redact import redact
from kit.smoke import CheckError

TABLE = "llm_usage"
AUTH_CODES = ("PGRST300", "PGRST301", "PGRST302")


class RestDriver:
    def __init__(self, url: str, key: str, secrets: tuple[str, ...] = ()):
        from supabase import create_client

        self.url, self.key, self.secrets = url.rstrip("/"), key, secrets
        self.client = create_client(self.url, key)

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
        if code in AUTH_CODES or "api key" in message.lower() or "jwt" in message.lower():
            return ConfigError(f"the API at {self.url} refused SUPABASE_SERVICE_ROLE_KEY ({code or 401}: {message}); "
                               "copy the service_role key from Dashboard > Project Settings > API")
        return CheckError(f"{code}: {message}")

    def models(self) -> list[tuple[str, str]]:
        models = self._call(self.client.table("llm_models").select("*").order("name"))
        providers = {p.get("id"): p["name"] for p in self._call(self.client.table("llm_providers").select("*"))}
        return [(m["name"], m.get("provider_name") or providers.get(m.get("provider_id"), "")) for m in models]

    def insert(self, row: dict) -> dict:
        return self._call(self.client.table(TABLE).insert(row))[0]

    def select(self, run_id: str) -> list[dict]:
        return self._call(self.client.table(TABLE).select("*").eq("metadata->>smoke_run", run_id))

    def delete(self, run_id: str) -> None:
        self._call(self.client.table(TABLE).delete().eq("metadata->>smoke_run", run_id))

    def legacy_insert(self, row: dict) -> str | None:
        try:
            self.insert(row)
        except CheckError as exc:
            if str(exc).startswith("PGRST204"):
                return str(exc)
            raise
        return None

    async def insert_many(self, rows: list[dict]) -> list[float]:
        """The async client, as agents running many calls at once use it."""
        from supabase import acreate_client

        client = await acreate_client(self.url, self.key)
        latencies: list[float] = []

        async def one(row: dict) -> None:
            start = time.perf_counter()
            try:
                await client.table(TABLE).insert(row).execute()
            except APIError as exc:
                raise self._error(exc) from None
            except httpx.HTTPError as exc:
                raise ConnectError(f"cannot reach the API at {self.url}: {exc.__class__.__name__}") from None
            latencies.append(time.perf_counter() - start)

        await asyncio.gather(*(one(r) for r in rows))
        return latencies

    def close(self) -> None:
        pass
