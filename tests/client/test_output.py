"""Where the ``initlab`` command writes: a narrow terminal, a closed pipe, a
full disk (Linux's ``/dev/full``) and no standard output at all.

The command runs as a subprocess of this interpreter against the live
service, its standard output a real pseudo-terminal of a given width (so
that rich sees what a shell would give it) or a pipe whose reader goes away.
"""

from __future__ import annotations

import fcntl
import os
import pty
import re
import struct
import subprocess
import sys
import termios
from pathlib import Path

import pytest

pytestmark = pytest.mark.server

REPO_ROOT = Path(__file__).resolve().parents[2]
MLP_PATH = REPO_ROOT / "examples" / "mlp-3layer.spec.json"
LLAMA_PATH = REPO_ROOT / "examples" / "llama-2-7b.spec.json"
COMMAND = (sys.executable, "-m", "initlab_client.cli")
ANSI_CODE = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")
ELLIPSIS = "…"


def in_terminal(*args: str, columns: int) -> tuple[int, str]:
    """``initlab ARGS`` with stdout and stderr on a terminal ``columns`` wide.

    Returns the exit status and what the terminal showed, without colour
    codes and with the terminal's line ends made ``\\n``.
    """
    leader, follower = pty.openpty()
    size = struct.pack("HHHH", 24, columns, 0, 0)
    fcntl.ioctl(follower, termios.TIOCSWINSZ, size)
    environment = {
        name: value
        for name, value in os.environ.items()
        if name not in ("COLUMNS", "LINES", "NO_COLOR", "INITLAB_URL")
    }
    environment["TERM"] = "xterm-256color"
    process = subprocess.Popen(
        [*COMMAND, *args],
        stdin=subprocess.DEVNULL,
        stdout=follower,
        stderr=follower,
        env=environment,
    )
    os.close(follower)

    shown = bytearray()
    while True:
        try:
            chunk = os.read(leader, 65536)
        except OSError:  # EIO: the last writer closed the terminal.
            break
        if not chunk:
            break
        shown += chunk
    os.close(leader)
    status = process.wait(timeout=60)

    text = ANSI_CODE.sub("", shown.decode()).replace("\r\n", "\n")
    return status, text


def rows(text: str) -> dict[str, list[str]]:
    """The table rows of ``text`` by their first cell, split on runs of spaces."""
    return {
        cells[0]: cells
        for line in text.splitlines()
        if (cells := line.split()) and "." in cells[0]
    }


def test_a_narrow_terminal_keeps_every_name_and_number_whole(
    live_server_url: str,
) -> None:
    status, shown = in_terminal(
        "--url",
        live_server_url,
        "recommend",
        str(MLP_PATH),
        "--scheme",
        "kaiming_normal",
        columns=60,
    )

    assert status == 0, shown
    assert ELLIPSIS not in shown
    table = rows(shown)
    # He et al. (2015): std = √2/√fan_in, 784 and 256 inputs.
    assert table["fc1.weight"] == [
        "fc1.weight",
        "256x784",
        "normal",
        "0.0505076",
        "-",
        "1.41421",
        "784",
        "256",
        "pytorch",
    ]
    assert table["fc2.weight"][3] == "0.0883883"
    assert table["fc1.bias"][2:4] == ["constant", "0"]
    # The table runs past the terminal's edge rather than being cut at it.
    rule = next(line for line in shown.splitlines() if line.startswith("───"))
    assert len(rule.strip()) > 60


def test_a_narrow_terminal_shows_mup_learning_rates_in_full(
    live_server_url: str,
) -> None:
    status, shown = in_terminal(
        "--url",
        live_server_url,
        "mup-table",
        str(MLP_PATH),
        "--lr",
        "1e-3",
        "--widths",
        "d_hidden=512",
        columns=60,
    )

    assert status == 0, shown
    assert ELLIPSIS not in shown
    table = rows(shown)
    # µP (Adam): a hidden matrix twice as wide learns at lr / 2, and its init
    # std is 0.02 / √2; vector-like tensors keep the base lr.
    hidden = table["fc2.weight"]
    assert hidden[:5] == ["fc2.weight", "512x512", "hidden", "matrix_like", "2"]
    assert hidden[5] == "0.0005"
    assert hidden[8] == "0.0141421"
    assert table["fc1.weight"][5] == "0.001"


