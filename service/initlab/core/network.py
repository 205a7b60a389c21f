"""The network as the statistics engines see it: a forward program of blocks.

``initlab.core.statistics`` builds a :class:`Network` from an expanded spec and
the recommendation for every tensor; the analytic mean-field propagation
(``initlab.core.propagation``) and the Monte Carlo engine
(``initlab.core.montecarlo``) both read it, so they always describe the same
network. Every block knows its input and output width; a block's output is the
next block's input.

Conventions shared by both engines:
- A :class:`Dense` is a linear or convolutional layer followed by its
  activation: ``h = W x + b`` (pre-activation, whose statistics are reported)
  then ``x' = φ(h)``. ``weight`` describes how W is drawn, entries i.i.d. with
  ``weight.std`` (the effective std of the values drawn); ``fan_in`` is the
  signal fan-in (inputs summed per output: ``(c_in/groups)·k^d`` for a conv).
- Convolutions are simulated on a small spatial grid with circular padding so
  every location sees a full receptive field; statistics are per location.
- The input is the raw network input: it is not passed through any activation.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from initlab.core.types import Activation, Distribution, NormPlacement

NormKind = Literal["layer_norm", "rms_norm", "batch_norm"]


@dataclass(frozen=True)
class Draw:
    """How the entries of one tensor are drawn, i.i.d.

    ``std`` is the std of the values drawn; ``mean`` their mean; ``bound`` the
    uniform half-width; ``truncation`` ``(lower, upper, sampler_std)`` for a
    truncated normal; ``gain`` for an orthogonal matrix. ``constant`` tensors
    have ``std == 0`` and every entry equal to ``mean``.
    """

    distribution: Distribution
    std: float
    mean: float = 0.0
    bound: float | None = None
    truncation: tuple[float, float, float] | None = None
    gain: float | None = None

    @property
    def second_moment(self) -> float:
        return self.std * self.std + self.mean * self.mean


ZERO = Draw("constant", 0.0)


@dataclass(frozen=True)
class Dense:
    """A linear or convolutional layer and the activation that follows it.

    ``name`` is the spec's layer name (``h.3.mlp.c_fc``); ``in_width`` and
    ``out_width`` are features or channels; ``kernel_size`` is empty for a
    linear layer; ``fan_in`` is the signal fan-in.
    """

    name: str
    in_width: int
    out_width: int
    fan_in: int
    weight: Draw
    bias: Draw | None
    activation: Activation
    kernel_size: tuple[int, ...] = ()
    groups: int = 1
    transposed: bool = False


@dataclass(frozen=True)
class Embedding:
    """Token (and position) embeddings summed into the first stream.

    Consecutive embedding layers at the start of a spec are summed (token plus
    position embeddings); each input token is a one-hot vector, so the output
    second moment is the sum of the tables' second moments.
    """

    names: tuple[str, ...]
    width: int
    tables: tuple[Draw, ...]


@dataclass(frozen=True)
class Norm:
    """LayerNorm, RMSNorm or BatchNorm with its affine parameters' init."""

    name: str
    kind: NormKind
    width: int
    weight: Draw | None
    bias: Draw | None


@dataclass(frozen=True)
class GatedMlp:
    """``down(φ(gate(x)) * up(x))``; ``gate.activation`` is φ, ``up`` and
    ``down`` have identity activations."""

    name: str
    gate: Dense
    up: Dense
    down: Dense


@dataclass(frozen=True)
class Attention:
    """Self-attention with its projections (identity activations).

    Model at initialization, used by both engines and stated in responses:
    every sequence consists of ``sequence_length`` tokens; the attention
    weights are the softmax of the query-key scores over them.
    """

    name: str
    q: Dense
    k: Dense
    v: Dense
    o: Dense
    n_heads: int
    n_kv_heads: int
    d_head: int


@dataclass(frozen=True)
class Residual:
    """``x + f(x)`` (``norm`` "pre": ``x + f(N(x))``; "post": ``N(x + f(x))``).

    ``norm`` is the group's own norm module (None when the spec puts norms
    inside the branch as ordinary layers); ``shortcut`` replaces the identity
    (a projection shortcut) when not empty.
    """

    name: str
    placement: NormPlacement
    norm: Norm | None
    branch: tuple[Block, ...]
    shortcut: tuple[Block, ...] = ()


Block = Dense | Embedding | Norm | GatedMlp | Attention | Residual


@dataclass(frozen=True)
class Network:
    """A forward program: ``blocks`` in order, reading an input of
    ``input_width`` features (channels, with ``spatial`` dims for a conv net)."""

    input_width: int
    blocks: tuple[Block, ...]
    spatial_dims: int = 0
