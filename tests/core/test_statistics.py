"""initlab.core.statistics: the network both engines read, the budget, summaries."""

from __future__ import annotations

import math

import pytest

from initlab.core.errors import InvalidInput
from initlab.core.network import Attention, Dense, Embedding, GatedMlp, Norm, Residual
from initlab.core.recommend import recommend
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
    expand,
)
from initlab.core.statistics import build_network
from initlab.core.types import Activation, LayerNode, ResidualNode, SchemeChoice

RELU = Activation("relu")


def linear(n_in, n_out, activation=RELU, **fields):
    return LinearSpec(
        in_features=n_in, out_features=n_out, activation=activation, **fields
    )


def network_of(*layers, scheme="kaiming_normal", overrides=(), dims=None, **options):
    expanded = expand(Spec(dims or {}, tuple(layers)))
    result = recommend(expanded, SchemeChoice(scheme, options), overrides)
    return build_network(expanded, result)


def refusal(*layers, **kwargs) -> InvalidInput:
    with pytest.raises(InvalidInput) as caught:
        network_of(*layers, **kwargs)
    return caught.value


# --- The layer tree of an expanded spec ------------------------------------------


def test_expansion_keeps_residual_groups_nested_and_repeats_flat():
    spec = Spec(
        {},
        (
            linear(8, 16, name="stem"),
            RepeatGroup(
                name="h",
                count=2,
                layers=(
                    ResidualGroup(
                        norm="pre",
                        norm_layer=NormLayerSpec(kind="rms_norm", name="ln"),
                        layers=(linear(16, 32, name="fc"), linear(32, 16, None)),
                    ),
                ),
            ),
        ),
    )

    structure = expand(spec).structure

    assert [type(node) for node in structure] == [
        LayerNode,
        ResidualNode,
        ResidualNode,
    ]
    stem, first, second = structure
    assert (stem.name, stem.kind, stem.path, stem.parameters) == (
        "stem",
        "linear",
        ("layers", 0),
        (0, 1),
    )
    assert first.name == "h.0" and second.name == "h.1"
    assert first.norm == "pre" and first.norm_layer.name == "h.0.ln"
    assert [node.name for node in first.branch] == ["h.0.fc", "h.0.1"]
    assert first.branch[0].path == ("layers", 1, "layers", 0, "layers", 0)
    assert second.branch[1].parameters == (10, 11)


def test_expansion_records_attention_heads():
    spec = Spec(
        {},
        (AttentionSpec(name="attn", d_model=64, n_heads=8, n_kv_heads=2),),
    )

    (node,) = expand(spec).structure

    assert node.kind == "attention" and node.heads == (8, 2, 8)
    assert node.parameters == tuple(range(8))


# --- build_network ---------------------------------------------------------------


def test_mlp_becomes_dense_blocks_with_their_draws():
    network = network_of(
        linear(784, 256, name="fc1"),
        linear(256, 10, None, name="fc2", bias=False),
    )

    fc1, fc2 = network.blocks
    assert network.input_width == 784 and network.spatial_dims == 0
    assert (fc1.name, fc1.in_width, fc1.out_width, fc1.fan_in) == ("fc1", 784, 256, 784)
    assert fc1.weight.distribution == "normal"
    assert fc1.weight.std == pytest.approx(math.sqrt(2 / 784), rel=1e-15)
    assert fc1.bias.distribution == "constant" and fc1.bias.second_moment == 0.0
    assert fc1.activation == RELU
    assert fc2.bias is None and fc2.activation.name == "identity"


def test_uniform_and_truncated_draws_keep_their_shape():
    network = network_of(
        linear(100, 100, name="a"),
        linear(100, 100, name="b"),
        scheme="torch_default",
        overrides=[("b.weight", SchemeChoice("trunc_normal", {"std": 0.1}))],
    )

    a, b = network.blocks
    assert a.weight.distribution == "uniform"
    assert a.weight.bound == pytest.approx(0.1, rel=1e-15)
    assert a.weight.second_moment == pytest.approx(0.01 / 3, rel=1e-14)
    assert a.bias.distribution == "uniform"
    assert b.weight.distribution == "truncated_normal"
    assert b.weight.truncation == (-2.0, 2.0, 0.1)


