"""Mean-field maps: checkpoints, scipy references, exact erf forms, properties.

References are independent of the module: one-dimensional expectations by
scipy.integrate.quad and two-dimensional ones by scipy.integrate.dblquad over
the two standard normals, split where a pre-activation changes sign, on
scalar activations written here with math and scipy.special; fixed points by
scipy.optimize.brentq on those. The erf network has exact kernels at every
q and c (Williams 1997, "Computing with infinite networks"), which test the
quadrature down to rounding, large q included.
"""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from scipy import integrate, optimize, special

from initlab.core import meanfield
from initlab.core.activations import (
    ACTIVATION_NAMES,
    SELU_ALPHA,
    SELU_SCALE,
    make_activation,
)
from initlab.core.errors import InvalidInput, LimitExceeded
from initlab.core.meanfield import (
    FixedPoint,
    chi_1,
    chi_c,
    chi_q,
    correlation_map,
    cross_moment,
    depth_scale,
    edge_of_chaos,
    fixed_point,
    length_map,
    phase_diagram,
    phase_of,
    post_activation_moments,
)

RELU = make_activation("relu")
TANH = make_activation("tanh")
NON_HOMOGENEOUS = tuple(
    name for name in ACTIVATION_NAMES if name not in ("identity", "relu", "leaky_relu")
)
SQRT_2PI = math.sqrt(2 * math.pi)


# --- independent references ---------------------------------------------------


def _sigmoid(x: float) -> float:
    return 1 / (1 + math.exp(-x)) if x >= 0 else math.exp(x) / (1 + math.exp(x))


# Scalar φ and φ' written from the papers with math and scipy.special.
REFERENCE = {
    "tanh": (math.tanh, lambda x: 1 / math.cosh(x) ** 2 if abs(x) < 300 else 0.0),
    "sigmoid": (_sigmoid, lambda x: _sigmoid(x) * _sigmoid(-x)),
    "softsign": (lambda x: x / (1 + abs(x)), lambda x: 1 / (1 + abs(x)) ** 2),
    "selu": (
        lambda x: SELU_SCALE * (x if x > 0 else SELU_ALPHA * math.expm1(x)),
        lambda x: SELU_SCALE * (1.0 if x > 0 else SELU_ALPHA * math.exp(x)),
    ),
    "elu": (
        lambda x: x if x > 0 else math.expm1(x),
        lambda x: 1.0 if x > 0 else math.exp(x),
    ),
    "gelu": (
        lambda x: 0.5 * x * math.erfc(-x / math.sqrt(2)),
        lambda x: (
            0.5 * math.erfc(-x / math.sqrt(2)) + x * math.exp(-x * x / 2) / SQRT_2PI
        ),
    ),
    "softplus": (
        lambda x: max(x, 0.0) + math.log1p(math.exp(-abs(x))),
        _sigmoid,
    ),
    "relu": (lambda x: max(x, 0.0), lambda x: 1.0 if x > 0 else 0.0),
    "leaky_relu": (
        lambda x: x if x > 0 else 0.2 * x,
        lambda x: 1.0 if x > 0 else 0.2,
    ),
    "identity": (lambda x: x, lambda x: 1.0),
}


def reference_expectation(f, q: float) -> float:
    """E f(√q z) by quad on [−40, 40], split at 0 and at the feature's scale."""
    root = math.sqrt(q)

    def integrand(z: float) -> float:
        return f(root * z) * math.exp(-0.5 * z * z) / SQRT_2PI

    edges = sorted({0.0, 40.0, *(k / root for k in (1, 8, 64) if k / root < 40)})
    total = 0.0
    for low, high in zip(edges[:-1], edges[1:], strict=True):
        for a, b in ((low, high), (-high, -low)):
            total += integrate.quad(integrand, a, b, epsabs=0, epsrel=1e-13, limit=200)[
                0
            ]
    return total


def reference_bivariate(f, g, q_a: float, q_b: float, c: float) -> float:
    """E[f(u_a) g(u_b)] by dblquad over (z₁, z₂), split where u_a or u_b is 0."""
    s = math.sqrt((1 - c) * (1 + c))
    root_a, root_b = math.sqrt(q_a), math.sqrt(q_b)

    def integrand(z2: float, z1: float) -> float:
        density = math.exp(-0.5 * (z1 * z1 + z2 * z2)) / (2 * math.pi)
        return f(root_a * z1) * g(root_b * (c * z1 + s * z2)) * density

    def kink(z1: float) -> float:
        return -c * z1 / s

    limit = 10.0
    total = 0.0
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", integrate.IntegrationWarning)
        for low, high in ((-limit, 0.0), (0.0, limit)):
            for inner_low, inner_high in (
                (lambda _: -limit, kink),
                (kink, lambda _: limit),
            ):
                total += integrate.dblquad(
                    integrand, low, high, inner_low, inner_high, epsabs=0, epsrel=1e-12
                )[0]
    return total


