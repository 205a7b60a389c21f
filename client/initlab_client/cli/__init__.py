"""The ``initlab`` command: the service's answers as tables, JSON or CSV.

Installed with the ``cli`` extra (``pip install './client[cli]'`` in the
initlab repository), which brings click and rich; the rest of the client
never imports this package, so it still needs only ``requests``.
:func:`main` is the console script; ``python -m initlab_client.cli`` runs it
too.

Every command prints a table for people by default, ``--json`` the
service's answer (the same JSON, indented) and ``--csv`` one line per row.
The exit status says what went wrong, so that scripts can tell a bad spec
from a service that is down: see :data:`EXIT_CODES`.
"""

from __future__ import annotations

import importlib.util
import os
import sys
from collections.abc import Sequence
from typing import NoReturn

from .._extras import install_command

EXIT_OK = 0
EXIT_UNEXPECTED = 1
EXIT_BAD_INPUT = 2
EXIT_SERVER_ERROR = 3
EXIT_UNREACHABLE = 4
EXIT_UNWRITABLE_OUTPUT = 5
# 128 + SIGPIPE, what a shell reports for a Unix tool whose reader went away.
EXIT_CLOSED_OUTPUT = 141

EXIT_CODES = {
    EXIT_OK: "success",
    EXIT_UNEXPECTED: (
        "an unexpected error (a bug: please report it), or the command line's"
        " own packages, click and rich, missing"
    ),
    EXIT_BAD_INPUT: (
        "bad input: a wrong option, an unreadable spec file, or a request the"
        " service refused (4xx), whose problem and fields at fault are printed"
    ),
    EXIT_SERVER_ERROR: (
        "the service failed (5xx) or sent an answer the client cannot read"
    ),
    EXIT_UNREACHABLE: (
        "the service cannot be reached, did not answer in time, or was still"
        " busy (429, or 503 busy) after the retries: try again later"
    ),
    EXIT_UNWRITABLE_OUTPUT: (
        "standard output cannot be written (it is not open, or its disk is"
        " full): the answer is lost, and one line on stderr says why"
    ),
    EXIT_CLOSED_OUTPUT: (
        "standard output was closed before the answer was written (initlab ..."
        " | head), as for other Unix tools; nothing is printed"
    ),
}

INSTALL_HINT = (
    "initlab: the command line needs click and rich ({missing} not installed);"
    " install them with: " + install_command("cli")
)


def main(args: Sequence[str] | None = None) -> None:
    """Run the ``initlab`` command on ``args`` (``sys.argv[1:]`` when ``None``).

    Exits with one of :data:`EXIT_CODES`. Without click or rich it prints
    one line saying how to install them and exits 1.
    """
    missing = [name for name in ("click", "rich") if not _installed(name)]
    if missing:
        sys.stderr.write(INSTALL_HINT.format(missing=" and ".join(missing)) + "\n")
        raise SystemExit(EXIT_UNEXPECTED)

    from .app import cli

    try:
        cli.main(args=None if args is None else list(args), prog_name="initlab")
    except OSError as error:
        # Written by click itself (--help, --version) to a full disk: the
        # commands' own writes are handled where they run.
        _stop_unwritable(error)
    finally:
        # What is still buffered is written now, not at exit, where a closed
        # pipe would print "Exception ignored ... BrokenPipeError".
        try:
            if sys.stdout is not None:
                sys.stdout.flush()
        except BrokenPipeError:
            quiet_closed_output()
            raise SystemExit(EXIT_CLOSED_OUTPUT) from None
        except OSError as error:
            _stop_unwritable(error)


def _stop_unwritable(error: OSError) -> NoReturn:
    """Exit with :data:`EXIT_UNWRITABLE_OUTPUT`, saying why on stderr."""
    quiet_closed_output()
    sys.stderr.write(unwritable_output_message(error) + "\n")
    raise SystemExit(EXIT_UNWRITABLE_OUTPUT) from None


def unwritable_output_message(error: OSError | None) -> str:
    """The one line saying why standard output took no answer."""
    reason = "it is not open" if error is None else error.strerror or str(error)

    return (
        f"initlab: cannot write the answer to standard output ({reason});"
        " send it to a file or a pipe that can take it"
    )


def quiet_closed_output() -> None:
    """Point standard output at the null device once it has refused a write.

    Python flushes ``sys.stdout`` again at exit; writing to the closed pipe
    or the full disk there would print a warning and change the exit status.
    """
    if sys.stdout is None:
        return
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, sys.stdout.fileno())
    finally:
        os.close(devnull)


def _installed(name: str) -> bool:
    """Whether ``name`` can be imported, found without importing it."""
    try:
        return importlib.util.find_spec(name) is not None
    except (ImportError, ValueError):  # A broken or half-removed package.
        return False


__all__ = ["EXIT_CODES", "main", "unwritable_output_message"]
