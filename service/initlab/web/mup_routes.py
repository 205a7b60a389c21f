"""The route of the µP tables: ``POST /v1/mup/table``.

Reads the request, resolves the base model's init scheme (if one is given)
and hands the rest to :func:`initlab.core.mup.mup_table`, which checks the
configured limits before expanding anything. The answer is written as plain
JSON: a Llama-sized table has thousands of rows, and building them as dicts
directly keeps the response within a few milliseconds of the computation
(``openapi.yaml`` documents its shape, which the contract tests check).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from flask import Blueprint, Response, current_app, request

from initlab.core.errors import InvalidInput
from initlab.core.mup import (
    DEPTH_MUP_ALPHA,
    DepthRule,
    MupRow,
    MupSettings,
    MupTable,
    MupTarget,
    mup_table,
)
from initlab.core.spec import Spec, SpecLimits, plan_tensor_count
from initlab.web import problems
from initlab.web.admission import turn_for_rows
from initlab.web.config import current_config
from initlab.web.jsonio import read_json_object
from initlab.web.routes import load_request_with_spec, resolve_scheme_field
from initlab.web.schemas.mup import DEFAULT_INIT_STD, MupTableRequestSchema
from initlab.web.spec_sources import spec_source_notes

blueprint = Blueprint("mup", __name__)


@blueprint.post("/v1/mup/table")
def post_mup_table() -> Response:
    config = current_config()
    body = read_json_object(request, config.max_json_depth)
    spec, choices = load_request_with_spec(
        body, MupTableRequestSchema(), config.spec_limits
    )
    settings = _settings(body, choices)
    with turn_for_rows(_rows(spec, choices["targets"], config.spec_limits)):
        try:
            table = mup_table(
                spec,
                choices["base_dims"],
                choices["targets"],
                settings,
                config.spec_limits,
                config.mup_limits,
            )
        except InvalidInput as error:
            raise problems.invalid_input_problem(error, (), body) from None

        # Writing 50,000 rows as JSON takes as long as computing them.
        return current_app.json.response(_answer(table))


def _rows(spec: Spec, targets: Sequence[Any], limits: SpecLimits) -> int:
    """About how many rows the table has: the spec's tensors for each target.

    0 for a spec that breaks a rule: :func:`mup_table` refuses it at once.
    """
    try:
        return plan_tensor_count(spec, limits) * len(targets)
    except InvalidInput:
        return 0


def _settings(body: Mapping[str, Any], choices: Mapping[str, Any]) -> MupSettings:
    init_scheme = resolve_scheme_field(body, choices, "init_scheme")
    init_std = choices["init_std"]
    if init_std is None and init_scheme is None:
        init_std = DEFAULT_INIT_STD
    depth = choices["depth"]
    if depth is not None:
        alpha = depth["alpha"]
        if depth["rule"] == "depth_mup":
            alpha = DEPTH_MUP_ALPHA
        depth = DepthRule(depth["rule"], 1.0 if alpha is None else alpha)
    width_dims = choices["width_dims"]

    return MupSettings(
        optimizer=choices["optimizer"],
        lr=choices["lr"],
        weight_decay=choices["weight_decay"],
        eps=choices["eps"],
        init_std=init_std,
        init_scheme=init_scheme,
        readout_zero_init=choices["readout_zero_init"],
        query_zero_init=choices["query_zero_init"],
        output_multiplier=choices["output_multiplier"],
        input_multiplier=choices["input_multiplier"],
        attention_multiplier=choices["attention_multiplier"],
        form=choices["form"],
        weight_decay_convention=choices["weight_decay_convention"],
        depth=depth,
        width_dims=tuple(width_dims) if width_dims is not None else None,
        width_dim=choices["width_dim"],
    )


def _answer(table: MupTable) -> dict[str, Any]:
    settings = table.settings
    if settings.init_scheme is not None:
        scheme = settings.init_scheme
        init: dict[str, Any] = {"scheme": {"name": scheme.name, **scheme.options}}
    else:
        init = {"std": settings.init_std}
    depth = settings.depth

    return {
        "form": settings.form,
        "optimizer": settings.optimizer,
        "lr": settings.lr,
        "weight_decay": settings.weight_decay,
        "eps": settings.eps,
        "weight_decay_convention": settings.weight_decay_convention,
        "init": init,
        "readout_zero_init": settings.readout_zero_init,
        "query_zero_init": settings.query_zero_init,
        "output_multiplier": settings.output_multiplier,
        "input_multiplier": settings.input_multiplier,
        "attention_multiplier": settings.attention_multiplier,
        "depth": None if depth is None else {"rule": depth.rule, "alpha": depth.alpha},
        "width_dims": list(table.width_dims),
        "depth_dims": list(table.depth_dims),
        "width_dim": table.width_dim,
        "base": {
            "dims": table.base_dims,
            "parameter_count": table.base_parameter_count,
            "residual_branch_count": table.base_residual_branch_count,
        },
        "convention": table.convention,
        "notes": [*spec_source_notes(), *table.notes],
        "targets": [_target(target) for target in table.targets],
    }


def _target(target: MupTarget) -> dict[str, Any]:
    return {
        "dims": target.dims,
        "parameter_count": target.parameter_count,
        "residual_branch_count": target.residual_branch_count,
        "width_multipliers": target.width_multipliers,
        "depth_multiplier": target.depth_multiplier,
        "output_multiplier": target.output_multiplier,
        "input_multiplier": target.input_multiplier,
        "attention_scale": target.attention_scale,
        "attention": [
            {
                "layer": scale.layer,
                "d_head_base": scale.d_head_base,
                "d_head": scale.d_head,
                "scale": scale.scale,
            }
            for scale in target.attention
        ],
        "residual_multiplier": target.residual_multiplier,
        "adam_eps": target.adam_eps,
        "parameters": [_row(row) for row in target.parameters],
        "param_groups": [
            {
                "params": list(group.params),
                "lr": group.lr,
                "weight_decay": group.weight_decay,
                "eps": group.eps,
            }
            for group in target.param_groups
        ],
        "notes": list(target.notes),
    }


def _row(row: MupRow) -> dict[str, Any]:
    package = row.mup_package
    return {
        "name": row.name,
        "shape": list(row.shape),
        "base_shape": list(row.base_shape),
        "layout": row.layout,
        "tied_to": row.tied_to,
        "width_dims": list(row.width_dims),
        "m_in": row.m_in,
        "m_out": row.m_out,
        "class": row.param_class,
        "role": row.role,
        "lr": row.lr,
        "lr_multiplier": row.lr_multiplier,
        "weight_decay": row.weight_decay,
        "init_std": row.init_std,
        "init_mean": row.init_mean,
        "init_distribution": row.init_distribution,
        "forward_multiplier": row.forward_multiplier,
        "depth_scaled": row.depth_scaled,
        "mup_package": None
        if package is None
        else {
            "lr": package.lr,
            "weight_decay": package.weight_decay,
            "init_std": package.init_std,
        },
        "notes": list(row.notes),
    }
