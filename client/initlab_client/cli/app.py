"""The ``initlab`` click group: global options, one command per question.

Each command reads its input (:mod:`.inputs`), asks the service through
:class:`~initlab_client.Client` with a spinner on a terminal's stderr
(:class:`.settings.Settings`), and prints the answer as a table
(:mod:`.render`), as the service's JSON (``--json``) or as CSV (``--csv``).
The µP commands live in :mod:`.mup_commands`. Every failure leaves through
:class:`.failures.InitlabGroup`, the one place errors become exit codes.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import click

from .._version import __version__
from ..client import API_KEY_ENV, BASE_URL_ENV, DEFAULT_BASE_URL
from . import render
from .failures import EPILOG, InitlabGroup
from .inputs import (
    FiniteFloat,
    KeyValue,
    Override,
    SchemeParam,
    looks_like_file,
    read_model_config,
    read_spec,
    scheme_with_options,
)
from .mup_commands import coord_check, mup_table, transfer_check
from .options import (
    SPEC_HELP,
    format_options,
    given_only,
    output_format,
    spec_source,
)
from .output import Output, answer
from .settings import Settings


@click.group(
    cls=InitlabGroup,
    epilog=EPILOG,
    context_settings={"help_option_names": ["-h", "--help"]},
)
@click.option(
    "--url",
    envvar=BASE_URL_ENV,
    show_envvar=True,
    metavar="URL",
    help=f"The service's base URL [default: {DEFAULT_BASE_URL}].",
)
@click.option(
    "--api-key",
    envvar=API_KEY_ENV,
    show_envvar=True,
    metavar="KEY",
    help="Sent as a bearer token to a service that requires one.",
)
@click.option(
    "--timeout",
    type=FiniteFloat(),
    metavar="SECONDS",
    help="Seconds to wait to connect and for each answer [default: 3.05 to connect,"
    " 60 to answer; at least 120 for the µP checks].",
)
@click.option(
    "--retries",
    type=click.IntRange(min=0),
    help="Times to try again after a connection failure or a busy answer (429,"
    " 502, 503, 504) [default: 3].",
)
@click.version_option(
    __version__, "--version", prog_name="initlab", message="%(prog)s %(version)s"
)
@click.pass_context
def cli(
    ctx: click.Context,
    url: str | None,
    api_key: str | None,
    timeout: float | None,
    retries: int | None,
) -> None:
    """Ask an initlab service how to initialize a network.

    Each command sends one request and prints the answer as a table; --json
    prints the service's JSON unchanged, --csv the rows for a spreadsheet.
    """
    ctx.obj = Settings(url=url, api_key=api_key, timeout=timeout, retries=retries)


@cli.command(epilog=SPEC_HELP)
@spec_source()
@click.option(
    "--scheme",
    type=SchemeParam(),
    default="auto",
    show_default=True,
    help="A scheme name (`initlab schemes` lists them) or a JSON object with"
    " its options.",
)
@click.option(
    "--option",
    "options",
    type=KeyValue(),
    multiple=True,
    help="An option of the scheme, such as mode=fan_out (repeat the option).",
)
@click.option(
    "--override",
    "overrides",
    type=Override(),
    multiple=True,
    help="Another scheme for the parameters or layers a glob matches, such as"
    " 'fc=torch_default' (repeat the option).",
)
@format_options()
@click.pass_obj
def recommend(
    settings: Settings,
    spec: str | None,
    preset: str | None,
    preset_params: Sequence[tuple[str, Any]],
    scheme: Any,
    options: Sequence[tuple[str, Any]],
    overrides: Sequence[tuple[str, Any]],
    as_json: bool,
    as_csv: bool,
) -> None:
    """How to initialize every parameter tensor of SPEC under a scheme."""
    chosen = output_format(as_json, as_csv)
    body = read_spec(spec, preset, preset_params)
    resolved = scheme_with_options(scheme, options)

    result = settings.ask(
        "Asking for recommendations",
        lambda client: client.recommend(
            body, scheme=resolved, overrides=dict(overrides) or None
        ),
    )

    answer(
        chosen,
        result.raw,
        render.show_recommendations,
        render.recommendations_csv,
        result,
    )


@cli.command(epilog=SPEC_HELP)
@spec_source()
@click.option(
    "--init",
    type=SchemeParam(),
    default="auto",
    show_default=True,
    help="The scheme the network is drawn with: a name or a JSON object.",
)
@click.option(
    "--option",
    "options",
    type=KeyValue(),
    multiple=True,
    help="An option of the init scheme, such as mode=fan_out (repeat the option).",
)
@click.option(
    "--override",
    "overrides",
    type=Override(),
    multiple=True,
    help="Another scheme for what a glob matches, such as 'fc3=xavier_normal'.",
)
@click.option(
    "--method",
    metavar="METHOD",
    help="analytic (the infinite-width prediction), monte_carlo (networks drawn"
    " and run) or both [default: both].",
)
@click.option("--batch-size", type=int, help="Inputs per network [default: 64].")
@click.option("--seeds", type=int, help="Networks drawn [default: 8].")
@click.option("--seed", type=int, help="The first seed [default: 0].")
@click.option(
    "--input-second-moment",
    type=FiniteFloat(),
    help="Mean square of the inputs [default: 1].",
)
@click.option(
    "--input-correlation",
    type=FiniteFloat(),
    help="Follow a pair of inputs at this correlation.",
)
@click.option(
    "--backward/--no-backward",
    default=None,
    help="Run the backward pass too [default: on].",
)
@click.option("--spatial-size", type=int, help="Grid side of a conv net's input.")
@click.option("--sequence-length", type=int, help="Tokens per sequence.")
@format_options()
@click.pass_obj
def stats(
    settings: Settings,
    spec: str | None,
    preset: str | None,
    preset_params: Sequence[tuple[str, Any]],
    init: Any,
    options: Sequence[tuple[str, Any]],
    overrides: Sequence[tuple[str, Any]],
    method: str | None,
    as_json: bool,
    as_csv: bool,
    **given: Any,
) -> None:
    """How the signal and the gradient move through SPEC at initialization."""
    chosen = output_format(as_json, as_csv)
    body = read_spec(spec, preset, preset_params)
    arguments = given_only(method=method, **given)

    result = settings.ask(
        "Computing statistics",
        lambda client: client.statistics(
            body,
            init=scheme_with_options(init, options),
            overrides=dict(overrides) or None,
            **arguments,
        ),
    )

    answer(chosen, result.raw, render.show_statistics, render.statistics_csv, result)


@cli.command("import")
@click.argument("source", metavar="CONFIG")
@click.option(
    "--format",
    "import_format",
    type=click.Choice(["huggingface", "torchvision"]),
    help="What CONFIG is [default: huggingface for a file or -, else torchvision].",
)
@click.option(
    "--head",
    help="Hugging Face: default, none, lm, pooler or classifier [default: default].",
)
@click.option(
    "--option",
    "options",
    type=KeyValue(),
    multiple=True,
    help="torchvision: a constructor option, such as num_classes=10.",
)
@click.option(
    "--output",
    type=click.Path(dir_okay=False, writable=True, path_type=Path),
    help="Write the spec to this file; the summary then goes to stdout.",
)
@format_options(csv=False)
@click.pass_obj
def import_spec(
    settings: Settings,
    source: str,
    import_format: str | None,
    head: str | None,
    options: Sequence[tuple[str, Any]],
    output: Path | None,
    as_json: bool,
) -> None:
    """The spec of a real model, to save and use as SPEC.

    CONFIG is a Hugging Face config.json (or - for standard input), or a
    torchvision architecture such as resnet50. The spec is printed as JSON
    on stdout and its summary (parameter count, dims to scale) on stderr;
    with --output the spec goes to the file and the summary to stdout.
    --json prints the service's whole answer.
    """
    if import_format is None:
        import_format = "huggingface" if looks_like_file(source) else "torchvision"
    arguments: dict[str, Any] = {"format": import_format, "head": head}
    if import_format == "huggingface":
        arguments["config"] = read_model_config(source)
    else:
        arguments["arch"] = source
    if options:
        arguments["options"] = dict(options)

    result = settings.ask(
        "Importing the spec", lambda client: client.import_spec(**arguments)
    )

    if output is not None:
        _write_spec(output, result.spec)
    if as_json:
        Output().json(result.raw)
        return
    out = Output()
    if output is None:
        out.json(result.spec)
        out = Output(stdout=out.stderr)
    render.show_imported_spec(out, result)
    if output is not None:
        out.print(f"spec written to {output}")


def _write_spec(path: Path, spec: dict[str, Any]) -> None:
    try:
        path.write_text(json.dumps(spec, indent=2) + "\n", encoding="utf-8")
    except OSError as error:
        raise click.BadParameter(
            f"cannot write {str(path)!r}: {error.strerror or error}",
            param_hint="--output",
        ) from None


@cli.command()
@click.argument("name", required=False)
@click.option(
    "--param",
    "params",
    type=KeyValue(),
    multiple=True,
    help="A parameter of the activation NAME, such as negative_slope=0.2.",
)
@format_options()
@click.pass_obj
def activations(
    settings: Settings,
    name: str | None,
    params: Sequence[tuple[str, Any]],
    as_json: bool,
    as_csv: bool,
) -> None:
    """Every activation (or NAME alone) with PyTorch's gain and the exact gains."""
    chosen = output_format(as_json, as_csv)
    if params and name is None:
        raise click.UsageError("--param sets a parameter of NAME; name the activation")

    result = settings.ask(
        "Asking for activations",
        lambda client: client.activations(name, **dict(params)),
    )

    raw = {"activations": [info.raw for info in result]}
    answer(chosen, raw, render.show_activations, render.activations_csv, result)


