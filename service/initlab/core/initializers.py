"""One function per initializer formula, each citing where it comes from.

The functions take fans, gains and options as plain numbers and return the
scalar the library computes (a standard deviation, a uniform bound, a
variance), in the same floating-point order as the library where that decides
the last bit. Choosing fans and gains for a tensor is the job of
``initlab.core.fans``, ``initlab.core.activations`` and
``initlab.core.recommend``.

"Std" always means the standard deviation of the values drawn, except where a
name says ``sampler_std`` (the σ handed to a truncated-normal sampler before it
cuts the tails).
"""

from __future__ import annotations

import functools
import math
from typing import Literal

import numpy as np

VarianceScalingMode = Literal["fan_in", "fan_out", "fan_avg", "fan_geo_avg"]
VarianceScalingConvention = Literal["keras", "jax"]

#: The std of a standard normal truncated to [-2, 2], hard-coded by Keras 3
#: ``VarianceScaling`` and JAX ``variance_scaling`` (both took it from scipy's
#: truncnorm); ``truncated_normal_std(0, 1, -2, 2)`` reproduces it.
KERAS_TRUNCATED_NORMAL_STD = 0.87962566103423978

#: Keras 3 and JAX cut their truncated normal at this many sampler stds.
KERAS_TRUNCATION_SAMPLER_STDS = 2.0

#: ``nn.Linear`` and ``nn.ConvNd`` call ``kaiming_uniform_(w, a=math.sqrt(5))``.
TORCH_DEFAULT_NEGATIVE_SLOPE = math.sqrt(5)

_LEGENDRE_NODES, _LEGENDRE_WEIGHTS = np.polynomial.legendre.leggauss(24)
_FAR_TAIL = 10.0


def uniform_bound(std: float) -> float:
    """Half-width a of U(-a, a) whose std is ``std``: a = √3·std.

    U(-a, a) has variance a²/3. PyTorch 2.13 ``kaiming_uniform_`` and
    ``xavier_uniform_`` compute ``math.sqrt(3.0) * std`` in this order.
    """
    return math.sqrt(3.0) * std


def uniform_std(lower: float, upper: float) -> float:
    """Std of U(lower, upper): (upper − lower)/√12 (the variance of a uniform)."""
    return (upper - lower) / math.sqrt(12.0)


def xavier_std(fan_in: int, fan_out: int, gain: float = 1.0) -> float:
    """Glorot/Xavier std: σ = gain·√(2/(fan_in + fan_out)).

    Glorot & Bengio 2010, "Understanding the difficulty of training deep
    feedforward neural networks", §4.2, eq. 12-16 (the uniform bound is √3·σ,
    :func:`uniform_bound`). Operation order of PyTorch 2.13
    ``torch.nn.init.xavier_normal_`` / ``xavier_uniform_``:
    ``gain * math.sqrt(2.0 / float(fan_in + fan_out))``.
    """
    return gain * math.sqrt(2.0 / float(fan_in + fan_out))


def kaiming_std(fan: int, gain: float) -> float:
    """He/Kaiming std: σ = gain/√fan, fan = fan_in or fan_out.

    He et al. 2015, "Delving Deep into Rectifiers", §2.2 (eq. 10 forward with
    fan_in, eq. 14 backward with fan_out; gain √2 for ReLU). Operation order of
    PyTorch 2.13 ``torch.nn.init.kaiming_normal_`` / ``kaiming_uniform_``:
    ``gain / math.sqrt(fan)`` (the uniform bound is then √3·σ).
    """
    return gain / math.sqrt(fan)


def lecun_std(fan_in: int) -> float:
    """LeCun std: σ = 1/√fan_in (variance 1/fan_in).

    LeCun, Bottou, Orr & Müller 1998, "Efficient BackProp", §4.6. This is
    :func:`kaiming_std` with gain 1, which is how PyTorch 2.13 expresses it:
    ``kaiming_normal_(w, nonlinearity='linear')``.
    """
    return kaiming_std(fan_in, 1.0)


