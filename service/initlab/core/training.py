"""A small numpy training engine: forward, hand-written backward and optimizers.

µP is verified by training (Yang et al. 2022, "Tensor Programs V", arXiv
2203.03466, §7 and Figure 1): the coordinate check and the learning-rate
transfer check of ``initlab.core.mup_checks`` train the same spec at several
widths. This module trains one network of an expanded spec: linear layers
(any activation of the spec language, with or without bias), ``layer_norm`` and
``rms_norm`` (elementwise affine, ε = 1e-5 as PyTorch's default), and residual
groups with norm ``pre``, ``post`` or ``none`` whose branches hold those;
sequential and repeat groups are already flat in the expanded structure.

Every parameter tensor has a :class:`TensorSetup` (how it is drawn, its
learning rate and weight decay, and its forward multiplier: the tensor enters
the forward pass as ``multiplier × stored value``, so a linear layer computes
``y = a_W·(W x) + a_b·b``, the readout of the mup package's ``MuReadout``).
A residual group computes ``x + r·f(x)`` (pre-norm ``x + r·f(N(x))``, post-norm
``N(x + r·f(x))``) with ``r`` the parametrization's residual multiplier.

The optimizers follow ``torch.optim`` 2.13 (``SGD`` without momentum, ``Adam``
and ``AdamW``) in the order it computes, with a learning rate and a weight
decay per tensor, as µP's parameter groups give them. Arithmetic is float32 by
default (losses and recorded means are summed in float64); ``dtype=np.float64``
serves gradient checks. The module is pure: no I/O, no global random state.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Literal, NamedTuple

import numpy as np

from initlab.core.activations import phi, phi_prime
from initlab.core.errors import FieldProblem, InvalidInput, json_value
from initlab.core.initializers import (
    KERAS_TRUNCATION_SAMPLER_STDS,
    truncated_normal_mean,
    truncated_normal_std,
    uniform_bound,
)
from initlab.core.types import (
    Activation,
    Distribution,
    ExpandedSpec,
    LayerNode,
    ResidualNode,
    StructureNode,
)

Optimizer = Literal["sgd", "adam", "adamw"]
Loss = Literal["cross_entropy", "mse"]

OPTIMIZERS: tuple[str, ...] = ("sgd", "adam", "adamw")
LOSSES: tuple[str, ...] = ("cross_entropy", "mse")
DISTRIBUTIONS: tuple[str, ...] = (
    "normal",
    "uniform",
    "truncated_normal",
    "orthogonal",
    "constant",
)
#: The layer kinds the engine trains.
TRAINED_KINDS: tuple[str, ...] = ("linear", "layer_norm", "rms_norm")
#: ε of layer_norm and rms_norm (PyTorch 2.13's LayerNorm default).
NORM_EPS = 1e-5
#: What the engine trains, for refusals.
TRAINED = (
    "linear layers (any activation, with or without bias), layer_norm and"
    " rms_norm, and residual groups (norm pre, post or none, no projection"
    " shortcut) built of them"
)
#: Unsupported layers a refusal names one by one before it counts the rest.
LISTED_UNSUPPORTED = 20


@dataclass(frozen=True)
class TensorSetup:
    """How one parameter tensor is drawn and trained.

    ``distribution`` is read as :class:`initlab.core.types.Recommendation` and
    ``initlab.core.mup.MupRow`` use it, ``init_std`` always being the std of the
    values drawn: ``uniform`` is mean + U(−√3·std, √3·std); ``truncated_normal``
    a normal cut at ``truncation`` = (α, β) sampler stds about its centre
    (default ±2, Keras' and JAX's cut), its sampler std and centre chosen so the
    values drawn have ``init_mean`` and ``init_std`` (a µP rescaling of std
    rescales the bounds with it); ``orthogonal`` gain·Q with
    gain = std·√max(rows, cols) (the element RMS of a semi-orthogonal matrix is
    gain/√max(rows, cols)); ``constant`` every entry ``init_mean``.
    ``forward_multiplier`` multiplies the tensor wherever the forward pass
    uses it.
    """

    init_mean: float
    init_std: float
    distribution: Distribution
    lr: float
    weight_decay: float = 0.0
    forward_multiplier: float = 1.0
    truncation: tuple[float, float] | None = None


@dataclass(frozen=True)
class Parametrization:
    """Every tensor's setup (by parameter name), the residual multiplier and the
    optimizer with its ε and β's (``torch.optim.Adam``'s defaults)."""

    tensors: Mapping[str, TensorSetup]
    residual_multiplier: float = 1.0
    optimizer: Optimizer = "adam"
    eps: float = 1e-8
    betas: tuple[float, float] = (0.9, 0.999)


class LossAndGradients(NamedTuple):
    """The loss of a batch, the gradient of every stored tensor, and the records
    of that forward pass (empty unless asked for)."""

    loss: float
    gradients: dict[str, np.ndarray]
    records: dict[str, float]


# --- the compiled program ----------------------------------------------------------


@dataclass(frozen=True)
class _Linear:
    name: str
    weight: str
    bias: str | None
    activation: Activation
    in_features: int
    out_features: int


@dataclass(frozen=True)
class _Norm:
    name: str
    kind: str
    weight: str | None
    bias: str | None
    width: int
    activation: Activation


@dataclass(frozen=True)
class _Residual:
    name: str
    placement: str
    norm: _Norm | None
    branch: tuple[_Op, ...]


_Op = _Linear | _Norm | _Residual


@dataclass(frozen=True)
class RecordedOutput:
    """A point whose mean |x| the forward pass records: a linear layer's output
    (after its forward multiplier and bias, before its activation) or a residual
    group's output; ``weight`` names a linear layer's weight."""

    name: str
    kind: Literal["linear", "residual"]
    weight: str | None = None


def unsupported_layers(expanded: ExpandedSpec) -> list[tuple[str, str]]:
    """Every layer the engine cannot train, as (name, kind), in forward order."""
    found: list[tuple[str, str]] = []

    def walk(nodes: Sequence[StructureNode]) -> None:
        for node in nodes:
            if isinstance(node, ResidualNode):
                if node.shortcut:
                    found.append((node.name or "residual", "projection shortcut"))
                if node.norm_layer is not None:
                    walk((node.norm_layer,))
                walk(node.branch)
                walk(node.shortcut)
            elif node.kind not in TRAINED_KINDS:
                found.append((node.name, node.kind))
            else:
                tied = [
                    expanded.parameters[index].tied_to
                    for index in node.parameters
                    if expanded.parameters[index].tied_to
                ]
                if tied:
                    found.append((node.name, f"{node.kind} tied to {tied[0]}"))

    walk(expanded.structure)
    return found


def network_sizes(expanded: ExpandedSpec) -> tuple[int, int]:
    """(input width, output width) of the network ``expanded`` describes.

    Raises :class:`InvalidInput` as :class:`Network` does for a spec the
    engine cannot train.
    """
    check_trainable(expanded)
    _, input_width, output_width = _Compiler(expanded).compile()

    return input_width, output_width


def check_trainable(expanded: ExpandedSpec) -> None:
    """Refuse a spec the engine cannot train, naming every layer at fault."""
    if not expanded.structure:
        raise InvalidInput.at(
            ("spec", "layers"),
            "the expanded spec carries no layer tree (structure is empty); expand"
            " the spec with initlab.core.spec.expand",
        )

    found = unsupported_layers(expanded)
    if not found:
        return

    listed = ", ".join(f"{name} ({kind})" for name, kind in found[:LISTED_UNSUPPORTED])
    rest = found[LISTED_UNSUPPORTED:]
    if rest:
        kinds = Counter(kind for _, kind in rest)
        listed += f" and {len(rest)} more (" + ", ".join(
            f"{kind} ×{count}" for kind, count in kinds.items()
        )
        listed += ")"
    raise InvalidInput.at(
        ("spec", "layers"),
        f"the training engine trains {TRAINED}; it cannot train {listed}; remove"
        " or replace those layers to check µP on this spec",
        value=[kind for _, kind in found],
        allowed=TRAINED,
    )


class _Compiler:
    """Turns an expanded spec's layer tree into the engine's program."""

    def __init__(self, expanded: ExpandedSpec) -> None:
        self.expanded = expanded
        self.problems: list[FieldProblem] = []
        self.residual_names = _residual_names(expanded.structure)
        self.recorded: list[RecordedOutput] = []

    def compile(self) -> tuple[tuple[_Op, ...], int, int]:
        nodes = self.expanded.structure
        input_width = self.first_width(nodes)
        ops, width = self.sequence(nodes, input_width, "the network input")
        if self.problems:
            raise InvalidInput(self.problems)

        return ops, input_width, width

    def first_width(self, nodes: Sequence[StructureNode]) -> int:
        node = nodes[0]
        while isinstance(node, ResidualNode):
            node = node.norm_layer if node.norm == "pre" else node.branch[0]

        return self.expanded.parameters[node.parameters[0]].in_features

    def sequence(
        self, nodes: Sequence[StructureNode], width: int, before: str
    ) -> tuple[tuple[_Op, ...], int]:
        ops: list[_Op] = []
        for node in nodes:
            if isinstance(node, ResidualNode):
                op, width = self.residual(node, width, before)
                before = f"the residual group {op.name}"
            else:
                op = self.layer(node, width, before)
                width = op.out_features if isinstance(op, _Linear) else op.width
                before = node.name
            ops.append(op)

        return tuple(ops), width

    def residual(
        self, node: ResidualNode, width: int, before: str
    ) -> tuple[_Residual, int]:
        name = self.residual_names[id(node)]
        norm = None
        if node.norm == "pre" and node.norm_layer is not None:
            norm = self.norm(node.norm_layer, width, before)
        branch, branch_width = self.sequence(node.branch, width, before)
        if branch_width != width:
            self.problem(
                node.path,
                f"residual group {name}: the branch ends with {branch_width}"
                f" features but its input has {width}; end the branch at {width}",
                branch_width,
            )
        if node.norm == "post" and node.norm_layer is not None:
            norm = self.norm(node.norm_layer, width, f"the residual sum of {name}")
        self.recorded.append(RecordedOutput(name, "residual"))

        return _Residual(name, node.norm, norm, branch), width

    def layer(self, node: LayerNode, width: int, before: str) -> _Linear | _Norm:
        if node.kind == "linear":
            return self.linear(node, width, before)

        return self.norm(node, width, before)

    def linear(self, node: LayerNode, width: int, before: str) -> _Linear:
        tensors = [self.expanded.parameters[index] for index in node.parameters]
        weight = next(t for t in tensors if t.tensor == "weight")
        bias = next((t for t in tensors if t.tensor == "bias"), None)
        if weight.in_features != width:
            self.problem(
                node.path,
                f"{node.name} reads {weight.in_features} features but {before}"
                f" gives {width}; the engine trains one signal through the layers,"
                f" so make its in {width}",
                weight.in_features,
            )
        self.recorded.append(RecordedOutput(node.name, "linear", weight.name))

        return _Linear(
            name=node.name,
            weight=weight.name,
            bias=None if bias is None else bias.name,
            activation=weight.activation,
            in_features=weight.in_features,
            out_features=weight.out_features,
        )

    def norm(self, node: LayerNode, width: int, before: str) -> _Norm:
        tensors = [self.expanded.parameters[index] for index in node.parameters]
        weight = next((t for t in tensors if t.tensor == "weight"), None)
        bias = next((t for t in tensors if t.tensor == "bias"), None)
        size = tensors[0].in_features
        if size != width:
            self.problem(
                node.path,
                f"{node.name} normalizes {size} features but {before} gives"
                f" {width}; make its in {width}",
                size,
            )

        return _Norm(
            name=node.name,
            kind=node.kind,
            weight=None if weight is None else weight.name,
            bias=None if bias is None else bias.name,
            width=size,
            activation=tensors[0].activation,
        )

    def problem(self, path: tuple, message: str, value: object = None) -> None:
        self.problems.append(FieldProblem(("spec", *path), message, value))


def _residual_names(nodes: Sequence[StructureNode]) -> dict[int, str]:
    """A unique name per residual group (by ``id``): its dotted name, ``residual``
    when unnamed at the top, ``name[i]`` in order where several share one."""
    groups: list[ResidualNode] = []

    def collect(items: Sequence[StructureNode]) -> None:
        for node in items:
            if isinstance(node, ResidualNode):
                groups.append(node)
                collect(node.branch)

    collect(nodes)
    counts = Counter(node.name or "residual" for node in groups)
    seen: Counter[str] = Counter()
    names: dict[int, str] = {}
    for node in groups:
        name = node.name or "residual"
        if counts[name] > 1:
            names[id(node)] = f"{name}[{seen[name]}]"
            seen[name] += 1
        else:
            names[id(node)] = name

    return names


# --- drawing ------------------------------------------------------------------------


def draw_tensor(
    setup: TensorSetup,
    shape: tuple[int, ...],
    rng: np.random.Generator,
    dtype: type = np.float32,
) -> np.ndarray:
    """An array of ``shape`` drawn as ``setup`` says (see :class:`TensorSetup`).

    normal: mean + std·z; uniform: mean + U(−a, a) with a = √3·std
    (:func:`initlab.core.initializers.uniform_bound`); truncated normal:
    centre + σ_s·z with z ~ N(0, 1) redrawn until inside [α, β], where
    σ_s = std/s(α, β) and centre = mean − σ_s·m(α, β), s and m the std and mean
    of N(0, 1) cut to [α, β] (Johnson, Kotz & Balakrishnan 1994, §13.10.1);
    orthogonal: gain·Q of the QR decomposition of a Gaussian matrix, each
    column's sign fixed by R's diagonal (PyTorch 2.13 ``orthogonal_``; Mezzadri
    2007, §5), gain = std·√max(rows, cols); constant: mean.
    """
    distribution = setup.distribution
    if distribution == "constant" or (
        distribution != "orthogonal" and setup.init_std == 0.0
    ):
        return np.full(shape, setup.init_mean, dtype=dtype)

    if distribution == "normal":
        values = rng.standard_normal(shape, dtype=dtype)
        values *= dtype(setup.init_std)
    elif distribution == "uniform":
        bound = uniform_bound(setup.init_std)
        values = rng.uniform(-bound, bound, shape).astype(dtype)
    elif distribution == "truncated_normal":
        return _truncated_normal(setup, shape, rng, dtype)
    else:
        values = _orthogonal(setup.init_std, shape, rng, dtype)
    if setup.init_mean:
        values += dtype(setup.init_mean)

    return values


def _truncated_normal(
    setup: TensorSetup, shape: tuple[int, ...], rng: np.random.Generator, dtype: type
) -> np.ndarray:
    cut = KERAS_TRUNCATION_SAMPLER_STDS
    lower, upper = setup.truncation or (-cut, cut)
    sampler_std = setup.init_std / truncated_normal_std(0.0, 1.0, lower, upper)
    centre = setup.init_mean - sampler_std * truncated_normal_mean(
        0.0, 1.0, lower, upper
    )
    values = rng.standard_normal(math.prod(shape))
    outside = np.flatnonzero((values < lower) | (values > upper))
    while outside.size:
        fresh = rng.standard_normal(outside.size)
        values[outside] = fresh
        outside = outside[(fresh < lower) | (fresh > upper)]

    return (centre + sampler_std * values).astype(dtype).reshape(shape)


def _orthogonal(
    std: float, shape: tuple[int, ...], rng: np.random.Generator, dtype: type
) -> np.ndarray:
    rows = shape[0]
    columns = math.prod(shape[1:])
    gaussian = rng.standard_normal((rows, columns))
    if rows < columns:
        gaussian = gaussian.T
    q, r = np.linalg.qr(gaussian)
    q *= np.sign(np.diagonal(r))
    if rows < columns:
        q = q.T
    gain = std * math.sqrt(max(rows, columns))

    return np.ascontiguousarray(q * gain, dtype=dtype).reshape(shape)


# --- losses -------------------------------------------------------------------------


def cross_entropy(logits: np.ndarray, labels: np.ndarray) -> tuple[float, np.ndarray]:
    """Mean over the batch of −log softmax(f)_y, and its gradient (p − onehot)/B.

    PyTorch 2.13 ``torch.nn.functional.cross_entropy`` with reduction 'mean';
    log-sum-exp taken about each row's maximum, in float64.
    """
    batch = logits.shape[0]
    wide = logits.astype(np.float64)
    shifted = wide - wide.max(axis=1, keepdims=True)
    log_norm = np.log(np.exp(shifted).sum(axis=1))
    rows = np.arange(batch)
    loss = float(np.mean(log_norm - shifted[rows, labels]))
    probabilities = np.exp(shifted - log_norm[:, None])
    probabilities[rows, labels] -= 1.0

    return loss, (probabilities / batch).astype(logits.dtype)


def mean_squared_error(
    outputs: np.ndarray, targets: np.ndarray
) -> tuple[float, np.ndarray]:
    """Mean over the batch of ½‖f − y‖², and its gradient (f − y)/B."""
    batch = outputs.shape[0]
    difference = outputs.astype(np.float64) - targets
    loss = float(0.5 * np.sum(difference * difference) / batch)

    return loss, (difference / batch).astype(outputs.dtype)


# --- the network --------------------------------------------------------------------


class Network:
    """One network of ``expanded`` drawn and trained as ``parametrization`` says.

    Parameters are drawn from ``np.random.default_rng(seed)`` in forward order
    (the order of ``expanded.parameters``), each as its :class:`TensorSetup`
    says, in ``dtype``. :meth:`forward` runs a batch, :meth:`loss_and_gradients`
    adds the loss and the backward pass, :meth:`step` the optimizer update.
    Raises :class:`InvalidInput` for a spec the engine cannot train (path
    ``("spec", "layers")``) and for a parametrization that does not fit it.
    """

    def __init__(
        self,
        expanded: ExpandedSpec,
        parametrization: Parametrization,
        seed: int | np.random.SeedSequence,
        dtype: type = np.float32,
    ) -> None:
        check_trainable(expanded)
        compiler = _Compiler(expanded)
        self.ops, self.input_width, self.output_width = compiler.compile()
        self.recorded: tuple[RecordedOutput, ...] = tuple(compiler.recorded)
        _check_parametrization(expanded, parametrization)

        self.expanded = expanded
        self.parametrization = parametrization
        self.dtype = np.dtype(dtype).type
        self.setups = dict(parametrization.tensors)
        self.residual_multiplier = self.dtype(parametrization.residual_multiplier)
        rng = np.random.default_rng(seed)
        self.params: dict[str, np.ndarray] = {
            tensor.name: draw_tensor(
                self.setups[tensor.name], tensor.shape, rng, self.dtype
            )
            for tensor in expanded.parameters
        }
        self.steps_taken = 0
        self.first_moments: dict[str, np.ndarray] = {}
        self.second_moments: dict[str, np.ndarray] = {}
        self.scratch: dict[str, np.ndarray] = {}

    # -- forward -------------------------------------------------------------------

    def multiplier(self, name: str | None) -> float:
        return self.setups[name].forward_multiplier if name is not None else 1.0

    def effective(self, name: str) -> np.ndarray:
        """The tensor as the forward pass uses it: multiplier × stored value."""
        value = self.params[name]
        multiplier = self.setups[name].forward_multiplier
        if multiplier == 1.0:
            return value

        return value * self.dtype(multiplier)

    def forward(
        self, x: np.ndarray, record: bool = False
    ) -> tuple[np.ndarray, dict[str, float]]:
        """The network's output for the batch ``x`` (B × input width) and, when
        ``record``, the mean |x| of every recorded output (see
        :attr:`recorded`), in float64 sums; an empty dict otherwise."""
        x = self.checked_input(x)
        records: dict[str, float] | None = {} if record else None
        output = self.run(self.ops, x, records, None)

        return output, records or {}

    def checked_input(self, x: np.ndarray) -> np.ndarray:
        x = np.asarray(x)
        if x.ndim != 2 or x.shape[1] != self.input_width:
            raise InvalidInput.at(
                ("x",),
                f"the input must be a batch of shape (B, {self.input_width}); got"
                f" shape {list(x.shape)}",
                value=list(x.shape),
            )

        return x.astype(self.dtype, copy=False)

    def run(
        self,
        ops: Sequence[_Op],
        x: np.ndarray,
        records: dict[str, float] | None,
        caches: list | None,
    ) -> np.ndarray:
        for op in ops:
            if isinstance(op, _Linear):
                x = self.linear_forward(op, x, records, caches)
            elif isinstance(op, _Norm):
                x = self.norm_forward(op, x, caches)
            else:
                x = self.residual_forward(op, x, records, caches)

        return x

    def linear_forward(
        self,
        op: _Linear,
        x: np.ndarray,
        records: dict[str, float] | None,
        caches: list | None,
    ) -> np.ndarray:
        h = x @ self.params[op.weight].T
        multiplier = self.multiplier(op.weight)
        if multiplier != 1.0:
            h *= self.dtype(multiplier)
        if op.bias is not None:
            h += self.effective(op.bias)
        if records is not None:
            records[op.name] = _mean_abs(h)
        if caches is not None:
            caches.append((x, h))

        return h if op.activation.name == "identity" else phi(op.activation, h)

    def norm_forward(self, op: _Norm, x: np.ndarray, caches: list | None) -> np.ndarray:
        """LayerNorm: (x − μ)/√(σ² + ε); RMSNorm: x/√(mean x² + ε); then g ⊙ x̂ + b.

        Ba, Kiros & Hinton 2016, "Layer Normalization" (arXiv 1607.06450);
        Zhang & Sennrich 2019, "Root Mean Square Layer Normalization" (arXiv
        1910.07467); biased variance and ε inside the root as PyTorch 2.13.
        """
        centred = x - x.mean(axis=1, keepdims=True) if op.kind == "layer_norm" else x
        scale = 1.0 / np.sqrt(
            np.mean(centred * centred, axis=1, keepdims=True) + self.dtype(NORM_EPS)
        )
        normalized = centred * scale
        h = normalized
        if op.weight is not None:
            h = normalized * self.effective(op.weight)
        if op.bias is not None:
            h = h + self.effective(op.bias)
        if caches is not None:
            caches.append((normalized, scale, h))

        return h if op.activation.name == "identity" else phi(op.activation, h)

    def residual_forward(
        self,
        op: _Residual,
        x: np.ndarray,
        records: dict[str, float] | None,
        caches: list | None,
    ) -> np.ndarray:
        branch_input = x
        if op.placement == "pre" and op.norm is not None:
            branch_input = self.norm_forward(op.norm, x, caches)
        branch = self.run(op.branch, branch_input, records, caches)
        total = x + self.residual_multiplier * branch
        if op.placement == "post" and op.norm is not None:
            total = self.norm_forward(op.norm, total, caches)
        if records is not None:
            records[op.name] = _mean_abs(total)

        return total

    # -- backward ------------------------------------------------------------------

    def loss_and_gradients(
        self, x: np.ndarray, y: np.ndarray, loss: Loss, record: bool = False
    ) -> LossAndGradients:
        """The loss of the batch and the gradient of every stored tensor.

        ``loss`` is ``cross_entropy`` (``y`` integer classes, mean over the
        batch) or ``mse`` (``y`` targets of the output's shape, mean over the
        batch of ½‖f − y‖²). The backward pass is written by hand: each op's
        input gradient from its output gradient, in reverse order.
        """
        x = self.checked_input(x)
        caches: list = []
        records: dict[str, float] | None = {} if record else None
        output = self.run(self.ops, x, records, caches)
        value, d_output = self.loss(output, y, loss)
        gradients: dict[str, np.ndarray] = {}
        self.backward(self.ops, d_output, caches, gradients)

        return LossAndGradients(value, gradients, records or {})

    def loss(
        self, output: np.ndarray, y: np.ndarray, loss: Loss
    ) -> tuple[float, np.ndarray]:
        y = np.asarray(y)
        batch = output.shape[0]
        if loss == "cross_entropy":
            if y.shape != (batch,) or not np.issubdtype(y.dtype, np.integer):
                raise InvalidInput.at(
                    ("y",),
                    f"cross_entropy takes {batch} integer class labels; got"
                    f" shape {list(y.shape)} of {y.dtype}",
                    value=list(y.shape),
                )
            if y.size and (y.min() < 0 or y.max() >= self.output_width):
                raise InvalidInput.at(
                    ("y",),
                    f"class labels must lie in [0, {self.output_width - 1}]",
                    value=[int(y.min()), int(y.max())],
                )
            return cross_entropy(output, y)

        if loss == "mse":
            if y.shape != output.shape:
                raise InvalidInput.at(
                    ("y",),
                    f"mse takes targets of the output's shape {list(output.shape)};"
                    f" got {list(y.shape)}",
                    value=list(y.shape),
                )
            return mean_squared_error(output, y)

        raise InvalidInput.at(
            ("loss",),
            f"loss must be one of {', '.join(LOSSES)}; got {json_value(loss)}",
            value=loss,
            allowed=", ".join(LOSSES),
        )

    def backward(
        self,
        ops: Sequence[_Op],
        d_output: np.ndarray,
        caches: list,
        gradients: dict[str, np.ndarray],
    ) -> np.ndarray:
        """Pops each op's cache from the end of ``caches`` and returns the
        gradient of the ops' input; parameter gradients go into ``gradients``."""
        grad = d_output
        for op in reversed(ops):
            if isinstance(op, _Linear):
                grad = self.linear_backward(op, grad, caches.pop(), gradients)
            elif isinstance(op, _Norm):
                grad = self.norm_backward(op, grad, caches.pop(), gradients)
            else:
                grad = self.residual_backward(op, grad, caches, gradients)

        return grad

    def linear_backward(
        self,
        op: _Linear,
        grad: np.ndarray,
        cache: tuple[np.ndarray, np.ndarray],
        gradients: dict[str, np.ndarray],
    ) -> np.ndarray:
        """h = a_W·x Wᵀ + a_b·b, out = φ(h): ∂h = ∂out ⊙ φ'(h),
        ∂W = a_W·∂hᵀ x, ∂b = a_b·Σ_batch ∂h, ∂x = a_W·∂h W."""
        x, h = cache
        if op.activation.name != "identity":
            grad = grad * phi_prime(op.activation, h)
        multiplier = self.dtype(self.multiplier(op.weight))
        weight_grad = grad.T @ x
        if multiplier != 1.0:
            weight_grad *= multiplier
        gradients[op.weight] = weight_grad
        if op.bias is not None:
            gradients[op.bias] = grad.sum(axis=0) * self.dtype(self.multiplier(op.bias))
        d_input = grad @ self.params[op.weight]
        if multiplier != 1.0:
            d_input *= multiplier

        return d_input

    def norm_backward(
        self,
        op: _Norm,
        grad: np.ndarray,
        cache: tuple[np.ndarray, np.ndarray, np.ndarray],
        gradients: dict[str, np.ndarray],
    ) -> np.ndarray:
        """With x̂ the normalized input and s = 1/√(·+ε): ∂x̂ = ∂y ⊙ g;
        LayerNorm ∂x = s·(∂x̂ − mean ∂x̂ − x̂·mean(∂x̂ ⊙ x̂)); RMSNorm
        ∂x = s·(∂x̂ − x̂·mean(∂x̂ ⊙ x̂)); ∂g = a_g·Σ_batch ∂y ⊙ x̂, ∂b = a_b·Σ ∂y."""
        normalized, scale, h = cache
        if op.activation.name != "identity":
            grad = grad * phi_prime(op.activation, h)
        if op.bias is not None:
            gradients[op.bias] = grad.sum(axis=0) * self.dtype(self.multiplier(op.bias))
        d_normalized = grad
        if op.weight is not None:
            gradients[op.weight] = (grad * normalized).sum(axis=0) * self.dtype(
                self.multiplier(op.weight)
            )
            d_normalized = grad * self.effective(op.weight)
        projection = np.mean(d_normalized * normalized, axis=1, keepdims=True)
        d_centred = d_normalized - normalized * projection
        if op.kind == "layer_norm":
            d_centred -= d_normalized.mean(axis=1, keepdims=True)

        return d_centred * scale

    def residual_backward(
        self,
        op: _Residual,
        grad: np.ndarray,
        caches: list,
        gradients: dict[str, np.ndarray],
    ) -> np.ndarray:
        if op.placement == "post" and op.norm is not None:
            grad = self.norm_backward(op.norm, grad, caches.pop(), gradients)
        d_input = grad.copy()
        d_branch = self.backward(
            op.branch, grad * self.residual_multiplier, caches, gradients
        )
        if op.placement == "pre" and op.norm is not None:
            d_branch = self.norm_backward(op.norm, d_branch, caches.pop(), gradients)
        d_input += d_branch

        return d_input

    # -- the optimizer -------------------------------------------------------------

    def step(self, gradients: Mapping[str, np.ndarray]) -> None:
        """One optimizer step on every tensor, as ``torch.optim`` 2.13 computes it.

        SGD: p ← p − η·(g + λp). Adam (Kingma & Ba 2015, Algorithm 1) with L2
        decay g ← g + λp: m ← β₁m + (1 − β₁)g, v ← β₂v + (1 − β₂)g²,
        p ← p − (η/(1 − β₁ᵗ))·m/(√v/√(1 − β₂ᵗ) + ε). AdamW (Loshchilov &
        Hutter 2019, decoupled decay): p ← p·(1 − ηλ), then the Adam step on g.
        η and λ are each tensor's own.
        """
        missing = [name for name in self.params if name not in gradients]
        if missing:
            raise InvalidInput.at(
                ("gradients",),
                f"no gradient for {', '.join(missing[:5])}; pass the gradients"
                " loss_and_gradients returned",
                value=missing[:5],
            )
        self.steps_taken += 1
        optimizer = self.parametrization.optimizer
        for name, param in self.params.items():
            setup = self.setups[name]
            grad = np.asarray(gradients[name], dtype=self.dtype)
            if optimizer == "sgd":
                self.sgd(param, grad, setup)
            else:
                self.adam(name, param, grad, setup, decoupled=optimizer == "adamw")

    def sgd(self, param: np.ndarray, grad: np.ndarray, setup: TensorSetup) -> None:
        if setup.weight_decay:
            grad = grad + self.dtype(setup.weight_decay) * param
        param -= self.dtype(setup.lr) * grad

    def adam(
        self,
        name: str,
        param: np.ndarray,
        grad: np.ndarray,
        setup: TensorSetup,
        *,
        decoupled: bool,
    ) -> None:
        beta1, beta2 = self.parametrization.betas
        if setup.weight_decay and decoupled:
            param *= self.dtype(1.0 - setup.lr * setup.weight_decay)
        elif setup.weight_decay:
            grad = grad + self.dtype(setup.weight_decay) * param
        first = self.first_moments.get(name)
        if first is None:
            first = self.first_moments[name] = np.zeros_like(param)
            self.second_moments[name] = np.zeros_like(param)
            self.scratch[name] = np.empty_like(param)
        second = self.second_moments[name]
        # Every pass in place into one scratch array per tensor: wide hidden
        # weights make the update memory-bound, and fresh temporaries cost more
        # than the arithmetic.
        scratch = self.scratch[name]
        first *= self.dtype(beta1)
        np.multiply(grad, self.dtype(1.0 - beta1), out=scratch)
        first += scratch
        second *= self.dtype(beta2)
        np.multiply(grad, grad, out=scratch)
        scratch *= self.dtype(1.0 - beta2)
        second += scratch

        step = self.steps_taken
        step_size = setup.lr / (1.0 - beta1**step)
        correction = math.sqrt(1.0 - beta2**step)
        np.sqrt(second, out=scratch)
        scratch /= self.dtype(correction)
        scratch += self.dtype(self.parametrization.eps)
        np.divide(first, scratch, out=scratch)
        scratch *= self.dtype(step_size)
        param -= scratch


