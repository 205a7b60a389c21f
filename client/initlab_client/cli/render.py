"""The tables and CSV rows of each answer, built from the client's typed results.

One ``show_*`` function per answer prints it for people (header lines, a
table, notes below); one ``*_csv`` function writes its rows for a
spreadsheet, numbers with every digit. ``--json`` needs neither: it prints
the answer's ``raw`` JSON.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterator, Sequence
from typing import Any

from ..checks import CoordCheck, TransferCheck
from ..imports import ImportedSpec, Preset
from ..models import ActivationInfo, Recommendations, SchemeInfo
from ..mup import MupTable
from ..statistics import AnalyticValues, MonteCarloValues, Statistics
from .output import MISSING, Output, count, dims, number, scheme, shape

RECOMMENDATION_COLUMNS = (
    "name",
    "shape",
    "layer",
    "kind",
    "tensor",
    "distribution",
    "mean",
    "std",
    "bound",
    "gain",
    "gain_source",
    "fan_in",
    "fan_out",
    "convention",
    "tied_to",
    "pytorch",
    "notes",
)
ACTIVATION_COLUMNS = (
    "name",
    "parameters",
    "pytorch_gain",
    "second_moment_gain",
    "variance_gain",
    "gradient_gain",
    "mean",
    "second_moment",
    "derivative_second_moment",
    "method",
    "notes",
)
SCHEME_COLUMNS = (
    "name",
    "options",
    "convention",
    "applies_to",
    "formula",
    "source",
    "description",
)
PRESET_COLUMNS = (
    "preset",
    "parameter",
    "type",
    "default",
    "allowed",
    "minimum",
    "maximum",
    "choices",
    "min_items",
    "max_items",
    "description",
)
ANALYTIC_FIELDS = tuple(field.name for field in dataclasses.fields(AnalyticValues))
MONTE_CARLO_FIELDS = tuple(field.name for field in dataclasses.fields(MonteCarloValues))
ESTIMATE_PARTS = ("mean", "sd", "standard_error")


def show_recommendations(out: Output, result: Recommendations) -> None:
    """Scheme and parameter count, one row per tensor, then the notes."""
    out.print(f"scheme: {scheme(result.scheme)}")
    out.print(
        f"parameters: {count(result.parameter_count)} in"
        f" {len(result.parameters)} tensors,"
        f" {result.residual_branch_count} residual branches"
    )
    out.lines(
        "overrides:",
        (
            f"{override.pattern} -> {scheme(override.scheme)}:"
            f" {', '.join(override.matched) or 'no match'}"
            for override in result.overrides
        ),
    )

    table = out.table(
        "name",
        "shape",
        "distribution",
        ">std",
        ">bound",
        ">gain",
        ">fan_in",
        ">fan_out",
        "convention",
    )
    for row in result.parameters:
        distribution = row.distribution
        if distribution == "constant":
            distribution = f"constant {number(row.mean)}"
        table.add_row(
            row.name,
            shape(row.shape),
            distribution,
            number(row.std),
            number(row.bound),
            number(row.gain),
            str(row.fan_in),
            str(row.fan_out),
            row.convention,
        )
    out.print(table)

    out.lines("notes:", result.notes)
    out.lines(
        "parameter notes:",
        (f"{row.name}: {note}" for row in result.parameters for note in row.notes),
    )


def recommendations_csv(out: Output, result: Recommendations) -> None:
    """One line per tensor with every field the table shows and more."""
    out.csv(
        RECOMMENDATION_COLUMNS,
        (
            [
                row.name,
                shape(row.shape),
                row.layer,
                row.kind,
                row.tensor,
                row.distribution,
                row.mean,
                row.std,
                row.bound,
                row.gain,
                row.gain_source,
                row.fan_in,
                row.fan_out,
                row.convention,
                row.tied_to,
                row.pytorch,
                "; ".join(row.notes),
            ]
            for row in result.parameters
        ),
    )


def _estimate(values: MonteCarloValues | None, name: str) -> str:
    """A Monte Carlo statistic as ``mean ± sd``; ``-`` where it does not apply."""
    estimate = None if values is None else getattr(values, name)
    if estimate is None or estimate.mean is None:
        return MISSING

    return f"{number(estimate.mean, 4)} ± {number(estimate.sd, 2)}"


def _analytic(values: AnalyticValues | None, name: str) -> str:
    return number(None if values is None else getattr(values, name), 4)


def show_statistics(out: Output, result: Statistics) -> None:
    """The init and method, one row per point of the network, then the verdicts.

    Forward: E[h²], the pre-activation's second moment; backward: E[δ²], the
    per-example gradient second moment at the layer's output. Analytic is
    the mean-field prediction, Monte Carlo the mean ± SD over the networks
    drawn.
    """
    out.print(f"init: {scheme(result.init)}")
    method = f"method: {result.method}"
    if result.method != "analytic":
        method += (
            f" ({result.seeds} networks, batch {result.batch_size}, seed {result.seed})"
        )
    out.print(method)

    table = out.table(
        "layer",
        "kind",
        ">width",
        "activation",
        ">E[h²] analytic",
        ">E[h²] Monte Carlo",
        ">χ₁",
        ">E[δ²] analytic",
        ">E[δ²] Monte Carlo",
    )
    for layer in result.layers:
        table.add_row(
            layer.name,
            layer.kind,
            str(layer.width),
            layer.activation,
            _analytic(layer.analytic, "second_moment"),
            _estimate(layer.monte_carlo, "second_moment"),
            _analytic(layer.analytic, "chi_1"),
            _analytic(layer.analytic, "gradient_second_moment"),
            _estimate(layer.monte_carlo, "gradient_second_moment"),
        )
    out.print(table)

    summary = result.summary
    out.print(f"forward: {summary.forward.verdict}: {summary.forward.reason}")
    if summary.backward is not None:
        out.print(f"backward: {summary.backward.verdict}: {summary.backward.reason}")
    phase = summary.phase
    out.print(f"phase: {phase.phase or 'none'}: {phase.reason}")
    out.lines("notes:", result.notes)


def statistics_csv(out: Output, result: Statistics) -> None:
    """One line per row: its analytic values, then each Monte Carlo statistic's
    mean, SD and standard error; empty where a value does not apply."""
    header = [
        "name",
        "kind",
        "width",
        "activation",
        "top_level",
        *(f"analytic_{name}" for name in ANALYTIC_FIELDS),
        *(
            f"monte_carlo_{name}_{part}"
            for name in MONTE_CARLO_FIELDS
            for part in ESTIMATE_PARTS
        ),
    ]

    def line(layer: Any) -> list[Any]:
        analytic = layer.raw.get("analytic") or {}
        monte_carlo = layer.raw.get("monte_carlo") or {}
        return [
            layer.name,
            layer.kind,
            layer.width,
            layer.activation,
            layer.top_level,
            *(analytic.get(name) for name in ANALYTIC_FIELDS),
            *(
                (monte_carlo.get(name) or {}).get(part)
                for name in MONTE_CARLO_FIELDS
                for part in ESTIMATE_PARTS
            ),
        ]

    out.csv(header, (line(layer) for layer in result.layers))


def show_mup_table(out: Output, result: MupTable) -> None:
    """The base and the choices, then per target its summary and rows."""
    out.print(
        f"µP table: form {result.form}, optimizer {result.optimizer},"
        f" base lr {number(result.lr)}, weight decay {number(result.weight_decay)}"
    )
    out.print(
        f"base: {dims(result.base.dims)}"
        f" ({count(result.base.parameter_count)} parameters)"
    )
    out.print(f"width dims: {', '.join(result.width_dims) or 'none'}")

    for index, target in enumerate(result.targets):
        multipliers = ", ".join(
            f"{name} ×{number(value)}"
            for name, value in target.width_multipliers.items()
        )
        out.print("")
        out.print(
            f"target {index}: {dims(target.dims)}"
            f" ({count(target.parameter_count)} parameters)"
        )
        out.print(
            f"  width multipliers: {multipliers or 'none'};"
            f" depth multiplier {number(target.depth_multiplier)}"
        )
        out.print(
            f"  output multiplier {number(target.output_multiplier)},"
            f" input multiplier {number(target.input_multiplier)},"
            f" residual multiplier {number(target.residual_multiplier)},"
            f" attention scale {number(target.attention_scale)},"
            f" Adam ε {number(target.adam_eps)}"
        )
        table = out.table(
            "name",
            "shape",
            "role",
            "class",
            ">m_in",
            ">lr",
            ">weight_decay",
            "init",
            ">init_std",
            ">forward_mult",
        )
        for row in target.parameters:
            table.add_row(
                row.name,
                shape(row.shape),
                row.role,
                row.param_class,
                number(row.m_in),
                number(row.lr),
                number(row.weight_decay),
                row.init_distribution or MISSING,
                number(row.init_std),
                number(row.forward_multiplier),
            )
        out.print(table)
        out.lines("  notes:", target.notes)
        out.lines(
            "  parameter notes:",
            (f"{row.name}: {note}" for row in target.parameters for note in row.notes),
        )

    out.print("")
    out.print(f"convention: {result.convention}")
    out.lines("notes:", result.notes)


def _coord_check_header(out: Output, result: CoordCheck | TransferCheck) -> None:
    widths = ", ".join(str(width) for width in result.widths)
    out.print(f"widths of {result.width_dim}: {widths}")
    out.print(
        f"optimizer {result.optimizer}, weight decay {number(result.weight_decay)},"
        f" batch {result.batch_size}, seeds {result.seeds} (from {result.seed}),"
        f" loss {result.loss}, init {scheme(result.init_scheme)}"
    )
    out.print(
        f"work: {count(result.cost.work)} of a budget of {count(int(result.budget))}"
    )


def show_coord_check(out: Output, result: CoordCheck) -> None:
    """Per parametrization: its summary, and per layer the verdict, the slope of
    log2 mean |x| against log2 width at each step, and mean |x| at the last step.
    """
    _coord_check_header(out, result)
    out.print(f"base lr {number(result.lr)}, steps t = {_steps(result.steps)}")
    last = len(result.steps) - 1

    for entry in result.parametrizations:
        out.print("")
        out.print(entry.summary)
        table = out.table(
            "layer",
            "role",
            "verdict",
            *(f">slope t={step}" for step in result.steps),
            *(f">|x| w={width}" for width in result.widths),
        )
        for layer in entry.layers:
            table.add_row(
                layer.name,
                layer.role,
                layer.verdict,
                *(number(slope, 3) for slope in layer.slopes),
                *(number(mean, 4) for mean in layer.mean[last]),
            )
        out.print(table)

    out.print(f"|x| columns: mean |x| at t = {result.steps[last]}")
    out.lines("notes:", result.notes)


def coord_check_csv(out: Output, result: CoordCheck) -> None:
    """One line per (parametrization, layer, step, width), ready to plot."""
    header = (
        "parametrization",
        "layer",
        "role",
        "verdict",
        "step",
        "width",
        "mean_abs",
        "sd",
        "slope",
    )

    def lines() -> Iterator[list[Any]]:
        for entry in result.parametrizations:
            for layer in entry.layers:
                for index, step in enumerate(result.steps):
                    for column, width in enumerate(result.widths):
                        yield [
                            entry.name,
                            layer.name,
                            layer.role,
                            layer.verdict,
                            step,
                            width,
                            layer.mean[index][column],
                            layer.sd[index][column],
                            layer.slopes[index],
                        ]

    out.csv(header, lines())


def _steps(steps: Sequence[int]) -> str:
    return ", ".join(str(step) for step in steps)


def show_transfer_check(out: Output, result: TransferCheck) -> None:
    """The verdict, then per parametrization the final loss over the grid."""
    _coord_check_header(out, result)
    out.print(
        f"{result.steps} steps; final loss: mean of the last {result.loss_window}"
    )
    out.print(result.verdict)

    for entry in result.parametrizations:
        out.print("")
        out.print(entry.summary)
        table = out.table(
            ">width", ">best lr", *(f">lr {number(lr, 4)}" for lr in result.lrs)
        )
        for curve in entry.curves:
            table.add_row(
                str(curve.width),
                number(curve.best_lr, 4),
                *(number(loss, 5) for loss in curve.losses),
            )
        out.print(table)

    out.lines("notes:", result.notes)


def transfer_check_csv(out: Output, result: TransferCheck) -> None:
    """One line per (parametrization, width, learning rate)."""
    header = ("parametrization", "width", "lr", "loss", "sd", "best")
    out.csv(
        header,
        (
            [
                entry.name,
                curve.width,
                lr,
                curve.losses[index],
                curve.sd[index],
                index == curve.best_index,
            ]
            for entry in result.parametrizations
            for curve in entry.curves
            for index, lr in enumerate(result.lrs)
        ),
    )


def show_imported_spec(out: Output, result: ImportedSpec) -> None:
    """Where the spec came from, its size and the dims to scale."""
    out.print(f"source: {result.source}")
    out.print(
        f"parameters: {count(result.parameter_count)},"
        f" {result.residual_branch_count} residual branches"
    )
    derived = f" (derived: {', '.join(result.derived_dims)})"
    out.print(
        f"scale dims: {dims(result.scale_dims)}"
        + (derived if result.derived_dims else "")
    )
    out.lines("notes:", result.notes)


def show_activations(out: Output, result: Sequence[ActivationInfo]) -> None:
    """One row per activation: PyTorch's gain and the exact Gaussian gains."""
    table = out.table(
        "name",
        "parameters",
        ">pytorch_gain",
        ">second_moment_gain",
        ">variance_gain",
        ">gradient_gain",
        "method",
    )
    for info in result:
        table.add_row(
            info.name,
            dims(info.parameters) or MISSING,
            number(info.pytorch_gain),
            number(info.second_moment_gain),
            number(info.variance_gain),
            number(info.gradient_gain),
            info.method,
        )
    out.print(table)
    out.print(
        "gains for z ~ N(0, 1): second_moment_gain = 1/√E[φ(z)²],"
        " variance_gain = 1/√Var φ(z), gradient_gain = 1/√E[φ'(z)²]"
    )


