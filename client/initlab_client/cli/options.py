"""Options that several commands share: the spec source and the output format."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import click

from .inputs import KeyValue

Decorator = Callable[[Callable[..., Any]], Callable[..., Any]]

SPEC_HELP = (
    "SPEC is a spec file (JSON, or YAML with PyYAML), a Hugging Face config.json"
    " (read as the model it describes), or - for standard input."
)


def format_options(csv: bool = True) -> Decorator:
    """``--json`` (the service's answer) and, for tables, ``--csv``."""

    def decorate(function: Callable[..., Any]) -> Callable[..., Any]:
        if csv:
            function = click.option(
                "--csv",
                "as_csv",
                is_flag=True,
                help="Print CSV, one line per row, every digit kept.",
            )(function)
        return click.option(
            "--json",
            "as_json",
            is_flag=True,
            help="Print the service's JSON answer unchanged.",
        )(function)

    return decorate


def output_format(as_json: bool, as_csv: bool = False) -> str:
    """``table``, ``json`` or ``csv``, from the flags; both flags are a usage error."""
    if as_json and as_csv:
        raise click.UsageError("give --json or --csv, not both")

    return "json" if as_json else "csv" if as_csv else "table"


def spec_source() -> Decorator:
    """SPEC (a file or ``-``), or ``--preset NAME`` with ``--param KEY=VALUE``."""

    def decorate(function: Callable[..., Any]) -> Callable[..., Any]:
        function = click.option(
            "--param",
            "preset_params",
            type=KeyValue(),
            multiple=True,
            help="A parameter of --preset, such as width=512 (repeat the option).",
        )(function)
        function = click.option(
            "--preset",
            metavar="NAME",
            help="Build the spec from a preset (mlp, resnet, transformer) instead"
            " of SPEC; `initlab presets` lists their parameters.",
        )(function)
        return click.argument("spec", required=False, metavar="[SPEC]")(function)

    return decorate


def given_only(**options: Any) -> dict[str, Any]:
    """The options that were given: those at ``None`` keep the client's defaults."""
    return {name: value for name, value in options.items() if value is not None}
