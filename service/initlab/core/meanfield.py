"""The mean-field (infinite-width) maps of a deep network at initialization.

A fully connected network h^l = W^l φ(h^{l−1}) + b^l with W_ij ~ N(0, σ_w²/n)
and b_i ~ N(0, σ_b²) has, as the width grows, Gaussian pre-activations whose
second moment q (the "length") and whose correlation c between two inputs
follow deterministic one-layer maps: Poole, Lahiri, Raghu, Sohl-Dickstein &
Ganguli 2016, "Exponential expressivity in deep neural networks through
transient chaos" (arXiv 1606.05340), section 2; Schoenholz, Gilmer, Ganguli &
Sohl-Dickstein 2017, "Deep Information Propagation" (arXiv 1611.01232),
section 2. This module evaluates those maps, their slopes χ₁, χ_q and χ_c,
their fixed points q* and c*, the depth scales ξ_q, ξ_c and ξ_∇, the phase
(ordered, critical, chaotic), the edge of chaos and the phase diagram. The
analytic statistics (``initlab.core.propagation``) call these maps layer by
layer, and ``initlab.core.statistics`` reports the fixed point of a
homogeneous stack and draws the phase diagram from them.

Numerics. Every expectation is over z ~ N(0, 1) (or a pair of correlated
Gaussians). Identity, ReLU and leaky ReLU use closed forms (He et al. 2015;
the arc-cosine kernels of Cho & Saul 2009). Every other activation is
integrated numerically, always split at 0, where each activation here has its
kink or the feature that sets its scale:

- one dimension: a Gauss rule for e^{−z²/2} on the half line applied to
  f(√q z) + f(−√q z), nodes doubled from 16 to 256 until two rules agree to
  1e-14 of E|f|; what it does not resolve (where two rules never agree, and
  always above q = 10⁴ feature widths squared) goes to the adaptive rule of
  :func:`initlab.core.activations.gaussian_expectation`;
- two dimensions: polar coordinates of the two independent normals, cut into
  the four wedges between the lines where either pre-activation is 0, with
  Gauss–Legendre in the angle and a Gauss rule for r·e^{−r²/2} in the radius,
  nodes doubled until two rules agree to 1e-13 of E|f|; composite panels that
  refine geometrically towards the kinks take what that does not resolve.
  Inside a wedge neither pre-activation changes sign, so the integrand is
  smooth and both rules converge spectrally even for ELU, SELU and softsign,
  where a product Gauss–Hermite rule on the plane stalls near 1e-5.

Fixed points of the length map are bracketed on a table of E[φ(√q z)²] and
E[φ'(√q z)²] at 20 values of q per decade from 1e-14 to 1e12, computed once
per activation, and refined by Newton's method.

Internally every quantity is computed over arrays of points so the phase
diagram vectorises over its grid; the scalar functions are the same code on
one point, so a grid value and the scalar value agree to the last bit (the
phase diagram's c* and χ_c: see :class:`PhaseDiagram`).
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Literal, NamedTuple

import numpy as np
from numpy.polynomial.legendre import leggauss

from initlab.core.activations import (
    EXPECTATION_TOLERANCE,
    _feature_scale,
    gaussian_expectation,
    gaussian_moments,
    is_positively_homogeneous,
    phi,
    phi_prime,
)
from initlab.core.errors import FieldProblem, InvalidInput, LimitExceeded
from initlab.core.types import Activation

Phase = Literal["ordered", "critical", "chaotic"]
LengthRegime = Literal["converges", "collapses", "diverges", "neutral"]

# χ₁ within this distance of 1 is "critical". Quadrature is good to about
# 1e-13, so the band is wide enough to hold a value computed at an exactly
# critical point and narrow enough that anything outside it is clearly not.
PHASE_TOLERANCE = 1e-9

# The largest pre-activation second moment accepted: the range of
# initlab.core.activations.gaussian_expectation.
MAX_SECOND_MOMENT = 1e12

# The largest σ_w² searched for an edge of chaos; none is reported beyond.
MAX_EDGE_SIGMA_W2 = 1e4

# Values per axis of a phase diagram.
MAX_PHASE_DIAGRAM_AXIS = 256

# Where the half-line Gauss rules stop converging (:func:`_slow_second_moment`:
# from 70 feature widths squared for tanh to 5600 for ELU) the integrals go to
# the adaptive or composite rules, milliseconds each against microseconds
# below. A phase-diagram point whose fixed point q* lies there costs one unit
# (its length fixed point takes Newton steps on the adaptive rule), or
# _LARGE_Q_CORRELATION_POINTS units on the chaotic side (its correlation fixed
# point needs a composite polar integral; the polar Gauss rules hold out about
# twice as far, so the count errs high). A diagram may ask for at most this
# many units, counted from the brackets of the length fixed points before any
# slow integral: 1.5 to 4.5 ms of one core per unit (measured for every smooth
# activation on grids of 64 to 10201 points), so at most about 10 s, against
# minutes (and the worker timeout) for a 101 × 101 grid out to σ² = 1e6.
MAX_PHASE_DIAGRAM_LARGE_Q_POINTS = 2500
_LARGE_Q_CORRELATION_POINTS = 16

# Two polar rules agreeing to this fraction of E|f| accept the finer one.
BIVARIATE_TOLERANCE = 1e-13

_SQRT_2PI = math.sqrt(2.0 * math.pi)
_HALF_LINE_NODE_COUNTS = (16, 32, 64, 128, 256)
# (angle nodes per wedge, radius nodes) of the polar Gauss rules, doubled in turn.
_POLAR_NODE_COUNTS = ((16, 32), (32, 64), (64, 128), (128, 256))
# The phase diagram runs its correlation Newton steps on this rule, then
# checks the result on the doubled rules.
_COARSE_POLAR = (16, 32)
# Radius beyond which r·e^{−r²/2} carries less than 1e-30 of the mass.
_RADIUS_CUTOFF = 12.0
_COMPOSITE_PANEL_NODES = (10, 20)
# Points are summed in chunks of about this many (point, angle, radius) nodes:
# arrays of 0.5 MB stay in cache, and larger chunks measured slower.
_POLAR_CHUNK_ELEMENTS = 1 << 16
# Length-map values tabulated per activation to bracket fixed points: 20 per
# decade from 1e-14 to MAX_SECOND_MOMENT. Two fixed points closer together
# than a factor 10^(1/20) (about 1.12) could be taken for none.
_TABLE_SECOND_MOMENTS = np.geomspace(1e-14, MAX_SECOND_MOMENT, 26 * 20 + 1)
_MAX_REFINEMENTS = 200
# Grid points per bracket search (each compares against the whole table).
_FIXED_POINT_CHUNK = 2048
# Within this of χ₁ = 1 on the chaotic side c* is found from the secant slope
# of the correlation map (see _near_critical_correlation_fixed_points).
_NEAR_CRITICAL = 1e-3
_SECANT_NODES = 8
_NEAR_CRITICAL_POLAR = (64, 128)
# The relative accuracy of a computed L(q); see _excess_sign.
_LENGTH_MAP_RESOLUTION = 1e-13
# The Gauss rules are trusted while q ≤ 1e4 feature widths squared: beyond,
# an activation's feature can fall between all their nodes near 0, where every
# rule sees the same saturated values and "converges" on them. Such points go
# to the adaptive rules.
_GAUSS_RULE_MAX_SHARPNESS = 1e4
# Below this q the moments are taken to first order in √q: the squares in
# the Gauss rules would leave the normal floating-point range.
_SMALLEST_RESOLVED_SECOND_MOMENT = 1e-250
# Arguments at which φ' has reached its limits at ±∞ for every activation here.
_FAR = 1e30


# --- checking the arguments ---------------------------------------------------


def _is_number(value: object) -> bool:
    return (
        isinstance(value, int | float)
        and not isinstance(value, bool)
        and math.isfinite(value)
    )


def _check_second_moment(name: str, value: object, *, positive: bool = False) -> float:
    low = "(0" if positive else "[0"
    allowed = f"a number in {low}, {MAX_SECOND_MOMENT:g}]"
    inside = _is_number(value) and (
        (value > 0 if positive else value >= 0) and value <= MAX_SECOND_MOMENT
    )
    if not inside:
        raise InvalidInput.at(
            (name,),
            f"{name}, a pre-activation second moment, must be {allowed}, got {value!r}",
            value=value,
            allowed=allowed,
        )

    return float(value)


_VARIANCES = {
    "sigma_w2": "σ_w², the weight variance times fan_in",
    "sigma_b2": "σ_b², the bias variance",
}


def _check_variance(name: str, value: object, *, positive: bool = False) -> float:
    allowed = "a finite number > 0" if positive else "a finite number ≥ 0"
    inside = _is_number(value) and (value > 0 if positive else value >= 0)
    if not inside:
        what = _VARIANCES[name.removesuffix("_values")]
        raise InvalidInput.at(
            (name,),
            f"{name} ({what}) must be {allowed}, got {value!r}",
            value=value,
            allowed=allowed,
        )

    return float(value)


def _check_correlation(name: str, value: object) -> float:
    if not (_is_number(value) and -1.0 <= value <= 1.0):
        raise InvalidInput.at(
            (name,),
            f"{name}, a correlation, must be a number in [-1, 1], got {value!r}",
            value=value,
            allowed="a number in [-1, 1]",
        )

    return float(value)


def _check_axis(name: str, values: object, *, positive: bool) -> np.ndarray:
    if isinstance(values, str | bytes) or not isinstance(values, Sequence):
        raise InvalidInput.at(
            (name,),
            f"{name} must be a list of numbers, got {values!r}",
            value=values,
            allowed="a non-empty list of numbers",
        )
    if not values:
        raise InvalidInput.at(
            (name,),
            f"{name} is empty; give at least one value",
            value=[],
            allowed="a non-empty list of numbers",
        )
    if len(values) > MAX_PHASE_DIAGRAM_AXIS:
        raise LimitExceeded(
            [
                FieldProblem(
                    (name,),
                    f"over the limit max_phase_diagram_axis = "
                    f"{MAX_PHASE_DIAGRAM_AXIS}: got {len(values)} values; "
                    "use a coarser grid",
                    value=len(values),
                )
            ],
            limit="max_phase_diagram_axis",
            limit_value=MAX_PHASE_DIAGRAM_AXIS,
        )

    problems = []
    for index, value in enumerate(values):
        try:
            _check_variance(name, value, positive=positive)
        except InvalidInput as error:
            problems += [
                FieldProblem((name, index), p.message, p.value, p.allowed)
                for p in error.problems
            ]
    if problems:
        raise InvalidInput(problems)

    return np.array(values, dtype=float)


# --- Gauss rules on the half line ---------------------------------------------


@functools.cache
def _half_line_recurrence(power: int) -> tuple[np.ndarray, np.ndarray]:
    """Three-term recurrence of the orthonormal polynomials for r^power·e^{−r²/2}.

    The Lanczos process with full reorthogonalisation on a discretisation of
    the weight (Gautschi 2004, "Orthogonal Polynomials: Computation and
    Approximation", section 2.2.3): 56 unit panels of 40-point Gauss–Legendre
    on [0, 56], which integrate every polynomial of degree below 2·256 times
    the weight to rounding (the weight beyond 56 is below e^{−1500}).
    Returns the diagonal α_k and the off-diagonal β_k (k ≥ 1) of the Jacobi
    matrix for up to 256 nodes.
    """
    count = max(_HALF_LINE_NODE_COUNTS[-1], _POLAR_NODE_COUNTS[-1][1])
    nodes, weights = leggauss(40)
    left = np.arange(56.0)
    x = (left[:, None] + 0.5 * (nodes + 1.0)).ravel()
    w = np.tile(0.5 * weights, left.size) * x**power * np.exp(-0.5 * x * x)

    basis = np.zeros((count, x.size))
    basis[0] = np.sqrt(w) / math.sqrt(w.sum())
    alpha = np.zeros(count)
    beta = np.zeros(count)
    for k in range(count):
        alpha[k] = basis[k] @ (x * basis[k])
        residual = x * basis[k] - alpha[k] * basis[k]
        if k > 0:
            residual -= beta[k] * basis[k - 1]
        for _ in range(2):
            residual -= basis[: k + 1].T @ (basis[: k + 1] @ residual)
        if k + 1 < count:
            beta[k + 1] = np.linalg.norm(residual)
            basis[k + 1] = residual / beta[k + 1]

    return alpha, beta


@functools.cache
def _half_line_rule(power: int, count: int) -> tuple[np.ndarray, np.ndarray]:
    """Nodes and weights of ∫_0^∞ f(r)·r^power·e^{−r²/2} dr ≈ Σ wᵢ f(rᵢ).

    Golub & Welsch 1969, "Calculation of Gauss quadrature rules" (Math. Comp.
    23): the nodes are the eigenvalues of the leading count×count block of the
    Jacobi matrix and the weights μ₀ times the squared first components of its
    eigenvectors, μ₀ = ∫_0^∞ r^power e^{−r²/2} dr (√(π/2) for power 0, 1 for
    power 1). Those components are accurate only to rounding of the largest,
    so weights below 1e-10 of the largest are taken instead as the Christoffel
    numbers 1/Σ_k p_k(xᵢ)² of the orthonormal polynomials, p_0 = 1/√μ₀
    (Gautschi 2004, section 1.4), which keep their relative accuracy there.
    Exact for f a polynomial of degree below 2·count.
    """
    alpha, beta = _half_line_recurrence(power)
    jacobi = (
        np.diag(alpha[:count]) + np.diag(beta[1:count], 1) + np.diag(beta[1:count], -1)
    )
    nodes, vectors = np.linalg.eigh(jacobi)
    total = math.sqrt(math.pi / 2.0) if power == 0 else 1.0
    weights = total * vectors[0] ** 2

    previous = np.zeros(count)
    current = np.full(count, 1.0 / math.sqrt(total))
    squares = current * current
    for k in range(count - 1):
        following = ((nodes - alpha[k]) * current - beta[k] * previous) / beta[k + 1]
        previous, current = current, following
        squares += current * current
    far = weights < 1e-10 * weights.max()
    weights[far] = 1.0 / squares[far]
    return nodes, weights


# --- one-dimensional expectations ---------------------------------------------


class _Moments(NamedTuple):
    """Expectations at u = √q·z over arrays of q: E[φ], E[φ²], E[φ'²] and
    d/dq E[φ(√q z)²] = E[u·φ(u)·φ'(u)]/q."""

    mean: np.ndarray
    second_moment: np.ndarray
    derivative_second_moment: np.ndarray
    length_slope: np.ndarray


class _Nonlinearity(NamedTuple):
    """φ and φ' as functions of float64 arrays, and the width of φ's feature."""

    value: Callable[[np.ndarray], np.ndarray]
    derivative: Callable[[np.ndarray], np.ndarray]
    feature_scale: float


@functools.lru_cache(maxsize=256)
def _nonlinearity(act: Activation) -> _Nonlinearity:
    return _Nonlinearity(
        functools.partial(phi, act),
        functools.partial(phi_prime, act),
        _feature_scale(act),
    )


def _moments(act: Activation, q: np.ndarray) -> _Moments:
    """:class:`_Moments` at every q ≥ 0 of ``q`` (closed forms or quadrature)."""
    q = np.asarray(q, dtype=float)
    if is_positively_homogeneous(act):
        return _homogeneous_moments(act, q)

    return _numeric_moments(_nonlinearity(act), q)


def _numeric_moments(function: _Nonlinearity, q: np.ndarray) -> _Moments:
    """:class:`_Moments` by the half-line rules, or the adaptive rule where they
    do not converge or q exceeds 1e4 feature widths squared; to first order in
    √q below q = 1e-250."""
    result = _Moments(*(np.full(q.shape, np.nan) for _ in range(4)))
    tiny = q < _SMALLEST_RESOLVED_SECOND_MOMENT
    if tiny.any():
        limits = _small_variance_moments(function, q[tiny])
        for array, value in zip(result, limits, strict=True):
            array[tiny] = value

    sharp = q > _GAUSS_RULE_MAX_SHARPNESS * function.feature_scale**2
    smooth = np.flatnonzero(~tiny & ~sharp)
    values, pending = _half_line_moments(function, q[smooth])
    for array, value in zip(result, values, strict=True):
        array[smooth] = value
    # Each distinct q is integrated once: a grid starts every point's length
    # map at the same q_input, and the adaptive rule is slow.
    slow = np.concatenate([smooth[pending], np.flatnonzero(sharp)])
    distinct, inverse = np.unique(q[slow], return_inverse=True)
    adaptive = np.array(
        [_adaptive_moments(function, float(value)) for value in distinct]
    ).reshape(-1, 4)
    for array, column in zip(result, adaptive.T, strict=True):
        array[slow] = column[inverse]

    return result


def _homogeneous_moments(act: Activation, q: np.ndarray) -> _Moments:
    """Moments of a positively homogeneous φ: E[φ(√q z)^k] = q^{k/2}·E[φ(z)^k].

    E[φ'²] is independent of q and the length map is linear, so its slope is
    E[φ(z)²] (He et al. 2015, "Delving Deep into Rectifiers", arXiv 1502.01852,
    section 2.2). The unit moments are activations' exact closed forms.
    """
    unit = gaussian_moments(act, 1.0)
    return _Moments(
        unit.mean * np.sqrt(q),
        unit.second_moment * q,
        np.full(q.shape, unit.derivative_second_moment),
        np.full(q.shape, unit.second_moment),
    )


def _small_variance_moments(
    function: _Nonlinearity, q: np.ndarray
) -> tuple[np.ndarray, ...]:
    """:class:`_Moments` to first order in √q, for q below 1e-250 (and q = 0).

    With φ(u) ≈ φ(0) + φ'(0^±)·u on either side of 0: E[φ] ≈ φ(0) +
    (φ'(0⁺) − φ'(0⁻))·√(q/(2π)), E[φ²] ≈ φ(0)² + ½(φ'(0⁺)² + φ'(0⁻)²)·q when
    φ(0) = 0 (otherwise the O(q) term is below rounding of φ(0)²), and E[φ'²]
    and the slope at their limits. The neglected terms are O(q) relative.
    """
    at_zero, _, derivative, slope = _zero_variance_moments(function)
    tiny = np.finfo(float).tiny
    right, left = function.derivative(np.array([tiny, -tiny]))
    mean = at_zero + (right - left) * np.sqrt(q / (2 * np.pi))
    second_moment = np.full(q.shape, at_zero * at_zero) if at_zero else derivative * q
    return (
        mean,
        second_moment,
        np.full(q.shape, derivative),
        np.full(q.shape, slope),
    )


def _zero_variance_moments(
    function: _Nonlinearity,
) -> tuple[float, float, float, float]:
    """The q → 0 limits: φ(0), φ(0)², ½(φ'(0⁺)² + φ'(0⁻)²), and the slope.

    At a kink the derivative's limit averages its two sides. The slope
    E[uφφ']/q tends to ½(φ'(0⁺)² + φ'(0⁻)²) when φ(0) = 0; otherwise it
    involves φ''(0), which is not needed here (a length map collapses to 0
    only when φ(0) = 0) and is left as NaN.
    """
    tiny = np.finfo(float).tiny
    at_zero = float(function.value(np.array(0.0)))
    sides = function.derivative(np.array([tiny, -tiny]))
    derivative = float(0.5 * (sides[0] ** 2 + sides[1] ** 2))
    slope = derivative if at_zero == 0.0 else math.nan
    return at_zero, at_zero * at_zero, derivative, slope


def _half_line_moments(
    function: _Nonlinearity, q: np.ndarray
) -> tuple[tuple[np.ndarray, ...], np.ndarray]:
    """:class:`_Moments` by half-line Gauss rules split at 0, q > 0.

    E f(√q z) = (2π)^{−1/2} Σ wᵢ [f(√q xᵢ) + f(−√q xᵢ)] with the rule for
    e^{−x²/2} on [0, ∞), nodes doubled from 16 to 256 until two rules agree to
    1e-14 of E|f| for all four integrands. Returns the values and the indices
    of the points that did not converge (their values are NaN).
    """
    values = tuple(np.full(q.shape, np.nan) for _ in range(4))
    pending = np.arange(q.size)
    previous = None
    for count in _HALF_LINE_NODE_COUNTS:
        estimate, magnitude = _half_line_sums(function, q[pending], count)
        if previous is not None:
            agree = np.all(
                np.abs(estimate - previous) <= EXPECTATION_TOLERANCE * magnitude,
                axis=0,
            )
            for array, row in zip(values, estimate, strict=True):
                array[pending[agree]] = row[agree]
            pending = pending[~agree]
            estimate = estimate[:, ~agree]
        if pending.size == 0:
            break
        previous = estimate

    return values, pending


def _half_line_sums(
    function: _Nonlinearity, q: np.ndarray, count: int
) -> tuple[np.ndarray, np.ndarray]:
    """The four expectations and their E|f| by one half-line rule, shape (4, P)."""
    nodes, weights = _half_line_rule(0, count)
    root_q = np.sqrt(q)[:, None]
    u = root_q * nodes
    value_right, value_left = function.value(u), function.value(-u)
    slope_right, slope_left = function.derivative(u), function.derivative(-u)
    integrands = (
        (value_right, value_left),
        (value_right**2, value_left**2),
        (slope_right**2, slope_left**2),
        # E[u φ φ']/q = E[z φ φ']/√q.
        (
            nodes * value_right * slope_right / root_q,
            -nodes * value_left * slope_left / root_q,
        ),
    )
    estimate = np.stack(
        [_weighted_sum(right + left, weights) for right, left in integrands]
    )
    magnitude = np.stack(
        [
            _weighted_sum(np.abs(right) + np.abs(left), weights)
            for right, left in integrands
        ]
    )
    return estimate / _SQRT_2PI, magnitude / _SQRT_2PI


def _weighted_sum(values: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """Σ_k values[..., k]·weights[k], summed row by row in a fixed order.

    A matrix-vector product may sum a row differently depending on how many
    rows there are; a per-row reduction does not, so a point gives the same
    bits alone and inside a grid.
    """
    return (values * weights).sum(axis=-1)


def _adaptive_moments(
    function: _Nonlinearity, q: float
) -> tuple[float, float, float, float]:
    """:class:`_Moments` at one q by activations' adaptive quadrature, split at 0."""
    value, derivative = function.value, function.derivative
    integrands = (
        value,
        lambda u: value(u) ** 2,
        lambda u: derivative(u) ** 2,
        lambda u: u * value(u) * derivative(u) / q,
    )
    return tuple(
        gaussian_expectation(
            integrand, q, breakpoints=(0.0,), feature_scale=function.feature_scale
        )
        for integrand in integrands
    )


@functools.lru_cache(maxsize=64)
def _asymptotic_derivative_second_moment(act: Activation) -> float:
    """lim_{q→∞} E[φ'(√q z)²] = ½(φ'(+∞)² + φ'(−∞)²).

    Also the limit of the length map's slope E[uφφ']/q for an activation that
    grows linearly; 0 for a bounded one.
    """
    far = phi_prime(act, np.array([_FAR, -_FAR]))
    return float(0.5 * (far[0] ** 2 + far[1] ** 2))


# --- two-dimensional expectations ---------------------------------------------


def _bivariate(
    act: Activation,
    q_a: np.ndarray,
    q_b: np.ndarray,
    c: np.ndarray,
    rule: tuple[int, int] | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """E[φ(u_a)φ(u_b)] and E[φ'(u_a)φ'(u_b)] over arrays of (q_a, q_b, c).

    (u_a, u_b) is a centred Gaussian pair with variances q_a, q_b and
    correlation c. Closed forms for identity and the ReLU family; otherwise the
    polar rules, doubled until converged (``rule`` fixes one polar Gauss rule
    instead, unchecked).
    """
    q_a, q_b, c = (
        np.array(v, dtype=float).ravel() for v in np.broadcast_arrays(q_a, q_b, c)
    )
    if is_positively_homogeneous(act):
        cross, derivative = _arc_cosine(act, q_a, q_b, c)
    else:
        cross, derivative = _numeric_bivariate(_nonlinearity(act), q_a, q_b, c, rule)

    # Two identical inputs: the one-dimensional moments, so that the
    # correlation map sends c = 1 to exactly 1 when q_a = q_b.
    same = (c == 1.0) & (q_a == q_b)
    if same.any():
        moments = _moments(act, q_a[same])
        cross[same] = moments.second_moment
        derivative[same] = moments.derivative_second_moment
    return cross, derivative


def _arc_cosine(
    act: Activation, q_a: np.ndarray, q_b: np.ndarray, c: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """The closed forms for identity, ReLU and leaky ReLU with slope s.

    With θ = arccos c (Cho & Saul 2009, "Kernel Methods for Deep Learning",
    NIPS 22, arc-cosine kernels of degree 1 and 0):
    E[relu(u_a)relu(u_b)] = √(q_a q_b)/(2π)·(sin θ + (π − θ) cos θ) and
    E[1(u_a > 0)1(u_b > 0)] = (π − θ)/(2π). Writing the leaky ReLU as
    s·u + (1 − s)·relu(u), and using E[u_a·relu(u_b)] = c√(q_a q_b)/2:
    E[φφ] = s·c√(q_a q_b) + (1 − s)²·(the ReLU value),
    E[φ'φ'] = s + (1 − s)²·(π − θ)/(2π). The identity is s = 1.
    """
    scale = np.sqrt(q_a * q_b)
    if act.name == "identity":
        return c * scale, np.ones_like(c)

    slope = float(act.param("negative_slope", 0.0)) if act.name == "leaky_relu" else 0.0
    theta = np.arccos(c)
    sine = np.sqrt((1.0 - c) * (1.0 + c))
    relu = scale * (sine + (np.pi - theta) * c) / (2.0 * np.pi)
    orthant = (np.pi - theta) / (2.0 * np.pi)
    kink = (1.0 - slope) ** 2
    return slope * c * scale + kink * relu, slope + kink * orthant


def _numeric_bivariate(
    function: _Nonlinearity,
    q_a: np.ndarray,
    q_b: np.ndarray,
    c: np.ndarray,
    rule: tuple[int, int] | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Both bivariate expectations by the polar rules (checked unless ``rule``)."""
    if rule is not None:
        (cross, derivative), _ = _polar_gauss(function, q_a, q_b, c, *rule)
        return cross, derivative

    return _checked_polar(function, q_a, q_b, c)


def _checked_polar(
    function: _Nonlinearity, q_a: np.ndarray, q_b: np.ndarray, c: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Polar Gauss rules doubled until two agree to 1e-13 of E|f|, both integrands.

    Points with q above 1e4 feature widths squared, or still disagreeing at
    128 × 256 nodes per wedge, go to the composite rule one at a time.
    """
    cross = np.full(c.shape, np.nan)
    derivative = np.full(c.shape, np.nan)
    flat = [v.ravel() for v in (q_a, q_b, c)]
    limit = _GAUSS_RULE_MAX_SHARPNESS * function.feature_scale**2
    sharp = np.flatnonzero(np.maximum(flat[0], flat[1]) > limit)
    pending = np.flatnonzero(np.maximum(flat[0], flat[1]) <= limit)
    previous = None
    for counts in _POLAR_NODE_COUNTS:
        if pending.size == 0:
            break
        estimate, magnitude = _polar_gauss(
            function, *(v[pending] for v in flat), *counts
        )
        if previous is not None:
            agree = np.all(
                np.abs(estimate - previous) <= BIVARIATE_TOLERANCE * magnitude, axis=0
            )
            cross.flat[pending[agree]] = estimate[0, agree]
            derivative.flat[pending[agree]] = estimate[1, agree]
            pending = pending[~agree]
            estimate = estimate[:, ~agree]
        previous = estimate

    for index in np.concatenate([pending, sharp]):
        value = _polar_composite(function, *(float(v[index]) for v in flat))
        cross.flat[index], derivative.flat[index] = value

    return cross, derivative


def _wedges(psi: np.ndarray) -> np.ndarray:
    """The wedge edges (P, 5) for each ψ = arccos c.

    With z = r(cos θ, sin θ), u_a = √q_a·r cos θ and u_b = √q_b·r cos(θ − ψ),
    so u_a changes sign at θ = π/2, 3π/2 and u_b at ψ + π/2, ψ + 3π/2. The four
    sorted angles and the first plus 2π bound the wedges (one or two have zero
    width when c = ±1).
    """
    quarter = np.pi / 2
    kinks = np.stack(
        [
            np.full(psi.shape, quarter),
            np.full(psi.shape, 3 * quarter),
            psi + quarter,
            np.mod(psi + 3 * quarter, 2 * np.pi),
        ],
        axis=-1,
    )
    kinks.sort(axis=-1)
    return np.concatenate([kinks, kinks[:, :1] + 2 * np.pi], axis=-1)


def _wedge_angles(psi: np.ndarray, count: int) -> tuple[np.ndarray, np.ndarray]:
    """Gauss–Legendre angles and weights, ``count`` per wedge, shape (P, 4, count)."""
    edges = _wedges(psi)
    nodes, weights = leggauss(count)
    half = 0.5 * np.diff(edges, axis=-1)
    middle = 0.5 * (edges[:, 1:] + edges[:, :-1])
    return middle[..., None] + half[..., None] * nodes, half[..., None] * weights


def _symmetric_angles(psi: np.ndarray, count: int) -> tuple[np.ndarray, np.ndarray]:
    """Angles and weights for q_a = q_b, shape (P, 1, 2·count): half the work.

    Then θ ↦ ψ − θ swaps u_a and u_b, so the integrand of E[f(u_a)f(u_b)] is
    symmetric under it: the wedge [π/2, π/2 + ψ] stands for itself and its
    image [3π/2, 3π/2 + ψ], and the wedges [ψ + π/2, 3π/2] and [ψ − π/2, π/2]
    are each symmetric about their middle, where their Gauss–Legendre nodes
    are too: the nodes of their upper halves with doubled weights give the
    same sum as the whole rule.
    """
    nodes, weights = leggauss(count)
    upper = nodes > 0
    quarter = np.pi / 2
    pieces = (
        (quarter + 0 * psi, quarter + psi, nodes, weights),
        (psi + quarter, 3 * quarter + 0 * psi, nodes[upper], weights[upper]),
        (psi - quarter, quarter + 0 * psi, nodes[upper], weights[upper]),
    )
    thetas, angle_weights = [], []
    for low, high, piece_nodes, piece_weights in pieces:
        half = 0.5 * (high - low)[:, None]
        thetas.append(0.5 * (high + low)[:, None] + half * piece_nodes)
        angle_weights.append(2 * half * piece_weights)
    return (
        np.concatenate(thetas, axis=-1)[:, None, :],
        np.concatenate(angle_weights, axis=-1)[:, None, :],
    )


def _polar_gauss(
    function: _Nonlinearity,
    q_a: np.ndarray,
    q_b: np.ndarray,
    c: np.ndarray,
    angle_count: int,
    radius_count: int,
) -> tuple[np.ndarray, np.ndarray]:
    """Both bivariate expectations by one polar Gauss rule, and their E|f|.

    E f(z₁, z₂) = (2π)^{−1} Σ_wedges ∫ dθ ∫_0^∞ r e^{−r²/2} f(r cos θ, r sin θ) dr,
    with ``angle_count`` Gauss–Legendre nodes per wedge (:func:`_symmetric_angles`
    when q_a = q_b) and the ``radius_count``-node Gauss rule for r·e^{−r²/2}.
    Shapes (2, P).
    """
    radius, radius_weight = _half_line_rule(1, radius_count)
    psi = np.arccos(c)
    estimate = np.empty((2, c.size))
    magnitude = np.empty((2, c.size))
    same = q_a == q_b
    for group, angles in ((same, _symmetric_angles), (~same, _wedge_angles)):
        if not group.any():
            continue
        theta, angle_weight = angles(psi[group], angle_count)
        estimate[:, group], magnitude[:, group] = _polar_sums(
            function,
            q_a[group],
            q_b[group],
            psi[group],
            theta,
            angle_weight,
            radius,
            radius_weight,
        )

    return estimate, magnitude


def _polar_sums(
    function: _Nonlinearity,
    q_a: np.ndarray,
    q_b: np.ndarray,
    psi: np.ndarray,
    theta: np.ndarray,
    angle_weight: np.ndarray,
    radius: np.ndarray,
    radius_weight: np.ndarray,
) -> tuple[np.ndarray, np.ndarray]:
    """Σ over angle × radius nodes of φ_aφ_b and φ'_aφ'_b, in chunks of points.

    ``theta`` and ``angle_weight`` have shape (P, wedges, n); ``radius`` and
    ``radius_weight`` shape (m,). Returns ((2, P) values, (2, P) E|f|).
    """
    estimate = np.zeros((2, psi.size))
    magnitude = np.zeros((2, psi.size))
    per_point = theta[0].size * radius.size
    chunk = max(1, _POLAR_CHUNK_ELEMENTS // max(per_point, 1))
    for start in range(0, psi.size, chunk):
        part = slice(start, start + chunk)
        along_a = np.sqrt(q_a[part])[:, None, None] * np.cos(theta[part])
        along_b = np.sqrt(q_b[part])[:, None, None] * np.cos(
            theta[part] - psi[part, None, None]
        )
        u_a = along_a[..., None] * radius
        u_b = along_b[..., None] * radius
        for row, (f_a, f_b) in enumerate(
            (
                (function.value(u_a), function.value(u_b)),
                (function.derivative(u_a), function.derivative(u_b)),
            )
        ):
            product = f_a * f_b
            points = product.shape[0]
            weight = angle_weight[part].reshape(points, -1)
            estimate[row, part] = (
                _weighted_sum(product, radius_weight).reshape(points, -1) * weight
            ).sum(axis=-1)
            magnitude[row, part] = (
                _weighted_sum(np.abs(product), radius_weight).reshape(points, -1)
                * weight
            ).sum(axis=-1)

    return estimate / (2 * np.pi), magnitude / (2 * np.pi)


def _polar_composite(
    function: _Nonlinearity, q_a: float, q_b: float, c: float
) -> tuple[float, float]:
    """The polar integral by composite Gauss–Legendre panels, for large q.

    The pre-activations change over r ~ 1/√q and, near the wedge edges, over
    angles ~ 1/(√q·r); radius panels double from δ = 1/(8√q) out to r = 12 and
    angle panels double from δ/8 at both ends of each wedge. The 20-node rule
    per panel is returned when the 10-node rule agrees with it to 1e-10 of
    E|f| (it is then good to about 1e-13: the erf kernel checks it up to
    q = 1e9); otherwise :class:`InvalidInput` names q_a.
    """
    scale = max(q_a, q_b, 1.0)
    start = 1.0 / (8.0 * math.sqrt(scale))
    radius_edges = _geometric_edges(0.0, _RADIUS_CUTOFF, start)
    psi_array = np.arccos(np.array([c]))
    (edges,) = _wedges(psi_array)

    results = []
    for count in _COMPOSITE_PANEL_NODES:
        radius, radius_weight = _composite_rule(radius_edges, count)
        radius_weight = radius_weight * radius * np.exp(-0.5 * radius * radius)
        thetas, weights = [], []
        for low, high in zip(edges[:-1], edges[1:], strict=True):
            if high <= low:
                continue
            middle = 0.5 * (low + high)
            angle_edges = np.union1d(
                _geometric_edges(low, middle, start / 8.0),
                middle + high - _geometric_edges(middle, high, start / 8.0)[::-1],
            )
            theta, weight = _composite_rule(angle_edges, count)
            thetas.append(theta)
            weights.append(weight)
        theta = np.concatenate(thetas)[None, None, :]
        weight = np.concatenate(weights)[None, None, :]
        estimate, magnitude = _polar_sums(
            function,
            np.array([q_a]),
            np.array([q_b]),
            psi_array,
            theta,
            weight,
            radius,
            radius_weight,
        )
        results.append((estimate[:, 0], magnitude[:, 0]))

    (coarse, _), (fine, magnitude) = results
    if np.any(np.abs(fine - coarse) > 1e3 * BIVARIATE_TOLERANCE * magnitude):
        raise InvalidInput.at(
            ("q_a",),
            f"the correlation integral at q_a = {q_a:g}, "
            f"q_b = {q_b:g}, c = {c!r} does not converge; the pre-activations "
            "are too large for the mean-field maps here",
            value=q_a,
            allowed="smaller second moments",
        )

    return float(fine[0]), float(fine[1])


def _geometric_edges(low: float, high: float, first: float) -> np.ndarray:
    """Panel edges low, low + first, low + 2·first, low + 4·first, … up to high."""
    steps = first * 2.0 ** np.arange(64)
    inner = low + steps[low + steps < high]
    return np.concatenate([[low], inner, [high]])


def _composite_rule(edges: np.ndarray, count: int) -> tuple[np.ndarray, np.ndarray]:
    """Gauss–Legendre with ``count`` nodes on each panel between ``edges``."""
    nodes, weights = leggauss(count)
    half = 0.5 * np.diff(edges)
    middle = 0.5 * (edges[1:] + edges[:-1])
    return (
        (middle[:, None] + half[:, None] * nodes).ravel(),
        (half[:, None] * weights).ravel(),
    )


# --- the one-layer maps -------------------------------------------------------


def post_activation_moments(act: Activation, q: float) -> tuple[float, float]:
    """(E[φ(u)], E[φ(u)²]) for a pre-activation u ~ N(0, q), q ≥ 0.

    The mean and second moment of a layer's output (Poole et al. 2016, arXiv
    1606.05340, section 2). At q = 0 the output is the constant φ(0).
    """
    q = _check_second_moment("q", q)
    moments = _moments(act, np.array([q]))
    return float(moments.mean[0]), float(moments.second_moment[0])


def _length_map(
    second_moment: np.ndarray, sigma_w2: np.ndarray, sigma_b2: np.ndarray
) -> np.ndarray:
    """q' = σ_w²·E[φ(√q z)²] + σ_b².

    Poole et al. 2016 (arXiv 1606.05340), section 2; Schoenholz et al. 2017
    (arXiv 1611.01232), section 2.
    """
    return sigma_w2 * second_moment + sigma_b2


def length_map(act: Activation, q: float, sigma_w2: float, sigma_b2: float) -> float:
    """The next layer's pre-activation second moment: σ_w²·E[φ(√q z)²] + σ_b².

    ``q`` ≥ 0 is this layer's pre-activation second moment, ``sigma_w2`` the
    weight variance times fan_in, ``sigma_b2`` the bias variance.
    """
    q = _check_second_moment("q", q)
    sigma_w2 = _check_variance("sigma_w2", sigma_w2)
    sigma_b2 = _check_variance("sigma_b2", sigma_b2)
    second_moment = _moments(act, np.array([q])).second_moment
    return float(_length_map(second_moment, sigma_w2, sigma_b2)[0])


def cross_moment(act: Activation, q_a: float, q_b: float, c: float) -> float:
    """E[φ(u_a)φ(u_b)] for centred Gaussians with variances q_a, q_b, correlation c.

    Closed arc-cosine forms for identity and the ReLU family (Cho & Saul 2009),
    the polar wedge rule otherwise (see the module docstring).
    """
    q_a = _check_second_moment("q_a", q_a)
    q_b = _check_second_moment("q_b", q_b)
    c = _check_correlation("c", c)
    cross, _ = _bivariate(act, np.array([q_a]), np.array([q_b]), np.array([c]))
    return float(cross[0])


def _correlation_map(
    cross: np.ndarray,
    length_a: np.ndarray,
    length_b: np.ndarray,
    sigma_w2: np.ndarray,
    sigma_b2: np.ndarray,
) -> np.ndarray:
    """c' = (σ_w²·E[φ(u_a)φ(u_b)] + σ_b²)/√(q_a'·q_b'), q' the length map's values.

    Poole et al. 2016 (arXiv 1606.05340), section 2; Schoenholz et al. 2017
    (arXiv 1611.01232), section 2.
    """
    return (sigma_w2 * cross + sigma_b2) / np.sqrt(length_a * length_b)


def correlation_map(
    act: Activation,
    q_a: float,
    q_b: float,
    c: float,
    sigma_w2: float,
    sigma_b2: float,
) -> float:
    """The correlation of two inputs' next pre-activations, given this layer's.

    ``q_a``, ``q_b`` are the two inputs' pre-activation second moments and ``c``
    their correlation. Not clipped: rounding may leave it up to ~1e-13 outside
    [−1, 1]. Raises :class:`InvalidInput` when a next second moment is 0 (a
    constant 0 has no correlation).
    """
    q_a = _check_second_moment("q_a", q_a)
    q_b = _check_second_moment("q_b", q_b)
    c = _check_correlation("c", c)
    sigma_w2 = _check_variance("sigma_w2", sigma_w2)
    sigma_b2 = _check_variance("sigma_b2", sigma_b2)

    second_moments = _moments(act, np.array([q_a, q_b])).second_moment
    length_a, length_b = _length_map(second_moments, sigma_w2, sigma_b2)
    if length_a == 0.0 or length_b == 0.0:
        raise InvalidInput.at(
            ("sigma_b2",),
            f"the next pre-activations of {act.name} at q_a = {q_a!r}, "
            f"q_b = {q_b!r} with sigma_w2 = {sigma_w2!r}, sigma_b2 = {sigma_b2!r} "
            "are identically 0 and have no correlation; give a positive "
            "sigma_b2 or a positive q",
            value=sigma_b2,
            allowed="a combination whose next second moments are positive",
        )

    cross, _ = _bivariate(act, np.array([q_a]), np.array([q_b]), np.array([c]))
    return float(_correlation_map(cross, length_a, length_b, sigma_w2, sigma_b2)[0])


def _chi_1(derivative_second_moment: np.ndarray, sigma_w2: np.ndarray) -> np.ndarray:
    """χ₁ = σ_w²·E[φ'(√q z)²].

    The mean squared singular value of a layer's Jacobian, so the factor by
    which a layer multiplies the backward gradient's second moment (at equal
    widths) and the slope of the correlation map at c = 1: Poole et al. 2016
    (arXiv 1606.05340), section 3; Schoenholz et al. 2017 (arXiv 1611.01232),
    sections 3 and 4.
    """
    return sigma_w2 * derivative_second_moment


def chi_1(act: Activation, q: float, sigma_w2: float) -> float:
    """χ₁ = σ_w²·E[φ'(√q z)²] at pre-activation second moment q ≥ 0.

    At q = 0 the expectation is its limit ½(φ'(0⁺)² + φ'(0⁻)²).
    """
    q = _check_second_moment("q", q)
    sigma_w2 = _check_variance("sigma_w2", sigma_w2)
    moments = _moments(act, np.array([q]))
    return float(_chi_1(moments.derivative_second_moment, sigma_w2)[0])


def _chi_q(length_slope: np.ndarray, sigma_w2: np.ndarray) -> np.ndarray:
    """χ_q = dq'/dq = σ_w²·E[u·φ(u)·φ'(u)]/q, u = √q·z.

    Differentiating σ_w²·E[φ(√q z)²] under the expectation gives
    σ_w²·E[z·φ(u)φ'(u)]/√q; Gaussian integration by parts turns it into
    σ_w²·E[φ'(u)² + φ(u)φ''(u)], the form of Schoenholz et al. 2017 (arXiv
    1611.01232), section 3, without needing φ''. For the ReLU
    family it is σ_w²·E[φ'²]: the delta in φ'' meets φ(0) = 0.
    """
    return sigma_w2 * length_slope


def chi_q(act: Activation, q: float, sigma_w2: float) -> float:
    """χ_q, the slope of the length map at q: σ_w²·E[u·φ(u)·φ'(u)]/q.

    At q = 0 only for activations with φ(0) = 0, where the slope tends to
    σ_w²·½(φ'(0⁺)² + φ'(0⁻)²).
    """
    q = _check_second_moment("q", q)
    sigma_w2 = _check_variance("sigma_w2", sigma_w2)
    slope = _moments(act, np.array([q])).length_slope[0]
    if math.isnan(slope):
        raise InvalidInput.at(
            ("q",),
            f"χ_q of {act.name} at q = 0 needs φ''(0) since φ(0) ≠ 0; "
            "give a positive q",
            value=q,
            allowed=f"a number in (0, {MAX_SECOND_MOMENT:g}]",
        )

    return float(_chi_q(np.array([slope]), sigma_w2)[0])


def _chi_c(derivative_cross: np.ndarray, sigma_w2: np.ndarray) -> np.ndarray:
    """χ_c = ∂c'/∂c = σ_w²·E[φ'(u_a)φ'(u_b)] at q_a = q_b = q*.

    By Price's theorem ∂E[φ(u_a)φ(u_b)]/∂c = √(q_a q_b)·E[φ'(u_a)φ'(u_b)], and at
    a fixed point of the length map the normalisation √(q_a' q_b') is q* itself:
    Schoenholz et al. 2017 (arXiv 1611.01232), section 3.
    """
    return sigma_w2 * derivative_cross


def chi_c(act: Activation, q: float, c: float, sigma_w2: float) -> float:
    """χ_c = σ_w²·E[φ'(u_a)φ'(u_b)], both variances q, correlation c.

    The slope of the correlation map in c when q is a fixed point of the
    length map; at c = 1 it equals χ₁.
    """
    q = _check_second_moment("q", q)
    c = _check_correlation("c", c)
    sigma_w2 = _check_variance("sigma_w2", sigma_w2)
    _, derivative = _bivariate(act, np.array([q]), np.array([q]), np.array([c]))
    return float(_chi_c(derivative, sigma_w2)[0])


# --- depth scales and phase ---------------------------------------------------


def _depth_scales(chi: np.ndarray) -> np.ndarray:
    """ξ = −1/ln χ: the number of layers over which a deviation changes by e.

    Schoenholz et al. 2017 (arXiv 1611.01232), section 3: ξ_q = −1/ln χ_q,
    ξ_c = −1/ln χ_c(c*), and the gradient scale ξ_∇ = −1/ln χ₁ of section 4.
    Positive when the deviation decays (χ < 1), negative when it grows, +∞
    within PHASE_TOLERANCE of χ = 1 (the critical band of ``_phases``: the
    approach is then slower than exponential, and a χ₁ of 1 + 2⁻⁵² from
    σ_w² = std²·fan_in rounding must not read as a depth scale of −4.5·10¹⁵),
    0 at χ = 0.
    """
    with np.errstate(divide="ignore"):
        logarithm = np.log(chi)
        critical = np.abs(logarithm) <= PHASE_TOLERANCE
        return np.where(critical, np.inf, -1.0 / np.where(critical, 1.0, logarithm))


def depth_scale(chi: float) -> float | None:
    """ξ = −1/ln χ for one χ ≥ 0; None when infinite (χ = 1)."""
    if not (_is_number(chi) and chi >= 0):
        raise InvalidInput.at(
            ("chi",),
            f"chi must be a finite number ≥ 0, got {chi!r}",
            value=chi,
            allowed="a finite number ≥ 0",
        )

    return _optional(_depth_scales(np.array([float(chi)]))[0])


def _phases(chi_1: np.ndarray) -> np.ndarray:
    """Ordered when χ₁ < 1 − 1e-9, chaotic when χ₁ > 1 + 1e-9, critical between.

    Schoenholz et al. 2017 (arXiv 1611.01232), section 3: in the ordered phase
    inputs become correlated and gradients vanish, in the chaotic phase inputs
    decorrelate and gradients explode; χ₁ = 1 is the edge of chaos.
    """
    return np.where(
        chi_1 < 1.0 - PHASE_TOLERANCE,
        "ordered",
        np.where(chi_1 > 1.0 + PHASE_TOLERANCE, "chaotic", "critical"),
    )


def phase_of(chi_1: float) -> Phase:
    """The phase for χ₁: "ordered", "critical" (within 1e-9 of 1) or "chaotic"."""
    if not (_is_number(chi_1) and chi_1 >= 0):
        raise InvalidInput.at(
            ("chi_1",),
            f"chi_1 must be a finite number ≥ 0, got {chi_1!r}",
            value=chi_1,
            allowed="a finite number ≥ 0",
        )

    return str(_phases(np.array([float(chi_1)]))[0])


def _optional(value: float) -> float | None:
    """A float, or None for NaN (undefined) and ±∞ (infinite)."""
    return float(value) if math.isfinite(value) else None


# --- fixed points -------------------------------------------------------------


@dataclass(frozen=True)
class FixedPoint:
    """Where the mean-field maps of a deep homogeneous stack settle, and how fast.

    ``q_star`` is the pre-activation second moment the length map reaches from
    the input's: 0.0 when it collapses to 0, None when it grows without bound
    (beyond 1e12). ``length_regime`` says which: "converges", "collapses",
    "diverges", or "neutral" when every q is a fixed point (a positively
    homogeneous φ at σ_w²·E[φ(z)²] = 1 and σ_b² = 0: q* is the input's q).

    ``chi_1`` and ``chi_q`` are taken at q* (at 0 and at ∞ as limits);
    ``c_star`` is the correlation map's stable fixed point on [0, 1] and
    ``chi_c`` its slope there, both None unless q* is positive and finite;
    ``chi_c`` is None also where c* is closer to 1 than a double resolves
    (χ₁ within about 1e-7 above 1 for a φ' with a kink, such as SELU's).
    ``xi_q``, ``xi_c``, ``xi_grad`` are −1/ln of χ_q, χ_c, χ₁: None when
    infinite (χ = 1) or undefined; ``xi_grad`` is negative in the chaotic phase
    (gradients grow by e every |ξ_∇| layers).
    """

    q_star: float | None
    c_star: float | None
    chi_1: float
    chi_q: float
    chi_c: float | None
    xi_q: float | None
    xi_c: float | None
    xi_grad: float | None
    phase: Phase
    length_regime: LengthRegime = "converges"


class _FixedPoints(NamedTuple):
    """:class:`FixedPoint` over arrays; NaN where a value is undefined."""

    q_star: np.ndarray
    c_star: np.ndarray
    chi_1: np.ndarray
    chi_q: np.ndarray
    chi_c: np.ndarray
    regime: np.ndarray


def fixed_point(
    act: Activation, sigma_w2: float, sigma_b2: float, *, q_input: float = 1.0
) -> FixedPoint:
    """The fixed points, slopes, depth scales and phase of a deep stack.

    ``q_input`` is the first layer's pre-activation second moment, where the
    length map starts: with several fixed points, the one it reaches is
    reported (iterating an increasing map never passes a fixed point).

    The correlation fixed point: at q* the correlation map is a power series in
    c with non-negative coefficients (the squared Hermite coefficients of
    φ(√q* z)), so it is increasing and convex on [0, 1], with c = 1 fixed and
    slope χ₁ there. Hence c* = 1 when χ₁ ≤ 1 (+1e-9), with χ_c = min(χ₁, 1),
    and otherwise c* is the one fixed point in [0, 1), reached from every c in
    [0, 1) (Schoenholz et al. 2017, arXiv 1611.01232, section 3; Poole et al.
    2016, section 3). Just above the edge, χ_c → 2 − χ₁ for a smooth φ and
    1 − (χ₁ − 1)/2 when φ' has a kink (SELU): ξ_c ≈ 1/(χ₁ − 1) or twice that.
    """
    sigma_w2 = _check_variance("sigma_w2", sigma_w2, positive=True)
    sigma_b2 = _check_variance("sigma_b2", sigma_b2)
    q_input = _check_second_moment("q_input", q_input, positive=True)

    points = _fixed_points(act, np.array([sigma_w2]), np.array([sigma_b2]), q_input)
    one = _FixedPoints(*(array[0] for array in points))
    xi_q, xi_c, xi_grad = _depth_scales(np.array([one.chi_q, one.chi_c, one.chi_1]))
    return FixedPoint(
        q_star=_optional(one.q_star),
        c_star=_optional(one.c_star),
        chi_1=float(one.chi_1),
        chi_q=float(one.chi_q),
        chi_c=_optional(one.chi_c),
        xi_q=_optional(xi_q) if math.isfinite(one.q_star) else None,
        xi_c=_optional(xi_c),
        xi_grad=_optional(xi_grad),
        phase=str(_phases(np.array([one.chi_1]))[0]),
        length_regime=str(one.regime),
    )


def _fixed_points(
    act: Activation,
    sigma_w2: np.ndarray,
    sigma_b2: np.ndarray,
    q_input: float,
    *,
    coarse: bool = False,
    max_large_q_points: int | None = None,
) -> _FixedPoints:
    """:class:`_FixedPoints` for arrays of (σ_w², σ_b²); ``coarse`` as in
    :func:`_correlation_fixed_points`, ``max_large_q_points`` as in
    :func:`_length_fixed_points`."""
    q_star, regime = _length_fixed_points(
        act, sigma_w2, sigma_b2, q_input, max_large_q_points=max_large_q_points
    )

    finite = np.isfinite(q_star)
    moments = _moments(act, np.where(finite, q_star, 0.0))
    far = _asymptotic_derivative_second_moment(act)
    derivative = np.where(finite, moments.derivative_second_moment, far)
    slope = np.where(finite, moments.length_slope, far)
    chi_1 = _chi_1(derivative, sigma_w2)
    chi_q = _chi_q(slope, sigma_w2)

    c_star = np.full(q_star.shape, np.nan)
    chi_c = np.full(q_star.shape, np.nan)
    positive = finite & (q_star > 0)
    settled = positive & (chi_1 <= 1.0 + PHASE_TOLERANCE)
    c_star[settled] = 1.0
    # In the critical band above 1, c* is 1 to the precision of χ₁ and its
    # slope 1 (a double root), not χ₁: ξ_c is then infinite, never negative.
    chi_c[settled] = np.minimum(chi_1[settled], 1.0)
    near = positive & ~settled & (chi_1 <= 1.0 + _NEAR_CRITICAL)
    chaotic = np.flatnonzero(positive & ~settled & ~near)
    if chaotic.size:
        c_star[chaotic], chi_c[chaotic] = _correlation_fixed_points(
            act, q_star[chaotic], sigma_w2[chaotic], sigma_b2[chaotic], coarse=coarse
        )
    near = np.flatnonzero(near)
    if near.size:
        c_star[near], chi_c[near] = _near_critical_correlation_fixed_points(
            act, q_star[near], sigma_w2[near], chi_1[near], coarse=coarse
        )

    return _FixedPoints(q_star, c_star, chi_1, chi_q, chi_c, regime)


def _length_fixed_points(
    act: Activation,
    sigma_w2: np.ndarray,
    sigma_b2: np.ndarray,
    q_input: float | np.ndarray,
    *,
    max_large_q_points: int | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """q* reached from ``q_input`` (NaN when it diverges) and the regime, per point.

    The length map L is increasing, so its iterates from q_input move
    monotonically to the first fixed point in their direction. That point is
    found as the first sign change of g(q) = L(q) − q on the tabulated grid
    beyond q_input (signs within rounding of 0 do not count: see
    :func:`_excess_sign`), then refined by Newton's method inside the bracket.
    When g has no sign change below q_input and g(0) = 0 (σ_b² = 0, φ(0) = 0),
    the map collapses to 0: geometrically when σ_w²·φ'(0)² < 1, like 1/l when
    it equals 1 (tanh at σ_w² = 1).

    With ``max_large_q_points``, the brackets are first checked by
    :func:`_check_large_q_work`, which refuses before any slow integral.
    """
    q_input = np.broadcast_to(np.asarray(q_input, dtype=float), sigma_w2.shape)
    if is_positively_homogeneous(act):
        return _homogeneous_length_fixed_points(act, sigma_w2, sigma_b2, q_input)

    q_star, regime, low, high, start = _length_brackets(
        act, sigma_w2, sigma_b2, q_input
    )
    bracketed = np.flatnonzero(np.isfinite(low))
    if max_large_q_points is not None:
        _check_large_q_work(act, sigma_w2, sigma_b2, low, high, max_large_q_points)
    q_star[bracketed] = _refine_length_fixed_points(
        act,
        sigma_w2[bracketed],
        sigma_b2[bracketed],
        low[bracketed],
        high[bracketed],
        start[bracketed],
    )
    regime[bracketed] = "converges"
    return q_star, regime


def _length_brackets(
    act: Activation,
    sigma_w2: np.ndarray,
    sigma_b2: np.ndarray,
    q_input: np.ndarray,
) -> tuple[np.ndarray, ...]:
    """Per point of :func:`_length_fixed_points`: q* where already known, the
    regime, and the bracket [low, high] (NaN when none) with Newton's start."""
    if sigma_w2.size > _FIXED_POINT_CHUNK:
        # The bracket search compares every point with the whole table.
        parts = [
            _length_brackets(act, sigma_w2[part], sigma_b2[part], q_input[part])
            for part in (
                slice(start, start + _FIXED_POINT_CHUNK)
                for start in range(0, sigma_w2.size, _FIXED_POINT_CHUNK)
            )
        ]
        return tuple(np.concatenate(arrays) for arrays in zip(*parts, strict=True))

    q_star = np.full(sigma_w2.shape, np.nan)
    regime = np.full(sigma_w2.shape, "diverges", dtype=object)
    at_input = _moments(act, q_input).second_moment
    direction = _excess_sign(at_input, sigma_w2, sigma_b2, q_input)
    settled = direction == 0
    q_star[settled] = q_input[settled]
    regime[settled] = "converges"

    table = _TABLE_SECOND_MOMENTS
    signs = _excess_sign(
        _length_table(act)[0][None, :],
        sigma_w2[:, None],
        sigma_b2[:, None],
        table[None, :],
    )
    at_zero = _length_map(
        _zero_variance_moments(_nonlinearity(act))[1], sigma_w2, sigma_b2
    )
    low = np.full(sigma_w2.shape, np.nan)
    high = np.full(sigma_w2.shape, np.nan)
    for point in np.flatnonzero(direction > 0):
        above = table > q_input[point]
        crossing = np.flatnonzero(above & (signs[point] < 0))
        if crossing.size == 0:
            continue
        high[point] = table[crossing[0]]
        before = np.flatnonzero(above & (table < high[point]) & (signs[point] > 0))
        low[point] = table[before[-1]] if before.size else q_input[point]
    for point in np.flatnonzero(direction < 0):
        below = table < q_input[point]
        crossing = np.flatnonzero(below & (signs[point] > 0))
        if crossing.size == 0 and at_zero[point] == 0:
            q_star[point] = 0.0
            regime[point] = "collapses"
            continue
        low[point] = table[crossing[-1]] if crossing.size else 0.0
        after = np.flatnonzero(below & (table > low[point]) & (signs[point] < 0))
        high[point] = table[after[0]] if after.size else q_input[point]

    tiny = np.flatnonzero(low == 0)
    # Below the table L is linear to rounding, L(q) ≈ L(0) + σ_w²·E[φ'(0)²]·q:
    # Newton starts at that line's fixed point, which may lie many decades
    # below the table (σ_b² = 1e-200 puts q* near 1e-200).
    start = 0.5 * (low + high)
    gain = sigma_w2[tiny] * _zero_variance_moments(_nonlinearity(act))[2]
    with np.errstate(divide="ignore"):
        linear = np.where(gain < 1, at_zero[tiny] / (1 - gain), start[tiny])
    start[tiny] = np.clip(linear, np.finfo(float).tiny, high[tiny])

    return q_star, regime, low, high, start


def _check_large_q_work(
    act: Activation,
    sigma_w2: np.ndarray,
    sigma_b2: np.ndarray,
    low: np.ndarray,
    high: np.ndarray,
    max_points: int,
) -> None:
    """Refuse, before any slow integral, fixed points beyond the Gauss rules.

    A point whose bracket reaches above :func:`_slow_second_moment` counts as
    one, or as :data:`_LARGE_Q_CORRELATION_POINTS` when it may be chaotic:
    σ_w²·E[φ'²] above 1 at either end of its bracket (E[φ'(√q z)²] read off
    the length table in log q). Over ``max_points``, :class:`InvalidInput`
    names σ_b² (q* ≥ σ_b²) when such points reach down to the smallest σ_w² of
    the grid, else σ_w², with that axis's largest value.
    """
    limit = _slow_second_moment(act)
    with np.errstate(invalid="ignore"):
        large = high > limit
    count = int(np.count_nonzero(large))
    if count == 0:
        return

    ends = np.log(np.maximum(np.stack([low[large], high[large]]), 1e-300))
    slope = np.interp(ends, np.log(_TABLE_SECOND_MOMENTS), _length_table(act)[1])
    chaotic = int(np.count_nonzero(sigma_w2[large] * slope.max(axis=0) > 1.0))
    cost = count + (_LARGE_Q_CORRELATION_POINTS - 1) * chaotic
    if cost <= max_points:
        return

    by_bias = sigma_w2[large].min() <= sigma_w2.min()
    name, axis = ("sigma_b2", sigma_b2) if by_bias else ("sigma_w2", sigma_w2)
    chaotic_part = (
        f", {chaotic} of them chaotic (each counts {_LARGE_Q_CORRELATION_POINTS}:"
        " a composite polar integral for c*)"
        if chaotic
        else ""
    )
    raise InvalidInput.at(
        (f"{name}_values",),
        f"{count} of the grid's points reach a fixed point q* beyond {limit:g},"
        f" where {act.name} needs the slow adaptive integrals{chaotic_part}; they"
        f" count {cost}, and a phase diagram may count at most {max_points}"
        f" (about 10 s of work): lower the largest {name} (q* grows with"
        " σ_w² and is at least σ_b²) or ask for fewer steps",
        value=float(axis.max()),
        allowed=f"grids whose points beyond q* = {limit:g} count at most {max_points}",
    )


def _excess_sign(
    second_moment: np.ndarray,
    sigma_w2: np.ndarray,
    sigma_b2: np.ndarray,
    q: np.ndarray,
) -> np.ndarray:
    """The sign of g(q) = L(q) − q, or 0 where |g| is within 1e-13 of L(q).

    L is computed to about 1e-14 of itself, so a smaller g has no reliable
    sign: such a map is neutral to the precision of the quadrature (softplus
    at σ_w² = 2, where g(q) ~ 1/√q, or a fixed point with χ_q within 1e-12
    of 1), and it is not taken for a crossing.
    """
    length = _length_map(second_moment, sigma_w2, sigma_b2)
    excess = length - q
    return np.where(
        np.abs(excess) <= _LENGTH_MAP_RESOLUTION * length, 0.0, np.sign(excess)
    )


def _homogeneous_length_fixed_points(
    act: Activation, sigma_w2: np.ndarray, sigma_b2: np.ndarray, q_input: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """q* of the linear length map q' = k·q + σ_b², k = σ_w²·E[φ(z)²].

    k < 1: q* = σ_b²/(1 − k) (0 when σ_b² = 0); k = 1 (within 1e-9) and
    σ_b² = 0: every q is fixed, so q* = q_input; otherwise q grows without
    bound (He et al. 2015, arXiv 1502.01852, section 2.2).
    """
    gain = sigma_w2 * gaussian_moments(act, 1.0).second_moment
    neutral = (np.abs(gain - 1.0) <= PHASE_TOLERANCE) & (sigma_b2 == 0)
    with np.errstate(divide="ignore", invalid="ignore"):
        q_star = np.where(gain < 1.0, sigma_b2 / (1.0 - gain), np.nan)
    q_star = np.where(neutral, q_input, q_star)
    q_star = np.where(q_star <= MAX_SECOND_MOMENT, q_star, np.nan)
    regime = np.where(
        neutral,
        "neutral",
        np.where(
            np.isnan(q_star),
            "diverges",
            np.where(q_star == 0, "collapses", "converges"),
        ),
    ).astype(object)
    return q_star, regime


@functools.lru_cache(maxsize=64)
def _slow_second_moment(act: Activation) -> float:
    """The smallest tabulated q at which φ's half-line Gauss rules stop
    converging, or 1e4 feature widths squared, where they are no longer
    trusted, if that comes first: beyond it every integral is slow."""
    limit = _GAUSS_RULE_MAX_SHARPNESS * _feature_scale(act) ** 2
    table = _TABLE_SECOND_MOMENTS
    table = table[table <= limit]
    _, pending = _half_line_moments(_nonlinearity(act), table)

    return float(table[pending[0]]) if pending.size else limit


@functools.lru_cache(maxsize=64)
def _length_table(act: Activation) -> tuple[np.ndarray, np.ndarray]:
    """E[φ(√q z)²] and E[φ'(√q z)²] on the tabulated q grid, cached per activation."""
    moments = _moments(act, _TABLE_SECOND_MOMENTS)
    second_moment = moments.second_moment
    derivative = moments.derivative_second_moment
    second_moment.flags.writeable = False
    derivative.flags.writeable = False
    return second_moment, derivative


def _refine_length_fixed_points(
    act: Activation,
    sigma_w2: np.ndarray,
    sigma_b2: np.ndarray,
    low: np.ndarray,
    high: np.ndarray,
    start: np.ndarray,
) -> np.ndarray:
    """The root of g(q) = σ_w²E[φ²] + σ_b² − q in each bracket with a sign change.

    Newton's method with g' = χ_q − 1, falling back to bisection whenever a
    step leaves the bracket; stops when a step is below 4 ulps of q.
    """

    def excess(q: np.ndarray, active: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        moments = _moments(act, q)
        value = _length_map(moments.second_moment, sigma_w2[active], sigma_b2[active])
        slope = _chi_q(moments.length_slope, sigma_w2[active]) - 1.0
        return value - q, slope

    return _bracketed_newton(excess, low, high, start)


def _bracketed_newton(
    function: Callable[[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]],
    low: np.ndarray,
    high: np.ndarray,
    start: np.ndarray | None = None,
) -> np.ndarray:
    """Roots of ``function`` (value and derivative at x for the active indices),
    one per bracket [low, high] across which it changes sign, by Newton steps
    from ``start`` (default the middle) kept inside the shrinking bracket.

    A step that would leave the bracket bisects it instead: at its geometric
    middle when it spans more than a factor 4 (so a bracket [0, b] or one over
    many decades shrinks by decades, not by halves), else at its middle.
    """
    low, high = low.astype(float), high.astype(float)
    sign_low = np.sign(function(low, np.arange(low.size))[0])
    x = 0.5 * (low + high) if start is None else start.astype(float)
    root = np.where(sign_low == 0, low, np.nan)
    active = np.flatnonzero(sign_low != 0)
    for _ in range(_MAX_REFINEMENTS):
        value, slope = function(x[active], active)
        exact = value == 0
        same = np.sign(value) == sign_low[active]
        low[active] = np.where(same, x[active], low[active])
        high[active] = np.where(same | exact, high[active], x[active])
        with np.errstate(divide="ignore", invalid="ignore"):
            step = x[active] - value / slope
        a, b = (
            np.minimum(low[active], high[active]),
            np.maximum(low[active], high[active]),
        )
        inside = (step > a) & (step < b)
        with np.errstate(invalid="ignore"):
            middle = np.where(
                b > 4 * a, np.where(a > 0, np.sqrt(a * b), b / 16), 0.5 * (a + b)
            )
        proposal = np.where(inside, step, middle)
        done = (
            exact
            | (
                np.abs(proposal - x[active])
                <= 4 * np.finfo(float).eps * np.abs(x[active])
            )
            | (b - a <= 4 * np.finfo(float).eps * b)
        )
        root[active[done]] = np.where(exact, x[active], proposal)[done]
        x[active] = proposal
        active = active[~done]
        if active.size == 0:
            break
    root[active] = x[active]

    return root


def _correlation_fixed_points(
    act: Activation,
    q_star: np.ndarray,
    sigma_w2: np.ndarray,
    sigma_b2: np.ndarray,
    *,
    coarse: bool = False,
) -> tuple[np.ndarray, np.ndarray]:
    """c* in [0, 1) and χ_c(c*) where χ₁ > 1, by Newton's method from c = 0.

    g(c) = c'(c) − c is convex on [0, 1] with g(0) ≥ 0 and g(1) = 0, g'(1) > 0,
    so Newton from 0 rises monotonically to the root below 1. Every step uses
    the checked polar rules; with ``coarse`` (the phase diagram) the steps use
    the 16 × 32 rule and one checked step at the end corrects c*, so c* agrees
    with the checked iteration to about the square of the coarse rule's error
    (below 1e-14) and χ_c to about 1e-12.
    """

    def excess(
        c: np.ndarray, active: np.ndarray, rule: tuple[int, int] | None
    ) -> tuple[np.ndarray, np.ndarray]:
        q = q_star[active]
        cross, derivative = _bivariate(act, q, q, c, rule)
        value = _correlation_map(cross, q, q, sigma_w2[active], sigma_b2[active])
        return value - c, _chi_c(derivative, sigma_w2[active]) - 1.0

    rule = _COARSE_POLAR if coarse else None
    c = np.zeros(q_star.size)
    active = np.arange(q_star.size)
    for _ in range(_MAX_REFINEMENTS):
        value, slope = excess(c[active], active, rule)
        with np.errstate(divide="ignore", invalid="ignore"):
            step = np.where(slope < 0, -value / slope, 0.0)
        step = np.clip(step, 0.0, 1.0 - c[active])
        c[active] += step
        done = (value <= 0) | (step <= 4 * np.finfo(float).eps)
        active = active[~done]
        if active.size == 0:
            break

    everything = np.arange(q_star.size)
    value, slope = excess(c, everything, None)
    if not coarse:
        return c, slope + 1.0

    # One checked Newton step moves c* by about the coarse rule's error. χ_c
    # follows it by the coarse rule's own change over that step: the coarse
    # rule's error varies smoothly with c, so it cancels in the difference.
    with np.errstate(divide="ignore", invalid="ignore"):
        corrected = np.clip(c - np.where(slope < 0, value / slope, 0.0), 0.0, 1.0)
    _, before = excess(c, everything, rule)
    _, after = excess(corrected, everything, rule)
    return corrected, slope + 1.0 + (after - before)


def _near_critical_correlation_fixed_points(
    act: Activation,
    q_star: np.ndarray,
    sigma_w2: np.ndarray,
    chi_1: np.ndarray,
    *,
    coarse: bool = False,
) -> tuple[np.ndarray, np.ndarray]:
    """c* and χ_c(c*) for 1 < χ₁ ≤ 1 + 1e-3, where c* lies close to 1.

    Near its root g(c) = c'(c) − c is of order (1 − c)² (smooth φ) or smaller
    (a kink in φ'), which sinks below the quadrature's resolution as χ₁ → 1.
    Instead: c'(c) = 1 − s(c)·(1 − c), where the secant slope from c to 1 is,
    by Price's theorem,
    s(c) = σ_w²·∫_0^1 K(1 − (1 − c)u²)·2u du,  K(t) = E[φ'(u_a)φ'(u_b)] at
    correlation t (t = 1 − (1 − c)u² keeps the integrand smooth when K has a
    √(1 − t) term), and c* solves s(c*) = 1 with no cancellation: 8
    Gauss–Legendre nodes in u. Since χ₁ − s(c) grows like a power of 1 − c
    (the first or the half), ln(χ₁ − s) is nearly linear in λ = ln √(1 − c),
    and the Illinois method on ln(χ₁ − s) = ln(χ₁ − 1) over 1 − c in
    [1e-15, 1] takes a few steps. A root below 1e-15 leaves c* = 1.0 and χ_c
    unresolved (NaN). K by the checked polar rules, or with ``coarse`` (the
    phase diagram) by the 64 × 128 rule alone, which leaves 1 − χ_c good to
    about 1e-10.
    """
    nodes, weights = leggauss(_SECANT_NODES)
    u = 0.5 * (nodes + 1.0)
    weights = 0.5 * weights * 2 * u
    rule = _NEAR_CRITICAL_POLAR if coarse else None
    kernel_only = _derivative_only(_nonlinearity(act))
    target = np.log(chi_1 - 1.0)

    def kernel(c: np.ndarray, points: np.ndarray) -> np.ndarray:
        q = np.broadcast_to(q_star[points].reshape(-1, *(1,) * (c.ndim - 1)), c.shape)
        _, derivative = _numeric_bivariate(
            kernel_only, q.ravel(), q.ravel(), c.ravel(), rule
        )
        return derivative.reshape(c.shape)

    def excess(log_root_gap: np.ndarray, points: np.ndarray) -> np.ndarray:
        """ln(χ₁ − s) − ln(χ₁ − 1) at 1 − c = e^{2λ}: increasing in λ."""
        gap = np.exp(2.0 * log_root_gap)[:, None]
        secant = sigma_w2[points] * (kernel(1.0 - gap * u * u, points) * weights).sum(
            axis=-1
        )
        below = np.maximum(chi_1[points] - secant, np.finfo(float).tiny)
        return np.log(below) - target[points]

    everything = np.arange(q_star.size)
    low = np.full(q_star.size, 0.5 * math.log(1e-15))
    high = np.zeros(q_star.size)
    value_low = excess(low, everything)
    value_high = excess(high, everything)
    # At c = 0, s = 1 − c'(0): the root is c* = 0 when c'(0) = 0 (odd φ, no
    # bias); below the smallest gap it cannot be told from 1.
    log_root_gap = np.where(value_high <= 0, 0.0, np.nan)
    unresolved = (value_low >= 0) & np.isnan(log_root_gap)
    log_root_gap[unresolved] = -np.inf
    active = np.flatnonzero(np.isnan(log_root_gap))
    side = np.zeros(q_star.size)
    for _ in range(_MAX_REFINEMENTS):
        a, b = low[active], high[active]
        fa, fb = value_low[active], value_high[active]
        x = (a * fb - b * fa) / (fb - fa)
        fx = excess(x, active)
        below = fx < 0
        # Illinois: halve the value kept at an end that stays twice running.
        low[active] = np.where(below, x, a)
        value_low[active] = np.where(below, fx, np.where(side[active] < 0, fa / 2, fa))
        high[active] = np.where(below, b, x)
        value_high[active] = np.where(below, np.where(side[active] > 0, fb / 2, fb), fx)
        side[active] = np.where(below, 1.0, -1.0)
        done = (np.abs(high[active] - low[active]) <= 1e-12) | (np.abs(fx) <= 1e-14)
        log_root_gap[active[done]] = x[done]
        active = active[~done]
        if active.size == 0:
            break
    log_root_gap[active] = 0.5 * (low[active] + high[active])

    c_star = 1.0 - np.exp(2.0 * log_root_gap)
    chi_c = _chi_c(kernel(c_star, everything), sigma_w2)
    chi_c[unresolved] = np.nan
    return c_star, chi_c


@functools.lru_cache(maxsize=256)
def _derivative_only(function: _Nonlinearity) -> _Nonlinearity:
    """``function`` with φ replaced by 0: the polar rules then spend their work
    on E[φ'(u_a)φ'(u_b)] alone (E[φ(u_a)φ(u_b)] comes out 0)."""
    return _Nonlinearity(np.zeros_like, function.derivative, function.feature_scale)


# --- edge of chaos ------------------------------------------------------------


def edge_of_chaos(
    act: Activation, sigma_b2: float, *, q_input: float | None = None
) -> float | None:
    """σ_w² on the edge of chaos for this σ_b²: χ₁ = 1 at the fixed point q*.

    At the edge both σ_w²·E[φ'(√q* z)²] = 1 and q* = σ_w²·E[φ(√q* z)²] + σ_b²,
    so σ_w² = 1/E[φ'²] and q* solves q − E[φ²]/E[φ'²] = σ_b², a root-finding
    problem in q alone. A root counts when q* attracts the length map (it
    returns there from just above and just below); with ``q_input`` given, only
    when the length map started at ``q_input`` reaches it, as in
    :func:`fixed_point`. The smallest such σ_w² up to 1e4 is returned, else
    None. The two differ for SiLU, GELU and Mish: their edge lies where unit
    inputs already escape to a diverging q.

    For the ReLU family χ₁ does not depend on q, and the edge is the single
    point σ_w² = 1/E[φ'(z)²], σ_b² = 0 (Hayou, Doucet & Rousseau 2019, "On the
    Impact of the Activation Function on Deep Neural Networks Training", ICML,
    section 3): with σ_b² > 0 q* diverges there and None is returned.
    Softplus has no edge; sigmoid has one only near σ_w² = 103.
    """
    sigma_b2 = _check_variance("sigma_b2", sigma_b2)
    if q_input is not None:
        q_input = _check_second_moment("q_input", q_input, positive=True)
    sigma_w2, _ = _edges_of_chaos(act, np.array([sigma_b2]), q_input)
    return _optional(sigma_w2[0])


def _edges_of_chaos(
    act: Activation, sigma_b2: np.ndarray, q_input: float | None
) -> tuple[np.ndarray, np.ndarray]:
    """σ_w² and q* on the edge of chaos for each σ_b² (NaN where there is none)."""
    sigma_w2 = np.full(sigma_b2.shape, np.nan)
    q_star = np.full(sigma_b2.shape, np.nan)
    if is_positively_homogeneous(act):
        derivative = gaussian_moments(act, 1.0).derivative_second_moment
        on_edge = sigma_b2 == 0
        sigma_w2[on_edge] = _edge_sigma_w2(derivative)
        q_star[on_edge] = math.nan if q_input is None else q_input
        return sigma_w2, q_star

    target, q_edge = _edge_candidates(act, sigma_b2)
    candidate_w2 = _edge_sigma_w2(_moments(act, q_edge).derivative_second_moment)
    usable = candidate_w2 <= MAX_EDGE_SIGMA_W2
    target, q_edge, candidate_w2 = target[usable], q_edge[usable], candidate_w2[usable]

    def returns_from(start: np.ndarray) -> np.ndarray:
        reached, _ = _length_fixed_points(act, candidate_w2, sigma_b2[target], start)
        return np.isclose(reached, q_edge, rtol=1e-7, atol=1e-12)

    if q_input is None:
        nearby = np.where(q_edge > 0, q_edge, 1e-6 * _feature_scale(act) ** 2)
        valid = returns_from(nearby * (1 - 1e-3)) & returns_from(nearby * (1 + 1e-3))
    else:
        valid = returns_from(np.full(q_edge.shape, q_input))
    for index in np.argsort(candidate_w2)[::-1]:
        if valid[index]:
            sigma_w2[target[index]] = candidate_w2[index]
            q_star[target[index]] = q_edge[index]

    return sigma_w2, q_star


def _edge_sigma_w2(derivative_second_moment: np.ndarray) -> np.ndarray:
    """σ_w² = 1/E[φ'(√q* z)²]: where χ₁ = σ_w²·E[φ'²] equals 1 (Schoenholz et al.
    2017, arXiv 1611.01232, section 3)."""
    return 1.0 / derivative_second_moment


def _edge_sigma_b2(
    q: np.ndarray, second_moment: np.ndarray, derivative_second_moment: np.ndarray
) -> np.ndarray:
    """σ_b² = q − E[φ²]/E[φ'²]: the bias variance that makes q the length map's
    fixed point at the edge σ_w² = 1/E[φ'²], from q = σ_w²·E[φ²] + σ_b²."""
    return q - second_moment / derivative_second_moment


def _edge_candidates(
    act: Activation, sigma_b2: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Roots q of H(q) = q − E[φ²]/E[φ'²] = σ_b², with the index of their σ_b².

    Sign changes of H − σ_b² on the tabulated grid, ignoring values within
    rounding of 0 (H is a difference of two nearly equal numbers at small q),
    refined by bisection; plus q = 0 for σ_b² = 0 when φ(0) = 0, where H
    tends to 0.
    """
    table = _TABLE_SECOND_MOMENTS
    offset = _edge_sigma_b2(table, *_length_table(act))
    noise = 16 * np.finfo(float).eps * table
    targets, lows, highs = [], [], []
    for target, value in enumerate(sigma_b2):
        difference = offset - value
        clear = np.flatnonzero(np.abs(difference) > noise)
        changes = np.flatnonzero(np.diff(np.sign(difference[clear])) != 0)
        targets += [target] * changes.size
        lows += list(table[clear[changes]])
        highs += list(table[clear[changes + 1]])
    target = np.array(targets, dtype=int)

    def excess(q: np.ndarray, active: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        moments = _moments(act, q)
        value = _edge_sigma_b2(
            q, moments.second_moment, moments.derivative_second_moment
        )
        # No derivative: the bracket is bisected.
        return value - sigma_b2[target[active]], np.full(q.size, np.nan)

    q_edge = (
        _bracketed_newton(excess, np.array(lows), np.array(highs))
        if target.size
        else np.empty(0)
    )

    at_zero, _, derivative_at_zero, _ = _zero_variance_moments(_nonlinearity(act))
    if at_zero == 0.0 and derivative_at_zero > 0:
        origin = np.flatnonzero(sigma_b2 == 0)
        target = np.concatenate([target, origin])
        q_edge = np.concatenate([q_edge, np.zeros(origin.size)])

    return target, q_edge


# --- phase diagram ------------------------------------------------------------


@dataclass(frozen=True)
class PhaseDiagram:
    """χ₁, q*, c* and ξ_c over a grid of (σ_w², σ_b²), and the edge of chaos.

    Grids are indexed ``[i][j]`` with i over ``sigma_b2`` (rows) and j over
    ``sigma_w2`` (columns); None where a value is undefined or infinite, as in
    :class:`FixedPoint`. ``edge_sigma_w2[i]`` and ``edge_q_star[i]`` give the
    edge of chaos for ``sigma_b2[i]`` (None where there is none), as
    :func:`edge_of_chaos` gives it for the same ``q_input``. Every value
    is :func:`fixed_point`'s for that point, except that c* and ξ_c on the
    chaotic side come from Newton steps on a coarser rule with a final checked
    correction: c* and χ_c agree with :func:`fixed_point` to about 1e-12, and
    within 1e-3 of the edge of chaos (χ₁ ≤ 1.001) to about 1e-10.
    """

    activation: Activation
    sigma_w2: tuple[float, ...]
    sigma_b2: tuple[float, ...]
    q_input: float
    chi_1: tuple[tuple[float, ...], ...]
    q_star: tuple[tuple[float | None, ...], ...]
    c_star: tuple[tuple[float | None, ...], ...]
    xi_c: tuple[tuple[float | None, ...], ...]
    phase: tuple[tuple[Phase, ...], ...]
    edge_sigma_w2: tuple[float | None, ...]
    edge_q_star: tuple[float | None, ...]


def phase_diagram(
    act: Activation,
    sigma_w2_values: Sequence[float],
    sigma_b2_values: Sequence[float],
    *,
    q_input: float = 1.0,
) -> PhaseDiagram:
    """The phase diagram of a deep stack of ``act`` (Schoenholz et al. 2017,
    arXiv 1611.01232, figure 1): every (σ_w², σ_b²) of the grid solved at once.

    At most 256 values per axis; σ_w² > 0, σ_b² ≥ 0. A grid with more points
    beyond the Gauss rules than :data:`MAX_PHASE_DIAGRAM_LARGE_Q_POINTS` allows
    is refused with :class:`InvalidInput` before any of them is computed.
    """
    sigma_w2 = _check_axis("sigma_w2_values", sigma_w2_values, positive=True)
    sigma_b2 = _check_axis("sigma_b2_values", sigma_b2_values, positive=False)
    q_input = _check_second_moment("q_input", q_input, positive=True)

    grid_w2, grid_b2 = np.meshgrid(sigma_w2, sigma_b2)
    points = _fixed_points(
        act,
        grid_w2.ravel(),
        grid_b2.ravel(),
        q_input,
        coarse=True,
        max_large_q_points=MAX_PHASE_DIAGRAM_LARGE_Q_POINTS,
    )
    xi_c = _depth_scales(points.chi_c)
    edge_w2, edge_q = _edges_of_chaos(act, sigma_b2, q_input)

    shape = grid_w2.shape

    def grid(values: np.ndarray, convert: Callable = _optional) -> tuple:
        rows = np.asarray(values).reshape(shape)
        return tuple(tuple(convert(value) for value in row) for row in rows)

    return PhaseDiagram(
        activation=act,
        sigma_w2=tuple(float(v) for v in sigma_w2),
        sigma_b2=tuple(float(v) for v in sigma_b2),
        q_input=q_input,
        chi_1=grid(points.chi_1, float),
        q_star=grid(points.q_star),
        c_star=grid(points.c_star),
        xi_c=grid(xi_c),
        phase=grid(_phases(points.chi_1), str),
        edge_sigma_w2=tuple(_optional(v) for v in edge_w2),
        edge_q_star=tuple(_optional(v) for v in edge_q),
    )
