"""Typed, read-only views of the service's JSON answers.

Each class is a frozen dataclass built by ``from_json``, which reads the
fields it knows and ignores the rest: the service may add response fields at
any time (adding one is not a breaking change under ``/v1``), and an older
client must keep working. ``raw`` keeps the whole JSON object, new fields
included. Every field of the ``/v1`` contract is required: one that is
missing raises :class:`~initlab_client.errors.InvalidResponse`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields
from typing import Any, TypeVar

from .errors import InvalidResponse

Model = TypeVar("Model")
Converter = Callable[[Any, str], Any]


def _convert(converter: Converter) -> Any:
    """A dataclass field whose JSON value is passed through ``converter``."""
    return field(metadata={"convert": converter})


def _raw() -> Any:
    """The field that keeps the object's whole JSON, left out of ==, hash and repr."""
    return field(default_factory=dict, compare=False, repr=False)


def _from_json(cls: type[Model], data: Any, where: str) -> Model:
    """Build ``cls`` from a JSON object, ignoring members it has no field for.

    ``where`` names the object in the answer (``parameters[3]``) so that a
    missing field is reported where it is missing.
    """
    if not isinstance(data, Mapping):
        raise InvalidResponse(
            f"{where}: expected a JSON object, got {type(data).__name__}"
        )

    values: dict[str, Any] = {}
    for model_field in fields(cls):  # type: ignore[arg-type]
        name = model_field.name
        if name == "raw":
            values[name] = dict(data)
            continue

        if name not in data:
            raise InvalidResponse(
                f"{where}: the answer has no {name!r} field, which this client"
                " needs; is the base URL an initlab /v1 service?"
            )

        converter = model_field.metadata.get("convert")
        value = data[name]
        values[name] = converter(value, f"{where}.{name}") if converter else value

    return cls(**values)


def _tuple_of(item: Converter) -> Converter:
    """A converter of a JSON list whose elements each go through ``item``."""

    def convert(value: Any, where: str) -> tuple[Any, ...]:
        if not isinstance(value, list):
            raise InvalidResponse(
                f"{where}: expected a list, got {type(value).__name__}"
            )

        return tuple(
            item(element, f"{where}[{index}]") for index, element in enumerate(value)
        )

    return convert


def _model(cls: type[Model]) -> Converter:
    return lambda value, where: _from_json(cls, value, where)


def _optional(convert: Converter) -> Converter:
    return lambda value, where: None if value is None else convert(value, where)


_strings = _tuple_of(lambda value, where: str(value))
_integers = _tuple_of(lambda value, where: int(value))


def _mapping(value: Any, where: str) -> dict[str, Any]:
    if not isinstance(value, Mapping):
        raise InvalidResponse(
            f"{where}: expected a JSON object, got {type(value).__name__}"
        )

    return dict(value)


def _frozen(value: Any, where: str) -> Any:
    """JSON lists become tuples (so the dataclass stays read-only); others pass."""
    if isinstance(value, list):
        return tuple(_frozen(item, where) for item in value)

    return value


@dataclass(frozen=True)
class Truncation:
    """Bounds (absolute values) of a truncated normal and the std its sampler takes."""

    lower: float
    upper: float
    sampler_std: float


@dataclass(frozen=True)
class ParameterRecommendation:
    """How to draw one parameter tensor, with the numbers behind it.

    ``std`` is the standard deviation of the values actually drawn; ``bound``
    is the half-width of a uniform distribution (else ``None``); ``shape`` is
    PyTorch's layout whatever ``layout`` says; ``pytorch`` is a call that
    draws it (``None`` when no single ``torch.nn.init`` call does).
    """

    name: str
    shape: tuple[int, ...] = _convert(_integers)
    layer: str
    kind: str
    tensor: str
    layout: str
    scheme: dict[str, Any] = _convert(_mapping)
    fan_in: int
    fan_out: int
    signal_fan_in: int | None
    signal_fan_out: int | None
    gain: float
    gain_source: str
    distribution: str
    mean: float
    std: float
    bound: float | None
    truncation: Truncation | None = _convert(_optional(_model(Truncation)))
    pytorch: str | None
    convention: str
    tied_to: str | None
    notes: tuple[str, ...] = _convert(_strings)
    raw: dict[str, Any] = _raw()

    @classmethod
    def from_json(cls, data: Any) -> ParameterRecommendation:
        return _from_json(cls, data, "parameter")


