"""Errors become exit statuses here, and nowhere else.

:class:`InitlabGroup` catches what a command raises and hands it to
:func:`failure`, which picks the exit status of :data:`..EXIT_CODES` and the
lines that explain it on stderr: a refused request's problem details (title,
detail, each field at fault, the request id), the URL that could not be
reached and how to start a service there, or an unexpected error's
traceback.
"""

from __future__ import annotations

import errno
import sys
import textwrap
import traceback
from pathlib import Path
from typing import Any

import click

from ..client import API_KEY_ENV, BASE_URL_ENV, DEFAULT_BASE_URL, MAX_RETRY_AFTER
from ..errors import (
    APIError,
    ConnectionDropped,
    ConnectionError,
    ConnectTimeout,
    InitlabError,
    InvalidRequest,
    InvalidResponse,
    ServiceBusy,
    SpecFileError,
    Timeout,
    TooManyRequests,
)
from . import (
    EXIT_BAD_INPUT,
    EXIT_CLOSED_OUTPUT,
    EXIT_CODES,
    EXIT_SERVER_ERROR,
    EXIT_UNEXPECTED,
    EXIT_UNREACHABLE,
    EXIT_UNWRITABLE_OUTPUT,
    quiet_closed_output,
    unwritable_output_message,
)
from .output import UnwritableOutput
from .settings import Settings

START_HINT = (
    "Start it with `make serve` in the initlab repository (PORT=9000 make serve"
    f" for another port), or give a running service's URL with --url or {BASE_URL_ENV}."
)
# The --help epilog: each status and its meaning, wrapped by hand ("\b" keeps
# click from joining the lines).
EPILOG = "\b\nExit status:\n" + "\n".join(
    textwrap.fill(
        meaning, width=76, initial_indent=f"  {code:>3}  ", subsequent_indent=" " * 7
    )
    for code, meaning in EXIT_CODES.items()
)


class Failure(click.ClickException):
    """A failure reported on stderr, line by line, with its exit status."""

    def __init__(self, exit_code: int, *lines: str) -> None:
        super().__init__(lines[0])
        self.exit_code = exit_code
        self.lines = lines

    def show(self, file: Any = None) -> None:
        for line in self.lines:
            click.echo(line, file=file, err=True)


def failure(error: Exception, base_url: str | None) -> Failure:
    """The :class:`Failure` of an error raised while a command ran.

    4xx answers and unreadable files are bad input (2), 5xx answers and
    unreadable bodies a server error (3), no answer at all or a service still
    busy after the retries (429, 503 busy) a connection failure (4); anything
    else is unexpected (1) and shows its traceback.
    """
    where = base_url or DEFAULT_BASE_URL
    if isinstance(error, ServiceBusy):
        return _busy(error, where)
    if isinstance(error, TooManyRequests):
        wait = _asked_wait(error.retry_after)
        return Failure(
            EXIT_UNREACHABLE,
            f"initlab: the initlab service at {where} is still busy after the"
            f" retries: {error.status} {error.title}{wait}.",
            "Try again later, or with more --retries.",
        )
    if isinstance(error, APIError):
        return _problem(error, where)
    if isinstance(error, InvalidResponse):
        return Failure(
            EXIT_SERVER_ERROR,
            f"initlab: the answer from {where} cannot be read: {error}",
            "Is --url the address of an initlab service?",
        )
    if isinstance(error, ConnectTimeout):
        return Failure(
            EXIT_UNREACHABLE,
            f"initlab: no connection to the initlab service at {where} in time.",
            f"  {error}",
        )
    if isinstance(error, Timeout):
        return Failure(
            EXIT_UNREACHABLE,
            f"initlab: no answer from the initlab service at {where} in time.",
            f"  {error}",
            "The service may be busy or the request large: a larger --timeout"
            " helps (computations are pure, so trying again is safe).",
        )
    if isinstance(error, ConnectionDropped):
        return Failure(
            EXIT_UNREACHABLE,
            f"initlab: the initlab service at {where} dropped the connection"
            " before answering.",
            f"  {error}",
        )
    if isinstance(error, ConnectionError):
        return Failure(
            EXIT_UNREACHABLE,
            f"initlab: cannot reach the initlab service at {where}.",
            f"  {error}",
            START_HINT,
        )
    if isinstance(error, (SpecFileError, InvalidRequest)):
        return Failure(EXIT_BAD_INPUT, f"initlab: {error}")
    if isinstance(error, InitlabError):
        return Failure(EXIT_UNEXPECTED, f"initlab: {error}")

    return Failure(
        EXIT_UNEXPECTED,
        "initlab: unexpected error; please report it with this traceback:",
        "".join(
            traceback.format_exception(type(error), error, error.__traceback__)
        ).rstrip(),
    )