def activations_csv(out: Output, result: Sequence[ActivationInfo]) -> None:
    out.csv(
        ACTIVATION_COLUMNS,
        (
            [
                info.name,
                info.parameters,
                info.pytorch_gain,
                info.second_moment_gain,
                info.variance_gain,
                info.gradient_gain,
                info.mean,
                info.second_moment,
                info.derivative_second_moment,
                info.method,
                "; ".join(info.notes),
            ]
            for info in result
        ),
    )


def show_schemes(out: Output, result: Sequence[SchemeInfo]) -> None:
    """One row per scheme: its options with their defaults and its convention."""
    table = out.table(
        "name",
        "options (default)",
        "convention",
        "description",
        prose=("options (default)", "description"),
    )
    for info in result:
        options = ", ".join(
            f"{option.name}={_value(option.default)}" for option in info.options
        )
        table.add_row(info.name, options or MISSING, info.convention, info.description)
    out.print(table)


def schemes_csv(out: Output, result: Sequence[SchemeInfo]) -> None:
    """One line per scheme; its options as a JSON object of their defaults."""
    out.csv(
        SCHEME_COLUMNS,
        (
            [
                info.name,
                {option.name: option.default for option in info.options},
                info.convention,
                info.applies_to,
                info.formula,
                info.source,
                info.description,
            ]
            for info in result
        ),
    )


def show_presets(out: Output, result: Sequence[Preset]) -> None:
    """One table per preset: each parameter, its type, default and what it takes."""
    for index, preset in enumerate(result):
        if index:
            out.print("")
        table = out.table(
            "parameter",
            "type",
            "default",
            "allowed",
            title=f"{preset.name}: {preset.description}",
            prose=("allowed",),
        )
        for parameter in preset.parameters:
            default = (
                "derived" if parameter.default is None else _value(parameter.default)
            )
            table.add_row(parameter.name, parameter.type, default, parameter.allowed)
        out.print(table)


def presets_csv(out: Output, result: Sequence[Preset]) -> None:
    """One line per (preset, parameter); a default left empty is derived."""
    out.csv(
        PRESET_COLUMNS,
        (
            [
                preset.name,
                parameter.name,
                parameter.type,
                parameter.default,
                parameter.allowed,
                parameter.minimum,
                parameter.maximum,
                parameter.choices,
                parameter.min_items,
                parameter.max_items,
                parameter.description,
            ]
            for preset in result
            for parameter in preset.parameters
        ),
    )


def _value(value: Any) -> str:
    """An option's value as it is written on the command line: JSON, bare text."""
    if isinstance(value, str):
        return value

    return json.dumps(value)