def reference_fixed_point(name: str, sigma_w2: float, sigma_b2: float) -> float:
    """q* of a bounded φ: brentq on σ_w²E[φ²] + σ_b² − q over (0, σ_w² + σ_b² + 1]."""
    f = REFERENCE[name][0]

    def excess(q: float) -> float:
        return sigma_w2 * reference_expectation(lambda x: f(x) ** 2, q) + sigma_b2 - q

    return optimize.brentq(
        excess, 1e-12, sigma_w2 + sigma_b2 + 1, xtol=1e-15, rtol=1e-14
    )


def reference_fixed_point_unbounded(name, sigma_w2, low, high):
    """q* by brentq on σ_w²E[φ²] − q over a bracket [low, high] (σ_b² = 0)."""
    f = REFERENCE[name][0]

    def excess(q: float) -> float:
        return sigma_w2 * reference_expectation(lambda x: f(x) ** 2, q) - q

    return optimize.brentq(excess, low, high, xtol=1e-12, rtol=1e-14)


ERF = meanfield._Nonlinearity(
    special.erf, lambda x: 2 / math.sqrt(math.pi) * np.exp(-x * x), 1.0
)


# --- the quadrature rules --------------------------------------------------------


@pytest.mark.parametrize("power", [0, 1])
@pytest.mark.parametrize("count", [16, 64, 256])
def test_half_line_gauss_rules_integrate_polynomials_exactly(power, count):
    nodes, weights = meanfield._half_line_rule(power, count)

    assert np.all(nodes > 0)
    assert np.all(weights > 0)
    # ∫_0^∞ r^k e^{−r²/2} dr = 2^{(k−1)/2}·Γ((k + 1)/2), up to degree 2·count − 1
    # to 1e-11 relative, in logarithms since the moments pass 1e300.
    for degree in sorted({0, 1, 2, 7, min(40, count), count, 2 * count - 1}):
        k = degree + power
        exact = 0.5 * (k - 1) * math.log(2) + math.lgamma(0.5 * (k + 1))
        terms = np.log(weights) + degree * np.log(nodes)
        value = terms.max() + math.log(math.fsum(np.exp(terms - terms.max())))
        assert value == pytest.approx(exact, abs=1e-11)


# --- the checkpoints of signal-propagation.md -----------------------------------


@given(st.floats(1e-6, 1e9))
def test_relu_with_he_variance_keeps_the_second_moment_exactly(q):
    assert length_map(RELU, q, 2.0, 0.0) == q
    assert chi_1(RELU, q, 2.0) == 1.0

    point = fixed_point(RELU, 2.0, 0.0, q_input=q)
    assert point.q_star == q
    assert point.length_regime == "neutral"
    assert point.phase == "critical"
    assert (point.c_star, point.chi_c, point.xi_c, point.xi_grad) == (
        1.0,
        1.0,
        None,
        None,
    )


def test_tanh_fixed_point_checkpoint():
    point = fixed_point(TANH, 1.5, 0.05)

    assert point.q_star == pytest.approx(0.418037, abs=5e-7)
    assert point.chi_1 == pytest.approx(0.938636, abs=5e-7)
    assert point.phase == "ordered"
    assert point.length_regime == "converges"
    reference_q = reference_fixed_point("tanh", 1.5, 0.05)
    assert point.q_star == pytest.approx(reference_q, rel=1e-12)
    derivative = REFERENCE["tanh"][1]
    reference_chi = 1.5 * reference_expectation(
        lambda x: derivative(x) ** 2, reference_q
    )
    assert point.chi_1 == pytest.approx(reference_chi, rel=1e-12)
    # Ordered: c* = 1 and χ_c = χ₁, so ξ_c = ξ_∇ = −1/ln χ₁.
    assert point.c_star == 1.0
    assert point.chi_c == point.chi_1
    assert point.xi_grad == pytest.approx(-1 / math.log(reference_chi), rel=1e-10)
    assert point.xi_c == point.xi_grad


def test_tanh_edge_of_chaos_checkpoint():
    sigma_w2 = edge_of_chaos(TANH, 0.05)

    assert sigma_w2 == pytest.approx(1.760955, abs=5e-7)
    point = fixed_point(TANH, sigma_w2, 0.05)
    assert point.q_star == pytest.approx(0.570048, abs=5e-7)
    assert point.chi_1 == pytest.approx(1.0, abs=1e-12)
    assert point.phase == "critical"

    # Independently: brentq on σ_w² ↦ χ₁(q*(σ_w²)) − 1 with scipy's q*.
    derivative = REFERENCE["tanh"][1]

    def excess(w2: float) -> float:
        q = reference_fixed_point("tanh", w2, 0.05)
        return w2 * reference_expectation(lambda x: derivative(x) ** 2, q) - 1

    assert sigma_w2 == pytest.approx(
        optimize.brentq(excess, 1.5, 2.0, xtol=1e-14), rel=1e-10
    )


