"""initlab.core.recommend and initlab.core.schemes: schemes applied to tensors."""

from __future__ import annotations

import dataclasses
import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from initlab.core.activations import make_activation, second_moment_gain
from initlab.core.errors import InvalidInput
from initlab.core.recommend import recommend
from initlab.core.schemes import SCHEME_NAMES, resolve_scheme, scheme_catalogue
from initlab.core.spec import (
    AttentionSpec,
    EmbeddingSpec,
    GatedMlpSpec,
    LinearSpec,
    NormLayerSpec,
    NormSpec,
    RepeatGroup,
    ResidualGroup,
    SequentialGroup,
    Spec,
    expand,
)
from initlab.core.types import (
    Activation,
    ExpandedSpec,
    ParameterTensor,
    ResidualPosition,
    SchemeChoice,
)

RELU = Activation("relu")
IDENTITY = Activation()


def relative_error(ours: float, reference: float) -> float:
    return abs(ours - reference) / abs(reference)


# --- Building tensors by hand -------------------------------------------------


def linear(
    name: str,
    in_features: int,
    out_features: int,
    *,
    bias: bool = True,
    activation: Activation = IDENTITY,
    **fields,
) -> list[ParameterTensor]:
    common = dict(
        layer=name,
        kind="linear",
        in_features=in_features,
        out_features=out_features,
        activation=activation,
        **fields,
    )
    tensors = [
        ParameterTensor(
            name=f"{name}.weight",
            tensor="weight",
            shape=(out_features, in_features),
            **common,
        )
    ]
    if bias:
        tensors.append(
            ParameterTensor(
                name=f"{name}.bias", tensor="bias", shape=(out_features,), **common
            )
        )
    return tensors


