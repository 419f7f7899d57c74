"""Domain exceptions: every failure a user can meet, with the context to act on it.

The hierarchy::

    ServiceAmbitionsError                 exit_code 1   base; carries service_id / stage / model
    ├── InputError                        exit_code 3   unreadable input file or line
    ├── ConfigError                       exit_code 4   bad setting, reference data, prompt or credentials
    ├── ProviderError                     exit_code 5   the model provider failed after its retries
    │   ├── ProviderRefused               exit_code 5   bad key, unknown model or no quota: stops the whole run
    │   │   └── ProviderUnreachable       exit_code 5   no call has reached the provider: stops the whole run
    │   └── OutputInvalid                 exit_code 5   the answer still broke the schema after output retries
    ├── MappingError                      exit_code 5   strict mode: the model named catalogue ids that do not exist
    ├── BudgetExceeded                    exit_code 6   the next call could take spending past --max-cost
    ├── CacheUnavailable                  exit_code 7   the cache directory or database cannot be opened
    │   └── CacheCorrupt                  exit_code 7   the cache database is damaged: `cache repair` salvages it
    ├── ResumeMismatch                    exit_code 8   nothing to resume, or input/settings changed since
    └── OutputError                       exit_code 10  an output or run journal cannot be written (full, read-only)
        └── OutputClosed                  exit_code 0   standard output's reader went away (`| head`): stop quietly

Outcomes that are not errors have their codes here too, so there is one table:
:data:`EXIT_QUARANTINED` (9: finished, but something went to the quarantine file),
:data:`EXIT_DETACHED` (11: batch mode, everything left waits on provider batches) and
:data:`EXIT_INTERRUPTED` (130: Ctrl-C or SIGTERM). Typer keeps 2 for usage errors.

An error for one service quarantines that service and the run goes on, unless the
class sets ``aborts_run`` (every later call would fail the same way).

Only ``service_ambitions.cli`` catches the base class; it prints ``user_message`` on one line
and exits with ``exit_code``. Everything below the gateway is translated into these classes
once, with ``raise ... from exc``, so no caller needs to know pydantic-ai's exceptions.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar, NoReturn

from service_ambitions.core.secrets import scrub

if TYPE_CHECKING:
    from service_ambitions.core.spend import Spend

EXIT_QUARANTINED = 9
"""The job finished, but some input lines or services went to the quarantine file."""

EXIT_DETACHED = 11
"""Batch mode with ``--detach``: what is left waits on provider batches; ``runs collect`` carries it on."""

EXIT_INTERRUPTED = 130
"""The job was stopped by Ctrl-C or SIGTERM; everything written is whole."""

__all__ = [
    "EXIT_DETACHED",
    "EXIT_INTERRUPTED",
    "EXIT_QUARANTINED",
    "BudgetExceeded",
    "CacheCorrupt",
    "CacheUnavailable",
    "ConfigError",
    "InputError",
    "MappingError",
    "OutputClosed",
    "OutputError",
    "OutputInvalid",
    "ProviderError",
    "ProviderRefused",
    "ProviderUnreachable",
    "ResumeMismatch",
    "ServiceAmbitionsError",
    "reraise_first_error",
]


class ServiceAmbitionsError(Exception):
    """Base of every error the tool reports to a user.

    Context travels as keyword arguments so that messages, quarantine records and run
    events can say which service, stage and model were involved.
    """

    exit_code: ClassVar[int] = 1
    aborts_run: ClassVar[bool] = False
    default_hint: ClassVar[str] = ""

    def __init__(
        self,
        message: str,
        *,
        service_id: str | None = None,
        stage: str | None = None,
        model: str | None = None,
        hint: str | None = None,
    ) -> None:
        # A provider may echo a key in its error body: no message carries one onwards.
        message = scrub(message)
        super().__init__(message)
        self.message = message
        self.service_id = service_id
        self.stage = stage
        self.model = model
        self.hint = scrub(hint) if hint is not None else self.default_hint

    def bind(self, *, service_id: str) -> ServiceAmbitionsError:
        """Attach the service the error happened for, where the raiser could not know it."""
        if self.service_id is None:
            self.service_id = service_id
        return self

    @property
    def user_message(self) -> str:
        """One line for the terminal: where it happened, what happened, what to do."""
        where = ", ".join(
            f"{label} {value}"
            for label, value in (
                ("service", self.service_id),
                ("stage", self.stage),
                ("model", self.model),
            )
            if value
        )
        text = f"{where}: {self.message}" if where else self.message
        return f"{text} ({self.hint})" if self.hint else text


class InputError(ServiceAmbitionsError):
    """The input file cannot be read, or a line of it is not a valid service."""

    exit_code = 3

    def __init__(
        self, message: str, *, path: str | None = None, line: int | None = None, **context: str | None
    ) -> None:
        location = f"{path}:{line}: " if path and line else f"{path}: " if path else ""
        super().__init__(f"{location}{message}", **context)
        self.path = path
        self.line = line


class ConfigError(ServiceAmbitionsError):
    """A setting, reference file, prompt template or credential is missing or invalid."""

    exit_code = 4


class ProviderError(ServiceAmbitionsError):
    """The model provider could not give an answer, even after retries."""

    exit_code = 5

    def __init__(
        self,
        message: str,
        *,
        status_code: int | None = None,
        retry_after: float | None = None,
        request_id: str | None = None,
        spent: Spend | None = None,
        unreachable: bool = False,
        **context: str | None,
    ) -> None:
        super().__init__(message, **context)
        self.unreachable = unreachable
        """True when no attempt reached the provider (connection refused or timed out, name not found)."""
        self.spent = spent
        """The requests the call made before it failed (invalid answers, limits), with their tokens and cost."""
        self.status_code = status_code
        self.retry_after = retry_after
        self.request_id = request_id
        """The provider's id for the failed request (``x-request-id``), to quote to its support."""