@pytest.mark.parametrize("q", [1e-8, 1e-3, 0.5, 1.0, 7.0, 300.0, 5e4, 1e7, 1e11])
def test_erf_moments_match_their_closed_forms(q):
    moments = meanfield._numeric_moments(ERF, np.array([q]))

    # E[erf(u)²] = (2/π)·arcsin(2q/(1 + 2q)), E[erf'(u)²] = (4/π)/√(1 + 4q),
    # and d/dq of the first is (4/π)/((1 + 2q)√(1 + 4q)).
    assert moments.second_moment[0] == pytest.approx(
        2 / math.pi * math.asin(2 * q / (1 + 2 * q)), rel=1e-13
    )
    assert moments.derivative_second_moment[0] == pytest.approx(
        4 / math.pi / math.sqrt(1 + 4 * q), rel=1e-13
    )
    assert moments.length_slope[0] == pytest.approx(
        4 / math.pi / ((1 + 2 * q) * math.sqrt(1 + 4 * q)), rel=1e-12
    )
    assert abs(moments.mean[0]) < 1e-15


@pytest.mark.parametrize(
    "q_a, q_b, c",
    [
        (1.0, 1.0, 0.5),
        (0.3, 4.0, -0.8),
        (2.0, 2.0, 0.999999),
        (2.0, 2.0, -1.0),
        (50.0, 0.01, 0.3),
        (0.0, 3.0, 0.7),
        (900.0, 900.0, 0.95),
        (1e6, 1e6, 0.5),
        (1e9, 30.0, -0.2),
    ],
)
def test_erf_bivariate_expectations_match_the_arcsine_kernel(q_a, q_b, c):
    cross, derivative = meanfield._numeric_bivariate(
        ERF, np.array([q_a]), np.array([q_b]), np.array([c])
    )

    # Williams 1997: with P = (1 + 2q_a)(1 + 2q_b),
    # E[erf(u_a)erf(u_b)] = (2/π)·arcsin(2c√(q_a q_b)/√P) and
    # E[erf'(u_a)erf'(u_b)] = (4/π)/√(P − 4c²q_a q_b).
    product = (1 + 2 * q_a) * (1 + 2 * q_b)
    assert cross[0] == pytest.approx(
        2 / math.pi * math.asin(2 * c * math.sqrt(q_a * q_b) / math.sqrt(product)),
        rel=1e-12,
        abs=1e-15,
    )
    assert derivative[0] == pytest.approx(
        4 / math.pi / math.sqrt(product - 4 * c * c * q_a * q_b), rel=1e-12
    )


def test_pytorch_default_linear_init_puts_relu_deep_in_the_ordered_phase():
    # U(±1/√fan_in) has variance 1/(3·fan_in): σ_w² = 1/3.
    assert chi_1(RELU, 1.0, 1 / 3) == 1 / 6

    point = fixed_point(RELU, 1 / 3, 0.0)
    assert point.chi_1 == 1 / 6
    assert point.phase == "ordered"
    assert point.q_star == 0.0
    assert point.length_regime == "collapses"
    assert point.xi_grad == pytest.approx(1 / math.log(6), rel=1e-15)


@pytest.mark.parametrize(
    "q_a, q_b, c",
    [(1.0, 1.0, 0.3), (0.5, 2.0, -0.7), (3.0, 3.0, 0.999), (1.0, 4.0, 0.0)],
)
def test_relu_arc_cosine_correlation_map_against_dblquad(q_a, q_b, c):
    f = REFERENCE["relu"][0]
    reference_cross = reference_bivariate(f, f, q_a, q_b, c)

    assert cross_moment(RELU, q_a, q_b, c) == pytest.approx(reference_cross, rel=1e-10)
    sigma_w2, sigma_b2 = 1.7, 0.1
    reference = (sigma_w2 * reference_cross + sigma_b2) / math.sqrt(
        (sigma_w2 * q_a / 2 + sigma_b2) * (sigma_w2 * q_b / 2 + sigma_b2)
    )
    assert correlation_map(RELU, q_a, q_b, c, sigma_w2, sigma_b2) == pytest.approx(
        reference, rel=1e-10
    )
    derivative = REFERENCE["relu"][1]
    assert chi_c(RELU, q_a, c, 2.0) == pytest.approx(
        2 * reference_bivariate(derivative, derivative, q_a, q_a, c), rel=1e-10
    )


# --- one-dimensional expectations against quad ----------------------------------


@pytest.mark.parametrize(
    "name", ["tanh", "sigmoid", "softsign", "selu", "elu", "gelu", "softplus"]
)
@pytest.mark.parametrize("q", [1e-3, 0.5, 3.0, 50.0, 5e4])
def test_moments_against_quad(name, q):
    act = make_activation(name)
    f, derivative = REFERENCE[name]

    mean, second_moment = post_activation_moments(act, q)
    assert mean == pytest.approx(reference_expectation(f, q), rel=1e-11, abs=1e-15)
    assert second_moment == pytest.approx(
        reference_expectation(lambda x: f(x) ** 2, q), rel=1e-11
    )
    assert length_map(act, q, 1.3, 0.2) == pytest.approx(
        1.3 * second_moment + 0.2, rel=1e-15
    )
    assert chi_1(act, q, 1.3) == pytest.approx(
        1.3 * reference_expectation(lambda x: derivative(x) ** 2, q), rel=1e-11
    )
    assert chi_q(act, q, 1.3) == pytest.approx(
        1.3 * reference_expectation(lambda x: x * f(x) * derivative(x), q) / q,
        rel=1e-10,
    )