def _mean_abs(values: np.ndarray) -> float:
    """mean |x| over every entry, summed in float64 (the mup package's ``l1``)."""
    return float(np.mean(np.abs(values), dtype=np.float64))


def _check_parametrization(
    expanded: ExpandedSpec, parametrization: Parametrization
) -> None:
    problems: list[FieldProblem] = []
    names = [tensor.name for tensor in expanded.parameters]
    tensors = parametrization.tensors
    missing = [name for name in names if name not in tensors]
    if missing:
        problems.append(
            FieldProblem(
                ("parametrization", "tensors"),
                f"no setup for {', '.join(missing)}; give every parameter tensor"
                " of the spec a TensorSetup",
                value=missing,
            )
        )
    known = set(names)
    unknown = [name for name in tensors if name not in known]
    if unknown:
        problems.append(
            FieldProblem(
                ("parametrization", "tensors"),
                f"{', '.join(unknown)} is not a parameter tensor of the spec",
                value=unknown,
            )
        )
    for name, setup in tensors.items():
        problems.extend(_setup_problems(name, setup))
    if parametrization.optimizer not in OPTIMIZERS:
        problems.append(
            FieldProblem(
                ("parametrization", "optimizer"),
                f"optimizer must be one of {', '.join(OPTIMIZERS)}; got"
                f" {json_value(parametrization.optimizer)}",
                value=parametrization.optimizer,
                allowed=", ".join(OPTIMIZERS),
            )
        )
    beta1, beta2 = parametrization.betas
    if not (0.0 <= beta1 < 1.0 and 0.0 <= beta2 < 1.0):
        problems.append(
            FieldProblem(
                ("parametrization", "betas"),
                f"betas must each lie in [0, 1); got {json_value([beta1, beta2])}",
                value=[beta1, beta2],
            )
        )
    if not (math.isfinite(parametrization.eps) and parametrization.eps > 0.0):
        problems.append(
            FieldProblem(
                ("parametrization", "eps"),
                f"eps must be a positive number; got {parametrization.eps!r}",
                value=parametrization.eps,
            )
        )
    if not math.isfinite(parametrization.residual_multiplier):
        problems.append(
            FieldProblem(
                ("parametrization", "residual_multiplier"),
                "residual_multiplier must be finite",
                value=parametrization.residual_multiplier,
            )
        )
    if problems:
        raise InvalidInput(problems)


