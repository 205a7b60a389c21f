"""Requests and responses of the µP verification: coordinate and transfer checks.

Both train small networks in numpy on synthetic data (the response states
it). Bounds that depend on the server (the training budget) are configuration
(:class:`initlab.core.mup.MupLimits`), checked by the core before any work;
the schemas check what holds everywhere.
"""

from __future__ import annotations

from typing import Any

from marshmallow import fields, validate

from initlab.core.mup_checks import (
    LOSSES,
    MAX_BATCH_SIZE,
    MAX_LRS,
    MAX_SEEDS,
    MAX_STEPS,
    MAX_WIDTH,
    MAX_WIDTHS,
    OPTIMIZERS,
    PARAMETRIZATIONS,
)
from initlab.web.schemas.imports import SPEC_SOURCE_COMPONENT
from initlab.web.schemas.mup import DimsField
from initlab.web.schemas.recommendations import (
    RESOLVED_SCHEME_COMPONENT,
    SCHEME_REQUEST_COMPONENT,
    SchemeRequestField,
)
from initlab.web.schemas.spec import OneOfWithHint, StrictBoolean, StrictSchema
from initlab.web.schemas.statistics import JsonInteger, JsonNumber

MAX_SEED = 2**53 - 1


def _component(name: str) -> dict[str, Any]:
    return {"$ref": f"#/components/schemas/{name}"}


def _integer(description: str, default: int | None, low: int, high: int, **kw):
    metadata = {"description": description, "minimum": low, "maximum": high}
    if default is not None:
        metadata["default"] = default
    kw.setdefault("load_default", default)
    return JsonInteger(
        validate=validate.Range(
            min=low,
            max=high,
            error=f"must be an integer in [{low}, {high}]; got {{input}}",
        ),
        metadata=metadata,
        **kw,
    )


def _learning_rate(description: str, **kw) -> JsonNumber:
    return JsonNumber(
        validate=validate.Range(
            min=1e-20, max=1e6, error="must be a number in [1e-20, 1e6]; got {input}"
        ),
        metadata={"description": description, "minimum": 1e-20, "maximum": 1e6},
        **kw,
    )


def _widths(**kwargs: Any) -> fields.List:
    return fields.List(
        JsonInteger(
            validate=validate.Range(
                min=1,
                max=MAX_WIDTH,
                error=f"a width is in [1, {MAX_WIDTH}]; got {{input}}",
            )
        ),
        validate=validate.Length(
            min=2,
            max=MAX_WIDTHS,
            error=f"give 2 to {MAX_WIDTHS} widths, such as [64, 256, 1024]",
        ),
        metadata={
            "description": "Values of `width_dim`; every other dim of `base_dims`"
            " scales in proportion.",
            "minItems": 2,
            "maxItems": MAX_WIDTHS,
        },
        **kwargs,
    )


