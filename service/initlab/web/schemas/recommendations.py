"""Request and response of ``POST /v1/recommendations`` (the spec has its own module).

A scheme is asked for as a name (``"kaiming_normal"``) or as an object with a
``name`` and options (``{"name": "kaiming_normal", "mode": "fan_out"}``); it is
answered in the object form with every option filled in, so the answer's
``scheme`` can be posted again as is.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from marshmallow import Schema, ValidationError, fields

from initlab.core.errors import json_value
from initlab.core.schemes import Scheme, SchemeOption
from initlab.core.types import SchemeChoice
from initlab.web.schemas.spec import SPEC_SHAPE, StrictSchema

AUTO_SCHEME = "auto"
DISTRIBUTIONS = ["normal", "uniform", "truncated_normal", "orthogonal", "constant"]

SCHEME_REQUEST_COMPONENT = "SchemeRequest"
RESOLVED_SCHEME_COMPONENT = "ResolvedScheme"


def _component(name: str) -> dict[str, Any]:
    return {"$ref": f"#/components/schemas/{name}"}


def scheme_request_json_schema(schemes: Iterable[Scheme]) -> dict[str, Any]:
    """JSON schema of a requested scheme (component ``SchemeRequest``).

    Written from the core's catalogue: a name, or an object with one scheme's
    name and any of that scheme's options, each with its type, bounds or
    choices.
    """
    schemes = list(schemes)
    variants: list[dict[str, Any]] = [
        {"type": "string", "enum": [scheme.name for scheme in schemes]}
    ]
    for scheme in schemes:
        properties = {"name": {"const": scheme.name}}
        for option in scheme.options:
            properties[option.name] = _option_json_schema(option)
        variants.append(
            {
                "title": scheme.name,
                "type": "object",
                "required": ["name"],
                "properties": properties,
                "additionalProperties": False,
            }
        )

    return {
        "description": "A scheme name, or an object with the name and options.",
        "oneOf": variants,
    }


def _option_json_schema(option: SchemeOption) -> dict[str, Any]:
    types: list[str] = [option.type]
    if option.nullable:
        types.append("null")
    described: dict[str, Any] = {
        "type": types[0] if len(types) == 1 else types,
        "description": option.description,
        "default": option.default,
    }
    if option.choices:
        described["enum"] = [*option.choices, *([None] if option.nullable else [])]
    if option.type != "string":
        bound = "exclusiveMinimum" if option.exclusive_minimum else "minimum"
        described[bound] = option.lowest
        described["maximum"] = option.highest

    return described


def resolved_scheme_json_schema() -> dict[str, Any]:
    """JSON schema of a resolved scheme (component ``ResolvedScheme``)."""
    return {
        "description": "A scheme name with every option, defaults filled in.",
        "type": "object",
        "required": ["name"],
        "properties": {"name": {"type": "string"}},
        "additionalProperties": True,
    }


class SchemeRequestField(fields.Field):
    """A scheme as requested: a name, or ``{"name": ..., <option>: <value>, ...}``.

    Loads into a :class:`SchemeChoice`; whether the name and options are known
    is for the core to say (``initlab.core.schemes.resolve_scheme``).
    """

    default_error_messages = {
        "invalid": "must be a scheme name or an object with a 'name' and options;"
        ' write e.g. "kaiming_normal" or {{"name": "kaiming_normal", "mode":'
        ' "fan_out"}}; got {input}',
        "no_name": "a scheme object needs a 'name' (a non-empty string); got {input}",
    }

    def _deserialize(
        self, value: Any, attr: str | None, data: Any, **kwargs: Any
    ) -> SchemeChoice:
        if isinstance(value, str) and value:
            return SchemeChoice(value)
        if not isinstance(value, Mapping):
            raise self.make_error("invalid", input=_preview(value))

        name = value.get("name")
        if not isinstance(name, str) or not name:
            raise self.make_error("no_name", input=_preview(name))

        options = {key: option for key, option in value.items() if key != "name"}
        return SchemeChoice(name, options)


class OverridesField(fields.Field):
    """``{"<glob>": <scheme>, ...}``, in the order given (a later match wins)."""

    default_error_messages = {
        "invalid": "must be an object mapping glob patterns to schemes; got {input}",
        "empty_pattern": "a pattern must be a non-empty glob over parameter or layer"
        ' names, e.g. "h.*.attn.o.weight"; got the pattern {input}',
    }

    def _deserialize(
        self, value: Any, attr: str | None, data: Any, **kwargs: Any
    ) -> dict[str, SchemeChoice]:
        if not isinstance(value, Mapping):
            raise self.make_error("invalid", input=_preview(value))

        scheme_field = SchemeRequestField()
        overrides: dict[str, SchemeChoice] = {}
        errors: dict[str, list[str]] = {}
        for pattern, scheme in value.items():
            if not pattern.strip():
                message = self.error_messages["empty_pattern"]
                errors[pattern] = [message.format(input=json_value(pattern))]
                continue
            try:
                overrides[pattern] = scheme_field.deserialize(scheme)
            except ValidationError as error:
                errors[pattern] = error.messages

        if errors:
            raise ValidationError(errors)
        return overrides


class ResolvedSchemeField(fields.Field):
    """A scheme as resolved: ``{"name": ..., <every option, defaults filled>}``."""

    def _serialize(self, value: Any, attr: str | None, obj: Any, **kwargs: Any):
        if value is None:
            return None
        if isinstance(value, SchemeChoice):
            return {"name": value.name, **value.options}

        return dict(value)


def _preview(value: Any) -> str:
    return json_value(value)


class RecommendationRequestSchema(StrictSchema):
    """Body of POST /v1/recommendations, apart from the spec's own rules.

    ``spec`` is loaded by :func:`initlab.web.schemas.spec.load_spec`; here it
    only has to be present. An unknown member is refused naming the allowed
    ones.
    """

    what = "request body"
    spec = fields.Raw(
        required=True,
        error_messages={
            "required": f"required: {SPEC_SHAPE}",
            "null": f"required: {SPEC_SHAPE}; got null",
        },
        metadata={
            "description": "The architecture: named sizes and layers in forward order.",
            "allOf": [_component("SpecSource")],
        },
    )
    scheme = SchemeRequestField(
        load_default=lambda: SchemeChoice(AUTO_SCHEME),
        metadata={
            "description": "The scheme for every parameter: `auto` (the default)"
            " picks one per tensor from its layer kind and activation; a name uses"
            " that scheme's default options; an object gives options too.",
            "default": AUTO_SCHEME,
            "allOf": [_component(SCHEME_REQUEST_COMPONENT)],
        },
    )
    overrides = OverridesField(
        load_default=dict,
        metadata={
            "description": "fnmatch globs (`*` matches across dots) over parameter"
            " names (`h.*.attn.o.weight`) or layer names (`h.*.attn.o`, covering its"
            " weight and bias), each with the scheme for the tensors it matches."
            " They apply in order over `scheme`; where two match one tensor the"
            " later wins. A pattern that matches nothing is an error.",
            "type": "object",
            "additionalProperties": _component(SCHEME_REQUEST_COMPONENT),
        },
    )


class TruncationSchema(Schema):
    """Where a truncated normal is cut, and the std handed to the sampler."""

    lower = fields.Float(
        required=True,
        metadata={"description": "Lower cut, an absolute value (not in stds)."},
    )
    upper = fields.Float(
        required=True,
        metadata={"description": "Upper cut, an absolute value (not in stds)."},
    )
    sampler_std = fields.Float(
        required=True,
        metadata={
            "description": "The std to pass to the truncated-normal sampler; the"
            " values drawn have std `std`."
        },
    )


class ParameterRecommendationSchema(Schema):
    """How to draw one parameter tensor."""

    name = fields.String(
        required=True,
        metadata={"description": "Dotted name, as PyTorch's named_parameters()."},
    )
    shape = fields.List(
        fields.Integer(),
        required=True,
        metadata={"description": "Shape in PyTorch's layout (whatever `layout` is)."},
    )
    layer = fields.String(
        required=True, metadata={"description": "Dotted name of the layer."}
    )
    kind = fields.String(
        required=True,
        metadata={"description": "Kind of the layer holding the tensor."},
    )
    tensor = fields.String(
        required=True,
        metadata={
            "description": "Which tensor of the layer.",
            "enum": ["weight", "bias"],
        },
    )
    layout = fields.String(
        required=True,
        metadata={
            "description": "How the user's framework stores the weight: `out_in`"
            " (PyTorch) or `in_out` (GPT-2 Conv1D, Keras).",
            "enum": ["out_in", "in_out"],
        },
    )
    scheme = ResolvedSchemeField(
        required=True,
        metadata={
            "description": "The scheme applied to this tensor, options filled in.",
            "allOf": [_component(RESOLVED_SCHEME_COMPONENT)],
        },
    )
    fan_in = fields.Integer(
        required=True,
        metadata={
            "description": "fan_in as the library of the convention computes it."
        },
    )
    fan_out = fields.Integer(
        required=True,
        metadata={
            "description": "fan_out as the library of the convention computes it."
        },
    )
    signal_fan_in = fields.Integer(
        required=True,
        allow_none=True,
        metadata={
            "description": "The number of inputs each output really sums over (a"
            " transposed conv, a grouped conv, an embedding or an in_out layout"
            " can differ from fan_in). Given, with signal_fan_out, when at least"
            " one of the two differs from the library's fans; null otherwise."
        },
    )
    signal_fan_out = fields.Integer(
        required=True,
        allow_none=True,
        metadata={"description": "As signal_fan_in, for the outputs each input feeds."},
    )
    gain = fields.Float(required=True, metadata={"description": "The gain applied."})
    gain_source = fields.String(
        required=True, metadata={"description": "How the gain was obtained."}
    )
    distribution = fields.String(
        required=True,
        metadata={
            "description": "The distribution to draw from.",
            "enum": DISTRIBUTIONS,
        },
    )
    mean = fields.Float(required=True, metadata={"description": "Mean of the values."})
    std = fields.Float(
        required=True,
        metadata={
            "description": "Standard deviation of the values actually drawn (after"
            " truncation; for orthogonal the element RMS)."
        },
    )
    bound = fields.Float(
        required=True,
        allow_none=True,
        metadata={"description": "Half-width of the uniform distribution, else null."},
    )
    truncation = fields.Nested(
        TruncationSchema,
        required=True,
        allow_none=True,
        metadata={"description": "For truncated_normal, where it is cut; else null."},
    )
    pytorch = fields.String(
        required=True,
        allow_none=True,
        metadata={
            "description": "The PyTorch call that draws exactly this, or null when"
            " torch.nn.init has none."
        },
    )
    convention = fields.String(
        required=True,
        metadata={"description": "The library convention the numbers follow."},
    )
    tied_to = fields.String(
        required=True,
        allow_none=True,
        metadata={
            "description": "The parameter this one shares its storage with (counted"
            " once in parameter_count), else null."
        },
    )
    notes = fields.List(
        fields.String(),
        required=True,
        metadata={"description": "What a careful user should know, one sentence each."},
    )


class OverrideResultSchema(Schema):
    """One override as applied."""

    pattern = fields.String(required=True, metadata={"description": "The glob sent."})
    scheme = ResolvedSchemeField(
        required=True,
        metadata={
            "description": "The override's scheme, options filled in.",
            "allOf": [_component(RESOLVED_SCHEME_COMPONENT)],
        },
    )
    matched = fields.List(
        fields.String(),
        required=True,
        metadata={
            "description": "Names of the parameters this override set: those the"
            " pattern matches, less those it leaves to a policy (biases under a"
            " weight scheme, norm parameters, tied tensors) or to a later override."
        },
    )
    notes = fields.List(
        fields.String(),
        required=True,
        metadata={
            "description": "Which matched tensors the override left alone, and why;"
            " one sentence each."
        },
    )


class RecommendationResponseSchema(Schema):
    """Response of POST /v1/recommendations."""

    scheme = ResolvedSchemeField(
        required=True,
        metadata={
            "description": "The scheme asked for, every option filled in; it can be"
            " posted again as `scheme`.",
            "allOf": [_component(RESOLVED_SCHEME_COMPONENT)],
        },
    )
    overrides = fields.List(
        fields.Nested(OverrideResultSchema),
        required=True,
        metadata={"description": "The overrides in the order given."},
    )
    dims = fields.Dict(
        keys=fields.String(),
        values=fields.Integer(),
        required=True,
        metadata={"description": "The spec's named sizes."},
    )
    parameter_count = fields.Integer(
        required=True,
        metadata={"description": "Number of scalar parameters, tied tensors once."},
    )
    residual_branch_count = fields.Integer(
        required=True,
        metadata={"description": "Number of residual branches after expansion."},
    )
    parameters = fields.List(
        fields.Nested(ParameterRecommendationSchema),
        required=True,
        metadata={"description": "One row per parameter tensor, in forward order."},
    )
    notes = fields.List(
        fields.String(),
        required=True,
        metadata={"description": "What a careful user should know, one sentence each."},
    )
