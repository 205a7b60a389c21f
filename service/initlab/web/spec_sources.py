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

from flask import g
from marshmallow import ValidationError

from initlab.core.errors import FieldProblem, InvalidInput, Path, closest, json_value
from initlab.core.importers import ImportedSpec, import_model, preset_spec
from initlab.web import problems
from initlab.web.problems import FieldError, Problem
from initlab.web.schemas.imports import ImportRequestSchema

SOURCE_KEYS = ("import", "preset")


def is_spec_source(value: Any) -> bool:
    """Whether ``value`` asks for a spec to be built rather than being one.

    An object that mixes ``import`` or ``preset`` with a spec's own fields is
    refused here, with what to write instead.
    """
    if not isinstance(value, Mapping):
        return False
    mixed = [key for key in SOURCE_KEYS if key in value]
    if mixed and len(value) > 1:
        others = ", ".join(sorted(str(key) for key in value if key != mixed[0]))
        raise problems.invalid_input_problem(
            InvalidInput.at(
                ("spec",),
                f"{mixed[0]!r} stands in for the whole spec, so it comes alone:"
                f' {{"{mixed[0]}": {{...}}}}; this spec also has {others}. Drop'
                f" them, or write the spec out without {mixed[0]!r}",
            )
        )

    return len(value) == 1 and next(iter(value)) in SOURCE_KEYS


def remember_source(
    path: Path, imported: ImportedSpec, given: Mapping[str, Any] | None = None
) -> None:
    """Note, for this request, that the spec at ``path`` was built by ``imported``.

    ``given`` is the import object or the preset's parameters, as sent: a
    problem in the built spec is traced back to the value in it that caused
    it, when exactly one value there is the one at fault.
    """
    g.spec_source = (path, imported, _given_values(given or {}))


def _given_values(given: Mapping[str, Any]) -> dict[Path, Any]:
    """The numbers of an import's ``config`` and ``options``, or a preset's
    parameters, by their path under the import or preset."""
    if "format" in given:
        nested = ((key, given.get(key)) for key in ("config", "options"))
        pairs = [
            ((name, key), value)
            for name, values in nested
            if isinstance(values, Mapping)
            for key, value in values.items()
        ]
    else:
        pairs = [((key,), value) for key, value in given.items()]

    return {
        path: value
        for path, value in pairs
        if isinstance(value, int | float) and not isinstance(value, bool)
    }


def spec_source_notes() -> list[str]:
    """The notes of the import or preset that built this request's spec, if any."""
    source = g.get("spec_source")
    if source is None:
        return []
    path, imported, _ = source
    where = problems.json_pointer(path)
    return [f"{imported.source} (at {where}): {note}" for note in imported.notes]


def spec_source() -> tuple[str, str] | None:
    """Where this request's spec was built, and by what: ``("/spec/import",
    "huggingface:t5")``; ``None`` for a spec written out."""
    source = g.get("spec_source")
    if source is None:
        return None
    path, imported, _ = source

    return problems.json_pointer(path), imported.source


def repoint_problem(problem: Problem) -> Problem:
    """``problem`` with pointers into a built spec moved to what built it.

    A user who sent ``{"import": ...}`` cannot follow ``/spec/layers/2/count``:
    such an error points at ``/spec/import`` and quotes where in the built spec
    the rule broke (POST /v1/specs/import shows that spec); at the number
    given there, ``/spec/import/config/n_layer``, when the broken value is
    that one number. A detail that named the first error is written again
    from the moved one.
    """
    source = g.get("spec_source")
    if source is None:
        return problem
    path, imported, given = source
    own = problems.json_pointer(path)
    if path:
        endpoint = "/v1/specs/expand" if path[-1] == "preset" else "/v1/specs/import"
        builder = f"{own} builds ({imported.source}; {endpoint} shows it)"
    else:
        # POST /v1/specs/import or /v1/specs/expand: the body is the import or
        # the preset itself, so the problem is the whole body's.
        builder = f"this request builds ({imported.source})"
    moved = []
    for error in problem.errors:
        inside_own = bool(own) and error.pointer.startswith(own)
        if error.pointer.startswith("/spec/") and not inside_own:
            built_at = error.pointer[len("/spec") :]
            pointer, origin = own, ""
            cause = _cause(imported.spec, built_at, given)
            if cause is not None:
                pointer = own + problems.json_pointer(cause)
                origin = f" (where it holds the value of {pointer})"
            message = (
                f"the spec that {builder} breaks a rule at {built_at}{origin}:"
                f" {error.message}"
            )
            moved.append(FieldError(pointer, message, error.parameter))
        else:
            moved.append(error)
    if problem.detail == problems.summary(problem.errors):
        problem.detail = problems.summary(moved)
    problem.errors = moved

    return problem


def _cause(
    spec: Mapping[str, Any], built_at: str, given: Mapping[Path, Any]
) -> Path | None:
    """The path of the one given number that the built spec holds at ``built_at``.

    A size in the built spec is a number or a dim's name (``"n_layer"``, whose
    size is in ``dims``). ``None`` when no given number, or more than one, is
    that size: the problem then stays with the import or preset as a whole.
    """
    parts = [
        part.replace("~1", "/").replace("~0", "~") for part in built_at.split("/")[1:]
    ]
    value = problems.value_at(spec, parts)
    dims = spec.get("dims")
    if isinstance(value, str) and isinstance(dims, Mapping):
        value = dims.get(value)
    if not isinstance(value, int | float) or isinstance(value, bool):
        return None
    matches = [path for path, number in given.items() if number == value]

    return matches[0] if len(matches) == 1 else None


def build_spec_source(
    value: Mapping[str, Any], path: Path, document: Any
) -> ImportedSpec:
    """The spec that ``{"import": ...}`` or ``{"preset": ...}`` at ``path`` builds.

    Raises a 422 problem whose pointers start at ``path``.
    """
    kind, source = next(iter(value.items()))
    if kind == "import":
        imported = import_source(source, (*path, "import"), document)
        remember_source((*path, "import"), imported, source)
        return imported

    if not isinstance(source, Mapping):
        raise problems.invalid_input_problem(
            InvalidInput.at(
                (*path, "preset"),
                "a preset is an object with its name and parameters, such as"
                f' {{"name": "transformer", "d_model": 512}}; got {json_value(source)}',
                value=source,
            )
        )
    if "name" not in source:
        raise problems.invalid_input_problem(
            InvalidInput.at(
                (*path, "preset", "name"),
                "missing: a preset in place of a spec needs its name, as"
                ' {"preset": {"name": "transformer", "d_model": 512}}',
            )
        )
    params = {key: each for key, each in source.items() if key != "name"}
    imported = preset_source(source["name"], params, (*path, "preset"), ("name",))
    remember_source((*path, "preset"), imported, params)
    return imported


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
        if isinstance(name, Mapping) and "name" in name:
            hint = (
                "; here the preset's name is a string beside its parameters:"
                f' {{"preset": {json_value(name.get("name"))}, <parameter>: ...}}'
            )
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
