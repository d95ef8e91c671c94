"""Lint pending migration files with squawk (squawk-cli on PyPI), configured by .squawk.toml."""

import json
import shutil
import subprocess
import sys
from dataclasses import asdict, dataclass
from pathlib import Path

from kit.errors import Refused, ToolMissing
from kit.migrations.workdir import Migration

CONFIG_NAME = ".squawk.toml"


@dataclass(frozen=True)
class Finding:
    file: str
    line: int
    rule: str
    message: str

    def as_dict(self) -> dict:
        return asdict(self)

    def __str__(self) -> str:
        return f"{self.file}:{self.line}: {self.rule}: {self.message}"


def squawk_binary() -> str:
    """squawk beside this Python (the venv the kit lives in), else on PATH."""
    beside = Path(sys.executable).parent / "squawk"
    if beside.exists():
        return str(beside)
    found = shutil.which("squawk")
    if not found:
        raise ToolMissing("squawk is not installed: run `pip install -e .` (it brings squawk-cli), "
                          "or push with --no-lint")
    return found


def run(files: list[Migration], project: Path) -> list[Finding]:
    """Every finding squawk reports for these files (line numbers from 1)."""
    if not files:
        return []
    argv = [squawk_binary(), "--reporter", "json"]
    config = project / CONFIG_NAME
    if config.is_file():
        argv += ["--config", str(config)]
    argv += [str(m.path) for m in files]
    result = subprocess.run(argv, capture_output=True, text=True, stdin=subprocess.DEVNULL, cwd=project)
    try:
        raw = json.loads(result.stdout or "[]")
    except ValueError:
        detail = (result.stderr or result.stdout).strip().splitlines()
        raise ToolMissing(f"squawk failed: {detail[-1] if detail else 'no output'}") from None
    return [Finding(Path(item["file"]).name, int(item["line"]) + 1, item["rule_name"], item["message"])
            for item in raw]


def require_clean(findings: list[Finding], command: str = "push") -> None:
    """Refuse on any finding, pointing to the --no-lint flag of `command` (push or deploy)."""
    if findings:
        raise Refused(f"squawk found {len(findings)} problem(s), first: {findings[0]}; fix the file, annotate a "
                      f"deliberate exception with `-- squawk-ignore RULE` and its reason, or {command} with --no-lint")
