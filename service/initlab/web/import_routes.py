"""The routes that build specs: imports of real models, and presets.

``POST /v1/specs/import`` turns a Hugging Face config or a torchvision
architecture into a spec; ``POST /v1/specs/expand`` builds a preset's spec;
``GET /v1/presets`` lists the presets and their parameters. Each answer carries
the spec's parameter count, so a user can check it against the real model.
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Response, current_app, request

from initlab.core.errors import InvalidInput, LimitExceeded
from initlab.core.importers import ImportedSpec
from initlab.core.spec import expand
from initlab.web import problems
from initlab.web.config import current_config
from initlab.web.jsonio import read_json_object
from initlab.web.schemas.spec import load_spec
from initlab.web.spec_sources import import_source, preset_source

blueprint = Blueprint("imports", __name__)


@blueprint.post("/v1/specs/import")
def post_import() -> Response:
    config = current_config()
    body = read_json_object(request, config.max_json_depth)
    imported = import_source(body, (), body)

    return current_app.json.response(_answer(imported))


@blueprint.post("/v1/specs/expand")
def post_expand() -> Response:
    config = current_config()
    body = read_json_object(request, config.max_json_depth)
    params = {key: value for key, value in body.items() if key != "preset"}
    imported = preset_source(body.get("preset"), params, (), ("preset",))

    return current_app.json.response(_answer(imported))


@blueprint.get("/v1/presets")
def get_presets() -> Response:
    return current_app.json.response({"presets": _preset_catalogue()})


def _answer(imported: ImportedSpec) -> dict[str, Any]:
    """The built spec with its parameter count; a spec the limits refuse is a 422."""
    limits = current_config().spec_limits
    try:
        expanded = expand(load_spec(imported.spec, limits), limits)
    except LimitExceeded as error:
        raise problems.invalid_input_problem(error.prefixed("spec")) from None
    except InvalidInput as error:
        # The importers build valid specs; a rule broken here is a sizes
        # problem the importer could not see (a size over a limit).
        raise problems.invalid_input_problem(error.prefixed("spec")) from None

    return {
        "spec": imported.spec,
        "source": imported.source,
        "parameter_count": expanded.parameter_count,
        "residual_branch_count": expanded.residual_branch_count,
        "scale_dims": imported.scale_dims,
        "derived_dims": list(imported.derived_dims),
        "notes": [*imported.notes, *expanded.notes],
    }


def _preset_catalogue() -> list[dict[str, Any]]:
    from initlab.core.importers.presets import PRESETS

    return [PRESETS[name].as_dict() | {"name": name} for name in PRESETS]
