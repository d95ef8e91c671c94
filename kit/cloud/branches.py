"""Preview branches through the Management API: list, create (and wait for its migrations), status, delete.

A branch is a project of its own (its `project_ref`); its migrations and seed run as an "action run"
whose steps (clone, pull, health, configure, migrate, seed, deploy) the API reports one by one.
"""

import time
from dataclasses import asdict, dataclass, field, replace
from typing import Any

from kit.cloud.management import ManagementAPI
from kit.errors import BranchFailed, BranchNotReady, ConfigError, KitError, Refused
from kit.settings import Settings

DONE = {"EXITED"}
FAILED_STEP = {"DEAD"}
FAILED_BRANCH = {"MIGRATIONS_FAILED": "migrate", "FUNCTIONS_FAILED": "deploy"}


@dataclass
class Branch:
    id: str
    name: str
    ref: str
    status: str
    git_branch: str | None = None
    persistent: bool = False
    created_at: str | None = None

    @classmethod
    def from_api(cls, data: dict) -> "Branch":
        return cls(str(data["id"]), data.get("name", ""), data.get("project_ref", ""), data.get("status", ""),
                   data.get("git_branch"), bool(data.get("persistent")), data.get("created_at"))

    def as_dict(self) -> dict:
        return asdict(self)


@dataclass
class BranchStep:
    """One step of a branch's action run, as the API names it and reports its status (e.g. EXITED)."""

    name: str
    status: str

    def as_dict(self) -> dict[str, str]:
        return {"name": self.name, "status": self.status}


@dataclass
class BranchStatus:
    branch: Branch
    run_id: str | None = None
    steps: list[BranchStep] = field(default_factory=list)
    failed_step: str | None = None

    @property
    def done(self) -> bool:
        return self.failed_step is None and bool(self.steps) and all(s.status in DONE for s in self.steps)

    def as_dict(self) -> dict[str, Any]:
        return {"branch": self.branch.as_dict(), "run_id": self.run_id, "steps": [s.as_dict() for s in self.steps],
                "done": self.done, "failed_step": self.failed_step}


def list_branches(settings: Settings) -> list[Branch]:
    api = ManagementAPI.from_settings(settings)
    return [Branch.from_api(b) for b in api.get(f"/v1/projects/{api.project_ref}/branches")]


def find(settings: Settings, name: str) -> Branch:
    """The branch called `name` (or with that id, project ref or git branch)."""
    branches = list_branches(settings)
    for branch in branches:
        if name in (branch.name, branch.id, branch.ref):
            return branch
    for branch in branches:
        if name == branch.git_branch:
            return branch
    known = ", ".join(b.name for b in branches) or "none"
    raise ConfigError(f"no preview branch {name!r} in project {settings.project_ref} (branches: {known}); "
                      "see kit branch list")


def create(settings: Settings, name: str, *, git_branch: str | None = None, wait_s: float = 900,
           poll_s: float = 5, progress=None) -> BranchStatus:
    """Create a preview branch and wait until its migrations and seed have run."""
    if any(b.name == name for b in list_branches(settings)):
        raise Refused(f"a preview branch {name!r} already exists: run kit branch smoke {name}, "
                      f"or kit branch delete {name} first")
    api = ManagementAPI.from_settings(settings)
    body = {"branch_name": name}
    if git_branch:
        body["git_branch"] = git_branch
    branch = Branch.from_api(api.post(f"/v1/projects/{api.project_ref}/branches", body))
    return wait(settings, branch, wait_s=wait_s, poll_s=poll_s, progress=progress)


def status(settings: Settings, name: str) -> BranchStatus:
    return _status(ManagementAPI.from_settings(settings), find(settings, name))


def wait(settings: Settings, branch: Branch, *, wait_s: float = 900, poll_s: float = 5,
         progress=None) -> BranchStatus:
    """Poll the branch's latest action run until every step has exited; raise naming a failed step."""
    api = ManagementAPI.from_settings(settings)
    say = progress or (lambda message: None)
    deadline = time.monotonic() + wait_s
    seen = None
    while True:
        current = _status(api, _refresh(api, branch))
        summary = ", ".join(f"{s.name} {s.status.lower()}" for s in current.steps) or current.branch.status
        if summary != seen:
            say(f"branch {branch.name}: {summary}")
            seen = summary
        if current.failed_step:
            current.branch = _refresh(api, branch)  # its status is set after the step's
            raise BranchFailed(_failure(api, current))
        if current.done:
            return current
        if time.monotonic() >= deadline:
            raise BranchNotReady(f"preview branch {branch.name!r} was not ready after {wait_s:.0f} s ({summary}); "
                                 f"check again with kit branch status {branch.name}")
        time.sleep(poll_s)


def delete(settings: Settings, branch: Branch) -> None:
    ManagementAPI.from_settings(settings).request("DELETE", f"/v1/branches/{branch.id}")


def smoke_settings(settings: Settings, branch: Branch) -> Settings:
    """Settings that point the smoke test's rest route at the branch's API, with its service-role key."""
    api = ManagementAPI.from_settings(settings)
    keys = api.get(f"/v1/projects/{branch.ref}/api-keys", params={"reveal": "true"})
    key = next((k.get("api_key") for k in keys if k.get("name") == "service_role"), None) or next(
        (k.get("api_key") for k in keys if k.get("type") == "secret"), None)
    if not key:
        raise ConfigError(f"the Management API returned no service_role key for branch {branch.name!r}; "
                          "check that the access token may read the branch's API keys")
    return replace(settings, supabase_url=settings.branch_url.format(ref=branch.ref), service_role_key=key)


def _refresh(api: ManagementAPI, branch: Branch) -> Branch:
    for data in api.get(f"/v1/projects/{api.project_ref}/branches"):
        if str(data.get("id")) == branch.id:
            return Branch.from_api(data)
    raise BranchNotReady(f"preview branch {branch.name!r} disappeared while waiting for it: see kit branch list")


def _status(api: ManagementAPI, branch: Branch) -> BranchStatus:
    runs = api.get(f"/v1/projects/{branch.ref}/actions") if branch.ref else []
    if not runs:
        return BranchStatus(branch, failed_step=FAILED_BRANCH.get(branch.status))
    run = max(runs, key=lambda r: r.get("created_at") or "")
    steps = [BranchStep(s.get("name", "?"), s.get("status", "?")) for s in run.get("run_steps") or []]
    failed = next((s.name for s in steps if s.status in FAILED_STEP), None)
    if failed is None and branch.status in FAILED_BRANCH:
        failed = next((s.name for s in steps if s.status not in DONE), FAILED_BRANCH[branch.status])
    return BranchStatus(branch, str(run.get("id")), steps, failed)


def _failure(api: ManagementAPI, current: BranchStatus) -> str:
    name = current.branch.name
    message = f"preview branch {name!r}: step {current.failed_step!r} failed ({current.branch.status or 'no status'})"
    if current.run_id:
        try:
            logs = api.request("GET", f"/v1/projects/{current.branch.ref}/actions/{current.run_id}/logs").text
            last = [line.strip() for line in logs.splitlines() if line.strip()]
            if last:
                message += f": {last[-1][:300]}"
        except KitError:
            pass  # the step's name is the message; the log line only helps
    return message + f"; fix the migration or seed, push again, then kit branch status {name}"
