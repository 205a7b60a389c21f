"""The example specs in examples/: they load, expand to the published counts and
agree with the public configurations they were written from."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from initlab.core.spec import expand
from initlab.web.schemas.spec import load_spec

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"

# spec file: (parameters, parameter tensors, residual branches)
EXPECTED = {
    "gpt2-small.spec.json": (124_439_808, 149, 24),
    "llama-2-7b.spec.json": (6_738_415_616, 291, 64),
    "resnet50.spec.json": (25_557_032, 161, 16),
    "mlp-3layer.spec.json": (784 * 256 + 256 + 256 * 256 + 256 + 256 * 10 + 10, 6, 0),
}


def read(name: str) -> dict:
    return json.loads((EXAMPLES / name).read_text(encoding="utf-8"))


def expanded(name: str):
    return expand(load_spec(read(name)))


def by_name(name: str) -> dict:
    return {parameter.name: parameter for parameter in expanded(name).parameters}


def test_every_example_is_checked():
    assert sorted(p.name for p in EXAMPLES.glob("*.spec.json")) == sorted(EXPECTED)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_example_counts(name):
    result = expanded(name)
    parameters, tensors, branches = EXPECTED[name]

    assert result.parameter_count == parameters
    assert len(result.parameters) == tensors
    assert result.residual_branch_count == branches


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_readme_lists_each_example_with_its_count(name):
    readme = (EXAMPLES / "README.md").read_text(encoding="utf-8")
    row = next(line for line in readme.splitlines() if f"`{name}`" in line)

    assert f"{EXPECTED[name][0]:,}" in row


def test_gpt2_dims_come_from_the_hugging_face_config():
    config = read("hf/gpt2-small.json")
    dims = read("gpt2-small.spec.json")["dims"]

    assert dims == {
        "vocab": config["vocab_size"],
        "n_positions": config["n_positions"],
        "d_model": config["n_embd"],
        # n_inner null means 4·n_embd in GPT2MLP.
        "d_ff": config["n_inner"] or 4 * config["n_embd"],
        "n_layer": config["n_layer"],
        "n_head": config["n_head"],
    }
    assert config["activation_function"] == "gelu_new"  # written as gelu_tanh


def test_gpt2_parameters():
    parameters = by_name("gpt2-small.spec.json")

    assert parameters["h.0.attn.qkv.weight"].shape == (2304, 768)
    assert parameters["h.0.attn.qkv.weight"].layout == "in_out"
    assert parameters["h.11.mlp.c_fc.weight"].activation.name == "gelu_tanh"
    assert parameters["lm_head.weight"].tied_to == "wte.weight"
    assert parameters["h.7.attn.o.weight"].residual.is_branch_output
    assert parameters["h.7.mlp.c_proj.weight"].residual.is_branch_output


def test_llama_dims_come_from_the_hugging_face_config():
    config = read("hf/llama-2-7b.json")
    dims = read("llama-2-7b.spec.json")["dims"]

    assert dims == {
        "vocab": config["vocab_size"],
        "d_model": config["hidden_size"],
        "d_ff": config["intermediate_size"],
        "n_layer": config["num_hidden_layers"],
        "n_head": config["num_attention_heads"],
        "n_kv_head": config["num_key_value_heads"],
    }
    assert config["hidden_act"] == "silu"
    assert config["tie_word_embeddings"] is False


def test_llama_parameters():
    parameters = by_name("llama-2-7b.spec.json")

    assert parameters["model.embed_tokens.weight"].shape == (32000, 4096)
    assert parameters["model.layers.31.self_attn.k.weight"].shape == (4096, 4096)
    assert parameters["model.layers.0.mlp.gate.weight"].shape == (11008, 4096)
    assert parameters["model.layers.0.mlp.down.weight"].residual.is_branch_output
    assert parameters["model.layers.0.input_layernorm.weight"].shape == (4096,)
    assert "model.layers.0.input_layernorm.bias" not in parameters
    assert parameters["lm_head.weight"].tied_to is None
    assert parameters["lm_head.weight"].is_readout


def test_resnet50_follows_the_torchvision_config():
    config = read("torchvision/resnet50.json")
    spec = read("resnet50.spec.json")
    dims = spec["dims"]
    stages = [item for item in spec["layers"] if item["kind"] == "sequential"]

    assert dims["image_channels"] == config["stem"]["conv"]["in"]
    assert dims["stem_width"] == config["stem"]["conv"]["out"]
    assert dims["num_classes"] == config["num_classes"]
    assert [len(stage["layers"]) for stage in stages] == config["layers"]
    for index, width in enumerate(config["stage_widths"], start=1):
        assert dims[f"stage{index}_width"] == width
        assert dims[f"stage{index}_out"] == config["expansion"] * width


def test_resnet50_parameters_carry_torchvision_names():
    result = expanded("resnet50.spec.json")
    parameters = {p.name: p for p in result.parameters}
    names = list(parameters)

    assert names[:3] == ["conv1.weight", "bn1.weight", "bn1.bias"]
    assert names[-2:] == ["fc.weight", "fc.bias"]
    assert parameters["conv1.weight"].shape == (64, 3, 7, 7)
    assert parameters["layer1.0.downsample.0.weight"].shape == (256, 64, 1, 1)
    assert parameters["layer2.0.conv2.weight"].shape == (128, 128, 3, 3)
    assert parameters["layer4.2.bn3.bias"].shape == (2048,)
    assert parameters["fc.weight"].shape == (1000, 2048)
    assert [p.name for p in result.parameters if p.is_readout] == [
        "fc.weight",
        "fc.bias",
    ]

    # Each bottleneck branch is conv1, conv2, conv3; conv3 is added to the stream.
    conv3 = parameters["layer3.5.conv3.weight"].residual
    assert (conv3.weight_layer_index, conv3.branch_depth) == (2, 3)
    assert conv3.is_branch_output
    assert parameters["layer3.5.bn3.weight"].residual.weight_layer_index == 3
    assert parameters["layer3.0.downsample.0.weight"].residual is None
    downsamples = {
        n for n in names if re.fullmatch(r"layer\d\.\d\.downsample\.0\.weight", n)
    }
    assert downsamples == {
        f"layer{stage}.0.downsample.0.weight" for stage in range(1, 5)
    }


def test_mlp_parameters():
    result = expanded("mlp-3layer.spec.json")

    assert [(p.name, p.shape) for p in result.parameters if p.tensor == "weight"] == [
        ("fc1.weight", (256, 784)),
        ("fc2.weight", (256, 256)),
        ("fc3.weight", (10, 256)),
    ]
    assert [p.activation.name for p in result.parameters][::2] == [
        "relu",
        "relu",
        "identity",
    ]
