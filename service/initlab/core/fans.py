"""Fan-in and fan-out of a parameter tensor: as each library computes them, and
as the signal sees them.

Variance-preserving initializers divide by a fan, and the libraries compute it
from the shape of the stored tensor, not from what the layer does. The two
disagree for grouped convs, transposed convs, embeddings and 2-D weights stored
``(in, out)``. :func:`library_fans` reproduces the library; :func:`signal_fans`
counts what is actually summed, so a caller can use one and report the other.

PyTorch 2.13 ``torch.nn.init._calculate_fan_in_and_fan_out`` reads dim 1 of the
stored tensor as "in" and dim 0 as "out", both times the receptive field (the
product of the remaining dims), and raises for fewer than 2 dims. Keras 3
``compute_fans`` reads the last two dims as (in, out) times the product of the
leading dims and gives fan = n for a 1-D tensor. JAX 0.10
``jax.nn.initializers`` uses ``in_axis=-2, out_axis=-1`` by default, like Keras,
and raises below 2 dims.
"""

from __future__ import annotations

from typing import Literal

from initlab.core.errors import InvalidInput
from initlab.core.types import ParameterTensor

Convention = Literal["pytorch", "keras", "jax"]
CONVENTIONS: tuple[str, ...] = ("pytorch", "keras", "jax")

NORM_KINDS = frozenset({"layer_norm", "rms_norm", "batch_norm"})
CONV_KINDS = frozenset({"conv1d", "conv2d", "conv3d"})
TRANSPOSED_CONV_KINDS = frozenset(
    {"conv_transpose1d", "conv_transpose2d", "conv_transpose3d"}
)


def is_norm(p: ParameterTensor) -> bool:
    """True for the weight and bias of a layer_norm, rms_norm or batch_norm."""
    return p.kind in NORM_KINDS


def receptive_field(kernel_size: tuple[int, ...]) -> int:
    """The number of kernel taps: the product of the kernel dims (1 for a matrix)."""
    size = 1
    for dim in kernel_size:
        size *= dim

    return size


