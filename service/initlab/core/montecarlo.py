"""Finite-width Monte Carlo: the statistics of real networks drawn at init.

The analytic side (``initlab.core.propagation``) predicts what an infinitely
wide network does; this module draws ``seeds`` independent networks of the
given widths, passes a batch through each and measures, layer by layer, the
same statistics, so the answer can show the prediction next to finite-width
values with their spread. The dominant finite-width effect is
network-to-network fluctuation, which a bigger batch does not reduce: values
are reported per network (``seeds × layers``) with their mean and SD over the
networks (signal-propagation.md, "Monte Carlo at finite width").

Built for speed and memory from the start:

- One random stream per layer and network: the layer at forward position r of
  network s draws from ``SeedSequence(seed, spawn_key=(s, r + 2, part))``
  (part 0 weights, 1 biases or a norm's shift, t an embedding's t-th table;
  ``(s, 0, 0)`` is the input, ``(s, 1, 0)`` the output gradient). A layer's
  numbers do not depend on the depth of the network, and the backward pass
  regenerates each weight from its stream instead of keeping it.
- float32 sampling and matrix products; every moment is accumulated in
  float64 across rows (examples and positions), each row's units summed in
  float32 by numpy's pairwise summation (about 1e-6 relative at worst).
- Forward-only statistics of a linear layer with zero-mean Gaussian weights
  never draw W: given the batch X (R rows of n inputs), each output unit's
  R-vector is exactly N(0, s²·XXᵀ) for weights of std s, so the layer's
  pre-activations are H = L·Z with L Lᵀ = s²·XXᵀ (Cholesky) and Z ~ N(0, 1)
  of shape (R, n_out), plus the bias drawn per unit. That costs R·n_out normal
  numbers instead of n_in·n_out (10–16× faster than drawing W with numpy or
  PyTorch at width 4096, batch 256: benchmarks/README.md). When the Gram
  matrix is singular (more rows than inputs, repeated or all-zero rows)
  Cholesky is replaced by a symmetric eigendecomposition with the negative
  rounding noise of the eigenvalues set to 0, which samples the same
  Gaussian exactly. The path is taken when it costs less than drawing W
  (:func:`sampling_path`); the projections of attention blocks and gated
  MLPs take it too, their weights being independent Gaussians alike.
- Memory does not grow with depth in forward-only mode: only the current
  batch is alive. With ``backward`` each block keeps its input (R × width
  float32) and recomputes the rest in the backward pass from regenerated
  weights; :func:`estimate_cost` reports the peak.

The model simulated is stated in :data:`MODEL`, which a response can quote.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from initlab.core.activations import phi, phi_prime
from initlab.core.errors import FieldProblem, InvalidInput
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

FORWARD_STATISTICS: tuple[str, ...] = (
    "second_moment",
    "mean",
    "variance",
    "excess_kurtosis",
    "post_activation_second_moment",
    "post_activation_mean",
    "correlation",
    "dead_fraction",
    "saturation_fraction",
)
BACKWARD_STATISTICS: tuple[str, ...] = (
    "gradient_second_moment",
    "input_gradient_second_moment",
    "weight_gradient_second_moment",
    "bias_gradient_second_moment",
)

NORM_EPS = 1e-5
# A unit of a bounded activation is saturated where |φ'(h)| < 1% of max |φ'|.
SATURATION_LEVEL = 0.01
SATURATING_ACTIVATIONS = ("tanh", "sigmoid", "softsign")
# The price of one random number in flops, for Cost.work and for choosing
# between the kernel and the weight path. Measured on the machine of
# benchmarks/README.md, a float32 normal from the Box–Muller sampler below
# (about 3 ns) costs what 150–200 flops of OpenBLAS sgemm do on one core; the
# published compute budget (web/config.py, openapi.yaml) is stated at 1000,
# which errs towards refusing, so lower the two together.
RANDOM_NUMBER_FLOPS = 1000
# Elementwise work per output value of a layer: the activation, φ' where it is
# needed, and the moment sums (float32 operations counted as flops).
_ELEMENTWISE_FLOPS = 40

_INPUT_STREAM = 0
_OUTPUT_GRADIENT_STREAM = 1
_FIRST_LAYER_STREAM = 2
_BYTES = 4

MODEL = (
    "Monte Carlo at finite width: every network (seed) is drawn afresh from the"
    " init, in float32, with float64 moment sums. The batch holds pairs of"
    " inputs (examples 2i and 2i+1): each input row has mean square exactly"
    " input_second_moment over its features, the two rows of a pair have"
    " correlation exactly input_correlation (0 when not given); correlation is"
    " the mean over pairs (and positions) of the cosine between the pair's"
    " vectors. A conv net runs on a spatial_size^d grid with circular padding"
    " and stride 1 (a transposed conv as the equivalent stride-1 conv);"
    " statistics pool examples, locations and units. A network with attention"
    " or embeddings reads batch_size sequences of sequence_length tokens (a"
    " conv net with attention attends over its grid); attention is"
    " softmax(QKᵀ/√d_head)·V over all tokens of the sequence (no causal mask),"
    " heads sharing key/value heads in groups of n_heads/n_kv_heads. Embedding"
    " inputs are distinct tokens: each token's row of every table is a fresh"
    " draw, the rows of the summed tables add, and the second sequence of a"
    " pair mixes its rows as c·(first) + √(1−c²)·(fresh). LayerNorm and RMSNorm"
    " normalise each token over its features, BatchNorm each feature over the"
    " batch and locations (batch statistics), eps 1e-5. Backward: the gradient"
    " at the network's output is drawn N(0, 1) per unit and example (a loss"
    " Σ y·r with r ~ N(0, 1)); gradient second moments are per example and per"
    " location, and a weight's is the mean square of its per-example,"
    " per-location contributions δ_out·x_in. Dead: a unit whose φ' is 0 on"
    " every input of the batch (ReLU family; 0 for activations whose φ' does"
    " not vanish on an interval). Saturated (tanh, sigmoid, softsign): a"
    " pre-activation where |φ'(h)| < 0.01·max|φ'|."
)


# --- results ------------------------------------------------------------------


@dataclass(frozen=True)
class LayerRow:
    """One row of the statistics: a point of the network, in forward order.

    ``kind`` is ``dense`` (a linear or conv layer, or a projection of an
    attention block or gated MLP, named ``<block>.<proj>``), ``embedding``
    (the summed tables, named by their names joined with ``+``), ``norm``,
    ``attention`` (the mixed values softmax(QKᵀ/√d)·V of an attention block,
    named by the block, before its output projection) or ``residual`` (a
    residual group's output). ``activation`` is φ's name for a dense row and
    ``identity`` elsewhere. ``sampling`` is how a dense row's pre-activations
    are drawn: ``kernel`` (H = L·Z, no weights) or ``weights``; ``None`` for
    the other rows.
    """

    name: str
    kind: str
    width: int
    activation: str = "identity"
    sampling: str | None = None


@dataclass(frozen=True)
class Cost:
    """What a simulation needs, computed from shapes only.

    ``flops`` counts floating-point operations of products, factorisations and
    elementwise work; ``random_numbers`` the numbers drawn; ``peak_bytes`` the
    largest working memory (arrays alive at once: an upper estimate, between
    1× and 2× of the peak tracemalloc measures). :attr:`work` folds the random
    numbers into flop-equivalents, the figure to hold against a compute budget.
    """

    flops: int
    peak_bytes: int
    random_numbers: int

    @property
    def work(self) -> int:
        return self.flops + RANDOM_NUMBER_FLOPS * self.random_numbers


@dataclass(frozen=True)
class MonteCarloResult:
    """Per-network statistics of every row, with their mean and SD over networks.

    ``values[statistic]`` is a float64 array of shape ``(seeds, len(layers))``
    for every name in :data:`FORWARD_STATISTICS` (and
    :data:`BACKWARD_STATISTICS` when ``backward``); NaN where a statistic does
    not apply to a row (saturation of a ReLU, the bias gradient of a layer
    without bias, the kurtosis of a constant) and where the network's signal
    left float32 (∞ past an overflow, NaN after it or where it vanished to 0
    and a ratio is 0/0). See :data:`MODEL` for what each means.
    """

    layers: tuple[LayerRow, ...]
    values: dict[str, np.ndarray]
    seed: int
    seeds: int
    batch_size: int
    positions: tuple[int, ...]
    input_second_moment: float
    input_correlation: float | None
    backward: bool
    cost: Cost
    numpy_version: str = np.__version__
    model: str = MODEL

    def mean(self, statistic: str) -> np.ndarray:
        """The mean over networks of ``statistic``, one value per row."""
        with np.errstate(invalid="ignore", over="ignore"):
            return self.values[statistic].mean(axis=0)

    def sd(self, statistic: str) -> np.ndarray:
        """The SD over networks (ddof 1; 0 with a single network).

        NaN where a network's value is ∞ or NaN (an overflowed signal).
        """
        if self.seeds < 2:
            return np.zeros(len(self.layers))

        with np.errstate(invalid="ignore", over="ignore"):
            return self.values[statistic].std(axis=0, ddof=1)

    def standard_error(self, statistic: str) -> np.ndarray:
        """SD / √seeds: the uncertainty of :meth:`mean`."""
        return self.sd(statistic) / math.sqrt(self.seeds)

    def row(self, name: str) -> int:
        """The index of the row called ``name``."""
        for index, layer in enumerate(self.layers):
            if layer.name == name:
                return index
        raise KeyError(name)


# --- checks -------------------------------------------------------------------


def _check_arguments(**arguments: object) -> None:
    problems = []
    for name in ("batch_size", "seeds", "spatial_size", "sequence_length"):
        value = arguments[name]
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            problems.append(
                FieldProblem(
                    (name,),
                    f"{name} must be a positive integer, got {value!r}",
                    value,
                    "an integer ≥ 1",
                )
            )
    seed = arguments["seed"]
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        problems.append(
            FieldProblem(
                ("seed",),
                f"seed must be a non-negative integer, got {seed!r}",
                seed,
                "an integer ≥ 0",
            )
        )
    moment = arguments["input_second_moment"]
    if (
        isinstance(moment, bool)
        or not isinstance(moment, int | float)
        or not 0.0 < moment < math.inf
    ):
        problems.append(
            FieldProblem(
                ("input_second_moment",),
                f"the input second moment must be a positive finite number, got"
                f" {moment!r}",
                moment,
                "a number > 0",
            )
        )
    correlation = arguments["input_correlation"]
    if correlation is not None and (
        isinstance(correlation, bool)
        or not isinstance(correlation, int | float)
        or not -1.0 <= correlation <= 1.0
    ):
        problems.append(
            FieldProblem(
                ("input_correlation",),
                f"the input correlation must be a number in [-1, 1], got"
                f" {correlation!r}; leave it out for independent pairs",
                correlation,
                "a number in [-1, 1]",
            )
        )
    if problems:
        raise InvalidInput(problems)


# --- the layout of a batch ----------------------------------------------------


def _contains(blocks: tuple[Block, ...], kinds: type | tuple[type, ...]) -> bool:
    for block in blocks:
        if isinstance(block, kinds):
            return True
        if isinstance(block, Residual) and (
            _contains(block.branch, kinds) or _contains(block.shortcut, kinds)
        ):
            return True
    return False


def batch_positions(
    network: Network, *, spatial_size: int = 8, sequence_length: int = 8
) -> tuple[int, ...]:
    """The positions every example holds: a conv net's grid, a sequence, or none.

    ``(spatial_size,)·d`` for a network with d-dimensional convolutions;
    ``(sequence_length,)`` for one with attention or embeddings; ``()`` for an
    MLP (one vector per example).
    """
    if network.spatial_dims:
        return (spatial_size,) * network.spatial_dims
    if _contains(network.blocks, (Attention, Embedding)):
        return (sequence_length,)

    return ()


# --- how a tensor is drawn ----------------------------------------------------


def _generator(
    seed: int, seed_index: int, stream: int, part: int
) -> np.random.Generator:
    sequence = np.random.SeedSequence(seed, spawn_key=(seed_index, stream, part))
    return np.random.Generator(np.random.PCG64(sequence))


def _standard_normal(rng: np.random.Generator, shape: tuple[int, ...]) -> np.ndarray:
    """float32 N(0, 1) numbers by the Box–Muller transform of raw 32-bit words.

    z₁ = r·cos θ, z₂ = r·sin θ with r = √(−2 ln u), θ = 2πv for independent
    uniforms u, v (Box & Muller 1958, "A Note on the Generation of Random
    Normal Deviates", Ann. Math. Statist. 29); u = (k + 1/2)·2⁻³² and
    v = k'·2⁻³² are the two halves of one 64-bit output of the generator, so
    |z| reaches 6.8 (the mass beyond is 1e-11). Computed in float32 in chunks
    of 2¹⁶ numbers (each chunk's cosines, then its sines), which keeps the
    temporaries in cache and small: about half the time of numpy's float32
    ziggurat here, the largest cost of the kernel path.
    """
    count = math.prod(shape)
    normals = np.empty(count, dtype=np.float32)
    for start in range(0, count, _NORMAL_CHUNK):
        _box_muller(rng, normals[start : start + _NORMAL_CHUNK])
    return normals.reshape(shape)


_NORMAL_CHUNK = 1 << 16


def _box_muller(rng: np.random.Generator, out: np.ndarray) -> None:
    half = (out.size + 1) // 2
    words = rng.bit_generator.random_raw(half).view(np.uint32)
    radius = words[0::2].astype(np.float32)
    radius += np.float32(0.5)
    radius *= np.float32(2.0**-32)
    np.log(radius, out=radius)
    radius *= np.float32(-2.0)
    np.sqrt(radius, out=radius)
    angle = words[1::2].astype(np.float32)
    angle *= np.float32(2.0 * math.pi * 2.0**-32)

    cosines, sines = out[:half], out[half:]
    np.cos(angle, out=cosines)
    cosines *= radius
    np.sin(angle[: sines.size], out=sines)
    sines *= radius[: sines.size]


def _truncated_acceptance(draw: Draw) -> float:
    """P(lower ≤ mean + σz ≤ upper) for z ~ N(0, 1), σ the sampler's std."""
    lower, upper, sampler_std = draw.truncation
    root2 = math.sqrt(2.0) * sampler_std
    below = 0.5 * math.erfc(-(lower - draw.mean) / root2)
    above = 0.5 * math.erfc((upper - draw.mean) / root2)
    return max(1.0 - below - above, 1e-12)


def sample_draw(
    draw: Draw, shape: tuple[int, ...], rng: np.random.Generator
) -> np.ndarray:
    """A float32 array of ``shape`` with entries drawn as ``draw`` says.

    normal: mean + std·z; uniform: mean + U(−bound, bound); truncated normal:
    mean + sampler_std·z redrawn until inside [lower, upper] (PyTorch 2.13
    torch.nn.init.trunc_normal_ accepts the same distribution); orthogonal:
    gain·Q of the QR decomposition of a Gaussian matrix (rows = shape[0],
    columns the rest; transposed when wider than tall), each column's sign
    fixed by R's diagonal so Q is Haar-distributed (PyTorch 2.13
    torch.nn.init.orthogonal_; Mezzadri 2007, "How to generate random matrices
    from the classical compact groups", section 5); constant: mean.
    """
    count = math.prod(shape)
    if draw.distribution == "constant" or (
        draw.distribution != "orthogonal" and draw.std == 0.0
    ):
        return np.full(shape, draw.mean, dtype=np.float32)

    if draw.distribution == "normal":
        values = _standard_normal(rng, shape)
        values *= np.float32(draw.std)
    elif draw.distribution == "uniform":
        bound = draw.bound if draw.bound is not None else math.sqrt(3.0) * draw.std
        values = rng.random(shape, dtype=np.float32)
        values *= np.float32(2.0 * bound)
        values -= np.float32(bound)
    elif draw.distribution == "truncated_normal":
        values = _truncated_normal(draw, count, rng).reshape(shape)
    elif draw.distribution == "orthogonal":
        values = _orthogonal(draw, shape, rng)
    else:
        raise InvalidInput.at(
            ("distribution",),
            f"cannot draw from {draw.distribution!r}",
            draw.distribution,
            "normal, uniform, truncated_normal, orthogonal, constant",
        )

    if draw.mean != 0.0 and draw.distribution != "truncated_normal":
        values += np.float32(draw.mean)
    return values


def _truncated_normal(draw: Draw, count: int, rng: np.random.Generator) -> np.ndarray:
    lower, upper, sampler_std = draw.truncation
    values = _standard_normal(rng, (count,))
    values *= np.float32(sampler_std)
    values += np.float32(draw.mean)
    outside = np.flatnonzero((values < lower) | (values > upper))
    while outside.size:
        fresh = _standard_normal(rng, (outside.size,))
        fresh *= np.float32(sampler_std)
        fresh += np.float32(draw.mean)
        values[outside] = fresh
        outside = outside[(fresh < lower) | (fresh > upper)]
    return values


def _orthogonal(
    draw: Draw, shape: tuple[int, ...], rng: np.random.Generator
) -> np.ndarray:
    rows = shape[0]
    columns = math.prod(shape[1:])
    gaussian = _standard_normal(rng, (rows, columns))
    if rows < columns:
        gaussian = gaussian.T
    q, r = np.linalg.qr(gaussian)
    q *= np.sign(np.diagonal(r))
    if rows < columns:
        q = q.T
    gain = draw.gain if draw.gain is not None else 1.0
    return np.ascontiguousarray(q * np.float32(gain), dtype=np.float32).reshape(shape)


def _activation_arrays(act: Activation) -> float:
    """Arrays of a layer's output size alive while φ(h) and h's moments are taken.

    h, φ(h), a square for the moments, and φ's own temporaries: none for
    the ReLU family, tanh and softsign; a few for sigmoid-based forms; about
    ten for GELU's erfc. An upper count, measured with tracemalloc.
    """
    if act.name in ("identity", "relu", "leaky_relu", "tanh", "softsign"):
        return 4.0
    if act.name == "gelu":
        return 14.0

    return 8.0


def _drawing_bytes(count: int) -> float:
    """Temporaries of drawing ``count`` normals: a chunk's words, radii and angles."""
    return 8.0 * min(count, _NORMAL_CHUNK)


def _random_numbers(draw: Draw | None, count: int) -> float:
    """Numbers drawn to fill ``count`` entries (truncation redraws included)."""
    if draw is None or draw.distribution == "constant":
        return 0
    if draw.distribution != "orthogonal" and draw.std == 0.0:
        return 0
    if draw.distribution == "truncated_normal":
        return count / _truncated_acceptance(draw)

    return count


# --- dense layers: weights, products and the kernel path ----------------------


def _receptive_field(dense: Dense) -> int:
    return math.prod(dense.kernel_size)


def _fan_in(dense: Dense) -> int:
    """Inputs summed into one output: (in/groups)·k^d."""
    return dense.in_width // dense.groups * _receptive_field(dense)


def _weight_shape(dense: Dense) -> tuple[int, int, int, int]:
    """(groups, out/groups, k^d, in/groups): a conv's taps, one per offset."""
    groups = dense.groups
    return (
        groups,
        dense.out_width // groups,
        _receptive_field(dense),
        dense.in_width // groups,
    )


def _draw_weight(dense: Dense, rng: np.random.Generator) -> np.ndarray:
    groups, per_group, taps, inputs = _weight_shape(dense)
    # Drawn as PyTorch lays it out, (out, in/groups·k^d), so an orthogonal init
    # is orthogonal over the same rows and columns.
    weight = sample_draw(dense.weight, (dense.out_width, taps * inputs), rng)
    return weight.reshape(groups, per_group, taps, inputs)


def _offsets(dense: Dense) -> list[tuple[int, ...]]:
    """The circular shift that brings each tap's input under the output location.

    Tap k of a kernel of size K reads x[p + k − (K − 1)//2]; rolling x by
    (K − 1)//2 − k along that axis puts it at p.
    """
    if not dense.kernel_size:
        return [()]

    return [
        tuple(
            (size - 1) // 2 - k for k, size in zip(tap, dense.kernel_size, strict=True)
        )
        for tap in np.ndindex(*dense.kernel_size)
    ]


def _spatial_axes(x: np.ndarray) -> tuple[int, ...]:
    return tuple(range(1, x.ndim - 1))


def _grouped_product(x: np.ndarray, weight: np.ndarray) -> np.ndarray:
    """Σ_c x[..., g, c]·weight[g, j, c] → [..., g·j]: (rows, in) · per-group weights."""
    groups, per_group, inputs = weight.shape
    rows = x.reshape(-1, groups * inputs)
    if groups == 1:
        return rows @ weight[0].T

    stacked = rows.reshape(-1, groups, inputs).transpose(1, 0, 2)
    product = np.matmul(stacked, weight.transpose(0, 2, 1))
    return product.transpose(1, 0, 2).reshape(-1, groups * per_group)


def _grouped_transpose(dh: np.ndarray, weight: np.ndarray) -> np.ndarray:
    """Σ_j dh[..., g, j]·weight[g, j, c] → [..., g·c]: the adjoint of the product."""
    groups, per_group, inputs = weight.shape
    rows = dh.reshape(-1, groups * per_group)
    if groups == 1:
        return rows @ weight[0]

    stacked = rows.reshape(-1, groups, per_group).transpose(1, 0, 2)
    product = np.matmul(stacked, weight)
    return product.transpose(1, 0, 2).reshape(-1, groups * inputs)


def _apply_weight(x: np.ndarray, dense: Dense, weight: np.ndarray) -> np.ndarray:
    """Wx for every row of x (and every location, circularly, for a conv)."""
    out_shape = (*x.shape[:-1], dense.out_width)
    if not dense.kernel_size:
        return _grouped_product(x, weight[:, :, 0, :]).reshape(out_shape)

    axes = _spatial_axes(x)
    total = np.zeros(out_shape, dtype=x.dtype)
    for tap, shift in enumerate(_offsets(dense)):
        shifted = np.roll(x, shift, axis=axes)
        total += _grouped_product(shifted, weight[:, :, tap, :]).reshape(out_shape)
    return total


def _apply_weight_transpose(
    dh: np.ndarray, dense: Dense, weight: np.ndarray
) -> np.ndarray:
    """Wᵀδ: the gradient at a dense layer's input from the one at its output."""
    in_shape = (*dh.shape[:-1], dense.in_width)
    if not dense.kernel_size:
        return _grouped_transpose(dh, weight[:, :, 0, :]).reshape(in_shape)

    axes = _spatial_axes(dh)
    total = np.zeros(in_shape, dtype=dh.dtype)
    for tap, shift in enumerate(_offsets(dense)):
        part = _grouped_transpose(dh, weight[:, :, tap, :]).reshape(in_shape)
        total += np.roll(part, tuple(-s for s in shift), axis=axes)
    return total


def _patch_square_norms(x: np.ndarray, dense: Dense) -> np.ndarray:
    """Σ of x² over the inputs one output reads, per row, location and group."""
    groups = dense.groups
    squares = np.square(x, dtype=np.float64)
    per_group = squares.reshape(*x.shape[:-1], groups, -1).sum(axis=-1)
    if not dense.kernel_size:
        return per_group

    axes = _spatial_axes(x)
    return sum(np.roll(per_group, shift, axis=axes) for shift in _offsets(dense))


def kernel_sampling_applies(dense: Dense) -> bool:
    """Whether H = L·Z samples this layer exactly: linear, zero-mean normal W."""
    return (
        not dense.kernel_size
        and dense.weight.distribution == "normal"
        and dense.weight.mean == 0.0
        and dense.weight.std > 0.0
    )


def _dense_flops(dense: Dense, rows: int, path: str) -> tuple[float, float]:
    """(flops, random numbers) of a dense layer's forward pass on ``rows`` rows."""
    n_in, n_out = dense.in_width, dense.out_width
    bias_numbers = _random_numbers(dense.bias, n_out)
    elementwise = _ELEMENTWISE_FLOPS * rows * n_out
    if path == "kernel":
        flops = 2.0 * rows * rows * n_in + rows**3 / 3.0 + 2.0 * rows * rows * n_out
        return flops + elementwise, rows * n_out + bias_numbers

    weights = n_out * _fan_in(dense)
    flops = 2.0 * rows * weights + elementwise
    if dense.weight.distribution == "orthogonal":
        tall, wide = max(n_out, weights // n_out), min(n_out, weights // n_out)
        flops += 4.0 * tall * wide * wide
    return flops, _random_numbers(dense.weight, weights) + bias_numbers


def sampling_path(
    dense: Dense, rows: int, backward: bool, kernel_sampling: bool = True
) -> str:
    """``kernel`` or ``weights``: how a dense layer's pre-activations are drawn.

    The kernel path needs a linear layer with zero-mean Gaussian weights and a
    forward-only run (the backward pass needs W); it is taken when its cost
    (Gram matrix, Cholesky, L·Z and R·n_out normals) is below that of drawing
    W and multiplying (n_in·n_out normals), both counted as
    :attr:`Cost.work`. ``kernel_sampling=False`` always draws W.
    """
    if backward or not kernel_sampling or not kernel_sampling_applies(dense):
        return "weights"

    kernel_flops, kernel_numbers = _dense_flops(dense, rows, "kernel")
    weight_flops, weight_numbers = _dense_flops(dense, rows, "weights")
    kernel = kernel_flops + RANDOM_NUMBER_FLOPS * kernel_numbers
    weights = weight_flops + RANDOM_NUMBER_FLOPS * weight_numbers
    return "kernel" if kernel < weights else "weights"


def _gram_factor(gram: np.ndarray, dtype: type = np.float32) -> tuple[np.ndarray, bool]:
    """An L with L·Lᵀ = K for a symmetric positive semi-definite K, in ``dtype``.

    Cholesky (float64, L lower triangular: returns ``(L, True)``) when K is
    positive definite; otherwise the symmetric eigendecomposition K = VΛVᵀ
    with L = V·√max(Λ, 0) (``(L, False)``): L·Z is then exactly N(0, K) up to
    the rounding noise of K's zero eigenvalues, where a jitter added to the
    diagonal would change the distribution.
    """
    try:
        return np.linalg.cholesky(gram).astype(dtype), True
    except np.linalg.LinAlgError:
        eigenvalues, eigenvectors = np.linalg.eigh(gram)
        factor = eigenvectors * np.sqrt(np.maximum(eigenvalues, 0.0))
        return factor.astype(dtype), False


_TRIANGULAR_BLOCK = 64


def _lower_triangular_product(factor: np.ndarray, noise: np.ndarray) -> np.ndarray:
    """L·Z for a lower-triangular L, skipping its zero upper half.

    Split in halves, [L₁₁ 0; L₂₁ L₂₂]·[Z₁; Z₂] = [L₁₁Z₁; L₂₁Z₁ + L₂₂Z₂], with
    the diagonal blocks split again down to 64 rows: about 0.6 of the flops of
    the full product.
    """
    size = factor.shape[0]
    if size <= _TRIANGULAR_BLOCK:
        return factor @ noise

    half = size // 2
    product = np.empty((size, noise.shape[1]), dtype=noise.dtype)
    product[:half] = _lower_triangular_product(factor[:half, :half], noise[:half])
    np.matmul(factor[half:, :half], noise[:half], out=product[half:])
    product[half:] += _lower_triangular_product(factor[half:, half:], noise[half:])
    return product


def _kernel_sample(x: np.ndarray, dense: Dense, rng: np.random.Generator) -> np.ndarray:
    """Pre-activations Wx without W: each unit's column is N(0, s²·XXᵀ).

    For W_ij i.i.d. N(0, s²), the output unit i sees h_i = X·w_i, a Gaussian
    vector over the R rows of X with covariance s²·XXᵀ; units are independent.
    Sampling H = L·Z with L·Lᵀ = s²·XXᵀ and Z ~ N(0, 1)^{R × n_out} is exact
    (Lee et al. 2018, "Deep Neural Networks as Gaussian Processes", arXiv
    1711.00165, section 2.2, where the same conditional Gaussian gives the
    NNGP kernel; signal-propagation.md, "Monte Carlo at finite width").
    """
    rows = x.reshape(-1, dense.in_width)
    out_shape = (*x.shape[:-1], dense.out_width)
    variance = dense.weight.std**2
    kernel = (rows @ rows.T).astype(np.float64)
    kernel *= variance
    noise = _standard_normal(rng, (rows.shape[0], dense.out_width))
    if not np.isfinite(kernel).all():
        return _overflowed_sample(rows, variance, noise).reshape(out_shape)

    factor, triangular = _gram_factor(kernel)
    product = _lower_triangular_product if triangular else np.matmul
    return product(factor, noise).reshape(out_shape)


def _overflowed_sample(
    rows: np.ndarray, variance: float, noise: np.ndarray
) -> np.ndarray:
    """The kernel path for inputs whose float32 Gram matrix overflowed.

    Redone in float64, cast back to float32 at the end: entries past float32
    become ±∞ as Wx would on the weight path, and inputs already ∞ or NaN
    give NaN, as ∞ − ∞ does there.
    """
    if not np.isfinite(rows).all():
        return np.full(noise.shape, np.nan, dtype=np.float32)

    wide = rows.astype(np.float64)
    factor, _ = _gram_factor(wide @ wide.T * variance, dtype=np.float64)
    return (factor @ noise.astype(np.float64)).astype(np.float32)


# --- moments ------------------------------------------------------------------


def _row_sums(values: np.ndarray) -> np.ndarray:
    """Σ over each row's units (the last axis), as float64.

    A row is summed in its own dtype by numpy's pairwise summation (relative
    error below (16 + log₂(n/128))·2⁻²⁴, about 1e-6, for n ≤ 2¹⁶ units),
    twice as fast as casting every entry to float64; the moments then add the
    rows in float64, so no error grows with the batch, depth or seeds.
    """
    return np.add.reduce(values, axis=-1).astype(np.float64)


def _sum64(values: np.ndarray) -> float:
    """Σ of all entries: :func:`_row_sums`, then float64 across rows."""
    return float(_row_sums(values).sum())


def _mean_square(values: np.ndarray) -> float:
    return _sum64(np.square(values)) / values.size


def _output_statistics(
    values: np.ndarray, saturation: float | None = None
) -> dict[str, float]:
    """Mean, second moment, variance, excess kurtosis and pair correlation.

    From the power sums Sₖ = Σxᵏ (k ≤ 4) of all entries (:func:`_sum64`):
    μ = S₁/N, m₂ = S₂/N − μ², m₄ = S₄/N − 4μS₃/N + 6μ²S₂/N − 3μ⁴ and
    excess kurtosis m₄/m₂² − 3 (NaN when m₂ = 0); the values here are centred
    to well within their spread, so nothing cancels that float64 cannot hold.
    The correlation is the mean over pairs (examples 2i and 2i+1) and
    positions of the pair's cosine Σxₐx_b/√(Σxₐ²·Σx_b²) over the units, the
    c of the mean-field correlation map (NaN without a pair or where a vector
    is 0). ``saturation`` h* adds the fraction of entries with |x| > h*.
    """
    count = values.size
    first = _sum64(values)
    squares = np.square(values)
    row_squares = _row_sums(squares)
    second = float(row_squares.sum())
    stats = {"saturation_fraction": math.nan}
    if saturation is not None:
        stats["saturation_fraction"] = (
            np.count_nonzero(squares > saturation * saturation) / count
        )
    squares *= values
    third = _sum64(squares)
    squares *= values
    fourth = _sum64(squares)
    del squares

    mean = first / count
    variance = max(second / count - mean * mean, 0.0)
    central_fourth = (
        fourth / count
        - 4.0 * mean * third / count
        + 6.0 * mean * mean * second / count
        - 3.0 * mean**4
    )
    stats["mean"] = mean
    stats["second_moment"] = second / count
    stats["variance"] = variance
    stats["excess_kurtosis"] = (
        central_fourth / (variance * variance) - 3.0 if variance > 0.0 else math.nan
    )
    stats["correlation"] = _pair_correlation(values, row_squares)
    return stats


def _pair_correlation(values: np.ndarray, row_squares: np.ndarray) -> float:
    pairs = values.shape[0] // 2
    if pairs == 0:
        return math.nan

    cross = _row_sums(values[0 : 2 * pairs : 2] * values[1 : 2 * pairs : 2])
    norms = row_squares[0 : 2 * pairs : 2] * row_squares[1 : 2 * pairs : 2]
    with np.errstate(invalid="ignore", divide="ignore"):
        return float(np.mean(cross / np.sqrt(norms)))


def _can_die(act: Activation) -> bool:
    """Whether φ' is 0 for h ≤ 0 (ReLU, leaky ReLU of slope 0) and 1 above.

    Only then can a unit be off for a whole batch; every other activation's
    φ' vanishes at isolated points at most, so its dead fraction is 0.
    """
    if act.name == "relu":
        return True

    return act.name == "leaky_relu" and act.param("negative_slope", 0.01) == 0.0


@functools.lru_cache(maxsize=64)
def saturation_threshold(act: Activation) -> float | None:
    """h* with |φ'(h)| < 0.01·φ'(0) exactly where |h| > h*, for tanh, σ, softsign.

    Their φ' is even and falls monotonically from its maximum at 0, so the
    saturated set is |h| > h*; h* is found by bisection on φ' to float64
    precision (tanh: arccosh(10) ≈ 2.993; sigmoid ≈ 5.288; softsign: 9).
    ``None`` for other activations, which are not bounded.
    """
    if act.name not in SATURATING_ACTIVATIONS:
        return None

    target = SATURATION_LEVEL * float(phi_prime(act, 0.0))
    low, high = 0.0, 1.0
    while float(phi_prime(act, high)) >= target:
        high *= 2.0
    for _ in range(200):
        middle = 0.5 * (low + high)
        if middle in (low, high):
            break
        if float(phi_prime(act, middle)) >= target:
            low = middle
        else:
            high = middle
    return high


# --- norms and attention ------------------------------------------------------


def _norm_axes(kind: str, x: np.ndarray) -> tuple[int, ...]:
    """Over what a norm takes its statistics: features, or batch and locations."""
    if kind == "batch_norm":
        return tuple(range(x.ndim - 1))

    return (x.ndim - 1,)


def _normalize(kind: str, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(x̂, 1/σ) of a norm without its affine parameters.

    LayerNorm: x̂ = (x − μ)/√(σ² + ε) over each token's features (Ba, Kiros &
    Hinton 2016, "Layer Normalization", arXiv 1607.06450, section 3); RMSNorm:
    x̂ = x/√(mean(x²) + ε) (Zhang & Sennrich 2019, "Root Mean Square Layer
    Normalization", arXiv 1910.07467, section 3); BatchNorm: as LayerNorm per
    feature over the batch and locations, with the batch's own statistics
    (Ioffe & Szegedy 2015, arXiv 1502.03167, algorithm 1). ε = 1e-5, the
    PyTorch 2.13 default; moments summed in float64.
    """
    axes = _norm_axes(kind, x)
    count = math.prod(x.shape[axis] for axis in axes)
    if kind == "rms_norm":
        centred = x
    else:
        mean = np.add.reduce(x, axis=axes, dtype=np.float64, keepdims=True) / count
        centred = x - mean.astype(x.dtype)
    square = np.add.reduce(
        np.square(centred), axis=axes, dtype=np.float64, keepdims=True
    )
    inverse = (1.0 / np.sqrt(square / count + NORM_EPS)).astype(x.dtype)
    return centred * inverse, inverse


def _normalize_backward(
    kind: str, normalized: np.ndarray, inverse: np.ndarray, gradient: np.ndarray
) -> np.ndarray:
    """∂L/∂x from ∂L/∂x̂ for :func:`_normalize`.

    LayerNorm and BatchNorm: (1/σ)·(g − mean(g) − x̂·mean(g·x̂)); RMSNorm:
    (1/σ)·(g − x̂·mean(g·x̂)), the means over the axes the statistics were
    taken over (the chain rule through μ and σ; Ioffe & Szegedy 2015, section
    3, for the batch case).
    """
    axes = _norm_axes(kind, normalized)
    count = math.prod(normalized.shape[axis] for axis in axes)
    projection = np.add.reduce(
        gradient * normalized, axis=axes, dtype=np.float64, keepdims=True
    )
    result = gradient - normalized * (projection / count).astype(gradient.dtype)
    if kind != "rms_norm":
        mean = np.add.reduce(gradient, axis=axes, dtype=np.float64, keepdims=True)
        result -= (mean / count).astype(gradient.dtype)
    result *= inverse
    return result


def _heads(values: np.ndarray, heads: int, d_head: int) -> np.ndarray:
    """(B, positions…, heads·d) → (B, heads, T, d) with T the positions flattened."""
    batch = values.shape[0]
    return values.reshape(batch, -1, heads, d_head).transpose(0, 2, 1, 3)


def _merge_heads(values: np.ndarray, like: np.ndarray) -> np.ndarray:
    """(B, heads, T, d) → the layout of ``like`` with heads·d features."""
    batch, heads, _, d_head = values.shape
    merged = values.transpose(0, 2, 1, 3).reshape(batch, -1, heads * d_head)
    return merged.reshape(*like.shape[:-1], heads * d_head)


@dataclass
class _Attended:
    """What the backward pass of an attention needs from its forward pass."""

    queries: np.ndarray
    keys: np.ndarray
    values: np.ndarray
    weights: np.ndarray


def _attend(
    q: np.ndarray, k: np.ndarray, v: np.ndarray, block: Attention
) -> tuple[np.ndarray, _Attended]:
    """softmax(QKᵀ/√d_head)·V per head over all tokens of each sequence.

    Vaswani et al. 2017, "Attention Is All You Need" (arXiv 1706.03762),
    section 3.2.1, without a mask; each key/value head serves n_heads/n_kv_heads
    query heads in turn (grouped-query attention, Ainslie et al. 2023, arXiv
    2305.13245, section 2.2). The softmax subtracts each row's maximum.
    """
    group = block.n_heads // block.n_kv_heads
    queries = _heads(q, block.n_heads, block.d_head)
    keys = np.repeat(_heads(k, block.n_kv_heads, block.d_head), group, axis=1)
    values = np.repeat(_heads(v, block.n_kv_heads, block.d_head), group, axis=1)

    scores = queries @ keys.transpose(0, 1, 3, 2)
    scores *= scores.dtype.type(1.0 / math.sqrt(block.d_head))
    scores -= scores.max(axis=-1, keepdims=True)
    weights = np.exp(scores)
    weights /= weights.sum(axis=-1, keepdims=True)

    mixed = _merge_heads(weights @ values, q)
    return mixed, _Attended(queries, keys, values, weights)


def _attend_backward(
    gradient: np.ndarray, attended: _Attended, block: Attention, like: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(∂L/∂q, ∂L/∂k, ∂L/∂v) from ∂L/∂(mixed values) for :func:`_attend`.

    With O = P·V and P = softmax(S), S = QKᵀ/√d: ∂V = Pᵀ·∂O, ∂P = ∂O·Vᵀ,
    ∂S = P ⊙ (∂P − rowsum(∂P ⊙ P)), ∂Q = ∂S·K/√d, ∂K = ∂Sᵀ·Q/√d; the gradients
    of a key/value head sum over the query heads it serves.
    """
    group = block.n_heads // block.n_kv_heads
    scale = gradient.dtype.type(1.0 / math.sqrt(block.d_head))
    mixed = _heads(gradient, block.n_heads, block.d_head)
    weights = attended.weights

    d_values = weights.transpose(0, 1, 3, 2) @ mixed
    d_weights = mixed @ attended.values.transpose(0, 1, 3, 2)
    d_weights -= np.sum(d_weights * weights, axis=-1, keepdims=True)
    d_scores = d_weights * weights
    d_scores *= scale
    d_queries = d_scores @ attended.keys
    d_keys = d_scores.transpose(0, 1, 3, 2) @ attended.queries

    def shared(values: np.ndarray) -> np.ndarray:
        batch, _, tokens, d_head = values.shape
        summed = values.reshape(batch, -1, group, tokens, d_head).sum(axis=2)
        return _merge_heads(summed, like)

    return _merge_heads(d_queries, like), shared(d_keys), shared(d_values)


# --- one network --------------------------------------------------------------

Backward = Callable[[np.ndarray], np.ndarray] | None
"""Takes ∂L/∂(a block's output), records gradients, returns ∂L/∂(its input).

None in forward-only runs, where nothing is kept for a backward pass.
"""


@dataclass
class _Run:
    """One network (one seed index): draws it, records its rows, runs the passes.

    Rows are numbered in forward order as they are met; row r draws from
    stream r + 2 (see the module docstring).
    """

    seed: int
    seed_index: int
    batch_size: int
    positions: tuple[int, ...]
    input_correlation: float
    backward: bool
    kernel_sampling: bool = True
    rows: list[LayerRow] = field(default_factory=list)
    values: list[dict[str, float]] = field(default_factory=list)

    # --- bookkeeping ---

    def new_row(
        self,
        name: str,
        kind: str,
        width: int,
        act: Activation | None = None,
        sampling: str | None = None,
    ) -> int:
        activation = "identity" if act is None else act.name
        self.rows.append(LayerRow(name, kind, width, activation, sampling))
        self.values.append({})
        return len(self.rows) - 1

    def rng(self, row: int, part: int) -> np.random.Generator:
        return _generator(self.seed, self.seed_index, _FIRST_LAYER_STREAM + row, part)

    def record_output(self, row: int, values: np.ndarray) -> None:
        """Statistics of a row whose output goes on without an activation."""
        stats = _output_statistics(values)
        stats["post_activation_second_moment"] = stats["second_moment"]
        stats["post_activation_mean"] = stats["mean"]
        stats["dead_fraction"] = math.nan
        self.values[row].update(stats)

    def record_gradient(
        self, row: int, gradient: np.ndarray, input_gradient: np.ndarray | None
    ) -> None:
        stats = self.values[row]
        stats["gradient_second_moment"] = _mean_square(gradient)
        if input_gradient is not None:
            stats["input_gradient_second_moment"] = _mean_square(input_gradient)

    # --- the network ---

    def run(self, network: Network, input_second_moment: float) -> None:
        x = None
        if not (network.blocks and isinstance(network.blocks[0], Embedding)):
            x = self.network_input(network.input_width, input_second_moment)

        output, backward = self.blocks(network.blocks, x)
        if self.backward:
            rng = _generator(self.seed, self.seed_index, _OUTPUT_GRADIENT_STREAM, 0)
            backward(_standard_normal(rng, output.shape))

    def network_input(self, width: int, second_moment: float) -> np.ndarray:
        """Gaussian input rows of mean square exactly q⁰, pairs at correlation c.

        Row 2i+1 is c·a + √(1 − c²)·a⊥ with a the row 2i and a⊥ a Gaussian
        direction made orthogonal to a (Gram–Schmidt), both of unit length, so
        the pair's cosine is c exactly; every row is then scaled to
        ‖x‖²/n = q⁰. Drawn in float64, handed on in float32.
        """
        rng = _generator(self.seed, self.seed_index, _INPUT_STREAM, 0)
        x = rng.standard_normal((self.batch_size, *self.positions, width))
        pairs = self.batch_size // 2
        if pairs and width > 1:
            first = x[0 : 2 * pairs : 2]
            second = x[1 : 2 * pairs : 2]
            first /= np.linalg.norm(first, axis=-1, keepdims=True)
            second -= np.sum(first * second, axis=-1, keepdims=True) * first
            second /= np.linalg.norm(second, axis=-1, keepdims=True)
            c = self.input_correlation
            second *= math.sqrt(1.0 - c * c)
            second += c * first
        x *= np.sqrt(second_moment * width) / np.linalg.norm(x, axis=-1, keepdims=True)
        return x.astype(np.float32)

    def blocks(
        self, blocks: tuple[Block, ...], x: np.ndarray | None
    ) -> tuple[np.ndarray, Backward]:
        steps: list[Backward] = []
        for block in blocks:
            x, step = self.block(block, x)
            if self.backward:
                steps.append(step)

        def backward(gradient: np.ndarray) -> np.ndarray:
            for step in reversed(steps):
                gradient = step(gradient)
            return gradient

        return x, backward

    def block(self, block: Block, x: np.ndarray | None) -> tuple[np.ndarray, Backward]:
        if isinstance(block, Embedding):
            return self.embedding(block, x)
        if isinstance(block, Dense):
            return self.dense(block, x)
        if isinstance(block, Norm):
            return self.norm(block, x)
        if isinstance(block, Residual):
            return self.residual(block, x)
        if isinstance(block, GatedMlp):
            return self.gated_mlp(block, x)

        return self.attention(block, x)

    # --- dense layers ---

    def dense_forward(self, dense: Dense, x: np.ndarray) -> tuple[np.ndarray, int]:
        """φ(Wx + b) with the row's statistics recorded; returns (φ(h), row)."""
        rows = x.size // dense.in_width
        path = sampling_path(dense, rows, self.backward, self.kernel_sampling)
        row = self.new_row(dense.name, "dense", dense.out_width, dense.activation, path)
        if path == "kernel":
            h = _kernel_sample(x, dense, self.rng(row, 0))
            if dense.bias is not None:
                h += sample_draw(dense.bias, (dense.out_width,), self.rng(row, 1))
        else:
            h = _pre_activation(dense, x, self.weights(dense, row))
        return self.activate(dense, row, h), row

    def weights(self, dense: Dense, row: int) -> tuple[np.ndarray, np.ndarray | None]:
        """The row's W and b, drawn from its streams (again, for the backward pass)."""
        weight = _draw_weight(dense, self.rng(row, 0))
        bias = None
        if dense.bias is not None:
            bias = sample_draw(dense.bias, (dense.out_width,), self.rng(row, 1))
        return weight, bias

    def activate(self, dense: Dense, row: int, h: np.ndarray) -> np.ndarray:
        """φ(h), recording the row's forward statistics."""
        stats, activated = dense_statistics(dense.activation, h)
        self.values[row].update(stats)
        return activated

    def dense_backward(
        self,
        dense: Dense,
        row: int,
        x: np.ndarray,
        h: np.ndarray,
        weight: np.ndarray,
        gradient: np.ndarray,
    ) -> np.ndarray:
        """∂L/∂x from ∂L/∂φ(h), recording the gradients at h, W, b and x."""
        act = dense.activation
        dh = gradient if act.name == "identity" else gradient * phi_prime(act, h)
        dx = _apply_weight_transpose(dh, dense, weight)
        self.record_gradient(row, dh, dx)

        stats = self.values[row]
        stats["bias_gradient_second_moment"] = (
            stats["gradient_second_moment"] if dense.bias is not None else math.nan
        )
        stats["weight_gradient_second_moment"] = _weight_gradient_second_moment(
            dense, x, dh
        )
        return dx

    def dense(self, dense: Dense, x: np.ndarray) -> tuple[np.ndarray, Backward]:
        activated, row = self.dense_forward(dense, x)
        if not self.backward:
            return activated, None

        def backward(gradient: np.ndarray) -> np.ndarray:
            weights = self.weights(dense, row)
            h = _pre_activation(dense, x, weights)
            return self.dense_backward(dense, row, x, h, weights[0], gradient)

        return activated, backward

    # --- the other blocks ---

    def embedding(
        self, block: Embedding, x: np.ndarray | None
    ) -> tuple[np.ndarray, Backward]:
        if x is not None:
            raise InvalidInput.at(
                (),
                f"the embedding {'+'.join(block.names)} is not the first block; an"
                " embedding reads token ids, so it can only start the network",
                block.names,
            )

        row = self.new_row("+".join(block.names), "embedding", block.width)
        shape = (self.batch_size, *self.positions, block.width)
        output = np.zeros(shape, dtype=np.float32)
        for index, table in enumerate(block.tables):
            output += sample_draw(table, shape, self.rng(row, index))
        pairs = self.batch_size // 2
        if pairs:
            c = self.input_correlation
            second = output[1 : 2 * pairs : 2]
            second *= np.float32(math.sqrt(1.0 - c * c))
            second += np.float32(c) * output[0 : 2 * pairs : 2]
        self.record_output(row, output)

        def backward(gradient: np.ndarray) -> np.ndarray:
            self.record_gradient(row, gradient, None)
            stats = self.values[row]
            # Each token's row of each table receives the output gradient.
            stats["weight_gradient_second_moment"] = stats["gradient_second_moment"]
            return gradient

        return output, backward

    def norm(self, norm: Norm, x: np.ndarray) -> tuple[np.ndarray, Backward]:
        row = self.new_row(norm.name, "norm", norm.width)
        normalized, inverse = _normalize(norm.kind, x)
        output = normalized
        gamma = None
        if norm.weight is not None:
            gamma = sample_draw(norm.weight, (norm.width,), self.rng(row, 0))
            output = normalized * gamma
        if norm.bias is not None:
            output = output + sample_draw(norm.bias, (norm.width,), self.rng(row, 1))
        self.record_output(row, output)
        if not self.backward:
            return output, None

        def backward(gradient: np.ndarray) -> np.ndarray:
            stats = self.values[row]
            d_normalized = gradient if gamma is None else gradient * gamma
            dx = _normalize_backward(norm.kind, normalized, inverse, d_normalized)
            self.record_gradient(row, gradient, dx)
            stats["weight_gradient_second_moment"] = math.nan
            if gamma is not None:
                stats["weight_gradient_second_moment"] = _mean_square(
                    gradient * normalized
                )
            stats["bias_gradient_second_moment"] = (
                stats["gradient_second_moment"] if norm.bias is not None else math.nan
            )
            return dx

        return output, backward

    def residual(
        self, residual: Residual, x: np.ndarray
    ) -> tuple[np.ndarray, Backward]:
        branch_input, pre_norm = x, None
        if residual.placement == "pre" and residual.norm is not None:
            branch_input, pre_norm = self.norm(residual.norm, x)
        branch, branch_backward = self.blocks(residual.branch, branch_input)
        del branch_input
        shortcut, shortcut_backward = x, None
        if residual.shortcut:
            shortcut, shortcut_backward = self.blocks(residual.shortcut, x)
        total = shortcut + branch
        del shortcut, branch

        output, post_norm = total, None
        if residual.placement == "post" and residual.norm is not None:
            output, post_norm = self.norm(residual.norm, total)
        del total
        row = self.new_row(residual.name, "residual", output.shape[-1])
        self.record_output(row, output)
        if not self.backward:
            return output, None

        def backward(gradient: np.ndarray) -> np.ndarray:
            at_sum = gradient if post_norm is None else post_norm(gradient)
            through_branch = branch_backward(at_sum)
            if pre_norm is not None:
                through_branch = pre_norm(through_branch)
            skip = at_sum if shortcut_backward is None else shortcut_backward(at_sum)
            dx = skip + through_branch
            self.record_gradient(row, gradient, dx)
            return dx

        return output, backward

    def gated_mlp(self, block: GatedMlp, x: np.ndarray) -> tuple[np.ndarray, Backward]:
        gate, gate_row = self.dense_forward(block.gate, x)
        up, up_row = self.dense_forward(block.up, x)
        product = gate * up
        del gate, up
        output, down_row = self.dense_forward(block.down, product)
        del product
        if not self.backward:
            return output, None

        def backward(gradient: np.ndarray) -> np.ndarray:
            gate_weights = self.weights(block.gate, gate_row)
            up_weights = self.weights(block.up, up_row)
            down_weights = self.weights(block.down, down_row)
            gate_h = _pre_activation(block.gate, x, gate_weights)
            gate = _activated(block.gate, gate_h)
            up_h = _pre_activation(block.up, x, up_weights)
            up = _activated(block.up, up_h)
            product = gate * up
            down_h = _pre_activation(block.down, product, down_weights)

            d_product = self.dense_backward(
                block.down, down_row, product, down_h, down_weights[0], gradient
            )
            dx = self.dense_backward(
                block.gate, gate_row, x, gate_h, gate_weights[0], d_product * up
            )
            dx += self.dense_backward(
                block.up, up_row, x, up_h, up_weights[0], d_product * gate
            )
            return dx

        return output, backward

    def attention(self, block: Attention, x: np.ndarray) -> tuple[np.ndarray, Backward]:
        _check_heads(block)
        q, q_row = self.dense_forward(block.q, x)
        k, k_row = self.dense_forward(block.k, x)
        v, v_row = self.dense_forward(block.v, x)
        mixed, _ = _attend(q, k, v, block)
        del q, k, v
        mix_row = self.new_row(block.name, "attention", mixed.shape[-1])
        self.record_output(mix_row, mixed)
        output, o_row = self.dense_forward(block.o, mixed)
        del mixed
        if not self.backward:
            return output, None

        projections = ((block.q, q_row), (block.k, k_row), (block.v, v_row))

        def backward(gradient: np.ndarray) -> np.ndarray:
            weights = [self.weights(dense, row) for dense, row in projections]
            q_h, k_h, v_h = (
                _pre_activation(dense, x, w)
                for (dense, row), w in zip(projections, weights, strict=True)
            )
            mixed, attended = _attend(
                _activated(block.q, q_h),
                _activated(block.k, k_h),
                _activated(block.v, v_h),
                block,
            )
            o_weights = self.weights(block.o, o_row)
            o_h = _pre_activation(block.o, mixed, o_weights)
            d_mixed = self.dense_backward(
                block.o, o_row, mixed, o_h, o_weights[0], gradient
            )
            self.record_gradient(mix_row, d_mixed, None)

            d_projections = _attend_backward(d_mixed, attended, block, mixed)
            dx = np.zeros_like(x)
            for (dense, row), w, h, dh in zip(
                projections, weights, (q_h, k_h, v_h), d_projections, strict=True
            ):
                dx += self.dense_backward(dense, row, x, h, w[0], dh)
            return dx

        return output, backward


def _pre_activation(
    dense: Dense, x: np.ndarray, weights: tuple[np.ndarray, np.ndarray | None]
) -> np.ndarray:
    """h = Wx + b with the layer's drawn W and b."""
    weight, bias = weights
    h = _apply_weight(x, dense, weight)
    if bias is not None:
        h += bias
    return h


def dense_statistics(
    act: Activation, h: np.ndarray
) -> tuple[dict[str, float], np.ndarray]:
    """A dense row's forward statistics from its pre-activations h, and φ(h).

    Every name of :data:`FORWARD_STATISTICS`: h's moments and pair
    correlation, φ(h)'s second moment and mean, the fraction of units dead on
    the whole batch (φ' = 0 on every row and location) and, for tanh, sigmoid
    and softsign, the fraction of entries past :func:`saturation_threshold`.
    h is (batch, positions…, units), float32.
    """
    stats = _output_statistics(h, saturation_threshold(act))
    activated = h if act.name == "identity" else phi(act, h)
    stats["post_activation_second_moment"] = _mean_square(activated)
    stats["post_activation_mean"] = _sum64(activated) / activated.size
    stats["dead_fraction"] = 0.0
    if _can_die(act):
        # φ' is 1 where h > 0 and 0 elsewhere: a unit is alive where its
        # largest pre-activation over the batch is positive.
        largest = np.max(h, axis=tuple(range(h.ndim - 1)))
        stats["dead_fraction"] = 1.0 - np.count_nonzero(largest > 0.0) / largest.size
    return stats, activated


def _activated(dense: Dense, h: np.ndarray) -> np.ndarray:
    """φ(h) for the layer's activation (h itself for the identity)."""
    if dense.activation.name == "identity":
        return h

    return phi(dense.activation, h)


def _weight_gradient_second_moment(
    dense: Dense, x: np.ndarray, dh: np.ndarray
) -> float:
    """Mean square of the per-example, per-location contributions δ_i·x_j to ∂L/∂W.

    Σ over rows and locations of ‖δ‖²·‖patch‖² within each group, divided by
    the number of contributions (rows·locations·n_out·fan_in): in expectation
    E[δ²]·E[x²], the mean-field weight-gradient second moment
    (signal-propagation.md, "Backward").
    """
    groups = dense.groups
    delta = np.add.reduce(
        np.square(dh).reshape(*dh.shape[:-1], groups, -1), axis=-1, dtype=np.float64
    )
    patches = _patch_square_norms(x, dense)
    contributions = (dh.size // dense.out_width) * dense.out_width * _fan_in(dense)
    return float(np.sum(delta * patches)) / contributions


def _check_heads(block: Attention) -> None:
    widths = (
        block.q.out_width,
        block.k.out_width,
        block.v.out_width,
        block.o.in_width,
    )
    expected = (
        block.n_heads * block.d_head,
        block.n_kv_heads * block.d_head,
        block.n_kv_heads * block.d_head,
        block.n_heads * block.d_head,
    )
    if widths != expected or block.n_heads % block.n_kv_heads:
        raise InvalidInput.at(
            (),
            f"attention {block.name}: q, k, v and o widths {widths} do not fit"
            f" {block.n_heads} heads and {block.n_kv_heads} key/value heads of"
            f" {block.d_head}; expected {expected}, with n_heads a multiple of"
            " n_kv_heads",
            widths,
        )


# --- the cost, from shapes only -----------------------------------------------


@dataclass
class _Planner:
    """Walks the blocks as :class:`_Run` does, adding up work and memory.

    Memory: in the forward pass, what enclosing blocks hold (a residual's
    stream), what the backward pass keeps (each block's input), the block's
    input and its working arrays; in the backward pass, everything kept plus
    the largest block's recomputation and gradients. Working arrays are counted
    as the code allocates them (weights, products, φ's temporaries, the float64
    Gram matrix and its factor), rounded up.
    """

    batch_size: int
    positions: tuple[int, ...]
    backward: bool
    kernel_sampling: bool = True
    flops: float = 0.0
    numbers: float = 0.0
    peak: float = 0.0
    kept: float = 0.0
    backward_working: float = 0.0
    rows: list[LayerRow] = field(default_factory=list)

    @property
    def tokens(self) -> int:
        return self.batch_size * math.prod(self.positions)

    def array(self, width: int) -> float:
        """Bytes of one float32 batch of ``width`` features."""
        return float(self.tokens * width * _BYTES)

    def forward(self, held: float, x_bytes: float, working: float) -> None:
        self.peak = max(self.peak, held + self.kept + x_bytes + working)

    def keep(self, x_bytes: float) -> None:
        if self.backward:
            self.kept += x_bytes

    def backward_step(self, working: float) -> None:
        self.backward_working = max(self.backward_working, working)

    def network(self, network: Network) -> None:
        width = network.input_width
        if network.blocks and isinstance(network.blocks[0], Embedding):
            width = 0
        else:
            self.numbers += self.tokens * width
            self.flops += 10.0 * self.tokens * width
            # Drawn in float64 with a float64 copy for the pairs' arithmetic.
            self.forward(0.0, 0.0, 3.0 * 8.0 * self.tokens * width)
        width = self.blocks(network.blocks, width, 0.0)
        if self.backward:
            self.numbers += self.tokens * width
            # The output gradient and the gradient flowing back beside it.
            gradient = _drawing_bytes(self.tokens * width) + 2.0 * self.array(width)
            self.peak = max(self.peak, self.kept + self.backward_working + gradient)

    def blocks(self, blocks: tuple[Block, ...], width: int, held: float) -> int:
        for block in blocks:
            width = self.block(block, width, held)
        return width

    def block(self, block: Block, width: int, held: float) -> int:
        if isinstance(block, Embedding):
            return self.embedding(block, held)
        if isinstance(block, Dense):
            return self.dense(block, held)
        if isinstance(block, Norm):
            return self.norm(block, held)
        if isinstance(block, Residual):
            return self.residual(block, width, held)
        if isinstance(block, GatedMlp):
            return self.gated_mlp(block, held)

        return self.attention(block, held)

    def dense_pass(self, dense: Dense, held: float) -> float:
        """Adds one dense layer's forward (and backward) work; its peak bytes."""
        path = sampling_path(dense, self.tokens, self.backward, self.kernel_sampling)
        self.rows.append(
            LayerRow(dense.name, "dense", dense.out_width, dense.activation.name, path)
        )
        flops, numbers = _dense_flops(dense, self.tokens, path)
        self.flops += flops
        self.numbers += numbers
        x_bytes = self.array(dense.in_width)
        out_bytes = self.array(dense.out_width)
        weight_count = dense.out_width * _fan_in(dense)
        weight_bytes = float(weight_count * _BYTES)
        if dense.weight.distribution == "orthogonal":
            weight_bytes *= 3.0  # the Gaussian matrix, Q and R
        compute = _activation_arrays(dense.activation) * out_bytes
        if path == "kernel":
            factor_bytes = 24.0 * self.tokens**2  # Gram, float64 K and L, float32 L
            noise = self.tokens * dense.out_width
            working = factor_bytes + max(_drawing_bytes(noise), compute) + out_bytes
        else:
            if dense.kernel_size:
                compute += x_bytes + 2.0 * out_bytes  # a rolled input, a tap's product
            working = weight_bytes + max(_drawing_bytes(weight_count), compute)
        self.forward(held, x_bytes, working)
        if self.backward:
            self.keep(x_bytes)
            self.flops += flops + 2.0 * self.tokens * weight_count
            self.numbers += numbers
            # W, h, φ'(h) with its temporaries, ∂h, ∂x, float64 squares of x.
            arrays = compute + 3.0 * out_bytes + 4.0 * x_bytes
            self.backward_step(weight_bytes + max(_drawing_bytes(weight_count), arrays))
        return x_bytes + out_bytes

    def dense(self, dense: Dense, held: float) -> int:
        self.dense_pass(dense, held)
        return dense.out_width

    def embedding(self, block: Embedding, held: float) -> int:
        self.rows.append(LayerRow("+".join(block.names), "embedding", block.width))
        for table in block.tables:
            self.numbers += _random_numbers(table, self.tokens * block.width)
        self.flops += (len(block.tables) + 10.0) * self.tokens * block.width
        self.forward(held, 0.0, 4.0 * self.array(block.width))
        return block.width

    def norm(self, norm: Norm, held: float) -> int:
        self.rows.append(LayerRow(norm.name, "norm", norm.width))
        for draw in (norm.weight, norm.bias):
            self.numbers += _random_numbers(draw, norm.width)
        x_bytes = self.array(norm.width)
        self.flops += 30.0 * self.tokens * norm.width
        self.forward(held, x_bytes, 5.0 * x_bytes)
        if self.backward:
            # The normalized values stay for the backward pass.
            self.keep(x_bytes)
            self.flops += 20.0 * self.tokens * norm.width
            self.backward_step(6.0 * x_bytes)
        return norm.width

    def residual(self, residual: Residual, width: int, held: float) -> int:
        stream = self.array(width)
        branch_width = width
        if residual.placement == "pre" and residual.norm is not None:
            self.norm(residual.norm, held + stream)
        branch_width = self.blocks(residual.branch, width, held + stream)
        if residual.shortcut:
            self.blocks(residual.shortcut, width, held + self.array(branch_width))
        out = self.array(branch_width)
        self.forward(held, 0.0, 3.0 * out)
        if residual.placement == "post" and residual.norm is not None:
            self.norm(residual.norm, held)
        self.rows.append(LayerRow(residual.name, "residual", branch_width))
        self.flops += 12.0 * self.tokens * branch_width
        return branch_width

    def gated_mlp(self, block: GatedMlp, held: float) -> int:
        hidden = self.array(block.gate.out_width)
        self.dense_pass(block.gate, held)
        self.dense_pass(block.up, held + hidden)
        self.dense_pass(block.down, held + 2.0 * hidden)
        if self.backward:
            self.backward_step(self.backward_working + 6.0 * hidden)
        return block.down.out_width

    def attention(self, block: Attention, held: float) -> int:
        batch, tokens = self.batch_size, math.prod(self.positions)
        heads, d_head = block.n_heads, block.d_head
        projections = self.array(block.q.out_width + 2 * block.k.out_width)
        mixed = self.array(heads * d_head)
        scores = float(batch * heads * tokens * tokens * _BYTES)
        for dense in (block.q, block.k, block.v):
            self.dense_pass(dense, held)
            held += self.array(dense.out_width)
        self.rows.append(LayerRow(block.name, "attention", heads * d_head))
        attention_flops = 4.0 * batch * heads * tokens * tokens * d_head
        attention_flops += 8.0 * batch * heads * tokens * tokens
        self.flops += attention_flops
        self.forward(held, 0.0, 2.0 * mixed + 3.0 * scores)
        self.dense_pass(block.o, held - projections)
        if self.backward:
            self.flops += 3.0 * attention_flops
            self.backward_step(
                self.backward_working + 3.0 * projections + 4.0 * mixed + 5.0 * scores
            )
        return block.o.out_width


def estimate_cost(
    network: Network,
    *,
    batch_size: int,
    seeds: int,
    backward: bool = True,
    spatial_size: int = 8,
    sequence_length: int = 8,
    kernel_sampling: bool = True,
) -> Cost:
    """The flops, random numbers and peak bytes :func:`simulate` will need.

    Computed from the shapes alone, before any work: flops and random numbers
    are per network times ``seeds``. The networks run one after another, so
    the peak memory does not grow with ``seeds``, nor, forward-only, with
    depth. Raises :class:`InvalidInput` for arguments out of range.
    """
    _check_arguments(
        batch_size=batch_size,
        seeds=seeds,
        seed=0,
        spatial_size=spatial_size,
        sequence_length=sequence_length,
        input_second_moment=1.0,
        input_correlation=None,
    )
    planner = _plan(
        network, batch_size, backward, spatial_size, sequence_length, kernel_sampling
    )
    return Cost(
        flops=int(planner.flops * seeds),
        peak_bytes=int(planner.peak),
        random_numbers=int(planner.numbers * seeds),
    )


def layer_rows(
    network: Network,
    *,
    batch_size: int = 64,
    backward: bool = False,
    spatial_size: int = 8,
    sequence_length: int = 8,
    kernel_sampling: bool = True,
) -> tuple[LayerRow, ...]:
    """The rows :func:`simulate` reports for ``network``, in forward order.

    Names, kinds and widths do not depend on the arguments; ``sampling`` does
    (the kernel path is forward-only and pays off with fewer rows than inputs).
    """
    planner = _plan(
        network, batch_size, backward, spatial_size, sequence_length, kernel_sampling
    )
    return tuple(planner.rows)


def _plan(
    network: Network,
    batch_size: int,
    backward: bool,
    spatial_size: int,
    sequence_length: int,
    kernel_sampling: bool,
) -> _Planner:
    positions = batch_positions(
        network, spatial_size=spatial_size, sequence_length=sequence_length
    )
    planner = _Planner(batch_size, positions, backward, kernel_sampling)
    planner.network(network)
    return planner


# --- the simulation ------------------------------------------------------------


def simulate(
    network: Network,
    *,
    batch_size: int,
    seeds: int,
    seed: int,
    input_second_moment: float,
    input_correlation: float | None = None,
    backward: bool = True,
    spatial_size: int = 8,
    sequence_length: int = 8,
    kernel_sampling: bool = True,
) -> MonteCarloResult:
    """Draw ``seeds`` networks and measure every row's statistics on one batch each.

    ``batch_size`` inputs (or sequences) per network, arranged in pairs at
    correlation ``input_correlation`` (``None``: 0, independent directions);
    the raw input has mean square ``input_second_moment`` per feature.
    ``backward`` adds the gradient statistics (and draws every weight: the
    kernel path is forward-only); ``kernel_sampling=False`` draws every weight
    in the forward pass too (slower; a check of the kernel path). ``seed``
    fixes everything: the same arguments give bit-identical results across
    runs and processes on one numpy build (see :data:`MODEL` and the module
    docstring).

    Raises :class:`InvalidInput` for arguments out of range, at their name.
    """
    _check_arguments(
        batch_size=batch_size,
        seeds=seeds,
        seed=seed,
        spatial_size=spatial_size,
        sequence_length=sequence_length,
        input_second_moment=input_second_moment,
        input_correlation=input_correlation,
    )
    cost = estimate_cost(
        network,
        batch_size=batch_size,
        seeds=seeds,
        backward=backward,
        spatial_size=spatial_size,
        sequence_length=sequence_length,
        kernel_sampling=kernel_sampling,
    )
    positions = batch_positions(
        network, spatial_size=spatial_size, sequence_length=sequence_length
    )
    statistics = FORWARD_STATISTICS + (BACKWARD_STATISTICS if backward else ())
    correlation = 0.0 if input_correlation is None else float(input_correlation)

    layers: tuple[LayerRow, ...] = ()
    values: dict[str, np.ndarray] = {}
    for seed_index in range(seeds):
        run = _Run(
            seed,
            seed_index,
            batch_size,
            positions,
            correlation,
            backward,
            kernel_sampling,
        )
        # An exploding network overflows float32 and a vanishing one
        # underflows to 0: its statistics become ∞ or NaN (0/0), as reported.
        with np.errstate(all="ignore"):
            run.run(network, float(input_second_moment))
        if seed_index == 0:
            layers = tuple(run.rows)
            values = {
                name: np.full((seeds, len(layers)), math.nan) for name in statistics
            }
        for index, row in enumerate(run.values):
            for name, value in row.items():
                values[name][seed_index, index] = value

    return MonteCarloResult(
        layers=layers,
        values=values,
        seed=seed,
        seeds=seeds,
        batch_size=batch_size,
        positions=positions,
        input_second_moment=float(input_second_moment),
        input_correlation=input_correlation,
        backward=backward,
        cost=cost,
    )
