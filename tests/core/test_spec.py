"""initlab.core.spec: expansion into parameter tensors, and every rule it checks."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from initlab.core.errors import InvalidInput, LimitExceeded, json_value
from initlab.core.spec import (
    AttentionSpec,
    ConvSpec,
    EmbeddingSpec,
    GatedMlpSpec,
    LinearSpec,
    NormLayerSpec,
    NormSpec,
    RepeatGroup,
    ResidualGroup,
    SequentialGroup,
    Spec,
    SpecLimits,
    expand,
)
from initlab.core.types import Activation

GPT2_DIMS = {
    "vocab": 50257,
    "n_positions": 1024,
    "d_model": 768,
    "d_ff": 3072,
    "n_layer": 12,
    "n_head": 12,
}


def gpt2_small() -> Spec:
    """GPT-2 small as in examples/gpt2-small.spec.json, built in Python."""
    attention = AttentionSpec(
        name="attn",
        d_model="d_model",
        n_heads="n_head",
        fused_qkv=True,
        layout="in_out",
    )
    mlp = SequentialGroup(
        name="mlp",
        layers=(
            LinearSpec(
                name="c_fc",
                in_features="d_model",
                out_features="d_ff",
                activation=Activation("gelu_tanh"),
                layout="in_out",
            ),
            LinearSpec(
                name="c_proj",
                in_features="d_ff",
                out_features="d_model",
                layout="in_out",
            ),
        ),
    )
    block = (
        ResidualGroup(
            norm="pre", norm_layer=NormLayerSpec(name="ln_1"), layers=(attention,)
        ),
        ResidualGroup(norm="pre", norm_layer=NormLayerSpec(name="ln_2"), layers=(mlp,)),
    )
    return Spec(
        dims=GPT2_DIMS,
        layers=(
            EmbeddingSpec(name="wte", in_features="vocab", out_features="d_model"),
            EmbeddingSpec(
                name="wpe", in_features="n_positions", out_features="d_model"
            ),
            RepeatGroup(name="h", count="n_layer", layers=block),
            NormSpec(kind="layer_norm", name="ln_f", in_features="d_model"),
            LinearSpec(
                name="lm_head",
                in_features="d_model",
                out_features="vocab",
                bias=False,
                tied_to="wte",
            ),
        ),
    )


def by_name(expanded) -> dict:
    return {parameter.name: parameter for parameter in expanded.parameters}


def one_problem(error: InvalidInput):
    assert len(error.problems) == 1, error.problems
    return error.problems[0]


def problem_of(spec: Spec):
    with pytest.raises(InvalidInput) as raised:
        expand(spec)
    return one_problem(raised.value)


# --- GPT-2 small ---------------------------------------------------------------


def test_gpt2_small_counts_the_tied_head_once():
    expanded = expand(gpt2_small())

    assert expanded.parameter_count == 124_439_808
    assert expanded.residual_branch_count == 24
    # wte, wpe, 12 × (ln_1 ×2, qkv ×2, o ×2, ln_2 ×2, c_fc ×2, c_proj ×2), ln_f ×2, head
    assert len(expanded.parameters) == 2 + 12 * 12 + 2 + 1
    assert expanded.dims == GPT2_DIMS


def test_gpt2_small_names_shapes_and_layouts():
    parameters = by_name(expand(gpt2_small()))

    qkv = parameters["h.0.attn.qkv.weight"]
    assert qkv.shape == (2304, 768)
    assert qkv.layout == "in_out"
    assert (qkv.in_features, qkv.out_features) == (768, 2304)
    assert qkv.origin == "attention.qkv"
    assert qkv.kind == "linear"
    assert qkv.layer == "h.0.attn.qkv"
    assert parameters["h.0.attn.qkv.bias"].shape == (2304,)
    assert parameters["h.11.attn.o.weight"].shape == (768, 768)
    assert parameters["h.3.ln_1.weight"].shape == (768,)
    assert parameters["h.3.ln_2.bias"].shape == (768,)
    assert parameters["h.5.mlp.c_fc.weight"].shape == (3072, 768)
    assert parameters["h.5.mlp.c_fc.weight"].activation == Activation("gelu_tanh")
    assert parameters["h.5.mlp.c_proj.weight"].shape == (768, 3072)
    assert parameters["h.5.mlp.c_proj.weight"].activation == Activation("identity")
    assert parameters["wte.weight"].shape == (50257, 768)
    assert parameters["wpe.weight"].shape == (1024, 768)
    assert "h.12.attn.qkv.weight" not in parameters


def test_gpt2_small_parameters_come_in_forward_order():
    names = [parameter.name for parameter in expand(gpt2_small()).parameters]

    assert names[:10] == [
        "wte.weight",
        "wpe.weight",
        "h.0.ln_1.weight",
        "h.0.ln_1.bias",
        "h.0.attn.qkv.weight",
        "h.0.attn.qkv.bias",
        "h.0.attn.o.weight",
        "h.0.attn.o.bias",
        "h.0.ln_2.weight",
        "h.0.ln_2.bias",
    ]
    assert names[-4:] == [
        "h.11.mlp.c_proj.bias",
        "ln_f.weight",
        "ln_f.bias",
        "lm_head.weight",
    ]


def test_gpt2_small_head_is_the_tied_readout():
    expanded = expand(gpt2_small())
    parameters = by_name(expanded)

    head = parameters["lm_head.weight"]
    assert head.tied_to == "wte.weight"
    assert head.is_readout
    assert head.shape == (50257, 768)
    assert parameters["wte.weight"].tied_to is None
    assert [p.name for p in expanded.parameters if p.is_readout] == ["lm_head.weight"]
    assert any("lm_head.weight shares wte.weight" in note for note in expanded.notes)


def test_gpt2_small_branch_outputs_are_attention_o_and_mlp_c_proj():
    expanded = expand(gpt2_small())

    outputs = {
        p.name
        for p in expanded.parameters
        if p.residual and p.residual.is_branch_output
    }
    expected = {
        f"h.{layer}.{module}.{tensor}"
        for layer in range(12)
        for module in ("attn.o", "mlp.c_proj")
        for tensor in ("weight", "bias")
    }
    assert outputs == expected


def test_gpt2_small_residual_positions():
    parameters = by_name(expand(gpt2_small()))

    o = parameters["h.3.attn.o.weight"].residual
    assert (o.branch_index, o.branch_count, o.branch_depth) == (6, 24, 2)
    assert o.weight_layer_index == 1
    assert o.norm == "pre"
    qkv = parameters["h.3.attn.qkv.weight"].residual
    assert (qkv.weight_layer_index, qkv.is_branch_output) == (0, False)
    c_proj = parameters["h.3.mlp.c_proj.weight"].residual
    assert (c_proj.branch_index, c_proj.weight_layer_index) == (7, 1)
    ln_2 = parameters["h.3.ln_2.weight"].residual
    assert (ln_2.branch_index, ln_2.weight_layer_index, ln_2.is_branch_output) == (
        7,
        0,
        False,
    )
    assert parameters["wte.weight"].residual is None
    assert parameters["ln_f.weight"].residual is None


# --- Layer kinds ---------------------------------------------------------------


def single(layer, dims=None) -> dict:
    return by_name(expand(Spec(dims=dims or {}, layers=(layer,))))


def test_linear_weight_is_out_by_in_with_bias():
    parameters = single(LinearSpec(name="fc", in_features=784, out_features=256))

    assert parameters["fc.weight"].shape == (256, 784)
    assert parameters["fc.bias"].shape == (256,)
    assert parameters["fc.bias"].tensor == "bias"
    assert parameters["fc.weight"].is_readout and parameters["fc.bias"].is_readout


def test_grouped_attention_projects_keys_and_values_to_the_kv_heads():
    layer = AttentionSpec(name="attn", d_model=64, n_heads=8, n_kv_heads=2, bias=False)
    parameters = single(layer)

    assert list(parameters) == [
        "attn.q.weight",
        "attn.k.weight",
        "attn.v.weight",
        "attn.o.weight",
    ]
    assert parameters["attn.q.weight"].shape == (64, 64)
    assert parameters["attn.k.weight"].shape == (16, 64)
    assert parameters["attn.v.weight"].shape == (16, 64)
    assert parameters["attn.o.weight"].shape == (64, 64)
    assert parameters["attn.k.weight"].origin == "attention.k"


def test_attention_with_explicit_head_size():
    layer = AttentionSpec(
        name="attn", d_model=100, n_heads=3, d_head=32, fused_qkv=True
    )
    parameters = single(layer)

    assert parameters["attn.qkv.weight"].shape == (288, 100)
    assert parameters["attn.o.weight"].shape == (100, 96)
    assert parameters["attn.o.bias"].shape == (100,)


def test_gated_mlp_gates_with_silu_and_has_no_bias_by_default():
    parameters = single(GatedMlpSpec(name="mlp", d_model=64, d_ff=172))

    assert list(parameters) == ["mlp.gate.weight", "mlp.up.weight", "mlp.down.weight"]
    assert parameters["mlp.gate.weight"].shape == (172, 64)
    assert parameters["mlp.down.weight"].shape == (64, 172)
    assert parameters["mlp.gate.weight"].activation.name == "silu"
    assert parameters["mlp.up.weight"].activation.name == "identity"
    assert parameters["mlp.down.weight"].origin == "gated_mlp.down"


def test_gated_mlp_branch_takes_two_positions():
    spec = Spec(
        dims={},
        layers=(
            ResidualGroup(
                norm="pre",
                norm_layer=NormLayerSpec(kind="rms_norm"),
                layers=(GatedMlpSpec(name="mlp", d_model=8, d_ff=16),),
            ),
        ),
    )
    parameters = by_name(expand(spec))

    positions = {name: p.residual.weight_layer_index for name, p in parameters.items()}
    assert positions == {
        "norm.weight": 0,
        "mlp.gate.weight": 0,
        "mlp.up.weight": 0,
        "mlp.down.weight": 1,
    }
    assert parameters["mlp.down.weight"].residual.is_branch_output
    assert parameters["mlp.down.weight"].residual.branch_depth == 2


@pytest.mark.parametrize(
    ("layer", "weight_shape"),
    [
        (
            ConvSpec(kind="conv2d", in_features=64, out_features=128, kernel_size=3),
            (128, 64, 3, 3),
        ),
        (
            ConvSpec(
                kind="conv2d", in_features=32, out_features=32, kernel_size=3, groups=32
            ),
            (32, 1, 3, 3),
        ),
        (
            ConvSpec(
                kind="conv1d", in_features=4, out_features=6, kernel_size=(5,), groups=2
            ),
            (6, 2, 5),
        ),
        (
            ConvSpec(
                kind="conv3d", in_features=2, out_features=3, kernel_size=(1, 2, 3)
            ),
            (3, 2, 1, 2, 3),
        ),
        (
            ConvSpec(
                kind="conv_transpose2d", in_features=64, out_features=128, kernel_size=3
            ),
            (64, 128, 3, 3),
        ),
        (
            ConvSpec(
                kind="conv_transpose2d",
                in_features=64,
                out_features=128,
                kernel_size=3,
                groups=2,
            ),
            (64, 64, 3, 3),
        ),
    ],
)
def test_conv_weight_shapes_follow_pytorch(layer, weight_shape):
    parameters = single(layer)

    assert parameters["0.weight"].shape == weight_shape
    assert parameters["0.bias"].shape == (layer.out_features,)
    assert parameters["0.weight"].kernel_size == weight_shape[2:]
    assert parameters["0.weight"].groups == layer.groups


def test_embedding_and_norms():
    spec = Spec(
        dims={"d": 16},
        layers=(
            EmbeddingSpec(name="emb", in_features=100, out_features="d"),
            NormSpec(kind="layer_norm", name="ln", in_features="d", out_features="d"),
            NormSpec(kind="rms_norm", name="rms", in_features="d"),
            NormSpec(
                kind="batch_norm",
                name="bn",
                in_features="d",
                activation=Activation("relu"),
            ),
            NormSpec(kind="layer_norm", name="ln_no_bias", in_features="d", bias=False),
        ),
    )
    expanded = expand(spec)
    shapes = {p.name: p.shape for p in expanded.parameters}

    assert shapes == {
        "emb.weight": (100, 16),
        "ln.weight": (16,),
        "ln.bias": (16,),
        "rms.weight": (16,),
        "bn.weight": (16,),
        "bn.bias": (16,),
        "ln_no_bias.weight": (16,),
    }
    assert expanded.parameter_count == 1600 + 16 * 6
    assert by_name(expanded)["bn.weight"].activation == Activation("relu")
    assert any("running statistics" in note for note in expanded.notes)


def test_unnamed_layers_take_their_index_and_unnamed_groups_add_no_segment():
    spec = Spec(
        dims={},
        layers=(
            LinearSpec(in_features=4, out_features=8),
            SequentialGroup(
                layers=(LinearSpec(name="inner", in_features=8, out_features=8),)
            ),
            RepeatGroup(
                name="blocks",
                count=2,
                layers=(LinearSpec(in_features=8, out_features=8),),
            ),
            SequentialGroup(
                name="extra",
                layers=(
                    RepeatGroup(
                        count=2,
                        layers=(LinearSpec(name="x", in_features=8, out_features=8),),
                    ),
                ),
            ),
        ),
    )
    names = [p.name for p in expand(spec).parameters if p.tensor == "weight"]

    assert names == [
        "0.weight",
        "inner.weight",
        "blocks.0.0.weight",
        "blocks.1.0.weight",
        "extra.0.x.weight",
        "extra.1.x.weight",
    ]


def test_an_unnamed_repeat_claims_the_indices_of_its_copies():
    # Its copies are named 0 and 1 in the top list, where the first layer is
    # already called "0" by default.
    spec = Spec(
        dims={},
        layers=(
            LinearSpec(in_features=4, out_features=4),
            RepeatGroup(count=2, layers=(LinearSpec(in_features=4, out_features=4),)),
        ),
    )
    problem = problem_of(spec)

    assert problem.path == ("layers", 1)
    assert "copies 0..1" in problem.message and "layers/0" in problem.message


def test_post_norm_sits_after_the_branch_outside_it():
    spec = Spec(
        dims={},
        layers=(
            ResidualGroup(
                name="block",
                norm="post",
                layers=(
                    LinearSpec(
                        name="a",
                        in_features=8,
                        out_features=32,
                        activation=Activation("relu"),
                    ),
                    LinearSpec(name="b", in_features=32, out_features=8),
                ),
            ),
            LinearSpec(name="head", in_features=8, out_features=2),
        ),
    )
    expanded = expand(spec)
    parameters = by_name(expanded)

    assert [p.name for p in expanded.parameters][-4:] == [
        "block.norm.weight",
        "block.norm.bias",
        "head.weight",
        "head.bias",
    ]
    assert parameters["block.norm.weight"].shape == (8,)
    assert parameters["block.norm.weight"].residual is None
    assert parameters["block.b.weight"].residual.is_branch_output
    assert parameters["block.b.weight"].residual.norm == "post"
    assert parameters["head.weight"].is_readout


def test_shortcut_layers_are_named_in_the_group_and_not_on_the_branch():
    spec = Spec(
        dims={},
        layers=(
            ResidualGroup(
                name="block",
                layers=(
                    ConvSpec(
                        kind="conv2d",
                        name="conv",
                        in_features=8,
                        out_features=16,
                        kernel_size=3,
                        bias=False,
                    ),
                ),
                shortcut=(
                    SequentialGroup(
                        name="downsample",
                        layers=(
                            ConvSpec(
                                kind="conv2d",
                                in_features=8,
                                out_features=16,
                                kernel_size=1,
                                bias=False,
                            ),
                            NormSpec(kind="batch_norm", in_features=16),
                        ),
                    ),
                ),
            ),
        ),
    )
    expanded = expand(spec)
    parameters = by_name(expanded)

    assert list(parameters) == [
        "block.conv.weight",
        "block.downsample.0.weight",
        "block.downsample.1.weight",
        "block.downsample.1.bias",
    ]
    assert parameters["block.downsample.0.weight"].residual is None
    assert parameters["block.conv.weight"].residual.is_branch_output
    assert not any(p.is_readout for p in expanded.parameters)
    assert any("No readout layer" in note for note in expanded.notes)


def test_ties_follow_chains_to_the_stored_weight():
    spec = Spec(
        dims={},
        layers=(
            EmbeddingSpec(name="a", in_features=10, out_features=4),
            EmbeddingSpec(name="b", in_features=10, out_features=4, tied_to="c"),
            LinearSpec(
                name="c", in_features=4, out_features=10, bias=False, tied_to="a"
            ),
        ),
    )
    expanded = expand(spec)
    parameters = by_name(expanded)

    assert parameters["b.weight"].tied_to == "a.weight"
    assert parameters["c.weight"].tied_to == "a.weight"
    assert expanded.parameter_count == 40


# --- Bad specs: each gives its exact path and says how to fix it -----------------


def test_unknown_dim_lists_the_known_dims_and_suggests_the_closest():
    spec = Spec(
        dims={"d_model": 8, "vocab": 10},
        layers=(LinearSpec(in_features="d_modle", out_features=4),),
    )
    problem = problem_of(spec)

    assert problem.path == ("layers", 0, "in")
    assert 'unknown dim "d_modle"' in problem.message
    assert "known dims: d_model, vocab" in problem.message
    assert 'did you mean "d_model"?' in problem.message


@pytest.mark.parametrize("size", [0, -3, True, 2.5, None])
def test_sizes_must_be_positive_integers_and_not_booleans(size):
    problem = problem_of(
        Spec(dims={}, layers=(LinearSpec(in_features=4, out_features=size),))
    )

    assert problem.path == ("layers", 0, "out")
    assert "positive integer" in problem.message
    assert json_value(size) in problem.message


def test_every_problem_is_reported_at_once():
    spec = Spec(
        dims={"d": 0},
        layers=(
            LinearSpec(in_features="nope", out_features=4),
            LinearSpec(in_features=4, out_features=-1),
        ),
    )
    with pytest.raises(InvalidInput) as raised:
        expand(spec)

    assert [p.path for p in raised.value.problems] == [
        ("dims", "d"),
        ("layers", 0, "in"),
        ("layers", 1, "out"),
    ]


def test_unknown_activation():
    layer = LinearSpec(in_features=4, out_features=4, activation=Activation("relux"))
    problem = problem_of(Spec(dims={}, layers=(layer,)))

    assert problem.path == ("layers", 0, "activation", "name")
    assert 'unknown activation "relux"' in problem.message
    assert '"relu"' in problem.message


def test_bad_activation_parameter():
    activation = Activation("leaky_relu", (("negative_slope", 2.0),))
    layer = LinearSpec(in_features=4, out_features=4, activation=activation)
    problem = problem_of(
        Spec(dims={}, layers=(SequentialGroup(name="s", layers=(layer,)),))
    )

    assert problem.path == ("layers", 0, "layers", 0, "activation", "negative_slope")
    assert "[0, 1]" in problem.message


def test_activation_parameters_get_their_defaults():
    layer = LinearSpec(
        name="fc", in_features=4, out_features=4, activation=Activation("leaky_relu")
    )

    assert single(layer)["fc.weight"].activation.param("negative_slope") == 0.01


def test_repeat_count_over_the_limit_is_refused_by_name():
    block = RepeatGroup(
        count=10**9, layers=(LinearSpec(in_features=4, out_features=4),)
    )
    with pytest.raises(LimitExceeded) as raised:
        expand(Spec(dims={}, layers=(SequentialGroup(name="s", layers=(block,)),)))

    error = raised.value
    assert (error.limit, error.limit_value) == ("max_repeat_count", 10_000)
    problem = one_problem(error)
    assert problem.path == ("layers", 0, "layers", 0, "count")
    assert "10000" in problem.message and "max_repeat_count" in problem.message


def test_expanded_size_is_known_before_expanding():
    # 10⁹ copies of a linear layer would exhaust memory if anything were
    # expanded; the count of tensors is computed from the plan and refused.
    limits = SpecLimits(max_repeat_count=10**12)
    block = RepeatGroup(
        count="copies", layers=(LinearSpec(in_features=4, out_features=4),)
    )
    with pytest.raises(LimitExceeded) as raised:
        expand(Spec(dims={"copies": 10**9}, layers=(block,)), limits)

    assert raised.value.limit == "max_parameter_tensors"
    assert raised.value.limit_value == 20_000
    assert "2000000000 parameter tensors" in one_problem(raised.value).message


def test_nested_repeats_multiply():
    inner = RepeatGroup(
        name="b", count=100, layers=(LinearSpec(in_features=4, out_features=4),)
    )
    middle = RepeatGroup(name="a", count=100, layers=(inner,))
    with pytest.raises(LimitExceeded) as raised:
        expand(
            Spec(dims={}, layers=(RepeatGroup(name="c", count=100, layers=(middle,)),))
        )

    # The innermost repeat is refused, with the copies the outer two make of it.
    assert raised.value.limit == "max_parameter_tensors"
    problem = one_problem(raised.value)
    assert problem.path == ("layers", 0, "layers", 0, "layers", 0)
    assert problem.message == (
        "over the limit max_parameter_tensors = 20000: got a repeat group that"
        " expands to 2000000 parameter tensors (2 per copy × 100 copies × 10000"
        " copies made by the repeats around it); lower the repeat counts or raise"
        " max_parameter_tensors"
    )


def test_dims_over_the_size_limit():
    with pytest.raises(LimitExceeded) as raised:
        expand(
            Spec(
                dims={"huge": 2**31},
                layers=(LinearSpec(in_features="huge", out_features=1),),
            )
        )

    assert raised.value.limit == "max_dim_size"
    assert one_problem(raised.value).path == ("dims", "huge")


def test_nesting_depth_limit():
    item = LinearSpec(in_features=2, out_features=2)
    for _ in range(17):
        item = SequentialGroup(layers=(item,))
    with pytest.raises(LimitExceeded) as raised:
        expand(Spec(dims={}, layers=(item,)))

    assert raised.value.limit == "max_nesting_depth"
    assert one_problem(raised.value).path == (
        "layers",
        0,
        *("layers", 0) * 16,
        "layers",
    )


def test_list_length_limit():
    layers = tuple(LinearSpec(in_features=2, out_features=2) for _ in range(4))
    with pytest.raises(LimitExceeded) as raised:
        expand(Spec(dims={}, layers=layers), SpecLimits(max_layers=3))

    assert (raised.value.limit, raised.value.limit_value) == ("max_layers", 3)
    assert one_problem(raised.value).path == ("layers",)


def test_groups_must_divide_channels():
    layer = ConvSpec(
        kind="conv2d", in_features=64, out_features=96, kernel_size=3, groups=5
    )
    problem = problem_of(Spec(dims={}, layers=(layer,)))

    assert problem.path == ("layers", 0, "groups")
    assert "groups = 5" in problem.message
    assert "in (64)" in problem.message and "out (96)" in problem.message


def test_kernel_size_list_must_match_the_spatial_dims():
    layer = ConvSpec(
        kind="conv2d", in_features=4, out_features=4, kernel_size=(3, 3, 3)
    )
    problem = problem_of(Spec(dims={}, layers=(layer,)))

    assert problem.path == ("layers", 0, "kernel_size")
    assert "takes 2 kernel sizes" in problem.message


def test_d_model_must_divide_by_heads_when_d_head_is_omitted():
    problem = problem_of(Spec(dims={}, layers=(AttentionSpec(d_model=100, n_heads=3),)))

    assert problem.path == ("layers", 0, "n_heads")
    assert "d_model (100)" in problem.message and "give d_head" in problem.message


def test_heads_must_divide_by_kv_heads():
    layer = AttentionSpec(d_model=64, n_heads=8, n_kv_heads=3)
    problem = problem_of(Spec(dims={}, layers=(layer,)))

    assert problem.path == ("layers", 0, "n_kv_heads")
    assert "n_heads (8)" in problem.message


def test_duplicate_names_within_a_parent():
    spec = Spec(
        dims={},
        layers=(
            LinearSpec(name="fc", in_features=2, out_features=2),
            LinearSpec(name="fc", in_features=2, out_features=2),
        ),
    )
    problem = problem_of(spec)

    assert problem.path == ("layers", 1, "name")
    assert 'duplicate name "fc"' in problem.message
    assert "layers/0" in problem.message


def test_unnamed_groups_share_their_parent_namespace():
    # Two pre-norm groups without names both call their norm "norm".
    block = ResidualGroup(
        norm="pre", layers=(LinearSpec(name="a", in_features=2, out_features=2),)
    )
    other = ResidualGroup(
        norm="pre", layers=(LinearSpec(name="b", in_features=2, out_features=2),)
    )
    problem = problem_of(Spec(dims={}, layers=(block, other)))

    assert problem.path == ("layers", 1, "norm_layer", "name")
    assert 'duplicate name "norm"' in problem.message


def test_same_names_in_different_parents_are_fine():
    spec = Spec(
        dims={},
        layers=(
            SequentialGroup(
                name="a", layers=(LinearSpec(name="fc", in_features=2, out_features=2),)
            ),
            SequentialGroup(
                name="b", layers=(LinearSpec(name="fc", in_features=2, out_features=2),)
            ),
        ),
    )

    assert [p.name for p in expand(spec).parameters][::2] == [
        "a.fc.weight",
        "b.fc.weight",
    ]


def test_names_are_single_path_segments():
    problem = problem_of(
        Spec(dims={}, layers=(LinearSpec(name="a.b", in_features=2, out_features=2),))
    )

    assert problem.path == ("layers", 0, "name")
    assert "no dots" in problem.message


def test_tied_to_an_unknown_layer_suggests_the_closest():
    spec = Spec(
        dims={},
        layers=(
            EmbeddingSpec(name="wte", in_features=10, out_features=4),
            LinearSpec(
                name="head", in_features=4, out_features=10, bias=False, tied_to="wt"
            ),
        ),
    )
    problem = problem_of(spec)

    assert problem.path == ("layers", 1, "tied_to")
    assert '"wt" names no layer' in problem.message
    assert 'did you mean "wte"?' in problem.message


def test_tied_shapes_must_agree_and_both_are_named():
    spec = Spec(
        dims={},
        layers=(
            EmbeddingSpec(name="wte", in_features=10, out_features=4),
            LinearSpec(
                name="head", in_features=10, out_features=4, bias=False, tied_to="wte"
            ),
        ),
    )
    problem = problem_of(spec)

    assert problem.path == ("layers", 1, "tied_to")
    assert "[4, 10]" in problem.message and "[10, 4]" in problem.message


def test_a_layer_cannot_be_tied_to_itself():
    layer = LinearSpec(name="fc", in_features=4, out_features=4, tied_to="fc")
    problem = problem_of(Spec(dims={}, layers=(layer,)))

    assert problem.path == ("layers", 0, "tied_to")
    assert 'leads back to "fc"' in problem.message


def test_in_out_layout_only_on_two_dimensional_weights():
    conv = ConvSpec(
        kind="conv2d", in_features=4, out_features=4, kernel_size=3, layout="in_out"
    )
    norm = NormSpec(kind="layer_norm", name="ln", in_features=4, layout="in_out")
    with pytest.raises(InvalidInput) as raised:
        expand(Spec(dims={}, layers=(conv, norm)))

    paths = [p.path for p in raised.value.problems]
    assert paths == [("layers", 0, "layout"), ("layers", 1, "layout")]
    assert "4 dims" in raised.value.problems[0].message


def test_embeddings_take_no_bias():
    layer = EmbeddingSpec(in_features=10, out_features=4, bias=True)
    problem = problem_of(Spec(dims={}, layers=(layer,)))

    assert problem.path == ("layers", 0, "bias")
    assert "an embedding has no bias" in problem.message


def test_embeddings_and_norms_keep_the_activation_that_follows_them():
    # The gain an initializer of the table may use, as in PyTorch's
    # kaiming_normal_(embedding.weight, nonlinearity="relu").
    layers = (
        EmbeddingSpec(
            name="emb", in_features=10, out_features=4, activation=Activation("relu")
        ),
        NormSpec(
            kind="batch_norm", name="bn", in_features=4, activation=Activation("relu")
        ),
    )
    parameters = by_name(expand(Spec(dims={}, layers=layers)))

    assert parameters["emb.weight"].activation == Activation("relu")
    assert parameters["bn.bias"].activation == Activation("relu")


def test_norm_keeps_its_size_and_rms_norm_has_no_bias():
    wrong_out = NormSpec(kind="layer_norm", in_features=8, out_features=4)
    rms_bias = NormSpec(kind="rms_norm", in_features=8, bias=True)
    with pytest.raises(InvalidInput) as raised:
        expand(Spec(dims={}, layers=(wrong_out, rms_bias)))

    problems = raised.value.problems
    assert [p.path for p in problems] == [("layers", 0, "out"), ("layers", 1, "bias")]
    assert "out must equal in (8)" in problems[0].message


def test_groups_need_layers():
    problem = problem_of(
        Spec(dims={}, layers=(RepeatGroup(name="r", count=2, layers=()),))
    )

    assert problem.path == ("layers", 0, "layers")
    assert "at least one layer" in problem.message


# --- Properties -----------------------------------------------------------------

widths = st.lists(st.integers(min_value=1, max_value=4096), min_size=2, max_size=12)


@settings(max_examples=60, deadline=None)
@given(widths=widths, biases=st.lists(st.booleans(), min_size=11, max_size=11))
def test_mlp_parameter_count_is_the_sum_of_its_layers(widths, biases):
    pairs = list(zip(widths, widths[1:], strict=False))
    layers = tuple(
        LinearSpec(in_features=fan_in, out_features=fan_out, bias=bias)
        for (fan_in, fan_out), bias in zip(pairs, biases, strict=False)
    )
    expanded = expand(Spec(dims={}, layers=layers))

    expected = sum(
        fan_in * fan_out + (fan_out if bias else 0)
        for (fan_in, fan_out), bias in zip(pairs, biases, strict=False)
    )
    assert expanded.parameter_count == expected
    weights = [p for p in expanded.parameters if p.tensor == "weight"]
    assert [p.shape for p in weights] == [
        (fan_out, fan_in) for fan_in, fan_out in pairs
    ]
    assert [p.name for p in weights] == [
        f"{index}.weight" for index in range(len(pairs))
    ]


@settings(max_examples=40, deadline=None)
@given(
    width=st.integers(min_value=1, max_value=512),
    count=st.integers(min_value=1, max_value=50),
    norm=st.sampled_from(["pre", "post", "none"]),
)
def test_repeated_residual_blocks_scale_linearly(width, count, norm):
    block = ResidualGroup(
        norm=norm,
        layers=(
            LinearSpec(name="up", in_features=width, out_features=4 * width),
            LinearSpec(name="down", in_features=4 * width, out_features=width),
        ),
    )
    expanded = expand(
        Spec(dims={}, layers=(RepeatGroup(name="h", count=count, layers=(block,)),))
    )

    per_block = (
        2 * (4 * width * width)
        + 4 * width
        + width
        + (2 * width if norm != "none" else 0)
    )
    assert expanded.parameter_count == count * per_block
    assert expanded.residual_branch_count == count
    outputs = [
        p.name
        for p in expanded.parameters
        if p.residual and p.residual.is_branch_output
    ]
    assert outputs == [
        f"h.{i}.down.{t}" for i in range(count) for t in ("weight", "bias")
    ]


def test_wrong_python_types_are_field_problems_not_crashes():
    layers = (
        LinearSpec(in_features=2, out_features=2, bias="yes"),
        ConvSpec(kind="conv4d", in_features=2, out_features=2, kernel_size=1),
        LinearSpec(in_features=2, out_features=2, tied_to=3),
        AttentionSpec(d_model=4, n_heads=2, fused_qkv=1),
        ResidualGroup(
            norm="pre",
            norm_layer=NormLayerSpec(bias="no"),
            layers=(LinearSpec(name="a", in_features=2, out_features=2),),
        ),
    )
    with pytest.raises(InvalidInput) as raised:
        expand(Spec(dims={}, layers=layers))

    assert [p.path for p in raised.value.problems] == [
        ("layers", 0, "bias"),
        ("layers", 1, "kind"),
        ("layers", 2, "tied_to"),
        ("layers", 3, "fused_qkv"),
        ("layers", 4, "norm_layer", "bias"),
    ]
    assert 'got "yes"' in raised.value.problems[0].message


# --- hardening: limits counted with every copy, widths of residual groups -----


def test_defaults_bound_tensors_parameters_and_override_work():
    limits = SpecLimits()

    assert limits.max_parameter_tensors == 20_000
    assert limits.max_parameters == 10**13
    assert limits.max_overrides == 256
    assert limits.max_override_matches == 2_000_000


def test_three_nested_repeats_report_the_tensors_of_every_copy():
    layers = (LinearSpec(in_features=4, out_features=4),)
    for name in ("c", "b", "a"):
        layers = (RepeatGroup(name=name, count=10_000, layers=layers),)

    with pytest.raises(LimitExceeded) as raised:
        expand(Spec(dims={}, layers=layers))

    problem = one_problem(raised.value)
    assert problem.path == ("layers", 0, "layers", 0, "layers", 0)
    assert "expands to 2000000000000 parameter tensors" in problem.message
    assert "(2 per copy × 10000 copies × 100000000 copies made by the repeats" in (
        problem.message
    )


def test_a_layer_too_large_to_hold_is_refused_naming_max_parameters():
    huge = 2**31 - 1
    conv = ConvSpec(
        kind="conv3d",
        in_features=huge,
        out_features=huge,
        kernel_size=huge,
        groups=1,
    )

    with pytest.raises(LimitExceeded) as raised:
        expand(Spec(dims={}, layers=(conv,)))

    assert raised.value.limit == "max_parameters"
    assert raised.value.limit_value == 10**13
    problem = one_problem(raised.value)
    assert problem.path == ("layers", 0)
    # (2^31 − 1)^5 weights plus 2^31 − 1 biases, about 4.57e46.
    assert "a layer that holds 4.57e+46 parameters" in problem.message


def test_parameters_count_every_copy_of_a_repeat():
    block = RepeatGroup(
        name="h", count=1000, layers=(LinearSpec(in_features=1000, out_features=1000),)
    )

    with pytest.raises(LimitExceeded) as raised:
        expand(Spec(dims={}, layers=(block,)), SpecLimits(max_parameters=10**9))

    problem = one_problem(raised.value)
    assert raised.value.limit == "max_parameters"
    assert "holds 1001000000 parameters (1001000 per copy × 1000 copies)" in (
        problem.message
    )


def test_a_residual_branch_that_changes_the_width_is_refused_at_its_out():
    group = ResidualGroup(
        norm="none", layers=(LinearSpec(name="a", in_features=4, out_features=8),)
    )

    problem = problem_of(Spec(dims={}, layers=(group,)))

    assert problem.path == ("layers", 0, "layers", 0, "out")
    assert problem.message == (
        "x + f(x) adds a residual branch's output to its input, so the branch must"
        " end at its input's width, 4; got 8 from its last layer: end the branch at"
        " width 4, or add a shortcut that projects 4 → 8"
    )


def test_the_end_of_a_nested_branch_is_found_inside_its_groups():
    attention = AttentionSpec(d_model=16, n_heads=2)
    mlp = SequentialGroup(
        name="mlp",
        layers=(
            LinearSpec(name="up", in_features=8, out_features=32),
            GatedMlpSpec(name="inner", d_model=32, d_ff=64),
            LinearSpec(name="down", in_features=32, out_features=4),
        ),
    )
    group = ResidualGroup(norm="pre", layers=(mlp,))
    wrong_attention = ResidualGroup(
        norm="pre",
        name="attn",
        layers=(
            LinearSpec(name="project", in_features=8, out_features=16),
            attention,
        ),
    )

    with pytest.raises(InvalidInput) as raised:
        expand(Spec(dims={}, layers=(group, wrong_attention)))

    paths = [problem.path for problem in raised.value.problems]
    assert paths == [
        ("layers", 0, "layers", 0, "layers", 2, "out"),
        ("layers", 1, "layers", 1, "d_model"),
    ]


def test_a_shortcut_that_maps_the_widths_makes_the_branch_valid():
    def group(shortcut_in: int, shortcut_out: int) -> ResidualGroup:
        return ResidualGroup(
            norm="none",
            layers=(LinearSpec(name="a", in_features=4, out_features=8),),
            shortcut=(
                LinearSpec(name="s", in_features=shortcut_in, out_features=6),
                LinearSpec(name="t", in_features=6, out_features=shortcut_out),
            ),
        )

    assert expand(Spec(dims={}, layers=(group(4, 8),))).parameter_count == (
        40 + 30 + 56
    )
    with pytest.raises(InvalidInput) as raised:
        expand(Spec(dims={}, layers=(group(5, 9),)))
    problems = {problem.path: problem.message for problem in raised.value.problems}
    assert set(problems) == {
        ("layers", 0, "shortcut", 0, "in"),
        ("layers", 0, "shortcut", 1, "out"),
    }
    first, last = (
        ("layers", 0, "shortcut", 0, "in"),
        ("layers", 0, "shortcut", 1, "out"),
    )
    assert (
        "must take that width, 4 (the branch's first layer's in); got 5"
        in (problems[first])
    )
    assert "must give the branch's output width, 8; got 9" in problems[last]


def test_layers_that_do_not_chain_outside_a_residual_stay_accepted():
    # GPT-2's position embedding is added to the token embedding: 1024 → 768
    # follows 50257 → 768 without chaining, and must not be refused.
    expanded = expand(gpt2_small())

    assert expanded.parameter_count == 124_439_808


def test_a_long_name_is_quoted_once_and_cut():
    name = "x" * 100_000

    problem = problem_of(
        Spec(dims={}, layers=(LinearSpec(name=name, in_features=2, out_features=2),))
    )

    assert problem.path == ("layers", 0, "name")
    assert len(problem.message) < 300
    assert problem.message.count("xxxxxxxxxx") == 7
    assert problem.message.endswith('got "' + "x" * 78 + "…")