def variance_scaling_variance(
    scale: float,
    mode: VarianceScalingMode,
    fan_in: float,
    fan_out: float,
    convention: VarianceScalingConvention = "keras",
) -> float:
    """Target variance of VarianceScaling: v = scale/n.

    n is fan_in, fan_out, (fan_in + fan_out)/2 or, in JAX only,
    √(fan_in·fan_out). Keras 3 ``keras.initializers.VarianceScaling`` clamps
    n to at least 1 (``scale /= max(1.0, n)``); JAX 0.10
    ``jax.nn.initializers.variance_scaling`` divides by n as it is (and rounds
    v to the parameter dtype, float32 by default; this returns float64).
    """
    if mode == "fan_in":
        denominator = fan_in
    elif mode == "fan_out":
        denominator = fan_out
    elif mode == "fan_avg":
        denominator = (fan_in + fan_out) / 2.0
    else:
        denominator = math.sqrt(fan_in * fan_out)

    if convention == "keras":
        return scale / max(1.0, denominator)

    return scale / denominator


def variance_scaling_sampler_std(variance: float) -> float:
    """σ handed to the truncated-normal sampler: √v / 0.87962566103423978.

    Keras 3 ``VarianceScaling(distribution='truncated_normal')`` and JAX
    ``variance_scaling(..., 'truncated_normal')`` divide by the std of a
    standard normal cut at ±2 and then cut at ±2 of the enlarged σ, so the
    drawn values have std √v.
    """
    return math.sqrt(variance) / KERAS_TRUNCATED_NORMAL_STD


def variance_scaling_uniform_limit(variance: float) -> float:
    """Limit of U(-l, l) in VarianceScaling: l = √(3v).

    Keras 3 ``VarianceScaling(distribution='uniform')``:
    ``math.sqrt(3.0 * scale)``; JAX: ``jnp.sqrt(3 * variance)``.
    """
    return math.sqrt(3.0 * variance)


def truncated_normal_mean(mean: float, std: float, lower: float, upper: float) -> float:
    """Mean of N(mean, std²) truncated to [lower, upper] (absolute bounds).

    μ + σ·(φ(α) − φ(β))/Z with α = (lower − μ)/σ, β = (upper − μ)/σ,
    Z = Φ(β) − Φ(α) (Johnson, Kotz & Balakrishnan 1994, "Continuous Univariate
    Distributions", vol. 1, §13.10.1). PyTorch 2.13 ``trunc_normal_`` draws
    from exactly this distribution (inverse-CDF sampling, then a clamp).
    Evaluated as :func:`truncated_normal_std` explains; the result is kept in
    [lower, upper], where rounding μ + σ·shift could leave it by an ulp. A cut
    so many σ from the mean that (bound − μ)/σ overflows leaves a point mass
    at that bound.
    """
    shift, _ = _standard_truncated_moments((lower - mean) / std, (upper - mean) / std)
    if math.isinf(shift):
        return upper if shift < 0 else lower

    return min(max(mean + std * shift, lower), upper)


def truncated_normal_std(mean: float, std: float, lower: float, upper: float) -> float:
    """Std of N(mean, std²) truncated to [lower, upper] (absolute bounds).

    σ·√(1 + (αφ(α) − βφ(β))/Z − ((φ(α) − φ(β))/Z)²) with α = (lower − μ)/σ,
    β = (upper − μ)/σ, Z = Φ(β) − Φ(α) (Johnson, Kotz & Balakrishnan 1994,
    "Continuous Univariate Distributions", vol. 1, §13.10.1). For symmetric
    bounds ±βσ this is σ·√(1 − 2βφ(β)/(2Φ(β) − 1)). PyTorch 2.13
    ``torch.nn.init.trunc_normal_(w, mean, std, a, b)`` takes absolute bounds
    and does not correct the variance: std 0.02 cut at ±0.04 draws values with
    std 0.0175925…; cut at the default ±2 it stays 0.02.

    The closed form cancels catastrophically for narrow intervals and far
    tails (its bracket is 1 minus nearly 1), so the same moments are evaluated
    as integrals: the density relative to its largest value on the interval is
    integrated by Gauss–Legendre quadrature, with moments taken about the point
    of the interval nearest the mode, where no digits are lost.
    """
    _, variance = _standard_truncated_moments(
        (lower - mean) / std, (upper - mean) / std
    )

    # A variance below float64's normal range (a cut 1e150 stds out) can
    # round below 0.
    return std * math.sqrt(max(variance, 0.0))