@pytest.mark.parametrize("name", ["tanh", "selu", "softplus", "gelu", "sigmoid"])
def test_limits_at_zero_second_moment(name):
    act = make_activation(name)
    f, derivative = REFERENCE[name]

    assert post_activation_moments(act, 0.0) == (f(0.0), f(0.0) ** 2)
    # The derivative's limit averages the two sides of a kink (SELU: λ and λα).
    sides = 0.5 * (derivative(1e-300) ** 2 + derivative(-1e-300) ** 2)
    assert chi_1(act, 0.0, 2.0) == pytest.approx(2 * sides, rel=1e-15)
    if f(0.0) == 0.0:
        assert chi_q(act, 0.0, 2.0) == chi_1(act, 0.0, 2.0)
    else:
        with pytest.raises(InvalidInput) as raised:
            chi_q(act, 0.0, 2.0)
        assert raised.value.problems[0].path == ("q",)


# --- two-dimensional expectations against dblquad ----------------------------


@pytest.mark.parametrize(
    "name, q_a, q_b, c",
    [
        ("tanh", 2.0, 0.7, 0.6),
        ("tanh", 30.0, 30.0, -0.9),
        ("selu", 1.0, 1.0, 0.5),
        ("selu", 0.4, 5.0, -0.3),
        ("elu", 3.0, 3.0, 0.95),
        ("softsign", 1.0, 2.0, 0.2),
        ("gelu", 1.5, 1.5, 0.8),
        ("sigmoid", 4.0, 0.5, 0.4),
        ("softplus", 2.0, 2.0, -0.5),
    ],
)
def test_bivariate_expectations_against_dblquad(name, q_a, q_b, c):
    act = make_activation(name)
    f, derivative = REFERENCE[name]

    assert cross_moment(act, q_a, q_b, c) == pytest.approx(
        reference_bivariate(f, f, q_a, q_b, c), rel=1e-10, abs=1e-14
    )
    _, kernel = meanfield._bivariate(act, q_a, q_b, c)
    assert kernel[0] == pytest.approx(
        reference_bivariate(derivative, derivative, q_a, q_b, c), rel=1e-10
    )


@pytest.mark.parametrize("name", ["leaky_relu", "identity"])
def test_homogeneous_closed_forms_against_dblquad(name):
    act = make_activation(name, {"negative_slope": 0.2} if name == "leaky_relu" else {})
    f, derivative = REFERENCE[name]

    for q_a, q_b, c in ((1.0, 2.0, 0.4), (0.7, 0.7, -0.6)):
        cross, kernel = meanfield._bivariate(act, q_a, q_b, c)
        assert cross[0] == pytest.approx(
            reference_bivariate(f, f, q_a, q_b, c), rel=1e-10
        )
        assert kernel[0] == pytest.approx(
            reference_bivariate(derivative, derivative, q_a, q_b, c), rel=1e-10
        )


# --- properties ------------------------------------------------------------------

activations = st.sampled_from(ACTIVATION_NAMES).map(make_activation)
second_moments = st.floats(1e-4, 200.0)
correlations = st.floats(-1.0, 1.0)
weight_variances = st.floats(0.05, 8.0)
bias_variances = st.floats(0.0, 2.0)


@settings(max_examples=60, deadline=None)
@given(
    activations,
    second_moments,
    second_moments,
    correlations,
    weight_variances,
    bias_variances,
)
def test_correlation_map_maps_correlations_into_minus_one_one(
    act, q_a, q_b, c, sigma_w2, sigma_b2
):
    value = correlation_map(act, q_a, q_b, c, sigma_w2, sigma_b2)

    assert -1 - 1e-13 <= value <= 1 + 1e-13


@settings(max_examples=25, deadline=None)
@given(activations, second_moments, weight_variances, bias_variances)
def test_identical_inputs_stay_identical(act, q, sigma_w2, sigma_b2):
    assert correlation_map(act, q, q, 1.0, sigma_w2, sigma_b2) == 1.0
    assert chi_c(act, q, 1.0, sigma_w2) == chi_1(act, q, sigma_w2)


@settings(max_examples=25, deadline=None)
@given(activations, st.floats(0.1, 3.0), st.floats(0.01, 0.5))
def test_c_equal_to_one_is_a_fixed_point_at_q_star(act, sigma_w2, sigma_b2):
    point = fixed_point(act, sigma_w2, sigma_b2)
    assume(point.q_star is not None and point.q_star > 0)

    assert (
        correlation_map(act, point.q_star, point.q_star, 1.0, sigma_w2, sigma_b2) == 1.0
    )


@settings(max_examples=60, deadline=None)
@given(
    activations,
    second_moments,
    st.floats(1.0001, 3.0),
    weight_variances,
    bias_variances,
)
def test_length_map_increases_with_q(act, q, factor, sigma_w2, sigma_b2):
    assert length_map(act, q, sigma_w2, sigma_b2) <= length_map(
        act, q * factor, sigma_w2, sigma_b2
    )


