"""What a command hands back to the CLI (the JSON object, the text, the exit code), and how it talks to the operator."""

import sys
from dataclasses import dataclass

from kit.errors import SUCCESS, Refused


@dataclass
class Result:
    data: dict
    text: str
    exit_code: int = SUCCESS


def table(rows: list[tuple], headers: tuple) -> str:
    """A plain aligned text table."""
    cells = [tuple(str(c) for c in headers)] + [tuple(str(c) for c in row) for row in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(row, widths, strict=False)).rstrip() for row in cells]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def checks_text(checks: list) -> str:
    info = [c for c in checks if c.level == "info"]
    rows = [("INFO" if c in info else "PASS" if c.ok else "FAIL", c.name, c.detail) for c in checks]
    failed = sum(not c.ok for c in checks)
    summary = f"{len(checks) - failed - len(info)} passed, {failed} failed" + (f", {len(info)} info" if info else "")
    return table(rows, ("result", "check", "detail")) + "\n" + summary


def confirm(destinations, yes: bool, action: str) -> None:
    """A change to anything not local needs --yes, or the operator typing its host or project ref.

    With no terminal and no --yes it raises Refused before the command's first write.
    """
    remote = [d for d in destinations if not d.local]
    if yes or not remote:
        return
    where = " and ".join(dict.fromkeys(str(d) for d in remote))
    if not sys.stdin.isatty():
        raise Refused(f"{action} {where} needs confirmation: pass --yes")
    answers = set()
    for d in remote:
        answers |= {d.host, d.host.rsplit(":", 1)[0]} | ({d.ref} if d.ref else set())
    answer = input(f"{action} {where}? Type the host name or the project ref to go on: ").strip()
    if not answer or answer not in answers:
        raise Refused(f"not confirmed: nothing was done to {where}")


def say(line: str) -> None:
    """A line for the operator on stderr (the plan line), kept off stdout so --json stays one object."""
    print(line, file=sys.stderr, flush=True)


def progress(args):
    """The library's progress callback: `... step` lines on stderr, none with --json."""
    return None if args.json else (lambda message: print(f"... {message}", file=sys.stderr, flush=True))
