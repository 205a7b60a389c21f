"""Init statistics: how the signal and the gradient move through a network at init.

A user posts a spec and an init; :func:`compute_statistics` answers, layer by
layer, whether the forward second moment and the backward gradient second
moment shrink, stay or blow up. It

1. builds the :class:`~initlab.core.network.Network` both engines read
   (:func:`build_network`), refusing what they cannot model;
2. estimates the Monte Carlo cost from the shapes and refuses a request over
   budget before any work (:class:`~initlab.core.errors.LimitExceeded`);
3. runs the infinite-width mean-field propagation
   (:func:`initlab.core.propagation.propagate`) and/or the finite-width
   simulation (:func:`initlab.core.montecarlo.simulate`), and merges them per
   layer;
4. summarises: a forward and a backward verdict with the growth factor per
   layer and the layer where the signal has grown 10× or shrunk 10×, and the
   phase (ordered, chaotic, critical) of a homogeneous stack.

:func:`propagation_chart` and :func:`phase_diagram_chart` shape the same
numbers for the frontend's plots. See signal-propagation.md (Poole et al.
2016; Schoenholz et al. 2017) for the mathematics.
"""

from __future__ import annotations

import dataclasses
import functools
import math
from collections import Counter
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, field
from typing import Literal

import numpy as np

from initlab.core import meanfield, montecarlo
from initlab.core.errors import FieldProblem, InvalidInput, LimitExceeded, Path
from initlab.core.fans import signal_fans
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
from initlab.core.propagation import (
    ATTENTION_MODEL,
    OUTPUT_GRADIENT_NOTE,
    AnalyticLayer,
    AnalyticResult,
    BeyondAnalyticRange,
    affine_second_moment,
    dense_sigma2,
    propagate,
)
from initlab.core.recommend import RecommendationResult, recommend
from initlab.core.spec import LinearSpec, Spec, SpecLimits, expand
from initlab.core.types import (
    Activation,
    ExpandedSpec,
    LayerNode,
    ParameterTensor,
    Recommendation,
    ResidualNode,
    SchemeChoice,
    StructureNode,
)

_DENSE_KINDS = frozenset(
    {
        "linear",
        "conv1d",
        "conv2d",
        "conv3d",
        "conv_transpose1d",
        "conv_transpose2d",
        "conv_transpose3d",
    }
)
_NORM_KINDS = frozenset({"layer_norm", "rms_norm", "batch_norm"})


# --- The network both engines read -----------------------------------------------


def build_network(expanded: ExpandedSpec, result: RecommendationResult) -> Network:
    """The forward program of ``expanded`` with every tensor drawn as ``result`` says.

    Walks the layer tree (``expanded.structure``) in forward order: leading
    embeddings become one :class:`Embedding` (their tables summed); linear and
    conv layers a :class:`Dense` with its activation and signal fan_in
    ``(c_in/groups)·k^d``; attention blocks an :class:`Attention` (a fused qkv
    split into q, k and v, drawn alike); gated MLPs a :class:`GatedMlp`;
    residual groups a :class:`Residual` with their norm, branch and shortcut.

    Raises :class:`InvalidInput` listing every layer that cannot be modelled,
    at its path in the spec (``("layers", 3)``): a layer whose input width is
    not the width before it, a residual branch whose output width differs
    from its stream's, an embedding after the first layers, convolutions of
    different dimensionality, an activation on a norm layer, and weights or
    biases drawn with a nonzero mean.
    """
    if not expanded.structure:
        raise InvalidInput.at(
            ("layers",),
            "the expanded spec carries no layer tree (structure is empty); expand"
            " the spec with initlab.core.spec.expand",
        )

    builder = _NetworkBuilder(expanded, result)
    network = builder.build()
    if builder.problems:
        raise InvalidInput(builder.problems)

    return network


def _draw(row: Recommendation) -> Draw:
    """How the entries of one tensor are drawn, from its recommendation."""
    truncation = None
    if row.truncation is not None:
        truncation = (
            row.truncation.lower,
            row.truncation.upper,
            row.truncation.sampler_std,
        )
    gain = row.gain if row.distribution == "orthogonal" else None
    return Draw(row.distribution, row.std, row.mean, row.bound, truncation, gain)


def _residual_names(nodes: tuple[StructureNode, ...]) -> dict[int, str]:
    """A unique name for every residual group, keyed by ``id`` of its node.

    A group keeps its dotted name when no other group has it; groups that
    share one (GPT-2's two unnamed groups in ``h.3``) are told apart by their
    order: ``h.3[0]``, ``h.3[1]``. An unnamed group at the top is ``residual``.
    """
    groups: list[ResidualNode] = []

    def collect(items: tuple[StructureNode, ...]) -> None:
        for node in items:
            if isinstance(node, ResidualNode):
                groups.append(node)
                collect(node.branch)
                collect(node.shortcut)

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


