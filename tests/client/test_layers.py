"""Specs built in Python: the example files, object for object, and their answers."""

from __future__ import annotations

import json
from pathlib import Path

import numpy
import pytest

from initlab_client import Client, Spec, layers

REPO_ROOT = Path(__file__).resolve().parents[2]
GPT2_DIMS = {
    "vocab": 50257,
    "n_positions": 1024,
    "d_model": 768,
    "d_ff": 3072,
    "n_layer": 12,
    "n_head": 12,
}


def gpt2_small() -> Spec:
    block = [
        layers.residual(
            [
                layers.attention(
                    "d_model",
                    "n_head",
                    name="attn",
                    fused_qkv=True,
                    bias=True,
                    layout="in_out",
                )
            ],
            norm="pre",
            norm_kind="layer_norm",
            norm_name="ln_1",
        ),
        layers.residual(
            [
                layers.sequential(
                    [
                        layers.linear(
                            "d_model",
                            "d_ff",
                            name="c_fc",
                            activation="gelu_tanh",
                            layout="in_out",
                        ),
                        layers.linear(
                            "d_ff", "d_model", name="c_proj", layout="in_out"
                        ),
                    ],
                    name="mlp",
                )
            ],
            norm="pre",
            norm_kind="layer_norm",
            norm_name="ln_2",
        ),
    ]
    return Spec.build(
        dims=GPT2_DIMS,
        layers=[
            layers.embedding("vocab", "d_model", name="wte"),
            layers.embedding("n_positions", "d_model", name="wpe"),
            layers.repeat("n_layer", block, name="h"),
            layers.norm("d_model", name="ln_f"),
            layers.linear(
                "d_model", "vocab", name="lm_head", bias=False, tied_to="wte"
            ),
        ],
    )


def read_example(name: str) -> dict:
    return json.loads((REPO_ROOT / "examples" / name).read_text())


def test_gpt2_small_built_in_python_is_the_example_file() -> None:
    assert gpt2_small() == read_example("gpt2-small.spec.json")


def test_the_mlp_example_built_in_python() -> None:
    mlp = Spec.build(
        dims={"d_in": 784, "d_hidden": 256, "n_classes": 10},
        layers=[
            layers.linear("d_in", "d_hidden", name="fc1", activation="relu"),
            layers.linear("d_hidden", "d_hidden", name="fc2", activation="relu"),
            layers.linear("d_hidden", "n_classes", name="fc3"),
        ],
    )

    assert mlp == read_example("mlp-3layer.spec.json")
    assert isinstance(mlp, Spec)


def test_llama_2_7b_built_in_python_is_the_example_file() -> None:
    example = read_example("llama-2-7b.spec.json")
    block = [
        layers.residual(
            [
                layers.attention(
                    "d_model",
                    "n_head",
                    name="self_attn",
                    n_kv_heads="n_kv_head",
                    bias=False,
                )
            ],
            norm="pre",
            norm_kind="rms_norm",
            norm_name="input_layernorm",
        ),
        layers.residual(
            [layers.gated_mlp("d_model", "d_ff", name="mlp", activation="silu")],
            norm="pre",
            norm_kind="rms_norm",
            norm_name="post_attention_layernorm",
        ),
    ]
    model = layers.sequential(
        [
            layers.embedding("vocab", "d_model", name="embed_tokens"),
            layers.repeat("n_layer", block, name="layers"),
            layers.norm("d_model", "rms_norm", name="norm"),
        ],
        name="model",
    )
    built = Spec.build(
        dims=example["dims"],
        layers=[
            model,
            layers.linear("d_model", "vocab", name="lm_head", bias=False),
        ],
    )

    assert built == example


def test_a_resnet_bottleneck_with_a_projection_shortcut() -> None:
    block = layers.residual(
        [
            layers.conv(64, 64, 1, name="conv1", bias=False, activation="relu"),
            layers.conv(64, 64, [3, 3], name="conv2", bias=False, groups=1),
            layers.conv(64, 256, 1, name="conv3", bias=False),
        ],
        norm="none",
        shortcut=[layers.conv(64, 256, 1, name="downsample", bias=False)],
        name="layer1",
    )

    assert block == {
        "kind": "residual",
        "name": "layer1",
        "norm": "none",
        "layers": [
            {
                "kind": "conv2d",
                "name": "conv1",
                "in": 64,
                "out": 64,
                "kernel_size": 1,
                "activation": "relu",
                "bias": False,
            },
            {
                "kind": "conv2d",
                "name": "conv2",
                "in": 64,
                "out": 64,
                "kernel_size": [3, 3],
                "bias": False,
                "groups": 1,
            },
            {
                "kind": "conv2d",
                "name": "conv3",
                "in": 64,
                "out": 256,
                "kernel_size": 1,
                "bias": False,
            },
        ],
        "shortcut": [
            {
                "kind": "conv2d",
                "name": "downsample",
                "in": 64,
                "out": 256,
                "kernel_size": 1,
                "bias": False,
            }
        ],
    }


def test_numpy_sizes_become_json_integers() -> None:
    layer = layers.linear(numpy.int64(784), numpy.int32(256))

    assert layer == {"kind": "linear", "in": 784, "out": 256}
    assert type(layer["in"]) is int
    assert json.loads(json.dumps(layer)) == layer


@pytest.mark.parametrize(
    ("build", "error", "message"),
    [
        (
            lambda: layers.linear(784.0, 256),
            TypeError,
            r"in must be a positive integer",
        ),
        (lambda: layers.linear(True, 256), TypeError, r"in must be .* got True"),
        (lambda: layers.conv(3, 64, 3, dimensions=4), ValueError, r"conv4d"),
        (lambda: layers.norm(768, "group_norm"), ValueError, r"layer_norm, rms_norm"),
        (lambda: layers.residual([], norm="middle"), ValueError, r"pre, post, none"),
        (
            lambda: layers.repeat(12, layers.linear(4, 4)),
            TypeError,
            r"layers must be a list; got dict",
        ),
        (lambda: layers.sequential("fc1"), TypeError, r"must be a list"),
        (lambda: layers.linear(4, 4, bias="yes"), TypeError, r"bias must be True"),
        (lambda: layers.linear(4, 4, layout="io"), ValueError, r"out_in, in_out"),
        (lambda: Spec.build([], dims={"d": "768"}), TypeError, r"dims\['d'\]"),
    ],
)
def test_mistakes_are_caught_before_any_request(build, error, message) -> None:
    with pytest.raises(error, match=message):
        build()


@pytest.mark.server
def test_the_service_counts_gpt2_small_built_in_python(live_server_url: str) -> None:
    with Client(live_server_url) as client:
        answer = client.recommend(gpt2_small(), scheme="gpt2")

    # GPT-2 small: 124,439,808 parameters with the readout tied to wte.
    assert answer.parameter_count == 124_439_808
    attention_output = answer.by_name("h.11.attn.o.weight")
    assert attention_output.std == pytest.approx(0.02 / (2 * 12) ** 0.5, rel=1e-12)
