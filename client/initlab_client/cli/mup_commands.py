"""The µP commands: the µP table and the two checks that train to test it."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import click

from . import render
from .inputs import DimSizes, FiniteFloat, Numbers, SchemeParam, Widths, read_spec
from .options import (
    SPEC_HELP,
    Decorator,
    format_options,
    given_only,
    output_format,
    spec_source,
)
from .output import Output, answer, writing
from .settings import Settings


@click.command("mup-table", epilog=SPEC_HELP)
@spec_source()
@click.option(
    "--target",
    "targets",
    type=DimSizes(),
    multiple=True,
    help="A target model's dims, such as d_model=1024,d_ff=4096 (repeat the"
    " option) [default: the spec as written].",
)
@click.option(
    "--widths",
    "width_series",
    type=Widths(dim_required=True),
    multiple=True,
    help="One target per size of a dim: d_model=512,1024,2048.",
)
@click.option(
    "--base",
    "base_dims",
    type=DimSizes(),
    help="The tuned base model's dims, such as d_model=256 [default: the spec's].",
)
@click.option(
    "--lr", type=FiniteFloat(), required=True, help="The base model's learning rate."
)
@click.option(
    "--optimizer", default="adamw", show_default=True, help="adamw, adam or sgd."
)
@click.option("--weight-decay", type=FiniteFloat(), help="[default: 0]")
@click.option("--eps", type=FiniteFloat(), help="Adam's ε [default: 1e-8].")
@click.option("--init-std", type=FiniteFloat(), help="[default: 0.02]")
@click.option(
    "--init-scheme",
    type=SchemeParam(),
    help="Init from a scheme instead of --init-std: a name or a JSON object.",
)
@click.option(
    "--readout-zero-init/--no-readout-zero-init",
    default=None,
    help="Start the readout's weights at zero [default: on].",
)
@click.option(
    "--query-zero-init/--no-query-zero-init",
    default=None,
    help="Start the attention queries' weights at zero [default: off].",
)
@click.option("--output-multiplier", type=FiniteFloat(), help="[default: 1]")
@click.option("--input-multiplier", type=FiniteFloat(), help="[default: 1]")
@click.option("--attention-multiplier", type=FiniteFloat(), help="[default: 1]")
@click.option(
    "--form", help="mup_package, table3 or practitioner [default: mup_package]."
)
@click.option(
    "--weight-decay-convention",
    help="mup_package, unscaled or independent [default: mup_package].",
)
@click.option(
    "--depth",
    metavar="RULE",
    help="A depth rule for deeper targets: completep or depth_mup.",
)
@click.option("--depth-alpha", type=FiniteFloat(), help="The depth rule's α.")
@click.option(
    "--width-dims",
    metavar="DIM,DIM,...",
    help="The dims that scale with width [default: those that differ].",
)
@click.option(
    "--width-dim",
    metavar="DIM",
    help="The width of the practitioner form's m_d [default: d_model, else the"
    " only width dim].",
)
@format_options()
@click.pass_obj
def mup_table(
    settings: Settings,
    spec: str | None,
    preset: str | None,
    preset_params: Sequence[tuple[str, Any]],
    targets: Sequence[dict[str, int]],
    width_series: Sequence[tuple[str, list[int]]],
    depth: str | None,
    depth_alpha: float | None,
    width_dims: str | None,
    as_json: bool,
    as_csv: bool,
    **given: Any,
) -> None:
    """µP: each parameter's lr, weight decay, init and multiplier at wider targets.

    The base model (SPEC, or --base) is the one whose learning rate --lr was
    tuned; each --target and each size of --widths is a model to carry it to.
    """
    chosen = output_format(as_json, as_csv)
    body = read_spec(spec, preset, preset_params)
    all_targets = [*targets]
    for dim, sizes in width_series:
        all_targets.extend({dim: size} for size in sizes)
    if depth_alpha is not None and depth is None:
        raise click.BadParameter(
            "--depth-alpha needs a rule: add --depth completep (or depth_mup)",
            param_hint="--depth-alpha",
        )
    arguments = given_only(
        depth=None if depth is None else given_only(rule=depth, alpha=depth_alpha),
        width_dims=None if width_dims is None else _names(width_dims),
        **given,
    )

    result = settings.ask(
        "Computing the µP table",
        lambda client: client.mup_table(body, targets=all_targets or [{}], **arguments),
    )

    if chosen == "csv":
        with writing(Output().stdout) as stdout:
            result.to_csv(stdout)
            stdout.flush()
        return
    answer(chosen, result.raw, render.show_mup_table, None, result)


def _names(text: str) -> list[str]:
    return [name.strip() for name in text.split(",") if name.strip()]


def _check_options(lr: bool) -> Decorator:
    """The training options both µP checks take (``--lr`` for the coordinate check)."""
    options: list[Decorator] = [
        click.option(
            "--width-dim",
            metavar="DIM",
            help="The dim the widths are sizes of [default: d_model, else the only"
            " dim of --base].",
        ),
        click.option(
            "--base",
            "base_dims",
            type=DimSizes(),
            help="The base model's dims; the µP tables scale from it.",
        ),
        click.option("--optimizer", help="sgd, adam or adamw [default: adam]."),
        click.option("--weight-decay", type=FiniteFloat(), help="[default: 0]"),
        click.option("--steps", type=int, help="Steps recorded or trained."),
        click.option("--batch-size", type=int, help="Examples per step."),
        click.option("--seeds", type=int, help="Runs per width, averaged."),
        click.option("--seed", type=int, help="The first seed [default: 0]."),
        click.option(
            "--parametrization",
            "parametrizations",
            multiple=True,
            help="sp or mup (repeat the option) [default: both].",
        ),
        click.option(
            "--readout-zero-init/--no-readout-zero-init",
            default=None,
            help="Start the readout's weights at zero under µP [default: off].",
        ),
        click.option(
            "--init-scheme",
            type=SchemeParam(),
            help="The init under SP: a name or a JSON object [default: lecun_normal].",
        ),
        click.option("--loss", help="cross_entropy or mse [default: cross_entropy]."),
    ]
    if lr:
        options.append(
            click.option(
                "--lr",
                type=FiniteFloat(),
                help="The base model's learning rate [default: 0.01].",
            )
        )

    def decorate(function: Callable[..., Any]) -> Callable[..., Any]:
        for option in reversed(options):
            function = option(function)
        return function

    return decorate


def _widths_and_dim(
    widths: tuple[str | None, list[int]] | None, width_dim: str | None
) -> tuple[list[int] | None, str | None]:
    """The widths and their dim, named in --widths (DIM=N,...) or by --width-dim."""
    if widths is None:
        return None, width_dim

    dim, sizes = widths
    if dim is not None and width_dim is not None and dim != width_dim:
        raise click.BadParameter(
            f"--widths names {dim!r} but --width-dim names {width_dim!r}; give one",
            param_hint="--widths",
        )

    return sizes, dim or width_dim


@click.command("coord-check", epilog=SPEC_HELP)
@spec_source()
@click.option(
    "--widths",
    type=Widths(),
    required=True,
    help="The widths to train at: 64,256,1024, or d_hidden=64,256,1024 to name"
    " their dim.",
)
@_check_options(lr=True)
@format_options()
@click.pass_obj
def coord_check(
    settings: Settings,
    spec: str | None,
    preset: str | None,
    preset_params: Sequence[tuple[str, Any]],
    widths: tuple[str | None, list[int]],
    width_dim: str | None,
    parametrizations: Sequence[str],
    as_json: bool,
    as_csv: bool,
    **given: Any,
) -> None:
    """µP check: each layer's output size across widths in the first steps.

    The service trains SPEC briefly at each width under SP and µP; under µP
    a hidden layer's mean |x| stays flat as the width grows.
    """
    chosen = output_format(as_json, as_csv)
    body = read_spec(spec, preset, preset_params)
    sizes, dim = _widths_and_dim(widths, width_dim)
    arguments = given_only(
        width_dim=dim, parametrizations=list(parametrizations) or None, **given
    )

    result = settings.ask(
        "Training for the coordinate check",
        lambda client: client.coord_check(body, widths=sizes, **arguments),
    )

    answer(chosen, result.raw, render.show_coord_check, render.coord_check_csv, result)


@click.command("transfer-check", epilog=SPEC_HELP)
@spec_source()
@click.option(
    "--widths",
    type=Widths(),
    help="The widths: 32,128,512, or d_model=32,128,512 [default: 32, 128, 512].",
)
@click.option(
    "--lrs",
    type=Numbers(),
    help="The grid of base learning rates, such as 1e-3,3e-3,1e-2"
    " [default: 2^-14 … 2^-4].",
)
@click.option("--loss-window", type=int, help="Last losses the final loss averages.")
@_check_options(lr=False)
@format_options()
@click.pass_obj
def transfer_check(
    settings: Settings,
    spec: str | None,
    preset: str | None,
    preset_params: Sequence[tuple[str, Any]],
    widths: tuple[str | None, list[int]] | None,
    width_dim: str | None,
    parametrizations: Sequence[str],
    as_json: bool,
    as_csv: bool,
    **given: Any,
) -> None:
    """µP check: the best learning rate at each width, and how far it moves.

    Without SPEC the service trains its default MLP 32 → w → w → 10.
    """
    chosen = output_format(as_json, as_csv)
    body = None
    if spec is not None or preset is not None or preset_params:
        body = read_spec(spec, preset, preset_params)
    sizes, dim = _widths_and_dim(widths, width_dim)
    arguments = given_only(
        widths=sizes,
        width_dim=dim,
        parametrizations=list(parametrizations) or None,
        **given,
    )

    result = settings.ask(
        "Training for the transfer check",
        lambda client: client.transfer_check(body, **arguments),
    )

    answer(
        chosen,
        result.raw,
        render.show_transfer_check,
        render.transfer_check_csv,
        result,
    )