class ProviderRefused(ProviderError):
    """The provider refuses every call (credentials, model name or quota): the run stops."""

    aborts_run = True


class ProviderUnreachable(ProviderRefused):
    """Calls in a row could not connect to the provider and none has reached it this run: the run stops.

    The services not yet attempted stay unattempted, so ``--resume`` continues them once
    the address, network or proxy is fixed.
    """


class OutputInvalid(ProviderError):
    """The model's answer still failed validation after every output retry."""

    def __init__(self, message: str, *, transcript: list[Any] | None = None, **context: Any) -> None:
        super().__init__(message, **context)
        self.transcript = _scrubbed(transcript)
        """The messages of the failed call (pydantic-ai JSON), kept for the quarantine file."""


class MappingError(ServiceAmbitionsError):
    """In strict mode, the model named catalogue items that the catalogue does not hold."""

    exit_code = 5


class CacheUnavailable(ServiceAmbitionsError):
    """The cache directory cannot be created, or its database cannot be opened."""

    exit_code = 7
    default_hint = "check --cache-dir / SA_CACHE_DIR, or run with --cache-mode off"


class CacheCorrupt(CacheUnavailable):
    """The cache database itself is damaged (not one entry: the file)."""

    default_hint = "run `service-ambitions cache repair` to salvage every readable entry into a fresh database"


class OutputError(ServiceAmbitionsError):
    """An output, quarantine file or run journal cannot be written (disk full, read-only, no permission).

    Everything written before stays whole: a resumed run continues once the cause is fixed.
    """

    exit_code = 10
    aborts_run = True


class OutputClosed(OutputError):
    """Standard output was closed by its reader (``… -o - | head``): the command stops quietly.

    As ``grep`` or ``jq`` do when piped into ``head``: the reader has what it wanted, so this
    is no failure (exit 0) and nothing is printed; the run is recorded as interrupted, and
    ``--resume`` continues it into a file.
    """

    exit_code = 0


class ResumeMismatch(ServiceAmbitionsError):
    """There is no run to resume, or its input or result-affecting settings have changed."""

    exit_code = 8


class BudgetExceeded(ServiceAmbitionsError):
    """The next call could take the run's spending past its budget."""

    exit_code = 6
    spent: Spend | None = None
    """What the stopped call had already spent (answers before an output retry), if anything."""


def _scrubbed(value: Any) -> Any:
    """A JSON value with every string scrubbed of secrets."""
    if isinstance(value, str):
        return scrub(value)
    if isinstance(value, list):
        return [_scrubbed(item) for item in value]
    if isinstance(value, dict):
        return {key: _scrubbed(item) for key, item in value.items()}
    return value


def reraise_first_error(group: ExceptionGroup[Exception]) -> NoReturn:
    """Raise the first of our errors in a task group's ``group`` (chained), or the group itself.

    A task group that failed raises an ``ExceptionGroup``; the user needs the one error
    that says what went wrong, not the group.
    """
    first = _first_domain_error(group)
    if first is None:
        raise group
    raise first from group


def _first_domain_error(group: BaseExceptionGroup[BaseException]) -> ServiceAmbitionsError | None:
    """The error to report for a failed service: the first of ours, if any."""
    for error in group.exceptions:
        found = _first_domain_error(error) if isinstance(error, BaseExceptionGroup) else error
        if isinstance(found, ServiceAmbitionsError):
            return found
    return None
