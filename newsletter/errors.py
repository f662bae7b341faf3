"""Every error the library raises, and the exit code the CLI turns it into.

The tree::

    NewsletterError            exit 1   base; message starts with *where*
    ├── ConfigError            exit 3   a setting is missing or invalid (names the variable)
    ├── IssueFileError         exit 1   an issue file has errors (carries every Problem)
    ├── SubscriberFileError    exit 1   subscribers.csv cannot be read or has errors
    ├── LockTimeoutError       exit 7   another writer holds the subscriber lock
    ├── HeaderError            exit 1   a header value would inject CR/LF or control chars
    ├── TokenError             exit 1   a signed token is tampered, expired or malformed
    ├── DnsError               exit 1   the DNS server cannot be reached or fails (doctor)
    ├── SendRefusedError       exit 4   a send was refused before anything left
    ├── PartialSendError       exit 5   some recipients failed or are uncertain
    └── TransportError         exit 6   the transport failed as a whole
        └── TransportAuthError exit 6   credentials refused (401/403, SMTP 535)

Third-party exceptions are mapped at the boundary (``raise X(...) from exc``) so the
CLI has one place that prints a message and exits with the class's code.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum
from typing import Literal


class ExitCode(IntEnum):
    """Exit codes scripts can rely on."""

    OK = 0
    ERROR = 1  # invalid input: issue file, CSV, check failed
    USAGE = 2  # bad command-line usage (Typer/click's own code)
    CONFIG = 3  # missing or invalid setting
    REFUSED = 4  # send refused (declined, no terminal, issue has errors)
    PARTIAL = 5  # some recipients failed or are uncertain
    FAILED = 6  # nothing could be delivered / transport failed
    LOCKED = 7  # the subscriber file is locked by another writer
    INTERRUPTED = 130  # Ctrl-C


Severity = Literal["error", "warning"]


@dataclass(frozen=True, slots=True)
class Problem:
    """One located problem in an input file: ``path:line: field: message``."""

    path: str
    line: int | None
    field: str
    message: str
    severity: Severity = "error"

    def __str__(self) -> str:
        where = self.path if self.line is None else f"{self.path}:{self.line}"
        prefix = "" if self.severity == "error" else "warning: "
        field = f"{self.field}: " if self.field else ""
        return f"{where}: {prefix}{field}{self.message}"


class NewsletterError(Exception):
    """Base of every error the library raises on purpose."""

    exit_code: ExitCode = ExitCode.ERROR

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return self.message


class UsageError(NewsletterError):
    """Options that cannot go together, found after parsing (exit 2, as click's own)."""

    exit_code = ExitCode.USAGE


class ConfigError(NewsletterError):
    exit_code = ExitCode.CONFIG


class ProblemsError(NewsletterError):
    """An input file with one or more located problems; all are reported at once."""

    def __init__(self, problems: list[Problem], *, hint: str | None = None) -> None:
        self.problems = problems
        errors = [p for p in problems if p.severity == "error"]
        lines = "\n".join(str(p) for p in problems)
        noun = "error" if len(errors) == 1 else "errors"
        super().__init__(f"{lines}\n{len(errors)} {noun}", hint=hint)


class IssueFileError(ProblemsError):
    pass


class SubscriberFileError(ProblemsError):
    pass


class LockTimeoutError(NewsletterError):
    exit_code = ExitCode.LOCKED


class HeaderError(NewsletterError, ValueError):
    pass


class TokenError(NewsletterError):
    pass


class DnsError(NewsletterError):
    pass


class SendRefusedError(NewsletterError):
    exit_code = ExitCode.REFUSED


class PartialSendError(NewsletterError):
    exit_code = ExitCode.PARTIAL


class TransportError(NewsletterError):
    exit_code = ExitCode.FAILED


class TransportAuthError(TransportError):
    pass
