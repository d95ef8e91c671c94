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


class PasswordRefused(ConnectError):
    """The server wants a password the URL lacks, or refused the one given (exit 3)."""


class APIAnswered(ConnectError):
    """The Management API answered with an error status; the message has the status and its text (exit 3)."""

    def __init__(self, message: str, status: int = 0, detail: str = ""):
        super().__init__(message)
        self.status = status  # the HTTP status
        self.detail = detail  # the answer's own message, secrets masked, line breaks kept


class Refused(KitError):
    """The kit refused to go on because going on would be unsafe."""

    exit_code = 4


class CheckFailed(KitError):
    """A verify or smoke check failed."""

    exit_code = 5


class CheckError(CheckFailed):
    """A request the check made was answered with an error; the message says which."""

    def __init__(self, message: str, code: str | None = None):
        super().__init__(message)
        self.code = code  # the answer's SQLSTATE or PostgREST code, when it had one


class BranchFailed(CheckFailed):
    """The branch's migrations, seed or deploy failed; the message names the step."""


class BranchNotReady(CheckFailed):
    """The preview branch was not ready in the time given, or disappeared while the kit waited (exit 5)."""


class ToolMissing(KitError):
    """A client tool (Supabase CLI, pg_dump) is missing or unusable."""

    exit_code = 6


class BackupError(KitError):
    """A backup could not be made, or a backup folder is incomplete or altered."""

    exit_code = 7


class BackupIncomplete(BackupError):
    """A backup stopped part-way; the message names its folder, which is marked incomplete (exit 7)."""


class MigrationFailed(KitError):
    """A migration file or a rollback step failed in the database and was rolled back."""

    exit_code = 8


class RollbackStepFailed(MigrationFailed):
    """A step of an in-place rollback failed and was undone; the finished steps are kept (exit 8)."""


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