def conv(name, kind, in_channels, out_channels, kernel, *, groups=1, bias=True):
    kernel = tuple(kernel)
    if kind.startswith("conv_transpose"):
        shape = (in_channels, out_channels // groups, *kernel)
    else:
        shape = (out_channels, in_channels // groups, *kernel)
    common = dict(
        layer=name,
        kind=kind,
        in_features=in_channels,
        out_features=out_channels,
        kernel_size=kernel,
        groups=groups,
    )
    tensors = [
        ParameterTensor(name=f"{name}.weight", tensor="weight", shape=shape, **common)
    ]
    if bias:
        tensors.append(
            ParameterTensor(
                name=f"{name}.bias", tensor="bias", shape=(out_channels,), **common
            )
        )
    return tensors


def layer_norm(name: str, size: int, **fields) -> list[ParameterTensor]:
    common = dict(
        layer=name, kind="layer_norm", in_features=size, out_features=size, **fields
    )
    return [
        ParameterTensor(
            name=f"{name}.weight", tensor="weight", shape=(size,), **common
        ),
        ParameterTensor(name=f"{name}.bias", tensor="bias", shape=(size,), **common),
    ]


def embedding(name: str, num: int, dim: int) -> list[ParameterTensor]:
    return [
        ParameterTensor(
            name=f"{name}.weight",
            layer=name,
            kind="embedding",
            tensor="weight",
            shape=(num, dim),
            in_features=num,
            out_features=dim,
        )
    ]


def network(*layers: list[ParameterTensor], branches: int = 0) -> ExpandedSpec:
    tensors = tuple(tensor for layer in layers for tensor in layer)
    return ExpandedSpec(
        dims={},
        parameters=tensors,
        parameter_count=sum(t.numel for t in tensors if t.tied_to is None),
        residual_branch_count=branches,
    )


def rows(expanded, scheme="auto", overrides=(), **options):
    choice = (
        scheme if isinstance(scheme, SchemeChoice) else SchemeChoice(scheme, options)
    )
    result = recommend(expanded, choice, overrides)
    return {row.name: row for row in result.parameters}


def branch_position(index, count, layer_index, depth, *, output, norm="pre"):
    return ResidualPosition(index, count, layer_index, depth, output, norm)


# --- The numbers PyTorch, Keras and JAX give ------------------------------------


def test_kaiming_relu_on_linear_784_256():
    spec = network(linear("fc", 784, 256, bias=False, activation=RELU))

    normal = rows(spec, "kaiming_normal", nonlinearity="relu")["fc.weight"]
    uniform = rows(spec, "kaiming_uniform", nonlinearity="relu")["fc.weight"]

    assert relative_error(normal.std, 0.050507627227610534) <= 1e-12
    assert normal.distribution == "normal" and normal.bound is None
    assert (normal.fan_in, normal.fan_out) == (784, 256)
    assert normal.gain == math.sqrt(2.0)
    assert normal.gain_source == "pytorch.calculate_gain('relu')"
    assert normal.pytorch == (
        "torch.nn.init.kaiming_normal_(w, mode='fan_in', nonlinearity='relu')"
    )
    assert relative_error(uniform.bound, 0.08748177652797065) <= 1e-12
    assert relative_error(uniform.std, uniform.bound / math.sqrt(3)) <= 1e-15


def test_kaiming_takes_the_layers_own_activation_by_default():
    spec = network(linear("fc", 784, 256, activation=RELU))

    row = rows(spec, "kaiming_normal")["fc.weight"]

    assert row.options == {
        "mode": "fan_in",
        "nonlinearity": "relu",
        "negative_slope": None,
    }
    assert relative_error(row.std, 0.050507627227610534) <= 1e-12


def test_torch_default_linear_784_256_bounds_weight_and_bias_by_one_over_28():
    spec = network(linear("fc", 784, 256))

    result = rows(spec, "torch_default")

    for name in ("fc.weight", "fc.bias"):
        assert result[name].distribution == "uniform"
        assert relative_error(result[name].bound, 1 / 28) <= 1e-12
        assert (result[name].fan_in, result[name].fan_out) == (784, 256)
    assert result["fc.weight"].pytorch == (
        "torch.nn.init.kaiming_uniform_(w, a=math.sqrt(5))"
    )


def test_conv_64_128_k3_relu():
    spec = network(conv("conv", "conv2d", 64, 128, (3, 3), bias=False))

    fan_out = rows(spec, "kaiming_normal", mode="fan_out", nonlinearity="relu")
    fan_out_uniform = rows(spec, "kaiming_uniform", mode="fan_out", nonlinearity="relu")
    fan_in = rows(spec, "kaiming_normal", nonlinearity="relu")

    assert relative_error(fan_out["conv.weight"].std, 1 / 24) <= 1e-12
    assert relative_error(
        fan_out_uniform["conv.weight"].bound, 0.07216878364870323
    ) <= (1e-12)
    assert relative_error(fan_in["conv.weight"].std, 0.05892556509887897) <= 1e-12


def test_transposed_and_depthwise_convs_report_pytorchs_fans():
    spec = network(
        conv("up", "conv_transpose2d", 64, 128, (3, 3)),
        conv("dw", "conv2d", 32, 32, (3, 3), groups=32),
    )

    result = rows(spec, "kaiming_normal", nonlinearity="relu")

    up, dw = result["up.weight"], result["dw.weight"]
    assert (up.fan_in, up.fan_out) == (1152, 576)
    assert (up.signal_fan_in, up.signal_fan_out) == (576, 1152)
    assert (dw.fan_in, dw.fan_out) == (9, 288)
    assert (dw.signal_fan_in, dw.signal_fan_out) == (9, 9)
    assert any("groups=32" in note for note in dw.notes)
    assert (result["up.bias"].fan_in, result["up.bias"].fan_out) == (1152, 576)


def test_xavier_on_a_100_by_300_weight():
    spec = network(linear("fc", 300, 100, bias=False))

    uniform = rows(spec, "xavier_uniform")["fc.weight"]
    normal = rows(spec, "xavier_normal")["fc.weight"]

    assert relative_error(uniform.bound, 0.1224744871391589) <= 1e-12
    assert relative_error(normal.std, 0.07071067811865475) <= 1e-12
    assert normal.pytorch == "torch.nn.init.xavier_normal_(w, gain=1.0)"


def test_leaky_relu_02_kaiming_uniform_on_512_by_512():
    leaky = make_activation("leaky_relu", {"negative_slope": 0.2})
    spec = network(linear("fc", 512, 512, bias=False, activation=leaky))

    row = rows(spec, "kaiming_uniform")["fc.weight"]

    assert relative_error(row.gain, 1.3867504905630728) <= 1e-12
    assert relative_error(row.bound, 0.10615097195105584) <= 1e-12
    assert row.gain_source == "pytorch.calculate_gain('leaky_relu', 0.2)"
    assert row.pytorch == (
        "torch.nn.init.kaiming_uniform_(w, a=0.2, mode='fan_in', "
        "nonlinearity='leaky_relu')"
    )


def test_tanh_xavier_with_gain_five_thirds_on_256_by_256():
    spec = network(linear("fc", 256, 256, bias=False))

    row = rows(spec, "xavier_uniform", gain=5 / 3)["fc.weight"]

    assert relative_error(row.bound, 0.18042195912175804) <= 1e-12


def test_trunc_normal_reports_the_std_of_the_values_drawn():
    spec = network(linear("fc", 768, 768, bias=False))

    cut = rows(spec, "trunc_normal", std=0.02, a=-0.04, b=0.04)["fc.weight"]
    uncut = rows(spec, "trunc_normal", std=0.02)["fc.weight"]

    assert abs(cut.std - 0.0175925) <= 1e-6
    assert cut.truncation.lower == -0.04 and cut.truncation.upper == 0.04
    assert cut.truncation.sampler_std == 0.02
    assert relative_error(uncut.std, 0.02) <= 1e-12
    assert (uncut.truncation.lower, uncut.truncation.upper) == (-2.0, 2.0)


def test_keras_he_normal_on_dense_784_256():
    spec = network(linear("dense", 784, 256, bias=False, layout="in_out"))

    row = rows(
        spec,
        "variance_scaling",
        scale=2.0,
        mode="fan_in",
        distribution="truncated_normal",
    )["dense.weight"]

    assert row.truncation.sampler_std == 0.057419456326711804
    assert abs(row.std - 0.050507627) <= 1e-9
    assert row.truncation.upper == 2 * 0.057419456326711804
    assert row.convention == "keras" and (row.fan_in, row.fan_out) == (784, 256)


def test_keras_normal_is_truncated_and_jax_normal_is_not():
    spec = network(linear("dense", 784, 256, bias=False))

    keras = rows(spec, "variance_scaling", distribution="normal")["dense.weight"]
    jax = rows(spec, "variance_scaling", distribution="normal", convention="jax")[
        "dense.weight"
    ]

    assert keras.distribution == "truncated_normal"
    assert jax.distribution == "normal" and jax.truncation is None
    assert relative_error(keras.std, jax.std) <= 1e-15


def test_orthogonal_reports_the_element_rms():
    spec = network(conv("conv", "conv2d", 32, 64, (3, 3), bias=False))

    row = rows(spec, "orthogonal", gain=math.sqrt(2))["conv.weight"]

    # Flattened to (64, 288): rows orthonormal, RMS = gain/√288.
    assert row.distribution == "orthogonal"
    assert relative_error(row.std, math.sqrt(2) / math.sqrt(288)) <= 1e-15


def test_lecun_in_keras_and_pytorch_conventions():
    spec = network(linear("fc", 784, 256, bias=False))

    pytorch = rows(spec, "lecun_normal")["fc.weight"]
    keras = rows(spec, "lecun_normal", convention="keras")["fc.weight"]

    assert pytorch.std == 1 / 28 and pytorch.distribution == "normal"
    assert keras.distribution == "truncated_normal"
    assert relative_error(keras.std, 1 / 28) <= 1e-12


# --- Biases, norms, embeddings ---------------------------------------------------


def test_biases_are_zero_and_norms_one_and_zero_under_weight_schemes():
    spec = network(linear("fc", 16, 16), layer_norm("ln", 16))

    for scheme in ("auto", "xavier_uniform", "kaiming_normal", "gpt2", "orthogonal"):
        result = rows(spec, scheme)
        assert result["fc.bias"].distribution == "constant"
        assert result["fc.bias"].mean == 0.0 and result["fc.bias"].std == 0.0
        assert result["ln.weight"].mean == 1.0
        assert result["ln.bias"].mean == 0.0
        assert result["ln.weight"].pytorch == "torch.nn.init.ones_(w)"


def test_mean_field_draws_weights_over_the_signal_fan_in_and_biases():
    spec = network(linear("fc", 768, 2304, layout="in_out"))

    result = rows(spec, "mean_field", sigma_w2=2.0, sigma_b2=0.05)

    assert result["fc.weight"].std == math.sqrt(2.0 / 768)
    assert result["fc.bias"].distribution == "normal"
    assert result["fc.bias"].std == math.sqrt(0.05)


def test_embeddings_under_pytorch_fan_schemes_use_torchs_reading_of_the_table():
    spec = network(embedding("wte", 1000, 64))

    row = rows(spec, "kaiming_normal", nonlinearity="relu")["wte.weight"]

    assert (row.fan_in, row.fan_out) == (64, 1000)
    assert (row.signal_fan_in, row.signal_fan_out) == (1, 64)
    assert relative_error(row.std, math.sqrt(2) / 8) <= 1e-15
    assert any("one-hot" in note for note in row.notes)


def test_torch_default_multihead_attention():
    tensors = [
        *linear("attn.qkv", 512, 1536, origin="attention.qkv"),
        *linear("attn.o", 512, 512, origin="attention.o"),
    ]

    result = rows(network(tensors), "torch_default")

    qkv = result["attn.qkv.weight"]
    assert relative_error(qkv.bound, math.sqrt(6 / (4 * 512))) <= 1e-15
    assert (qkv.fan_in, qkv.fan_out) == (512, 1536)
    assert result["attn.qkv.bias"].distribution == "constant"
    assert result["attn.o.bias"].distribution == "constant"
    assert relative_error(result["attn.o.weight"].bound, 1 / math.sqrt(512)) <= 1e-12


def test_torch_default_attention_as_plain_linears():
    tensors = linear("attn.q", 512, 512, origin="attention.q")

    result = rows(network(tensors), "torch_default", attention="linear")

    assert result["attn.q.bias"].distribution == "uniform"
    assert relative_error(result["attn.q.weight"].bound, 1 / math.sqrt(512)) <= 1e-12


# --- Overrides ------------------------------------------------------------------


def two_layer_net():
    return network(
        linear("h.0.fc", 64, 64, activation=RELU),
        linear("h.1.fc", 64, 64, activation=RELU),
        layer_norm("ln_f", 64),
    )


def test_an_override_by_layer_name_covers_weight_and_bias_and_the_later_wins():
    overrides = [
        ("h.*.fc", SchemeChoice("normal", {"std": 0.5})),
        ("h.1.*", SchemeChoice("normal", {"std": 0.25})),
    ]

    result = recommend(two_layer_net(), SchemeChoice("xavier_normal"), overrides)
    by_name = {row.name: row for row in result.parameters}

    assert by_name["h.0.fc.weight"].std == 0.5
    assert by_name["h.1.fc.weight"].std == 0.25
    # The patterns also match biases, but not only biases: they keep the policy.
    assert by_name["h.0.fc.bias"].distribution == "constant"
    # matched lists what each override set; its notes say what it left alone.
    assert [o.matched for o in result.overrides] == [
        ("h.0.fc.weight",),
        ("h.1.fc.weight",),
    ]
    assert result.overrides[0].notes == (
        "Leaves 1 matched tensor to the policy (h.0.fc.bias): biases stay 0 under"
        ' a weight scheme (aim a value scheme at the biases alone, such as "*.bias",'
        " to change them).",
        'Leaves 2 matched tensors to the later override "h.1.*": h.1.fc.weight,'
        " h.1.fc.bias.",
    )
    assert result.overrides[1].notes == (
        "Leaves 1 matched tensor to the policy (h.1.fc.bias): biases stay 0 under"
        ' a weight scheme (aim a value scheme at the biases alone, such as "*.bias",'
        " to change them).",
    )
    assert result.overrides[1].scheme == SchemeChoice(
        "normal", {"mean": 0.0, "std": 0.25}
    )


def test_overrides_may_be_a_mapping_in_its_order():
    overrides = {"*.weight": SchemeChoice("constant"), "h.0.*": "ignored"}
    overrides["h.0.*"] = SchemeChoice("constant", {"value": 0.5})

    by_name = rows(two_layer_net(), "auto", overrides)

    assert by_name["h.0.fc.weight"].mean == 0.5
    assert by_name["h.1.fc.weight"].mean == 0.0


def test_an_override_aimed_only_at_one_dimensional_tensors_sets_them():
    overrides = [
        ("*.bias", SchemeChoice("constant", {"value": 0.1})),
        ("ln_f.weight", SchemeChoice("normal", {"mean": 1.0, "std": 0.02})),
    ]

    by_name = rows(two_layer_net(), "auto", overrides)

    assert by_name["h.0.fc.bias"].mean == 0.1
    assert by_name["ln_f.bias"].mean == 0.1
    assert by_name["ln_f.weight"].distribution == "normal"
    assert by_name["ln_f.weight"].pytorch == (
        "torch.nn.init.normal_(w, mean=1.0, std=0.02)"
    )


def test_a_mixed_override_leaves_norms_alone():
    by_name = rows(two_layer_net(), "auto", [("*", SchemeChoice("normal"))])

    assert by_name["h.0.fc.weight"].std == 1.0
    assert by_name["ln_f.weight"].mean == 1.0 and by_name["ln_f.weight"].std == 0.0


def test_a_pattern_that_matches_nothing_is_refused_with_its_path():
    with pytest.raises(InvalidInput) as raised:
        recommend(
            two_layer_net(), SchemeChoice("auto"), [("h.9.*", SchemeChoice("auto"))]
        )

    (problem,) = raised.value.problems
    assert problem.path == ("overrides", "h.9.*")
    assert "matches no parameter" in problem.message


def test_a_matrix_scheme_aimed_at_norm_parameters_is_refused():
    with pytest.raises(InvalidInput) as raised:
        recommend(
            two_layer_net(),
            SchemeChoice("auto"),
            [("ln_f", SchemeChoice("xavier_normal"))],
        )

    (problem,) = raised.value.problems
    assert problem.path == ("overrides", "ln_f")
    assert "at least 2 dimensions" in problem.message
    assert "ln_f.weight" in problem.message


def test_torch_default_aimed_at_biases_uses_its_bias_rule():
    by_name = rows(
        two_layer_net(), "auto", [("*.fc.bias", SchemeChoice("torch_default"))]
    )

    assert by_name["h.0.fc.bias"].distribution == "uniform"
    assert by_name["h.0.fc.bias"].bound == 1 / 8


def test_an_unknown_option_in_an_override_names_the_override():
    with pytest.raises(InvalidInput) as raised:
        recommend(
            two_layer_net(),
            SchemeChoice("auto"),
            [("h.*", SchemeChoice("kaiming_normal", {"mod": "fan_out"}))],
        )

    assert raised.value.problems[0].path == ("overrides", "h.*", "mod")


# --- Tied tensors -----------------------------------------------------------------


def test_a_tied_tensor_is_listed_with_the_values_it_shares():
    head = linear("lm_head", 64, 1000, bias=False, is_readout=True)
    head[0] = dataclasses.replace(head[0], tied_to="wte.weight")
    spec = network(embedding("wte", 1000, 64), layer_norm("ln_f", 64), head)

    result = rows(spec, "gpt2", [("lm_head", SchemeChoice("constant"))])

    assert result["lm_head.weight"].std == result["wte.weight"].std == 0.02
    assert result["lm_head.weight"].pytorch == result["wte.weight"].pytorch
    assert result["lm_head.weight"].notes[0] == (
        "Shares storage with wte.weight; initialized once."
    )
    assert "does not apply" in result["lm_head.weight"].notes[1]


# --- Whole models through the spec -------------------------------------------------

GPT = {"vocab": 1000, "ctx": 64, "d": 96, "d_ff": 384, "n_layer": 3, "n_head": 4}


def small_gpt(norm="pre") -> ExpandedSpec:
    def block(name, layers):
        return ResidualGroup(
            norm=norm, norm_layer=NormLayerSpec(name=name), layers=layers
        )

    attention = AttentionSpec(
        name="attn", d_model="d", n_heads="n_head", fused_qkv=True, layout="in_out"
    )
    mlp = SequentialGroup(
        name="mlp",
        layers=(
            LinearSpec(
                name="c_fc",
                in_features="d",
                out_features="d_ff",
                activation=Activation("gelu_tanh"),
                layout="in_out",
            ),
            LinearSpec(
                name="c_proj", in_features="d_ff", out_features="d", layout="in_out"
            ),
        ),
    )
    spec = Spec(
        dims=GPT,
        layers=(
            EmbeddingSpec(name="wte", in_features="vocab", out_features="d"),
            EmbeddingSpec(name="wpe", in_features="ctx", out_features="d"),
            RepeatGroup(
                name="h",
                count="n_layer",
                layers=(block("ln_1", (attention,)), block("ln_2", (mlp,))),
            ),
            NormSpec(kind="layer_norm", name="ln_f", in_features="d"),
            LinearSpec(
                name="lm_head",
                in_features="d",
                out_features="vocab",
                bias=False,
                tied_to="wte",
            ),
        ),
    )
    return expand(spec)


def test_gpt2_scales_residual_output_projections():
    expanded = small_gpt()

    result = recommend(expanded, SchemeChoice("gpt2"))
    by_name = {row.name: row for row in result.parameters}

    assert [row.name for row in result.parameters] == [
        p.name for p in expanded.parameters
    ]
    scaled = 0.02 / math.sqrt(2 * GPT["n_layer"])
    for layer in range(GPT["n_layer"]):
        assert by_name[f"h.{layer}.attn.o.weight"].std == scaled
        assert by_name[f"h.{layer}.mlp.c_proj.weight"].std == scaled
        assert by_name[f"h.{layer}.attn.qkv.weight"].std == 0.02
        assert by_name[f"h.{layer}.mlp.c_fc.bias"].mean == 0.0
    assert by_name["lm_head.weight"].std == 0.02
    assert result.scheme == SchemeChoice("gpt2", {"std": 0.02})


def test_megatron_and_small_init_on_the_same_model():
    expanded = small_gpt()

    megatron = rows(expanded, "megatron", std=0.006)
    small = rows(expanded, "small_init")

    assert megatron["h.0.attn.o.weight"].std == 0.006 / math.sqrt(6)
    assert small["h.0.attn.qkv.weight"].std == math.sqrt(2 / (5 * 96))
    assert small["h.0.mlp.c_proj.weight"].std == 2 / 3 / math.sqrt(96)


def test_auto_on_a_pre_norm_transformer():
    expanded = small_gpt()

    by_name = rows(expanded, "auto")

    gelu_gain = second_moment_gain(Activation("gelu_tanh"))
    # q, k, v read the normed stream: LeCun over the signal fan_in d.
    assert by_name["h.0.attn.qkv.weight"].std == 1 / math.sqrt(96)
    assert by_name["h.0.attn.qkv.weight"].signal_fan_in == 96
    # c_proj reads gelu_tanh outputs and adds to the stream: g₂/√d_ff/√(2L).
    c_proj = by_name["h.0.mlp.c_proj.weight"]
    assert c_proj.gain == gelu_gain
    assert c_proj.gain_source.startswith("second_moment")
    assert relative_error(c_proj.std, gelu_gain / math.sqrt(384) / math.sqrt(6)) <= (
        1e-15
    )
    # The token table is shared with the readout: drawn at the readout's 1/√d.
    assert by_name["wte.weight"].std == 1 / math.sqrt(96)
    assert by_name["lm_head.weight"].std == by_name["wte.weight"].std
    assert by_name["wpe.weight"].std == 1 / math.sqrt(96)


def test_auto_does_not_scale_post_norm_branches():
    by_name = rows(small_gpt(norm="post"), "auto")

    assert by_name["h.0.attn.o.weight"].std == 1 / math.sqrt(96)
    assert any("Post-norm" in note for note in by_name["h.0.attn.o.weight"].notes)


def test_auto_gives_the_down_projection_of_a_gated_mlp_the_gates_gain():
    spec = Spec(
        dims={"d": 64, "d_ff": 256},
        layers=(
            ResidualGroup(
                norm="pre",
                norm_layer=NormLayerSpec(kind="rms_norm"),
                layers=(
                    GatedMlpSpec(
                        name="mlp",
                        d_model="d",
                        d_ff="d_ff",
                        activation=Activation("silu"),
                    ),
                ),
            ),
        ),
    )

    by_name = rows(expand(spec), "auto")

    silu_gain = second_moment_gain(Activation("silu"))
    assert by_name["mlp.gate.weight"].std == 1 / 8
    assert by_name["mlp.up.weight"].std == 1 / 8
    # down reads silu(gate)·up; one branch, so no depth scaling (1/√1).
    assert by_name["mlp.down.weight"].std == silu_gain / 16


def test_auto_on_a_relu_mlp_follows_he_layer_by_layer():
    spec = network(
        linear("fc1", 784, 256, activation=RELU),
        linear("fc2", 256, 256, activation=RELU),
        linear("fc3", 256, 10, is_readout=True),
    )

    by_name = rows(spec, "auto")

    # The first layer reads raw data; the others read ReLU outputs.
    assert by_name["fc1.weight"].std == 1 / 28
    assert by_name["fc2.weight"].std == math.sqrt(2) / 16
    assert by_name["fc3.weight"].std == math.sqrt(2) / 16
    assert by_name["fc3.weight"].gain_source == "pytorch.calculate_gain('relu')"
    assert by_name["fc1.bias"].std == 0.0


def test_auto_embeddings_untied_are_standard_normal():
    by_name = rows(network(embedding("emb", 100, 32), linear("fc", 32, 8)), "auto")

    assert by_name["emb.weight"].std == 1.0


# --- Fixup and DeepNorm ------------------------------------------------------------


def resnet_like(branches=4):
    tensors = []
    for index in range(branches):
        for layer in (0, 1):
            position = branch_position(
                index, branches, layer, 2, output=layer == 1, norm="none"
            )
            tensors += linear(
                f"block{index}.fc{layer}",
                32,
                32,
                activation=RELU,
                residual=position,
            )
    tensors += linear("fc", 32, 10, is_readout=True)
    return network(tensors, branches=branches)


def test_fixup_zeroes_readout_and_branch_outputs_and_scales_the_rest():
    by_name = rows(resnet_like(), "fixup")

    assert by_name["fc.weight"].distribution == "constant"
    assert by_name["block2.fc1.weight"].mean == 0.0
    # m = 2, L = 4: He std times 4^(-1/2).
    assert relative_error(by_name["block2.fc0.weight"].std, math.sqrt(2 / 32) / 2) <= (
        1e-15
    )


def test_deepnorm_puts_beta_on_values_and_outputs_only():
    tensors = []
    for suffix, size in (("q", 32), ("k", 32), ("v", 32), ("o", 32)):
        position = branch_position(
            0, 2, 0 if suffix != "o" else 1, 2, output=suffix == "o"
        )
        tensors += linear(
            f"attn.{suffix}", 32, size, residual=position, origin=f"attention.{suffix}"
        )
    by_name = rows(network(tensors, branches=2), "deepnorm")

    beta = 8**-0.25  # N = 2 branches / 2 = 1 layer
    assert by_name["attn.q.weight"].gain == 1.0
    assert by_name["attn.k.weight"].gain == 1.0
    assert relative_error(by_name["attn.v.weight"].gain, beta) <= 1e-15
    assert relative_error(by_name["attn.o.weight"].std, beta * math.sqrt(2 / 64)) <= (
        1e-15
    )


# --- Properties of every row -------------------------------------------------------

LIBRARY_SCHEMES = [
    "auto",
    "xavier_uniform",
    "xavier_normal",
    "kaiming_uniform",
    "kaiming_normal",
    "lecun_uniform",
    "lecun_normal",
    "variance_scaling",
    "orthogonal",
    "torch_default",
    "mean_field",
    "gpt2",
    "megatron",
    "small_init",
    "fixup",
    "deepnorm",
]


@settings(max_examples=40, deadline=None)
@given(
    st.sampled_from(LIBRARY_SCHEMES),
    st.integers(1, 4096),
    st.integers(1, 4096),
    st.sampled_from(["identity", "relu", "tanh", "gelu", "selu"]),
)
def test_std_is_always_the_std_of_the_values_drawn(scheme, n_in, n_out, name):
    spec = network(linear("fc", n_in, n_out, activation=make_activation(name)))

    for row in rows(spec, scheme).values():
        assert row.std >= 0.0 and math.isfinite(row.std)
        if row.distribution == "uniform":
            assert relative_error(row.std, row.bound / math.sqrt(3)) <= 1e-15
        if row.distribution == "constant":
            assert row.std == 0.0 and row.bound is None


# --- The catalogue and resolving a scheme -------------------------------------------


def test_every_scheme_resolves_with_its_defaults_and_again_to_itself():
    for scheme in scheme_catalogue():
        resolved = resolve_scheme(SchemeChoice(scheme.name), ("scheme",))
        assert set(resolved.options) == {option.name for option in scheme.options}
        assert resolve_scheme(resolved, ("scheme",)) == resolved


def test_the_catalogue_describes_every_scheme():
    entries = [scheme.as_dict() for scheme in scheme_catalogue()]

    assert [entry["name"] for entry in entries] == list(SCHEME_NAMES)
    assert SCHEME_NAMES[0] == "auto"
    for entry in entries:
        assert entry["formula"] and entry["source"] and entry["convention"]
        for option in entry["options"]:
            assert set(option) == {"name", "type", "default", "allowed", "description"}
    kaiming = next(e for e in entries if e["name"] == "kaiming_normal")
    mode = next(o for o in kaiming["options"] if o["name"] == "mode")
    assert mode["allowed"] == ["fan_in", "fan_out"] and mode["default"] == "fan_in"


def test_numbers_come_back_as_floats():
    resolved = resolve_scheme(SchemeChoice("xavier_uniform", {"gain": 2}), ("scheme",))

    assert resolved.options == {"gain": 2.0}
    assert isinstance(resolved.options["gain"], float)


def test_an_unknown_scheme_suggests_the_nearest_name():
    with pytest.raises(InvalidInput) as raised:
        resolve_scheme(SchemeChoice("glorot_uniform"), ("scheme",))

    (problem,) = raised.value.problems
    assert problem.path == ("scheme", "name")
    assert 'did you mean "xavier_uniform"?' in problem.message
    assert problem.value == "glorot_uniform"

    with pytest.raises(InvalidInput) as raised:
        resolve_scheme(
            SchemeChoice("kaimng_normal"), ("scheme",), name_path=("scheme",)
        )
    assert raised.value.problems[0].path == ("scheme",)
    assert 'did you mean "kaiming_normal"?' in raised.value.problems[0].message


def test_every_bad_option_is_reported_at_once():
    choice = SchemeChoice(
        "kaiming_normal", {"mode": "fan_avg", "gain": 2.0, "negative_slope": -1}
    )

    with pytest.raises(InvalidInput) as raised:
        resolve_scheme(choice, ("overrides", "h.*"))

    problems = {problem.path: problem for problem in raised.value.problems}
    assert set(problems) == {
        ("overrides", "h.*", "gain"),
        ("overrides", "h.*", "mode"),
        ("overrides", "h.*", "negative_slope"),
    }
    assert problems[("overrides", "h.*", "mode")].allowed == "fan_in, fan_out"
    assert "omit it" in problems[("overrides", "h.*", "negative_slope")].message


@pytest.mark.parametrize(
    ("options", "field"),
    [
        ({"mode": "fan_geo_avg"}, "mode"),
        ({"distribution": "untruncated_normal", "convention": "jax"}, "distribution"),
    ],
)
def test_variance_scaling_refuses_what_its_library_does_not_have(options, field):
    with pytest.raises(InvalidInput) as raised:
        resolve_scheme(SchemeChoice("variance_scaling", options), ("scheme",))

    assert raised.value.problems[0].path == ("scheme", field)


@pytest.mark.parametrize(
    ("scheme", "options"),
    [
        ("trunc_normal", {"a": 1.0, "b": -1.0}),
        ("uniform", {"a": 1.0, "b": 0.0}),
        ("normal", {"std": -0.1}),
        ("gpt2", {"std": float("nan")}),
        ("xavier_uniform", {"gain": True}),
        ("small_init", {"d_model": 12.5}),
    ],
)
def test_values_out_of_range_are_refused(scheme, options):
    with pytest.raises(InvalidInput):
        resolve_scheme(SchemeChoice(scheme, options), ("scheme",))


# --- Hardening: signal fans, bounded options, limits, notes ----------------------


def two_block_gpt(layout: str, *, norm: str = "pre", n_kv_heads: int | None = None):
    """A two-block GPT-2-shaped transformer (d_model 64, d_ff 256) in ``layout``."""
    attention = AttentionSpec(
        name="attn", d_model=64, n_heads=4, n_kv_heads=n_kv_heads, layout=layout
    )
    mlp = SequentialGroup(
        name="mlp",
        layers=(
            LinearSpec(
                name="c_fc",
                in_features=64,
                out_features=256,
                activation=Activation("gelu_tanh"),
                layout=layout,
            ),
            LinearSpec(name="c_proj", in_features=256, out_features=64, layout=layout),
        ),
    )
    block = (
        ResidualGroup(
            norm=norm, norm_layer=NormLayerSpec(name="ln_1"), layers=(attention,)
        ),
        ResidualGroup(norm=norm, norm_layer=NormLayerSpec(name="ln_2"), layers=(mlp,)),
    )
    return expand(
        Spec(
            dims={},
            layers=(
                EmbeddingSpec(name="wte", in_features=100, out_features=64),
                RepeatGroup(name="h", count=2, layers=block),
                NormSpec(kind="layer_norm", name="ln_f", in_features=64),
                LinearSpec(name="head", in_features=64, out_features=100, bias=False),
            ),
        )
    )


@pytest.mark.parametrize(
    "scheme",
    ["auto", "mean_field", "fixup", "deepnorm", "small_init", "gpt2", "megatron"],
)
def test_non_library_schemes_do_not_depend_on_the_storage_layout(scheme):
    stored_in_out = rows(two_block_gpt("in_out"), scheme)
    stored_out_in = rows(two_block_gpt("out_in"), scheme)

    for name, row in stored_in_out.items():
        assert row.std == stored_out_in[name].std, name


def test_fixup_takes_the_true_fan_in_of_an_in_out_weight():
    row = rows(two_block_gpt("in_out"), "fixup")["h.0.mlp.c_fc.weight"]

    # He with the gain of gelu_tanh's second moment over fan_in 64, times
    # Fixup's L^(-1/(2m-2)) with L = 4 branches and m = 2 layers: 1/2.
    gain = second_moment_gain(make_activation("gelu_tanh"))
    assert relative_error(row.std, gain / math.sqrt(64) / 2) <= 1e-12
    assert (row.fan_in, row.fan_out) == (256, 64)
    assert (row.signal_fan_in, row.signal_fan_out) == (64, 256)
    assert "fixup divides by the signal fan_in, 64." in row.notes


def test_fixup_names_the_torch_mode_that_reads_the_true_fan_in():
    spec = network(linear("fc", 64, 256, activation=RELU, layout="in_out"))

    row = rows(spec, "fixup")["fc.weight"]

    assert relative_error(row.std, math.sqrt(2.0) / 8) <= 1e-12
    assert row.pytorch == (
        "torch.nn.init.kaiming_normal_(w, mode='fan_out', nonlinearity='relu')"
    )


def test_deepnorm_on_a_grouped_conv_uses_the_signal_fans():
    spec = network(conv("conv", "conv2d", 32, 32, (3, 3), groups=32))

    row = rows(spec, "deepnorm", n_layers=6)["conv.weight"]

    # Signal fans (9, 9) where torch reads (9, 288): xavier σ = √(2/18).
    assert relative_error(row.std, math.sqrt(2 / 18)) <= 1e-12
    assert row.pytorch == f"torch.nn.init.normal_(w, mean=0.0, std={row.std!r})"


@pytest.mark.parametrize(
    ("scheme", "options", "field"),
    [
        ("uniform", {"a": -1e308, "b": 1e308}, "a"),
        ("kaiming_normal", {"negative_slope": 1e200}, "negative_slope"),
        ("kaiming_normal", {"negative_slope": 1001}, "negative_slope"),
        ("normal", {"std": 10**400}, "std"),
        ("trunc_normal", {"mean": 1e308}, "mean"),
        ("constant", {"value": -1e6 - 1}, "value"),
        ("xavier_normal", {"gain": 2e6}, "gain"),
        ("variance_scaling", {"scale": 1e7}, "scale"),
        ("mean_field", {"sigma_w2": 1e300}, "sigma_w2"),
        ("mean_field", {"sigma_b2": 1e7}, "sigma_b2"),
        ("small_init", {"d_model": 10**400}, "d_model"),
        ("deepnorm", {"n_layers": 1e9}, "n_layers"),
    ],
)
def test_every_number_option_is_bounded_before_any_arithmetic(scheme, options, field):
    with pytest.raises(InvalidInput) as raised:
        resolve_scheme(SchemeChoice(scheme, options), ("scheme",))

    problems = {problem.path: problem for problem in raised.value.problems}
    problem = problems[("scheme", field)]
    assert " in [" in problem.allowed or " in (" in problem.allowed
    assert problem.allowed in problem.message


def test_the_bounds_are_stated_in_the_catalogue():
    options = {
        (scheme.name, option.name): option.allowed
        for scheme in scheme_catalogue()
        for option in scheme.options
    }

    assert options[("uniform", "a")] == "a number in [-1e6, 1e6]"
    assert options[("trunc_normal", "std")] == "a number in (0, 1e6]"
    assert options[("kaiming_normal", "negative_slope")] == (
        "null or a number in [0, 1000]"
    )
    assert options[("small_init", "d_model")] == "null or an integer in [1, 2147483647]"


def test_options_at_their_bounds_give_finite_numbers():
    spec = network(linear("fc", 4, 4))
    choices = [
        SchemeChoice("uniform", {"a": -1e6, "b": 1e6}),
        SchemeChoice("trunc_normal", {"mean": 1e6, "std": 1e6, "a": -1e6, "b": 1e6}),
        SchemeChoice(
            "kaiming_normal", {"nonlinearity": "leaky_relu", "negative_slope": 1e3}
        ),
    ]
    uniform, truncated, kaiming = (
        rows(spec, choice)["fc.weight"] for choice in choices
    )

    assert uniform.std == 2e6 / math.sqrt(12) and uniform.bound == 1e6
    assert 0 < truncated.mean < 1e6 and math.isfinite(truncated.std)
    assert relative_error(kaiming.std, math.sqrt(2 / (1 + 1e6)) / 2) <= 1e-12


def test_a_number_that_still_overflows_is_a_problem_at_its_option():
    spec = two_block_gpt("out_in")

    with pytest.raises(InvalidInput) as raised:
        rows(spec, "small_init", n_layers=5e-324)

    (problem,) = raised.value.problems
    assert problem.path == ("scheme", "n_layers")
    assert problem.message == (
        "small_init with n_layers = 5e-324 gives h.0.attn.o.weight a std that is not"
        " a finite number (inf); bring the options nearer their defaults"
    )


def test_too_many_override_patterns_are_refused_before_any_is_read():
    from initlab.core.errors import LimitExceeded
    from initlab.core.spec import SpecLimits

    spec = network(linear("fc", 4, 4))
    overrides = [(f"fc{index}", SchemeChoice("no_such_scheme")) for index in range(257)]

    with pytest.raises(LimitExceeded) as raised:
        recommend(spec, SchemeChoice("auto"), overrides)

    assert raised.value.limit == "max_overrides"
    assert raised.value.limit_value == 256
    assert raised.value.problems[0].path == ("overrides",)
    assert raised.value.problems[0].message == (
        "over the limit max_overrides = 256: got 257 override patterns; merge"
        " patterns (one glob such as h.*.attn.o covers every block), or raise"
        " max_overrides"
    )

    limits = SpecLimits(max_override_matches=10)
    with pytest.raises(LimitExceeded) as raised:
        recommend(spec, SchemeChoice("auto"), overrides[:6], limits)
    assert raised.value.limit == "max_override_matches"
    assert "got 6 override patterns × 2 parameter tensors = 12 matches" in (
        raised.value.problems[0].message
    )


def test_a_negative_slope_for_another_nonlinearity_is_echoed_as_unused():
    spec = network(linear("fc", 16, 16, activation=Activation("gelu")))

    row = rows(spec, "kaiming_normal", negative_slope=0.2)["fc.weight"]

    assert row.options == {
        "mode": "fan_in",
        "nonlinearity": "gelu",
        "negative_slope": None,
    }
    assert (
        "negative_slope = 0.2 was ignored: the nonlinearity used for this layer is"
        " gelu, not leaky_relu, so its scheme shows negative_slope null."
    ) in row.notes


def test_torch_default_says_when_grouped_query_attention_is_not_multihead():
    result = rows(two_block_gpt("out_in", n_kv_heads=2), "torch_default")

    for name in ("h.0.attn.k.weight", "h.0.attn.q.weight", "h.0.attn.q.bias"):
        assert any(
            note.startswith("nn.MultiheadAttention cannot hold this attention block")
            for note in result[name].notes
        ), name
    assert result["h.0.attn.k.weight"].distribution == "uniform"
    assert relative_error(result["h.0.attn.k.weight"].bound, 1 / 8) <= 1e-12
    assert not any(
        "MultiheadAttention cannot" in note
        for note in rows(two_block_gpt("out_in"), "torch_default")[
            "h.0.attn.q.weight"
        ].notes
    )


def test_deepnorm_on_a_pre_norm_network_says_it_is_defined_for_post_norm():
    def notes(norm: str) -> tuple[str, ...]:
        return recommend(
            two_block_gpt("out_in", norm=norm), SchemeChoice("deepnorm")
        ).notes

    pre, post = notes("pre"), notes("post")

    assert any(n.startswith("DeepNorm is defined for post-LN residuals") for n in pre)
    assert not any("defined for post-LN" in n for n in post)
