"""Request and response of ``POST /v1/mup/table``.

The request names the tuned base model (``base_dims``), the targets (dims
overrides), the optimizer and the base model's hyperparameters, and the
conventions to answer in; the response echoes them with defaults filled and
holds one table per target. Bounds that depend on the server (how many
targets, how many rows) are configuration (:class:`initlab.core.mup.MupLimits`)
checked by the core.
"""

from __future__ import annotations

import re
from typing import Any

from marshmallow import ValidationError, fields, validate, validates_schema

from initlab.core.errors import json_value
from initlab.core.mup import (
    COMPLETEP_ALPHA_RANGE,
    DEPTH_MUP_ALPHA,
    DEPTH_RULES,
    FORMS,
    OPTIMIZERS,
    WEIGHT_DECAY_CONVENTIONS,
)
from initlab.core.spec import DIM_NAME_PATTERN
from initlab.web.schemas.recommendations import (
    RESOLVED_SCHEME_COMPONENT,
    SCHEME_REQUEST_COMPONENT,
    SchemeRequestField,
)
from initlab.web.schemas.spec import OneOfWithHint, StrictBoolean, StrictSchema
from initlab.web.schemas.statistics import JsonNumber

DIM_NAME = re.compile(DIM_NAME_PATTERN)
DEFAULT_OPTIMIZER = "adamw"
DEFAULT_INIT_STD = 0.02
DEFAULT_EPS = 1e-8
# Hyperparameters beyond these are mistakes, and keep every product a normal
# (not subnormal) finite float.
MAX_HYPERPARAMETER = 1e6
MIN_HYPERPARAMETER = 1e-20
MAX_DIM_NAME = 128


def _component(name: str) -> dict[str, Any]:
    return {"$ref": f"#/components/schemas/{name}"}


def _positive(description: str, default: float | None = None, **kwargs) -> JsonNumber:
    metadata = {
        "description": description,
        "minimum": MIN_HYPERPARAMETER,
        "maximum": MAX_HYPERPARAMETER,
    }
    if default is not None:
        metadata["default"] = default
        kwargs.setdefault("load_default", default)
    return JsonNumber(
        validate=validate.Range(
            min=MIN_HYPERPARAMETER,
            max=MAX_HYPERPARAMETER,
            error="must be a number in [1e-20, 1e6]; got {input}",
        ),
        metadata=metadata,
        **kwargs,
    )


class DimsField(fields.Field):
    """Dims overrides: dim names to positive integers.

    Errors are keyed by the dim's name, so a problem points at
    ``/targets/0/d_model`` rather than inside marshmallow's key/value split.
    """

    default_error_messages = {
        "invalid": "must be an object of dim names to sizes, such as"
        ' {{"d_model": 1024}}; got {input}',
    }

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.metadata.setdefault("type", "object")
        self.metadata.setdefault(
            "additionalProperties", {"type": "integer", "minimum": 1}
        )

    def _deserialize(
        self, value: Any, attr: str | None, data: Any, **kwargs: Any
    ) -> dict[str, int]:
        if not isinstance(value, dict):
            raise self.make_error("invalid", input=json_value(value))
        errors: dict[str, list[str]] = {}
        long = [name for name in value if len(name) > MAX_DIM_NAME]
        if long:
            raise ValidationError(
                f"a dim name has at most {MAX_DIM_NAME} characters; got one of"
                f" {len(long[0])} starting {json_value(long[0][:20])}"
            )
        for name, size in value.items():
            if not DIM_NAME.match(name):
                errors[name] = [
                    f"a dim name must be an identifier (letters, digits and"
                    f" underscores, not starting with a digit); got {json_value(name)}"
                ]
            elif isinstance(size, bool) or not isinstance(size, int) or size < 1:
                errors[name] = [
                    f"dim {json_value(name)} must be a positive integer; got"
                    f" {json_value(size)}"
                ]
        if errors:
            raise ValidationError(errors)

        return dict(value)