@settings(max_examples=40, deadline=None)
@given(activations, st.floats(0.01, 100.0), weight_variances)
def test_chi_q_is_the_slope_of_the_length_map(act, q, sigma_w2):
    step = 1e-5 * q
    slope = (
        length_map(act, q + step, sigma_w2, 0.0)
        - length_map(act, q - step, sigma_w2, 0.0)
    ) / (2 * step)

    assert chi_q(act, q, sigma_w2) == pytest.approx(slope, rel=1e-6, abs=1e-9)


@settings(max_examples=25, deadline=None)
@given(
    st.sampled_from(NON_HOMOGENEOUS).map(make_activation),
    st.floats(0.05, 20.0),
    st.floats(-0.95, 0.95),
    weight_variances,
)
def test_chi_c_is_the_slope_of_the_correlation_map_at_a_length_fixed_point(
    act, q, c, sigma_w2
):
    # With σ_b² = q − σ_w²E[φ²] the given q is the length map's fixed point.
    sigma_b2 = q - sigma_w2 * post_activation_moments(act, q)[1]
    assume(sigma_b2 >= 0)
    step = 1e-5

    slope = (
        correlation_map(act, q, q, c + step, sigma_w2, sigma_b2)
        - correlation_map(act, q, q, c - step, sigma_w2, sigma_b2)
    ) / (2 * step)
    assert chi_c(act, q, c, sigma_w2) == pytest.approx(slope, rel=1e-6, abs=1e-9)


def _iterate_length_map(act, sigma_w2, sigma_b2, q, layers=20000):
    """Plain iteration until it stalls, collapses (0.0) or passes 1e11 (None)."""
    for _ in range(layers):
        following = length_map(act, q, sigma_w2, sigma_b2)
        if abs(following - q) <= 1e-15 * q:
            return following
        if following < 1e-200 and sigma_b2 == 0:
            return 0.0
        if following > 1e11:
            return None
        q = following
    raise AssertionError(f"no convergence in {layers} layers")


@settings(max_examples=25, deadline=None)
@given(
    st.sampled_from(NON_HOMOGENEOUS).map(make_activation),
    st.floats(0.2, 4.0),
    st.one_of(st.just(0.0), st.floats(1e-3, 1.0)),
    st.floats(0.05, 20.0),
)
def test_fixed_point_is_where_iterating_the_length_map_goes(
    act, sigma_w2, sigma_b2, q_input
):
    point = fixed_point(act, sigma_w2, sigma_b2, q_input=q_input)
    # Where the map contracts fast enough for plain iteration to get there.
    assume(point.q_star and point.chi_q < 0.9)

    iterated = _iterate_length_map(act, sigma_w2, sigma_b2, q_input, layers=3000)
    assert iterated == pytest.approx(point.q_star, rel=1e-10, abs=1e-300)
    assert length_map(act, point.q_star, sigma_w2, sigma_b2) == pytest.approx(
        point.q_star, rel=1e-13
    )


@settings(
    max_examples=15, deadline=None, suppress_health_check=[HealthCheck.filter_too_much]
)
@given(
    st.sampled_from(["tanh", "softsign", "selu", "elu", "mish"]).map(make_activation),
    st.floats(1.2, 6.0),
    st.floats(0.0, 0.5),
)
def test_correlation_fixed_point_in_the_chaotic_phase(act, sigma_w2, sigma_b2):
    point = fixed_point(act, sigma_w2, sigma_b2)
    assume(point.phase == "chaotic" and point.q_star)

    q = point.q_star
    assert 0 <= point.c_star < 1
    assert correlation_map(
        act, q, q, point.c_star, sigma_w2, sigma_b2
    ) == pytest.approx(point.c_star, abs=1e-12)
    assert point.chi_c == pytest.approx(
        chi_c(act, q, point.c_star, sigma_w2), rel=1e-12
    )
    assert 0 < point.chi_c < 1
    assert point.xi_c == pytest.approx(-1 / math.log(point.chi_c), rel=1e-12)


@pytest.mark.parametrize(
    "name, limit", [("tanh", 1.0), ("softsign", 1.0), ("selu", 0.5)]
)
@pytest.mark.parametrize("above", [1e-7, 1e-5])
def test_correlation_fixed_point_just_above_the_edge_of_chaos(name, limit, above):
    # c'(1 − ε) ≈ 1 − χ₁ε + aε² (smooth φ) or + aε^{3/2} (φ' with a kink), so
    # near the edge χ_c(c*) = 1 − limit·(χ₁ − 1): limit 1, or 1/2 for SELU.
    act = make_activation(name)
    sigma_w2 = edge_of_chaos(act, 0.05) * (1 + above)

    point = fixed_point(act, sigma_w2, 0.05)
    assert point.phase == "chaotic"
    assert 0.99 < point.c_star < 1
    q = point.q_star
    # A few tens of ulp: numpy's vectorized tanh and exp differ in the last bits
    # between CPUs, and the map is evaluated again here.
    assert correlation_map(act, q, q, point.c_star, sigma_w2, 0.05) == pytest.approx(
        point.c_star, abs=1e-14
    )
    # The next terms shift the ratio by about √(χ₁ − 1) at most.
    ratio = (1 - point.chi_c) / (point.chi_1 - 1)
    assert ratio == pytest.approx(limit, rel=3 * math.sqrt(point.chi_1 - 1))
    assert point.xi_c > 0