@dataclass
class _NetworkBuilder:
    """Walks an expanded spec's layer tree into blocks, collecting problems."""

    expanded: ExpandedSpec
    result: RecommendationResult
    problems: list[FieldProblem] = field(default_factory=list)
    spatial: dict[int, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.draws = {row.name: _draw(row) for row in self.result.parameters}
        self.residual_names = _residual_names(self.expanded.structure)

    def build(self) -> Network:
        nodes = self.expanded.structure
        leading = 0
        while (
            leading < len(nodes)
            and isinstance(nodes[leading], LayerNode)
            and nodes[leading].kind == "embedding"
        ):
            leading += 1

        blocks: list[Block] = []
        if leading:
            embedding = self.embedding(nodes[:leading])
            blocks.append(embedding)
            width = embedding.width
        else:
            width = self.first_width(nodes)
        input_width = width

        rest, _ = self.sequence(nodes[leading:], width, "the network input")
        blocks.extend(rest)
        spatial_dims = next(iter(self.spatial), 0)
        return Network(input_width, tuple(blocks), spatial_dims)

    def first_width(self, nodes: tuple[StructureNode, ...]) -> int:
        """The width the first layer reads: the network's input width."""
        node = nodes[0]
        while isinstance(node, ResidualNode):
            node = node.norm_layer if node.norm == "pre" else node.branch[0]

        return self.parameter(node, 0).in_features

    def parameter(self, node: LayerNode, index: int) -> ParameterTensor:
        return self.expanded.parameters[node.parameters[index]]

    def problem(self, path: Path, message: str, value: object = None) -> None:
        self.problems.append(FieldProblem(tuple(path), message, value))

    # --- sequences and residual groups ---

    def sequence(
        self, nodes: tuple[StructureNode, ...], width: int, before: str
    ) -> tuple[tuple[Block, ...], int]:
        """The blocks of ``nodes`` reading ``width`` features from ``before``.

        Returns the blocks and the width the last one gives.
        """
        blocks: list[Block] = []
        for node in nodes:
            if isinstance(node, ResidualNode):
                block, width = self.residual(node, width, before)
                before = f"the residual group {block.name}"
            else:
                block = self.layer(node, width, before)
                if block is None:
                    continue
                width = _out_width(block)
                before = node.name
            blocks.append(block)

        return tuple(blocks), width

    def residual(
        self, node: ResidualNode, width: int, before: str
    ) -> tuple[Residual, int]:
        name = self.residual_names[id(node)]
        norm = None
        if node.norm_layer is not None:
            norm_width = width
            if node.norm == "post":
                norm_width = None
            norm = self.norm(node.norm_layer, norm_width, before)

        branch, branch_width = self.sequence(node.branch, width, before)
        stream_width = width
        if node.shortcut:
            shortcut, stream_width = self.sequence(node.shortcut, width, before)
        else:
            shortcut = ()
        if branch_width != stream_width:
            what = "its shortcut gives" if node.shortcut else "its input has"
            fix = (
                "make the branch and the shortcut end with the same width"
                if node.shortcut
                else "end the branch at that width or add a projection shortcut"
            )
            self.problem(
                node.path,
                f"residual group {name}: the branch ends with {branch_width}"
                f" features but {what} {stream_width}; a residual sum adds equal"
                f" widths, so {fix}",
                branch_width,
            )
        if norm is not None and node.norm == "post" and norm.width != branch_width:
            self.problem(
                node.norm_layer.path,
                f"{norm.name} normalizes {norm.width} features but the residual"
                f" sum of {name} has {branch_width}",
                norm.width,
            )

        residual = Residual(name, node.norm, norm, branch, tuple(shortcut))
        return residual, branch_width

    # --- one method per kind of layer ---

    def layer(self, node: LayerNode, width: int, before: str) -> Block | None:
        if node.kind in _DENSE_KINDS:
            block = self.dense(node, node.name, 0)
        elif node.kind in _NORM_KINDS:
            return self.norm(node, width, before)
        elif node.kind == "attention":
            block = self.attention(node)
        elif node.kind == "gated_mlp":
            block = self.gated_mlp(node)
        else:
            self.problem(
                node.path,
                f"{node.name} is an embedding after the first layers; an embedding"
                " reads token ids, so the statistics model embeddings only at the"
                " start of the network, where their tables are summed; move it"
                " there or leave it out",
                node.kind,
            )
            return None

        in_width = _in_width(block)
        if in_width != width:
            self.problem(
                node.path,
                f"{node.name} reads {in_width} features but {before} gives"
                f" {width}; the statistics follow one signal through the layers,"
                f" so make its in {width} (or change the layer before it)",
                in_width,
            )
        return block

    def dense(self, node: LayerNode, name: str, index: int) -> Dense:
        """The linear or conv module whose weight is ``node.parameters[index]``."""
        weight = self.parameter(node, index)
        bias = None
        following = node.parameters[index + 1 : index + 2]
        if following:
            candidate = self.expanded.parameters[following[0]]
            if candidate.tensor == "bias" and candidate.layer == weight.layer:
                bias = candidate

        weight_draw = self.zero_mean(node, weight)
        bias_draw = None if bias is None else self.zero_mean(node, bias)
        kernel_size = tuple(weight.kernel_size)
        if kernel_size:
            self.spatial.setdefault(len(kernel_size), node.name)
            if len(self.spatial) > 1:
                dims = ", ".join(
                    f"{layer} ({count}-d)" for count, layer in self.spatial.items()
                )
                self.problem(
                    node.path,
                    f"{node.name} mixes convolutions of different dimensionality"
                    f" with the layers before it: {dims}; the simulation runs on"
                    " one spatial grid, so use one conv dimensionality",
                    node.kind,
                )
        return Dense(
            name=name,
            in_width=weight.in_features,
            out_width=weight.out_features,
            fan_in=signal_fans(weight)[0],
            weight=weight_draw,
            bias=bias_draw,
            activation=weight.activation,
            kernel_size=kernel_size,
            groups=weight.groups,
            transposed=weight.kind.startswith("conv_transpose"),
        )

    def zero_mean(self, node: LayerNode, tensor: ParameterTensor) -> Draw:
        draw = self.draws[tensor.name]
        if draw.mean != 0.0:
            # Not yet: nonzero-mean weights and biases (h is then not centred).
            self.problem(
                node.path,
                f"{tensor.name} is drawn with mean {draw.mean!r}; the statistics"
                " model zero-mean weights and biases (the mean-field maps integrate"
                " over a centred Gaussian pre-activation), so give it a zero-mean"
                " init (a constant init must be 0)",
                draw.mean,
            )
        return draw

    def norm(self, node: LayerNode, width: int | None, before: str) -> Norm:
        tensors = [self.parameter(node, i) for i in range(len(node.parameters))]
        weight = next((t for t in tensors if t.tensor == "weight"), None)
        bias = next((t for t in tensors if t.tensor == "bias"), None)
        size = tensors[0].in_features
        if tensors[0].activation.name != "identity":
            self.problem(
                node.path,
                f"{node.name} is a norm layer with the activation"
                f" {tensors[0].activation.name!r}; the statistics apply an"
                " activation right after the linear or conv layer that lists it,"
                " so put the activation on that layer instead",
                tensors[0].activation.name,
            )
        if width is not None and size != width:
            self.problem(
                node.path,
                f"{node.name} normalizes {size} features but {before} gives"
                f" {width}; make its in {width}",
                size,
            )
        return Norm(
            name=node.name,
            kind=node.kind,
            width=size,
            weight=None if weight is None else self.draws[weight.name],
            bias=None if bias is None else self.draws[bias.name],
        )

    def embedding(self, nodes: tuple[StructureNode, ...]) -> Embedding:
        tables = [self.parameter(node, 0) for node in nodes]
        width = tables[0].out_features
        for node, table in zip(nodes, tables, strict=True):
            if table.out_features != width:
                self.problem(
                    node.path,
                    f"{node.name} has width {table.out_features} but {nodes[0].name}"
                    f" has {width}; embeddings at the start of the network are"
                    " summed, so they need one width",
                    table.out_features,
                )
        return Embedding(
            names=tuple(node.name for node in nodes),
            width=width,
            tables=tuple(self.draws[table.name] for table in tables),
        )

    def attention(self, node: LayerNode) -> Attention:
        n_heads, n_kv_heads, d_head = node.heads
        projections = {}
        for index, position in enumerate(node.parameters):
            tensor = self.expanded.parameters[position]
            if tensor.tensor == "weight":
                projections[tensor.origin.split(".")[1]] = index

        if "qkv" in projections:
            fused = self.dense(node, f"{node.name}.qkv", projections["qkv"])
            # One fused weight drawn alike: split it into q, k and v.
            widths = {"q": n_heads * d_head, "k": n_kv_heads * d_head}
            widths["v"] = widths["k"]
            q, k, v = (
                dataclasses.replace(
                    fused, name=f"{node.name}.{part}", out_width=widths[part]
                )
                for part in ("q", "k", "v")
            )
        else:
            q, k, v = (
                self.dense(node, f"{node.name}.{part}", projections[part])
                for part in ("q", "k", "v")
            )
        o = self.dense(node, f"{node.name}.o", projections["o"])
        return Attention(node.name, q, k, v, o, n_heads, n_kv_heads, d_head)

    def gated_mlp(self, node: LayerNode) -> GatedMlp:
        projections = {}
        for index, position in enumerate(node.parameters):
            tensor = self.expanded.parameters[position]
            if tensor.tensor == "weight":
                projections[tensor.origin.split(".")[1]] = index

        gate, up, down = (
            self.dense(node, f"{node.name}.{part}", projections[part])
            for part in ("gate", "up", "down")
        )
        return GatedMlp(node.name, gate, up, down)


def _in_width(block: Block) -> int:
    """The features a block reads."""
    if isinstance(block, Dense):
        return block.in_width
    if isinstance(block, Norm | Embedding):
        return block.width
    if isinstance(block, GatedMlp):
        return block.gate.in_width
    if isinstance(block, Attention):
        return block.q.in_width

    return _in_width(block.branch[0])


def _out_width(block: Block) -> int:
    """The features a block gives."""
    if isinstance(block, Dense):
        return block.out_width
    if isinstance(block, Norm | Embedding):
        return block.width
    if isinstance(block, GatedMlp):
        return block.down.out_width
    if isinstance(block, Attention):
        return block.o.out_width

    return _out_width(block.branch[-1])


# --- Summaries --------------------------------------------------------------------

Verdict = Literal["vanishing", "stable", "exploding"]
Direction = Literal["forward", "backward"]
PhaseName = Literal["ordered", "chaotic", "critical"]

EXPLODING_RATIO = 10.0
"""A signal 10× its first layer's second moment has exploded."""
VANISHING_RATIO = 0.1
"""A signal at a tenth of its first layer's second moment has vanished."""


@dataclass(frozen=True)
class Trend:
    """How one series of second moments moves through the layers.

    ``ratio`` is the last layer's value over the first's (for the backward
    pass "first" is the output end, where the gradient starts);
    ``growth_factor`` its geometric mean per layer, ``ratio^(1/(L−1))``;
    ``crossing_layer`` the first layer, in the direction the signal travels,
    whose value is more than 10× or less than 0.1× the first's
    (``crossing_index`` its 1-based position among the layers of the series).
    """

    verdict: Verdict
    ratio: float | None
    growth_factor: float | None
    crossing_layer: str | None
    crossing_index: int | None
    reason: str


def trend(names: Sequence[str], values: Sequence[float], direction: Direction) -> Trend:
    """The verdict on a series of second moments, one per layer in forward order.

    The cumulative ratio at layer l is value_l / value_first, ``first`` being
    the first layer the signal meets: the first layer forward, the last one
    backward. The verdict is ``exploding`` when the last ratio is above
    :data:`EXPLODING_RATIO`, ``vanishing`` below :data:`VANISHING_RATIO`,
    ``stable`` otherwise.
    """
    what = "second moment" if direction == "forward" else "gradient second moment"
    if direction == "backward":
        names, values = list(reversed(names)), list(reversed(values))
    if not values:
        return Trend("stable", None, None, None, None, "the network has no layers")

    # NaN follows only an overflow (inf·0 in a float32 simulation): past
    # what floating point holds, like inf.
    values = [math.inf if math.isnan(value) else value for value in values]
    first = values[0]
    if math.isinf(first):
        return Trend(
            "exploding",
            None,
            None,
            names[0],
            1,
            f"the {what} outgrows floating point already at {names[0]}, where the"
            f" {direction} pass starts",
        )
    if not first > 0.0:
        return Trend(
            "vanishing",
            None,
            None,
            names[0],
            1,
            f"the {what} is already 0 at {names[0]}, where the {direction} pass starts",
        )

    ratios = [value / first for value in values]
    crossing = next(
        (
            index
            for index, ratio in enumerate(ratios)
            if not VANISHING_RATIO <= ratio <= EXPLODING_RATIO
        ),
        None,
    )
    ratio = ratios[-1]
    growth = ratio ** (1.0 / (len(values) - 1)) if len(values) > 1 else None
    if ratio > EXPLODING_RATIO:
        verdict: Verdict = "exploding"
    elif ratio < VANISHING_RATIO:
        verdict = "vanishing"
    else:
        verdict = "stable"

    span = f"from {names[0]} to {names[-1]}"
    if math.isinf(ratio):
        # An overflowed value (inf in a simulation) has no finite ratio.
        reason = (
            f"the {what} outgrows floating point {span} (its ratio to"
            f" {names[0]} overflows)"
        )
    else:
        reason = f"the {what} changes by {ratio:.3g}× {span}"
        if growth is not None:
            reason += f" ({growth:.4g}× per layer over {len(values)} layers)"
    if crossing is not None:
        bound = "10×" if ratios[crossing] > EXPLODING_RATIO else "0.1×"
        reason += f"; it passes {bound} at {names[crossing]}"
    return Trend(
        verdict,
        ratio,
        growth,
        None if crossing is None else names[crossing],
        None if crossing is None else crossing + 1,
        reason,
    )


@dataclass(frozen=True)
class PhaseSummary:
    """The mean-field phase of a homogeneous stack, or why there is none.

    For a stack of dense layers whose hidden layers share one activation, σ_w²
    and σ_b², the values are :func:`initlab.core.meanfield.fixed_point`'s at
    those: the fixed point q* (0 when the length map collapses to 0, ``None``
    when it diverges), χ₁ there, and the depth scales ξ_q, ξ_c, ξ_∇ (``None``
    when infinite). ``homogeneous`` is false, with the reason, otherwise.
    """

    homogeneous: bool
    reason: str
    phase: PhaseName | None = None
    activation: Activation | None = None
    sigma_w2: float | None = None
    sigma_b2: float | None = None
    q_star: float | None = None
    c_star: float | None = None
    chi_1: float | None = None
    xi_q: float | None = None
    xi_c: float | None = None
    xi_grad: float | None = None


EDGE_TOLERANCE = 1e-6
"""A stack whose χ₁ is within this of 1 is summarised as critical.

σ_w² is given to about 7 significant digits (the reference edge of chaos of
tanh at σ_b² = 0.05 is σ_w² = 1.760955; the reason quotes 7), which leaves it
uncertain by up to 5e-7 relative, and χ₁ = σ_w²·E[φ'(h)²] moves with σ_w² in
about that proportion: a χ₁ nearer 1 than 1e-6 (twice that) cannot be told
from the edge by the σ_w² that produced it, and its depth scales, 1/|ln χ₁|
beyond 10⁶ layers, are those of the edge. meanfield's own critical band,
:data:`initlab.core.meanfield.PHASE_TOLERANCE`, is that of its quadrature.
"""

HOMOGENEITY_TOLERANCE = 1e-9
"""σ_w² and σ_b² of two layers that agree to this relative error are equal."""


def homogeneous_stack(network: Network) -> tuple[Activation, float, float] | str:
    """(φ, σ_w², σ_b²) shared by the hidden layers of ``network``, or why not.

    The network must be a stack of dense layers (linear or conv, no residual
    groups, norms, attention, gated MLPs or embeddings). Its hidden layers are
    all but the first (which reads the raw input) and the last (the readout)
    when there are three or more, else all but the first; each computes
    h^l = W^l φ(h^{l−1}) + b^l, so they must share σ_w², σ_b² and the φ
    applied to their input (the activation of the layer before).
    """
    blocks = network.blocks
    if not all(isinstance(block, Dense) for block in blocks):
        kinds = sorted({type(block).__name__ for block in blocks} - {"Dense"})
        return (
            f"not a plain stack of dense layers (it has {', '.join(kinds)}), so it"
            " has no single mean-field map"
        )
    if len(blocks) < 2:
        return "a single layer has no layer-to-layer map"

    hidden = range(1, len(blocks) - 1) if len(blocks) >= 3 else range(1, 2)
    maps = [(blocks[i - 1].activation, *dense_sigma2(blocks[i])) for i in hidden]
    activation, sigma_w2, sigma_b2 = maps[0]
    for index, (other, other_w2, other_b2) in zip(hidden, maps, strict=True):
        name = blocks[index].name
        if other != activation:
            return (
                f"{name} reads {other.name} but {blocks[hidden[0]].name} reads"
                f" {activation.name}: the hidden layers mix activations"
            )
        if not _close(other_w2, sigma_w2) or not _close(other_b2, sigma_b2):
            return (
                f"{name} has σ_w² = {other_w2:.6g}, σ_b² = {other_b2:.6g} but"
                f" {blocks[hidden[0]].name} has σ_w² = {sigma_w2:.6g}, σ_b² ="
                f" {sigma_b2:.6g}: the hidden layers are drawn differently"
            )

    return activation, sigma_w2, sigma_b2


def phase_summary(network: Network, input_second_moment: float = 1.0) -> PhaseSummary:
    """The phase of ``network`` when it is a homogeneous stack (see above).

    The length map starts at the first layer's pre-activation second moment,
    σ_w²·q⁰ + σ_b² of that layer, which picks the fixed point reached when
    there are several.
    """
    stack = homogeneous_stack(network)
    if isinstance(stack, str):
        return PhaseSummary(False, stack)

    activation, sigma_w2, sigma_b2 = stack
    first_w2, first_b2 = dense_sigma2(network.blocks[0])
    q_input = affine_second_moment(first_w2, input_second_moment, first_b2)
    if not q_input > 0.0:
        return PhaseSummary(
            False, f"{network.blocks[0].name} starts the stack at q = 0 (zero init)"
        )
    point = meanfield.fixed_point(activation, sigma_w2, sigma_b2, q_input=q_input)
    shared = (
        f"hidden layers share φ = {activation.name}, σ_w² = {sigma_w2:.7g},"
        f" σ_b² = {sigma_b2:.7g}"
    )
    phase, xi_c, xi_grad = point.phase, point.xi_c, point.xi_grad
    if point.phase != "critical" and abs(point.chi_1 - 1.0) <= EDGE_TOLERANCE:
        phase, xi_c, xi_grad = "critical", None, None
        tolerance = f"{EDGE_TOLERANCE:g}".replace("e-0", "e-")
        reason = (
            f"{shared}; χ₁ = {point.chi_1:.9g} at q* is within {tolerance} of 1,"
            " closer than a σ_w² written to 7 significant digits can place it:"
            " the stack is at the edge of chaos (critical phase), and ξ_c and ξ_∇"
            " are taken as infinite"
        )
    else:
        reason = (
            f"{shared}; χ₁ = {point.chi_1:.9g} at q* puts the stack in the"
            f" {point.phase} phase"
        )
    return PhaseSummary(
        True,
        reason,
        phase,
        activation,
        sigma_w2,
        sigma_b2,
        point.q_star,
        point.c_star,
        point.chi_1,
        point.xi_q,
        xi_c,
        xi_grad,
    )


def _close(first: float, second: float) -> bool:
    return abs(first - second) <= HOMOGENEITY_TOLERANCE * max(abs(first), abs(second))


# --- compute_statistics -----------------------------------------------------------

Method = Literal["analytic", "monte_carlo", "both"]
METHODS: tuple[str, ...] = ("analytic", "monte_carlo", "both")

MONTE_CARLO_STATISTICS: tuple[str, ...] = (
    *montecarlo.FORWARD_STATISTICS,
    *montecarlo.BACKWARD_STATISTICS,
    "gradient_ratio",
)
"""What a Monte Carlo row reports: montecarlo's statistics, and the ratio of
the gradient second moment at a top-level dense layer's input to that at its
output (:func:`compute_statistics`)."""


@dataclass(frozen=True)
class Estimate:
    """A Monte Carlo statistic over the networks drawn: mean, SD and the mean's
    standard error SD/√seeds; ``None`` fields where it does not apply."""

    mean: float
    sd: float
    standard_error: float


@dataclass(frozen=True)
class StatisticsRow:
    """One point of the network with its infinite-width prediction and its
    finite-width measurement.

    ``name``, ``kind`` and ``width`` are the engines' (see
    :class:`initlab.core.montecarlo.LayerRow`); ``top_level`` marks the rows
    of the network's own blocks (not inside a residual group, an attention
    block or a gated MLP), the series the verdicts are taken on.
    ``expected_gradient_ratio`` is χ₁·n_out/n_in for a dense row, against
    which the measured ``gradient_ratio`` is read. ``monte_carlo`` maps each
    of :data:`MONTE_CARLO_STATISTICS` that applies to the row to its estimate.
    """

    name: str
    kind: str
    width: int
    activation: str
    top_level: bool
    analytic: AnalyticLayer | None
    monte_carlo: dict[str, Estimate] | None
    expected_gradient_ratio: float | None = None
    sampling: str | None = None


@dataclass(frozen=True)
class Summary:
    """The verdicts and the phase; ``source`` says which values they read.

    ``backward`` is ``None`` when only the forward pass was simulated.
    """

    forward: Trend
    backward: Trend | None
    phase: PhaseSummary
    source: Literal["analytic", "monte_carlo"]


@dataclass(frozen=True)
class StatisticsResult:
    """Everything :func:`compute_statistics` found, and how.

    ``cost`` is the Monte Carlo estimate checked against the budget (``None``
    for the analytic method, which draws nothing); ``attention_model`` and
    ``monte_carlo_model`` state the models behind the numbers when they apply.
    """

    method: Method
    rows: tuple[StatisticsRow, ...]
    summary: Summary
    seed: int
    seeds: int
    batch_size: int
    input_second_moment: float
    input_correlation: float | None
    sequence_length: int
    spatial_size: int
    numpy_version: str
    cost: montecarlo.Cost | None
    attention_model: str | None = None
    monte_carlo_model: str | None = None
    notes: tuple[str, ...] = ()

    def row(self, name: str) -> StatisticsRow:
        for row in self.rows:
            if row.name == name:
                return row
        raise KeyError(name)


# What a refusal can suggest: (where, the change, the cost with it).
_Fix = tuple[Path, str]
# Cost of a simulation with (seeds, batch_size, backward) changed.
CostEstimate = Callable[[int, int, bool], montecarlo.Cost]


def check_budget(
    cost: montecarlo.Cost,
    *,
    seeds: int,
    batch_size: int,
    compute_budget: float,
    memory_budget: float | None = None,
    estimate: CostEstimate | None = None,
    backward: bool | None = None,
    network_path: Path = ("layers",),
) -> None:
    """Refuse a simulation whose estimated cost is over a budget, before any work.

    ``compute_budget`` bounds :attr:`Cost.work` (flops plus random numbers at
    their flop price), ``memory_budget`` the peak bytes. The refusal, a
    :class:`LimitExceeded` naming ``compute_budget`` (or ``memory_budget``
    when only memory is over), states each estimate over its limit, and every
    single change that brings the request within both budgets, worked out
    with ``estimate`` (the cost at other seeds, batch size and ``backward``):
    at most so many seeds (work grows linearly with seeds, memory does not),
    ``"backward": false`` (forward statistics only, sampled from the exact
    kernel without drawing weights) when ``backward`` is True (None: the
    request simulates backward with no choice), the largest
    batch that fits; always the analytic method. The problem points at the
    first change listed, or at ``network_path`` when one network at a batch
    of 1 is over by itself. Without ``estimate`` only the seeds are worked out.
    """
    over_compute = cost.work > compute_budget
    over_memory = memory_budget is not None and cost.peak_bytes > memory_budget
    if not over_compute and not over_memory:
        return

    def fits(candidate: montecarlo.Cost) -> bool:
        return candidate.work <= compute_budget and (
            memory_budget is None or candidate.peak_bytes <= memory_budget
        )

    fixes: list[_Fix] = []
    if not over_memory:
        fitting = int(compute_budget // (cost.work / seeds))
        if fitting >= 1:
            fixes.append(
                (("seeds",), f"at most {fitting} seeds (you asked for {seeds})")
            )
    if estimate is not None:
        fixes.extend(_budget_fixes(estimate, fits, seeds, batch_size, backward))

    stated = []
    if over_compute:
        stated.append(
            f"the Monte Carlo estimate is {cost.work:.3g} flop-equivalents"
            f" ({cost.flops:.3g} flops and {cost.random_numbers:.3g} random"
            f" numbers at {montecarlo.RANDOM_NUMBER_FLOPS} flops each) for"
            f" {seeds} seed{'s' if seeds != 1 else ''} of a batch of {batch_size},"
            " over the limit"
            f" compute_budget = {compute_budget:.3g}"
        )
        drawn = montecarlo.RANDOM_NUMBER_FLOPS * cost.random_numbers
        if backward is not False and drawn > cost.flops:
            stated.append(
                f"drawing the weights for the backward pass dominates: the random"
                f" numbers are {drawn / cost.work:.0%} of it"
            )
    if over_memory:
        stated.append(
            f"the Monte Carlo estimate needs {cost.peak_bytes:.3g} bytes of working"
            f" memory for a batch of {batch_size}, over the limit memory_budget ="
            f" {memory_budget:.3g}"
        )
    analytic = "method 'analytic' (always within budget)"
    if fixes:
        path = fixes[0][0]
        changes = [change for _, change in fixes]
        advice = (
            "any one of these brings it within budget: "
            + "; ".join(changes)
            + f"; or {analytic}"
        )
    elif estimate is not None:
        path = network_path
        alone = estimate(1, 1, backward is None)
        advice = (
            f"one network alone at a batch of 1 needs {alone.work:.3g}"
            f" flop-equivalents and {alone.peak_bytes:.3g} bytes: ask for fewer or"
            f" narrower layers, or {analytic}"
        )
    else:
        path = ("batch_size",)
        advice = f"ask for a smaller batch, or {analytic}"
    raise LimitExceeded(
        [
            FieldProblem(
                path,
                "; ".join([*stated, advice]),
                value=cost.work if over_compute else cost.peak_bytes,
            )
        ],
        limit="compute_budget" if over_compute else "memory_budget",
        limit_value=compute_budget if over_compute else memory_budget,
    )


def _budget_fixes(
    estimate: CostEstimate,
    fits: Callable[[montecarlo.Cost], bool],
    seeds: int,
    batch_size: int,
    backward: bool | None,
) -> list[_Fix]:
    """The forward-only and smaller-batch changes that bring a request in budget.

    ``backward`` as :func:`check_budget` takes it: None simulates backward
    with no choice. Forward-only with a smaller batch (and 1 seed) is offered
    only when no single change is enough.
    """
    both_ways = backward is not False
    forward = '"backward": false'
    fixes: list[_Fix] = []
    if backward and fits(estimate(seeds, batch_size, False)):
        fixes.append(
            (
                ("backward",),
                f"{forward} (forward statistics only, sampled from the exact"
                " kernel without drawing weights:"
                f" {estimate(seeds, batch_size, False).work:.3g} flop-equivalents)",
            )
        )
    directions = [(both_ways, ("batch_size",), "")]
    if backward:
        directions.append((False, ("backward",), f"{forward} with "))
    for simulate_backward, path, prefix in directions:
        if fixes:
            break
        for count in dict.fromkeys((seeds, 1)):
            batch = _largest_fitting_batch(
                lambda size, count=count, way=simulate_backward: estimate(
                    count, size, way
                ),
                fits,
                batch_size,
            )
            if batch is None:
                continue
            if count == seeds:
                change = f"a batch of at most {batch} (you asked for {batch_size})"
            else:
                change = f"1 seed and a batch of at most {batch}"
            fixes.append((path, prefix + change))
            break
    return fixes


def _largest_fitting_batch(
    cost_at: Callable[[int], montecarlo.Cost],
    fits: Callable[[montecarlo.Cost], bool],
    batch_size: int,
) -> int | None:
    """The largest batch up to ``batch_size`` within budget (cost grows with it)."""
    if not fits(cost_at(1)):
        return None
    low, high = 1, batch_size
    while low < high:
        middle = (low + high + 1) // 2
        if fits(cost_at(middle)):
            low = middle
        else:
            high = middle - 1
    return low


def compute_statistics(
    expanded: ExpandedSpec,
    recommendation_result: RecommendationResult,
    *,
    method: Method = "both",
    batch_size: int = 64,
    seeds: int = 8,
    seed: int = 0,
    input_second_moment: float = 1.0,
    input_correlation: float | None = None,
    budget: float,
    memory_budget: float | None = None,
    backward: bool = True,
    spatial_size: int = 8,
    sequence_length: int = 8,
    work_slot: Callable[[], AbstractContextManager[object]] = nullcontext,
) -> StatisticsResult:
    """Per-layer statistics of ``expanded`` drawn as ``recommendation_result`` says.

    Builds the network (:func:`build_network`), checks the Monte Carlo cost
    against ``budget`` (and ``memory_budget``) before any work when the method
    simulates (:func:`check_budget`), runs the analytic propagation and/or the
    simulation (holding ``work_slot()``, a caller's turn to compute, once every
    check has passed), and merges them row by row with the verdicts and the
    phase.
    The verdicts read the analytic values when there are any, else the Monte
    Carlo means, over the top-level rows that carry the signal (dense layers,
    attention blocks' and gated MLPs' outputs, residual groups; not norms,
    which pin it, nor the embedding, which starts it): forward their second
    moments, backward their gradient second moments.

    Raises :class:`InvalidInput` for what cannot be modelled or an argument out
    of range and :class:`LimitExceeded` over budget.
    """
    if method not in METHODS:
        raise InvalidInput.at(
            ("method",),
            f"method must be one of {', '.join(METHODS)}; got {method!r}",
            method,
            ", ".join(METHODS),
        )

    network = build_network(expanded, recommendation_result)
    simulated = method != "analytic"
    cost = None
    if simulated:
        cost = montecarlo.estimate_cost(
            network,
            batch_size=batch_size,
            seeds=seeds,
            backward=backward,
            spatial_size=spatial_size,
            sequence_length=sequence_length,
        )
        check_budget(
            cost,
            seeds=seeds,
            batch_size=batch_size,
            compute_budget=budget,
            memory_budget=memory_budget,
            estimate=lambda count, size, both_ways: montecarlo.estimate_cost(
                network,
                batch_size=size,
                seeds=count,
                backward=both_ways,
                spatial_size=spatial_size,
                sequence_length=sequence_length,
            ),
            backward=backward,
        )

    tokens = math.prod(
        montecarlo.batch_positions(
            network, spatial_size=spatial_size, sequence_length=sequence_length
        )
    )
    with work_slot():
        analytic = None
        if method != "monte_carlo":
            analytic = propagate(
                network,
                input_second_moment=input_second_moment,
                input_correlation=input_correlation,
                sequence_length=tokens,
            )
        simulation = None
        if simulated:
            simulation = montecarlo.simulate(
                network,
                batch_size=batch_size,
                seeds=seeds,
                seed=seed,
                input_second_moment=input_second_moment,
                input_correlation=input_correlation,
                backward=backward,
                spatial_size=spatial_size,
                sequence_length=sequence_length,
            )

    rows = _merge(network, analytic, simulation)
    summary = _summary(network, rows, backward, input_second_moment)
    notes = _notes(expanded, network, analytic, simulation)
    has_attention = any(row.kind == "attention" for row in rows)
    return StatisticsResult(
        method=method,
        rows=rows,
        summary=summary,
        seed=seed,
        seeds=seeds,
        batch_size=batch_size,
        input_second_moment=float(input_second_moment),
        input_correlation=input_correlation,
        sequence_length=sequence_length,
        spatial_size=spatial_size,
        numpy_version=np.__version__,
        cost=cost,
        attention_model=ATTENTION_MODEL if has_attention else None,
        monte_carlo_model=None if simulation is None else simulation.model,
        notes=notes,
    )


ACTIVATION_ORDER_NOTE = (
    "A layer's activation is applied right after the layer: where the spec puts"
    " a norm between a layer and the activation it lists (conv → BatchNorm →"
    " ReLU), the statistics are those of layer → activation → norm."
)
TIED_NOTE = (
    "Tied weights are drawn as independent tensors: the correlation between a"
    " tied readout and the embedding it shares is not modelled."
)
LINEAR_AFTER_CONV_NOTE = (
    "The spec has no pooling: a linear layer after convolutions acts at every"
    " location, as a 1×1 convolution."
)


def _rows_per_block(block: Block) -> int:
    """How many rows the engines give a block (see montecarlo.LayerRow)."""
    if isinstance(block, GatedMlp):
        return 3
    if isinstance(block, Attention):
        return 5
    if isinstance(block, Residual):
        norm = 1 if block.norm is not None else 0
        inner = sum(_rows_per_block(child) for child in block.branch + block.shortcut)
        return norm + inner + 1

    return 1


def _top_level_rows(network: Network) -> dict[int, Block]:
    """The row of each top-level block's output, keyed by its index."""
    rows: dict[int, Block] = {}
    index = 0
    for block in network.blocks:
        index += _rows_per_block(block)
        rows[index - 1] = block
    return rows


def _merge(
    network: Network,
    analytic: AnalyticResult | None,
    simulation: montecarlo.MonteCarloResult | None,
) -> tuple[StatisticsRow, ...]:
    """One row per point of the network, with both engines' values side by side."""
    if simulation is not None:
        layers = [(row.name, row.kind, row.width) for row in simulation.layers]
    else:
        layers = [(row.name, row.kind, row.width) for row in analytic.layers]
    if analytic is not None and simulation is not None:
        analytic_names = [row.name for row in analytic.layers]
        if analytic_names != [name for name, _, _ in layers]:
            raise RuntimeError(
                "the analytic and Monte Carlo engines disagree on the rows of the"
                f" network: {analytic_names} against {[n for n, _, _ in layers]}"
            )

    top_level = _top_level_rows(network)
    ratios = {} if simulation is None else _measured_ratios(simulation, top_level)
    activations = _activations(network)
    rows = []
    for index, (name, kind, width) in enumerate(layers):
        predicted = None if analytic is None else analytic.layers[index]
        measured = None
        if simulation is not None:
            measured = _estimates(simulation, index)
            if index in ratios:
                measured["gradient_ratio"] = ratios[index]
        expected = None
        if predicted is not None and kind == "dense":
            expected = predicted.gradient_ratio
        sampling = None if simulation is None else simulation.layers[index].sampling
        rows.append(
            StatisticsRow(
                name=name,
                kind=kind,
                width=width,
                activation=activations.get(name, "identity"),
                top_level=index in top_level,
                analytic=predicted,
                monte_carlo=measured,
                expected_gradient_ratio=expected,
                sampling=sampling,
            )
        )
    return tuple(rows)


def _activations(network: Network) -> dict[str, str]:
    """The activation of every dense layer, projections included, by name."""
    names: dict[str, str] = {}

    def visit(blocks: tuple[Block, ...]) -> None:
        for block in blocks:
            if isinstance(block, Dense):
                names[block.name] = block.activation.name
            elif isinstance(block, GatedMlp):
                visit((block.gate, block.up, block.down))
            elif isinstance(block, Attention):
                visit((block.q, block.k, block.v, block.o))
            elif isinstance(block, Residual):
                visit(block.branch + block.shortcut)

    visit(network.blocks)
    return names


def _estimates(simulation: montecarlo.MonteCarloResult, index: int) -> dict:
    estimates = {}
    for statistic, values in simulation.values.items():
        column = values[:, index]
        if np.isnan(column).any():
            continue
        estimates[statistic] = _estimate(column)
    return estimates


# A statistic some simulated network made NaN has no estimate (_estimates
# leaves it out). In a float32 simulation NaN only follows an overflow (inf·0
# where a saturated activation's slope is 0, or inf − inf), so it is read as
# one: infinite for verdicts, null with the overflow note in answers.
_OVERFLOWED = Estimate(math.inf, math.nan, math.nan)


def _measured(row: StatisticsRow, statistic: str) -> Estimate:
    """``row``'s Monte Carlo estimate of ``statistic``, :data:`_OVERFLOWED` if none."""
    return row.monte_carlo.get(statistic, _OVERFLOWED)


def _estimate(values: np.ndarray) -> Estimate:
    mean = float(values.mean())
    # Overflowed networks' values are infinite: their spread is NaN (inf - inf),
    # which is what the answer should hold, without numpy's warning.
    with np.errstate(invalid="ignore"):
        sd = float(values.std(ddof=1)) if values.size > 1 else 0.0
    return Estimate(mean, sd, sd / math.sqrt(values.size))


def _measured_ratios(
    simulation: montecarlo.MonteCarloResult, top_level: dict[int, Block]
) -> dict[int, Estimate]:
    """Per network, a top-level dense layer's input gradient over its output's.

    The gradient at a top-level dense layer's output is the input gradient of
    the next top-level block when that block records one (a dense layer, a norm
    or a residual group), and the output gradient's second moment, 1, after the
    last block.
    """
    gradients = simulation.values.get("input_gradient_second_moment")
    if gradients is None:
        return {}

    ratios: dict[int, Estimate] = {}
    indices = sorted(top_level)
    for position, index in enumerate(indices):
        if not isinstance(top_level[index], Dense):
            continue
        if position + 1 == len(indices):
            output = np.ones(simulation.seeds)
        else:
            following = indices[position + 1]
            if not isinstance(top_level[following], Dense | Norm | Residual):
                continue
            output = gradients[:, following]
        with np.errstate(divide="ignore", invalid="ignore"):
            ratio = gradients[:, index] / output
        if np.isfinite(ratio).all():
            ratios[index] = _estimate(ratio)
    return ratios


def _summary(
    network: Network,
    rows: tuple[StatisticsRow, ...],
    backward: bool,
    input_second_moment: float,
) -> Summary:
    series = [row for row in rows if row.top_level and row.kind in _SIGNAL_KINDS]
    names = [row.name for row in series]
    source: Literal["analytic", "monte_carlo"] = "analytic"
    if series and series[0].analytic is None:
        source = "monte_carlo"

    def values(analytic_field: str, statistic: str) -> list[float]:
        if source == "analytic":
            return [getattr(row.analytic, analytic_field) for row in series]
        return [_measured(row, statistic).mean for row in series]

    forward = trend(names, values("second_moment", "second_moment"), "forward")
    if source == "analytic" or backward:
        gradients = values("gradient_second_moment", "gradient_second_moment")
        backward_trend = trend(names, gradients, "backward")
    else:
        backward_trend = None
    phase = phase_summary(network, input_second_moment)
    return Summary(forward, backward_trend, phase, source)


_SIGNAL_KINDS = frozenset({"dense", "residual"})


def _notes(
    expanded: ExpandedSpec,
    network: Network,
    analytic: AnalyticResult | None,
    simulation: montecarlo.MonteCarloResult | None,
) -> tuple[str, ...]:
    notes: list[str] = []
    if analytic is not None:
        notes.extend(analytic.notes)
    if simulation is not None:
        notes.append(
            f"Monte Carlo values are the mean ± SD over {simulation.seeds}"
            f" independently drawn networks, each run on a batch of"
            f" {simulation.batch_size}."
        )
    if _activation_before_norm(network.blocks):
        notes.append(ACTIVATION_ORDER_NOTE)
    if any(p.tied_to is not None for p in expanded.parameters):
        notes.append(TIED_NOTE)
    if network.spatial_dims and _has_linear(network.blocks):
        notes.append(LINEAR_AFTER_CONV_NOTE)
    return tuple(dict.fromkeys(notes))


def _activation_before_norm(blocks: tuple[Block, ...]) -> bool:
    for before, after in zip(blocks, blocks[1:], strict=False):
        if (
            isinstance(before, Dense)
            and before.activation.name != "identity"
            and isinstance(after, Norm)
        ):
            return True
    return any(
        isinstance(block, Residual)
        and (
            _activation_before_norm(block.branch)
            or _activation_before_norm(block.shortcut)
        )
        for block in blocks
    )


def _has_linear(blocks: tuple[Block, ...]) -> bool:
    for block in blocks:
        if isinstance(block, Dense) and not block.kernel_size:
            return True
        if isinstance(block, Residual) and _has_linear(block.branch + block.shortcut):
            return True
    return False


# --- Chart data -------------------------------------------------------------------

Scale = Literal["linear", "log"]
LOG_SCALE_SPAN = 10.0
"""A series that spans more than this factor is best read on a log axis."""


@dataclass(frozen=True)
class Axis:
    """An axis of a chart: what it shows, in what unit, on what scale."""

    label: str
    unit: str
    scale: Scale = "linear"


@dataclass(frozen=True)
class Band:
    """A Monte Carlo band: mean ± SD over the networks drawn, per x."""

    mean: tuple[float, ...]
    sd: tuple[float, ...]
    lower: tuple[float, ...]
    upper: tuple[float, ...]


@dataclass(frozen=True)
class Series:
    """One curve of the propagation chart: a scheme, a direction, both engines.

    ``analytic`` is the infinite-width line (``None`` for the Monte Carlo
    method), ``monte_carlo`` the band (``None`` for the analytic method).
    """

    scheme: SchemeChoice
    direction: Direction
    label: str
    analytic: tuple[float, ...] | None
    monte_carlo: Band | None


@dataclass(frozen=True)
class SchemeVerdict:
    """What the chart's network does under one scheme."""

    scheme: SchemeChoice
    forward: Trend
    backward: Trend | None
    phase: PhaseSummary


@dataclass(frozen=True)
class PropagationChart:
    """Forward and backward second moments, layer by layer, for several schemes.

    ``x`` is the layer (1 … depth); each scheme has a ``forward`` series (the
    pre-activation second moment q^l) and a ``backward`` one (the gradient
    second moment at the pre-activation). ``forward_axis`` and
    ``backward_axis`` suggest a log scale when the values span more than 10×.
    """

    activation: Activation
    depth: int
    width: int
    sigma_b2: float
    x: tuple[int, ...]
    x_axis: Axis
    forward_axis: Axis
    backward_axis: Axis
    series: tuple[Series, ...]
    verdicts: tuple[SchemeVerdict, ...]
    method: Method
    seed: int
    seeds: int
    batch_size: int
    numpy_version: str
    cost: montecarlo.Cost | None
    notes: tuple[str, ...] = ()


SIGMA_B2_NOTE = (
    "σ_b² applies to the schemes that draw biases from it (mean_field); the"
    " others keep their own bias rule: 0 for every weight scheme, U(±1/√fan_in)"
    " for torch_default."
)


def chart_network_spec(activation: Activation, depth: int, width: int) -> Spec:
    """The homogeneous MLP the propagation chart draws: ``depth`` linear layers of
    ``width`` → ``width``, each followed by ``activation``, named ``layer1`` …."""
    return Spec(
        {},
        tuple(
            LinearSpec(
                name=f"layer{index}",
                in_features=width,
                out_features=width,
                activation=activation,
            )
            for index in range(1, depth + 1)
        ),
    )


def _chart_scheme(scheme: SchemeChoice, sigma_b2: float) -> SchemeChoice:
    """A scheme with σ_b² passed through where the scheme draws biases from it."""
    if scheme.name == "mean_field" and "sigma_b2" not in scheme.options:
        return SchemeChoice(scheme.name, {**scheme.options, "sigma_b2": sigma_b2})
    return scheme


def _chart_cost(
    networks: Sequence[Network], seeds: int, batch_size: int
) -> montecarlo.Cost:
    """The chart's simulations one after another: work adds up, memory does not."""
    costs = [
        montecarlo.estimate_cost(
            network, batch_size=batch_size, seeds=seeds, backward=True
        )
        for network in networks
    ]
    return montecarlo.Cost(
        flops=sum(item.flops for item in costs),
        peak_bytes=max(item.peak_bytes for item in costs),
        random_numbers=sum(item.random_numbers for item in costs),
    )


def propagation_chart(
    activation: Activation,
    schemes: Sequence[SchemeChoice],
    *,
    depth: int,
    width: int,
    sigma_b2: float = 0.0,
    batch_size: int = 64,
    seeds: int = 8,
    seed: int = 0,
    input_second_moment: float = 1.0,
    method: Method = "both",
    budget: float,
    memory_budget: float | None = None,
    spec_limits: SpecLimits | None = None,
    work_slot: Callable[[], AbstractContextManager[object]] = nullcontext,
) -> PropagationChart:
    """Forward and backward second moments of a homogeneous MLP under each scheme.

    The network is :func:`chart_network_spec`; each scheme is resolved and
    applied by :func:`initlab.core.recommend.recommend` (``mean_field`` takes
    ``sigma_b2`` unless its options name one; the other schemes keep their
    own biases, see :data:`SIGMA_B2_NOTE`), then measured as
    :func:`compute_statistics` does. The Monte Carlo cost of all schemes
    together is checked against the budget before any work, and the schemes
    are measured holding ``work_slot()`` (a caller's turn to compute). Scheme
    problems are reported at ``("schemes", i, ...)``.
    """
    expanded = expand(
        chart_network_spec(activation, depth, width), spec_limits or SpecLimits()
    )
    resolved = []
    problems: list[FieldProblem] = []
    for index, scheme in enumerate(schemes):
        try:
            result = recommend(expanded, _chart_scheme(scheme, sigma_b2))
        except InvalidInput as error:
            # recommend() puts the scheme's problems at ("scheme", ...).
            problems.extend(
                FieldProblem(
                    ("schemes", index, *problem.path[1:]),
                    problem.message,
                    problem.value,
                    problem.allowed,
                )
                for problem in error.problems
            )
            continue
        resolved.append((result.scheme, build_network(expanded, result), result))
    if problems:
        raise InvalidInput(problems)

    simulated = method != "analytic"
    cost = None
    if simulated:
        cost = _chart_cost([network for _, network, _ in resolved], seeds, batch_size)
        check_budget(
            cost,
            seeds=seeds,
            batch_size=batch_size,
            compute_budget=budget,
            memory_budget=memory_budget,
            estimate=lambda count, size, _: _chart_cost(
                [network for _, network, _ in resolved], count, size
            ),
            network_path=("width",),
        )

    with work_slot():
        series: list[Series] = []
        verdicts: list[SchemeVerdict] = []
        notes = [SIGMA_B2_NOTE, OUTPUT_GRADIENT_NOTE]
        for index, (scheme, _, result) in enumerate(resolved):
            measure = functools.partial(
                compute_statistics,
                expanded,
                result,
                batch_size=batch_size,
                seeds=seeds,
                seed=seed,
                input_second_moment=input_second_moment,
                budget=math.inf,
            )
            try:
                statistics = measure(method=method)
            except BeyondAnalyticRange as error:
                reason = "; ".join(problem.message for problem in error.problems)
                if method == "analytic":
                    raise InvalidInput.at(
                        ("schemes", index),
                        f"under {scheme.name}, {reason}. Ask for method both or"
                        " monte_carlo to draw it from simulated networks, or leave"
                        f" {scheme.name} out",
                        scheme.name,
                    ) from error
                # The simulation was budgeted with the other schemes above.
                statistics = measure(method="monte_carlo")
                notes.append(
                    f"{scheme.name} has no analytic line: {reason}. Its line and"
                    " verdicts are the Monte Carlo means."
                )
            for direction, field_name in (
                ("forward", "second_moment"),
                ("backward", "gradient_second_moment"),
            ):
                series.append(_series(scheme, direction, field_name, statistics.rows))
            summary = statistics.summary
            verdicts.append(
                SchemeVerdict(scheme, summary.forward, summary.backward, summary.phase)
            )

    return PropagationChart(
        activation=activation,
        depth=depth,
        width=width,
        sigma_b2=sigma_b2,
        x=tuple(range(1, depth + 1)),
        x_axis=Axis("layer", "index, 1 = the layer that reads the input"),
        forward_axis=Axis(
            "forward second moment E[h²] of the pre-activation",
            "squared input units",
            _scale(series, "forward"),
        ),
        backward_axis=Axis(
            "gradient second moment E[(∂L/∂h)²] at the pre-activation",
            "relative to a unit output gradient",
            _scale(series, "backward"),
        ),
        series=tuple(series),
        verdicts=tuple(verdicts),
        method=method,
        seed=seed,
        seeds=seeds,
        batch_size=batch_size,
        numpy_version=np.__version__,
        cost=cost,
        notes=tuple(notes),
    )


def _series(
    scheme: SchemeChoice,
    direction: Direction,
    field_name: str,
    rows: tuple[StatisticsRow, ...],
) -> Series:
    analytic = None
    if rows[0].analytic is not None:
        analytic = tuple(getattr(row.analytic, field_name) for row in rows)
    band = None
    if rows[0].monte_carlo is not None:
        estimates = [_measured(row, field_name) for row in rows]
        mean = tuple(estimate.mean for estimate in estimates)
        sd = tuple(estimate.sd for estimate in estimates)
        band = Band(
            mean,
            sd,
            tuple(m - s for m, s in zip(mean, sd, strict=True)),
            tuple(m + s for m, s in zip(mean, sd, strict=True)),
        )
    label = f"{scheme.name}, {direction}"
    return Series(scheme, direction, label, analytic, band)


def _scale(series: Sequence[Series], direction: Direction) -> Scale:
    values = []
    for item in series:
        if item.direction != direction:
            continue
        values.extend(item.analytic or ())
        if item.monte_carlo is not None:
            values.extend(item.monte_carlo.mean)
    positive = [value for value in values if value > 0.0]
    if len(positive) < len(values) or not positive:
        return "linear"
    return "log" if max(positive) / min(positive) > LOG_SCALE_SPAN else "linear"


@dataclass(frozen=True)
class GridAxis:
    """Evenly spaced values from ``minimum`` to ``maximum``, ``steps`` of them."""

    minimum: float
    maximum: float
    steps: int

    def values(self) -> tuple[float, ...]:
        return tuple(
            float(v) for v in np.linspace(self.minimum, self.maximum, self.steps)
        )


@dataclass(frozen=True)
class EdgePoint:
    """A point of the edge of chaos: χ₁ = 1 at the fixed point q*."""

    sigma_b2: float
    sigma_w2: float
    q_star: float | None


@dataclass(frozen=True)
class PhaseDiagramChart:
    """χ₁, q*, c*, ξ_c and the phase over a (σ_w², σ_b²) grid, and the edge of chaos.

    Grids are indexed ``[i][j]``, i over ``sigma_b2`` (rows, the y axis) and j
    over ``sigma_w2`` (columns, the x axis); ``None`` where a value is
    undefined or infinite (q* of a diverging length map, ξ_c at χ_c = 1).
    ``edge`` lists the edge of chaos σ_w²(σ_b²) for every σ_b² of the grid
    that has one, in σ_b² order.
    """

    activation: Activation
    sigma_w2: tuple[float, ...]
    sigma_b2: tuple[float, ...]
    chi_1: tuple[tuple[float, ...], ...]
    q_star: tuple[tuple[float | None, ...], ...]
    c_star: tuple[tuple[float | None, ...], ...]
    xi_c: tuple[tuple[float | None, ...], ...]
    phase: tuple[tuple[str, ...], ...]
    edge: tuple[EdgePoint, ...]
    x_axis: Axis
    y_axis: Axis
    q_input: float
    notes: tuple[str, ...] = ()


def phase_diagram_chart(
    activation: Activation,
    sigma_w2: GridAxis,
    sigma_b2: GridAxis,
    *,
    q_input: float = 1.0,
) -> PhaseDiagramChart:
    """The phase diagram of a deep stack of ``activation`` on a grid, ready to plot.

    Every value is :func:`initlab.core.meanfield.phase_diagram`'s (Schoenholz
    et al. 2017, "Deep Information Propagation", figure 1), with the length
    map started at ``q_input``. Raises :class:`InvalidInput` at
    ``("sigma_w2", "minimum")`` and the like for a grid it cannot draw:
    σ_w² must be positive, σ_b² non-negative, minimum ≤ maximum, and 1 to 256
    steps per axis; and at ``("sigma_b2", "maximum")`` or ``("sigma_w2",
    "maximum")`` for one that would take more slow integrals than meanfield
    allows (:data:`initlab.core.meanfield.MAX_PHASE_DIAGRAM_LARGE_Q_POINTS`).
    """
    problems = [
        *_grid_problems("sigma_w2", sigma_w2, positive=True),
        *_grid_problems("sigma_b2", sigma_b2, positive=False),
    ]
    if problems:
        raise InvalidInput(problems)

    try:
        diagram = meanfield.phase_diagram(
            activation, sigma_w2.values(), sigma_b2.values(), q_input=q_input
        )
    except InvalidInput as error:
        # meanfield names its value lists; the grid is asked for by its ends.
        raise InvalidInput(
            [
                FieldProblem(
                    _GRID_MAXIMA.get(problem.path, problem.path),
                    problem.message,
                    problem.value,
                    problem.allowed,
                )
                for problem in error.problems
            ]
        ) from None
    edge = tuple(
        EdgePoint(b2, w2, q)
        for b2, w2, q in zip(
            diagram.sigma_b2,
            diagram.edge_sigma_w2,
            diagram.edge_q_star,
            strict=True,
        )
        if w2 is not None
    )
    notes = []
    if not edge:
        notes.append(
            f"{activation.name} has no edge of chaos for σ_b² in"
            f" [{sigma_b2.minimum:g}, {sigma_b2.maximum:g}] (up to σ_w² ="
            f" {meanfield.MAX_EDGE_SIGMA_W2:g})."
        )
    return PhaseDiagramChart(
        activation=activation,
        sigma_w2=diagram.sigma_w2,
        sigma_b2=diagram.sigma_b2,
        chi_1=diagram.chi_1,
        q_star=diagram.q_star,
        c_star=diagram.c_star,
        xi_c=diagram.xi_c,
        phase=diagram.phase,
        edge=edge,
        x_axis=Axis("σ_w², weight variance × fan_in", "dimensionless"),
        y_axis=Axis("σ_b², bias variance", "squared input units"),
        q_input=float(q_input),
        notes=tuple(notes),
    )


_GRID_MAXIMA = {
    ("sigma_w2_values",): ("sigma_w2", "maximum"),
    ("sigma_b2_values",): ("sigma_b2", "maximum"),
}


def _grid_problems(name: str, axis: GridAxis, *, positive: bool) -> list[FieldProblem]:
    problems = []
    bound = "> 0" if positive else "≥ 0"
    for end in ("minimum", "maximum"):
        value = getattr(axis, end)
        number = isinstance(value, int | float) and not isinstance(value, bool)
        if (
            not number
            or not math.isfinite(value)
            or not (value > 0 if positive else value >= 0)
        ):
            problems.append(
                FieldProblem(
                    (name, end),
                    f"{name} {end} must be a finite number {bound}; got {value!r}",
                    value,
                    f"a number {bound}",
                )
            )
    if not problems and axis.minimum > axis.maximum:
        problems.append(
            FieldProblem(
                (name, "maximum"),
                f"{name} maximum {axis.maximum!r} is below its minimum"
                f" {axis.minimum!r}; swap them",
                axis.maximum,
                f"a number ≥ {axis.minimum!r}",
            )
        )
    limit = meanfield.MAX_PHASE_DIAGRAM_AXIS
    steps = axis.steps
    if isinstance(steps, bool) or not isinstance(steps, int) or not 1 <= steps <= limit:
        problems.append(
            FieldProblem(
                (name, "steps"),
                f"{name} steps must be an integer from 1 to {limit}; got {steps!r}",
                steps,
                f"an integer in [1, {limit}]",
            )
        )
    return problems
