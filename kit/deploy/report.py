"""The deploy report: reports/<UTC timestamp>-<target>.md and .json, with no secrets in them."""

import json
from dataclasses import asdict
from pathlib import Path

from kit.files import open_private, safe_name
from kit.redact import redact


def write(folder: Path, stamp: str, target: str, data: dict, secrets: tuple[str, ...]) -> tuple[Path, Path]:
    """Write both files (mode 0600) and return their paths."""
    folder.mkdir(parents=True, exist_ok=True)
    base = f"{stamp}-{safe_name(target)}"  # the whole label: with_suffix would cut `127.0.0.1-...` at its first dot
    md_path, json_path = folder / f"{base}.md", folder / f"{base}.json"
    data = {**data, "report": {"markdown": str(md_path), "json": str(json_path)}}
    _write(json_path, redact(json.dumps(data, indent=2, default=_plain), secrets) + "\n")
    _write(md_path, redact(markdown(data), secrets))
    return md_path, json_path


def markdown(data: dict) -> str:
    lines = [f"# Deploy to {data['target']}: {'succeeded' if data['ok'] else 'FAILED'}", "",
             f"- database: `{data['database']}`", f"- started: {data['started']}, finished: {data['finished']}",
             f"- phase of the LLM tables now: **{data['phase']}**"]
    if data.get("failed_step"):
        lines.append(f"- failed step: **{data['failed_step']}**: {data.get('error', '')}")
    if data.get("rollback_command"):
        lines.append(f"- way back: `{data['rollback_command']}`")
    lines += ["", "| step | result | seconds |", "| --- | --- | --- |"]
    lines += [f"| {s['name']} | {s['status']} | {s['seconds']:.2f} |" for s in data["steps"]]
    for step in data["steps"]:
        if step.get("detail"):
            detail = json.dumps(step["detail"], indent=2, default=_plain)
            lines += ["", f"## {step['name']}", "", "```json", detail, "```"]
    lines += _legacy(data)
    lines += ["", "## Versions", ""] + [f"- {k}: {v}" for k, v in data.get("versions", {}).items()]
    return "\n".join(lines) + "\n"


def _legacy(data: dict) -> list[str]:
    found, note = data.get("legacy_statements") or [], data.get("legacy_statements_note")
    if not found and not note:
        return []
    lines = ["", "## Statements that still use the UUID columns (pg_stat_statements)", ""]
    if note:
        lines.append(f"- note: {note}")
    lines += [f"- {s['calls']} calls by `{s['role']}`, {s['mean_ms']:.3f} ms mean, {s['since']}: `{s['query']}`"
              for s in found]
    return lines


def _write(path: Path, text: str) -> None:
    with open_private(path) as handle:
        handle.write(text)


def _plain(value):
    if hasattr(value, "__dataclass_fields__"):
        return asdict(value)
    return str(value)