class _CheckRequestSchema(StrictSchema):
    """What both checks take."""

    base_dims = DimsField(
        load_default=dict,
        metadata={
            "description": "The base model's dims (overrides of the spec's); the"
            " µP tables scale from it. Default: the spec's own.",
            "default": {},
        },
    )
    widths = _widths(load_default=None)
    width_dim = fields.String(
        load_default=None,
        metadata={
            "description": "The dim the widths are values of. Default: d_model"
            " when the spec has it, else the only dim of base_dims."
        },
    )
    optimizer = fields.String(
        load_default="adam",
        validate=OneOfWithHint(OPTIMIZERS, "optimizer"),
        metadata={"default": "adam", "enum": list(OPTIMIZERS)},
    )
    weight_decay = JsonNumber(
        load_default=0.0,
        validate=validate.Range(
            min=0, max=1e6, error="must be in [0, 1e6]; got {input}"
        ),
        metadata={"default": 0.0, "minimum": 0, "maximum": 1e6},
    )
    batch_size = _integer("Examples per step.", None, 1, MAX_BATCH_SIZE)
    seeds = _integer("Independent runs per point, averaged.", None, 1, MAX_SEEDS)
    seed = _integer("The seed every stream derives from.", 0, 0, MAX_SEED)
    parametrizations = fields.List(
        fields.String(validate=OneOfWithHint(PARAMETRIZATIONS, "parametrization")),
        load_default=lambda: list(PARAMETRIZATIONS),
        validate=validate.Length(min=1, error="give sp, mup or both"),
        metadata={
            "description": "`sp` (standard: the init scheme at each width, one"
            " learning rate) and/or `mup` (from the µP tables).",
            "default": list(PARAMETRIZATIONS),
            "items": {"enum": list(PARAMETRIZATIONS)},
        },
    )
    readout_zero_init = StrictBoolean(load_default=False, metadata={"default": False})
    init_scheme = SchemeRequestField(
        load_default=None,
        metadata={
            "description": "The init scheme of the base model and of SP at every"
            " width (default lecun_normal: variance 1/fan_in, Tensor Programs V's"
            " standard parametrization).",
            "allOf": [_component(SCHEME_REQUEST_COMPONENT)],
        },
    )
    loss = fields.String(
        load_default=None,
        validate=OneOfWithHint(LOSSES, "loss"),
        metadata={
            "description": "cross_entropy against a random teacher's classes"
            " (default for a classifier) or mse against its outputs.",
            "enum": [*LOSSES, None],
        },
    )


class CoordCheckRequestSchema(_CheckRequestSchema):
    """Body of POST /v1/mup/coord-check."""

    what = "coordinate check request"

    spec = fields.Raw(
        required=True,
        metadata={
            "description": "The network to check (linear layers, norms and"
            " residual groups), or an import or preset in its place.",
            "allOf": [_component(SPEC_SOURCE_COMPONENT)],
        },
    )
    widths = _widths(required=True)
    lr = _learning_rate("The base learning rate.", load_default=1e-2)
    steps = _integer("Forward passes recorded (t = 1 is the init).", 4, 2, 64)


class TransferCheckRequestSchema(_CheckRequestSchema):
    """Body of POST /v1/mup/transfer-check."""

    what = "transfer check request"

    spec = fields.Raw(
        load_default=None,
        metadata={
            "description": "The network to train; default the MLP 32 → w → w →"
            " 10 with ReLUs, based at w = 32 (widths 32, 128, 512 by default).",
            "allOf": [_component(SPEC_SOURCE_COMPONENT)],
        },
    )
    lrs = fields.List(
        _learning_rate("A base learning rate."),
        load_default=None,
        validate=validate.Length(min=2, max=MAX_LRS),
        metadata={
            "description": "The learning-rate grid (the base model's rates). Default:"
            " powers of two for the optimizer.",
            "maxItems": MAX_LRS,
        },
    )
    steps = _integer("Training steps per run (at least 2).", None, 2, MAX_STEPS)
    loss_window = _integer(
        "Final loss = mean of the last this many training losses.", None, 1, MAX_STEPS
    )


# --- Responses -------------------------------------------------------------------


class TrainingCostSchema(StrictSchema):
    multiply_adds = fields.Integer(required=True)
    other = fields.Integer(
        required=True,
        metadata={"description": "Elementwise and optimizer work, in multiply-adds."},
    )
    random_numbers = fields.Integer(required=True)
    table_rows = fields.Integer(required=True)
    runs = fields.Integer(required=True)
    peak_bytes = fields.Integer(
        required=True,
        metadata={
            "description": "Peak working memory of one run, held against"
            " INITLAB_MEMORY_BUDGET."
        },
    )
    work = fields.Integer(
        required=True,
        metadata={"description": "Multiply-add equivalents, held against the budget."},
    )


_NUMBER_OR_NULL = fields.Float(allow_none=True)


