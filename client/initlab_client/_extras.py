"""How to add an extra to the client, for the messages that need one.

initlab-client is not on PyPI: it is installed from the ``client`` directory
of the initlab repository, so ``pip install 'initlab-client[yaml]'`` would
fail, and an extra comes from that directory too.
"""

from __future__ import annotations


def install_command(extra: str) -> str:
    """The command that installs the client with ``extra`` (``yaml``, ``cli``,
    ``torch``), from the repository's ``client`` directory."""
    return (
        f"pip install '<path to initlab>/client[{extra}]' (the client directory"
        " of the initlab repository; initlab-client is not on PyPI)"
    )
