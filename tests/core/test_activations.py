"""Activations: the catalogue, φ and φ', Gaussian moments and gains.

Reference values come from signal-propagation.md (computed there with scipy),
from independent scipy implementations integrated with scipy.integrate.quad,
and from closed forms evaluated in 60-digit decimal arithmetic.
"""

from __future__ import annotations

import math
import warnings
from decimal import Decimal, localcontext

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import integrate, special

from initlab.core.activations import (
    ACTIVATION_NAMES,
    ACTIVATION_PARAMETERS,
    MAX_QUADRATURE_EVALUATIONS,
    SELU_ALPHA,
    SELU_SCALE,
    ActivationSummary,
    QuadratureDidNotConverge,
    activation_catalogue,
    activation_from_json,
    describe_activation,
    gaussian_expectation,
    gaussian_moments,
    gradient_gain,
    is_positively_homogeneous,
    make_activation,
    phi,
    phi_prime,
    pytorch_gain,
    second_moment_gain,
    variance_gain,
)
from initlab.core.errors import InvalidInput, json_value
from initlab.core.types import Activation

PI_60 = Decimal("3.14159265358979323846264338327950288419716939937510582097494459")


# --- independent references -------------------------------------------------
# Scalar formulas written from the papers with scipy.special and math, not with
# the module under test.


def _reference_phi(name: str, params: dict[str, float]):
    slope = params.get("negative_slope", 0.01)
    alpha = params.get("alpha", 1.0)
    beta = params.get("beta", 1.0)
    functions = {
        "identity": lambda x: x,
        "relu": lambda x: max(x, 0.0),
        "leaky_relu": lambda x: x if x > 0 else slope * x,
        "elu": lambda x: x if x > 0 else alpha * math.expm1(x),
        "selu": lambda x: SELU_SCALE * (x if x > 0 else SELU_ALPHA * math.expm1(x)),
        "gelu": lambda x: 0.5 * x * special.erfc(-x / math.sqrt(2.0)),
        "gelu_tanh": lambda x: (
            x * special.expit(2 * math.sqrt(2 / math.pi) * (x + 0.044715 * x**3))
        ),
        "silu": lambda x: x * special.expit(x),
        "mish": lambda x: x * math.tanh(np.logaddexp(0.0, x)),
        "tanh": math.tanh,
        "sigmoid": special.expit,
        "softplus": lambda x: np.logaddexp(0.0, beta * x) / beta,
        "softsign": lambda x: x / (1 + abs(x)),
    }
    return functions[name]


def _quad_expectation(g, q: float = 1.0) -> float:
    """E g(√q z) by scipy's adaptive quadrature split at 0, at its finest tolerance."""
    root_q = math.sqrt(q)

    def integrand(z: float) -> float:
        return g(root_q * z) * math.exp(-0.5 * z * z) / math.sqrt(2 * math.pi)

    # At its finest tolerance quad warns that roundoff limits it; the tests
    # compare at 1e-12, well above that.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", integrate.IntegrationWarning)
        halves = [
            integrate.quad(integrand, lower, upper, epsabs=0, epsrel=1.2e-14, limit=500)
            for lower, upper in ((-np.inf, 0.0), (0.0, np.inf))
        ]
    return math.fsum(value for value, _ in halves)


def _central_difference(act: Activation, x: float, step: float = 1e-6) -> float:
    return float((phi(act, x + step) - phi(act, x - step)) / (2 * step))


# --- the catalogue ------------------------------------------------------------