def orthogonal_element_rms(rows: int, cols: int, gain: float = 1.0) -> float:
    """RMS of the entries of a (semi-)orthogonal matrix: gain/√max(rows, cols).

    With rows ≤ cols the rows are orthonormal times gain (W·Wᵀ = gain²·I), so
    the squares sum to gain²·rows over rows·cols entries; otherwise the columns
    are (Wᵀ·W = gain²·I). Saxe, McClelland & Ganguli 2014, "Exact solutions to
    the nonlinear dynamics of learning in deep linear neural networks", §3.
    PyTorch 2.13 ``torch.nn.init.orthogonal_`` flattens the tensor to
    ``(shape[0], numel/shape[0])``.
    """
    return gain / math.sqrt(max(rows, cols))


def torch_default_bias_bound(fan_in: int) -> float:
    """PyTorch's default bias bound for nn.Linear and nn.ConvNd: 1/√fan_in.

    PyTorch 2.13 ``nn.Linear.reset_parameters``: ``bound = 1 / math.sqrt(fan_in)
    if fan_in > 0 else 0`` and ``init.uniform_(self.bias, -bound, bound)``, with
    fan_in read from the weight by torch's fan helper.
    """
    return 1 / math.sqrt(fan_in) if fan_in > 0 else 0.0


def mean_field_weight_std(sigma_w2: float, fan_in: int) -> float:
    """Mean-field weight std: W_ij ~ N(0, σ_w²/fan_in), so σ = √(σ_w²/fan_in).

    Poole, Lahiri, Raghu, Sohl-Dickstein & Ganguli 2016, "Exponential
    expressivity in deep neural networks through transient chaos", §2
    (biases b_i ~ N(0, σ_b²), see :func:`mean_field_bias_std`).
    """
    return math.sqrt(sigma_w2 / fan_in)


def mean_field_bias_std(sigma_b2: float) -> float:
    """Mean-field bias std: b_i ~ N(0, σ_b²), so σ = √σ_b² (Poole et al. 2016, §2)."""
    return math.sqrt(sigma_b2)


def depth_scaled_std(std: float, branch_count: int) -> float:
    """Std of a residual branch's output projection: σ/√(2·n_layer).

    Radford et al. 2019, "Language Models are Unsupervised Multitask Learners"
    §2.3 (GPT-2: "scale the weights of residual layers at initialization by a
    factor of 1/√N where N is the number of residual layers"; nanoGPT writes
    ``0.02/math.sqrt(2 * n_layer)``); Shoeybi et al. 2019, "Megatron-LM", §3
    (``scaled_init_method_normal``: ``sigma / math.sqrt(2.0 * num_layers)``).
    A transformer block has two residual branches, so 2·n_layer is the number
    of residual branches, ``branch_count``.
    """
    return std / math.sqrt(branch_count)


def small_init_std(width: int) -> float:
    """small_init std: σ = √(2/(5d)), d the model width.

    Nguyen & Salazar 2019, "Transformers without Tears", §2.2 (a variance
    between Xavier's 2/(d + 4d) for the MLP); GPT-NeoX
    ``small_init_init_method``: ``math.sqrt(2 / (5 * dim))``.
    """
    return math.sqrt(2 / (5 * width))


def wang_init_std(n_layers: float, width: int) -> float:
    """wang_init std for residual output projections: σ = 2/(L·√d).

    Wang 2021 (Mesh-Transformer-JAX, GPT-J), as GPT-NeoX's
    ``wang_init_method`` computes it: ``2 / n_layers / math.sqrt(dim)``, with L
    the number of transformer blocks.
    """
    return 2 / n_layers / math.sqrt(width)


def fixup_branch_scale(branch_count: int, branch_depth: int) -> float:
    """Fixup's rescaling of a residual branch's inner layers: L^(−1/(2m−2)).

    Zhang, Dauphin & Ma 2019, "Fixup Initialization: Residual Learning Without
    Normalization", §3 (rule 2: scale the standard init of the m − 1 inner
    layers of each of the L branches by L^(−1/(2m−2)); the last layer is
    zero). Only defined for m ≥ 2.
    """
    return branch_count ** (-1.0 / (2 * branch_depth - 2))