def test_prose_columns_wrap_between_words_on_a_narrow_terminal(
    live_server_url: str,
) -> None:
    status, shown = in_terminal("--url", live_server_url, "schemes", columns=60)

    assert status == 0, shown
    assert ELLIPSIS not in shown
    names = [line.split()[0] for line in shown.splitlines() if line[:1].isalpha()]
    for name in ("kaiming_normal", "variance_scaling", "torch_default"):
        assert name in names
    # Each option keeps its name and default together.
    assert "distribution=truncated_normal," in shown.split()


def into_a_closed_pipe(*args: str) -> tuple[int, str]:
    """``initlab ARGS`` writing into a pipe whose reader has gone (``| head``
    once it has read what it wanted); the exit status and standard error."""
    reader, writer = os.pipe()
    os.close(reader)
    try:
        return into(writer, *args)
    finally:
        os.close(writer)


def test_a_closed_pipe_ends_the_command_quietly_with_141(
    live_server_url: str,
) -> None:
    # --json writes and flushes while the command runs: the closed pipe is
    # met there.
    status, errors = into_a_closed_pipe(
        "--url",
        live_server_url,
        "recommend",
        str(REPO_ROOT / "examples" / "gpt2-small.spec.json"),
        "--json",
    )

    assert (status, errors) == (128 + 13, "")  # 128 + SIGPIPE, and no message.


@pytest.mark.parametrize("form", ["--json", "--table"])
def test_a_reader_that_stops_early_gives_141_not_a_silently_cut_answer(
    live_server_url: str, form: str
) -> None:
    # `initlab ... | head -c 10`: the answer (about 250 KB) fills the pipe,
    # the reader takes 10 bytes and goes; what was not written is an error.
    args = [*COMMAND, "--url", live_server_url, "recommend", str(LLAMA_PATH)]
    if form == "--json":
        args.append("--json")
    environment = {k: v for k, v in os.environ.items() if k != "INITLAB_URL"}
    process = subprocess.Popen(
        args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=environment
    )
    assert len(process.stdout.read(10)) == 10
    process.stdout.close()
    errors = process.stderr.read().decode()
    status = process.wait(timeout=60)

    assert (status, errors) == (141, "")


def test_a_closed_pipe_met_at_exit_gives_141_without_a_warning(
    live_server_url: str,
) -> None:
    # A small table is still buffered when the command returns: the closed
    # pipe is met when it is flushed, before Python's exit would print
    # "Exception ignored ... BrokenPipeError" and exit 120.
    status, errors = into_a_closed_pipe(
        "--url", live_server_url, "recommend", str(MLP_PATH)
    )

    assert (status, errors) == (141, "")


def into(stdout: int | None, *args: str, close_stdout: bool = False) -> tuple[int, str]:
    """``initlab ARGS`` writing to the file descriptor ``stdout``, or with no
    standard output at all (``initlab ... >&-``); exit status and stderr."""
    process = subprocess.run(
        [*COMMAND, *args],
        stdout=stdout,
        stderr=subprocess.PIPE,
        # In the child, before Python starts: it then has no sys.stdout.
        preexec_fn=(lambda: os.close(1)) if close_stdout else None,
        env={
            name: value for name, value in os.environ.items() if name != "INITLAB_URL"
        },
        check=False,
        timeout=60,
    )

    return process.returncode, process.stderr.decode()


FULL_DISK = (
    "initlab: cannot write the answer to standard output (No space left on"
    " device); send it to a file or a pipe that can take it\n"
)


@pytest.mark.parametrize(
    "args",
    [
        ["recommend", str(MLP_PATH)],  # A table, buffered until the command ends.
        ["recommend", str(MLP_PATH), "--json"],
        ["recommend", str(MLP_PATH), "--csv"],
        ["mup-table", str(MLP_PATH), "--lr", "0.01", "--csv"],
        ["schemes"],
        ["--help"],  # Written by click itself.
        ["--version"],
        ["recommend", "--help"],
    ],
    ids=["table", "json", "csv", "mup-csv", "schemes", "help", "version", "cmd-help"],
)
def test_a_full_disk_gives_one_line_and_exit_5(
    live_server_url: str, args: list[str]
) -> None:
    with open("/dev/full", "wb") as full:
        status, errors = into(full.fileno(), "--url", live_server_url, *args)

    assert (status, errors) == (5, FULL_DISK)


def test_no_standard_output_is_refused_before_a_request_is_sent() -> None:
    # Nothing listens on port 1: a request sent would exit 4, not 5.
    status, errors = into(
        None,
        "--url",
        "http://127.0.0.1:1",
        "--retries",
        "0",
        "schemes",
        close_stdout=True,
    )

    assert (status, errors) == (
        5,
        "initlab: cannot write the answer to standard output (it is not open);"
        " send it to a file or a pipe that can take it\n",
    )
