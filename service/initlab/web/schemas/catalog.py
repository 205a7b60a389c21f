"""Schemas of what the service offers: activations, schemes, and its health.

``GET /v1/activations`` takes the activation's own parameters as query
parameters; the set of those is read from the core's table, so a parameter
added there is accepted and documented here without an edit. Query numbers are
read as JSON numbers (``0.2``, ``1e-3``), not by Python's ``float``, which also
takes ``1_0``, ``nan`` and ``infinity``.
"""

from __future__ import annotations

import math
import re
from typing import Any

from marshmallow import Schema, fields, validate

from initlab.core.activations import ACTIVATION_NAMES, ACTIVATION_PARAMETERS
from initlab.core.errors import json_value
from initlab.web.schemas.spec import OneOfWithHint, StrictSchema

#: A number as JSON writes it (RFC 8259 §6).
JSON_NUMBER = re.compile(r"-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?")

ACTIVATION_PARAMETER_NAMES: tuple[str, ...] = tuple(
    sorted({key for parameters in ACTIVATION_PARAMETERS.values() for key in parameters})
)


def _parameter_owners(parameter: str) -> str:
    owners = [
        name for name in ACTIVATION_NAMES if parameter in ACTIVATION_PARAMETERS[name]
    ]
    defaults = ", ".join(
        f"{name} (default {ACTIVATION_PARAMETERS[name][parameter]:g})"
        for name in owners
    )
    return f"Parameter of {defaults}; needs `name`."


class QueryNumber(fields.Float):
    """A query parameter holding one number, written as JSON writes numbers."""

    default_error_messages = {
        "invalid": "must be a number written as in JSON, such as 0.2, -1 or 1e-3;"
        " got {input}",
        "overflow": "must be a finite number; got {input}, which overflows a"
        " double-precision number",
    }

    def _deserialize(self, value: Any, attr, data, **kwargs) -> float:
        if not isinstance(value, str) or not JSON_NUMBER.fullmatch(value):
            raise self.make_error("invalid", input=json_value(value))
        number = float(value)
        if not math.isfinite(number):
            raise self.make_error("overflow", input=json_value(value))

        return number


class _QuerySchema(StrictSchema):
    """Query parameters: an unknown one is refused naming the allowed ones."""

    error_messages = {
        "unknown": "unknown query parameter {input}; allowed parameters:"
        " {allowed}{hint}",
    }


def _activation_query_fields() -> dict[str, fields.Field]:
    query: dict[str, fields.Field] = {
        "name": fields.String(
            validate=OneOfWithHint(ACTIVATION_NAMES, "activation"),
            metadata={
                "description": "Describe only this activation (with the parameters"
                " given alongside); omit it for every activation with default"
                " parameters."
            },
        )
    }
    for parameter in ACTIVATION_PARAMETER_NAMES:
        query[parameter] = QueryNumber(
            allow_nan=False, metadata={"description": _parameter_owners(parameter)}
        )

    return query


ActivationQuerySchema = _QuerySchema.from_dict(
    _activation_query_fields(), name="ActivationQuerySchema"
)
"""Query parameters of GET /v1/activations: ``name`` and the activation's own."""


