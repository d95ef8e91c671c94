"""What `kit init` offers beside the migration: a workflow, `.env.example` entries, a seed warning.

The preview-branch smoke workflow, the `.env.example` entries the team's file lacks, and a warning
when seed.sql writes the UUID columns the change drops.

`plan` reads and refuses (name clash, unwritable folder) before anything is written; `write` only
creates files, except `.env.example`, to which --with-env-example appends (never changing a line).
"""

import os
import re
from dataclasses import dataclass, field
from pathlib import Path

from kit.errors import ConfigError
from kit.migrations import workdir

PACKAGE_ROOT = Path(__file__).resolve().parents[1]  # kit/
WORKFLOW_TEMPLATE = PACKAGE_ROOT / "templates" / "llm-preview-smoke.yml"
WORKFLOW = Path(".github") / "workflows" / "llm-preview-smoke.yml"
ENV_LINE = re.compile(r"^\s*#?\s*(?:export\s+)?([A-Z][A-Z0-9_]*)\s*=")
UUID_COLUMNS = re.compile(r"\b(provider_id|model_id)\b", re.IGNORECASE)
ENV_HEADER = "# --- supabase-kit (added by kit init) ---"


@dataclass
class Extras:
    workflow: str = "offered: pass --with-workflow to write " + str(WORKFLOW)
    write_workflow: bool = False
    env_missing: list[str] = field(default_factory=list)
    env_text: str = ""
    env: str = "nothing missing"
    write_env: bool = False
    seed_warning: str | None = None

    def as_dict(self) -> dict:
        return {"workflow": self.workflow, "env_missing": self.env_missing, "env_example": self.env,
                "seed_warning": self.seed_warning}


def plan(folder: Path, *, workflow: bool, env_example: bool) -> Extras:
    extras = Extras(seed_warning=seed_warning(folder))
    target = folder / WORKFLOW
    template = WORKFLOW_TEMPLATE.read_text(encoding="utf-8")
    if target.exists():
        same = target.is_file() and target.read_text(encoding="utf-8", errors="replace") == template
        if not same and workflow:
            raise ConfigError(f"{WORKFLOW} exists with other content: rename it, or run kit init without "
                              "--with-workflow")
        extras.workflow = f"there already: {WORKFLOW}" if same else f"not written: {WORKFLOW} is your own file"
    elif workflow:
        require_can_create(target)
        extras.write_workflow, extras.workflow = True, f"written: {WORKFLOW}"
    missing, text = env_entries(folder / ".env.example")
    extras.env_missing, extras.env_text = missing, text
    if missing:
        extras.env = f"offered: pass --with-env-example to add {len(missing)} entries to .env.example"
        if env_example:
            require_can_create(folder / ".env.example")
            extras.write_env = True
            extras.env = f"added {len(missing)} entries to .env.example"
    return extras


def write(folder: Path, extras: Extras) -> list[str]:
    """Create the workflow and add the .env.example entries that `plan` decided; the paths written."""
    written = []
    try:
        if extras.write_workflow:
            (folder / WORKFLOW).parent.mkdir(parents=True, exist_ok=True)
            with open(folder / WORKFLOW, "x", encoding="utf-8") as out:
                out.write(WORKFLOW_TEMPLATE.read_text(encoding="utf-8"))
            written.append(str(WORKFLOW))
        if extras.write_env:
            path = folder / ".env.example"
            before = path.read_text(encoding="utf-8") if path.exists() else ""
            gap = "" if not before else ("\n" if before.endswith("\n") else "\n\n")
            with open(path, "a", encoding="utf-8") as out:
                out.write(gap + extras.env_text)
            written.append(".env.example")
    except OSError as exc:
        raise ConfigError(f"cannot write in {folder}: {exc.strerror}; make it writable, then run kit init again") \
            from None
    return written


def env_entries(path: Path) -> tuple[list[str], str]:
    """The kit's variables the file does not mention yet, and the text that adds them with their comments."""
    have = set()
    if path.is_file():
        have = {m[1] for line in path.read_text(encoding="utf-8", errors="replace").splitlines()
                if (m := ENV_LINE.match(line))}
    kit_example = workdir.kit_dir() / ".env.example"
    if not kit_example.is_file():
        return [], ""
    missing: list[str] = []
    lines: list[str] = []
    comment: list[str] = []
    for line in kit_example.read_text(encoding="utf-8").splitlines():
        if line.startswith("# --- Tools"):
            break  # the kit's own tool settings are not the app's business
        match = ENV_LINE.match(line)
        if match is None:
            comment = [] if not line.startswith("#") or line.startswith("# ---") else comment + [line]
            continue
        name, about = match[1], comment
        comment = []
        if name in have or name in missing or any("Only for testing" in c for c in about):
            continue
        missing.append(name)
        lines += about + [line]
    return missing, "\n".join([ENV_HEADER] + lines) + "\n" if missing else ""


def seed_warning(folder: Path) -> str | None:
    seed = folder / "supabase" / "seed.sql"
    if not seed.is_file():
        return None
    text = re.sub(r"--[^\n]*", "", seed.read_text(encoding="utf-8", errors="replace"))
    found = sorted({m.lower() for m in UUID_COLUMNS.findall(text)})
    if not found:
        return None
    return (f"supabase/seed.sql mentions {', '.join(found)}: preview branches run it after the change, where "
            "those columns are gone; write provider_name and model_name instead")


def require_can_create(path: Path) -> None:
    """The nearest folder that exists on the way to path must be writable."""
    folder = path if path.is_dir() else path.parent
    while not folder.exists():
        folder = folder.parent
    target = path if path.exists() else folder
    if not os.access(target, os.W_OK):
        raise ConfigError(f"{target} is not writable: make it writable, then run kit init again")
