"""A small client for the Supabase Management API (https://api.supabase.com/v1)."""

from dataclasses import dataclass

import httpx

from kit.errors import APIAnswered, ConfigError, ConnectError, KitError, Refused
from kit.redact import redact
from kit.settings import Settings


@dataclass
class ManagementAPI:
    base_url: str
    token: str
    project_ref: str | None
    timeout: float = 30.0
    token_var: str = "SUPABASE_ACCESS_TOKEN"  # the variables they were read from, for advice
    ref_var: str = "SUPABASE_PROJECT_REF"

    @classmethod
    def from_settings(cls, settings: Settings, *, need_ref: bool = True) -> "ManagementAPI":
        if not settings.access_token:
            raise ConfigError(f"{settings.var('access_token')} is not set: create a personal access token "
                              "(Dashboard > Account > Access Tokens) and put it in .env")
        if need_ref and not settings.project_ref:
            raise ConfigError(f"{settings.var('project_ref')} is not set: it is the subdomain of your project URL")
        return cls(settings.api_url.rstrip("/"), settings.access_token, settings.project_ref,
                   token_var=settings.var("access_token"), ref_var=settings.var("project_ref"))

    def request(self, method: str, path: str, **kwargs) -> httpx.Response:
        """Send one request; raise a kit error with a one-line message for anything but 2xx."""
        headers = {"Authorization": f"Bearer {self.token}", "Accept": "application/json"}
        try:
            response = httpx.request(method, self.base_url + path, headers=headers, timeout=self.timeout, **kwargs)
        except httpx.HTTPError as exc:
            raise ConnectError(f"cannot reach the Management API at {self.base_url}: "
                               f"{redact(str(exc) or exc.__class__.__name__, (self.token,))}") from None
        if response.is_success:
            return response
        raise _error(method, path, response, self)

    def get(self, path: str, **kwargs):
        return self.request("GET", path, **kwargs).json()

    def post(self, path: str, body: dict, **kwargs):
        response = self.request("POST", path, json=body, **kwargs)
        return response.json() if response.content else None


def _error(method: str, path: str, response: httpx.Response, api: ManagementAPI) -> KitError:
    try:
        payload = response.json()
        message = payload.get("message") or payload.get("error") or str(payload)
    except ValueError:
        message = response.text[:200]
    detail = redact(str(message), (api.token,))
    message = " ".join(detail.split())
    where = f"{method} {path}"
    if response.status_code == 401:
        return ConfigError(f"the Management API refused the access token ({where}: 401); "
                           f"check {api.token_var}")
    if response.status_code == 403:
        return Refused(f"the access token may not do {where} (403): {message}")
    if response.status_code == 404:
        return ConfigError(f"{where} was not found (404): check {api.ref_var}; {message}")
    return APIAnswered(f"the Management API answered {response.status_code} to {where}: {message}",
                       response.status_code, detail)
