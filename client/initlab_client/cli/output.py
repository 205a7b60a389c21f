"""Where and how the command line writes: tables, JSON, CSV and the spinner.

Answers go to standard output, messages and the progress spinner to
standard error, so that ``initlab ... --json > answer.json`` keeps only the
answer. Tables are drawn for a terminal; when standard output is a pipe or a
file they are plain columns separated by spaces, without colour, box
characters or wrapping (rich would otherwise cut them at 80 columns). On a
terminal narrower than a table, only prose columns wrap, between words; a
name or a number is never cut, and the table runs past the right edge
instead.
"""

from __future__ import annotations

import contextlib
import csv
import errno
import json
import sys
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import IO, Any

from rich import box
from rich.cells import cell_len
from rich.console import Console, ConsoleOptions, RenderableType, RenderResult
from rich.measure import Measurement
from rich.table import Table

# Wide enough for any row, so that a table piped to a file is never wrapped.
PIPE_WIDTH = 100_000
# Significant digits of a number in a table; --json and --csv keep them all.
TABLE_DIGITS = 6
MISSING = "-"


class UnwritableOutput(Exception):
    """Standard output took no answer: it is not open, or its disk is full.

    ``error`` is the refusal (``None``: there is no standard output). A
    closed pipe is not one: its ``BrokenPipeError`` ends the command quietly.
    """

    def __init__(self, error: OSError | None) -> None:
        super().__init__(error)
        self.error = error


@contextlib.contextmanager
def writing(stream: IO[str] | None) -> Iterator[IO[str]]:
    """``stream``, whose refusals to write become :class:`UnwritableOutput`."""
    if stream is None:
        raise UnwritableOutput(None)
    try:
        yield stream
    except OSError as error:
        if error.errno == errno.EPIPE:
            raise
        raise UnwritableOutput(error) from error


def write_whole(stream: IO[str], text: str) -> None:
    """Write all of ``text`` to ``stream`` and flush it, or raise ``OSError``.

    A text stream's ``write`` hides a short write of its binary buffer: a
    large answer piped to a reader that stopped early (``| head``) was cut
    after the pipe's 64 KiB with no error. Here the buffer's count is
    followed, so the next write meets the closed pipe (BrokenPipeError).
    """
    buffer = getattr(stream, "buffer", None)
    if buffer is None:  # A test runner's stream: all of it is taken.
        stream.write(text)
        stream.flush()
        return

    stream.flush()
    encoded = text.encode(stream.encoding or "utf-8", stream.errors or "strict")
    data = memoryview(encoded)
    while data:
        written = buffer.write(data)
        if not written:
            raise OSError(errno.EIO, "standard output took no more of the answer")
        data = data[written:]
    buffer.flush()


def _is_terminal(stream: IO[str]) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):  # No isatty, or a closed stream.
        return False


def _console(stream: IO[str]) -> Console:
    terminal = _is_terminal(stream)

    return Console(
        file=stream,
        markup=False,  # Names and notes hold brackets ("[0, 1]") that are text.
        emoji=False,
        highlight=False,
        width=None if terminal else PIPE_WIDTH,
        soft_wrap=not terminal,
    )


