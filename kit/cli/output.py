"""What a command hands back to the CLI: the JSON object, the text, the exit code."""

from dataclasses import dataclass


@dataclass
class Result:
    data: dict
    text: str
    exit_code: int = 0


def table(rows: list[tuple], headers: tuple) -> str:
    """A plain aligned text table."""
    cells = [tuple(str(c) for c in headers)] + [tuple(str(c) for c in row) for row in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(row, widths)).rstrip() for row in cells]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def checks_text(checks: list) -> str:
    rows = [("PASS" if c.ok else "FAIL", c.name, c.detail) for c in checks]
    failed = sum(not c.ok for c in checks)
    summary = f"{len(checks) - failed} passed, {failed} failed"
    return table(rows, ("result", "check", "detail")) + "\n" + summary


def confirm(settings, yes: bool, action: str) -> None:
    """A database that is not local needs --yes, or the operator typing its host at a prompt."""
    import sys

    from kit.errors import Refused
    from kit.redact import url_host

    if settings.is_local or yes:
        return
    host = url_host(settings.db_url)
    where = host + (f" (project {settings.project_ref})" if settings.project_ref else "")
    if not sys.stdin.isatty():
        raise Refused(f"{action} {where} needs confirmation: pass --yes")
    answer = input(f"{action} {where}? Type the host name to go on: ").strip()
    if answer not in (host, host.split(":")[0]):
        raise Refused(f"not confirmed: nothing was done to {where}")