def test_names_and_default_parameters_follow_the_contract():
    assert ACTIVATION_NAMES == (
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
    assert ACTIVATION_PARAMETERS["leaky_relu"] == {"negative_slope": 0.01}
    assert ACTIVATION_PARAMETERS["elu"] == {"alpha": 1.0}
    assert ACTIVATION_PARAMETERS["softplus"] == {"beta": 1.0}
    without = set(ACTIVATION_NAMES) - {"leaky_relu", "elu", "softplus"}
    assert all(ACTIVATION_PARAMETERS[name] == {} for name in without)


def test_make_activation_fills_defaults_as_a_sorted_tuple():
    assert make_activation("relu") == Activation("relu", ())
    assert make_activation("leaky_relu") == Activation(
        "leaky_relu", (("negative_slope", 0.01),)
    )
    assert make_activation("softplus", {"beta": 2}) == Activation(
        "softplus", (("beta", 2.0),)
    )
    assert isinstance(make_activation("elu", {"alpha": 2}).param("alpha"), float)


def test_unknown_name_names_the_value_the_allowed_names_and_a_fix():
    with pytest.raises(InvalidInput) as caught:
        make_activation("Relu")

    (problem,) = caught.value.problems
    assert problem.path == ("name",)
    assert problem.value == "Relu"
    assert '"Relu"' in problem.message
    assert "softsign" in problem.message and "softsign" in problem.allowed
    assert 'did you mean "relu"' in problem.message


def test_pytorchs_linear_points_to_identity():
    with pytest.raises(InvalidInput) as caught:
        make_activation("linear")

    assert 'did you mean "identity"' in caught.value.problems[0].message


@pytest.mark.parametrize(
    ("name", "params", "path"),
    [
        ("relu", {"negative_slope": 0.1}, ("negative_slope",)),
        ("leaky_relu", {"slope": 0.1}, ("slope",)),
        ("leaky_relu", {"negative_slope": -0.1}, ("negative_slope",)),
        ("leaky_relu", {"negative_slope": 1.5}, ("negative_slope",)),
        ("leaky_relu", {"negative_slope": math.nan}, ("negative_slope",)),
        ("elu", {"alpha": 0.0}, ("alpha",)),
        ("elu", {"alpha": True}, ("alpha",)),
        ("elu", {"alpha": "1.0"}, ("alpha",)),
        ("softplus", {"beta": 0}, ("beta",)),
        ("softplus", {"beta": math.inf}, ("beta",)),
        ("softplus", {"beta": 101}, ("beta",)),
        ("softplus", {"beta": 0.001}, ("beta",)),
        ("softplus", {"beta": 1e-300}, ("beta",)),
        ("elu", {"alpha": 10**400}, ("alpha",)),
    ],
)
def test_bad_parameters_are_refused_with_their_path(name, params, path):
    with pytest.raises(InvalidInput) as caught:
        make_activation(name, params)

    (problem,) = caught.value.problems
    assert problem.path == path
    assert problem.allowed
    assert json_value(next(iter(params.values()))) in problem.message


def test_values_are_quoted_as_json_not_as_python():
    messages = {
        value: _only_message(lambda v=value: make_activation("elu", {"alpha": v}))
        for value in (None, True, "0.2")
    }

    assert "got null;" in messages[None]
    assert "got true;" in messages[True]
    assert 'got "0.2";' in messages["0.2"]


def test_softplus_beta_below_one_hundredth_is_refused_saying_why():
    message = _only_message(lambda: make_activation("softplus", {"beta": 0.001}))

    assert message.startswith("softplus beta must be a number in [0.01, 100], got")
    assert "log(2)/β + x/2" in message and "a ReLU" in message


def _only_message(call) -> str:
    with pytest.raises(InvalidInput) as caught:
        call()
    (problem,) = caught.value.problems
    return problem.message


def test_every_bad_parameter_is_reported_at_once():
    with pytest.raises(InvalidInput) as caught:
        make_activation("softplus", {"beta": -1, "threshold": 20})

    assert [p.path for p in caught.value.problems] == [("beta",), ("threshold",)]


def test_parameter_keys_of_any_type_are_reported_not_crashed_on():
    with pytest.raises(InvalidInput) as caught:
        make_activation("elu", {1: 2.0, "alpha": 0.5})

    assert [p.path for p in caught.value.problems] == [("1",)]


def test_boundary_values_of_the_ranges_are_accepted():
    edges = [
        ("leaky_relu", "negative_slope", 0),
        ("leaky_relu", "negative_slope", 1),
        ("softplus", "beta", 0.01),
        ("softplus", "beta", 100),
        ("elu", "alpha", 100),
    ]
    for name, key, value in edges:
        act = make_activation(name, {key: value})
        assert act.params == ((key, float(value)),)


def test_activation_field_reads_a_name_or_an_object():
    assert activation_from_json("gelu") == Activation("gelu", ())
    assert activation_from_json(
        {"name": "leaky_relu", "negative_slope": 0.2}
    ) == Activation("leaky_relu", (("negative_slope", 0.2),))

    with pytest.raises(InvalidInput) as caught:
        activation_from_json("swish")
    assert caught.value.problems[0].path == ()

    with pytest.raises(InvalidInput) as caught:
        activation_from_json({"name": "elu", "alpha": -1})
    assert caught.value.problems[0].path == ("alpha",)

    with pytest.raises(InvalidInput) as caught:
        activation_from_json({"negative_slope": 0.2})
    assert caught.value.problems[0].path == ("name",)

    with pytest.raises(InvalidInput) as caught:
        activation_from_json(3)
    assert caught.value.problems[0].path == ()


# --- φ and φ' -----------------------------------------------------------------

GRID = np.concatenate([np.linspace(-12.0, 12.0, 241), [-0.3, 1e-3, 0.7, 30.0]])
NON_DEFAULT = [
    make_activation("leaky_relu", {"negative_slope": 0.2}),
    make_activation("elu", {"alpha": 0.5}),
    make_activation("softplus", {"beta": 3.0}),
]
ALL_ACTIVATIONS = [make_activation(name) for name in ACTIVATION_NAMES] + NON_DEFAULT


@pytest.mark.parametrize("act", ALL_ACTIVATIONS, ids=str)
def test_phi_matches_an_independent_implementation(act):
    reference = _reference_phi(act.name, dict(act.params))
    expected = np.array([reference(float(x)) for x in GRID])

    # math.erfc and scipy's erfc differ by a few ulps deep in the left tail
    np.testing.assert_allclose(phi(act, GRID), expected, rtol=1e-14, atol=1e-300)


def test_exact_values_at_known_points():
    assert phi(make_activation("relu"), -2.0) == 0.0
    assert phi(make_activation("leaky_relu"), -2.0) == -0.02
    assert phi(make_activation("gelu"), 0.0) == 0.0
    assert phi(make_activation("sigmoid"), 0.0) == 0.5
    assert phi(make_activation("softplus"), 0.0) == math.log(2.0)
    assert phi(make_activation("softsign"), 1.0) == 0.5
    assert phi(make_activation("selu"), 1.0) == SELU_SCALE
    assert SELU_ALPHA == 1.6732632423543772
    assert SELU_SCALE == 1.0507009873554805


def test_gelu_tanh_is_pytorchs_tanh_formula():
    act = make_activation("gelu_tanh")
    x = np.linspace(-6.0, 6.0, 121)
    inner = math.sqrt(2 / math.pi) * (x + 0.044715 * x**3)

    pytorch = 0.5 * x * (1 + np.tanh(inner))

    # PyTorch's 1 + tanh(u) cancels for x < 0: agreement to its rounding, ~|x|·ulp(1)
    difference = np.abs(phi(act, x) - pytorch)
    assert np.all(difference <= 4e-16 * np.maximum(np.abs(x), 1.0))


def test_derivatives_at_kinks_follow_pytorch_autograd():
    at_zero = {
        "relu": 0.0,
        "leaky_relu": 0.01,
        "elu": 1.0,
        "selu": SELU_SCALE * SELU_ALPHA,
        "softsign": 1.0,
        "identity": 1.0,
    }
    for name, expected in at_zero.items():
        assert phi_prime(make_activation(name), 0.0) == expected, name


def test_phi_keeps_the_shape_of_its_input():
    x = np.zeros((3, 4, 5))
    for act in ALL_ACTIVATIONS:
        assert phi(act, x).shape == (3, 4, 5)
        assert phi_prime(act, x).shape == (3, 4, 5)


@settings(max_examples=150, deadline=None)
@given(
    index=st.integers(0, len(ALL_ACTIVATIONS) - 1),
    x=st.floats(-8.0, 8.0).filter(lambda x: abs(x) > 1e-3),
)
def test_phi_prime_is_the_derivative_of_phi(index, x):
    act = ALL_ACTIVATIONS[index]

    numeric = _central_difference(act, x)

    assert float(phi_prime(act, x)) == pytest.approx(numeric, rel=1e-7, abs=1e-8)


# --- Gaussian expectations ------------------------------------------------------


@settings(max_examples=25, deadline=None)
@given(q=st.floats(0.01, 100.0))
def test_expectation_reproduces_the_erf_identity(q):
    value = gaussian_expectation(lambda x: special.erf(x) ** 2, q)

    expected = 2 / math.pi * math.asin(2 * q / (1 + 2 * q))
    assert value == pytest.approx(expected, rel=1e-13)


def test_expectation_of_polynomials_and_exponentials():
    assert gaussian_expectation(lambda x: x * x, 2.5) == pytest.approx(2.5, rel=1e-15)
    assert gaussian_expectation(lambda x: x**4, 3.0) == pytest.approx(27.0, rel=1e-14)
    assert gaussian_expectation(np.exp, 1.0) == pytest.approx(math.exp(0.5), rel=1e-14)
    assert gaussian_expectation(lambda x: 1.0) == pytest.approx(1.0, rel=1e-15)


def test_expectation_of_steps_needs_their_breakpoints():
    step = gaussian_expectation(
        lambda x: np.where(x > 0.0, 1.0, 0.0), 2.0, breakpoints=[0]
    )
    absolute = gaussian_expectation(np.abs, 4.0, breakpoints=[0.0])
    shifted = gaussian_expectation(
        lambda x: np.where(x > 1.0, 1.0, 0.0), 1.0, breakpoints=[1.0]
    )

    assert step == pytest.approx(0.5, rel=1e-14)
    assert absolute == pytest.approx(math.sqrt(2 * 4.0 / math.pi), rel=1e-14)
    assert shifted == pytest.approx(0.5 * math.erfc(1 / math.sqrt(2)), rel=1e-13)


@pytest.mark.parametrize("q", [0, -1.0, math.nan, math.inf, 1e13, True, "1"])
def test_q_outside_its_range_is_refused(q):
    with pytest.raises(InvalidInput) as caught:
        gaussian_expectation(np.tanh, q)

    assert caught.value.problems[0].path == ("q",)


# --- moments ------------------------------------------------------------------


def _decimal_leaky_relu(q: float, s: float) -> tuple[float, float, float, float]:
    with localcontext() as context:
        context.prec = 60
        q_, s_ = Decimal(q), Decimal(s)
        mean = (1 - s_) * (q_ / 2 / PI_60).sqrt()
        second = q_ * (1 + s_**2) / 2
        return (
            float(mean),
            float(second),
            float(second - mean**2),
            float((1 + s_**2) / 2),
        )


@settings(max_examples=200, deadline=None)
@given(q=st.floats(1e-3, 1e3), s=st.floats(0.0, 1.0))
def test_relu_family_closed_forms_are_exact_to_the_last_bit(q, s):
    act = make_activation("leaky_relu", {"negative_slope": s})

    moments = gaussian_moments(act, q)

    assert moments.method == "closed_form"
    assert (
        moments.mean,
        moments.second_moment,
        moments.variance,
        moments.derivative_second_moment,
    ) == _decimal_leaky_relu(q, s)


def test_relu_and_identity_closed_forms():
    relu = gaussian_moments(make_activation("relu"), 1.0)
    identity = gaussian_moments(make_activation("identity"), 3.0)

    assert relu.mean == 0.3989422804014327  # 1/√(2π)
    assert relu.second_moment == 0.5
    assert relu.derivative_second_moment == 0.5
    assert relu.variance == _decimal_leaky_relu(1.0, 0.0)[2]
    assert (identity.mean, identity.second_moment, identity.variance) == (0, 3, 3)
    assert identity.derivative_second_moment == 1.0


@pytest.mark.parametrize("name", ["relu", "leaky_relu"])
def test_closed_forms_agree_with_quadrature(name):
    act = make_activation(name)
    closed = gaussian_moments(act, 2.0)

    second = gaussian_expectation(lambda x: phi(act, x) ** 2, 2.0, breakpoints=[0.0])
    mean = gaussian_expectation(lambda x: phi(act, x), 2.0, breakpoints=[0.0])

    assert second == pytest.approx(closed.second_moment, rel=1e-14)
    assert mean == pytest.approx(closed.mean, rel=1e-14)


QUADRATURE_CASES = [
    (act, q)
    for act in ALL_ACTIVATIONS
    if act.name not in ("identity", "relu", "leaky_relu")
    for q in (1.0, 0.3, 5.0)
]


@pytest.mark.parametrize(("act", "q"), QUADRATURE_CASES, ids=str)
def test_quadrature_moments_match_scipy_quad(act, q):
    reference = _reference_phi(act.name, dict(act.params))
    step = 1e-5

    def derivative(x: float) -> float:
        # φ' from its definition, one-sided at the kink so it never straddles it
        if x == 0.0:
            return (reference(step) - reference(0.0)) / step
        return float(phi_prime(act, x))

    mean = _quad_expectation(reference, q)
    second = _quad_expectation(lambda x: reference(x) ** 2, q)
    variance = _quad_expectation(lambda x: (reference(x) - mean) ** 2, q)
    derivative_second = _quad_expectation(lambda x: derivative(x) ** 2, q)
    absolute_mean = _quad_expectation(lambda x: abs(reference(x)), q)

    moments = gaussian_moments(act, q)

    assert moments.method in ("gauss_hermite", "adaptive_gauss_legendre")
    assert moments.mean == pytest.approx(mean, rel=1e-12, abs=1e-12 * absolute_mean)
    assert moments.second_moment == pytest.approx(second, rel=1e-12)
    assert moments.variance == pytest.approx(variance, rel=1e-12)
    assert moments.derivative_second_moment == pytest.approx(
        derivative_second, rel=1e-12
    )


def test_gelu_second_moment_at_high_precision():
    act = make_activation("gelu")
    reference = _quad_expectation(
        lambda x: (0.5 * x * special.erfc(-x / math.sqrt(2))) ** 2
    )

    moments = gaussian_moments(act)

    assert moments.second_moment == pytest.approx(reference, rel=1e-12)
    assert second_moment_gain(act) == pytest.approx(1.533530, abs=1e-6)
    # E[x·Φ(x)] = 1/(2√π) exactly
    assert moments.mean == pytest.approx(0.5 / math.sqrt(math.pi), rel=1e-14)


def test_tanh_checkpoints():
    moments = gaussian_moments(make_activation("tanh"))

    assert moments.second_moment == pytest.approx(0.394294, abs=1e-6)
    assert moments.derivative_second_moment == pytest.approx(0.464403, abs=1e-6)
    assert moments.mean == 0.0


def test_selu_is_self_normalising():
    moments = gaussian_moments(make_activation("selu"))

    assert moments.mean == pytest.approx(0.0, abs=1e-12)
    assert moments.second_moment == pytest.approx(1.0, rel=1e-12)


@pytest.mark.parametrize("q", [50.0, 1e4])
def test_sharp_integrands_at_large_q_still_match_scipy(q):
    act = make_activation("tanh")

    second = gaussian_moments(act, q).second_moment

    reference = _quad_expectation(lambda x: math.tanh(x) ** 2, q)
    assert second == pytest.approx(reference, rel=1e-12)


def test_a_feature_narrower_than_the_hermite_nodes_is_not_missed():
    # tanh(√q z) is 1 at every 16- and 32-node Gauss–Hermite point when q = 1e4;
    # for large q, E[tanh²] = 1 − 2/√(2πq) + O(q^{−3/2}) (∫ sech² = 2).
    tanh = make_activation("tanh")

    for q in (1e8, 1e10, 1e12):
        expected = 1 - 2 / math.sqrt(2 * math.pi * q)
        assert gaussian_moments(tanh, q).second_moment == pytest.approx(
            expected, rel=1e-13
        )


def test_sharp_softplus_matches_scipy_quad():
    act = make_activation("softplus", {"beta": 100.0})
    reference = _reference_phi("softplus", {"beta": 100.0})

    moments = gaussian_moments(act)

    assert moments.method == "adaptive_gauss_legendre"
    assert moments.mean == pytest.approx(_quad_expectation(reference), rel=1e-12)
    assert moments.derivative_second_moment == pytest.approx(
        _quad_expectation(lambda x: special.expit(100.0 * x) ** 2), rel=1e-12
    )


def test_flattest_softplus_keeps_its_variance_gain_to_the_last_digits():
    # At β = 0.01, φ ≈ 69.3 + x/2 and the variance 1/4 + β²/32 − β⁴/64 + …
    # sits under an offset 277 times larger; the reference integrates the
    # centred φ − log(2)/β = log1p(expm1(βx)/2)/β, which has no offset.
    beta = 0.01
    act = make_activation("softplus", {"beta": beta})

    def centred(x: float) -> float:
        return math.log1p(math.expm1(beta * x) / 2) / beta

    mean = _quad_expectation(centred)
    variance = _quad_expectation(lambda x: (centred(x) - mean) ** 2)

    assert variance == pytest.approx(0.25 + beta**2 / 32 - beta**4 / 64, rel=1e-12)
    assert variance_gain(act) == pytest.approx(1 / math.sqrt(variance), rel=1e-10)
    assert gaussian_moments(act).variance == pytest.approx(variance, rel=1e-10)


def test_adaptive_quadrature_refuses_noise_instead_of_refining_it_forever():
    # An integrand whose values never settle makes every panel disagree with
    # its halves; the rule must stop at its cap of integrand values.
    generator = np.random.default_rng(7)
    evaluated = []

    def noise(x: np.ndarray) -> np.ndarray:
        evaluated.append(x.size)
        return 1.0 + 1e-9 * generator.standard_normal(x.shape)

    with pytest.raises(QuadratureDidNotConverge) as caught:
        gaussian_expectation(noise, breakpoints=(0.0,))

    assert sum(evaluated) <= MAX_QUADRATURE_EVALUATIONS
    assert sum(evaluated) > MAX_QUADRATURE_EVALUATIONS // 4
    assert caught.value.problems[0].path == ()
    assert "did not converge within 1048576 integrand values" in str(caught.value)


def test_moments_that_do_not_converge_name_the_activation():
    # β = 0.001 is refused by make_activation; built directly it reaches the
    # quadrature, whose rounding noise never settles under the offset 693.
    flat = Activation("softplus", (("beta", 0.001),))

    with pytest.raises(QuadratureDidNotConverge) as caught:
        gaussian_moments(flat)

    message = caught.value.problems[0].message
    assert message.startswith(
        "the Gaussian moments of softplus (beta = 0.001) at q = 1 cannot be computed"
    )


@settings(max_examples=40, deadline=None)
@given(
    name=st.sampled_from(["identity", "relu", "leaky_relu"]),
    q=st.floats(0.01, 100.0),
)
def test_homogeneous_activations_scale_with_q(name, q):
    act = make_activation(name)

    at_q, at_one = gaussian_moments(act, q), gaussian_moments(act, 1.0)

    assert is_positively_homogeneous(act)
    assert at_q.second_moment == pytest.approx(q * at_one.second_moment, rel=1e-15)
    assert at_q.derivative_second_moment == at_one.derivative_second_moment


def test_only_the_relu_family_is_positively_homogeneous():
    homogeneous = {
        n for n in ACTIVATION_NAMES if is_positively_homogeneous(make_activation(n))
    }

    assert homogeneous == {"identity", "relu", "leaky_relu"}


# --- gains --------------------------------------------------------------------


def test_pytorch_gains_are_bit_for_bit():
    assert pytorch_gain(make_activation("identity")) == 1
    assert pytorch_gain(make_activation("sigmoid")) == 1
    assert pytorch_gain(make_activation("tanh")) == 5.0 / 3
    assert pytorch_gain(make_activation("relu")) == math.sqrt(2.0)
    assert pytorch_gain(make_activation("selu")) == 3.0 / 4
    for s in (0.01, 0.2, 0.3, 1 / 3, 0.7):
        act = make_activation("leaky_relu", {"negative_slope": s})
        assert pytorch_gain(act) == math.sqrt(2.0 / (1 + s**2))
    assert pytorch_gain(make_activation("leaky_relu", {"negative_slope": 0.2})) == (
        1.3867504905630728
    )


@pytest.mark.parametrize(
    "name", ["gelu", "gelu_tanh", "silu", "mish", "elu", "softplus", "softsign"]
)
def test_pytorch_gain_is_none_where_pytorch_raises(name):
    assert pytorch_gain(make_activation(name)) is None


REFERENCE_GAINS = [
    ("relu", second_moment_gain, 1.414214),
    ("relu", variance_gain, 1.712859),
    ("tanh", second_moment_gain, 1.592537),
    ("tanh", variance_gain, 1.592537),
    ("gelu", second_moment_gain, 1.533530),
    ("gelu", variance_gain, 1.700926),
    ("silu", second_moment_gain, 1.676532),
    ("silu", variance_gain, 1.787187),
    ("elu", second_moment_gain, 1.245198),
    ("softplus", second_moment_gain, 1.041867),
    ("softplus", variance_gain, 1.919126),
    ("sigmoid", second_moment_gain, 1.846229),
    ("selu", second_moment_gain, 1.0),
    ("selu", variance_gain, 1.0),
]


@pytest.mark.parametrize(
    ("name", "gain", "expected"),
    REFERENCE_GAINS,
    ids=[f"{name}-{gain.__name__}" for name, gain, _ in REFERENCE_GAINS],
)
def test_gains_match_the_reference_values(name, gain, expected):
    assert gain(make_activation(name)) == pytest.approx(expected, abs=1e-6)


def test_relu_family_gains_are_exact():
    relu = make_activation("relu")

    assert second_moment_gain(relu) == math.sqrt(2.0)
    assert gradient_gain(relu) == math.sqrt(2.0)
    # 1/√((π − 1)/(2π)) to the last bit
    with localcontext() as context:
        context.prec = 60
        expected = float((2 * PI_60 / (PI_60 - 1)).sqrt())
    assert variance_gain(relu) == expected


def test_gradient_gain_of_tanh_puts_pytorchs_gain_in_the_chaotic_phase():
    tanh = make_activation("tanh")

    chi_1 = pytorch_gain(tanh) ** 2 * gaussian_moments(tanh).derivative_second_moment

    assert chi_1 > 1.0
    assert gradient_gain(tanh) == pytest.approx(1 / math.sqrt(0.4644029), rel=1e-7)


# --- summaries ----------------------------------------------------------------


def test_catalogue_lists_every_activation_once_and_is_cached():
    catalogue = activation_catalogue()

    assert [s.name for s in catalogue] == list(ACTIVATION_NAMES)
    assert activation_catalogue() is catalogue
    assert all(isinstance(s, ActivationSummary) for s in catalogue)


def test_summary_carries_gains_moments_and_notes():
    gelu = describe_activation(make_activation("gelu"))
    tanh = describe_activation(make_activation("tanh"))
    selu = describe_activation(make_activation("selu"))
    leaky = describe_activation(make_activation("leaky_relu", {"negative_slope": 0.2}))

    assert gelu.pytorch_gain is None
    assert gelu.second_moment_gain == second_moment_gain(make_activation("gelu"))
    assert gelu.method == "gauss_hermite"
    assert any("calculate_gain raises for gelu" in note for note in gelu.notes)
    assert any("chaotic phase" in note for note in tanh.notes)
    assert any("LeCun normal" in note and "empirically" in note for note in selu.notes)
    assert leaky.parameters == {"negative_slope": 0.2}
    assert leaky.pytorch_gain == math.sqrt(2.0 / (1 + 0.2**2))
    assert leaky.method == "closed_form"


def test_summary_dict_has_the_fields_of_the_http_contract():
    summary = describe_activation(make_activation("softplus")).as_dict()

    assert set(summary) == {
        "name",
        "parameters",
        "pytorch_gain",
        "second_moment_gain",
        "variance_gain",
        "gradient_gain",
        "mean",
        "second_moment",
        "derivative_second_moment",
        "method",
        "notes",
    }
    assert summary["parameters"] == {"beta": 1.0}
    summary["parameters"]["beta"] = 5.0
    assert describe_activation(make_activation("softplus")).parameters == {"beta": 1.0}


def test_an_activation_built_by_hand_with_an_unknown_name_is_refused():
    with pytest.raises(InvalidInput) as caught:
        phi(Activation("swish"), 1.0)

    assert caught.value.problems[0].path == ("name",)