def test_both_correlation_solvers_agree_where_they_meet():
    # Newton on c' − c above χ₁ = 1 + 1e-3, the secant slope below.
    sigma_w2 = np.array([edge_of_chaos(TANH, 0.05) * 1.004])
    sigma_b2 = np.array([0.05])
    q = np.array([fixed_point(TANH, float(sigma_w2[0]), 0.05).q_star])

    newton = meanfield._correlation_fixed_points(TANH, q, sigma_w2, sigma_b2)
    chi_1 = np.array([fixed_point(TANH, float(sigma_w2[0]), 0.05).chi_1])
    secant = meanfield._near_critical_correlation_fixed_points(TANH, q, sigma_w2, chi_1)
    # Near the edge c* moves by about 1/(χ₁ − 1) ≈ 10³ times a change in the
    # map, so last-bit differences between CPUs show at 1e-12.
    assert newton[0][0] == pytest.approx(secant[0][0], abs=1e-11)
    assert newton[1][0] == pytest.approx(secant[1][0], abs=1e-11)


def test_inside_the_critical_band_the_correlation_depth_scale_is_infinite():
    sigma_w2 = edge_of_chaos(TANH, 0.05) * (1 + 1e-10)

    point = fixed_point(TANH, sigma_w2, 0.05)
    assert point.phase == "critical"
    assert point.chi_1 > 1
    assert (point.c_star, point.chi_c, point.xi_c) == (1.0, 1.0, None)


# --- fixed points: regimes --------------------------------------------------------


@pytest.mark.parametrize("sigma_w2", [0.3, 0.9, 1.0])
def test_tanh_without_bias_collapses_when_sigma_w2_is_at_most_one(sigma_w2):
    point = fixed_point(TANH, sigma_w2, 0.0)

    assert point.q_star == 0.0
    assert point.length_regime == "collapses"
    assert point.chi_1 == sigma_w2
    assert point.chi_q == sigma_w2
    assert (point.c_star, point.chi_c, point.xi_c) == (None, None, None)
    if sigma_w2 == 1.0:
        # Approached like 1/l: no exponential depth scale.
        assert point.phase == "critical"
        assert (point.xi_q, point.xi_grad) == (None, None)
    else:
        assert point.phase == "ordered"
        assert point.xi_q == pytest.approx(-1 / math.log(sigma_w2), rel=1e-15)


def test_tanh_without_bias_in_the_chaotic_phase_decorrelates_to_zero():
    point = fixed_point(TANH, 2.5, 0.0)
    q = point.q_star
    derivative = REFERENCE["tanh"][1]

    assert q == pytest.approx(reference_fixed_point("tanh", 2.5, 0.0), rel=1e-12)
    assert point.phase == "chaotic"
    assert point.c_star == pytest.approx(0.0, abs=1e-13)
    # At c = 0 the two pre-activations are independent: χ_c = σ_w²·E[φ'(u)]².
    assert point.chi_c == pytest.approx(
        2.5 * reference_expectation(derivative, q) ** 2, rel=1e-12
    )
    assert point.xi_grad < 0


def test_relu_regimes_in_closed_form():
    diverging = fixed_point(RELU, 3.0, 0.0)
    assert diverging.q_star is None
    assert diverging.length_regime == "diverges"
    assert diverging.chi_1 == 1.5
    assert diverging.phase == "chaotic"
    assert diverging.xi_grad == pytest.approx(-1 / math.log(1.5), rel=1e-15)
    assert (diverging.c_star, diverging.xi_q) == (None, None)

    biased = fixed_point(RELU, 1.0, 0.5)
    assert biased.q_star == 1.0  # 0.5/(1 − 1/2)
    assert biased.c_star == 1.0
    assert biased.chi_c == 0.5

    assert fixed_point(RELU, 2.0, 0.1).q_star is None


def test_the_fixed_point_reached_depends_on_where_the_length_map_starts():
    # GELU at σ_w² = 2.5, σ_b² = 0.01 has a stable fixed point near 0.029 and
    # an unstable one between 0.5 and 1: below it the length map settles, above
    # it q grows without bound.
    gelu = make_activation("gelu")

    for q_input in (0.001, 0.05, 0.5):
        point = fixed_point(gelu, 2.5, 0.01, q_input=q_input)
        assert point.q_star == pytest.approx(
            _iterate_length_map(gelu, 2.5, 0.01, q_input), rel=1e-10
        )
        assert point.q_star == pytest.approx(0.029266, abs=1e-6)
        assert point.phase == "ordered"
    above = fixed_point(gelu, 2.5, 0.01, q_input=1.0)
    assert _iterate_length_map(gelu, 2.5, 0.01, 1.0) is None
    assert above.q_star is None
    assert above.length_regime == "diverges"
    # χ₁ tends to σ_w²·½(φ'(+∞)² + φ'(−∞)²) = 2.5/2.
    assert above.chi_1 == 1.25
    assert above.phase == "chaotic"


