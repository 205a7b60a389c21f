"""initlab.core.fans: library fans against PyTorch, Keras and JAX, and signal fans."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from initlab.core.errors import InvalidInput
from initlab.core.fans import (
    fan_notes,
    library_fans,
    signal_fans,
    stored_shape,
    weight_shape,
)
from initlab.core.types import ParameterTensor

CONV_SPATIAL = {"conv1d": 1, "conv2d": 2, "conv3d": 3}


def linear(in_features: int, out_features: int, layout="out_in", tensor="weight"):
    shape = (out_features, in_features) if tensor == "weight" else (out_features,)
    return ParameterTensor(
        name=f"layer.{tensor}",
        layer="layer",
        kind="linear",
        tensor=tensor,
        shape=shape,
        in_features=in_features,
        out_features=out_features,
        layout=layout,
    )


def conv(kind, in_channels, out_channels, kernel, groups=1, tensor="weight"):
    kernel = tuple(kernel)
    if tensor == "bias":
        shape = (out_channels,)
    elif kind.startswith("conv_transpose"):
        shape = (in_channels, out_channels // groups, *kernel)
    else:
        shape = (out_channels, in_channels // groups, *kernel)
    return ParameterTensor(
        name=f"layer.{tensor}",
        layer="layer",
        kind=kind,
        tensor=tensor,
        shape=shape,
        in_features=in_channels,
        out_features=out_channels,
        kernel_size=kernel,
        groups=groups,
    )


def embedding(num: int, dim: int):
    return ParameterTensor(
        name="wte.weight",
        layer="wte",
        kind="embedding",
        tensor="weight",
        shape=(num, dim),
        in_features=num,
        out_features=dim,
    )


def norm(size: int, tensor="weight", kind="layer_norm"):
    return ParameterTensor(
        name=f"ln.{tensor}",
        layer="ln",
        kind=kind,
        tensor=tensor,
        shape=(size,),
        in_features=size,
        out_features=size,
    )


# --- PyTorch: torch.nn.init._calculate_fan_in_and_fan_out on the stored tensor


@pytest.mark.parametrize(
    ("tensor", "fans"),
    [
        (linear(784, 256), (784, 256)),
        (conv("conv1d", 16, 32, (5,)), (80, 160)),
        (conv("conv2d", 64, 128, (3, 3)), (576, 1152)),
        (conv("conv3d", 8, 16, (3, 3, 3)), (216, 432)),
        (conv("conv2d", 64, 128, (3, 5), groups=4), (240, 1920)),
        (conv("conv2d", 32, 32, (3, 3), groups=32), (9, 288)),
        (conv("conv_transpose1d", 16, 8, (4,)), (32, 64)),
        (conv("conv_transpose2d", 64, 128, (3, 3)), (1152, 576)),
        (conv("conv_transpose2d", 64, 128, (3, 3), groups=4), (288, 576)),
        (conv("conv_transpose3d", 8, 4, (2, 2, 2)), (32, 64)),
        (embedding(1000, 64), (64, 1000)),
        (linear(768, 2304, layout="in_out"), (2304, 768)),
    ],
    ids=lambda value: getattr(value, "kind", None) or str(value),
)
def test_pytorch_fans_are_torchs(tensor, fans):
    assert library_fans(tensor, "pytorch") == fans


def test_a_bias_reports_the_fans_of_its_layers_weight():
    assert library_fans(linear(784, 256, tensor="bias")) == (784, 256)
    assert library_fans(conv("conv2d", 64, 128, (3, 3), tensor="bias")) == (576, 1152)
    transposed = conv("conv_transpose2d", 64, 128, (3, 3), groups=4, tensor="bias")
    assert library_fans(transposed) == (288, 576)
    assert weight_shape(transposed) == (64, 32, 3, 3)


@pytest.mark.parametrize("convention", ["pytorch", "jax"])
def test_norm_parameters_have_no_fans_in_pytorch_and_jax(convention):
    with pytest.raises(InvalidInput) as raised:
        library_fans(norm(768), convention)

    (problem,) = raised.value.problems
    assert "at least 2 dimensions" in problem.message
    assert problem.value == [768]


def test_keras_gives_a_one_dimensional_tensor_its_length_as_both_fans():
    assert library_fans(norm(768, tensor="bias"), "keras") == (768, 768)


def test_an_unknown_convention_is_refused():
    with pytest.raises(InvalidInput) as raised:
        library_fans(linear(3, 4), "flax")

    assert raised.value.problems[0].path == ("convention",)


# --- Keras 3 and JAX store (*kernel, in, out) ---------------------------------


@pytest.mark.parametrize(
    ("tensor", "keras", "jax"),
    [
        (linear(784, 256), (784, 256), (784, 256)),
        (linear(784, 256, layout="in_out"), (784, 256), (784, 256)),
        (conv("conv2d", 64, 128, (3, 3)), (576, 1152), (576, 1152)),
        (conv("conv2d", 64, 128, (3, 3), groups=4), (144, 1152), (144, 1152)),
        (conv("conv_transpose2d", 64, 128, (3, 3)), (1152, 576), (576, 1152)),
        (embedding(1000, 64), (1000, 64), (1000, 64)),
    ],
)
def test_keras_and_jax_fans(tensor, keras, jax):
    assert library_fans(tensor, "keras") == keras
    assert library_fans(tensor, "jax") == jax


def test_stored_shapes_follow_each_librarys_layout():
    transposed = conv("conv_transpose2d", 64, 128, (3, 5))
    assert stored_shape(transposed, "pytorch") == (64, 128, 3, 5)
    assert stored_shape(transposed, "keras") == (3, 5, 128, 64)
    assert stored_shape(transposed, "jax") == (3, 5, 64, 128)
    assert stored_shape(linear(768, 2304, layout="in_out"), "pytorch") == (768, 2304)


# --- Signal fans ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("tensor", "fans"),
    [
        (linear(768, 2304, layout="in_out"), (768, 2304)),
        (conv("conv2d", 32, 32, (3, 3), groups=32), (9, 9)),
        (conv("conv2d", 64, 128, (3, 5), groups=4), (240, 480)),
        (conv("conv_transpose2d", 64, 128, (3, 3)), (576, 1152)),
        (embedding(50257, 768), (1, 768)),
        (norm(768), (1, 1)),
        (linear(784, 256, tensor="bias"), (784, 256)),
    ],
)
def test_signal_fans_count_what_is_summed(tensor, fans):
    assert signal_fans(tensor) == fans


kinds = st.sampled_from(["conv1d", "conv2d", "conv3d"])
sizes = st.integers(1, 64)


@st.composite
def convolutions(draw, transposed=False):
    kind = draw(kinds)
    groups = draw(st.integers(1, 4))
    in_channels = groups * draw(sizes)
    out_channels = groups * draw(sizes)
    kernel = draw(
        st.lists(st.integers(1, 7), min_size=CONV_SPATIAL[kind], max_size=3).map(
            lambda dims: dims[: CONV_SPATIAL[kind]]
        )
    )
    if transposed:
        kind = kind.replace("conv", "conv_transpose")
    return conv(kind, in_channels, out_channels, kernel, groups)


@given(convolutions())
def test_pytorch_fan_in_is_the_signal_fan_in_and_fan_out_ignores_groups(tensor):
    fan_in, fan_out = library_fans(tensor)
    signal_in, signal_out = signal_fans(tensor)

    assert fan_in == signal_in
    assert fan_out == signal_out * tensor.groups
    assert fan_in * tensor.shape[0] == tensor.numel


@given(convolutions(transposed=True))
def test_pytorch_reads_a_transposed_conv_with_its_fans_swapped(tensor):
    fan_in, fan_out = library_fans(tensor)
    signal_in, signal_out = signal_fans(tensor)

    # Stored (in, out/g, *k): dim 1 read as "in" is the signal's fan_out, and
    # dim 0 read as "out" ignores groups.
    assert fan_in == signal_out
    assert fan_out == signal_in * tensor.groups


@given(st.integers(1, 5000), st.integers(1, 5000))
def test_in_out_layout_swaps_pytorch_fans_but_not_keras_or_signal(n_in, n_out):
    stored_in_out = linear(n_in, n_out, layout="in_out")
    assert library_fans(stored_in_out, "pytorch") == (n_out, n_in)
    assert library_fans(stored_in_out, "keras") == (n_in, n_out)
    assert signal_fans(stored_in_out) == (n_in, n_out)


# --- Notes ----------------------------------------------------------------------


def test_notes_explain_where_library_and_signal_disagree():
    assert fan_notes(linear(784, 256)) == ()

    (in_out,) = fan_notes(linear(768, 2304, layout="in_out"))
    assert "mode='fan_out'" in in_out and "768" in in_out

    (depthwise,) = fan_notes(conv("conv2d", 32, 32, (3, 3), groups=32))
    assert "groups=32" in depthwise and "9" in depthwise

    (table,) = fan_notes(embedding(1000, 64))
    assert "one-hot" in table

    bias = fan_notes(linear(784, 256, tensor="bias"))
    assert bias == (
        "A bias has no fans of its own; these are the fans of layer.weight.",
    )
    assert fan_notes(norm(768)) == ()
