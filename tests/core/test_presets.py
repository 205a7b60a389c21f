"""Presets: parameter counts worked out by hand, names, canonical dims, refusals."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from initlab.core.errors import InvalidInput
from initlab.core.importers.presets import (
    PRESETS,
    expand_preset,
    gated_d_ff,
)
from initlab.core.importers.torchvision import import_torchvision
from initlab.core.mup import DepthRule, MupSettings, mup_table
from initlab.core.spec import SpecLimits, expand
from initlab.web.schemas.spec import load_spec

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"

SMALL = {"vocab": 1000, "d_model": 64, "n_layer": 2, "n_heads": 4}


def expanded(name: str, **params):
    return expand(load_spec(expand_preset(name, params).spec, SpecLimits()))


def shapes(name: str, **params) -> dict[str, tuple[int, ...]]:
    return {p.name: p.shape for p in expanded(name, **params).parameters}


def problems(name, params) -> list:
    with pytest.raises(InvalidInput) as caught:
        expand_preset(name, params)
    return caught.value.problems


def example(name: str):
    data = json.loads((EXAMPLES / name).read_text(encoding="utf-8"))
    return expand(load_spec(data, SpecLimits()))


# --- The catalogue -------------------------------------------------------------


def test_the_catalogue_describes_every_parameter():
    assert list(PRESETS) == ["mlp", "resnet", "transformer"]
    for preset in PRESETS.values():
        assert preset.description
        for parameter in preset.parameters:
            assert parameter.description
            assert parameter.allowed


def test_allowed_values_in_words():
    mlp, resnet = PRESETS["mlp"], PRESETS["resnet"]

    assert mlp.parameter("depth").allowed == "an integer from 1 to 10000"
    assert mlp.parameter("norm").allowed == 'one of "none", "layer_norm", "rms_norm"'
    assert mlp.parameter("widths").allowed == (
        "a list of 1 to 1000 integers from 1 to 2147483647"
    )
    assert resnet.parameter("blocks").allowed == "a list of 4 integers from 1 to 1000"
    assert resnet.parameter("depth").allowed == "one of 18, 34, 50, 101, 152"
    assert PRESETS["transformer"].parameter("tied").allowed == "true or false"
    assert PRESETS["transformer"].parameter("n_positions").minimum == 0


def test_catalogue_entries_are_json_data():
    entry = PRESETS["resnet"].as_dict()
    depth, blocks = entry["parameters"][:2]

    assert json.loads(json.dumps(entry)) == entry
    assert depth == {
        "name": "depth",
        "type": "integer",
        "default": 50,
        "allowed": "one of 18, 34, 50, 101, 152",
        "description": PRESETS["resnet"].parameter("depth").description,
        "choices": [18, 34, 50, 101, 152],
    }
    assert blocks["default"] is None
    assert (blocks["min_items"], blocks["max_items"]) == (4, 4)
    assert (blocks["minimum"], blocks["maximum"]) == (1, 1000)
    assert [p["name"] for p in PRESETS["transformer"].as_dict()["parameters"]] == [
        "vocab",
        "n_positions",
        "d_model",
        "n_layer",
        "n_heads",
        "n_kv_heads",
        "d_ff",
        "gated",
        "activation",
        "norm",
        "norm_position",
        "tied",
        "bias",
        "fused_qkv",
    ]


@pytest.mark.parametrize("name", PRESETS)
def test_every_default_is_accepted_when_given(name):
    defaults = {
        p.name: p.default for p in PRESETS[name].parameters if p.default is not None
    }
    if name == "mlp":
        defaults.pop("width")  # width and widths are exclusive; widths is unset
    if name == "resnet":
        defaults.pop("depth")

    assert expanded(name, **defaults).parameter_count > 0


# --- Defaults reproduce published shapes ---------------------------------------


def test_mlp_defaults_are_the_example_mlp():
    ours = expanded("mlp")

    assert ours.parameter_count == 269_322
    assert ours.parameter_count == example("mlp-3layer.spec.json").parameter_count
    assert [p.name for p in ours.parameters] == [
        "input.weight",
        "input.bias",
        "hidden.0.fc.weight",
        "hidden.0.fc.bias",
        "output.weight",
        "output.bias",
    ]


def test_resnet_defaults_are_torchvisions_resnet50():
    assert expand_preset("resnet", {}).spec == import_torchvision("resnet50", {}).spec
    assert expanded("resnet").parameter_count == 25_557_032


@pytest.mark.parametrize(
    ("depth", "count"),
    [(18, 11_689_512), (34, 21_797_672), (101, 44_549_160), (152, 60_192_808)],
)
def test_resnet_depths_are_torchvisions(depth, count):
    assert expanded("resnet", depth=depth).parameter_count == count


def test_resnet_groups_and_widths_reach_torchvisions_variants():
    resnext = expanded("resnet", depth=101, groups=64, width_per_group=4)
    wide = expanded("resnet", width_per_group=128)

    assert resnext.parameter_count == 83_455_272
    assert wide.parameter_count == 68_883_240


def test_transformer_defaults_are_gpt2_small():
    ours = expanded("transformer", fused_qkv=True)
    gpt2 = example("gpt2-small.spec.json")

    assert ours.parameter_count == 124_439_808
    assert [(p.name, p.shape) for p in ours.parameters] == [
        (p.name, p.shape) for p in gpt2.parameters
    ]
    assert expanded("transformer").parameter_count == 124_439_808


# --- Counts by hand ------------------------------------------------------------


def test_small_transformer_counted_by_hand():
    # vocab 1000, d_model 64, 2 layers, 4 heads, d_ff 256, tied, pre layer_norm,
    # biases, 128 learned positions.
    wte, wpe = 1000 * 64, 128 * 64
    layer_norm = 64 + 64
    attention = 4 * (64 * 64 + 64)  # q, k, v, o with biases
    mlp = (64 * 256 + 256) + (256 * 64 + 64)  # c_fc, c_proj
    block = layer_norm + attention + layer_norm + mlp
    ln_f = 64 + 64
    result = expanded("transformer", n_positions=128, **SMALL)

    assert block == 49_984
    assert result.parameter_count == wte + wpe + 2 * block + ln_f == 172_288
    assert result.residual_branch_count == 4
    by_name = {p.name: p for p in result.parameters}
    assert by_name["lm_head.weight"].tied_to == "wte.weight"
    assert by_name["h.1.mlp.c_fc.weight"].shape == (256, 64)
    assert by_name["h.1.attn.o.weight"].residual.is_branch_output
    assert "lm_head.bias" not in by_name


def test_small_transformer_without_positions_and_post_norm():
    no_positions = expanded("transformer", n_positions=0, **SMALL)
    post = expanded("transformer", n_positions=0, norm_position="post", **SMALL)
    post_names = [p.name for p in post.parameters]

    assert no_positions.parameter_count == 172_288 - 128 * 64
    assert "wpe.weight" not in {p.name for p in no_positions.parameters}
    # Post-norm has no final norm: the last block's ln_2 ends the stack.
    assert "ln_f.weight" not in post_names
    assert post.parameter_count == 172_288 - 128 * 64 - (64 + 64)
    assert post_names[1:6] == [
        "h.0.attn.q.weight",
        "h.0.attn.q.bias",
        "h.0.attn.k.weight",
        "h.0.attn.k.bias",
        "h.0.attn.v.weight",
    ]
    assert post_names.index("h.0.ln_1.weight") > post_names.index("h.0.attn.o.bias")


def test_gated_grouped_query_transformer_counted_by_hand():
    # d_head 16, 2 key/value heads: k and v are 2·16 = 32 wide; d_ff is 8/3·64
    # rounded up to 192; RMS norms, no biases, untied head.
    embedding = head = 1000 * 64
    attention = 64 * 64 + 2 * (32 * 64) + 64 * 64
    mlp = 3 * (64 * 192)  # gate, up, down
    block = 64 + attention + 64 + mlp
    result = expanded(
        "transformer",
        n_positions=0,
        n_kv_heads=2,
        gated=True,
        norm="rms_norm",
        bias=False,
        tied=False,
        **SMALL,
    )
    by_name = {p.name: p.shape for p in result.parameters}

    assert block == 49_280
    assert result.parameter_count == embedding + 2 * block + 64 + head == 226_624
    assert by_name["h.0.attn.k.weight"] == (32, 64)
    assert by_name["h.1.mlp.gate.weight"] == (192, 64)
    assert by_name["h.1.mlp.down.weight"] == (64, 192)
    assert "h.0.ln_1.bias" not in by_name


def test_fused_qkv_with_grouped_query_attention():
    fused = shapes("transformer", n_kv_heads=2, fused_qkv=True, **SMALL)

    assert fused["h.0.attn.qkv.weight"] == (64 + 2 * 32, 64)
    assert fused["h.0.attn.qkv.bias"] == (128,)


def test_explicit_d_ff_and_activation():
    imported = expand_preset(
        "transformer", {"d_ff": 100, "activation": "gelu_tanh", **SMALL}
    )
    c_fc = imported.spec["layers"][2]["layers"][1]["layers"][0]["layers"][0]

    assert c_fc == {
        "kind": "linear",
        "name": "c_fc",
        "in": "d_model",
        "out": "d_ff",
        "bias": True,
        "activation": "gelu_tanh",
    }
    assert imported.spec["dims"]["d_ff"] == 100
    assert not any(note.startswith("d_ff =") for note in imported.notes)


@pytest.mark.parametrize(
    ("d_model", "d_ff"), [(64, 192), (96, 256), (768, 2048), (4096, 10944)]
)
def test_gated_d_ff_is_eight_thirds_rounded_up_to_64(d_model, d_ff):
    assert gated_d_ff(d_model) == d_ff


def test_mlp_with_widths_and_residual_counted_by_hand():
    # 10 → [32, 32, 64] → 5: input, then two residual hidden layers (the second
    # widens, so it has a bias-free shortcut), the final norm and the output.
    input_layer = 10 * 32 + 32
    first = (32 + 32) + (32 * 32 + 32)
    second = (32 + 32) + (32 * 64 + 64) + 32 * 64
    tail = (64 + 64) + (64 * 5 + 5)
    result = expanded(
        "mlp",
        d_in=10,
        widths=[32, 32, 64],
        d_out=5,
        norm="layer_norm",
        residual=True,
    )
    by_name = {p.name: p for p in result.parameters}

    assert result.parameter_count == input_layer + first + second + tail == 6_149
    assert result.residual_branch_count == 2
    assert by_name["hidden.1.shortcut.weight"].shape == (64, 32)
    assert "hidden.0.shortcut.weight" not in by_name
    assert by_name["hidden.1.fc.weight"].residual.is_branch_output


def test_mlp_with_one_width_uses_a_repeat_over_n_layer():
    imported = expand_preset(
        "mlp", {"depth": 4, "width": 32, "norm": "rms_norm", "residual": True}
    )
    result = expand(load_spec(imported.spec, SpecLimits()))
    per_layer = 32 + (32 * 32 + 32)  # RMS norm weight, fc

    assert imported.spec["dims"] == {
        "d_in": 784,
        "d_model": 32,
        "n_layer": 3,
        "d_out": 10,
    }
    assert imported.scale_dims == {"d_model": 32, "n_layer": 3}
    assert result.parameter_count == (784 * 32 + 32) + 3 * per_layer + 32 + 330
    assert result.residual_branch_count == 3


def test_mlp_without_residual_puts_norms_before_layers():
    names = list(shapes("mlp", depth=3, norm="layer_norm", bias=False))

    assert names == [
        "input.weight",
        "hidden.0.norm.weight",
        "hidden.0.fc.weight",
        "hidden.1.norm.weight",
        "hidden.1.fc.weight",
        "norm.weight",
        "output.weight",
    ]


def test_mlp_of_one_hidden_layer():
    result = expanded("mlp", d_in=3, width=4, depth=1, d_out=2, activation="tanh")

    assert result.parameter_count == (3 * 4 + 4) + (4 * 2 + 2)
    assert expand_preset("mlp", {"depth": 1}).spec["dims"] == {
        "d_in": 784,
        "d_model": 256,
        "d_out": 10,
    }


def test_mlp_activation_object_is_kept():
    spec = expand_preset(
        "mlp", {"activation": {"name": "leaky_relu", "negative_slope": 0.2}}
    ).spec

    assert spec["layers"][0]["activation"] == {
        "name": "leaky_relu",
        "negative_slope": 0.2,
    }


def test_resnet_blocks_and_width():
    result = shapes("resnet", blocks=[1, 1, 1, 1], width=32)

    assert result["conv1.weight"] == (32, 3, 7, 7)
    assert result["layer4.0.conv3.weight"] == (1024, 256, 1, 1)
    assert result["fc.weight"] == (1000, 1024)
    assert "layer1.1.conv1.weight" not in result
    assert shapes("resnet", blocks=[2, 1, 1, 1], bottleneck=False)[
        "layer1.1.conv2.weight"
    ] == (64, 64, 3, 3)


# --- Dims for µP ---------------------------------------------------------------


def test_transformer_dims_and_scale_dims_are_canonical():
    plain = expand_preset("transformer", SMALL)
    grouped = expand_preset("transformer", {"n_kv_heads": 2, **SMALL})

    assert plain.spec["dims"] == {
        "vocab": 1000,
        "n_positions": 1024,
        "d_model": 64,
        "d_ff": 256,
        "n_layer": 2,
        "n_heads": 4,
    }
    assert grouped.spec["dims"]["n_kv_heads"] == 2
    assert plain.scale_dims == {
        "d_model": 64,
        "d_ff": 256,
        "n_heads": 4,
        "d_head": 16,
        "n_layer": 2,
    }
    assert plain.derived_dims == ("d_head",)
    assert plain.source == "preset:transformer"


def test_a_mup_table_varies_the_canonical_dims():
    spec = load_spec(expand_preset("transformer", SMALL).spec, SpecLimits())
    wider = mup_table(
        spec, {}, [{"d_model": 256, "d_ff": 1024}], MupSettings("adamw", 1e-3)
    )
    deeper = mup_table(
        spec,
        {},
        [{"n_layer": 8}],
        MupSettings("adamw", 1e-3, depth=DepthRule("depth_mup", 0.5)),
    )

    assert wider.width_dims == ("d_model", "d_ff")
    assert deeper.depth_dims == ("n_layer",)
    assert deeper.targets[0].depth_multiplier == 4


# --- Refusals --------------------------------------------------------------------


def test_unknown_preset():
    (problem,) = problems("transfomer", {})

    assert problem.path == ("name",)
    assert "available: mlp, resnet, transformer" in problem.message
    assert 'did you mean "transformer"?' in problem.message


@pytest.mark.parametrize("name", [None, 3, ["mlp"]])
def test_preset_name_must_be_a_known_string(name):
    (problem,) = problems(name, {})

    assert problem.path == ("name",)


def test_params_must_be_an_object():
    (problem,) = problems("mlp", [1, 2])

    assert problem.path == ("params",)
    assert "[1, 2]" in problem.message


def test_unknown_parameter_lists_the_allowed_and_suggests_one():
    (problem,) = problems("mlp", {"dept": 3})

    assert problem.path == ("params", "dept")
    assert (
        "allowed: d_in, width, widths, depth, d_out, activation, bias, norm, residual"
        in problem.message
    )
    assert 'did you mean "depth"?' in problem.message


@pytest.mark.parametrize(
    ("preset", "name", "value", "written"),
    [
        ("mlp", "depth", 0, "0"),
        ("mlp", "depth", 10_001, "10001"),
        ("mlp", "d_in", True, "true"),
        ("mlp", "width", 64.0, "64.0"),
        ("mlp", "d_out", "10", '"10"'),
        ("mlp", "bias", 1, "1"),
        ("mlp", "residual", None, "null"),
        ("mlp", "norm", "batch_norm", '"batch_norm"'),
        ("mlp", "widths", [], "[]"),
        ("mlp", "widths", [32, 0], "[32, 0]"),
        ("mlp", "widths", 32, "32"),
        ("resnet", "depth", 51, "51"),
        ("resnet", "blocks", [3, 4, 6], "[3, 4, 6]"),
        ("resnet", "blocks", [3, 4, 6, 1001], "[3, 4, 6, 1001]"),
        ("resnet", "width", 2**31, "2147483648"),
        ("transformer", "n_positions", -1, "-1"),
        ("transformer", "n_kv_heads", 0, "0"),
        ("transformer", "norm_position", "middle", '"middle"'),
        ("transformer", "tied", "yes", '"yes"'),
    ],
)
def test_a_value_outside_its_parameter(preset, name, value, written):
    (problem,) = problems(preset, {name: value})
    parameter = PRESETS[preset].parameter(name)

    assert problem.path == ("params", name)
    assert problem.message.startswith(
        f"{name} must be {parameter.allowed}; got {written}"
    )
    assert parameter.description in problem.message
    assert problem.allowed == parameter.allowed


def test_a_choice_near_an_allowed_one_is_suggested():
    (problem,) = problems("transformer", {"norm": "layernorm"})

    assert 'did you mean "layer_norm"?' in problem.message


def test_null_takes_a_derived_default():
    assert (
        expand_preset("transformer", {"d_ff": None, **SMALL}).spec["dims"]["d_ff"]
        == 256
    )


def test_activation_problems_point_inside_the_parameter():
    (unknown,) = problems("mlp", {"activation": "rleu"})
    (slope,) = problems(
        "mlp", {"activation": {"name": "leaky_relu", "negative_slope": 5}}
    )
    (kind,) = problems("transformer", {"activation": 3})

    assert unknown.path == ("params", "activation")
    assert 'did you mean "relu"?' in unknown.message
    assert slope.path == ("params", "activation", "negative_slope")
    assert "[0, 1]" in slope.message
    assert kind.path == ("params", "activation")


def test_width_and_widths_are_exclusive():
    (problem,) = problems("mlp", {"width": 64, "widths": [64, 64]})

    assert problem.path == ("params", "widths")
    assert "give width or widths, not both" in problem.message


def test_depth_must_agree_with_widths():
    (problem,) = problems("mlp", {"depth": 3, "widths": [64, 64]})

    assert problem.path == ("params", "depth")
    assert "widths lists 2 hidden layers" in problem.message
    assert problem.allowed == "2"


def test_depth_and_blocks_are_exclusive():
    (problem,) = problems("resnet", {"depth": 50, "blocks": [1, 1, 1, 1]})

    assert problem.path == ("params", "blocks")
    assert "give depth or blocks, not both" in problem.message


def test_basic_blocks_refuse_groups():
    (problem,) = problems("resnet", {"depth": 18, "groups": 32})

    assert problem.path == ("params", "groups")
    assert "BasicBlock supports only groups 1" in problem.message


def test_bottlenecks_that_round_to_no_channels():
    (problem,) = problems("resnet", {"width": 8, "width_per_group": 4})

    assert problem.path == ("params", "width_per_group")
    assert "int(8·4/64)·groups = 0 channels" in problem.message
    assert problem.allowed == "an integer ≥ 8"


def test_heads_must_divide_the_width():
    (problem,) = problems("transformer", {"d_model": 64, "n_heads": 5})

    assert problem.path == ("params", "n_heads")
    assert "n_heads = 5 does not divide d_model = 64" in problem.message
    assert "(the nearest: 4 or 8)" in problem.message


def test_key_value_heads_must_divide_the_heads():
    (problem,) = problems("transformer", {**SMALL, "n_kv_heads": 3})

    assert problem.path == ("params", "n_kv_heads")
    assert "n_kv_heads = 3 does not divide n_heads = 4" in problem.message
    assert "(the nearest: 2 or 4)" in problem.message


def test_every_parameter_problem_is_reported_at_once():
    found = problems("transformer", {"vocab": 0, "gated": "no", "heads": 4})

    assert [p.path for p in found] == [
        ("params", "vocab"),
        ("params", "gated"),
        ("params", "heads"),
    ]