def test_a_map_neutral_to_rounding_is_not_taken_for_a_fixed_point():
    # Softplus at σ_w² = 2: L(q) − q = 2(E[φ²] − q/2) > 0 shrinks like 1/√q,
    # below rounding of L beyond q ≈ 1e9, so q creeps up forever (like l^{2/3}).
    softplus = make_activation("softplus")

    point = fixed_point(softplus, 2.0, 0.0)
    assert point.q_star is None
    assert point.length_regime == "diverges"
    assert point.chi_1 == 1.0
    assert point.phase == "critical"
    # Just below, the fixed point exists and is found far out.
    below = fixed_point(softplus, 1.999, 0.0)
    assert below.q_star == pytest.approx(
        reference_fixed_point_unbounded("softplus", 1.999, 100.0, 1000.0), rel=1e-9
    )


def test_diverging_length_maps_report_their_limiting_slopes():
    selu = make_activation("selu")

    point = fixed_point(selu, 3.0, 0.0)
    assert point.q_star is None
    # φ'(+∞) = λ, φ'(−∞) = 0: χ₁ → σ_w²·λ²/2.
    assert point.chi_1 == pytest.approx(3.0 * SELU_SCALE**2 / 2, rel=1e-15)
    assert point.chi_q == point.chi_1


# --- edge of chaos --------------------------------------------------------------


def test_relu_family_edge_is_a_single_point():
    assert edge_of_chaos(RELU, 0.0) == 2.0
    assert edge_of_chaos(RELU, 0.01) is None
    leaky = make_activation("leaky_relu", {"negative_slope": 0.2})
    assert edge_of_chaos(leaky, 0.0) == pytest.approx(2 / 1.04, rel=1e-15)
    assert edge_of_chaos(make_activation("identity"), 0.0) == 1.0


@pytest.mark.parametrize(
    "name, sigma_b2, expected",
    [("tanh", 0.0, 1.0), ("softsign", 0.0, 1.0), ("elu", 0.0, 1.0)],
)
def test_edge_at_zero_bias_where_the_length_map_collapses(name, sigma_b2, expected):
    # φ(0) = 0, φ'(0) = 1: q* = 0 and χ₁ = σ_w² there.
    assert edge_of_chaos(make_activation(name), sigma_b2) == pytest.approx(
        expected, rel=1e-15
    )


@pytest.mark.parametrize("sigma_b2", [0.0, 0.05, 0.5])
def test_softplus_has_no_edge_of_chaos(sigma_b2):
    assert edge_of_chaos(make_activation("softplus"), sigma_b2) is None


@pytest.mark.parametrize(
    "name, sigma_b2",
    [("sigmoid", 0.0), ("silu", 1.0), ("tanh", 0.3), ("selu", 0.1), ("gelu", 2.0)],
)
def test_edge_of_chaos_has_chi_one_equal_to_one(name, sigma_b2):
    act = make_activation(name)

    sigma_w2 = edge_of_chaos(act, sigma_b2)
    assert sigma_w2 is not None
    f, derivative = REFERENCE.get(name, (None, None))
    point = fixed_point(act, sigma_w2, sigma_b2, q_input=1.0)
    assert point.chi_1 == pytest.approx(1.0, abs=1e-10)
    if f is not None:
        q = point.q_star
        assert sigma_w2 * reference_expectation(
            lambda x: derivative(x) ** 2, q
        ) == pytest.approx(1.0, abs=1e-10)
        assert sigma_w2 * reference_expectation(
            lambda x: f(x) ** 2, q
        ) + sigma_b2 == pytest.approx(q, rel=1e-10)


def test_an_edge_needs_a_stable_fixed_point():
    # SiLU at σ_b² = 0.05: χ₁ = 1 only at q ≈ 0.83, σ_w² ≈ 2.73, where the length
    # map's slope is above 1; the map settles elsewhere (q ≈ 0.23, χ₁ ≈ 0.81).
    silu = make_activation("silu")

    assert edge_of_chaos(silu, 0.05) is None
    point = fixed_point(silu, 2.7286, 0.05, q_input=0.5)
    assert point.q_star == pytest.approx(0.2279, abs=1e-3)
    assert point.phase == "ordered"


@pytest.mark.parametrize(
    "name, sigma_b2", [("tanh", 0.2), ("gelu", 0.5), ("selu", 0.0)]
)
def test_edge_reached_from_unit_inputs(name, sigma_b2):
    act = make_activation(name)

    assert edge_of_chaos(act, sigma_b2, q_input=1.0) == edge_of_chaos(act, sigma_b2)


# --- depth scales and phase -----------------------------------------------------