class CoordLayerSchema(StrictSchema):
    name = fields.String(required=True)
    kind = fields.String(required=True, metadata={"enum": ["linear", "residual"]})
    role = fields.String(required=True)
    mean = fields.List(
        fields.List(fields.Float(allow_none=True)),
        required=True,
        metadata={"description": "[step][width]: mean over seeds of mean |x|."},
    )
    sd = fields.List(fields.List(fields.Float(allow_none=True)), required=True)
    slopes = fields.List(
        fields.Float(allow_none=True),
        required=True,
        metadata={"description": "Per step: slope of log2 mean |x| vs log2 width."},
    )
    verdict = fields.String(
        required=True, metadata={"enum": ["flat", "grows", "shrinks", "undetermined"]}
    )
    largest_slope = fields.Float(required=True, allow_none=True)
    largest_slope_step = fields.Integer(required=True, allow_none=True)


class CoordParametrizationSchema(StrictSchema):
    name = fields.String(required=True, metadata={"enum": list(PARAMETRIZATIONS)})
    hidden_flat = fields.Boolean(required=True)
    summary = fields.String(required=True)
    layers = fields.List(fields.Nested(CoordLayerSchema), required=True)


class CheckAxisSchema(StrictSchema):
    label = fields.String(required=True)
    scale = fields.String(required=True, metadata={"enum": ["linear", "log2", "log"]})


class _CheckResponseSchema(StrictSchema):
    widths = fields.List(fields.Integer(), required=True)
    width_dim = fields.String(required=True)
    dims = fields.List(fields.Dict(keys=fields.String(), values=fields.Integer()))
    optimizer = fields.String(required=True)
    weight_decay = fields.Float(required=True)
    batch_size = fields.Integer(required=True)
    seeds = fields.Integer(required=True)
    seed = fields.Integer(required=True)
    loss = fields.String(required=True)
    init_scheme = fields.Raw(
        required=True, metadata={"allOf": [_component(RESOLVED_SCHEME_COMPONENT)]}
    )
    readout_zero_init = fields.Boolean(required=True)
    data = fields.String(required=True, metadata={"description": "The synthetic task."})
    cost = fields.Nested(TrainingCostSchema, required=True)
    budget = fields.Float(required=True)
    axes = fields.Dict(keys=fields.String(), values=fields.Nested(CheckAxisSchema))
    notes = fields.List(fields.String(), required=True)


class CoordCheckResponseSchema(_CheckResponseSchema):
    lr = fields.Float(required=True)
    steps = fields.List(fields.Integer(), required=True)
    parametrizations = fields.List(
        fields.Nested(CoordParametrizationSchema), required=True
    )


class TransferCurveSchema(StrictSchema):
    width = fields.Integer(required=True)
    losses = fields.List(fields.Float(allow_none=True), required=True)
    sd = fields.List(fields.Float(allow_none=True), required=True)
    best_index = fields.Integer(required=True, allow_none=True)
    best_lr = fields.Float(required=True, allow_none=True)


class TransferParametrizationSchema(StrictSchema):
    name = fields.String(required=True, metadata={"enum": list(PARAMETRIZATIONS)})
    curves = fields.List(fields.Nested(TransferCurveSchema), required=True)
    drift = fields.Integer(required=True, allow_none=True)
    drift_log2 = fields.Float(required=True, allow_none=True)
    verdict = fields.String(
        required=True, metadata={"enum": ["transfers", "drifts", "undetermined"]}
    )
    summary = fields.String(required=True)


class TransferCheckResponseSchema(_CheckResponseSchema):
    lrs = fields.List(fields.Float(), required=True)
    log2_lrs = fields.List(fields.Float(), required=True)
    steps = fields.Integer(required=True)
    loss_window = fields.Integer(required=True)
    parametrizations = fields.List(
        fields.Nested(TransferParametrizationSchema), required=True
    )
    verdict = fields.String(required=True)