class DepthRuleSchema(StrictSchema):
    """How depth (the repeat counts of residual stacks) is scaled."""

    what = "depth rule"

    rule = fields.String(
        required=True,
        validate=OneOfWithHint(DEPTH_RULES, "depth rule"),
        metadata={
            "description": "`completep`: residual branches × (L_base/L)^α, Adam LR"
            " of block parameters × m_L^(α−1), Adam ε × m_N⁻¹·m_L^(−α) (Dey et al."
            " 2025); `depth_mup`: the same with α = ½ (Tensor Programs VI).",
            "enum": list(DEPTH_RULES),
        },
    )
    alpha = JsonNumber(
        load_default=None,
        validate=validate.Range(
            min=COMPLETEP_ALPHA_RANGE[0],
            max=COMPLETEP_ALPHA_RANGE[1],
            error="must be a number in [0.5, 1]; got {input}",
        ),
        metadata={
            "description": "The depth exponent α of completep (default 1.0); for"
            " depth_mup it is 0.5 and may be left out.",
            "minimum": COMPLETEP_ALPHA_RANGE[0],
            "maximum": COMPLETEP_ALPHA_RANGE[1],
        },
    )

    @validates_schema
    def check_alpha(self, data: dict[str, Any], **kwargs: Any) -> None:
        alpha = data.get("alpha")
        if data.get("rule") == "depth_mup" and alpha not in (None, DEPTH_MUP_ALPHA):
            raise ValidationError(
                f"depth_mup fixes α at 0.5; got {alpha}: leave alpha out, or use"
                ' {"rule": "completep", "alpha": ...} for another α',
                "alpha",
            )


class MupTableRequestSchema(StrictSchema):
    """Body of POST /v1/mup/table, apart from the spec's own rules."""

    what = "µP table request"

    spec = fields.Raw(
        required=True,
        metadata={
            "description": "The architecture, as in /v1/recommendations; its dims"
            " are the defaults that `base_dims` and each target override.",
            "allOf": [_component("SpecSource")],
        },
    )
    base_dims = DimsField(
        load_default=dict,
        metadata={
            "description": "The tuned base (proxy) model: overrides of the spec's"
            " dims. Default: the spec's own dims.",
            "default": {},
        },
    )
    targets = fields.List(
        DimsField(),
        required=True,
        error_messages={
            "invalid": "must be a list of dims overrides, such as"
            ' [{{"d_model": 512}}, {{"d_model": 1024}}]'
        },
        validate=validate.Length(
            min=1, error="give at least one target (a dims override); got none"
        ),
        metadata={
            "description": "The models to scale to, each an override of the spec's"
            " own dims (not of `base_dims`): `{}` is the spec as written. At most"
            " INITLAB_MAX_MUP_TARGETS.",
            "minItems": 1,
        },
    )
    optimizer = fields.String(
        load_default=DEFAULT_OPTIMIZER,
        validate=OneOfWithHint(OPTIMIZERS, "optimizer"),
        metadata={
            "description": "The optimizer the learning rates are for: `adamw`"
            " (decoupled weight decay, torch.optim.AdamW), `adam` or `sgd`.",
            "default": DEFAULT_OPTIMIZER,
            "enum": list(OPTIMIZERS),
        },
    )
    lr = _positive("The base model's tuned learning rate η.", required=True)
    weight_decay = JsonNumber(
        load_default=0.0,
        validate=validate.Range(
            min=0,
            max=MAX_HYPERPARAMETER,
            error="must be a number in [0, 1e6]; got {input}",
        ),
        metadata={
            "description": "The base model's weight decay λ (the optimizer's"
            " `weight_decay`).",
            "default": 0.0,
            "minimum": 0,
            "maximum": MAX_HYPERPARAMETER,
        },
    )
    eps = _positive("The base model's Adam ε.", DEFAULT_EPS)
    init_std = _positive(
        "The base model's init std of every weight (biases 0, norms 1 and 0);"
        " leave it out to use `init_scheme`. Default 0.02 when neither is given.",
        load_default=None,
    )
    init_scheme = SchemeRequestField(
        load_default=None,
        metadata={
            "description": "Instead of `init_std`: the scheme (as `scheme` in"
            " /v1/recommendations) that gives the base model's stds.",
            "allOf": [_component(SCHEME_REQUEST_COMPONENT)],
        },
    )
    readout_zero_init = StrictBoolean(
        load_default=True,
        metadata={
            "description": "Zero-initialize the readout's weight and bias (Tensor"
            " Programs V's recommendation; `readout_zero_init` of mup.MuReadout).",
            "default": True,
        },
    )
    query_zero_init = StrictBoolean(
        load_default=False,
        metadata={
            "description": "Zero-initialize attention query projections.",
            "default": False,
        },
    )
    output_multiplier = _positive("The tuned readout constant α_output.", 1.0)
    input_multiplier = _positive("The tuned input/embedding constant α_input.", 1.0)
    attention_multiplier = _positive("The tuned attention-logit constant α_attn.", 1.0)
    form = fields.String(
        load_default="mup_package",
        validate=OneOfWithHint(FORMS, "form"),
        metadata={
            "description": "`mup_package`: Tensor Programs V Table 8 as the mup"
            " package implements it (a readout multiplier α/m); `table3`: no"
            " forward multipliers (moved into init and LR); `practitioner`: one"
            " width multiplier m_d (of `width_dim`) for every tensor.",
            "default": "mup_package",
            "enum": list(FORMS),
        },
    )
    weight_decay_convention = fields.String(
        load_default="mup_package",
        validate=OneOfWithHint(WEIGHT_DECAY_CONVENTIONS, "weight decay convention"),
        metadata={
            "description": "`mup_package`: λ scaled inversely to the width LR"
            " (lr·wd constant in width); `unscaled`: λ everywhere; `independent`:"
            " lr·wd = η·λ on every tensor, depth rules included.",
            "default": "mup_package",
            "enum": list(WEIGHT_DECAY_CONVENTIONS),
        },
    )
    depth = fields.Nested(
        DepthRuleSchema,
        load_default=None,
        allow_none=True,
        metadata={
            "description": "A depth rule, needed when a repeat count differs"
            " between the base and a target. Default: none.",
        },
    )
    width_dims = fields.List(
        fields.String(),
        load_default=None,
        metadata={
            "description": "The dims that scale with width. Default: those that"
            " differ between the base and a target (repeat counts excluded). A"
            " listed dim is width-like even where its size does not change.",
        },
    )
    width_dim = fields.String(
        load_default=None,
        metadata={
            "description": "The width whose multiplier is m_d (practitioner form)"
            " and m_N (CompleteP's ε). Default: d_model when the spec has it, else"
            " the only width dim.",
        },
    )

    @validates_schema
    def check_init(self, data: dict[str, Any], **kwargs: Any) -> None:
        if data.get("init_std") is not None and data.get("init_scheme") is not None:
            raise ValidationError(
                "give init_std or init_scheme, not both: init_std is one std for"
                " every weight, init_scheme takes each tensor's from a scheme",
                "init_scheme",
            )


