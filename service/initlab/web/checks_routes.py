"""The routes of the µP verification: ``POST /v1/mup/coord-check`` and
``POST /v1/mup/transfer-check``.

Each reads its request, hands it to :mod:`initlab.core.mup_checks` (which
estimates the training's cost from the shapes and refuses it over the
configured budget before any work) and writes the result as chart-ready JSON:
series by step and width, slopes and verdicts.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any

from flask import Blueprint, Response, current_app, request

from initlab.core.errors import FieldProblem, InvalidInput, LimitExceeded
from initlab.core.mup_checks import (
    CoordCheckResult,
    TrainingCost,
    TransferCheckResult,
    coord_check,
    transfer_check,
)
from initlab.web import problems
from initlab.web.admission import compute_turn
from initlab.web.config import current_config
from initlab.web.jsonio import read_json_object
from initlab.web.routes import load_request_with_spec, resolve_scheme_field
from initlab.web.schemas.checks import (
    CoordCheckRequestSchema,
    TransferCheckRequestSchema,
)
from initlab.web.spec_sources import spec_source_notes

blueprint = Blueprint("checks", __name__)

_BUDGET = "training_budget"


@blueprint.post("/v1/mup/coord-check")
def post_coord_check() -> Response:
    config = current_config()
    body = read_json_object(request, config.max_json_depth)
    spec, choices = load_request_with_spec(
        body, CoordCheckRequestSchema(), config.spec_limits
    )
    arguments = _common(body, choices)
    budget = config.mup_limits.training_budget
    try:
        result = coord_check(
            spec,
            lr=choices["lr"],
            steps=choices["steps"],
            budget=budget,
            memory_budget=config.statistics_limits.memory_budget,
            work_slot=compute_turn,
            **arguments,
        )
    except InvalidInput as error:
        raise problems.invalid_input_problem(_named_budget(error), (), body) from None

    answer = _common_answer(result, budget) | {
        "lr": result.lr,
        "steps": list(result.steps),
        "parametrizations": [
            {
                "name": entry.name,
                "hidden_flat": entry.hidden_flat,
                "summary": entry.summary,
                "layers": [
                    {
                        "name": layer.name,
                        "kind": layer.kind,
                        "role": layer.role,
                        "mean": [_finite_list(row) for row in layer.mean],
                        "sd": [_finite_list(row) for row in layer.sd],
                        "slopes": _finite_list(layer.slopes),
                        "verdict": layer.verdict,
                        "largest_slope": _finite(layer.largest_slope),
                        "largest_slope_step": layer.largest_slope_step,
                    }
                    for layer in entry.layers
                ],
            }
            for entry in result.parametrizations
        ],
        "axes": {
            "x": {"label": f"width ({result.width_dim})", "scale": "log2"},
            "y": {"label": "mean |x| of the layer's output", "scale": "log"},
        },
    }
    return current_app.json.response(answer)


@blueprint.post("/v1/mup/transfer-check")
def post_transfer_check() -> Response:
    config = current_config()
    body = read_json_object(request, config.max_json_depth)
    spec, choices = load_request_with_spec(
        body, TransferCheckRequestSchema(), config.spec_limits
    )
    arguments = _common(body, choices)
    budget = config.mup_limits.training_budget
    optional = {
        name: choices[name]
        for name in ("steps", "loss_window", "lrs")
        if choices[name] is not None
    }
    if spec is None and not arguments["base_dims"]:
        arguments["base_dims"] = None  # the default spec's own base
    try:
        result = transfer_check(
            spec,
            budget=budget,
            memory_budget=config.statistics_limits.memory_budget,
            work_slot=compute_turn,
            **optional,
            **arguments,
        )
    except InvalidInput as error:
        raise problems.invalid_input_problem(_named_budget(error), (), body) from None

    answer = _common_answer(result, budget) | {
        "lrs": list(result.lrs),
        "log2_lrs": list(result.log2_lrs),
        "steps": result.steps,
        "loss_window": result.loss_window,
        "verdict": result.verdict,
        "parametrizations": [
            {
                "name": entry.name,
                "curves": [
                    {
                        "width": curve.width,
                        "losses": _finite_list(curve.losses),
                        "sd": _finite_list(curve.sd),
                        "best_index": curve.best_index,
                        "best_lr": curve.best_lr,
                    }
                    for curve in entry.curves
                ],
                "drift": entry.drift,
                "drift_log2": _finite(entry.drift_log2),
                "verdict": entry.verdict,
                "summary": entry.summary,
            }
            for entry in result.parametrizations
        ],
        "axes": {
            "x": {"label": "learning rate (base model's)", "scale": "log2"},
            "y": {"label": f"final training loss ({result.loss})", "scale": "linear"},
        },
    }
    return current_app.json.response(answer)


def _common(body: dict[str, Any], choices: dict[str, Any]) -> dict[str, Any]:
    """The arguments both checks take, with the init scheme resolved."""
    init_scheme = resolve_scheme_field(body, choices, "init_scheme")
    arguments = {
        "base_dims": choices["base_dims"],
        "width_dim": choices["width_dim"],
        "optimizer": choices["optimizer"],
        "weight_decay": choices["weight_decay"],
        "seed": choices["seed"],
        "parametrizations": tuple(dict.fromkeys(choices["parametrizations"])),
        "readout_zero_init": choices["readout_zero_init"],
        "init_scheme": init_scheme,
        "loss": choices["loss"],
    }
    for name in ("widths", "batch_size", "seeds"):
        if choices.get(name) is not None:
            arguments[name] = choices[name]

    return arguments


def _common_answer(
    result: CoordCheckResult | TransferCheckResult, budget: float
) -> dict[str, Any]:
    scheme = result.init_scheme
    return {
        "widths": list(result.widths),
        "width_dim": result.width_dim,
        "dims": list(result.dims),
        "optimizer": result.optimizer,
        "weight_decay": result.weight_decay,
        "batch_size": result.batch_size,
        "seeds": result.seeds,
        "seed": result.seed,
        "loss": result.loss,
        "init_scheme": {"name": scheme.name, **scheme.options},
        "readout_zero_init": result.readout_zero_init,
        "data": result.data,
        "cost": _cost(result.cost),
        "budget": budget,
        "notes": [*spec_source_notes(), *result.notes],
    }


def _cost(cost: TrainingCost) -> dict[str, int]:
    return {
        **{field.name: getattr(cost, field.name) for field in dataclasses.fields(cost)},
        "work": cost.work,
    }


def _finite(value: float | None) -> float | None:
    """A number JSON can hold: NaN and ±∞ (a diverged run) are null."""
    if value is None or not math.isfinite(value):
        return None
    return value


def _finite_list(values: Any) -> list[float | None]:
    return [_finite(value) for value in values]


def _named_budget(error: InvalidInput) -> InvalidInput:
    """The core's compute_budget refusal named as this service configures it."""
    if not isinstance(error, LimitExceeded) or error.limit != "compute_budget":
        return error
    moved = [
        FieldProblem(
            problem.path,
            problem.message.replace("compute_budget", _BUDGET),
            problem.value,
            problem.allowed,
        )
        for problem in error.problems
    ]
    return LimitExceeded(moved, limit=_BUDGET, limit_value=error.limit_value)