class ActivationSummarySchema(Schema):
    """Gains and Gaussian moments of one activation φ at z ~ N(0, 1)."""

    name = fields.String(
        required=True,
        metadata={"description": "The activation.", "enum": list(ACTIVATION_NAMES)},
    )
    parameters = fields.Dict(
        keys=fields.String(),
        values=fields.Float(),
        required=True,
        metadata={
            "description": "The activation's own parameters, defaults filled in"
            " (negative_slope, alpha, beta); empty when it has none."
        },
    )
    pytorch_gain = fields.Float(
        required=True,
        allow_none=True,
        metadata={
            "description": "torch.nn.init.calculate_gain for this activation (PyTorch"
            " 2.13); null where PyTorch raises."
        },
    )
    second_moment_gain = fields.Float(
        required=True,
        metadata={
            "description": "1/√E[φ(z)²]: keeps the forward second moment of the"
            " signal (Poole et al. 2016); √2 for relu."
        },
    )
    variance_gain = fields.Float(
        required=True,
        metadata={
            "description": "1/√Var[φ(z)]: keeps the variance when a later"
            " normalisation removes the mean (Brock et al. 2021)."
        },
    )
    gradient_gain = fields.Float(
        required=True,
        metadata={
            "description": "1/√E[φ'(z)²]: keeps the backward second moment of the"
            " gradients, χ₁ = 1 (Schoenholz et al. 2017)."
        },
    )
    mean = fields.Float(required=True, metadata={"description": "E[φ(z)]."})
    second_moment = fields.Float(required=True, metadata={"description": "E[φ(z)²]."})
    derivative_second_moment = fields.Float(
        required=True, metadata={"description": "E[φ'(z)²]."}
    )
    method = fields.String(
        required=True,
        metadata={
            "description": "How the moments were computed.",
            "enum": ["closed_form", "gauss_hermite", "adaptive_gauss_legendre"],
        },
    )
    notes = fields.List(
        fields.String(),
        required=True,
        metadata={"description": "What a careful user should know, one sentence each."},
    )


class ActivationsResponseSchema(Schema):
    """Response of GET /v1/activations."""

    activations = fields.List(
        fields.Nested(ActivationSummarySchema),
        required=True,
        metadata={
            "description": "Every activation with default parameters, in the"
            " service's fixed order; only the one asked for when `name` is given."
        },
    )


class SchemeOptionSchema(Schema):
    """One option a scheme takes."""

    name = fields.String(required=True, metadata={"description": "Option name."})
    type = fields.String(
        required=True,
        metadata={
            "description": "JSON type of the option's value.",
            "enum": ["number", "integer", "string"],
        },
    )
    default = fields.Raw(
        required=True,
        allow_none=True,
        metadata={
            "description": "Value used when the option is not given; null where the"
            " option's description says what null means.",
            "type": ["number", "string"],
        },
    )
    allowed = fields.Raw(
        required=True,
        metadata={
            "description": "The accepted strings of a string option, or a sentence"
            " saying which numbers a number option accepts.",
            "oneOf": [
                {"type": "array", "items": {"type": "string"}},
                {"type": "string"},
            ],
        },
    )
    description = fields.String(
        required=True, metadata={"description": "What the option changes."}
    )


class SchemeSchema(Schema):
    """One initialization scheme the service can apply."""

    name = fields.String(
        required=True,
        metadata={"description": "Name to use as `scheme` or `scheme.name`."},
    )
    description = fields.String(
        required=True, metadata={"description": "What the scheme does."}
    )
    applies_to = fields.String(
        required=True,
        metadata={"description": "The parameter tensors the scheme is meant for."},
    )
    options = fields.List(
        fields.Nested(SchemeOptionSchema),
        required=True,
        metadata={"description": "Every option, with its default and allowed values."},
    )
    formula = fields.String(
        required=True,
        metadata={"description": "The scheme's formula, in LaTeX."},
    )
    source = fields.String(
        required=True,
        metadata={
            "description": "Where the formula comes from: paper, authors, year and"
            " section, or the library function it reproduces."
        },
    )
    convention = fields.String(
        required=True,
        metadata={"description": "Whose fans and numbers the scheme follows."},
    )


class SchemesResponseSchema(Schema):
    """Response of GET /v1/schemes."""

    schemes = fields.List(
        fields.Nested(SchemeSchema),
        required=True,
        metadata={"description": "Every scheme, in the service's fixed order."},
    )


class HealthSchema(Schema):
    """Response of GET /healthz."""

    status = fields.String(
        required=True,
        validate=validate.OneOf(["ok"]),
        metadata={"description": "`ok` while the process can answer requests."},
    )