def deepnorm_beta(n_layers: float) -> float:
    """DeepNorm's Xavier gain for ffn, value and output projections: β = (8N)^(−1/4).

    Wang, Ma, Dong, Huang, Zhang & Wei 2022, "DeepNet: Scaling Transformers to
    1,000 Layers", §3 and Table 1 (encoder-only or decoder-only with N layers).
    """
    return math.pow(8.0 * n_layers, -0.25)


def deepnorm_alpha(n_layers: float) -> float:
    """DeepNorm's residual scale, x ← LN(α·x + G(x)): α = (2N)^(1/4).

    Wang et al. 2022, "DeepNet", §3 and Table 1 (encoder-only or decoder-only).
    """
    return math.pow(2.0 * n_layers, 0.25)


@functools.lru_cache(maxsize=1024)
def _standard_truncated_moments(alpha: float, beta: float) -> tuple[float, float]:
    """Mean and variance of N(0, 1) truncated to [alpha, beta].

    Moments are taken about c, the point of [alpha, beta] nearest 0: the
    density relative to φ(c) is exp(−c·t − t²/2) at c + t, at most 1, so the
    integrals keep their digits in any tail, and E[(x − c)²] − E[x − c]² loses
    at most a factor 4 (for a density that decreases away from c). Bounds
    beyond ±10 on both sides cut less than 1e-22 of the mass: nothing changes
    in double precision, so mean 0 and variance 1 are returned exactly. An
    interval too narrow to hold any mass in double precision (β − α = 0, or an
    infinite c) is the point c: its variance is 0.
    """
    if alpha <= -_FAR_TAIL and beta >= _FAR_TAIL:
        return 0.0, 1.0
    if alpha >= 0.0:
        mass, first, second = _one_sided_moments(alpha, beta - alpha)
        if mass == 0.0:
            return alpha, 0.0
        return alpha + first / mass, second / mass - (first / mass) ** 2
    if beta <= 0.0:
        mass, first, second = _one_sided_moments(-beta, beta - alpha)
        if mass == 0.0:
            return beta, 0.0
        return beta - first / mass, second / mass - (first / mass) ** 2

    right = _one_sided_moments(0.0, beta)
    left = _one_sided_moments(0.0, -alpha)
    mass = right[0] + left[0]
    first = (right[1] - left[1]) / mass

    return first, (right[2] + left[2]) / mass - first * first


def _one_sided_moments(start: float, width: float) -> tuple[float, float, float]:
    """∫ t^k·exp(−start·t − t²/2) dt over [0, width] for k = 0, 1, 2 (start ≥ 0).

    The integrand falls below e^(−92) ≈ 1e-40 of its value at 0 beyond
    t = √(start² + 184) − start, so the range is cut there. Panels 4/max(start, 1)
    long with 24 Gauss–Legendre nodes each integrate it to rounding error.
    The cut is computed as 184/(start + √(start² + 184)), which neither cancels
    nor overflows for a start of 1e12 or 1e300.
    """
    if start <= 1.0:
        negligible = math.sqrt(start * start + 184.0) - start
    else:
        negligible = (184.0 / start) / (1.0 + math.hypot(1.0, math.sqrt(184.0) / start))
    end = min(width, negligible)
    if not end > 0.0:
        return 0.0, 0.0, 0.0
    panel = 4.0 / max(start, 1.0)
    panels = max(1, math.ceil(end / panel))
    edges = np.linspace(0.0, end, panels + 1)
    half = (edges[1:] - edges[:-1])[:, None] / 2.0
    t = (edges[:-1, None] + half) + half * _LEGENDRE_NODES[None, :]
    weights = half * _LEGENDRE_WEIGHTS[None, :] * np.exp(-start * t - 0.5 * t * t)

    return (
        float(np.sum(weights)),
        float(np.sum(weights * t)),
        float(np.sum(weights * t * t)),
    )