def test_depth_scale_and_phase_of():
    assert depth_scale(1.0) is None
    assert depth_scale(0.0) == 0.0
    assert depth_scale(0.5) == pytest.approx(1 / math.log(2), rel=1e-15)
    assert depth_scale(2.0) == pytest.approx(-1 / math.log(2), rel=1e-15)
    assert phase_of(1 - 2e-9) == "ordered"
    assert phase_of(1 + 5e-10) == "critical"
    assert phase_of(1 + 2e-9) == "chaotic"


# --- phase diagram --------------------------------------------------------------


def test_phase_diagram_agrees_with_fixed_point_at_every_grid_point():
    sigma_w2 = [0.5, 1.2, 2.0, 3.5]
    sigma_b2 = [0.0, 0.05, 0.4]

    diagram = phase_diagram(TANH, sigma_w2, sigma_b2)

    assert diagram.sigma_w2 == tuple(sigma_w2)
    assert diagram.sigma_b2 == tuple(sigma_b2)
    assert len(diagram.chi_1) == 3 and len(diagram.chi_1[0]) == 4
    for i, b2 in enumerate(sigma_b2):
        for j, w2 in enumerate(sigma_w2):
            point = fixed_point(TANH, w2, b2)
            assert diagram.chi_1[i][j] == point.chi_1
            assert diagram.q_star[i][j] == point.q_star
            assert diagram.phase[i][j] == point.phase
            if point.c_star is None:
                assert diagram.c_star[i][j] is None
            else:
                assert diagram.c_star[i][j] == pytest.approx(point.c_star, abs=1e-12)
                assert diagram.xi_c[i][j] == pytest.approx(point.xi_c, rel=1e-10)
        assert diagram.edge_sigma_w2[i] == edge_of_chaos(TANH, b2, q_input=1.0)
    assert diagram.edge_sigma_w2[1] == pytest.approx(1.760955, abs=5e-7)
    assert diagram.edge_q_star[1] == pytest.approx(0.570048, abs=5e-7)


def test_relu_phase_diagram_in_closed_form():
    diagram = phase_diagram(RELU, [1.0, 2.0, 3.0], [0.0, 0.5])

    assert diagram.chi_1 == ((0.5, 1.0, 1.5), (0.5, 1.0, 1.5))
    assert diagram.phase == (("ordered", "critical", "chaotic"),) * 2
    assert diagram.q_star == ((0.0, 1.0, None), (1.0, None, None))
    assert diagram.edge_sigma_w2 == (2.0, None)
    assert diagram.edge_q_star == (1.0, None)


def test_phase_diagram_refuses_bad_grids():
    with pytest.raises(InvalidInput) as raised:
        phase_diagram(TANH, [1.0, -2.0, 0.0], [0.1])
    assert [p.path for p in raised.value.problems] == [
        ("sigma_w2_values", 1),
        ("sigma_w2_values", 2),
    ]
    assert "-2.0" in raised.value.problems[0].message

    with pytest.raises(InvalidInput) as raised:
        phase_diagram(TANH, [1.0], [])
    assert raised.value.problems[0].path == ("sigma_b2_values",)

    with pytest.raises(LimitExceeded) as raised:
        phase_diagram(TANH, [1.0] * 257, [0.1])
    assert raised.value.limit == "max_phase_diagram_axis"
    assert raised.value.limit_value == 256


# --- input checking -------------------------------------------------------------


@pytest.mark.parametrize(
    "call, path",
    [
        (lambda: length_map(TANH, -1.0, 1.0, 0.0), ("q",)),
        (lambda: length_map(TANH, 1.0, float("nan"), 0.0), ("sigma_w2",)),
        (lambda: length_map(TANH, 1.0, 1.0, -0.1), ("sigma_b2",)),
        (lambda: length_map(TANH, 2e12, 1.0, 0.0), ("q",)),
        (lambda: cross_moment(TANH, 1.0, 1.0, 1.5), ("c",)),
        (lambda: cross_moment(TANH, 1.0, True, 0.5), ("q_b",)),
        (lambda: correlation_map(TANH, 0.0, 1.0, 0.5, 1.0, 0.0), ("sigma_b2",)),
        (lambda: chi_c(TANH, 1.0, "0.5", 1.0), ("c",)),
        (lambda: fixed_point(TANH, 0.0, 0.1), ("sigma_w2",)),
        (lambda: fixed_point(TANH, 1.0, 0.1, q_input=0.0), ("q_input",)),
        (lambda: edge_of_chaos(TANH, float("inf")), ("sigma_b2",)),
        (lambda: depth_scale(-1.0), ("chi",)),
    ],
)
def test_bad_input_is_refused_naming_the_field(call, path):
    with pytest.raises(InvalidInput) as raised:
        call()

    problem = raised.value.problems[0]
    assert problem.path == path
    assert problem.allowed


def test_fixed_point_is_a_frozen_record():
    point = fixed_point(TANH, 1.5, 0.05)

    assert isinstance(point, FixedPoint)
    with pytest.raises(AttributeError):
        point.q_star = 1.0  # type: ignore[misc]