class Output:
    """The two streams of one command: answers on stdout, the rest on stderr.

    The streams are looked up when the command runs (``sys.stdout`` then),
    so that a test runner that swaps them captures what is written.
    """

    def __init__(
        self, stdout: IO[str] | None = None, stderr: IO[str] | None = None
    ) -> None:
        self.stdout = sys.stdout if stdout is None else stdout
        self.stderr = sys.stderr if stderr is None else stderr
        self.console = _console(self.stdout)
        self.errors = _console(self.stderr)

    @property
    def terminal(self) -> bool:
        """Whether standard output is a terminal (tables drawn with rules)."""
        return self.console.is_terminal

    def status(self, message: str) -> contextlib.AbstractContextManager[Any]:
        """A spinner with ``message`` on stderr while a request runs, when stderr
        is a terminal; nothing otherwise (a log file gets no control codes)."""
        if not self.errors.is_terminal:
            return contextlib.nullcontext()

        return self.errors.status(message, spinner="dots")

    def table(
        self, *columns: str, title: str | None = None, prose: Sequence[str] = ()
    ) -> Table:
        """An empty table; columns whose name starts with ``>`` align right.

        Only the columns named in ``prose`` (descriptions) may wrap, between
        words; every other cell is kept whole, however narrow the terminal.
        """
        table = Table(
            title=title,
            title_justify="left",
            box=box.SIMPLE_HEAD if self.terminal else None,
            show_edge=False,
            pad_edge=False,
            header_style="bold" if self.terminal else "",
            title_style="bold" if self.terminal else "",
        )
        for column in columns:
            name = column.lstrip(">")
            whole = name not in prose
            table.add_column(
                name,
                justify="right" if column.startswith(">") else "left",
                no_wrap=whole,
                overflow="fold",
            )

        return table

    def print(self, *renderables: Any) -> None:
        """Text or tables on stdout; piped, without the spaces rich pads lines with.

        On a terminal, a table wider than it is drawn at its own width and
        not cropped: the terminal shows the rest on the next line, where
        rich would have cut every value with an ellipsis.
        """
        with writing(self.stdout) as stdout:
            if self.terminal:
                self.console.print(*map(self._unbounded, renderables), crop=False)
                return

            with self.console.capture() as captured:
                self.console.print(*renderables)
            lines = captured.get().splitlines()
            write_whole(stdout, "".join(line.rstrip() + "\n" for line in lines))

    def _unbounded(self, renderable: Any) -> Any:
        """``renderable``, or a table made as wide as its unbreakable cells need."""
        if not isinstance(renderable, Table):
            return renderable

        # A column is as wide as its longest cell, or a prose column's longest
        # word: rich would otherwise shrink every column to fit the terminal.
        for column in renderable.columns:
            texts = [str(column.header), *map(str, column.cells)]
            if not column.no_wrap:
                texts = [word for text in texts for word in text.split()]
            column.min_width = max(map(cell_len, texts), default=1)
        wide = self.console.options.update_width(PIPE_WIDTH)
        least = Measurement.get(self.console, wide, renderable).minimum
        if least <= self.console.width:
            return renderable

        return _AtWidth(renderable, least)

    def lines(self, heading: str, items: Iterable[str]) -> None:
        """``heading`` and one indented line per item, when there is any item."""
        items = list(items)
        if not items:
            return

        self.print(heading)
        for item in items:
            self.print(f"  {item}")

    def message(self, text: str) -> None:
        """A line on stderr: what is not the answer."""
        self.errors.print(text)

    def json(self, data: Any) -> None:
        """``data`` as indented JSON: the service's answer, every digit kept."""
        with writing(self.stdout) as stdout:
            write_whole(stdout, json.dumps(data, indent=2) + "\n")

    def csv(self, header: Sequence[str], rows: Iterable[Sequence[Any]]) -> None:
        """A CSV table (RFC 4180, as :meth:`MupTable.to_csv` writes) on stdout."""
        with writing(self.stdout) as stdout:
            writer = csv.writer(stdout)
            writer.writerow(header)
            writer.writerows([[cell_text(value) for value in row] for row in rows])
            stdout.flush()


class _AtWidth:
    """A renderable drawn at ``width`` columns, whatever the console's width.

    ``Console.print(width=...)`` only narrows; this widens, for a table whose
    names and numbers do not fit the terminal.
    """

    def __init__(self, renderable: RenderableType, width: int) -> None:
        self.renderable = renderable
        self.width = width

    def __rich_console__(
        self, console: Console, options: ConsoleOptions
    ) -> RenderResult:
        yield from console.render(self.renderable, options.update_width(self.width))


def cell_text(value: Any) -> str:
    """A CSV cell: numbers as ``repr`` (read back with ``float``, no digit lost),
    ``None`` empty, booleans ``true``/``false``, lists joined by ``;``."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return repr(value)
    if isinstance(value, (list, tuple)):
        return ";".join(cell_text(item) for item in value)
    if isinstance(value, dict):
        return json.dumps(value, separators=(",", ":"))

    return str(value)


def number(value: Any, digits: int = TABLE_DIGITS) -> str:
    """A number for a table: ``digits`` significant digits, ``-`` for ``None``."""
    if value is None:
        return MISSING
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return f"{value:.{digits}g}"

    return str(value)


def count(value: int) -> str:
    """An integer with thousands separators: ``124,439,808``."""
    return f"{value:,}"


def shape(sizes: Sequence[int]) -> str:
    """A tensor shape as ``256x784``; ``()`` for a scalar."""
    return "x".join(str(size) for size in sizes) or "()"


def dims(sizes: dict[str, Any]) -> str:
    """Dims as ``d_model=768, n_layer=12``."""
    return ", ".join(f"{name}={size}" for name, size in sizes.items())


def scheme(value: Any) -> str:
    """A resolved scheme as ``kaiming_normal (mode=fan_in, nonlinearity=layer)``.

    Options that are ``None`` (not set) are left out.
    """
    if not isinstance(value, dict):
        return str(value)

    options = ", ".join(
        f"{key}={option}"
        for key, option in value.items()
        if key != "name" and option is not None
    )
    name = str(value.get("name", "?"))

    return f"{name} ({options})" if options else name


def answer(
    chosen: str,
    raw: Any,
    show: Callable[[Output, Any], None],
    write_csv: Callable[[Output, Any], None] | None,
    result: Any,
) -> None:
    """The answer in the format chosen: a table (``show``), the raw JSON, or CSV
    (``write_csv``, else the table)."""
    out = Output()
    if chosen == "json":
        out.json(raw)
    elif chosen == "csv" and write_csv is not None:
        write_csv(out, result)
    else:
        show(out, result)
