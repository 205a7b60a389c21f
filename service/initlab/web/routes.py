"""The routes of ``/v1``: each parses, calls the core, and dumps; nothing more.

Errors leave as :class:`~initlab.web.problems.Problem`; the core's own errors
are translated here with the path of the object they concern (``/spec``).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from flask import Blueprint, Response, current_app, request
from marshmallow import Schema, ValidationError

from initlab.core.activations import (
    ACTIVATION_PARAMETERS,
    activation_catalogue,
    describe_activation,
    make_activation,
)
from initlab.core.errors import FieldProblem, InvalidInput, LimitExceeded, json_value
from initlab.core.recommend import (
    RecommendationResult,
    check_override_limits,
    recommend,
)
from initlab.core.schemes import resolve_scheme, scheme_catalogue
from initlab.core.spec import Spec, SpecLimits, expand
from initlab.core.types import ExpandedSpec, SchemeChoice
from initlab.web import problems
from initlab.web.admission import turn_for_rows
from initlab.web.config import current_config
from initlab.web.jsonio import read_json_object
from initlab.web.problems import FieldError, Problem
from initlab.web.schemas.catalog import (
    ACTIVATION_PARAMETER_NAMES,
    ActivationQuerySchema,
    ActivationsResponseSchema,
    SchemesResponseSchema,
)
from initlab.web.schemas.recommendations import (
    RecommendationRequestSchema,
    RecommendationResponseSchema,
)
from initlab.web.schemas.spec import load_spec
from initlab.web.spec_sources import (
    build_spec_source,
    is_spec_source,
    spec_source_notes,
)

blueprint = Blueprint("v1", __name__)


@blueprint.post("/v1/recommendations")
def post_recommendations() -> Response:
    config = current_config()
    body = read_json_object(request, config.max_json_depth)
    expanded, scheme, overrides, choices = load_spec_and_schemes(
        body, RecommendationRequestSchema(), "scheme", config.spec_limits
    )

    # A large answer takes a turn, writing it included (half its time).
    with turn_for_rows(len(expanded.parameters)):
        try:
            result = recommend(expanded, scheme, overrides, config.spec_limits)
        except InvalidInput as error:
            raise problems.invalid_input_problem(error, (), body) from None

        answer = _recommendation_answer(expanded, result)
        dumped = RecommendationResponseSchema().dump(answer)
        return current_app.json.response(dumped)


@blueprint.get("/v1/activations")
def get_activations() -> Response:
    repeated = [key for key in request.args if len(request.args.getlist(key)) > 1]
    if repeated:
        raise _query_problem(
            FieldError(
                problems.json_pointer((key,)),
                f"the query parameter {key} is given"
                f" {len(request.args.getlist(key))} times"
                f" ({json_value(request.args.getlist(key))}); give it once",
            )
            for key in repeated
        )
    try:
        query = ActivationQuerySchema().load(request.args)
    except ValidationError as error:
        raise _query_problem(
            problems.errors_from_validation_error(error, (), request.args.to_dict())
        ) from None

    parameters = {key: query[key] for key in ACTIVATION_PARAMETER_NAMES if key in query}
    if "name" not in query:
        if parameters:
            raise _query_problem(
                FieldError(
                    problems.json_pointer((key,)),
                    f"{key} describes one activation; add name= (e.g."
                    f" name={_owner(key)}&{key}={query[key]:g}) or remove {key}",
                )
                for key in parameters
            )
        summaries = activation_catalogue()
    else:
        try:
            activation = make_activation(query["name"], parameters)
            summaries = [describe_activation(activation)]
        except InvalidInput as error:
            raise _query_problem(
                problems.errors_from_invalid_input(error, (), request.args.to_dict())
            ) from None

    answer = {"activations": [_as_dict(summary) for summary in summaries]}
    return current_app.json.response(ActivationsResponseSchema().dump(answer))


@blueprint.get("/v1/schemes")
def get_schemes() -> Response:
    answer = {"schemes": [_as_dict(entry) for entry in scheme_catalogue()]}
    return current_app.json.response(SchemesResponseSchema().dump(answer))


def load_request_with_spec(
    body: Mapping[str, Any], schema: Schema, limits: SpecLimits
) -> tuple[Spec, Mapping[str, Any]]:
    """The spec and the request's other fields, or a 422 listing every schema
    error of both (shared by every endpoint that takes a spec). The spec may be
    written out, or built from ``{"import": ...}`` or ``{"preset": ...}``."""
    errors: list[FieldError] = []
    choices: Mapping[str, Any] = {}
    spec = None
    try:
        choices = schema.load(body)
    except ValidationError as error:
        errors += problems.errors_from_validation_error(error, (), body)
    raw_spec = body.get("spec")
    if is_spec_source(raw_spec):
        raw_spec = build_spec_source(raw_spec, ("spec",), body).spec
    if raw_spec is not None:
        try:
            spec = load_spec(raw_spec, limits)
        except ValidationError as error:
            errors += problems.errors_from_validation_error(error, ("spec",), body)
        except InvalidInput as error:
            raise problems.invalid_input_problem(error, ("spec",), body) from None

    if errors:
        raise problems.validation_problem(errors)
    return spec, choices


def load_spec_and_schemes(
    body: Mapping[str, Any], schema: Schema, scheme_field: str, limits: SpecLimits
) -> tuple[ExpandedSpec, SchemeChoice, dict[str, SchemeChoice], Mapping[str, Any]]:
    """Load a request that carries a spec, a scheme (at ``scheme_field``) and
    overrides: the expanded spec, the resolved scheme and overrides, and the
    request's other fields; or one 422 listing every problem of all three.

    Shared by every endpoint that draws a spec with a scheme.
    """
    spec, choices = load_request_with_spec(body, schema, limits)
    try:
        # Before any pattern is read; patterns × tensors waits for the spec.
        check_override_limits(len(choices["overrides"]), 0, limits)
    except LimitExceeded as error:
        raise problems.invalid_input_problem(error, (), body) from None

    found: list[FieldProblem] = []
    scheme, overrides = _resolve_schemes(body, choices, scheme_field, found)
    try:
        expanded = expand(spec, limits)
    except LimitExceeded as error:
        raise problems.invalid_input_problem(error, ("spec",), body) from None
    except InvalidInput as error:
        found[:0] = error.prefixed("spec").problems
    if found:
        raise problems.invalid_input_problem(InvalidInput(found), (), body)

    return expanded, scheme, overrides, choices


def resolve_scheme_field(
    body: Mapping[str, Any], choices: Mapping[str, Any], field_name: str
) -> SchemeChoice | None:
    """The scheme a request gives at ``field_name``, resolved with its defaults
    (None when it gives none), or a 422 pointing at it: at the field itself
    when sent as a bare name, at its ``name`` when sent as an object."""
    choice = choices[field_name]
    if choice is None:
        return None
    path = (field_name,)
    sent = body.get(field_name)
    try:
        return resolve_scheme(choice, path, path if isinstance(sent, str) else None)
    except InvalidInput as error:
        raise problems.invalid_input_problem(error, (), body) from None


def _resolve_schemes(
    body: Mapping[str, Any],
    choices: Mapping[str, Any],
    scheme_field: str,
    found: list[FieldProblem],
) -> tuple[SchemeChoice, dict[str, SchemeChoice]]:
    """Check the scheme and every override's, adding their problems to ``found``.

    A scheme sent as a bare name is at fault at its own pointer (``/scheme``),
    one sent as an object at its ``name``.
    """

    def resolve(choice: SchemeChoice, path: tuple) -> SchemeChoice:
        sent = problems.value_at(body, path)
        try:
            return resolve_scheme(choice, path, path if isinstance(sent, str) else None)
        except InvalidInput as error:
            found.extend(error.problems)
            return choice

    scheme = resolve(choices[scheme_field], (scheme_field,))
    overrides = {
        pattern: resolve(choice, ("overrides", pattern))
        for pattern, choice in choices["overrides"].items()
    }
    return scheme, overrides


def _recommendation_answer(
    expanded: ExpandedSpec, result: RecommendationResult
) -> dict[str, Any]:
    """Join each recommendation with the tensor it is for, in forward order."""
    tensors = {tensor.name: tensor for tensor in expanded.parameters}
    rows = []
    for recommendation in result.parameters:
        tensor = tensors[recommendation.name]
        rows.append(
            {
                **vars(recommendation),
                "layer": tensor.layer,
                "kind": tensor.kind,
                "tensor": tensor.tensor,
                "layout": tensor.layout,
                "tied_to": tensor.tied_to,
                "scheme": {"name": recommendation.scheme, **recommendation.options},
            }
        )

    return {
        "scheme": result.scheme,
        "overrides": result.overrides,
        "dims": expanded.dims,
        "parameter_count": expanded.parameter_count,
        "residual_branch_count": expanded.residual_branch_count,
        "parameters": rows,
        "notes": [*spec_source_notes(), *expanded.notes, *result.notes],
    }


def _query_problem(errors: Any) -> Problem:
    """A 422 for query parameters: each error also names its parameter."""
    named = [
        FieldError(error.pointer, error.message, error.pointer.lstrip("/") or None)
        for error in errors
    ]
    return problems.validation_problem(named)


def _owner(parameter: str) -> str:
    """The first activation that takes ``parameter``."""
    return next(name for name, own in ACTIVATION_PARAMETERS.items() if parameter in own)


def _as_dict(entry: Any) -> Mapping[str, Any]:
    return entry.as_dict() if hasattr(entry, "as_dict") else entry