@cli.command()
@format_options()
@click.pass_obj
def schemes(settings: Settings, as_json: bool, as_csv: bool) -> None:
    """Every initialization scheme, with its options and their defaults."""
    chosen = output_format(as_json, as_csv)
    result = settings.ask("Asking for schemes", lambda client: client.schemes())

    raw = {"schemes": [info.raw for info in result]}
    answer(chosen, raw, render.show_schemes, render.schemes_csv, result)


@cli.command()
@format_options()
@click.pass_obj
def presets(settings: Settings, as_json: bool, as_csv: bool) -> None:
    """Every preset and its parameters.

    Other commands build a preset's spec in place of SPEC with --preset NAME
    and --param KEY=VALUE.
    """
    chosen = output_format(as_json, as_csv)
    result = settings.ask("Asking for presets", lambda client: client.presets())

    raw = {"presets": [preset.raw for preset in result]}
    answer(chosen, raw, render.show_presets, render.presets_csv, result)


@cli.command()
@format_options(csv=False)
@click.pass_obj
def health(settings: Settings, as_json: bool) -> None:
    """Whether the service answers; exits 4 when it cannot be reached."""
    result = settings.ask("Checking the service", lambda client: client.health())

    if as_json:
        Output().json(result)
        return
    Output().print(f"{settings.base_url}: {result.get('status', result)}")


for command in (mup_table, coord_check, transfer_check):
    cli.add_command(command)