# --- Response --------------------------------------------------------------------


def _number(description: str, **kwargs: Any) -> fields.Float:
    return fields.Float(required=True, metadata={"description": description}, **kwargs)


class PackageValuesSchema(StrictSchema):
    lr = _number("The package's learning rate.")
    weight_decay = _number("The package's weight decay.")
    init_std = _number("The std mup.init.normal_ would draw with.")


class MupRowSchema(StrictSchema):
    name = fields.String(required=True, metadata={"description": "Dotted name."})
    shape = fields.List(
        fields.Integer(), required=True, metadata={"description": "PyTorch's layout."}
    )
    base_shape = fields.List(
        fields.Integer(), required=True, metadata={"description": "In the base."}
    )
    layout = fields.String(required=True, metadata={"enum": ["out_in", "in_out"]})
    tied_to = fields.String(
        required=True,
        allow_none=True,
        metadata={"description": "The tensor this one shares (listed once in groups)."},
    )
    width_dims = fields.List(
        fields.String(),
        required=True,
        metadata={
            "description": "The width dim behind each width-like axis, in shape"
            " order (`a|b` when two dims have those sizes, `64→256` when none)."
        },
    )
    m_in = _number("Multiplier (target/base) of the true fan_in axis.")
    m_out = _number("Multiplier of the fan_out axis.")
    param_class = fields.String(
        data_key="class",
        required=True,
        metadata={"enum": ["matrix_like", "vector_like", "scalar_like"]},
    )
    role = fields.String(
        required=True,
        metadata={"enum": ["input", "hidden", "output", "bias", "norm", "embedding"]},
    )
    lr = _number("Learning rate for this tensor.")
    lr_multiplier = _number("lr / the base lr.")
    weight_decay = _number("Weight decay for this tensor.")
    init_std = _number("Init std (0 for a zero or constant init).")
    init_mean = _number("Init mean (1 for a norm's weight).")
    init_distribution = fields.String(
        required=True,
        metadata={
            "description": "The base's distribution: `normal` for init_std, the"
            " scheme's otherwise (a uniform's bound is √3·std); `constant` for a"
            " zero or constant init.",
            "enum": ["normal", "uniform", "truncated_normal", "orthogonal", "constant"],
        },
    )
    forward_multiplier = _number("Multiplies the tensor's product: y = a·(W x) + b.")
    depth_scaled = fields.Boolean(
        required=True,
        metadata={"description": "Whether the depth rule scales its learning rate."},
    )
    mup_package = fields.Nested(
        PackageValuesSchema,
        required=True,
        allow_none=True,
        metadata={
            "description": "What the mup package 1.0.0 would give, where that"
            " differs (weights it reads with the wrong fan_in); else null."
        },
    )
    notes = fields.List(fields.String(), required=True)