def _setup_problems(name: str, setup: TensorSetup) -> list[FieldProblem]:
    path = ("parametrization", "tensors", name)
    problems = []
    if setup.distribution not in DISTRIBUTIONS:
        problems.append(
            FieldProblem(
                (*path, "distribution"),
                f"{name}: distribution must be one of {', '.join(DISTRIBUTIONS)};"
                f" got {json_value(setup.distribution)}",
                value=setup.distribution,
                allowed=", ".join(DISTRIBUTIONS),
            )
        )
    checks = (
        ("init_std", setup.init_std, True),
        ("lr", setup.lr, True),
        ("weight_decay", setup.weight_decay, True),
        ("init_mean", setup.init_mean, False),
        ("forward_multiplier", setup.forward_multiplier, False),
    )
    for field_name, value, non_negative in checks:
        if not math.isfinite(value) or (non_negative and value < 0.0):
            wanted = "a finite number ≥ 0" if non_negative else "a finite number"
            problems.append(
                FieldProblem(
                    (*path, field_name),
                    f"{name}: {field_name} must be {wanted}; got {value!r}",
                    value=value,
                )
            )
    if setup.truncation is not None:
        lower, upper = setup.truncation
        if not (math.isfinite(lower) and math.isfinite(upper) and lower < upper):
            problems.append(
                FieldProblem(
                    (*path, "truncation"),
                    f"{name}: truncation must be finite bounds (α, β) with α < β;"
                    f" got {json_value([lower, upper])}",
                    value=[lower, upper],
                )
            )

    return problems
