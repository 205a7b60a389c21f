"""Activation functions, their Gaussian moments and the gains derived from them.

An initializer's gain exists to undo what the activation does to the scale of
the signal. PyTorch's ``calculate_gain`` knows seven nonlinearities; this module
gives every supported activation a principled gain computed from the moments of
φ(z) for z ~ N(0, 1), following the mean-field analysis of Poole et al. 2016
("Exponential expressivity in deep neural networks through transient chaos",
arXiv 1606.05340) and Schoenholz et al. 2017 ("Deep Information Propagation",
arXiv 1611.01232).

Activations are described by :class:`initlab.core.types.Activation`; build one
with :func:`make_activation`, which checks the name and the parameters.
"""

from __future__ import annotations

import difflib
import math
from collections.abc import Mapping
from dataclasses import dataclass

from initlab.core.errors import FieldProblem, InvalidInput
from initlab.core.types import Activation

ACTIVATION_NAMES: tuple[str, ...] = (
    "identity",
    "relu",
    "leaky_relu",
    "elu",
    "selu",
    "gelu",
    "gelu_tanh",
    "silu",
    "mish",
    "tanh",
    "sigmoid",
    "softplus",
    "softsign",
)

ACTIVATION_PARAMETERS: dict[str, dict[str, float]] = {
    name: {} for name in ACTIVATION_NAMES
} | {
    "leaky_relu": {"negative_slope": 0.01},
    "elu": {"alpha": 1.0},
    "softplus": {"beta": 1.0},
}


@dataclass(frozen=True)
class ParameterRange:
    """The values an activation parameter may take: an interval of finite numbers."""

    low: float
    high: float
    low_inclusive: bool = True
    high_inclusive: bool = True

    def __contains__(self, value: float) -> bool:
        above = value >= self.low if self.low_inclusive else value > self.low
        below = value <= self.high if self.high_inclusive else value < self.high
        return above and below

    def describe(self) -> str:
        left = "[" if self.low_inclusive else "("
        right = "]" if self.high_inclusive else ")"
        return f"a number in {left}{self.low:g}, {self.high:g}{right}"


# The ranges are kept where the function still deserves its name and the
# quadrature stays accurate: a slope above 1 is no longer a leaky ReLU, and a
# softplus sharper than beta = 100 is a ReLU for every practical purpose.
ACTIVATION_PARAMETER_RANGES: dict[str, ParameterRange] = {
    "negative_slope": ParameterRange(0.0, 1.0),
    "alpha": ParameterRange(0.0, 100.0, low_inclusive=False),
    "beta": ParameterRange(0.0, 100.0, low_inclusive=False),
}


def make_activation(name: str, params: Mapping[str, float] | None = None) -> Activation:
    """Build a checked :class:`Activation` with every default parameter filled in.

    ``params`` may give any of the activation's own parameters
    (``ACTIVATION_PARAMETERS[name]``). Raises :class:`InvalidInput` with path
    ``("name",)`` for an unknown name and ``(param,)`` for a parameter that is
    unknown, not a number or out of range; every problem is reported at once.
    """
    if not isinstance(name, str) or name not in ACTIVATION_NAMES:
        raise InvalidInput.at(
            ("name",),
            _unknown_name_message(name),
            value=name,
            allowed=", ".join(ACTIVATION_NAMES),
        )

    defaults = ACTIVATION_PARAMETERS[name]
    given = dict(params or {})
    problems = [
        _parameter_problem(name, key, value) for key, value in sorted(given.items())
    ]
    problems = [problem for problem in problems if problem is not None]
    if problems:
        raise InvalidInput(problems)

    filled = {key: float(given.get(key, default)) for key, default in defaults.items()}
    return Activation(name, tuple(sorted(filled.items())))


def activation_from_json(value: object) -> Activation:
    """Read a layer's ``activation`` field: a name or ``{"name": ..., <param>: ...}``.

    Paths in the raised :class:`InvalidInput` are relative to the field: ``()``
    for a bad plain name, ``("name",)`` or ``(param,)`` for the object form.
    """
    if isinstance(value, str):
        try:
            return make_activation(value)
        except InvalidInput as error:
            raise InvalidInput(
                [
                    FieldProblem((), p.message, p.value, p.allowed)
                    for p in error.problems
                ]
            ) from None

    if not isinstance(value, Mapping):
        raise InvalidInput.at(
            (),
            f"activation must be a name or an object with a 'name', got {value!r}; "
            'write e.g. "gelu" or {"name": "leaky_relu", "negative_slope": 0.2}',
            value=value,
            allowed="a name or an object",
        )
    if "name" not in value:
        raise InvalidInput.at(
            ("name",),
            "activation object has no 'name'; add one of "
            + ", ".join(ACTIVATION_NAMES),
            allowed=", ".join(ACTIVATION_NAMES),
        )

    params = {key: item for key, item in value.items() if key != "name"}
    return make_activation(value["name"], params)


def _unknown_name_message(name: object) -> str:
    message = f"unknown activation {name!r}; allowed: {', '.join(ACTIVATION_NAMES)}"
    if isinstance(name, str):
        close = difflib.get_close_matches(name.lower(), ACTIVATION_NAMES, n=1)
        if name.lower() == "linear":
            close = ["identity"]
        if close:
            return f"{message}; did you mean {close[0]!r}?"

    return message


def _parameter_problem(name: str, key: object, value: object) -> FieldProblem | None:
    defaults = ACTIVATION_PARAMETERS[name]
    if key not in defaults:
        own = ", ".join(defaults) if defaults else "no parameters"
        return FieldProblem(
            (str(key),),
            f"{name} takes {own}, not {key!r}; remove {key!r}",
            value=value,
            allowed=own,
        )

    allowed = ACTIVATION_PARAMETER_RANGES[key]
    is_number = isinstance(value, int | float) and not isinstance(value, bool)
    if not is_number or not math.isfinite(value) or value not in allowed:
        return FieldProblem(
            (key,),
            f"{name} {key} must be {allowed.describe()}, got {value!r}; "
            f"omit it for the default {defaults[key]:g}",
            value=value,
            allowed=allowed.describe(),
        )

    return None
