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

import decimal
import functools
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Literal, NamedTuple

import numpy as np
from numpy.polynomial import chebyshev
from numpy.polynomial.hermite_e import hermegauss
from numpy.polynomial.legendre import leggauss
from numpy.typing import ArrayLike

from initlab.core.errors import FieldProblem, InvalidInput, closest, json_value
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
    """The values an activation parameter may take: an interval of finite numbers.

    ``reason`` says why the interval ends where it does, for the message that
    refuses a value outside it.
    """

    low: float
    high: float
    low_inclusive: bool = True
    high_inclusive: bool = True
    reason: str = ""

    def __contains__(self, value: float) -> bool:
        above = value >= self.low if self.low_inclusive else value > self.low
        below = value <= self.high if self.high_inclusive else value < self.high
        return above and below

    def describe(self) -> str:
        left = "[" if self.low_inclusive else "("
        right = "]" if self.high_inclusive else ")"
        return f"a number in {left}{self.low:g}, {self.high:g}{right}"


# The ranges are kept where the function still deserves its name and the
# quadrature stays accurate: a slope above 1 is no longer a leaky ReLU; a
# softplus sharper than beta = 100 is a ReLU for every practical purpose, and
# one flatter than beta = 0.01 is the line log(2)/β + z/2 whose offset of
# more than 69 swamps the variance the moments are for.
ACTIVATION_PARAMETER_RANGES: dict[str, ParameterRange] = {
    "negative_slope": ParameterRange(
        0.0, 1.0, reason="a slope above 1 is no longer a leaky ReLU"
    ),
    "alpha": ParameterRange(0.0, 100.0, low_inclusive=False),
    "beta": ParameterRange(
        0.01,
        100.0,
        reason="below 0.01 softplus is the line log(2)/β + x/2 shifted by more"
        " than 69 and above 100 a ReLU for every practical purpose, so use"
        " identity or relu there",
    ),
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
        _parameter_problem(name, key, value)
        for key, value in sorted(given.items(), key=lambda item: str(item[0]))
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
            "activation must be a name or an object with a 'name', got"
            f" {json_value(value)}; "
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
    message = (
        f"unknown activation {json_value(name)}; allowed: {', '.join(ACTIVATION_NAMES)}"
    )
    if isinstance(name, str):
        close = closest(name.lower(), ACTIVATION_NAMES)
        if name.lower() == "linear":
            close = "identity"
        if close:
            return f"{message}; did you mean {json_value(close)}?"

    return message


def _parameter_problem(name: str, key: object, value: object) -> FieldProblem | None:
    defaults = ACTIVATION_PARAMETERS[name]
    if key not in defaults:
        own = ", ".join(defaults) if defaults else "no parameters"
        return FieldProblem(
            (str(key),),
            f"{name} takes {own}, not {json_value(key)} (given"
            f" {json_value(value)}); remove {json_value(key)}",
            value=value,
            allowed=own,
        )

    allowed = ACTIVATION_PARAMETER_RANGES[key]
    # The range is compared first: an integer too large for a float compares
    # exactly, where math.isfinite would overflow converting it.
    is_number = isinstance(value, int | float) and not isinstance(value, bool)
    if not is_number or value not in allowed or not math.isfinite(value):
        reason = f": {allowed.reason}" if allowed.reason else ""
        return FieldProblem(
            (key,),
            f"{name} {key} must be {allowed.describe()}, got {json_value(value)}"
            f"{reason}; omit it for the default {defaults[key]:g}",
            value=value,
            allowed=allowed.describe(),
        )

    return None


# --- the complementary error function, vectorised ----------------------------

# Z = (L − t)/(L + t) maps t ∈ [0, ∞) onto (−1, 1]; with L = 3 the Chebyshev
# coefficients of (L + t)·erfcx(t) in Z fall below 2e-17 by degree 24 and below
# 1e-8 by degree 12: enough for float64 and for float32.
_ERFC_MAP_SCALE = 3.0
_ERFC_DEGREES = {np.dtype(np.float64): 24, np.dtype(np.float32): 12}
# Past t = 40, e^{−t²} is 0 in both dtypes; capping t keeps t = ∞ finite.
_ERFC_LARGEST_ARGUMENT = 40.0


def _exp_of_square(t: float) -> float:
    """e^{t²} for a scalar, as e^{s²}·e^{(t − s)(t + s)} with s = t rounded to 2^-12.

    s² is exact in float64 and the small second exponent carries only its own
    rounding, so the result keeps exp's accuracy; e^{t²} computed directly
    would inherit the rounding of t², a relative t²·2^-53.
    """
    s = round(t * 4096.0) / 4096.0
    return math.exp(s * s) * math.exp((t - s) * (t + s))


def _scaled_erfc(t: float) -> float:
    """erfcx(t) = e^{t²}·erfc(t) for a scalar t ≥ 0, from math.erfc.

    Past t = 26, where erfc nears float64's underflow, the asymptotic series
    erfcx(t) = (1/(t√π))·Σₖ (−1)ᵏ·(2k − 1)!!/(2t²)ᵏ (Abramowitz & Stegun 1964,
    7.1.23), summed until its terms drop below 1e-20.
    """
    if t <= 26.0:
        return math.erfc(t) * _exp_of_square(t)

    total, term, k = 0.0, 1.0, 0
    while abs(term) > 1e-20:
        total += term
        k += 1
        term *= -(2 * k - 1) / (2.0 * t * t)
    return total / (t * math.sqrt(math.pi))


def _mapped_scaled_erfc(z: float) -> float:
    """(L + t)·erfcx(t) at t = L(1 − Z)/(1 + Z); its limit 1/√π at Z = −1."""
    if z <= -1.0:
        return 1.0 / math.sqrt(math.pi)

    t = _ERFC_MAP_SCALE * (1.0 - z) / (1.0 + z)
    return (_ERFC_MAP_SCALE + t) * _scaled_erfc(t)


def _chebyshev_interpolant(f: Callable[[float], float], degree: int) -> np.ndarray:
    """Power-series coefficients of f's Chebyshev interpolant on [−1, 1].

    cₖ = (2/n)·Σⱼ f(cos θⱼ)·cos(kθⱼ) at the n = degree + 1 Chebyshev points
    θⱼ = π(j + 1/2)/n, with c₀ halved (Trefethen 2013, "Approximation Theory
    and Approximation Practice", chapters 3–4). Each cos(kθⱼ) is taken at its
    angle reduced exactly, as the integer k(2j + 1) modulo 4n, and each sum is
    exact (math.fsum): a plain float64 transform loses several ulps of f per
    coefficient, which the interpolant then shows. The result is converted to
    powers of Z (chebyshev.cheb2poly) for Horner's rule; the coefficients here
    decay fast enough that the conversion loses nothing.
    """
    n = degree + 1

    def cosine(multiple: int) -> float:
        return math.cos(math.pi * (multiple % (4 * n)) / (2 * n))

    values = [f(cosine(2 * j + 1)) for j in range(n)]
    coefficients = [
        2.0 / n * math.fsum(v * cosine(k * (2 * j + 1)) for j, v in enumerate(values))
        for k in range(n)
    ]
    coefficients[0] /= 2
    return chebyshev.cheb2poly(coefficients)


@functools.cache
def _erfc_polynomial(dtype: np.dtype) -> np.ndarray:
    degree = _ERFC_DEGREES[dtype]
    return _chebyshev_interpolant(_mapped_scaled_erfc, degree).astype(dtype)


def _exp_of_minus_square(t: np.ndarray) -> np.ndarray:
    """e^{−t²} as e^{−s²}·e^{−(t − s)(t + s)}, s = t rounded so that s² is exact.

    s keeps 12 fractional bits in float64 and 6 in float32 (where t ≤ 40 needs
    6 more bits), so s² fits the mantissa.
    """
    steps = 4096.0 if t.dtype == np.float64 else 64.0
    s = np.round(t * steps) / steps
    return np.exp(-s * s) * np.exp(-(t - s) * (t + s))


def _erfc(y: np.ndarray) -> np.ndarray:
    """erfc(y) = (2/√π)∫_y^∞ e^{−s²} ds elementwise, in y's dtype (float32/64).

    With t = |y| and Z = (L − t)/(L + t), L = 3: erfc(t) = P(Z)·e^{−t²}/(L + t),
    P the Chebyshev interpolant of (L + t)·erfcx(t) in Z (degree 24 in
    float64, 12 in float32, built at first use from math.erfc); and
    erfc(−t) = 2 − erfc(t). The rational change of variable is the one
    Weideman 1994 ("Computation of the Complex Error Function", SIAM J. Numer.
    Anal. 31, section 2) uses for the Faddeeva function, taken on the real
    line. Relative error: below 2e-15 in float64 (against 40-digit values, down
    to erfc's underflow near y = 26.5), a few float32 ulps in float32; one
    formula for every y, so no branches over the array.
    """
    polynomial = _erfc_polynomial(y.dtype)
    t = np.minimum(np.abs(y), _ERFC_LARGEST_ARGUMENT)
    z = (_ERFC_MAP_SCALE - t) / (_ERFC_MAP_SCALE + t)
    total = np.full_like(z, polynomial[-1])
    for coefficient in polynomial[-2::-1]:
        total *= z
        total += coefficient

    upper_tail = total / (_ERFC_MAP_SCALE + t) * _exp_of_minus_square(t)
    return np.where(y < 0, 2.0 - upper_tail, upper_tail)


# --- the functions and their derivatives -----------------------------------
#
# Every formula is written once. ``phi`` and ``phi_prime`` dispatch on the name;
# the derivative at a kink is the one PyTorch's autograd uses (ReLU: 0,
# leaky ReLU: the slope, ELU/SELU: the left-hand value).

SELU_ALPHA = 1.6732632423543772848170429916717
SELU_SCALE = 1.0507009873554804934193349852946
GELU_TANH_CUBIC = 0.044715
_SQRT_2_OVER_PI = math.sqrt(2.0 / math.pi)
_INV_SQRT_2PI = 1.0 / math.sqrt(2.0 * math.pi)


def _identity(x: np.ndarray) -> np.ndarray:
    """φ(x) = x (PyTorch 2.13 calculate_gain calls it 'linear')."""
    return x.copy()


def _identity_derivative(x: np.ndarray) -> np.ndarray:
    """φ'(x) = 1."""
    return np.ones_like(x)


def _relu(x: np.ndarray) -> np.ndarray:
    """φ(x) = max(x, 0) (Nair & Hinton 2010; PyTorch 2.13 torch.nn.ReLU)."""
    return np.maximum(x, 0.0)


def _relu_derivative(x: np.ndarray) -> np.ndarray:
    """φ'(x) = 1 for x > 0, else 0 (PyTorch 2.13 autograd takes 0 at x = 0)."""
    return (x > 0).astype(x.dtype)


def _leaky_relu(x: np.ndarray, negative_slope: float) -> np.ndarray:
    """φ(x) = x for x > 0, else s·x (Maas, Hannun & Ng 2013; torch.nn.LeakyReLU)."""
    return np.where(x > 0, x, negative_slope * x)


def _leaky_relu_derivative(x: np.ndarray, negative_slope: float) -> np.ndarray:
    """φ'(x) = 1 for x > 0, else s (PyTorch 2.13 takes s at x = 0)."""
    return np.where(x > 0, x.dtype.type(1.0), x.dtype.type(negative_slope))


def _elu(x: np.ndarray, alpha: float) -> np.ndarray:
    """φ(x) = x for x > 0, else α(eˣ − 1).

    Clevert, Unterthiner & Hochreiter 2016, "Fast and Accurate Deep Network
    Learning by Exponential Linear Units" (arXiv 1511.07289); PyTorch 2.13
    torch.nn.ELU.
    """
    return np.where(x > 0, x, alpha * np.expm1(np.minimum(x, 0.0)))


def _elu_derivative(x: np.ndarray, alpha: float) -> np.ndarray:
    """φ'(x) = 1 for x > 0, else α·eˣ (PyTorch 2.13 takes α at x = 0)."""
    return np.where(x > 0, 1.0, alpha * np.exp(np.minimum(x, 0.0)))


def _selu(x: np.ndarray) -> np.ndarray:
    """φ(x) = λ·ELU_α(x) with α ≈ 1.6733, λ ≈ 1.0507.

    Klambauer, Unterthiner, Mayr & Hochreiter 2017, "Self-Normalizing Neural
    Networks" (arXiv 1706.02515), the constants that make (mean 0, variance 1)
    a fixed point; digits as in PyTorch 2.13 torch.nn.SELU.
    """
    return SELU_SCALE * _elu(x, SELU_ALPHA)


def _selu_derivative(x: np.ndarray) -> np.ndarray:
    """φ'(x) = λ for x > 0, else λα·eˣ."""
    return SELU_SCALE * _elu_derivative(x, SELU_ALPHA)


def _standard_normal_cdf(x: np.ndarray) -> np.ndarray:
    """Φ(x) = erfc(−x/√2)/2, written with erfc so the left tail keeps its digits."""
    return 0.5 * _erfc(-x / math.sqrt(2.0))


def _gelu(x: np.ndarray) -> np.ndarray:
    """φ(x) = x·Φ(x), the exact (erf) form.

    Hendrycks & Gimpel 2016, "Gaussian Error Linear Units (GELUs)" (arXiv
    1606.08415), section 2; PyTorch 2.13 torch.nn.GELU(approximate='none').
    """
    return x * _standard_normal_cdf(x)


def _gelu_derivative(x: np.ndarray) -> np.ndarray:
    """φ'(x) = Φ(x) + x·e^{−x²/2}/√(2π)."""
    return _standard_normal_cdf(x) + x * np.exp(-0.5 * x * x) * _INV_SQRT_2PI


def _gelu_tanh_argument(x: np.ndarray) -> np.ndarray:
    """u(x) = √(2/π)·(x + 0.044715·x³), the argument of the tanh approximation."""
    return _SQRT_2_OVER_PI * (x + GELU_TANH_CUBIC * x**3)


def _gelu_tanh(x: np.ndarray) -> np.ndarray:
    """φ(x) = x·(1 + tanh u)/2 = x·σ(2u), u = √(2/π)(x + 0.044715x³).

    Hendrycks & Gimpel 2016 (arXiv 1606.08415), section 2, the tanh
    approximation; PyTorch 2.13 torch.nn.GELU(approximate='tanh'). The σ(2u)
    form is the same function without the cancellation of 1 + tanh u for x < 0.
    """
    return x * _sigmoid(2.0 * _gelu_tanh_argument(x))


def _gelu_tanh_derivative(x: np.ndarray) -> np.ndarray:
    """φ'(x) = σ(2u) + x·σ(2u)σ(−2u)·2√(2/π)(1 + 3·0.044715x²)."""
    gate = _sigmoid(2.0 * _gelu_tanh_argument(x))
    slope = 2.0 * _SQRT_2_OVER_PI * (1.0 + 3.0 * GELU_TANH_CUBIC * x * x)
    return gate + x * _sigmoid_derivative(2.0 * _gelu_tanh_argument(x)) * slope


def _silu(x: np.ndarray) -> np.ndarray:
    """φ(x) = x·σ(x).

    Elfwing, Uchibe & Doya 2018, "Sigmoid-Weighted Linear Units for Neural
    Network Function Approximation in Reinforcement Learning" (arXiv
    1702.03118); PyTorch 2.13 torch.nn.SiLU.
    """
    return x * _sigmoid(x)


def _silu_derivative(x: np.ndarray) -> np.ndarray:
    """φ'(x) = σ(x) + x·σ(x)σ(−x)."""
    return _sigmoid(x) + x * _sigmoid_derivative(x)


def _mish(x: np.ndarray) -> np.ndarray:
    """φ(x) = x·tanh(softplus(x)).

    Misra 2019, "Mish: A Self Regularized Non-Monotonic Activation Function"
    (arXiv 1908.08681); PyTorch 2.13 torch.nn.Mish.
    """
    return x * np.tanh(_softplus(x, 1.0))


def _mish_derivative(x: np.ndarray) -> np.ndarray:
    """φ'(x) = tanh(sp(x)) + x·sech²(sp(x))·σ(x), sp = softplus."""
    softplus = _softplus(x, 1.0)
    return np.tanh(softplus) + x * _tanh_derivative(softplus) * _sigmoid(x)


def _tanh(x: np.ndarray) -> np.ndarray:
    """φ(x) = tanh x (PyTorch 2.13 torch.tanh)."""
    return np.tanh(x)


def _tanh_derivative(x: np.ndarray) -> np.ndarray:
    """φ'(x) = sech²x = 4e^{−2|x|}/(1 + e^{−2|x|})², accurate in the tails."""
    decay = np.exp(-2.0 * np.abs(x))
    return 4.0 * decay / (1.0 + decay) ** 2


def _sigmoid(x: np.ndarray) -> np.ndarray:
    """σ(x) = 1/(1 + e^{−x}), as e^{x}/(1 + e^{x}) for x < 0 (torch.sigmoid)."""
    decay = np.exp(-np.abs(x))
    return np.where(x >= 0, 1.0 / (1.0 + decay), decay / (1.0 + decay))


def _sigmoid_derivative(x: np.ndarray) -> np.ndarray:
    """σ'(x) = σ(x)·σ(−x)."""
    return _sigmoid(x) * _sigmoid(-x)


def _softplus(x: np.ndarray, beta: float) -> np.ndarray:
    """φ(x) = log(1 + e^{βx})/β.

    Dugas et al. 2001, "Incorporating Second-Order Functional Knowledge for
    Better Option Pricing"; PyTorch 2.13 torch.nn.Softplus(beta), without its
    switch to x above βx > 20 (a change below e^{−20}/β).
    """
    return np.logaddexp(0.0, beta * x) / beta


def _softplus_derivative(x: np.ndarray, beta: float) -> np.ndarray:
    """φ'(x) = σ(βx)."""
    return _sigmoid(beta * x)


def _softsign(x: np.ndarray) -> np.ndarray:
    """φ(x) = x/(1 + |x|) (the softsign of Glorot & Bengio 2010; torch.nn.Softsign)."""
    return x / (1.0 + np.abs(x))


def _softsign_derivative(x: np.ndarray) -> np.ndarray:
    """φ'(x) = 1/(1 + |x|)²."""
    return 1.0 / (1.0 + np.abs(x)) ** 2


_Formula = Callable[..., np.ndarray]
_FORMULAS: dict[str, tuple[_Formula, _Formula]] = {
    "identity": (_identity, _identity_derivative),
    "relu": (_relu, _relu_derivative),
    "leaky_relu": (_leaky_relu, _leaky_relu_derivative),
    "elu": (_elu, _elu_derivative),
    "selu": (_selu, _selu_derivative),
    "gelu": (_gelu, _gelu_derivative),
    "gelu_tanh": (_gelu_tanh, _gelu_tanh_derivative),
    "silu": (_silu, _silu_derivative),
    "mish": (_mish, _mish_derivative),
    "tanh": (_tanh, _tanh_derivative),
    "sigmoid": (_sigmoid, _sigmoid_derivative),
    "softplus": (_softplus, _softplus_derivative),
    "softsign": (_softsign, _softsign_derivative),
}

# Points where φ or φ' is not smooth; quadrature splits the line there.
_KINKS: dict[str, tuple[float, ...]] = {
    "relu": (0.0,),
    "leaky_relu": (0.0,),
    "elu": (0.0,),
    "selu": (0.0,),
    "softsign": (0.0,),
}


def phi(act: Activation, x: ArrayLike) -> np.ndarray:
    """φ(x) elementwise, as an array of x's shape.

    A float32 array is computed in float32 and returned as float32 (the Monte
    Carlo engine's arrays); anything else as float64.
    """
    formula, _ = _formulas(act)
    return formula(_real_array(x), **_parameters(act))


def phi_prime(act: Activation, x: ArrayLike) -> np.ndarray:
    """φ'(x) elementwise, as an array of x's shape (float32 stays float32)."""
    _, derivative = _formulas(act)
    return derivative(_real_array(x), **_parameters(act))


def _real_array(x: ArrayLike) -> np.ndarray:
    array = np.asarray(x)
    if array.dtype == np.float32:
        return array

    return np.asarray(x, dtype=float)


def is_positively_homogeneous(act: Activation) -> bool:
    """Whether φ(c·x) = c·φ(x) for every c > 0 (identity and the ReLU family).

    For these E[φ(√q z)²] = q·E[φ(z)²] and E[φ'²] does not depend on q, so one
    gain keeps both the forward and the backward second moment (He et al. 2015,
    "Delving Deep into Rectifiers", arXiv 1502.01852, section 2.2).
    """
    return act.name in ("identity", "relu", "leaky_relu")


def _feature_scale(act: Activation) -> float:
    """The width over which φ bends: 1, except 1/β for a softplus with sharpness β."""
    if act.name == "softplus":
        return 1.0 / _parameters(act)["beta"]

    return 1.0


def _formulas(act: Activation) -> tuple[_Formula, _Formula]:
    if act.name not in _FORMULAS:
        raise InvalidInput.at(
            ("name",),
            _unknown_name_message(act.name),
            value=act.name,
            allowed=", ".join(ACTIVATION_NAMES),
        )

    return _FORMULAS[act.name]


def _parameters(act: Activation) -> dict[str, float]:
    defaults = ACTIVATION_PARAMETERS[act.name]
    return {key: float(act.param(key, default)) for key, default in defaults.items()}


# --- Gaussian expectations --------------------------------------------------

EXPECTATION_TOLERANCE = 1e-14
_HERMITE_NODE_COUNTS = (16, 32, 64, 128, 256)
# Gauss–Hermite is trusted only when f's features are at least half a unit
# wide in z: narrower ones fall between the nodes, where every rule can see the
# same constant and "converge" on it (tanh(100z) is 1 at all 32 nodes).
_HERMITE_MAX_SHARPNESS = 4.0
_LEGENDRE_NODE_COUNT = 20
_TAIL = 40.0
_MAX_BISECTIONS = 60
# The most integrand values one adaptive integration may ask for. Every
# activation here at q in [1e-2, 1e12] converges within 20,000; an integrand
# whose rounding noise stays above the tolerance (a softplus with β = 0.001,
# a sigmoid's variance at q = 1e-12) would otherwise double its panels at each
# bisection, into gigabytes.
MAX_QUADRATURE_EVALUATIONS = 2**20
_PANEL_EDGES = (1.0, 2.0, 4.0, 8.0, 16.0, _TAIL)
# Geometric edges out to 64 feature widths: past where tanh, σ and softplus
# are within e^{−40} of their asymptotes, so no decaying tail hides between the
# nodes of a wide panel.
_FEATURE_EDGES = tuple(2.0**k for k in range(-3, 7))
_MAX_Q = 1e12

QuadratureMethod = Literal["closed_form", "gauss_hermite", "adaptive_gauss_legendre"]


def gaussian_expectation(
    f: Callable[[np.ndarray], ArrayLike],
    q: float = 1.0,
    *,
    breakpoints: Sequence[float] = (),
    feature_scale: float = 1.0,
) -> float:
    """E f(√q·z) for z ~ N(0, 1), to a relative accuracy of about 1e-14.

    E f(√q z) = (2π)^{−1/2} ∫ f(√q z) e^{−z²/2} dz, by Gauss–Hermite quadrature
    for the weight e^{−z²/2} (numpy.polynomial.hermite_e.hermegauss, whose
    weights sum to √(2π)) with an even number of nodes, so that none sits on a
    kink at 0, doubled from 16 to 256 until two successive rules agree to 1e-14
    of E|f|. Otherwise adaptive Gauss–Legendre on |z| ≤ 40 (the mass beyond is
    e^{−800}), bisecting panels until halves and whole agree; see
    signal-propagation.md "Evaluating expectations".

    ``breakpoints`` (in units of f's argument) mark where f or a derivative
    jumps: the adaptive rule is used, split there. ``feature_scale`` is the
    width in f's argument over which f changes shape (1 for the activations
    here, 1/β for a softplus with β): Gauss–Hermite is used only while
    q/feature_scale² ≤ 4, and the adaptive rule puts panel edges at multiples
    of it. ``f`` takes a float64 array and returns values of its shape; ``q``
    lies in (0, 1e12].
    """
    value, _ = _expectation(f, q, tuple(breakpoints), feature_scale)
    return value


def _expectation(
    f: Callable[[np.ndarray], ArrayLike],
    q: float,
    breakpoints: tuple[float, ...],
    feature_scale: float = 1.0,
) -> tuple[float, QuadratureMethod]:
    _check_q(q)
    root_q = math.sqrt(q)

    def integrand(z: np.ndarray) -> np.ndarray:
        return np.broadcast_to(np.asarray(f(root_q * z), dtype=float), z.shape)

    if not breakpoints and q <= _HERMITE_MAX_SHARPNESS * feature_scale**2:
        value = _gauss_hermite(integrand)
        if value is not None:
            return value, "gauss_hermite"

    feature = feature_scale / root_q
    cuts = {
        0.0,
        *(b / root_q for b in breakpoints),
        *(sign * edge for edge in _PANEL_EDGES for sign in (-1, 1)),
        *(sign * edge * feature for edge in _FEATURE_EDGES for sign in (-1, 1)),
    }
    edges = np.array(sorted(cut for cut in cuts if abs(cut) <= _TAIL))
    return _adaptive_gauss_legendre(integrand, edges), "adaptive_gauss_legendre"


class QuadratureDidNotConverge(InvalidInput):
    """E f(√q·z) needed more integrand values than the adaptive rule may take.

    Raised instead of refining further once :data:`MAX_QUADRATURE_EVALUATIONS`
    would be passed; the path is ``()``, the expectation as a whole.
    """


def _check_q(q: float) -> None:
    is_number = isinstance(q, int | float) and not isinstance(q, bool)
    if not is_number or not 0 < q <= _MAX_Q or not math.isfinite(q):
        raise InvalidInput.at(
            ("q",),
            f"q, the variance of the pre-activation, must be a number in "
            f"(0, {_MAX_Q:g}], got {json_value(q)}",
            value=q,
            allowed=f"a number in (0, {_MAX_Q:g}]",
        )


@functools.cache
def _hermite_rule(count: int) -> tuple[np.ndarray, np.ndarray]:
    """Nodes and weights for E f(z), z ~ N(0, 1): hermegauss with weights / √(2π)."""
    nodes, weights = hermegauss(count)
    return nodes, weights / math.sqrt(2.0 * math.pi)


def _gauss_hermite(integrand: Callable[[np.ndarray], np.ndarray]) -> float | None:
    """Σ wᵢ f(xᵢ) with n = 16, 32, …, 256 nodes until n and 2n agree; None if not."""
    previous = None
    for count in _HERMITE_NODE_COUNTS:
        nodes, weights = _hermite_rule(count)
        values = integrand(nodes)
        estimate = math.fsum(weights * values)
        magnitude = math.fsum(weights * np.abs(values))
        if magnitude == 0.0:
            return 0.0
        if previous is not None and abs(estimate - previous) <= (
            EXPECTATION_TOLERANCE * magnitude
        ):
            return estimate
        previous = estimate

    return None


@functools.cache
def _legendre_rule() -> tuple[np.ndarray, np.ndarray]:
    return leggauss(_LEGENDRE_NODE_COUNT)


def _legendre_panels(
    integrand: Callable[[np.ndarray], np.ndarray], lower: np.ndarray, upper: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """∫ f·pdf and ∫ |f|·pdf over each panel [lowerᵢ, upperᵢ] by Gauss–Legendre."""
    nodes, weights = _legendre_rule()
    half = 0.5 * (upper - lower)
    z = (0.5 * (upper + lower))[:, None] + half[:, None] * nodes
    values = integrand(z) * np.exp(-0.5 * z * z) * _INV_SQRT_2PI
    return half * (values @ weights), half * (np.abs(values) @ weights)


def _adaptive_gauss_legendre(
    integrand: Callable[[np.ndarray], np.ndarray], edges: np.ndarray
) -> float:
    """∫ f(z)·pdf(z) dz over [edges[0], edges[-1]], bisecting panels until converged.

    A panel is accepted when its two halves agree with the whole to its share
    (by width) of 1e-14·∫|f|·pdf, or to a few ulps of its own mass; a panel
    still refining after 60 bisections is accepted as it stands. Raises
    :class:`QuadratureDidNotConverge` before the integrand would be evaluated
    at more than :data:`MAX_QUADRATURE_EVALUATIONS` points in all.
    """
    lower, upper = edges[:-1], edges[1:]
    estimate, mass = _legendre_panels(integrand, lower, upper)
    evaluations = lower.size * _LEGENDRE_NODE_COUNT
    scale = EXPECTATION_TOLERANCE * math.fsum(mass) / (edges[-1] - edges[0])
    accepted = []
    for _ in range(_MAX_BISECTIONS):
        evaluations += 2 * lower.size * _LEGENDRE_NODE_COUNT
        if evaluations > MAX_QUADRATURE_EVALUATIONS:
            raise QuadratureDidNotConverge.at(
                (),
                "the adaptive Gauss–Legendre rule did not converge within"
                f" {MAX_QUADRATURE_EVALUATIONS} integrand values ({lower.size}"
                " panels still disagreed with their halves): the integrand is"
                f" noisier than {EXPECTATION_TOLERANCE:g} of its size",
            )
        middle = 0.5 * (lower + upper)
        left, left_mass = _legendre_panels(integrand, lower, middle)
        right, right_mass = _legendre_panels(integrand, middle, upper)
        refined = left + right
        allowed = scale * (upper - lower) + 16 * np.finfo(float).eps * (
            left_mass + right_mass
        )
        done = np.abs(refined - estimate) <= allowed
        accepted.append(refined[done])

        pending = ~done
        lower, upper = (
            np.concatenate([lower[pending], middle[pending]]),
            np.concatenate([middle[pending], upper[pending]]),
        )
        estimate = np.concatenate([left[pending], right[pending]])
        if lower.size == 0:
            break
    else:
        accepted.append(estimate)

    return math.fsum(np.concatenate(accepted))


# --- moments ------------------------------------------------------------------


@dataclass(frozen=True)
class GaussianMoments:
    """Moments of φ(√q·z) for z ~ N(0, 1).

    ``method`` says how they were obtained: ``closed_form`` (identity and the
    ReLU family, exact to rounding), ``gauss_hermite``, or
    ``adaptive_gauss_legendre`` when at least one moment needed the adaptive
    rule (activations with a kink, or integrands Gauss–Hermite resolves slowly).
    """

    mean: float
    second_moment: float
    variance: float
    derivative_second_moment: float
    method: QuadratureMethod


class _ExactMoments(NamedTuple):
    """Closed-form moments held at 50 significant digits, rounded once on output."""

    mean: Decimal
    second_moment: Decimal
    variance: Decimal
    derivative_second_moment: Decimal

    def rounded(self) -> GaussianMoments:
        return GaussianMoments(
            float(self.mean),
            float(self.second_moment),
            float(self.variance),
            float(self.derivative_second_moment),
            "closed_form",
        )


# Closed forms are evaluated in decimal arithmetic at 50 digits and rounded to
# the nearest float once, so they are exact to the last bit.
_EXACT = decimal.Context(prec=50)
_PI = Decimal("3.14159265358979323846264338327950288419716939937510582097494")


def _identity_moments(q: float) -> _ExactMoments:
    """E[√q·z] = 0, E[q·z²] = q, Var = q, E[φ'²] = 1."""
    return _ExactMoments(Decimal(0), Decimal(q), Decimal(q), Decimal(1))


def _leaky_relu_moments(q: float, negative_slope: float) -> _ExactMoments:
    """Moments of the leaky ReLU with slope s (s = 0 is the ReLU), u = √q·z.

    E[φ(u)] = (1 − s)·√(q/(2π)); E[φ(u)²] = q(1 + s²)/2; E[φ'(u)²] = (1 + s²)/2;
    Var = q(1 + s²)/2 − (1 − s)²·q/(2π). Half of the Gaussian's mass lies on
    each side of 0 and E[u; u > 0] = √(q/(2π)) (He et al. 2015, "Delving Deep
    into Rectifiers", arXiv 1502.01852, section 2.2; Cho & Saul 2009,
    arc-cosine kernels of degree 0 and 1).
    """
    with decimal.localcontext(_EXACT):
        q_exact, s = Decimal(q), Decimal(negative_slope)
        mean = (1 - s) * (q_exact / (2 * _PI)).sqrt()
        second_moment = q_exact * (1 + s * s) / 2
        variance = second_moment - mean * mean
        return _ExactMoments(mean, second_moment, variance, (1 + s * s) / 2)


def _closed_form_moments(act: Activation, q: float) -> _ExactMoments | None:
    if act.name == "identity":
        return _identity_moments(q)
    if act.name == "relu":
        return _leaky_relu_moments(q, 0.0)
    if act.name == "leaky_relu":
        return _leaky_relu_moments(q, _parameters(act)["negative_slope"])

    return None


@functools.lru_cache(maxsize=1024)
def gaussian_moments(act: Activation, q: float = 1.0) -> GaussianMoments:
    """E[φ], E[φ²], Var[φ] and E[φ'²] at √q·z, z ~ N(0, 1).

    Closed forms for identity, ReLU and leaky ReLU; every other activation by
    :func:`gaussian_expectation`, split at its kink where it has one. The
    variance is integrated as E[(φ − E[φ])²], not subtracted, so it keeps its
    digits when the mean dominates (sigmoid). Results are cached.
    """
    _check_q(q)
    exact = _closed_form_moments(act, q)
    if exact is not None:
        return exact.rounded()

    kinks = _KINKS.get(act.name, ())
    scale = _feature_scale(act)
    try:
        mean, mean_method = _expectation(lambda x: phi(act, x), q, kinks, scale)
        second_moment, second_method = _expectation(
            lambda x: phi(act, x) ** 2, q, kinks, scale
        )
        variance, variance_method = _expectation(
            lambda x: (phi(act, x) - mean) ** 2, q, kinks, scale
        )
        derivative_second_moment, derivative_method = _expectation(
            lambda x: phi_prime(act, x) ** 2, q, kinks, scale
        )
    except QuadratureDidNotConverge as error:
        parameters = ", ".join(
            f"{key} = {value:g}" for key, value in _parameters(act).items()
        )
        described = f"{act.name} ({parameters})" if parameters else act.name
        raise QuadratureDidNotConverge.at(
            (),
            f"the Gaussian moments of {described} at q = {q:g} cannot"
            f" be computed to {EXPECTATION_TOLERANCE:g}: {error.problems[0].message};"
            " use parameters nearer the defaults or a q nearer 1",
        ) from None
    methods = {mean_method, second_method, variance_method, derivative_method}
    method = (
        "gauss_hermite" if methods == {"gauss_hermite"} else "adaptive_gauss_legendre"
    )
    return GaussianMoments(
        mean, second_moment, variance, derivative_second_moment, method
    )


# --- gains --------------------------------------------------------------------


def pytorch_gain(act: Activation) -> float | None:
    """PyTorch 2.13 torch.nn.init.calculate_gain(act); None where PyTorch raises.

    identity ('linear') and sigmoid: 1; tanh: 5/3; relu: √2; leaky_relu:
    √(2/(1 + s²)); selu: 3/4 (chosen empirically by PyTorch, not derived). The
    arithmetic is PyTorch's own Python float expression, so the result is equal
    bit for bit. PyTorch raises ValueError for every other activation here.
    """
    if act.name in ("identity", "sigmoid"):
        return 1.0
    if act.name == "tanh":
        return 5.0 / 3
    if act.name == "relu":
        return math.sqrt(2.0)
    if act.name == "leaky_relu":
        negative_slope = _parameters(act)["negative_slope"]
        return math.sqrt(2.0 / (1 + negative_slope**2))
    if act.name == "selu":
        return 3.0 / 4

    return None


@functools.lru_cache(maxsize=1024)
def second_moment_gain(act: Activation) -> float:
    """g₂ = 1/√E[φ(z)²], z ~ N(0, 1).

    With Var(W) = g₂²/fan_in a layer maps a unit second moment to a unit second
    moment: the length map q' = σ_w²·E[φ(√q z)²] has q = 1 as fixed point
    (Poole et al. 2016, arXiv 1606.05340, section 2). For ReLU it is He's √2.
    """
    return _reciprocal_sqrt(act, "second_moment")


@functools.lru_cache(maxsize=1024)
def variance_gain(act: Activation) -> float:
    """g_v = 1/√Var[φ(z)], z ~ N(0, 1).

    The constant γ of scaled activations in Brock, De & Smith 2021,
    "Characterizing signal propagation to close the performance gap in
    unnormalized ResNets" (arXiv 2101.08692), section 4: right when a
    normalisation downstream removes the mean.
    """
    return _reciprocal_sqrt(act, "variance")


@functools.lru_cache(maxsize=1024)
def gradient_gain(act: Activation) -> float:
    """g_b = 1/√E[φ'(z)²], z ~ N(0, 1).

    Sets χ₁ = σ_w²·E[φ'(√q z)²] to 1 at q = 1, so gradients keep their second
    moment through the backward pass (Schoenholz et al. 2017, "Deep Information
    Propagation", arXiv 1611.01232, section 3).
    """
    return _reciprocal_sqrt(act, "derivative_second_moment")


def _reciprocal_sqrt(act: Activation, moment: str) -> float:
    """1/√m for a moment at q = 1, rounded once (from the exact value when closed)."""
    exact = _closed_form_moments(act, 1.0)
    if exact is not None:
        value = getattr(exact, moment)
    else:
        value = Decimal(getattr(gaussian_moments(act), moment))
    with decimal.localcontext(_EXACT):
        return float((1 / value).sqrt())


# --- the catalogue served by GET /v1/activations -----------------------------


@dataclass(frozen=True)
class ActivationSummary:
    """Everything the service says about one activation at q = 1."""

    name: str
    parameters: dict[str, float]
    pytorch_gain: float | None
    second_moment_gain: float
    variance_gain: float
    gradient_gain: float
    mean: float
    second_moment: float
    derivative_second_moment: float
    method: QuadratureMethod
    notes: tuple[str, ...] = field(default=())

    def as_dict(self) -> dict:
        """A fresh JSON-ready dict (the summary itself is cached and shared)."""
        return {
            "name": self.name,
            "parameters": dict(self.parameters),
            "pytorch_gain": self.pytorch_gain,
            "second_moment_gain": self.second_moment_gain,
            "variance_gain": self.variance_gain,
            "gradient_gain": self.gradient_gain,
            "mean": self.mean,
            "second_moment": self.second_moment,
            "derivative_second_moment": self.derivative_second_moment,
            "method": self.method,
            "notes": list(self.notes),
        }


@functools.lru_cache(maxsize=256)
def describe_activation(act: Activation) -> ActivationSummary:
    """Gains and moments of ``act`` at q = 1, with notes on how to use them. Cached."""
    moments = gaussian_moments(act)
    return ActivationSummary(
        name=act.name,
        parameters=_parameters(act),
        pytorch_gain=pytorch_gain(act),
        second_moment_gain=second_moment_gain(act),
        variance_gain=variance_gain(act),
        gradient_gain=gradient_gain(act),
        mean=moments.mean,
        second_moment=moments.second_moment,
        derivative_second_moment=moments.derivative_second_moment,
        method=moments.method,
        notes=_notes(act),
    )


@functools.cache
def activation_catalogue() -> tuple[ActivationSummary, ...]:
    """:func:`describe_activation` for every activation with default parameters."""
    return tuple(
        describe_activation(make_activation(name)) for name in ACTIVATION_NAMES
    )


def _notes(act: Activation) -> tuple[str, ...]:
    g2 = second_moment_gain(act)
    notes = []
    if pytorch_gain(act) is None:
        notes.append(
            f"PyTorch's calculate_gain raises for {act.name}; use second_moment_gain "
            f"({g2:.6f}) for fan_in schemes"
        )
    if act.name == "tanh":
        notes.append(
            f"PyTorch's 5/3 is above the second-moment gain {g2:.6f}: deep tanh "
            "networks initialised with it sit in the chaotic phase (χ₁ > 1, "
            "Schoenholz et al. 2017), so gradients grow with depth"
        )
    if act.name == "selu":
        notes.append(
            "PyTorch's 3/4 was chosen empirically for stabler gradients; a "
            "self-normalising network (Klambauer et al. 2017) wants gain 1 with "
            "fan_in, i.e. LeCun normal (std 1/√fan_in)"
        )
    if act.name == "sigmoid":
        notes.append(
            f"PyTorch's gain is 1, but E[σ(z)²] = {1 / g2**2:.6f}: keeping the "
            f"second moment needs {g2:.6f}, and the mean 1/2 dominates it"
        )
    if act.name == "softplus":
        notes.append(
            "moments use log(1 + e^{βx})/β exactly; PyTorch's Softplus returns x "
            "where βx > 20, a difference below e^{−20}/β there"
        )
    if is_positively_homogeneous(act):
        notes.append(
            "positively homogeneous: the same gain keeps the forward and the "
            "backward second moment"
        )
    else:
        notes.append(
            f"not positively homogeneous: the forward gain ({g2:.6f}) and the "
            f"backward gain gradient_gain ({gradient_gain(act):.6f}) differ; pick "
            "the pass to preserve"
        )

    return tuple(notes)