def _busy(error: ServiceBusy, where: str) -> Failure:
    """A 503 busy after the retries: the service runs, but had no turn for us."""
    attempts = ""
    if error.attempts is not None:
        plural = "" if error.attempts == 1 else "s"
        attempts = f" after {error.attempts} attempt{plural}"
    lines = [
        f"initlab: the initlab service at {where} is still busy{attempts}:"
        f" {error.status} {error.title}{_asked_wait(error.retry_after)}; try"
        " again later, or with more --retries."
    ]
    if error.detail:
        lines.append(f"  {error.detail}")
    if error.request_id:
        lines.append(f"  request id: {error.request_id}")

    return Failure(EXIT_UNREACHABLE, *lines)


def _asked_wait(seconds: float | None) -> str:
    """What a busy answer's Retry-After asked for, and what the client waits at most."""
    if seconds is None:
        return ""
    if seconds <= MAX_RETRY_AFTER:
        return f" (it asks to wait {seconds:g} s)"

    return (
        f" (it asks to wait {seconds:,.0f} s; this client waits at most"
        f" {MAX_RETRY_AFTER} s before a retry)"
    )


def _problem(error: APIError, where: str) -> Failure:
    """The problem details of an error answer: title, detail, fields, request id.

    Every answer of the service is a problem with a type; an error without
    one came from something else at ``where`` (a proxy, another server).
    """
    lines = [f"initlab: {error.status} {error.title}"]
    fields = [f"{field.pointer or '/'}: {field.message}" for field in error.errors]
    # The service's detail restates a lone field error; print it once.
    if error.detail and [error.detail.rstrip(".")] != [
        field.rstrip(".") for field in fields
    ]:
        lines.append(f"  {error.detail}")
    lines.extend(f"  {field}" for field in fields)
    if error.status == 401:
        lines.append(f"  give the service's API key with --api-key or {API_KEY_ENV}")
    if error.request_id:
        lines.append(f"  request id: {error.request_id}")
    # 501: a server that does not take the method (an initlab service never
    # answers it); other 5xx pages may be a proxy's in front of a service.
    if error.type is None and (error.status < 500 or error.status == 501):
        content_type = (
            ""
            if error.response is None
            else error.response.headers.get("Content-Type", "")
        )
        lines.append(
            f"The answer is not an initlab problem"
            f" ({content_type or 'no Content-Type'}): is {where} the address of an"
            f" initlab service? Give its URL with --url or {BASE_URL_ENV}."
        )
    if error.status >= 500:
        lines.append(
            "The service failed on a request it accepted; quote the request id"
            " to whoever runs it."
            if error.request_id
            else "The service, or a proxy in front of it, failed on this request."
        )
        return Failure(EXIT_SERVER_ERROR, *lines)

    return Failure(EXIT_BAD_INPUT, *lines)


class InitlabGroup(click.Group):
    """A click group that turns every error of a command into an exit status."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            if sys.stdout is None:
                # Started with standard output closed (initlab ... >&-):
                # refused before a request is sent for an answer with no reader.
                raise UnwritableOutput(None)
            return super().invoke(ctx)
        except (click.ClickException, click.exceptions.Exit, click.Abort):
            raise
        except UnwritableOutput as unwritable:
            raise _unwritable(unwritable.error) from None
        except OSError as error:
            if error.errno == errno.EPIPE:
                # The reader of stdout went away (| head): stop quietly.
                quiet_closed_output()
                raise click.exceptions.Exit(EXIT_CLOSED_OUTPUT) from None
            if _from_click_output(error):
                # Written by click itself (a command's --help) to a full disk.
                raise _unwritable(error) from None
            raise _failure(ctx, error) from error
        except Exception as error:
            raise _failure(ctx, error) from error


def _unwritable(error: OSError | None) -> Failure:
    """The failure of an answer standard output did not take; what is still
    buffered for it goes to the null device."""
    quiet_closed_output()
    return Failure(EXIT_UNWRITABLE_OUTPUT, unwritable_output_message(error))


def _from_click_output(error: OSError) -> bool:
    """Whether ``error`` was raised by click writing (its ``echo``: a help
    text, the version), which goes to standard output."""
    innermost = traceback.extract_tb(error.__traceback__)[-1:]
    return any(
        frame.name == "echo" and Path(frame.filename).parent.name == "click"
        for frame in innermost
    )


def _failure(ctx: click.Context, error: Exception) -> Failure:
    settings = ctx.find_object(Settings)

    return failure(error, None if settings is None else settings.base_url)
