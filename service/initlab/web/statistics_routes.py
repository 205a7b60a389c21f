"""The routes of the init statistics and of their chart data.

``POST /v1/statistics`` reads a spec and an init as ``/v1/recommendations``
reads a spec and a scheme (the init is a scheme, with overrides), checks the
request against the configured limits, and hands the rest to
:func:`initlab.core.statistics.compute_statistics`, which checks its Monte
Carlo cost estimate against the compute budget before any work.
``GET /v1/visualizations/...`` read query parameters; their problems name the
``parameter`` at fault, as those of ``/v1/activations`` do.

Every refusal over a configured limit is a ``limit-exceeded`` problem naming
the limit, its value and what to change; one over the compute or memory
budget also carries the whole ``estimate``.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Iterable, Mapping
from typing import Any

from flask import Blueprint, Response, current_app, request
from marshmallow import Schema, ValidationError

from initlab.core import montecarlo
from initlab.core.activations import make_activation
from initlab.core.errors import FieldProblem, InvalidInput, LimitExceeded, Path
from initlab.core.recommend import (
    RecommendationResult,
    recommend,
)
from initlab.core.spec import expand
from initlab.core.statistics import (
    Estimate,
    GridAxis,
    Series,
    StatisticsResult,
    build_network,
    chart_network_spec,
    compute_statistics,
    phase_diagram_chart,
    propagation_chart,
)
from initlab.core.types import Activation, ExpandedSpec, SchemeChoice
from initlab.web import problems
from initlab.web.admission import compute_turn
from initlab.web.config import Config, StatisticsLimits, current_config
from initlab.web.jsonio import read_json_object
from initlab.web.problems import LIMIT_EXCEEDED, FieldError, Problem
from initlab.web.routes import load_spec_and_schemes
from initlab.web.schemas.catalog import ACTIVATION_PARAMETER_NAMES
from initlab.web.schemas.statistics import (
    ANALYTIC_VALUES,
    MONTE_CARLO_VALUES,
    CostSchema,
    PhaseDiagramChartSchema,
    PhaseDiagramQuerySchema,
    PropagationChartSchema,
    PropagationQuerySchema,
    StatisticsRequestSchema,
    StatisticsResponseSchema,
)
from initlab.web.spec_sources import spec_source, spec_source_notes

blueprint = Blueprint("statistics", __name__)

OVERFLOW_NOTE = (
    "{count} values overflowed (the signal grew beyond what floating point"
    " holds) and are reported as null."
)
BUDGETS = ("compute_budget", "memory_budget")

# Where the core's argument names sit in the request body. The phase of the
# stack starts its length map at the first layer's q (``q_input``), which the
# input sets; a problem of the whole network (a signal that explodes beyond
# what the quadratures reach, at path ()) is fixed by drawing it smaller.
_REQUEST_PATHS: dict[str, Path] = {
    "scheme": ("init",),
    "input_second_moment": ("input", "second_moment"),
    "input_correlation": ("input", "correlation"),
    "q_input": ("input", "second_moment"),
    "layers": ("spec", "layers"),
    "dims": ("spec", "dims"),
}
_NETWORK_PATH: Path = ("init",)
# The same for the propagation chart's query parameters.
_CHART_PATHS: dict[str, Path] = {
    "q_input": ("input_second_moment",),
}
_CHART_NETWORK_PATH: Path = ("schemes",)
# A phase-diagram axis's ends, as the core names them, and as the query does.
_GRID_ENDS = {"minimum": "min", "maximum": "max", "steps": "steps"}


# --- POST /v1/statistics --------------------------------------------------------


@blueprint.post("/v1/statistics")
def post_statistics() -> Response:
    config = current_config()
    limits = config.statistics_limits
    body = read_json_object(request, config.max_json_depth)
    expanded, init, overrides, choices = load_spec_and_schemes(
        body, StatisticsRequestSchema(), "init", config.spec_limits
    )

    for field_name, limit, fix in (
        ("batch_size", "max_batch_size", "ask for a smaller batch"),
        ("seeds", "max_seeds", "ask for fewer seeds"),
        ("spatial_size", "max_spatial_size", "simulate a smaller grid"),
        ("sequence_length", "max_sequence_length", "simulate shorter sequences"),
    ):
        _refuse_over(choices[field_name], limits, limit, (field_name,), fix)
    _refuse_over_layer_count(expanded, limits)

    try:
        recommendation = recommend(expanded, init, overrides, config.spec_limits)
    except InvalidInput as error:
        raise problems.invalid_input_problem(
            _at_request_paths(error), (), body
        ) from None

    arguments = {
        "batch_size": choices["batch_size"],
        "seeds": choices["seeds"],
        "backward": choices["backward"],
        "spatial_size": choices["spatial_size"],
        "sequence_length": choices["sequence_length"],
    }
    try:
        result = compute_statistics(
            expanded,
            recommendation,
            method=choices["method"],
            seed=choices["seed"],
            input_second_moment=choices["input"]["second_moment"],
            input_correlation=choices["input"]["correlation"],
            budget=limits.compute_budget,
            memory_budget=limits.memory_budget,
            work_slot=compute_turn,
            **arguments,
        )
    except LimitExceeded as error:
        if error.limit not in BUDGETS:
            raise problems.invalid_input_problem(_at_request_paths(error)) from None
        network = build_network(expanded, recommendation)
        cost = montecarlo.estimate_cost(network, **arguments)
        raise _budget_problem(_at_request_paths(error), cost, limits) from None
    except InvalidInput as error:
        problem = problems.invalid_input_problem(_at_request_paths(error), (), body)
        raise _beyond_one_stack(problem) from None

    answer = _statistics_answer(result, recommendation, limits, choices["backward"])
    return _json_response(StatisticsResponseSchema(), answer)


#: What makes an imported architecture more than one stack, where known.
_NOT_ONE_STACK = {
    "huggingface:t5": "T5 is an encoder and a decoder, which reads the encoder's"
    " output beside its own",
    "huggingface:vit": "ViT starts with a patch embedding (a convolution over"
    " the image) and a class token beside the patches",
}


def _beyond_one_stack(problem: Problem) -> Problem:
    """``problem``, saying why when the spec the statistics cannot follow was
    built by an import or a preset (T5's encoder and decoder, ViT's patch
    embedding and class token): the user wrote none of its layers."""
    source = spec_source()
    if source is None or not any(
        error.pointer.startswith("/spec/") for error in problem.errors
    ):
        return problem
    where, built_by = source
    shape = _NOT_ONE_STACK.get(built_by)
    why = "" if shape is None else f": {shape}"
    problem.detail = (
        f"The statistics follow one stack of layers whose widths chain from its"
        f" input, and the spec that {where} builds ({built_by}) is not one{why}"
        f" (see errors for where it breaks). /v1/recommendations and"
        f" /v1/mup/table take it; for statistics, write the part to follow as a"
        f" spec."
    )

    return problem


def _refuse_over_layer_count(expanded: ExpandedSpec, limits: StatisticsLimits) -> None:
    """Refuse a spec with more layers than a statistics request may follow.

    Every layer costs quadratures in the analytic method and a pass in the
    simulation; its weight tensors count the layers before any work.
    """
    layers = sum(1 for tensor in expanded.parameters if tensor.tensor == "weight")
    _refuse_over(
        layers,
        limits,
        "max_statistics_layers",
        ("spec",),
        "follow a shallower network (the statistics of its first layers do not"
        " depend on the layers after them)",
        what=f"a spec of {layers} layers",
    )


def _at_request_paths(
    error: InvalidInput,
    paths: Mapping[str, Path] = _REQUEST_PATHS,
    network: Path = _NETWORK_PATH,
) -> InvalidInput:
    """``error`` with each path moved to where its field sits in the request.

    The core names its arguments (``scheme``, ``input_second_moment``),
    reports the problems of a spec relative to it (``("layers", 3)``) and
    those of the whole network at ``()``, which go to ``network``.
    """
    moved = []
    for problem in error.problems:
        path = problem.path or network
        if isinstance(path[0], str) and path[0] in paths:
            path = (*paths[path[0]], *path[1:])
        moved.append(
            FieldProblem(path, problem.message, problem.value, problem.allowed)
        )
    if isinstance(error, LimitExceeded):
        return LimitExceeded(moved, limit=error.limit, limit_value=error.limit_value)

    return InvalidInput(moved, error.title)


def _statistics_answer(
    result: StatisticsResult,
    recommendation: RecommendationResult,
    limits: StatisticsLimits,
    backward: bool,
) -> dict[str, Any]:
    """The engine's result in the response's shape (see StatisticsResponseSchema)."""
    layers = []
    for row in result.rows:
        analytic = None
        if row.analytic is not None:
            analytic = {name: getattr(row.analytic, name) for name in ANALYTIC_VALUES}
        monte_carlo = None
        if row.monte_carlo is not None:
            monte_carlo = {
                name: _estimate_answer(row.monte_carlo.get(name))
                for name in MONTE_CARLO_VALUES
            }
        layers.append(
            {
                "name": row.name,
                "kind": row.kind,
                "width": row.width,
                "activation": row.activation,
                "top_level": row.top_level,
                "sampling": row.sampling,
                "expected_gradient_ratio": row.expected_gradient_ratio,
                "analytic": analytic,
                "monte_carlo": monte_carlo,
            }
        )

    return {
        "method": result.method,
        "init": recommendation.scheme,
        "overrides": [vars(override) for override in recommendation.overrides],
        "seed": result.seed,
        "seeds": result.seeds,
        "batch_size": result.batch_size,
        "backward": backward,
        "spatial_size": result.spatial_size,
        "sequence_length": result.sequence_length,
        "input": {
            "second_moment": result.input_second_moment,
            "correlation": result.input_correlation,
        },
        "numpy_version": result.numpy_version,
        "cost": None if result.cost is None else _cost_answer(result.cost, limits),
        "layers": layers,
        "summary": vars(result.summary),
        "attention_model": result.attention_model,
        "monte_carlo_model": result.monte_carlo_model,
        "notes": [*spec_source_notes(), *result.notes],
    }


def _estimate_answer(estimate: Estimate | None) -> dict[str, float] | None:
    return None if estimate is None else vars(estimate)


# --- GET /v1/visualizations/... ------------------------------------------------------


@blueprint.get("/v1/visualizations/propagation")
def get_propagation_chart() -> Response:
    config = current_config()
    limits = config.statistics_limits
    query = _load_query(PropagationQuerySchema())
    activation = _query_activation(query)

    for parameter, limit, fix in (
        ("depth", "max_chart_depth", "ask for fewer layers"),
        ("width", "max_chart_width", "ask for narrower layers"),
        ("batch_size", "max_batch_size", "ask for a smaller batch"),
        ("seeds", "max_seeds", "ask for fewer seeds"),
    ):
        _refuse_over(query[parameter], limits, limit, (parameter,), fix, query=True)
    _refuse_over(
        len(query["schemes"]),
        limits,
        "max_chart_schemes",
        ("schemes",),
        "compare fewer schemes in one chart",
        what=f"{len(query['schemes'])} schemes",
        query=True,
    )

    schemes = [SchemeChoice(name) for name in query["schemes"]]
    arguments = {
        key: query[key]
        for key in (
            "depth",
            "width",
            "sigma_b2",
            "batch_size",
            "seeds",
            "seed",
            "input_second_moment",
            "method",
        )
    }
    try:
        chart = propagation_chart(
            activation,
            schemes,
            **arguments,
            budget=limits.compute_budget,
            memory_budget=limits.memory_budget,
            spec_limits=config.spec_limits,
            work_slot=compute_turn,
        )
    except LimitExceeded as error:
        if error.limit not in BUDGETS:
            raise _query_limit_problem(error) from None
        cost = _propagation_chart_cost(activation, schemes, arguments, config)
        raise _budget_problem(error, cost, limits, query=True) from None
    except InvalidInput as error:
        moved = _at_request_paths(error, _CHART_PATHS, _CHART_NETWORK_PATH)
        raise _query_problem(problems.errors_from_invalid_input(moved)) from None

    answer = {
        **_fields(chart),
        "input_second_moment": query["input_second_moment"],
        "cost": None if chart.cost is None else _cost_answer(chart.cost, limits),
        "series": [_series_answer(series) for series in chart.series],
    }
    return _json_response(PropagationChartSchema(), answer)


@blueprint.get("/v1/visualizations/phase-diagram")
def get_phase_diagram_chart() -> Response:
    limits = current_config().statistics_limits
    query = _load_query(PhaseDiagramQuerySchema())
    activation = _query_activation(query)

    for axis in ("sigma_w2", "sigma_b2"):
        parameter = f"{axis}_steps"
        _refuse_over(
            query[parameter],
            limits,
            "max_grid_steps",
            (parameter,),
            "ask for a coarser grid",
            query=True,
        )

    axes = [
        GridAxis(query[f"{axis}_min"], query[f"{axis}_max"], query[f"{axis}_steps"])
        for axis in ("sigma_w2", "sigma_b2")
    ]
    try:
        # A grid's refusal comes partway through its integrals: in the turn.
        with compute_turn():
            chart = phase_diagram_chart(activation, *axes, q_input=query["q_input"])
    except InvalidInput as error:
        raise _query_problem(
            problems.errors_from_invalid_input(_at_grid_parameters(error))
        ) from None

    return _json_response(PhaseDiagramChartSchema(), _fields(chart))


def _load_query(schema: Schema) -> dict[str, Any]:
    """The query parameters as ``schema`` loads them; each may be given once."""
    arguments = request.args
    repeated = [key for key in arguments if len(arguments.getlist(key)) > 1]
    if repeated:
        raise _query_problem(
            FieldError(
                problems.json_pointer((key,)),
                f"the query parameter {key} is given {len(arguments.getlist(key))}"
                " times; give it once",
            )
            for key in repeated
        )

    try:
        return schema.load(arguments)
    except ValidationError as error:
        raise _query_problem(
            problems.errors_from_validation_error(error, (), arguments.to_dict())
        ) from None


def _query_activation(query: Mapping[str, Any]) -> Activation:
    """The activation ``activation=`` names, with its parameters."""
    parameters = {key: query[key] for key in ACTIVATION_PARAMETER_NAMES if key in query}
    try:
        return make_activation(query["activation"], parameters)
    except InvalidInput as error:
        # make_activation reports its name at ("name",): here it is activation=.
        moved = [
            FieldProblem(
                ("activation",) if problem.path == ("name",) else problem.path,
                problem.message,
                problem.value,
                problem.allowed,
            )
            for problem in error.problems
        ]
        raise _query_problem(
            problems.errors_from_invalid_input(InvalidInput(moved))
        ) from None


def _at_grid_parameters(error: InvalidInput) -> InvalidInput:
    """Grid problems at ``("sigma_w2", "minimum")`` moved to ``sigma_w2_min``."""
    moved = []
    for problem in error.problems:
        path = problem.path
        if len(path) == 2 and path[1] in _GRID_ENDS:
            path = (f"{path[0]}_{_GRID_ENDS[path[1]]}",)
        moved.append(
            FieldProblem(path, problem.message, problem.value, problem.allowed)
        )

    return InvalidInput(moved)


def _propagation_chart_cost(
    activation: Activation,
    schemes: list[SchemeChoice],
    arguments: Mapping[str, Any],
    config: Config,
) -> montecarlo.Cost:
    """The Monte Carlo cost of a propagation chart, summed as the engine sums it.

    Only called to report a refusal (the engine refuses before any work and
    keeps its estimate): every scheme's network is built again from the shapes
    and its cost estimated with the backward pass; flops and random numbers
    add up, the peak memory is the largest.
    """
    expanded = expand(
        chart_network_spec(activation, arguments["depth"], arguments["width"]),
        config.spec_limits,
    )
    costs = []
    for scheme in schemes:
        if scheme.name == "mean_field":
            # As the engine does: σ_b² goes to the scheme that draws biases from it.
            scheme = SchemeChoice(scheme.name, {"sigma_b2": arguments["sigma_b2"]})
        network = build_network(expanded, recommend(expanded, scheme))
        costs.append(
            montecarlo.estimate_cost(
                network,
                batch_size=arguments["batch_size"],
                seeds=arguments["seeds"],
                backward=True,
            )
        )

    return montecarlo.Cost(
        flops=sum(cost.flops for cost in costs),
        peak_bytes=max(cost.peak_bytes for cost in costs),
        random_numbers=sum(cost.random_numbers for cost in costs),
    )


def _series_answer(series: Series) -> dict[str, Any]:
    return {
        "scheme": series.scheme,
        "direction": series.direction,
        "label": series.label,
        "analytic": series.analytic,
        "monte_carlo": None if series.monte_carlo is None else vars(series.monte_carlo),
    }


# --- limits and problems -------------------------------------------------------------


def _refuse_over(
    value: int,
    limits: StatisticsLimits,
    limit: str,
    path: Path,
    fix: str,
    *,
    what: str | None = None,
    query: bool = False,
) -> None:
    """Refuse ``value`` at ``path`` when it is over the configured ``limit``."""
    limit_value = getattr(limits, limit)
    if value <= limit_value:
        return

    error = LimitExceeded(
        [
            FieldProblem(
                path,
                f"over the limit {limit} = {limit_value}: got {what or value}; {fix}",
                value=value,
            )
        ],
        limit=limit,
        limit_value=limit_value,
    )
    if query:
        raise _query_limit_problem(error)
    raise problems.invalid_input_problem(error)


def _budget_problem(
    error: LimitExceeded,
    cost: montecarlo.Cost,
    limits: StatisticsLimits,
    *,
    query: bool = False,
) -> Problem:
    """The 422 for work over a budget: the estimate, the limit and what to change.

    The engine's message says what to change (fewer seeds, a smaller batch,
    the analytic method); the detail repeats it with the variable that raises
    the limit, and ``estimate`` carries the whole cost.
    """
    # The engine's message states the estimate itself: no "Got <value>" after it.
    stated = InvalidInput(
        [FieldProblem(item.path, item.message) for item in error.problems]
    )
    errors = problems.errors_from_invalid_input(stated)
    if query:
        errors = _with_parameters(errors)
    first = error.problems[0].message.rstrip(".")
    detail = (
        f"{first[:1].upper()}{first[1:]}; or raise"
        f" {problems.limit_variable(error.limit)} on the server."
    )
    return Problem(
        LIMIT_EXCEEDED,
        detail,
        errors,
        limit=error.limit,
        limit_value=error.limit_value,
        estimate=CostSchema().dump(_cost_answer(cost, limits)),
    )


def _cost_answer(cost: montecarlo.Cost, limits: StatisticsLimits) -> dict[str, Any]:
    return {
        "flops": cost.flops,
        "random_numbers": cost.random_numbers,
        "work": cost.work,
        "random_number_flops": montecarlo.RANDOM_NUMBER_FLOPS,
        "peak_bytes": cost.peak_bytes,
        "compute_budget": limits.compute_budget,
        "memory_budget": limits.memory_budget,
    }


def _query_problem(errors: Iterable[FieldError]) -> Problem:
    """A 422 for query parameters: each error also names its parameter."""
    return problems.validation_problem(_with_parameters(errors))


def _query_limit_problem(error: LimitExceeded) -> Problem:
    """A limit-exceeded problem about query parameters, naming each one."""
    problem = problems.invalid_input_problem(error)
    problem.errors = _with_parameters(problem.errors)
    return problem


def _with_parameters(errors: Iterable[FieldError]) -> list[FieldError]:
    """``errors`` each naming the query parameter its pointer starts with."""
    named = []
    for error in errors:
        parameter = error.pointer.lstrip("/").split("/", 1)[0] or None
        named.append(FieldError(error.pointer, error.message, parameter))

    return named


# --- answers --------------------------------------------------------------------------


def _fields(result: Any) -> dict[str, Any]:
    """A result dataclass's fields, one level deep (schemas dump the rest)."""
    return {
        field.name: getattr(result, field.name) for field in dataclasses.fields(result)
    }


def _json_response(schema: Schema, answer: Mapping[str, Any]) -> Response:
    """Dump ``answer``; non-finite numbers become null, with a note saying so."""
    document, replaced = _finite(schema.dump(answer))
    if replaced:
        document["notes"] = [*document["notes"], OVERFLOW_NOTE.format(count=replaced)]

    return current_app.json.response(document)


def _finite(document: Any) -> tuple[Any, int]:
    """``document`` with every non-finite number replaced by null, and their count.

    A network that explodes can overflow float32 in the simulation (or float64
    in the prediction); JSON has no Infinity, so such values are answered as
    null and a note says how many.
    """
    if isinstance(document, float):
        return (document, 0) if math.isfinite(document) else (None, 1)
    if isinstance(document, dict | list):
        items = document.items() if isinstance(document, dict) else enumerate(document)
        cleaned = dict(document) if isinstance(document, dict) else list(document)
        replaced = 0
        for key, value in items:
            cleaned[key], count = _finite(value)
            replaced += count
        return cleaned, replaced

    return document, 0
