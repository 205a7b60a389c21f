"""The data model shared across ``initlab.core``.

A spec is expanded (``initlab.core.spec.expand``) into a flat list of
:class:`ParameterTensor` in forward order; a scheme turns each one into a
:class:`Recommendation` (``initlab.core.recommend``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

LayerKind = Literal[
    "linear",
    "conv1d",
    "conv2d",
    "conv3d",
    "conv_transpose1d",
    "conv_transpose2d",
    "conv_transpose3d",
    "embedding",
    "layer_norm",
    "rms_norm",
    "batch_norm",
]
Layout = Literal["out_in", "in_out"]
TensorRole = Literal["weight", "bias"]
Distribution = Literal[
    "normal", "uniform", "truncated_normal", "orthogonal", "constant"
]
NormPlacement = Literal["pre", "post", "none"]


@dataclass(frozen=True)
class Activation:
    """An activation function and its parameters.

    ``name`` is one of ``initlab.core.activations.ACTIVATION_NAMES``.
    ``params`` holds the parameters that apply to it, defaults filled in:
    ``negative_slope`` (leaky_relu, default 0.01), ``alpha`` (elu, default 1.0),
    ``beta`` (softplus, default 1.0). Other activations have no parameters.
    """

    name: str = "identity"
    params: tuple[tuple[str, float], ...] = ()

    def param(self, key: str, default: float | None = None) -> float | None:
        return dict(self.params).get(key, default)


@dataclass(frozen=True)
class ResidualPosition:
    """Where a parameter sits inside a residual group.

    ``branch_index`` counts residual groups in forward order (0-based) over the
    whole expanded network; ``branch_count`` is their total (2·n_layer for a
    GPT-2-style transformer). ``weight_layer_index`` and ``branch_depth`` count
    the weight-bearing layers (linear, conv, attention projections, gated-MLP
    projections; not norms) inside this branch, so ``branch_depth`` is the m of
    Fixup. ``is_branch_output`` marks the layer whose output is added to the
    residual stream (GPT-2's c_proj, Llama's o_proj and down_proj).
    """

    branch_index: int
    branch_count: int
    weight_layer_index: int
    branch_depth: int
    is_branch_output: bool
    norm: NormPlacement


@dataclass(frozen=True)
class ParameterTensor:
    """One parameter tensor of an expanded spec.

    ``shape`` is always PyTorch's layout: ``(out, in/groups, *kernel)`` for
    linear and conv weights, ``(in, out/groups, *kernel)`` for transposed convs,
    ``(num_embeddings, embedding_dim)`` for embeddings, ``(n,)`` for biases and
    norm parameters. ``layout`` says how the user's framework stores a 2-D
    weight (``in_out`` is GPT-2's Conv1D and Keras); it never changes ``shape``.
    ``in_features``/``out_features`` are the layer's true signal sizes
    (channels for convs). ``origin`` names the composite layer a projection came
    from: ``attention.q``, ``attention.k``, ``attention.v``, ``attention.qkv``
    (fused), ``attention.o``, ``gated_mlp.gate``, ``gated_mlp.up``,
    ``gated_mlp.down``, or ``None`` for a plain layer.
    """

    name: str
    layer: str
    kind: LayerKind
    tensor: TensorRole
    shape: tuple[int, ...]
    in_features: int
    out_features: int
    kernel_size: tuple[int, ...] = ()
    groups: int = 1
    layout: Layout = "out_in"
    activation: Activation = Activation()
    tied_to: str | None = None
    residual: ResidualPosition | None = None
    origin: str | None = None
    is_readout: bool = False

    @property
    def numel(self) -> int:
        count = 1
        for size in self.shape:
            count *= size
        return count


@dataclass(frozen=True)
class LayerNode:
    """One layer of an expanded spec, where the forward pass meets it.

    ``name`` is the layer's dotted name (its parameters' names without
    ``.weight``/``.bias``; for attention and gated MLPs the block's name, whose
    projections add ``.q``, ``.gate``, ...); ``kind`` is the spec's kind
    (``attention`` and ``gated_mlp`` included); ``path`` is the spec item it was
    written as (every copy of a repeat shares it); ``parameters`` are the
    indices of its tensors in :attr:`ExpandedSpec.parameters`; ``heads`` is
    ``(n_heads, n_kv_heads, d_head)`` for an attention block.
    """

    name: str
    kind: str
    path: tuple[str | int, ...]
    parameters: tuple[int, ...]
    heads: tuple[int, int, int] | None = None


@dataclass(frozen=True)
class ResidualNode:
    """A residual group: ``x + f(x)`` with its norm, branch and shortcut.

    ``norm_layer`` is the group's own norm module (``norm`` "pre" or "post"),
    ``branch`` the layers of f and ``shortcut`` those of a projection shortcut
    (empty for the identity), each in forward order and possibly nested.
    """

    name: str
    path: tuple[str | int, ...]
    norm: NormPlacement
    norm_layer: LayerNode | None
    branch: tuple[StructureNode, ...]
    shortcut: tuple[StructureNode, ...] = ()


StructureNode = LayerNode | ResidualNode


@dataclass(frozen=True)
class ExpandedSpec:
    """A spec after dims are resolved and groups expanded.

    ``structure`` is the layer tree in forward order (repeat and sequential
    groups only name their layers, so they are flattened; residual groups stay
    nested); empty when the spec was not built by ``initlab.core.spec.expand``.
    """

    dims: dict[str, int]
    parameters: tuple[ParameterTensor, ...]
    parameter_count: int
    residual_branch_count: int
    notes: tuple[str, ...] = ()
    structure: tuple[StructureNode, ...] = ()


@dataclass(frozen=True)
class SchemeChoice:
    """A scheme name with its options as given (defaults not yet filled)."""

    name: str
    options: dict = field(default_factory=dict)


@dataclass(frozen=True)
class Truncation:
    """Bounds (absolute values) and the std handed to the truncated-normal sampler."""

    lower: float
    upper: float
    sampler_std: float


@dataclass(frozen=True)
class Recommendation:
    """How to draw one parameter tensor.

    ``std`` is always the standard deviation of the values actually drawn
    (after truncation, for orthogonal the element RMS); ``bound`` is the
    half-width of a uniform distribution (else ``None``).
    """

    name: str
    shape: tuple[int, ...]
    scheme: str
    options: dict
    fan_in: int
    fan_out: int
    signal_fan_in: int | None
    signal_fan_out: int | None
    gain: float
    gain_source: str
    distribution: Distribution
    mean: float
    std: float
    bound: float | None
    truncation: Truncation | None
    pytorch: str | None
    convention: str
    notes: tuple[str, ...] = ()