class ParamGroupSchema(StrictSchema):
    params = fields.List(fields.String(), required=True)
    lr = _number("The group's learning rate.")
    weight_decay = _number("The group's weight decay.")
    eps = fields.Float(
        required=True,
        allow_none=True,
        metadata={"description": "Adam ε; null for SGD."},
    )


class AttentionScaleSchema(StrictSchema):
    layer = fields.String(required=True)
    d_head_base = fields.Integer(required=True)
    d_head = fields.Integer(required=True)
    scale = _number("Multiply q·k by this (in place of 1/√d_head).")


class MupTargetSchema(StrictSchema):
    dims = fields.Dict(keys=fields.String(), values=fields.Integer(), required=True)
    parameter_count = fields.Integer(required=True)
    residual_branch_count = fields.Integer(required=True)
    width_multipliers = fields.Dict(
        keys=fields.String(), values=fields.Float(), required=True
    )
    depth_multiplier = _number("L/L_base (residual branch counts).")
    output_multiplier = fields.Float(
        required=True,
        allow_none=True,
        metadata={"description": "The readout's forward multiplier; null without one."},
    )
    input_multiplier = _number("The input layers' and embeddings' forward multiplier.")
    attention_scale = fields.Float(
        required=True,
        allow_none=True,
        metadata={"description": "Common to every attention layer, else null."},
    )
    attention = fields.List(fields.Nested(AttentionScaleSchema), required=True)
    residual_multiplier = _number("Multiplies every residual branch's output.")
    adam_eps = fields.Float(
        required=True, allow_none=True, metadata={"description": "null for SGD."}
    )
    parameters = fields.List(fields.Nested(MupRowSchema), required=True)
    param_groups = fields.List(fields.Nested(ParamGroupSchema), required=True)
    notes = fields.List(fields.String(), required=True)


class MupBaseSchema(StrictSchema):
    dims = fields.Dict(keys=fields.String(), values=fields.Integer(), required=True)
    parameter_count = fields.Integer(required=True)
    residual_branch_count = fields.Integer(required=True)


class ResolvedDepthSchema(StrictSchema):
    rule = fields.String(required=True, metadata={"enum": list(DEPTH_RULES)})
    alpha = _number("The depth exponent α.")


class ResolvedInitSchema(StrictSchema):
    std = fields.Float(metadata={"description": "One std for every weight."})
    scheme = fields.Raw(
        metadata={
            "description": "The scheme the base stds come from, options filled.",
            "allOf": [_component(RESOLVED_SCHEME_COMPONENT)],
        }
    )


class MupTableResponseSchema(StrictSchema):
    form = fields.String(required=True, metadata={"enum": list(FORMS)})
    optimizer = fields.String(required=True, metadata={"enum": list(OPTIMIZERS)})
    lr = _number("The base learning rate.")
    weight_decay = _number("The base weight decay.")
    eps = _number("The base Adam ε.")
    weight_decay_convention = fields.String(
        required=True, metadata={"enum": list(WEIGHT_DECAY_CONVENTIONS)}
    )
    init = fields.Nested(ResolvedInitSchema, required=True)
    readout_zero_init = fields.Boolean(required=True)
    query_zero_init = fields.Boolean(required=True)
    output_multiplier = _number("α_output.")
    input_multiplier = _number("α_input.")
    attention_multiplier = _number("α_attn.")
    depth = fields.Nested(ResolvedDepthSchema, required=True, allow_none=True)
    width_dims = fields.List(fields.String(), required=True)
    depth_dims = fields.List(fields.String(), required=True)
    width_dim = fields.String(required=True, allow_none=True)
    base = fields.Nested(MupBaseSchema, required=True)
    convention = fields.String(
        required=True, metadata={"description": "The conventions, in words."}
    )
    notes = fields.List(fields.String(), required=True)
    targets = fields.List(fields.Nested(MupTargetSchema), required=True)