def test_conv_fan_in_counts_channels_per_group_and_kernel_taps():
    network = network_of(
        ConvSpec(
            kind="conv2d", in_features=16, out_features=32, kernel_size=3, name="c1"
        ),
        ConvSpec(
            kind="conv2d",
            in_features=32,
            out_features=32,
            kernel_size=(3, 5),
            groups=4,
            name="c2",
        ),
    )

    c1, c2 = network.blocks
    assert network.spatial_dims == 2
    assert c1.fan_in == 16 * 9 and c1.kernel_size == (3, 3)
    assert c2.fan_in == 8 * 15 and c2.groups == 4


def test_gpt2_blocks_embeddings_and_groups():
    spec = Spec(
        {"d": 64},
        (
            EmbeddingSpec(name="wte", in_features=100, out_features="d"),
            EmbeddingSpec(name="wpe", in_features=16, out_features="d"),
            RepeatGroup(
                name="h",
                count=2,
                layers=(
                    ResidualGroup(
                        norm="pre",
                        norm_layer=NormLayerSpec(name="ln_1"),
                        layers=(
                            AttentionSpec(
                                name="attn", d_model="d", n_heads=4, fused_qkv=True
                            ),
                        ),
                    ),
                    ResidualGroup(
                        norm="pre",
                        norm_layer=NormLayerSpec(name="ln_2"),
                        layers=(
                            SequentialGroup(
                                name="mlp",
                                layers=(
                                    linear("d", 256, Activation("gelu"), name="c_fc"),
                                    linear(256, "d", None, name="c_proj"),
                                ),
                            ),
                        ),
                    ),
                ),
            ),
            NormSpec(kind="layer_norm", name="ln_f", in_features="d"),
            linear("d", 100, None, name="lm_head", bias=False, tied_to="wte"),
        ),
    )
    expanded = expand(spec)
    network = build_network(expanded, recommend(expanded, SchemeChoice("gpt2")))

    embedding, *groups, ln_f, lm_head = network.blocks
    assert isinstance(embedding, Embedding)
    assert embedding.names == ("wte", "wpe") and embedding.width == 64
    assert [table.std for table in embedding.tables] == [0.02, 0.02]
    assert [group.name for group in groups] == ["h.0[0]", "h.0[1]", "h.1[0]", "h.1[1]"]
    attention_group = groups[0]
    assert isinstance(attention_group, Residual)
    assert attention_group.placement == "pre"
    assert attention_group.norm.name == "h.0.ln_1"
    (attention,) = attention_group.branch
    assert isinstance(attention, Attention)
    assert (attention.n_heads, attention.n_kv_heads, attention.d_head) == (4, 4, 16)
    assert [attention.q.name, attention.k.name, attention.v.name] == [
        "h.0.attn.q",
        "h.0.attn.k",
        "h.0.attn.v",
    ]
    assert attention.q.out_width == 64 and attention.q.weight.std == 0.02
    assert attention.o.weight.std == pytest.approx(0.02 / math.sqrt(4), rel=1e-15)
    c_fc, c_proj = groups[1].branch
    assert c_fc.activation.name == "gelu" and c_proj.out_width == 64
    assert isinstance(ln_f, Norm) and ln_f.kind == "layer_norm"
    assert isinstance(lm_head, Dense) and lm_head.weight.std == 0.02


