"""One error hierarchy; each class carries the exit code the CLI documents (the kit's one error table)."""

SUCCESS = 0
UNEXPECTED = 1  # an exception that is not a KitError: a bug; the CLI prints one line, --debug the traceback


class KitError(Exception):
    """Base of every error the kit reports; the message is one line."""

    exit_code = UNEXPECTED


class ConfigError(KitError):
    """A flag, environment variable, .env value or file is missing or malformed."""

    exit_code = 2


class InputError(ConfigError):
    """A --set flag names no writable column, or a NOT NULL column cannot be filled without one (exit 2)."""


class ConnectError(KitError):
    """The database could not be reached or refused the credentials."""

    exit_code = 3


class Refused(KitError):
    """The kit refused to go on because going on would be unsafe."""

    exit_code = 4


class CheckFailed(KitError):
    """A verify or smoke check failed."""

    exit_code = 5


class CheckError(CheckFailed):
    """A request the check made was answered with an error; the message says which."""


class BranchFailed(CheckFailed):
    """The branch's migrations, seed or deploy failed; the message names the step."""


class ToolMissing(KitError):
    """A client tool (Supabase CLI, pg_dump) is missing or unusable."""

    exit_code = 6


class BackupError(KitError):
    """A backup could not be made, or a backup folder is incomplete or altered."""

    exit_code = 7


class Interrupted(KitError):
    """The operator pressed Ctrl-C."""

    exit_code = 130


def exit_codes() -> list[tuple[int, str]]:
    """Every exit code and its meaning: the first class to carry a code names it (each --help ends with them)."""
    codes = {SUCCESS: "success", UNEXPECTED: "unexpected error (rerun with --debug)"}
    pending = list(KitError.__subclasses__())
    while pending:
        cls = pending.pop(0)
        pending += cls.__subclasses__()
        doc = (cls.__doc__ or cls.__name__).strip().splitlines()[0].rstrip(".")
        codes.setdefault(cls.exit_code, doc[:1].lower() + doc[1:])
    return sorted(codes.items())


def exit_codes_text() -> str:
    return "exit codes:\n" + "\n".join(f"  {code:<4}{meaning}" for code, meaning in exit_codes())
