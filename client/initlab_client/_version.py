"""The client's version; kept equal to ``version`` in client/pyproject.toml."""

__version__ = "0.1.0"