def test_grouped_query_attention_and_gated_mlp():
    network = network_of(
        ResidualGroup(
            norm="pre",
            norm_layer=NormLayerSpec(kind="rms_norm", name="norm_1"),
            layers=(AttentionSpec(name="attn", d_model=64, n_heads=8, n_kv_heads=2),),
        ),
        ResidualGroup(
            norm="pre",
            norm_layer=NormLayerSpec(kind="rms_norm", name="norm_2"),
            layers=(GatedMlpSpec(name="mlp", d_model=64, d_ff=172),),
        ),
        scheme="auto",
    )

    first, second = network.blocks
    (attention,) = first.branch
    assert attention.k.out_width == 16 and attention.v.out_width == 16
    assert attention.o.in_width == 64 and attention.o.fan_in == 64
    assert first.norm.bias is None
    (mlp,) = second.branch
    assert isinstance(mlp, GatedMlp)
    assert mlp.gate.activation.name == "silu" and mlp.up.activation.name == "identity"
    assert (mlp.down.in_width, mlp.down.out_width) == (172, 64)
    assert [first.name, second.name] == ["residual[0]", "residual[1]"]


def test_projection_shortcut_and_post_norm():
    network = network_of(
        ResidualGroup(
            name="down",
            layers=(linear(32, 64, name="fc1"), linear(64, 64, None, name="fc2")),
            shortcut=(linear(32, 64, None, name="proj", bias=False),),
        ),
        ResidualGroup(
            name="block",
            norm="post",
            norm_layer=NormLayerSpec(kind="batch_norm", name="bn"),
            layers=(linear(64, 64, None, name="fc"),),
        ),
    )

    down, block = network.blocks
    assert down.name == "down" and down.placement == "none" and down.norm is None
    assert [layer.name for layer in down.branch] == ["down.fc1", "down.fc2"]
    assert [layer.name for layer in down.shortcut] == ["down.proj"]
    assert block.placement == "post"
    assert block.norm.width == 64 and block.norm.kind == "batch_norm"


# --- What the engines cannot model is refused, at the layer's path ---------------


def test_a_layer_that_does_not_read_the_width_before_it_is_refused():
    error = refusal(linear(10, 20, name="a"), linear(30, 5, name="b"))

    (problem,) = error.problems
    assert problem.path == ("layers", 1)
    assert "b reads 30 features but a gives 20" in problem.message
    assert "make its in 20" in problem.message


def test_a_branch_that_changes_the_width_needs_a_shortcut():
    error = refusal(
        ResidualGroup(name="r", layers=(linear(16, 32),)),
    )

    (problem,) = error.problems
    assert problem.path == ("layers", 0)
    assert "the branch ends with 32 features but its input has 16" in problem.message
    assert "projection shortcut" in problem.message


def test_an_embedding_after_the_first_layers_is_refused():
    error = refusal(
        linear(8, 8, name="fc"),
        EmbeddingSpec(name="emb", in_features=100, out_features=8),
    )

    assert error.problems[0].path == ("layers", 1)
    assert "embedding after the first layers" in error.problems[0].message


def test_nonzero_mean_biases_are_refused_naming_the_tensor_and_the_mean():
    error = refusal(
        linear(8, 8, name="fc"),
        overrides=[("fc.bias", SchemeChoice("constant", {"value": 0.1}))],
    )

    (problem,) = error.problems
    assert problem.path == ("layers", 0) and problem.value == 0.1
    assert "fc.bias is drawn with mean 0.1" in problem.message


def test_an_activation_on_a_norm_layer_is_refused():
    error = refusal(
        linear(8, 8, None, name="fc"),
        NormSpec(kind="layer_norm", in_features=8, activation=RELU, name="ln"),
    )

    assert error.problems[0].path == ("layers", 1)
    assert "put the activation on that layer" in error.problems[0].message


def test_convolutions_of_two_dimensionalities_are_refused():
    error = refusal(
        ConvSpec(kind="conv1d", in_features=4, out_features=4, kernel_size=3),
        ConvSpec(kind="conv2d", in_features=4, out_features=4, kernel_size=3),
    )

    assert error.problems[0].path == ("layers", 1)
    assert "different dimensionality" in error.problems[0].message


def test_every_problem_is_reported_at_once():
    error = refusal(
        linear(10, 20, name="a"),
        linear(30, 40, name="b"),
        linear(50, 5, name="c"),
    )

    assert [problem.path for problem in error.problems] == [
        ("layers", 1),
        ("layers", 2),
    ]
