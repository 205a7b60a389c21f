"""Where a request's spec comes from: written out, imported, or built by a preset.

Every endpoint that takes a spec also takes ``{"import": {...}}`` (a Hugging
Face config or a torchvision architecture) or ``{"preset": {"name": ...,
<parameter>: ...}}`` in its place. :func:`build_spec_source` turns either into
spec-language data, with problems pointing into the request
(``/spec/import/config/n_embd``).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from marshmallow import ValidationError

from initlab.core.errors import FieldProblem, InvalidInput, Path, closest, json_value
from initlab.core.importers import ImportedSpec, import_model, preset_spec
from initlab.web import problems
from initlab.web.schemas.imports import ImportRequestSchema

SOURCE_KEYS = ("import", "preset")


def is_spec_source(value: Any) -> bool:
    """Whether ``value`` asks for a spec to be built rather than being one."""
    return (
        isinstance(value, Mapping)
        and len(value) == 1
        and next(iter(value)) in (SOURCE_KEYS)
    )


def build_spec_source(
    value: Mapping[str, Any], path: Path, document: Any
) -> ImportedSpec:
    """The spec that ``{"import": ...}`` or ``{"preset": ...}`` at ``path`` builds.

    Raises a 422 problem whose pointers start at ``path``.
    """
    kind, source = next(iter(value.items()))
    if kind == "import":
        return import_source(source, (*path, "import"), document)

    if not isinstance(source, Mapping):
        raise problems.invalid_input_problem(
            InvalidInput.at(
                (*path, "preset"),
                "a preset is an object with its name and parameters, such as"
                f' {{"name": "transformer", "d_model": 512}}; got {json_value(source)}',
                value=source,
            )
        )
    params = {key: each for key, each in source.items() if key != "name"}
    return preset_source(source.get("name"), params, (*path, "preset"), ("name",))


def import_source(source: Any, path: Path, document: Any) -> ImportedSpec:
    """Check an import object's shape, then import it; problems under ``path``."""
    if not isinstance(source, Mapping):
        raise problems.invalid_input_problem(
            InvalidInput.at(
                path,
                'an import is an object such as {"format": "huggingface",'
                f' "config": {{...}}}}; got {json_value(source)}',
                value=source,
            )
        )
    try:
        checked = ImportRequestSchema().load(source)
    except ValidationError as error:
        raise problems.validation_problem(
            problems.errors_from_validation_error(error, path, document)
        ) from None
    try:
        return import_model(checked)
    except InvalidInput as error:
        raise problems.invalid_input_problem(error.prefixed(*path)) from None


def preset_source(
    name: Any, params: Mapping[str, Any], path: Path, name_path: Path
) -> ImportedSpec:
    """Build a preset; problems under ``path`` (the name at ``path + name_path``,
    a parameter at ``path + (parameter,)``)."""
    from initlab.core.importers.presets import PRESETS

    if not isinstance(name, str) or name not in PRESETS:
        close = closest(name, PRESETS)
        hint = f"; did you mean {json_value(close)}?" if close else ""
        raise problems.invalid_input_problem(
            InvalidInput.at(
                (*path, *name_path),
                f"unknown preset {json_value(name)}; allowed: {', '.join(PRESETS)}"
                f"{hint} (GET /v1/presets lists their parameters)",
                value=name,
                allowed=", ".join(PRESETS),
            )
        )
    try:
        return preset_spec(name, params)
    except InvalidInput as error:
        raise problems.invalid_input_problem(_params_at(error, path)) from None


def _params_at(error: InvalidInput, path: Path) -> InvalidInput:
    """The preset's problems (at ``("params", name)``) moved under ``path``."""
    moved = []
    for problem in error.problems:
        rest = problem.path[1:] if problem.path[:1] == ("params",) else problem.path
        moved.append(
            FieldProblem(
                (*path, *rest), problem.message, problem.value, problem.allowed
            )
        )

    return InvalidInput(moved, error.title)
