"""The infinite-width prediction: second moments through every block of a Network.

At infinite width every pre-activation is a centred Gaussian across units, so
the forward pass is carried by a few numbers per point of the network: the
second moment E[x²], the mean E[x] and cross moments E[x·x'] between the
values two inputs give (Poole et al. 2016, "Exponential expressivity in deep
neural networks through transient chaos", arXiv 1606.05340, §2). Three
pairs are followed: the pair of inputs whose correlation is reported (same
position), two tokens of one sequence (which attention mixes) and two
independent inputs. The backward pass is carried by the gradient second moment
under the gradient-independence assumption: the weights met on the way back
are taken independent of those of the forward pass (Schoenholz et al. 2017,
"Deep Information Propagation", arXiv 1611.01232, §3). The scalar maps
(post-activation moments, the cross moment, χ₁) are
:mod:`initlab.core.meanfield`'s; this module composes them block by block:

- Dense: q = σ_w²·E[x²] + σ_b² with σ_w² = E[W²]·fan_in (a uniform or
  truncated draw counts by its second moment only), every cross moment alike,
  then φ.
- Norm: the normalised stream has second moment 1; the affine parameters are
  drawn independently of it (:func:`normalized_moments`,
  :func:`affine_moments`).
- Residual: a branch's output is independent of its stream at init (its last
  weights are zero-mean), so second moments add (:func:`independent_sum`).
- GatedMlp: φ(g)·u with g and u independent (:func:`gated_product_moments`).
- Attention: :data:`ATTENTION_MODEL`.

Rows, their names and their order are those of :mod:`initlab.core.montecarlo`
(``<block>.<proj>`` projections, the attention row named by its block, a
residual group's row after its branch and shortcut), so the two engines can
be read side by side.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable
from dataclasses import dataclass, fields
from typing import NamedTuple

import numpy as np

from initlab.core import meanfield
from initlab.core.activations import _feature_scale, is_positively_homogeneous
from initlab.core.errors import InvalidInput
from initlab.core.montecarlo import NORM_EPS, saturation_threshold
from initlab.core.network import (
    Attention,
    Block,
    Dense,
    Draw,
    Embedding,
    GatedMlp,
    Network,
    Norm,
    Residual,
)
from initlab.core.types import Activation

GRADIENT_INDEPENDENCE_NOTE = (
    "Analytic backward values assume gradient independence: the weights met by"
    " the backward pass are taken independent of those of the forward pass"
    " (Schoenholz et al. 2017 §3), exact for these second moments at infinite"
    " width."
)
OUTPUT_GRADIENT_NOTE = (
    "The gradient at the network's output has second moment 1 per unit and"
    " example (a loss Σ y_i·r_i with r_i ~ N(0, 1)); gradient second moments are"
    " per example and, for a conv, per location; a weight's is E[δ²]·E[x²], the"
    " mean square of its per-example contributions."
)
ATTENTION_MODEL = (
    "Analytic attention: each head mixes the values of all T tokens of a"
    " sequence (no mask) with weights softmax(q·k/√d_head). At infinite width"
    " the weights are independent of the values and, for one query, the scores"
    " are i.i.d. N(0, σ_s²) beyond a part common to all keys, with σ_s² ="
    " E[q²]·(E[k²] − E[k·k']) (k' another token's key of the same sequence);"
    " the moments of the softmax weights, P = E[Σ a_t²] and the higher ones of"
    " the backward pass, are exact for such scores (one-dimensional integrals)."
    " The mixed values have E[y²] = E[v²]·P + E[v·v']·(1 − P). Approximations,"
    " exact only as d_head grows: ‖q‖²/d_head is taken at its mean; the"
    " softmax weights of two inputs, or of two queries of one sequence, are"
    " correlated as ρ between 1/T and P, ρ the correlation of their scores;"
    " gradients at different tokens are taken uncorrelated."
)
BATCH_NORM_NOTE = (
    "Analytic BatchNorm takes the batch statistics at their infinite-batch"
    " values (the stream's mean and variance); a finite batch of N values per"
    " feature scales the input gradient by about 1 − 2/N."
)


@dataclass(frozen=True)
class AnalyticLayer:
    """The infinite-width prediction at one point of the network.

    For a ``dense`` row (a linear or conv layer, or a projection inside an
    attention block or gated MLP) ``second_moment``, ``mean`` and
    ``variance`` are those of the pre-activation h = Wx + b, ``post_activation_*``
    those of φ(h), ``correlation`` that of h for the input pair (the cosine
    q_ab/√(q_aa·q_bb)), ``chi_1`` = σ_w²·E[φ'(h)²], ``gradient_second_moment``
    = E[(∂L/∂h)²] (also the bias gradient's), ``input_gradient_second_moment``
    = E[(∂L/∂x)²] at the layer's input and ``gradient_ratio`` the input
    gradient over the gradient at φ(h), which for a dense row is
    χ₁·n_out/n_in. For the other rows the values are those of the block's
    output (post-activation equal to it) and the gradient is taken there.
    ``excess_kurtosis`` is 0 where the value is Gaussian at infinite width and
    ``None`` where it is not predicted; ``saturation_fraction`` is P(|h| > h*)
    for tanh, sigmoid and softsign (see ``montecarlo.saturation_threshold``).
    """

    name: str
    kind: str
    width: int
    second_moment: float
    mean: float
    variance: float
    post_activation_second_moment: float
    post_activation_mean: float
    correlation: float | None
    chi_1: float | None
    excess_kurtosis: float | None
    saturation_fraction: float | None
    gradient_second_moment: float
    input_gradient_second_moment: float | None = None
    gradient_ratio: float | None = None
    weight_gradient_second_moment: float | None = None
    bias_gradient_second_moment: float | None = None
    sigma_w2: float | None = None
    sigma_b2: float | None = None


@dataclass(frozen=True)
class AnalyticResult:
    """Every row in forward order, the input they start from, and the notes."""

    layers: tuple[AnalyticLayer, ...]
    input_second_moment: float
    input_correlation: float
    sequence_length: int
    notes: tuple[str, ...] = ()

    def row(self, name: str) -> int:
        """The index of the row called ``name``."""
        for index, layer in enumerate(self.layers):
            if layer.name == name:
                return index
        raise KeyError(name)


def propagate(
    network: Network,
    *,
    input_second_moment: float,
    input_correlation: float | None = None,
    sequence_length: int = 8,
) -> AnalyticResult:
    """The infinite-width statistics of ``network`` at every row.

    ``input_second_moment`` is E[x²] of the raw input features (q⁰ = ‖x‖²/n₀);
    ``input_correlation`` the correlation of the pair of inputs followed
    through the layers (``None``: inputs drawn independently, correlation 0);
    ``sequence_length`` the tokens an attention block mixes (the positions of
    a conv grid for a conv net). An embedding ignores the input second moment:
    its output is its tables' rows, and the second input's rows are mixed as
    c·(first) + √(1−c²)·(fresh), as the simulation does.

    Raises :class:`InvalidInput` for an argument out of range, at its name.
    """
    _check_arguments(input_second_moment, input_correlation, sequence_length)
    correlation = 0.0 if input_correlation is None else float(input_correlation)
    moment = float(input_second_moment)
    stream = _Stream(moment, 0.0, (correlation * moment, 0.0, 0.0, 0.0), gaussian=True)
    propagator = _Propagator(
        correlation, sequence_length, _contains_attention(network.blocks)
    )
    _, backward = propagator.blocks(network.blocks, stream)
    backward(Gradient(1.0, 0.0))

    notes = (GRADIENT_INDEPENDENCE_NOTE, OUTPUT_GRADIENT_NOTE, *propagator.notes)
    return AnalyticResult(
        tuple(row.frozen() for row in propagator.rows),
        moment,
        correlation,
        sequence_length,
        tuple(dict.fromkeys(notes)),
    )


def _check_arguments(
    input_second_moment: object, input_correlation: object, sequence_length: object
) -> None:
    def number(value: object) -> bool:
        return isinstance(value, int | float) and not isinstance(value, bool)

    if not number(input_second_moment) or not 0 < input_second_moment < math.inf:
        raise InvalidInput.at(
            ("input_second_moment",),
            f"the input second moment must be a positive finite number; got"
            f" {input_second_moment!r}",
            input_second_moment,
            "a number > 0",
        )
    if input_correlation is not None and (
        not number(input_correlation) or not -1.0 <= input_correlation <= 1.0
    ):
        raise InvalidInput.at(
            ("input_correlation",),
            f"the input correlation must lie in [-1, 1]; got {input_correlation!r};"
            " leave it out for independent inputs",
            input_correlation,
            "a number in [-1, 1]",
        )
    if (
        isinstance(sequence_length, bool)
        or not isinstance(sequence_length, int)
        or sequence_length < 1
    ):
        raise InvalidInput.at(
            ("sequence_length",),
            f"sequence_length must be a positive integer; got {sequence_length!r}",
            sequence_length,
            "an integer ≥ 1",
        )


# --- The formulas this module owns ------------------------------------------------


def dense_sigma2(dense: Dense) -> tuple[float, float]:
    """σ_w² = E[W²]·fan_in and σ_b² = E[b²] of a dense layer.

    Second moments, not variances, so that a draw's mean counts; fan_in is
    the signal's ((c_in/groups)·k^d for a conv), as in the mean-field
    parametrisation W_ij ~ N(0, σ_w²/fan_in), b_i ~ N(0, σ_b²) (Poole et al.
    2016, arXiv 1606.05340, §2).
    """
    sigma_w2 = dense.weight.second_moment * dense.fan_in
    sigma_b2 = 0.0 if dense.bias is None else dense.bias.second_moment
    return sigma_w2, sigma_b2


def affine_second_moment(
    sigma_w2: float, input_moment: float, sigma_b2: float
) -> float:
    """E[h·h'] of h = Wx + b from E[x·x']: σ_w²·E[x·x'] + σ_b².

    W_ij i.i.d. zero-mean with second moment σ_w²/fan_in and b_i with second
    moment σ_b², independent of x: the affine half of the length and
    correlation maps (Poole et al. 2016, arXiv 1606.05340, §2, eqs. 3 and 5),
    for an input of any kind (a post-activation, a norm's output, a residual
    sum). With x' = x it is the second moment q.
    """
    return sigma_w2 * input_moment + sigma_b2


def backward_through_dense(
    output_gradient: float,
    derivative_second_moment: float,
    weight_second_moment: float,
    fan_out: int,
) -> tuple[float, float]:
    """Gradient second moments of a dense layer: (at h, at its input x).

    E[(∂L/∂h)²] = E[(∂L/∂φ(h))²]·E[φ'(h)²] and E[(∂L/∂x)²] =
    fan_out·E[W²]·E[(∂L/∂h)²], each input feeding fan_out outputs
    ((c_out/groups)·k^d for a conv): the input gradient is χ₁·n_out/n_in
    times the output gradient (Schoenholz et al. 2017, arXiv 1611.01232, §3,
    under gradient independence).
    """
    at_pre_activation = output_gradient * derivative_second_moment
    return at_pre_activation, at_pre_activation * weight_second_moment * fan_out


def normalized_moments(
    kind: str, second_moment: float, mean: float, crosses: tuple[float, ...]
) -> tuple[float, float, tuple[float, ...]]:
    """(E[x̂²], E[x̂], the cross moments E[x̂·x̂']) of a normalised stream.

    LayerNorm and BatchNorm subtract the mean and divide by √(σ² + ε), σ² =
    E[x²] − E[x]² (over a token's features, or over the batch per feature, both
    of which tend to the stream's moments at infinite width and batch): x̂ has
    second moment σ²/(σ² + ε), mean 0 and cross moments (E[x·x'] − E[x]²)/(σ² +
    ε). RMSNorm divides by √(E[x²] + ε): second moment E[x²]/(E[x²] + ε), mean
    E[x]/√(E[x²] + ε), cross moments E[x·x']/(E[x²] + ε) (Ba et al. 2016, "Layer
    Normalization", §3; Zhang & Sennrich 2019, "Root Mean Square Layer
    Normalization", §3; Ioffe & Szegedy 2015, "Batch Normalization", §3), with
    PyTorch's ε = 1e-5 (:func:`norm_scale`).
    """
    scale = norm_scale(kind, second_moment, mean)
    if kind == "rms_norm":
        return (
            second_moment / scale,
            mean / math.sqrt(scale),
            tuple(cross / scale for cross in crosses),
        )

    variance = second_moment - mean * mean
    return (
        variance / scale,
        0.0,
        tuple((cross - mean * mean) / scale for cross in crosses),
    )


def norm_scale(kind: str, second_moment: float, mean: float) -> float:
    """What a norm divides by, squared: σ² + ε with σ² = E[x²] − E[x]² (layer,
    batch) or E[x²] (RMS), ε = 1e-5 (PyTorch 2.13's default for every norm here).

    The backward pass through a norm multiplies the gradient second moment by
    E[γ²] over it: the projection that removes the mean and the normalised
    direction takes O(1/n) of it, nothing at infinite width (Xiong et al.
    2020, "On Layer Normalization in the Transformer Architecture", §3.2).
    """
    if kind == "rms_norm":
        return second_moment + NORM_EPS

    return second_moment - mean * mean + NORM_EPS


def affine_moments(
    weight: Draw | None,
    bias: Draw | None,
    second_moment: float,
    mean: float,
    crosses: tuple[float, ...],
) -> tuple[float, float, tuple[float, ...]]:
    """(E[y²], E[y], E[y·y']) of y = γ·x̂ + β, γ and β drawn independently of x̂.

    E[y²] = E[γ²]E[x̂²] + 2E[γ]E[β]E[x̂] + E[β²]; E[y] = E[γ]E[x̂] + E[β];
    E[y·y'] = E[γ²]E[x̂·x̂'] + 2E[γ]E[β]E[x̂] + E[β²] (γ and β are per unit,
    shared by both inputs). A missing γ is 1 and a missing β 0. With γ = 1,
    β = 0 on a centred stream the output second moment is 1
    (signal-propagation.md, "Residual networks and transformers").
    """
    gamma_mean, gamma_second = 1.0, 1.0
    if weight is not None:
        gamma_mean, gamma_second = weight.mean, weight.second_moment
    beta_mean, beta_second = 0.0, 0.0
    if bias is not None:
        beta_mean, beta_second = bias.mean, bias.second_moment

    shift = 2.0 * gamma_mean * beta_mean * mean + beta_second
    return (
        gamma_second * second_moment + shift,
        gamma_mean * mean + beta_mean,
        tuple(gamma_second * cross + shift for cross in crosses),
    )


def independent_sum(first: _Stream, second: _Stream) -> _Stream:
    """The moments of s = x + y with x and y independent per unit.

    E[s²] = E[x²] + 2E[x]E[y] + E[y²], alike for every cross moment, and the
    means add. A residual branch is independent of its stream at infinite width
    because its last weights are zero-mean and independent of the stream, so
    under pre-norm the stream's second moment grows by each branch's:
    E[x_L²] = E[x_0²] + Σ v_l (signal-propagation.md, "Residual networks and
    transformers"; Xiong et al. 2020, §3).
    """
    shift = 2.0 * first.mean * second.mean
    return _Stream(
        first.second_moment + second.second_moment + shift,
        first.mean + second.mean,
        tuple(
            a + b + shift for a, b in zip(first.crosses, second.crosses, strict=True)
        ),
        first.gaussian and second.gaussian,
    )


def gated_product_moments(
    gate: _Stream, up_second_moment: float, up_crosses: tuple[float, ...]
) -> _Stream:
    """The moments of p = φ(g)·u with g and u independent, u centred.

    The gate and up projections have independent zero-mean weights, so at
    infinite width φ(g) and u are independent per unit: E[p²] =
    E[φ(g)²]·E[u²], E[p] = E[φ(g)]·E[u] = 0 and E[p·p'] = E[φ(g)φ(g')]·E[u·u']
    (the gated linear unit of Shazeer 2020, "GLU Variants Improve Transformer",
    §2).
    """
    return _Stream(
        gate.second_moment * up_second_moment,
        0.0,
        tuple(
            gate_cross * up_cross
            for gate_cross, up_cross in zip(gate.crosses, up_crosses, strict=True)
        ),
        gaussian=False,
    )


def saturation_probability(threshold: float, q: float) -> float:
    """P(|h| > h*) for h ~ N(0, q): erfc(h*/√(2q)).

    The fraction of pre-activations of a saturating activation (tanh, sigmoid,
    softsign) past the threshold h* where |φ'| falls below 1% of its maximum,
    at infinite width where h is Gaussian.
    """
    if q <= 0.0:
        return 0.0

    return math.erfc(threshold / math.sqrt(2.0 * q))


@dataclass(frozen=True)
class SoftmaxMoments:
    """Moments of the softmax weights a_t of T i.i.d. N(0, σ²) scores.

    ``sum_squares`` = E[Σ a_t²], ``sum_cubes`` = E[Σ a_t³], ``squared_sum_squares``
    = E[(Σ a_t²)²]. For σ² = 0 they are 1/T, 1/T², 1/T².
    """

    sum_squares: float
    sum_cubes: float
    squared_sum_squares: float


_SOFTMAX_NODES = 801
_SOFTMAX_Z_RANGE = 12.0


@functools.lru_cache(maxsize=256)
def softmax_moments(variance: float, tokens: int) -> SoftmaxMoments:
    """E[Σa²], E[Σa³] and E[(Σa²)²] for a = softmax(s), s_t i.i.d. N(0, σ²), t ≤ T.

    With X = Σ_t e^{s_t}, 1/Xⁿ = (1/Γ(n))∫₀^∞ u^{n−1} e^{−uX} du turns each
    moment into one integral over u of products of G(u) = E[e^{−u·e^s}] and
    Hₙ(u) = E[e^{ns}·e^{−u·e^s}], which factor over the independent scores:
    E[a₁ⁿ] = (1/Γ(n))∫u^{n−1}Hₙ(u)G(u)^{T−1}du and
    E[a₁²a₂²] = (1/6)∫u³H₂(u)²G(u)^{T−2}du. Both integrals (over z, s = σz,
    on |z| ≤ 12, and over log u) use the trapezoidal rule on 801 nodes, which
    converges geometrically for these smooth, doubly decaying integrands
    (about 1e-10 relative for σ² ≤ 25, T ≤ 64; 1e-6 at σ² = 100, T = 512).
    The identity is the Laplace transform of 1/Xⁿ (Abramowitz & Stegun
    29.3.7); the scores model is that of :data:`ATTENTION_MODEL`.
    """
    if tokens == 1:
        return SoftmaxMoments(1.0, 1.0, 1.0)

    sigma = math.sqrt(variance)
    z = np.linspace(-_SOFTMAX_Z_RANGE, _SOFTMAX_Z_RANGE, _SOFTMAX_NODES)
    density = np.exp(-0.5 * z * z) / math.sqrt(2.0 * math.pi) * (z[1] - z[0])
    # Below, u^n·E[e^{ns}] < 1e-17; above, e^{−u·e^s} has killed every score.
    log_u = np.linspace(
        -20.0 - _SOFTMAX_Z_RANGE * sigma,
        _SOFTMAX_Z_RANGE * (sigma + 1.0) + math.log(tokens),
        _SOFTMAX_NODES,
    )
    step = log_u[1] - log_u[0]
    u = np.exp(log_u)
    exponential = np.exp(sigma * z)
    with np.errstate(under="ignore"):
        laplace = np.exp(-np.outer(u, exponential))
    rest = laplace @ density
    others = rest ** (tokens - 1)

    def moment(power: int) -> float:
        weighted = laplace @ (density * exponential**power)
        integrand = u**power * weighted * others
        return float(np.sum(integrand) * step / math.gamma(power))

    squares = laplace @ (density * exponential**2)
    pairs = float(np.sum(u**4 * squares**2 * rest ** (tokens - 2)) * step / 6.0)
    return SoftmaxMoments(
        tokens * moment(2),
        tokens * moment(3),
        tokens * moment(4) + tokens * (tokens - 1) * pairs,
    )


def mixed_value_moment(
    value_moment: float, other_value_moment: float, weight_overlap: float
) -> float:
    """E[y·y'] of attention outputs y = Σ_t a_t v_t, y' = Σ_t a'_t v'_t.

    With the weights independent of the values, Σ_t a_t = 1 and
    E[v_t·v'_s] equal to ``value_moment`` at s = t and ``other_value_moment``
    elsewhere: E[y·y'] = E[Σ_t a_t a'_t]·value_moment + (1 − E[Σ_t a_t a'_t])·
    other_value_moment, ``weight_overlap`` being E[Σ_t a_t a'_t] (P for y = y').
    See :data:`ATTENTION_MODEL`.
    """
    return weight_overlap * value_moment + (1.0 - weight_overlap) * other_value_moment


def weight_overlap(sum_squares: float, tokens: int, score_correlation: float) -> float:
    """E[Σ_t a_t a'_t] of two softmax weight vectors whose scores correlate as ρ.

    1/T for independent scores, P = E[Σa²] for identical ones; between, the
    linear interpolation 1/T + ρ·(P − 1/T), ρ clipped to [0, 1] (an
    approximation stated in :data:`ATTENTION_MODEL`).
    """
    rho = min(1.0, max(0.0, score_correlation))
    return 1.0 / tokens + rho * (sum_squares - 1.0 / tokens)


def attention_value_gradient(
    gradient: Gradient, sum_squares: float, tokens: int, sequence_overlap: float
) -> Gradient:
    """The gradient at the values v_t from the one at the mixed values y_i.

    ∂L/∂v_t = Σ_i a_it·∂L/∂y_i over the T queries i. With the weights
    independent of the gradients, E[(∂L/∂v_t)²] = g·P + g_x·(T−1)·O and, for two
    tokens t ≠ t', E[∂L/∂v_t·∂L/∂v_t'] = g·(1 − P)/(T−1) + g_x·(1 − O), where g
    and g_x are the gradient's second moment and its cross moment between two
    tokens, P = E[Σ_t a_t²] and O the weight overlap of two queries
    (:func:`weight_overlap`): the column sums of the softmax matrix, Σ_t a_it =
    1 row by row (Vaswani et al. 2017 §3.2.1 for the block; the moments of
    :data:`ATTENTION_MODEL`).
    """
    g, g_cross = gradient
    if tokens == 1:
        return Gradient(g, 0.0)

    return Gradient(
        g * sum_squares + g_cross * (tokens - 1) * sequence_overlap,
        g * (1.0 - sum_squares) / (tokens - 1) + g_cross * (1.0 - sequence_overlap),
    )


def attention_score_gradients(
    gradient: Gradient,
    jacobian: float,
    tokens: int,
    value_spread: float,
    key_spread: float,
    query_moment: float,
    query_cross: float,
) -> tuple[Gradient, Gradient]:
    """The gradients at the queries and at the keys through the softmax.

    ∂L/∂s_it = a_it(δ_it − Σ_s a_is δ_is) with δ_it = ∂L/∂y_i·v_t, then
    ∂L/∂q_i = Σ_t ∂L/∂s_it·k_t/√d and ∂L/∂k_t = Σ_i ∂L/∂s_it·q_i/√d (the
    softmax Jacobian; Vaswani et al. 2017 §3.2.1). With δ's varying part of
    variance d·g·Δv (Δv = E[v²] − E[v·v'], the part of the values that differs
    between tokens) and J = E[Σ_t a_t²(1 − 2a_t + Σ_s a_s²)]:
    E[(∂L/∂q)²] = Δk·Δv·J·g (Δk = E[k²] − E[k·k']) and E[(∂L/∂k)²] =
    Δv·J·(E[q²]·g + (T−1)·E[q·q']·g_x). The cross moments between tokens,
    Δk·Δv·J·g_x for queries and −Δv·J/(T−1)·(E[q²]·g + (T−1)·E[q·q']·g_x) for
    keys, take the weights as uniform (:data:`ATTENTION_MODEL`).
    """
    g, g_cross = gradient
    queries = Gradient(
        key_spread * value_spread * jacobian * g,
        key_spread * value_spread * jacobian * g_cross,
    )
    through_keys = query_moment * g + (tokens - 1) * query_cross * g_cross
    keys_cross = 0.0
    if tokens > 1:
        keys_cross = -value_spread * jacobian * through_keys / (tokens - 1)
    return queries, Gradient(value_spread * jacobian * through_keys, keys_cross)


# --- Block by block --------------------------------------------------------------


class Gradient(NamedTuple):
    """A gradient's second moment and its cross moment between two tokens of a
    sequence (which attention's backward pass makes nonzero)."""

    second_moment: float
    sequence_cross: float

    def __add__(self, other: object) -> Gradient:
        if not isinstance(other, Gradient):
            return NotImplemented
        return Gradient(
            self.second_moment + other.second_moment,
            self.sequence_cross + other.sequence_cross,
        )

    def scaled(self, factor: float, cross_factor: float) -> Gradient:
        return Gradient(self.second_moment * factor, self.sequence_cross * cross_factor)


Backward = Callable[[Gradient], Gradient]
"""Takes the gradient at a block's output, returns it at its input."""

_PAIR, _PAIR_OTHER, _SEQUENCE, _INDEPENDENT = 0, 1, 2, 3


@dataclass(frozen=True)
class _Stream:
    """The signal between two blocks.

    ``crosses`` are E[x·x'] for x' the value of: the other input of the pair
    at the same position; the other input of the pair at another position;
    another token of the same sequence; an independent input. ``gaussian``
    says whether the values are Gaussian across units.
    """

    second_moment: float
    mean: float
    crosses: tuple[float, float, float, float]
    gaussian: bool

    @property
    def correlation(self) -> float | None:
        if self.second_moment <= 0.0:
            return None
        return self.crosses[_PAIR] / self.second_moment


@dataclass
class _Row:
    """A row being filled in: forward values first, gradients on the way back."""

    name: str
    kind: str
    width: int
    second_moment: float
    mean: float
    variance: float
    post_activation_second_moment: float
    post_activation_mean: float
    correlation: float | None
    chi_1: float | None
    excess_kurtosis: float | None
    saturation_fraction: float | None = None
    gradient_second_moment: float = math.nan
    input_gradient_second_moment: float | None = None
    gradient_ratio: float | None = None
    weight_gradient_second_moment: float | None = None
    bias_gradient_second_moment: float | None = None
    sigma_w2: float | None = None
    sigma_b2: float | None = None

    @classmethod
    def of_stream(cls, name: str, kind: str, width: int, stream: _Stream) -> _Row:
        return cls(
            name,
            kind,
            width,
            stream.second_moment,
            stream.mean,
            stream.second_moment - stream.mean**2,
            stream.second_moment,
            stream.mean,
            stream.correlation,
            None,
            0.0 if stream.gaussian else None,
        )

    def backward(self, gradient: Gradient, at_input: Gradient) -> None:
        self.gradient_second_moment = gradient.second_moment
        self.input_gradient_second_moment = at_input.second_moment
        self.gradient_ratio = None
        if gradient.second_moment > 0.0:
            self.gradient_ratio = at_input.second_moment / gradient.second_moment

    def frozen(self) -> AnalyticLayer:
        return AnalyticLayer(
            **{item.name: getattr(self, item.name) for item in fields(AnalyticLayer)}
        )


@dataclass(frozen=True)
class _Activated:
    """φ(h) for a centred Gaussian h: its moments and E[φ'(h)²]."""

    stream: _Stream
    derivative_second_moment: float


def _fan_out(dense: Dense) -> int:
    """Outputs one input value feeds: (out/groups)·k^d."""
    taps = math.prod(dense.kernel_size) if dense.kernel_size else 1
    return (dense.out_width // dense.groups) * taps


# Beyond 100 feature widths squared meanfield's correlation integrals need
# its largest polar Gauss rules or its composite rule: from a few hundredths up
# to about a third of a second each (tanh at q = 1e12), against milliseconds
# below. One propagation may compute at most MAX_LARGE_Q_INTEGRALS distinct
# ones there, half a minute at worst. A stack whose maps settle on their fixed
# points repeats the same integrals layer after layer and pays for them once;
# only maps still moving after that many layers (a correlation decaying
# slowly at a large q) reach the cap.
LARGE_Q_FEATURE_WIDTHS = 1e2
MAX_LARGE_Q_INTEGRALS = 96


@dataclass
class BeyondAnalyticRange(InvalidInput):
    """The signal grew past where the mean-field integrals are computed.

    Raised by :func:`propagate` when a pre-activation second moment passes
    meanfield's range (1e12) or asks for too many slow large-q integrals. The
    input is valid; its analytic statistics are out of reach, while a
    simulation may still follow it (the propagation chart falls back to one).
    """

    title: str = "Invalid input"

    def prefixed(self, *prefix: str | int) -> BeyondAnalyticRange:
        return BeyondAnalyticRange([p.prefixed(*prefix) for p in self.problems])


class _Bivariate:
    """meanfield's maps at one layer for one propagation, each key computed once.

    E[φ], E[φ²] and χ₁ at q; E[φ(u)φ(u')] and E[φ'(u)φ'(u')] at (q, c). Keyed
    by the exact arguments: a repeated key returns the value computed for it,
    bit for bit, so depth costs nothing once a stack sits on its fixed point.
    ``large_q`` counts the distinct two-dimensional keys beyond the Gauss
    rules; the next one past :data:`MAX_LARGE_Q_INTEGRALS` raises
    :class:`InvalidInput` before it is computed.
    """

    def __init__(self) -> None:
        self.values: dict[tuple[str, Activation, float, float], float] = {}
        self.moments: dict[tuple[str, Activation, float, float], tuple[float, float]]
        self.moments = {}
        self.large_q = 0

    def post_activation_moments(self, act: Activation, q: float) -> tuple[float, float]:
        key = ("moments", act, q, 0.0)
        if key not in self.moments:
            self.moments[key] = meanfield.post_activation_moments(act, q)
        return self.moments[key]

    def chi_1(self, act: Activation, q: float) -> float:
        key = ("chi_1", act, q, 0.0)
        if key not in self.values:
            self.values[key] = meanfield.chi_1(act, q, 1.0)
        return self.values[key]

    def cross_moment(self, name: str, act: Activation, q: float, c: float) -> float:
        return self._value(
            "cross", name, act, q, c, lambda: meanfield.cross_moment(act, q, q, c)
        )

    def chi_c(self, name: str, act: Activation, q: float, c: float) -> float:
        return self._value(
            "chi_c", name, act, q, c, lambda: meanfield.chi_c(act, q, c, 1.0)
        )

    def _value(
        self,
        kind: str,
        name: str,
        act: Activation,
        q: float,
        c: float,
        compute: Callable[[], float],
    ) -> float:
        key = (kind, act, q, c)
        if key in self.values:
            return self.values[key]
        if large_q_threshold(act) < q:
            self.large_q += 1
            if self.large_q > MAX_LARGE_Q_INTEGRALS:
                raise BeyondAnalyticRange.at(
                    (),
                    f"the pre-activation second moment is {q:.6g} at {name}, beyond"
                    f" {large_q_threshold(act):g} where each correlation integral"
                    f" of {act.name} takes up to a third of a second, and the"
                    f" layers have asked for more than {MAX_LARGE_Q_INTEGRALS}"
                    " different ones (the maps have not settled):"
                    " draw the weights or biases with a smaller scale so that"
                    f" q stays below {large_q_threshold(act):g}, or use fewer"
                    " layers",
                    q,
                    f"pre-activation second moments up to {large_q_threshold(act):g}",
                )
        value = self.values[key] = compute()
        return value


def large_q_threshold(act: Activation) -> float:
    """The q beyond which φ's correlation integrals are slow (see above).

    :data:`LARGE_Q_FEATURE_WIDTHS` feature widths squared; infinite for the
    positively homogeneous activations, whose integrals are closed forms.
    """
    if is_positively_homogeneous(act):
        return math.inf
    return LARGE_Q_FEATURE_WIDTHS * _feature_scale(act) ** 2


def _activate(
    name: str,
    act: Activation,
    q: float,
    q_crosses: tuple[float, ...],
    bivariate: _Bivariate,
) -> _Activated:
    """φ of a centred Gaussian pre-activation of second moment q and cross moments.

    Positively homogeneous activations (identity, the ReLU family) are
    evaluated at q = 1 and scaled, φ(√q z) = √q·φ(z), which holds at every q;
    the others within meanfield's range q ≤ 1e12.
    """
    if q > meanfield.MAX_SECOND_MOMENT and not is_positively_homogeneous(act):
        raise BeyondAnalyticRange.at(
            (),
            f"the pre-activation second moment reaches {q:.3g} at {name}, beyond"
            f" {meanfield.MAX_SECOND_MOMENT:g} where the mean-field integrals"
            f" of {act.name} stop: the signal explodes; draw the weights with a"
            " smaller scale or use fewer layers",
            q,
        )

    correlations = [_correlation(cross, q) for cross in q_crosses]
    scale = 1.0
    if is_positively_homogeneous(act) and q > 0.0:
        q, scale = 1.0, q
    mean, second_moment = bivariate.post_activation_moments(act, q)
    unique = {c: bivariate.cross_moment(name, act, q, c) for c in set(correlations)}
    crosses = tuple(scale * unique[c] for c in correlations)
    derivative = bivariate.chi_1(act, q)
    stream = _Stream(
        scale * second_moment,
        math.sqrt(scale) * mean,
        crosses,
        gaussian=act.name == "identity",
    )
    return _Activated(stream, derivative)


def _derivative_cross(
    name: str, act: Activation, q: float, q_cross: float, bivariate: _Bivariate
) -> float:
    """E[φ'(h)·φ'(h')] for two pre-activations of second moment q and cross q_cross.

    Scale-free for positively homogeneous activations, like E[φ'²].
    """
    if is_positively_homogeneous(act) and q > 0.0:
        q, q_cross = 1.0, q_cross / q
    return bivariate.chi_c(name, act, q, _correlation(q_cross, q))


def _correlation(cross: float, q: float) -> float:
    """cross/q clipped to [−1, 1] (rounding can step outside); 1 at q = 0."""
    if q <= 0.0:
        return 1.0
    return max(-1.0, min(1.0, cross / q))


class _Propagator:
    """Walks the blocks forward, recording rows and the backward steps."""

    def __init__(
        self, input_correlation: float, sequence_length: int, follow_tokens: bool
    ) -> None:
        self.input_correlation = input_correlation
        self.sequence_length = sequence_length
        self.follow_tokens = follow_tokens
        self.rows: list[_Row] = []
        self.notes: list[str] = []
        self.bivariate = _Bivariate()

    def blocks(
        self, blocks: tuple[Block, ...], stream: _Stream
    ) -> tuple[_Stream, Backward]:
        steps: list[Backward] = []
        for block in blocks:
            stream, step = self.block(block, stream)
            steps.append(step)

        def backward(gradient: Gradient) -> Gradient:
            for step in reversed(steps):
                gradient = step(gradient)
            return gradient

        return stream, backward

    def block(self, block: Block, stream: _Stream) -> tuple[_Stream, Backward]:
        if isinstance(block, Dense):
            return self.dense(block, stream)
        if isinstance(block, Norm):
            return self.norm(block, stream)
        if isinstance(block, Residual):
            return self.residual(block, stream)
        if isinstance(block, GatedMlp):
            return self.gated_mlp(block, stream)
        if isinstance(block, Attention):
            return self.attention(block, stream)

        return self.embedding(block, stream)

    def dense(self, dense: Dense, stream: _Stream) -> tuple[_Stream, Backward]:
        sigma_w2, sigma_b2 = dense_sigma2(dense)
        q = affine_second_moment(sigma_w2, stream.second_moment, sigma_b2)
        q_crosses = tuple(
            affine_second_moment(sigma_w2, cross, sigma_b2) for cross in stream.crosses
        )
        if not self.follow_tokens:
            # Only attention reads the other pairs: follow the input pair alone.
            q_crosses = (q_crosses[_PAIR],) * 4
        activated = _activate(
            dense.name, dense.activation, q, q_crosses, self.bivariate
        )
        output = activated.stream
        threshold = saturation_threshold(dense.activation)
        row = _Row(
            dense.name,
            "dense",
            dense.out_width,
            q,
            0.0,
            q,
            output.second_moment,
            output.mean,
            q_crosses[_PAIR] / q if q > 0.0 else None,
            sigma_w2 * activated.derivative_second_moment,
            0.0,
            None if threshold is None else saturation_probability(threshold, q),
            sigma_w2=sigma_w2,
            sigma_b2=sigma_b2,
        )
        self.rows.append(row)

        def backward(gradient: Gradient) -> Gradient:
            cross_factor = 0.0
            if gradient.sequence_cross:
                cross_factor = _derivative_cross(
                    dense.name,
                    dense.activation,
                    q,
                    q_crosses[_SEQUENCE],
                    self.bivariate,
                )
            at_h, at_input = backward_through_dense(
                gradient.second_moment,
                activated.derivative_second_moment,
                dense.weight.second_moment,
                _fan_out(dense),
            )
            _, cross_at_input = backward_through_dense(
                gradient.sequence_cross,
                cross_factor,
                dense.weight.second_moment,
                _fan_out(dense),
            )
            at_input_gradient = Gradient(at_input, cross_at_input)
            row.backward(gradient, at_input_gradient)
            row.gradient_second_moment = at_h
            row.weight_gradient_second_moment = at_h * stream.second_moment
            if dense.bias is not None:
                row.bias_gradient_second_moment = at_h
            return at_input_gradient

        return output, backward

    def norm(self, norm: Norm, stream: _Stream) -> tuple[_Stream, Backward]:
        scale = norm_scale(norm.kind, stream.second_moment, stream.mean)
        if norm.kind == "batch_norm":
            self.notes.append(BATCH_NORM_NOTE)

        normalized = normalized_moments(
            norm.kind, stream.second_moment, stream.mean, stream.crosses
        )
        second_moment, mean, crosses = affine_moments(
            norm.weight, norm.bias, *normalized
        )
        constant_affine = all(
            draw is None or draw.std == 0.0 for draw in (norm.weight, norm.bias)
        )
        output = _Stream(
            second_moment, mean, crosses, stream.gaussian and constant_affine
        )
        row = _Row.of_stream(norm.name, "norm", norm.width, output)
        self.rows.append(row)
        gamma_second = 1.0 if norm.weight is None else norm.weight.second_moment

        def backward(gradient: Gradient) -> Gradient:
            factor = gamma_second / scale
            at_input = gradient.scaled(factor, factor)
            row.backward(gradient, at_input)
            if norm.weight is not None:
                row.weight_gradient_second_moment = (
                    gradient.second_moment * normalized[0]
                )
            if norm.bias is not None:
                row.bias_gradient_second_moment = gradient.second_moment
            return at_input

        return output, backward

    def residual(self, residual: Residual, stream: _Stream) -> tuple[_Stream, Backward]:
        branch_input, pre_norm = stream, None
        if residual.placement == "pre" and residual.norm is not None:
            branch_input, pre_norm = self.norm(residual.norm, stream)
        branch, branch_backward = self.blocks(residual.branch, branch_input)
        shortcut, shortcut_backward = self.blocks(residual.shortcut, stream)

        output = independent_sum(shortcut, branch)
        post_norm = None
        if residual.placement == "post" and residual.norm is not None:
            output, post_norm = self.norm(residual.norm, output)
        row = _Row.of_stream(residual.name, "residual", _width(residual), output)
        self.rows.append(row)

        def backward(gradient: Gradient) -> Gradient:
            at_sum = gradient if post_norm is None else post_norm(gradient)
            through_branch = branch_backward(at_sum)
            if pre_norm is not None:
                through_branch = pre_norm(through_branch)
            # The branch's Jacobian holds zero-mean weights: the cross term of the
            # two paths vanishes and their gradient second moments add.
            at_input = shortcut_backward(at_sum) + through_branch
            row.backward(gradient, at_input)
            return at_input

        return output, backward

    def gated_mlp(self, block: GatedMlp, stream: _Stream) -> tuple[_Stream, Backward]:
        gate, gate_backward = self.dense(block.gate, stream)
        up, up_backward = self.dense(block.up, stream)
        product = gated_product_moments(gate, up.second_moment, up.crosses)
        output, down_backward = self.dense(block.down, product)

        def backward(gradient: Gradient) -> Gradient:
            at_product = down_backward(gradient)
            # ∂L/∂u = ∂L/∂p·φ(g) and ∂L/∂φ(g) = ∂L/∂p·u, with independent factors.
            through_up = up_backward(
                at_product.scaled(gate.second_moment, gate.crosses[_SEQUENCE])
            )
            through_gate = gate_backward(
                at_product.scaled(up.second_moment, up.crosses[_SEQUENCE])
            )
            return through_up + through_gate

        return output, backward

    def attention(self, block: Attention, stream: _Stream) -> tuple[_Stream, Backward]:
        self.notes.append(ATTENTION_MODEL)
        tokens = self.sequence_length
        q, q_backward = self.dense(block.q, stream)
        k, k_backward = self.dense(block.k, stream)
        v, v_backward = self.dense(block.v, stream)

        # The scores of one query vary from key to key by the keys' differences.
        key_spread = k.second_moment - k.crosses[_SEQUENCE]
        weights = softmax_moments(max(0.0, q.second_moment * key_spread), tokens)
        sum_squares = weights.sum_squares
        # Two inputs' scores (or two queries' of one sequence) correlate as their
        # queries do, against keys that correlate as their keys do.
        pair_rho = _ratio(
            q.crosses[_PAIR] * (k.crosses[_PAIR] - k.crosses[_PAIR_OTHER]),
            q.second_moment * key_spread,
        )
        pair_other_rho = _ratio(
            q.crosses[_PAIR_OTHER] * (k.crosses[_PAIR] - k.crosses[_PAIR_OTHER]),
            q.second_moment * key_spread,
        )
        sequence_overlap = weight_overlap(
            sum_squares, tokens, _ratio(q.crosses[_SEQUENCE], q.second_moment)
        )
        pair_values = (v.crosses[_PAIR], v.crosses[_PAIR_OTHER])
        mixed = _Stream(
            mixed_value_moment(v.second_moment, v.crosses[_SEQUENCE], sum_squares),
            v.mean,
            (
                mixed_value_moment(
                    *pair_values, weight_overlap(sum_squares, tokens, pair_rho)
                ),
                mixed_value_moment(
                    *pair_values, weight_overlap(sum_squares, tokens, pair_other_rho)
                ),
                mixed_value_moment(
                    v.second_moment, v.crosses[_SEQUENCE], sequence_overlap
                ),
                v.crosses[_INDEPENDENT],
            ),
            gaussian=tokens == 1 and v.gaussian,
        )
        row = _Row.of_stream(block.name, "attention", block.q.out_width, mixed)
        self.rows.append(row)
        output, o_backward = self.dense(block.o, mixed)

        group = block.n_heads // block.n_kv_heads
        value_spread = v.second_moment - v.crosses[_SEQUENCE]
        jacobian = (
            weights.sum_squares - 2.0 * weights.sum_cubes + weights.squared_sum_squares
        )

        def backward(gradient: Gradient) -> Gradient:
            at_mixed = o_backward(gradient)
            row.gradient_second_moment = at_mixed.second_moment
            at_values = attention_value_gradient(
                at_mixed, sum_squares, tokens, sequence_overlap
            )
            at_queries, at_keys = attention_score_gradients(
                at_mixed,
                jacobian,
                tokens,
                value_spread,
                key_spread,
                q.second_moment,
                q.crosses[_SEQUENCE],
            )
            # A key/value head serves `group` query heads: their gradients add.
            return (
                q_backward(at_queries)
                + k_backward(at_keys.scaled(group, group))
                + v_backward(at_values.scaled(group, group))
            )

        return output, backward

    def embedding(self, block: Embedding, stream: _Stream) -> tuple[_Stream, Backward]:
        second_moment = sum(table.second_moment for table in block.tables)
        mean = sum(table.mean for table in block.tables)
        # The pair's second input mixes its rows as c·(first) + √(1−c²)·(fresh).
        c = self.input_correlation
        independent = mean * mean
        pair = c * second_moment + math.sqrt(max(0.0, 1.0 - c * c)) * independent
        normal = all(table.distribution == "normal" for table in block.tables)
        output = _Stream(
            second_moment,
            mean,
            (pair, independent, independent, independent),
            gaussian=normal,
        )
        row = _Row.of_stream("+".join(block.names), "embedding", block.width, output)
        self.rows.append(row)

        def backward(gradient: Gradient) -> Gradient:
            row.gradient_second_moment = gradient.second_moment
            # Each token's row of every table receives the output gradient.
            row.weight_gradient_second_moment = gradient.second_moment
            return gradient

        return output, backward


def _contains_attention(blocks: tuple[Block, ...]) -> bool:
    return any(
        isinstance(block, Attention)
        or (
            isinstance(block, Residual)
            and _contains_attention(block.branch + block.shortcut)
        )
        for block in blocks
    )


def _ratio(numerator: float, denominator: float) -> float:
    return numerator / denominator if denominator > 0.0 else 0.0


def _width(residual: Residual) -> int:
    last = residual.branch[-1]
    if isinstance(last, Dense):
        return last.out_width
    if isinstance(last, Norm | Embedding):
        return last.width
    if isinstance(last, GatedMlp):
        return last.down.out_width
    if isinstance(last, Attention):
        return last.o.out_width

    return _width(last)