@dataclass(frozen=True)
class OverrideResult:
    """One entry of the request's ``overrides``: glob, resolved scheme, matches."""

    pattern: str
    scheme: dict[str, Any] = _convert(_mapping)
    matched: tuple[str, ...] = _convert(_strings)


@dataclass(frozen=True)
class Recommendations:
    """The answer of ``POST /v1/recommendations``.

    ``scheme`` is the resolved scheme with every option filled in, in the
    request's own shape, so it can be posted again unchanged.
    """

    scheme: dict[str, Any] = _convert(_mapping)
    overrides: tuple[OverrideResult, ...] = _convert(_tuple_of(_model(OverrideResult)))
    dims: dict[str, int] = _convert(_mapping)
    parameter_count: int
    residual_branch_count: int
    parameters: tuple[ParameterRecommendation, ...] = _convert(
        _tuple_of(_model(ParameterRecommendation))
    )
    notes: tuple[str, ...] = _convert(_strings)
    raw: dict[str, Any] = _raw()

    @classmethod
    def from_json(cls, data: Any) -> Recommendations:
        return _from_json(cls, data, "recommendations")

    def by_name(self, name: str) -> ParameterRecommendation:
        """The parameter called ``name``, a dotted path like ``h.0.attn.q.weight``."""
        for parameter in self.parameters:
            if parameter.name == name:
                return parameter

        example = self.parameters[0].name if self.parameters else None
        raise KeyError(
            f"no parameter named {name!r} among {len(self.parameters)};"
            f" names are dotted paths like {example!r}"
        )


@dataclass(frozen=True)
class ActivationInfo:
    """Gains and Gaussian moments of one activation φ, for z ~ N(0, 1).

    ``parameters`` holds the activation's parameters with defaults filled in;
    ``pytorch_gain`` is ``torch.nn.init.calculate_gain``'s value, ``None``
    where PyTorch has none.
    """

    name: str
    parameters: dict[str, Any] = _convert(_mapping)
    pytorch_gain: float | None
    second_moment_gain: float
    variance_gain: float
    gradient_gain: float
    mean: float
    second_moment: float
    derivative_second_moment: float
    method: str
    notes: tuple[str, ...] = _convert(_strings)
    raw: dict[str, Any] = _raw()

    @classmethod
    def from_json(cls, data: Any) -> ActivationInfo:
        return _from_json(cls, data, "activation")


@dataclass(frozen=True)
class SchemeOption:
    """One option a scheme accepts, its type, default and allowed values."""

    name: str
    type: str
    default: Any = _convert(_frozen)
    allowed: Any = _convert(_frozen)
    description: str


@dataclass(frozen=True)
class SchemeInfo:
    """One initialization scheme the service offers: options, formula and source."""

    name: str
    description: str
    applies_to: Any = _convert(_frozen)
    options: tuple[SchemeOption, ...] = _convert(_tuple_of(_model(SchemeOption)))
    formula: str
    source: str
    convention: str
    raw: dict[str, Any] = _raw()

    @classmethod
    def from_json(cls, data: Any) -> SchemeInfo:
        return _from_json(cls, data, "scheme")


def list_member(cls: type[Model], data: Any, member: str) -> list[Model]:
    """``data[member]``, a list of JSON objects, each built into ``cls``."""
    if not isinstance(data, Mapping) or member not in data:
        raise InvalidResponse(
            f"expected a JSON object with a {member!r} list; is the base URL an"
            " initlab /v1 service?"
        )

    return list(_tuple_of(_model(cls))(data[member], member))