def weight_shape(p: ParameterTensor) -> tuple[int, ...]:
    """The PyTorch-layout shape of the weight of ``p``'s layer.

    For a weight this is ``p.shape``; for a bias it is rebuilt from the layer's
    sizes, so that the fans of the layer's weight can be reported for its bias.
    Norm layers have no weight matrix: their 1-D shape is returned.
    """
    if p.tensor == "weight" or is_norm(p):
        return p.shape

    kernel = tuple(p.kernel_size)
    if p.kind in CONV_KINDS:
        return (p.out_features, p.in_features // p.groups, *kernel)
    if p.kind in TRANSPOSED_CONV_KINDS:
        return (p.in_features, p.out_features // p.groups, *kernel)

    return (p.out_features, p.in_features)


def stored_shape(p: ParameterTensor, convention: Convention) -> tuple[int, ...]:
    """The shape of the layer's weight as ``convention``'s library stores it.

    PyTorch: ``(out, in/groups, *k)``, transposed ``(in, out/groups, *k)``,
    a 2-D ``in_out`` weight (GPT-2's Conv1D) ``(in, out)``. Keras 3: Dense
    ``(in, out)``, Conv ``(*k, in/groups, out)``, ConvTranspose
    ``(*k, out, in)``. Flax (JAX): Dense ``(in, out)``, Conv and ConvTranspose
    ``(*k, in/groups, out)``. Embeddings are ``(num_embeddings, dim)``
    everywhere; norm parameters are 1-D everywhere.
    """
    shape = weight_shape(p)
    if is_norm(p) or p.kind == "embedding":
        return shape

    if convention == "pytorch":
        if p.layout == "in_out" and len(shape) == 2:
            return (shape[1], shape[0])
        return shape

    kernel = tuple(p.kernel_size)
    if p.kind in TRANSPOSED_CONV_KINDS:
        if convention == "keras":
            return (*kernel, p.out_features // p.groups, p.in_features)
        return (*kernel, p.in_features // p.groups, p.out_features)
    if p.kind in CONV_KINDS:
        return (*kernel, p.in_features // p.groups, p.out_features)

    return (p.in_features, p.out_features)


def library_fans(
    p: ParameterTensor, convention: Convention = "pytorch"
) -> tuple[int, int]:
    """``(fan_in, fan_out)`` exactly as ``convention``'s library computes them.

    The fans are those of the layer's weight as that library stores it (see
    :func:`stored_shape`). A bias has no fans of its own: the fans of its
    layer's weight are returned, which is what ``nn.Linear`` and ``nn.ConvNd``
    read for their default bias bound. For a norm parameter (1-D) Keras gives
    ``(n, n)``; PyTorch and JAX raise, and so does this function, with
    :class:`InvalidInput` at path ``()``.

    Examples (PyTorch): ``ConvTranspose2d(64, 128, 3)`` gives ``(1152, 576)``;
    a depthwise 3x3 conv with 32 channels gives ``(9, 288)``; an ``in_out``
    768→2304 weight gives ``(2304, 768)``; ``Embedding(50257, 768)`` gives
    ``(768, 50257)``.
    """
    if convention not in CONVENTIONS:
        raise InvalidInput.at(
            ("convention",),
            f"unknown fan convention {convention!r}; use one of "
            + ", ".join(CONVENTIONS),
            value=convention,
            allowed=", ".join(CONVENTIONS),
        )

    shape = stored_shape(p, convention)
    if len(shape) < 2:
        if convention == "keras":
            return shape[0], shape[0]
        raise InvalidInput.at(
            (),
            f"{p.name} has shape {list(shape)}: {convention} computes fans only "
            "for tensors with at least 2 dimensions; use a constant, normal, "
            "uniform or trunc_normal scheme for it",
            value=list(shape),
            allowed="a tensor with at least 2 dimensions",
        )

    if convention == "pytorch":
        field = receptive_field(shape[2:])
        return shape[1] * field, shape[0] * field

    field = receptive_field(shape[:-2])
    return shape[-2] * field, shape[-1] * field


def signal_fans(p: ParameterTensor) -> tuple[int, int]:
    """``(fan_in, fan_out)`` counted on the signal, whatever the storage.

    fan_in is the number of input values summed into one output value, fan_out
    the number of output values one input value feeds (away from borders, at
    stride 1):

    - linear: ``(in, out)``, whatever the layout;
    - conv with groups g and receptive field rf: each output channel sees only
      its group's ``in/g`` channels, and each input channel feeds only its
      group's ``out/g`` channels: ``((in/g)·rf, (out/g)·rf)``;
    - transposed conv: it is the adjoint of a conv from ``out`` to ``in``
      channels, so an output location gathers ``in/g`` channels through all
      ``rf`` taps and an input location scatters to ``out/g`` channels at
      ``rf`` locations: ``((in/g)·rf, (out/g)·rf)``. With stride s an output
      location gathers only about ``(in/g)·rf/∏s`` taps; stride is not part of
      the expanded spec, so the stride-1 count is returned;
    - embedding: the input is one-hot, so each output value is a single table
      entry: ``(1, dim)``;
    - norm parameters scale or shift one value each: ``(1, 1)``;
    - a bias: the signal fans of its layer's weight.
    """
    if is_norm(p):
        return 1, 1
    if p.kind == "embedding":
        return 1, p.out_features

    field = receptive_field(tuple(p.kernel_size))
    return (p.in_features // p.groups) * field, (p.out_features // p.groups) * field


def fan_notes(
    p: ParameterTensor, convention: Convention = "pytorch"
) -> tuple[str, ...]:
    """One sentence for each way ``convention``'s fans differ from the signal's."""
    if is_norm(p):
        return ()

    notes: list[str] = []
    if p.tensor == "bias":
        notes.append(
            f"A bias has no fans of its own; these are the fans of {p.layer}.weight."
        )
    fans = library_fans(p, convention)
    signal = signal_fans(p)
    if fans == signal:
        return tuple(notes)

    if p.kind == "embedding":
        notes.append(
            f"{_library(convention)} reads the embedding table "
            f"{list(weight_shape(p))} as fan_in={fans[0]}, fan_out={fans[1]}; "
            "for the signal each output value is one table entry picked by a "
            f"one-hot input (signal fan_in 1, fan_out {signal[1]})."
        )
    elif p.kind in TRANSPOSED_CONV_KINDS:
        notes.append(
            f"{_library(convention)} reads a transposed conv's stored dims as "
            f"fan_in={fans[0]}, fan_out={fans[1]}; the signal gathers "
            f"{signal[0]} inputs per output and scatters each input to "
            f"{signal[1]} outputs (stride 1)."
        )
    elif p.kind in CONV_KINDS and p.groups > 1:
        notes.append(
            f"{_library(convention)} ignores groups={p.groups} in fan_out "
            f"({fans[1]}); each input channel feeds only its group, so the "
            f"signal fan_out is {signal[1]}."
        )
    elif p.layout == "in_out" and convention == "pytorch":
        notes.append(
            f"Stored (in, out) like GPT-2's Conv1D, so torch's fan helper swaps "
            f"the fans (fan_in={fans[0]}, fan_out={fans[1]}); the true fan_in is "
            f"{signal[0]} — pass mode='fan_out' to kaiming_* for fan_in semantics."
        )
    else:
        notes.append(
            f"{_library(convention)} fans ({fans[0]}, {fans[1]}) differ from the "
            f"signal fans ({signal[0]}, {signal[1]})."
        )

    return tuple(notes)


def _library(convention: Convention) -> str:
    return {"pytorch": "PyTorch", "keras": "Keras", "jax": "JAX"}[convention]
