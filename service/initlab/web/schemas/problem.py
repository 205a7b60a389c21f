"""The problem details object (RFC 9457) every error response carries."""

from __future__ import annotations

from marshmallow import INCLUDE, Schema, fields

from initlab.web.problems import PROBLEM_KINDS


class FieldErrorSchema(Schema):
    """One field at fault."""

    pointer = fields.String(
        required=True,
        metadata={
            "description": "RFC 6901 JSON pointer to the field at fault in the"
            " request body (`/spec/layers/3/in`); for a query parameter, a pointer"
            " into the query parameters seen as one object (`/negative_slope`);"
            " the empty string means the whole body.",
            "example": "/spec/layers/3/in",
        },
    )
    message = fields.String(
        required=True,
        metadata={
            "description": "What is wrong, including the value that was sent and"
            " what is allowed.",
            "example": "must be a positive integer or the name of a dim; got -3",
        },
    )
    parameter = fields.String(
        metadata={"description": "The query parameter at fault, when it is one."}
    )


class ProblemSchema(Schema):
    """Problem details; members not listed here may be added later."""

    class Meta:
        unknown = INCLUDE

    type = fields.String(
        required=True,
        metadata={
            "description": "Stable URI identifying the kind of problem: "
            + ", ".join(f"`{kind.type}` ({kind.status})" for kind in PROBLEM_KINDS)
            + ". The URIs are identifiers and need not resolve.",
            "format": "uri",
        },
    )
    title = fields.String(
        required=True,
        metadata={"description": "Short summary of the kind of problem."},
    )
    status = fields.Integer(
        required=True,
        metadata={"description": "The HTTP status code of this response."},
    )
    detail = fields.String(
        required=True,
        metadata={
            "description": "One sentence about this occurrence a user can act on."
        },
    )
    instance = fields.String(
        required=True,
        metadata={
            "description": "The request id (also in the X-Request-ID header);"
            " quote it when reporting a problem."
        },
    )
    errors = fields.List(
        fields.Nested(FieldErrorSchema),
        required=True,
        metadata={"description": "Every field at fault; empty when none applies."},
    )
    limit = fields.String(
        metadata={
            "description": "For limit-exceeded: the name of the limit"
            " (configured by INITLAB_<LIMIT> on the server)."
        }
    )
    limit_value = fields.Float(
        metadata={"description": "For limit-exceeded: the limit's configured value."}
    )
