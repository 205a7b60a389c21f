"""Where a request's spec comes from: written out, imported, or built by a preset.

Every endpoint that takes a spec also takes ``{"import": {...}}`` (a Hugging
Face config or a torchvision architecture) or ``{"preset": {"name": ...,
<parameter>: ...}}`` in its place. :func:`build_spec_source` turns either into
spec-language data, with problems pointing into the request
(``/spec/import/config/n_embd``).
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from flask import g
from marshmallow import ValidationError

from initlab.core.errors import FieldProblem, InvalidInput, Path, closest, json_value
from initlab.core.importers import ImportedSpec, import_model, preset_spec
from initlab.web import problems
from initlab.web.problems import FieldError, Problem
from initlab.web.schemas.imports import ImportRequestSchema

SOURCE_KEYS = ("import", "preset")
#: The most given numbers a problem is traced through (a Hugging Face config
#: has 12 to 20; each costs a build of the spec, well under 1 ms).
MAX_TRACED_NUMBERS = 64


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


@dataclass(frozen=True)
class _Built:
    """The spec of this request built by an import or a preset, and how.

    ``numbers`` are the numbers given (an import's ``config`` and ``options``,
    a preset's parameters) by their path under ``path``; ``rebuild`` builds
    the spec again with one of them changed, which is how a problem in the
    built spec is traced back to the number that caused it.
    """

    path: Path
    imported: ImportedSpec
    numbers: Mapping[Path, int | float]
    rebuild: Callable[[Path, int | float], Mapping[str, Any]]

    @functools.cached_property
    def variants(self) -> dict[Path, Mapping[str, Any] | None]:
        """The spec built again with each given number doubled (0 made 1), by
        the number's path; ``None`` where that build fails. Built once, for
        every problem of the request."""
        found: dict[Path, Mapping[str, Any] | None] = {}
        for where, number in self.numbers.items():
            try:
                found[where] = self.rebuild(where, 2 * number if number else 1)
            except Exception:  # Any failure: what it would change is unknown.
                found[where] = None
        return found


def remember_source(
    path: Path,
    imported: ImportedSpec,
    numbers: Mapping[Path, int | float],
    rebuild: Callable[[Path, int | float], Mapping[str, Any]],
) -> None:
    """Note, for this request, that the spec at ``path`` was built by ``imported``."""
    g.spec_source = _Built(path, imported, numbers, rebuild)


def _numbers(pairs: Iterable[tuple[Path, Any]]) -> dict[Path, int | float]:
    return {
        path: value
        for path, value in pairs
        if isinstance(value, int | float) and not isinstance(value, bool)
    }


def spec_source_notes() -> list[str]:
    """The notes of the import or preset that built this request's spec, if any."""
    built: _Built | None = g.get("spec_source")
    if built is None:
        return []
    where = problems.json_pointer(built.path)
    return [
        f"{built.imported.source} (at {where}): {note}" for note in built.imported.notes
    ]


def spec_source() -> tuple[str, str] | None:
    """Where this request's spec was built, and by what: ``("/spec/import",
    "huggingface:t5")``; ``None`` for a spec written out."""
    built: _Built | None = g.get("spec_source")
    if built is None:
        return None

    return problems.json_pointer(built.path), built.imported.source


def repoint_problem(problem: Problem) -> Problem:
    """``problem`` with pointers into a built spec moved to what built it.

    A user who sent ``{"import": ...}`` cannot follow ``/spec/layers/2/count``:
    such an error points at ``/spec/import`` and quotes where in the built spec
    the rule broke (POST /v1/specs/import shows that spec); at the number
    given there, ``/spec/import/config/n_layer``, when that one number
    decides the broken size. A detail that named the first error is written
    again from the moved one.
    """
    built: _Built | None = g.get("spec_source")
    if built is None:
        return problem
    path, imported = built.path, built.imported
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
            cause = _cause(built, built_at)
            if cause is not None:
                pointer = own + problems.json_pointer(cause)
                origin = f" (a size that {pointer} decides)"
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


def _cause(built: _Built, built_at: str) -> Path | None:
    """The path of the one given number that decides the size at ``built_at``.

    Each given number in turn is changed and the spec built again: a number is
    a cause when the size there changes with it (or when the build fails, so
    that it cannot be told). ``None`` unless exactly one number is a cause:
    the problem then stays with the import or preset as a whole. A request
    giving more than :data:`MAX_TRACED_NUMBERS` numbers is not traced, so
    that a body of many numbers cannot make a refusal cost a build for each.
    """
    size = _size_at(built.imported.spec, built_at)
    if size is None or len(built.numbers) > MAX_TRACED_NUMBERS:
        return None
    causes = [
        where
        for where, other in built.variants.items()
        if other is None or _size_at(other, built_at) != size
    ]

    return causes[0] if len(causes) == 1 else None


def _size_at(spec: Mapping[str, Any], pointer: str) -> int | float | None:
    """The number at ``pointer`` in a spec, a dim's name read from ``dims``."""
    value = problems.value_at(spec, problems.pointer_path(pointer))
    dims = spec.get("dims")
    if isinstance(value, str) and isinstance(dims, Mapping):
        value = dims.get(value)
    if not isinstance(value, int | float) or isinstance(value, bool):
        return None

    return value


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
    if "name" not in source:
        raise problems.invalid_input_problem(
            InvalidInput.at(
                (*path, "preset", "name"),
                "missing: a preset in place of a spec needs its name, as"
                ' {"preset": {"name": "transformer", "d_model": 512}}',
            )
        )
    params = {key: each for key, each in source.items() if key != "name"}
    return preset_source(source["name"], params, (*path, "preset"), ("name",))


def import_source(source: Any, path: Path, document: Any) -> ImportedSpec:
    """Check an import object's shape, then import it; problems under ``path``.

    Remembers, for this request, that the spec at ``path`` is the import's.
    """
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
        imported = import_model(checked)
    except InvalidInput as error:
        raise problems.invalid_input_problem(error.prefixed(*path)) from None

    sections = [
        key for key in ("config", "options") if isinstance(checked.get(key), Mapping)
    ]

    def rebuild(where: Path, number: int | float) -> Mapping[str, Any]:
        section, key = where
        return import_model(
            {**checked, section: {**checked[section], key: number}}
        ).spec

    numbers = _numbers(
        ((section, key), value)
        for section in sections
        for key, value in checked[section].items()
    )
    remember_source(path, imported, numbers, rebuild)
    return imported


def preset_source(
    name: Any, params: Mapping[str, Any], path: Path, name_path: Path
) -> ImportedSpec:
    """Build a preset; problems under ``path`` (the name at ``path + name_path``,
    a parameter at ``path + (parameter,)``). Remembers, for this request, that
    the spec at ``path`` is the preset's."""
    from initlab.core.importers.presets import PRESETS

    if name is None:
        raise problems.invalid_input_problem(
            InvalidInput.at(
                (*path, *name_path),
                f"missing: name the preset, one of {', '.join(PRESETS)}"
                " (GET /v1/presets lists their parameters)",
                allowed=", ".join(PRESETS),
            )
        )
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
        imported = preset_spec(name, params)
    except InvalidInput as error:
        raise problems.invalid_input_problem(_params_at(error, path)) from None

    def rebuild(where: Path, number: int | float) -> Mapping[str, Any]:
        return preset_spec(name, {**params, where[0]: number}).spec

    numbers = _numbers(((key,), value) for key, value in params.items())
    remember_source(path, imported, numbers, rebuild)
    return imported


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
