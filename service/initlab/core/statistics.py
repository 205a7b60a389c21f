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
from collections import Counter
from dataclasses import dataclass, field

from initlab.core.errors import FieldProblem, InvalidInput, Path
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
from initlab.core.recommend import RecommendationResult
from initlab.core.types import (
    ExpandedSpec,
    LayerNode,
    ParameterTensor,
    Recommendation,
    ResidualNode,
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
