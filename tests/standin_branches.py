"""A stand-in for the Management API's branch endpoints and for each branch's PostgREST.

The Management API cannot be reached and PostgREST cannot run here. This serves, on one local
port, the endpoints `kit branch` uses, answering with the shapes the API documents:

  GET/POST /v1/projects/{ref}/branches, DELETE /v1/branches/{id},
  GET /v1/projects/{branch_ref}/actions, GET .../actions/{run_id}/logs,
  GET /v1/projects/{branch_ref}/api-keys?reveal=true,

and `/{branch_ref}/rest/v1/...` as that branch's PostgREST (tests/standin_postgrest.py). Each
branch is backed by a real, empty test database (Supabase's roles and schemas only): its action
run really applies supabase/migrations (kit's direct route) at the `migrate` step and
supabase/seed.sql at the `seed` step, one step per poll, so a test sees the run progress.
"""

import itertools
from dataclasses import dataclass, field

from kit import push, settings as settings_mod
from tests.helpers import ROOT, run_file
from tests.standin import Reply, Request
from tests.standin_postgrest import postgrest_route

STEPS = ("clone", "pull", "health", "configure", "migrate", "seed", "deploy")


@dataclass
class FakeBranch:
    id: str
    name: str
    ref: str
    db_url: str
    git_branch: str | None
    fail_at: str | None
    status: str = "CREATING_PROJECT"
    steps: dict = field(default_factory=lambda: {s: "CREATED" for s in STEPS})
    polls: int = 0

    def api(self, parent: str) -> dict:
        return {"id": self.id, "name": self.name, "project_ref": self.ref, "parent_project_ref": parent,
                "is_default": False, "git_branch": self.git_branch, "persistent": False, "status": self.status,
                "created_at": "2026-11-25T10:00:00Z", "updated_at": "2026-11-25T10:00:00Z"}

    def advance(self) -> None:
        """Run the next step for real; the first poll sees no run yet, as a new branch does."""
        self.polls += 1
        if self.polls == 1 or self.status.endswith("FAILED"):
            return
        pending = [s for s in STEPS if self.steps[s] != "EXITED"]
        if not pending:
            return
        step = pending[0]
        self.status = "RUNNING_MIGRATIONS" if step in ("migrate", "seed") else self.status
        try:
            self._run(step)
        except Exception as exc:  # noqa: BLE001 - a failing step is what the test wants to see reported
            self.steps[step] = "DEAD"
            self.status = "FUNCTIONS_FAILED" if step == "deploy" else "MIGRATIONS_FAILED"
            self.log = f"{step}: {exc}".splitlines()[0]
            return
        self.steps[step] = "EXITED"
        if step == "seed":
            self.status = "MIGRATIONS_PASSED"
        if step == "deploy":
            self.status = "FUNCTIONS_DEPLOYED"

    def _run(self, step: str) -> None:
        if step == self.fail_at:
            raise RuntimeError(f'ERROR: relation "public.llm_modelz" does not exist (SQLSTATE 42P01) in {step}')
        if step == "migrate":
            s = settings_mod.load({"db_url": self.db_url}, environ={}, cwd=ROOT)
            push.run(s, "direct", lint_files=False)
        if step == "seed":
            run_file(self.db_url, (ROOT / "supabase" / "seed.sql").read_text())


class BranchesAPI:
    """The route; `databases` hands out a fresh empty database per created branch."""

    def __init__(self, parent: str, token: str, key: str, databases, fail_at: str | None = None):
        self.parent, self.token, self.key, self.databases = parent, token, key, databases
        self.fail_at = fail_at
        self.branches: dict[str, FakeBranch] = {}
        self.deleted: list[str] = []
        self._ids = itertools.count(1)

    def __call__(self, request: Request) -> Reply:
        parts = request.path.strip("/").split("/")
        if len(parts) > 2 and parts[1:3] == ["rest", "v1"]:
            branch = self._by_ref(parts[0])
            if branch is None:
                return Reply(404, {"message": "project not found"})
            request.path = "/" + "/".join(parts[1:])
            return postgrest_route(branch.db_url, self.key)(request)
        if request.headers.get("authorization") != f"Bearer {self.token}":
            return Reply(401, {"message": "Unauthorized"})
        return self._management(request, parts)

    def _management(self, request: Request, parts: list[str]) -> Reply:
        if parts[:3] == ["v1", "projects", self.parent] and parts[3:] == ["branches"]:
            if request.method == "POST":
                return self._create(request.json)
            return Reply(200, [b.api(self.parent) for b in self.branches.values()])
        if parts[:2] == ["v1", "branches"] and request.method == "DELETE":
            branch = self.branches.pop(parts[2], None)
            if branch is None:
                return Reply(404, {"message": "Branch not found"})
            self.deleted.append(branch.name)
            return Reply(200, {"message": "ok"})
        branch = self._by_ref(parts[2]) if parts[:2] == ["v1", "projects"] and len(parts) > 3 else None
        if branch is None:
            return Reply(404, {"message": "Not Found"})
        if parts[3:] == ["actions"]:
            branch.advance()
            return Reply(200, [] if branch.polls == 1 else [self._run(branch)])
        if parts[3:] == ["actions", "run-1", "logs"]:
            return Reply(200, getattr(branch, "log", "all steps exited").encode() + b"\n",
                         {"Content-Type": "text/plain"})
        if parts[3:] == ["api-keys"] and ("reveal", "true") in request.query:
            return Reply(200, [{"name": "anon", "api_key": "anon-" + branch.ref, "type": "legacy"},
                               {"name": "service_role", "api_key": self.key, "type": "legacy"}])
        return Reply(404, {"message": "Not Found"})

    def _create(self, body: dict) -> Reply:
        if not body or "branch_name" not in body:
            return Reply(400, {"message": "branch_name is required"})
        n = next(self._ids)
        branch = FakeBranch(f"00000000-0000-0000-0000-{n:012d}", body["branch_name"], f"branchref{n:011d}",
                            self.databases(), body.get("git_branch"), self.fail_at)
        self.branches[branch.id] = branch
        return Reply(201, branch.api(self.parent))

    def _run(self, branch: FakeBranch) -> dict:
        return {"id": "run-1", "branch_id": branch.id, "created_at": "2026-11-25T10:00:01Z",
                "updated_at": "2026-11-25T10:00:02Z",
                "run_steps": [{"name": s, "status": branch.steps[s], "created_at": "2026-11-25T10:00:01Z",
                               "updated_at": "2026-11-25T10:00:02Z"} for s in STEPS]}

    def _by_ref(self, ref: str) -> FakeBranch | None:
        return next((b for b in self.branches.values() if b.ref == ref), None)
