"""The client's specs from real models and presets: models, Spec, the live methods.

The unit tests read answers written out by hand and check the exact bodies the
client sends. The live tests post to the real service (gunicorn on
127.0.0.1) and check counts against the real models: GPT-2 small has
124,439,808 parameters with its LM head tied to wte (Radford et al. 2019;
transformers' GPT2LMHeadModel), torchvision's resnet50() 25,557,032.
"""

from __future__ import annotations

import copy
import dataclasses
import json
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import requests

from initlab_client import (
    Client,
    ImportedSpec,
    InvalidResponse,
    Preset,
    PresetParameter,
    Spec,
    SpecFileError,
    ValidationError,
    load_spec,
)

from .recording import RecordingAdapter
from .recording import recording_client as record

REPO_ROOT = Path(__file__).resolve().parents[2]
GPT2_CONFIG = REPO_ROOT / "examples" / "hf" / "gpt2-small.json"
MLP_SPEC = REPO_ROOT / "examples" / "mlp-3layer.spec.json"
GPT2_PARAMETERS = 124_439_808
RESNET50_PARAMETERS = 25_557_032

# The answer of POST /v1/specs/expand for {"preset": "mlp", "d_in": 4,
# "width": 8, "depth": 2, "d_out": 3}: 4·8 + 8 + 8·8 + 8 + 8·3 + 3 = 139.
MLP_SPEC_DATA = {
    "dims": {"d_in": 4, "d_model": 8, "n_layer": 1, "d_out": 3},
    "layers": [
        {"kind": "linear", "name": "input", "in": "d_in", "out": "d_model"},
        {
            "kind": "repeat",
            "name": "hidden",
            "count": "n_layer",
            "layers": [{"kind": "linear", "name": "fc", "in": "d_model", "out": 8}],
        },
        {"kind": "linear", "name": "output", "in": "d_model", "out": "d_out"},
    ],
}
IMPORTED = {
    "spec": MLP_SPEC_DATA,
    "source": "preset:mlp",
    "parameter_count": 139,
    "residual_branch_count": 0,
    "scale_dims": {"d_model": 8, "n_layer": 1},
    "derived_dims": [],
    "notes": ["n_layer = depth - 1 = 1 counts the d_model → d_model layers."],
}
WIDTHS = {
    "name": "widths",
    "type": "integer_list",
    "default": None,
    "allowed": "a list of 1 to 1000 integers from 1 to 2147483647",
    "description": "the width of each hidden layer, in order",
    "minimum": 1,
    "maximum": 2147483647,
    "min_items": 1,
    "max_items": 1000,
}
NORM = {
    "name": "norm",
    "type": "string",
    "default": "none",
    "allowed": 'one of "none", "layer_norm", "rms_norm"',
    "description": "a norm before each hidden layer and before the output layer",
    "choices": ["none", "layer_norm", "rms_norm"],
}
BIAS = {
    "name": "bias",
    "type": "boolean",
    "default": True,
    "allowed": "true or false",
    "description": "biases in the linear layers and layer norms",
}
# A /v1/recommendations answer with nothing in it: the tests read only the body.
NO_RECOMMENDATIONS = {
    "scheme": {"name": "kaiming_normal"},
    "overrides": [],
    "dims": {},
    "parameter_count": 0,
    "residual_branch_count": 0,
    "parameters": [],
    "notes": [],
}
PRESETS = {
    "presets": [
        {
            "name": "mlp",
            "description": "A multilayer perceptron.",
            "parameters": [WIDTHS, NORM, BIAS],
        }
    ]
}


# -- the models ----------------------------------------------------------------


def test_an_imported_spec_reads_every_field() -> None:
    imported = ImportedSpec.from_json(IMPORTED)

    assert imported.spec == MLP_SPEC_DATA
    assert imported.source == "preset:mlp"
    assert imported.parameter_count == 139
    assert imported.residual_branch_count == 0
    assert imported.scale_dims == {"d_model": 8, "n_layer": 1}
    assert imported.derived_dims == ()
    assert imported.notes == (
        "n_layer = depth - 1 = 1 counts the d_model → d_model layers.",
    )
    assert imported.raw == IMPORTED


def test_an_imported_spec_lists_derived_dims_as_a_tuple() -> None:
    answer = {
        **IMPORTED,
        "scale_dims": {"d_model": 768, "n_heads": 12, "d_head": 64},
        "derived_dims": ["d_head"],
    }

    assert ImportedSpec.from_json(answer).derived_dims == ("d_head",)


def test_an_imported_spec_ignores_new_fields_and_keeps_them_in_raw() -> None:
    newer = {**copy.deepcopy(IMPORTED), "config_hash": "abc123"}

    imported = ImportedSpec.from_json(newer)

    assert imported == ImportedSpec.from_json(IMPORTED)
    assert imported.raw["config_hash"] == "abc123"


def test_an_imported_spec_without_its_count_is_an_invalid_response() -> None:
    answer = {key: value for key, value in IMPORTED.items() if key != "scale_dims"}

    with pytest.raises(InvalidResponse, match="imported spec: .* no 'scale_dims'"):
        ImportedSpec.from_json(answer)


def test_an_imported_spec_is_read_only() -> None:
    imported = ImportedSpec.from_json(IMPORTED)

    with pytest.raises(dataclasses.FrozenInstanceError):
        imported.parameter_count = 1  # type: ignore[misc]


def test_a_preset_reads_its_parameters_in_order() -> None:
    (preset,) = [Preset.from_json(entry) for entry in PRESETS["presets"]]

    assert preset.name == "mlp"
    assert preset.description == "A multilayer perceptron."
    assert [parameter.name for parameter in preset.parameters] == [
        "widths",
        "norm",
        "bias",
    ]
    assert preset.raw == PRESETS["presets"][0]


def test_a_list_parameter_reads_its_bounds_and_lengths() -> None:
    widths = Preset.from_json(PRESETS["presets"][0]).parameter("widths")

    assert widths == PresetParameter(
        name="widths",
        type="integer_list",
        default=None,
        allowed="a list of 1 to 1000 integers from 1 to 2147483647",
        description="the width of each hidden layer, in order",
        minimum=1,
        maximum=2147483647,
        choices=None,
        min_items=1,
        max_items=1000,
    )


def test_bounds_the_answer_leaves_out_read_none() -> None:
    preset = Preset.from_json(PRESETS["presets"][0])

    norm, bias = preset.parameter("norm"), preset.parameter("bias")

    assert norm.choices == ("none", "layer_norm", "rms_norm")
    assert norm.default == "none"
    assert (norm.minimum, norm.maximum, norm.min_items, norm.max_items) == (None,) * 4
    assert bias.default is True
    assert bias.choices is None and bias.minimum is None


def test_a_list_default_is_read_as_a_tuple() -> None:
    blocks = {**WIDTHS, "name": "blocks", "default": [3, 4, 6, 3]}

    parameter = Preset.from_json({**PRESETS["presets"][0], "parameters": [blocks]})

    assert parameter.parameters[0].default == (3, 4, 6, 3)


def test_an_unknown_parameter_name_lists_the_preset_s_parameters() -> None:
    preset = Preset.from_json(PRESETS["presets"][0])

    with pytest.raises(KeyError, match="no parameter 'depht'; it has widths, norm"):
        preset.parameter("depht")


def test_a_parameter_without_allowed_is_an_invalid_response_naming_it() -> None:
    broken = {key: value for key, value in NORM.items() if key != "allowed"}
    answer = {**PRESETS["presets"][0], "parameters": [WIDTHS, broken]}

    with pytest.raises(InvalidResponse, match=r"parameters\[1\]: .* no 'allowed'"):
        Preset.from_json(answer)


# -- Spec ----------------------------------------------------------------------


def test_spec_from_a_hf_config_mapping_builds_the_import_object() -> None:
    config = {"model_type": "gpt2", "n_embd": 768}

    spec = Spec.from_hf_config(config)

    assert spec == {
        "import": {
            "format": "huggingface",
            "config": {"model_type": "gpt2", "n_embd": 768},
            "head": "default",
        }
    }
    assert type(spec) is Spec and isinstance(spec, dict)


def test_spec_from_a_hf_config_file_carries_its_contents() -> None:
    config = json.loads(GPT2_CONFIG.read_text())

    for path in (GPT2_CONFIG, str(GPT2_CONFIG)):
        spec = Spec.from_hf_config(path, head="none")

        assert spec == {
            "import": {"format": "huggingface", "config": config, "head": "none"}
        }


def test_spec_from_a_hf_config_copies_the_mapping() -> None:
    config = {"model_type": "gpt2", "n_embd": 768}

    spec = Spec.from_hf_config(config)
    config["n_embd"] = 1024

    assert spec["import"]["config"]["n_embd"] == 768


def test_spec_from_torchvision_builds_the_import_object() -> None:
    assert Spec.from_torchvision("resnet50") == {
        "import": {"format": "torchvision", "arch": "resnet50", "options": {}}
    }
    assert Spec.from_torchvision("resnext50_32x4d", num_classes=10, groups=32) == {
        "import": {
            "format": "torchvision",
            "arch": "resnext50_32x4d",
            "options": {"num_classes": 10, "groups": 32},
        }
    }


def test_spec_preset_builds_the_preset_object() -> None:
    spec = Spec.preset("transformer", d_model=128, n_heads=4, gated=True)

    assert spec == {
        "preset": {"name": "transformer", "d_model": 128, "n_heads": 4, "gated": True}
    }


def test_spec_preset_sends_numpy_integers_as_json_integers() -> None:
    spec = Spec.preset("mlp", width=np.int64(64), widths=(np.int32(8), 16))

    assert spec == {"preset": {"name": "mlp", "width": 64, "widths": [8, 16]}}
    assert type(spec["preset"]["width"]) is int
    assert [type(width) for width in spec["preset"]["widths"]] == [int, int]
    assert json.loads(json.dumps(spec)) == spec


def test_spec_load_reads_a_spec_file() -> None:
    spec = Spec.load(MLP_SPEC)

    assert type(spec) is Spec
    assert spec == load_spec(MLP_SPEC)


def test_a_spec_writes_as_its_json_and_shows_its_class() -> None:
    spec = Spec.preset("mlp", width=64)

    assert json.dumps(spec) == '{"preset": {"name": "mlp", "width": 64}}'
    assert repr(spec) == "Spec({'preset': {'name': 'mlp', 'width': 64}})"


def test_a_config_path_that_does_not_exist_is_file_not_found(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        Spec.from_hf_config(tmp_path / "config.json")


def test_a_config_file_that_is_not_an_object_is_a_spec_file_error(
    tmp_path: Path,
) -> None:
    path = tmp_path / "config.json"
    path.write_text('["gpt2"]')

    with pytest.raises(
        SpecFileError, match=r"config\.json: a model config .* got list"
    ):
        Spec.from_hf_config(path)


def test_a_config_file_that_is_not_json_names_the_line(tmp_path: Path) -> None:
    path = tmp_path / "config.json"
    path.write_text('{"model_type": "gpt2",\n "n_embd": }')

    with pytest.raises(SpecFileError, match=r"config\.json: not valid JSON at line 2"):
        Spec.from_hf_config(path)


def test_a_config_of_another_type_is_a_type_error() -> None:
    with pytest.raises(TypeError, match="mapping, or the path .* got bytes"):
        Spec.from_hf_config(b'{"model_type": "gpt2"}')  # type: ignore[arg-type]


# -- what the methods send -----------------------------------------------------


def answer_by_path(request: requests.PreparedRequest) -> dict:
    """PRESETS, NO_RECOMMENDATIONS or IMPORTED, by the path asked for."""
    answers = {"/v1/presets": PRESETS, "/v1/recommendations": NO_RECOMMENDATIONS}
    return answers.get(request.path_url, IMPORTED)


def recording_client() -> tuple[Client, RecordingAdapter]:
    return record(answer_by_path)


def sent(adapter: RecordingAdapter) -> tuple[str, str, dict]:
    (request,) = adapter.requests
    return request.method, request.url, json.loads(request.body)


def test_a_config_mapping_is_imported_as_huggingface() -> None:
    client, adapter = recording_client()

    imported = client.import_spec(config={"model_type": "gpt2"}, head="lm")

    assert sent(adapter) == (
        "POST",
        "http://initlab.test/v1/specs/import",
        {"format": "huggingface", "config": {"model_type": "gpt2"}, "head": "lm"},
    )
    assert imported == ImportedSpec.from_json(IMPORTED)


def test_a_config_path_is_sent_as_the_file_s_contents() -> None:
    client, adapter = recording_client()

    client.import_spec(config=GPT2_CONFIG)

    config = json.loads(GPT2_CONFIG.read_text())
    assert sent(adapter)[2] == {"format": "huggingface", "config": config}


def test_an_arch_is_imported_as_torchvision_with_its_options() -> None:
    client, adapter = recording_client()

    client.import_spec(arch="resnet18", options={"num_classes": np.int64(10)})

    body = sent(adapter)[2]
    assert body == {
        "format": "torchvision",
        "arch": "resnet18",
        "options": {"num_classes": 10},
    }


def test_a_given_format_is_sent_as_it_is() -> None:
    client, adapter = recording_client()

    client.import_spec(format="torchvision", arch="resnet50", config={"a": 1})

    assert sent(adapter)[2] == {
        "format": "torchvision",
        "config": {"a": 1},
        "arch": "resnet50",
    }


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        ({}, "needs config= .* or arch="),
        ({"config": {}, "arch": "resnet50"}, "config= .* or arch= .* not both"),
    ],
)
def test_a_format_that_cannot_be_inferred_is_refused_before_sending(
    arguments: dict, message: str
) -> None:
    client, adapter = recording_client()

    with pytest.raises(TypeError, match=message):
        client.import_spec(**arguments)

    assert adapter.requests == []


def test_a_missing_config_file_is_refused_before_sending(tmp_path: Path) -> None:
    client, adapter = recording_client()

    with pytest.raises(FileNotFoundError):
        client.import_spec(config=tmp_path / "config.json")

    assert adapter.requests == []


def test_expand_preset_sends_the_name_beside_the_parameters() -> None:
    client, adapter = recording_client()

    imported = client.expand_preset(
        "mlp", d_in=4, width=np.int64(8), depth=2, d_out=3, norm="none"
    )

    method, url, body = sent(adapter)
    assert (method, url) == ("POST", "http://initlab.test/v1/specs/expand")
    assert body == {
        "preset": "mlp",
        "d_in": 4,
        "width": 8,
        "depth": 2,
        "d_out": 3,
        "norm": "none",
    }
    assert imported.parameter_count == 139


def test_presets_are_read_from_get_presets() -> None:
    client, adapter = recording_client()

    presets = client.presets()

    (request,) = adapter.requests
    assert (request.method, request.url) == ("GET", "http://initlab.test/v1/presets")
    assert presets == [Preset.from_json(PRESETS["presets"][0])]


def test_a_spec_that_builds_a_model_goes_in_place_of_a_spec() -> None:
    client, adapter = recording_client()

    client.recommend(Spec.from_torchvision("resnet50"), scheme="kaiming_normal")

    assert sent(adapter)[2] == {
        "spec": {
            "import": {"format": "torchvision", "arch": "resnet50", "options": {}}
        },
        "scheme": "kaiming_normal",
    }


# -- against the real service --------------------------------------------------


@pytest.fixture(scope="module")
def client(live_server_url: str) -> Iterator[Client]:
    with Client(live_server_url) as client:
        yield client


@pytest.mark.server
def test_gpt2_small_imports_with_its_real_count(client: Client) -> None:
    imported = client.import_spec(config=GPT2_CONFIG)

    assert imported.source == "huggingface:gpt2"
    assert imported.parameter_count == GPT2_PARAMETERS
    assert imported.residual_branch_count == 24
    assert imported.scale_dims == {
        "d_model": 768,
        "d_ff": 3072,
        "n_heads": 12,
        "d_head": 64,
        "n_layer": 12,
    }
    assert imported.derived_dims == ("d_head",)
    assert imported.spec["dims"]["d_model"] == 768


@pytest.mark.server
def test_the_imported_spec_posts_back_to_the_same_count(client: Client) -> None:
    imported = client.import_spec(config=GPT2_CONFIG)

    result = client.recommend(imported.spec, scheme="gpt2")

    assert result.parameter_count == GPT2_PARAMETERS
    assert result.by_name("h.0.attn.o.weight").shape == (768, 768)


@pytest.mark.server
def test_a_hf_spec_is_resolved_by_the_service_in_place(client: Client) -> None:
    result = client.recommend(Spec.from_hf_config(GPT2_CONFIG), scheme="gpt2")

    assert result.parameter_count == GPT2_PARAMETERS
    assert result.by_name("lm_head.weight").tied_to == "wte.weight"


@pytest.mark.server
def test_resnet50_imports_with_torchvision_s_count(client: Client) -> None:
    imported = client.import_spec(arch="resnet50")

    assert imported.source == "torchvision:resnet50"
    assert imported.parameter_count == RESNET50_PARAMETERS
    # The stem and every stage's widths, scaled together to widen the net.
    assert imported.scale_dims["width"] == 64
    assert imported.scale_dims["stage4_out"] == 2048
    assert len(imported.scale_dims) == 9
    assert imported.derived_dims == ()


@pytest.mark.server
def test_resnet18_with_ten_classes_drops_the_difference_in_fc(client: Client) -> None:
    full = client.import_spec(arch="resnet18")
    ten = client.import_spec(arch="resnet18", options={"num_classes": 10})

    # fc is Linear(512, num_classes): (1000 - 10)·(512 + 1) parameters fewer.
    assert full.parameter_count - ten.parameter_count == 990 * 513


@pytest.mark.server
def test_a_small_transformer_preset_counts_by_hand(client: Client) -> None:
    vocab, positions, d, d_ff, layers = 1000, 64, 128, 512, 2

    imported = client.expand_preset(
        "transformer",
        vocab=vocab,
        n_positions=positions,
        d_model=d,
        n_heads=4,
        n_layer=layers,
    )

    layer_norm = 2 * d
    attention = 4 * (d * d + d)  # q, k, v, o with biases
    mlp = (d * d_ff + d_ff) + (d_ff * d + d)  # c_fc, c_proj
    block = layer_norm + attention + layer_norm + mlp
    # wte, wpe, the blocks, ln_f; lm_head is tied to wte and counted once.
    expected = vocab * d + positions * d + layers * block + layer_norm
    assert expected == 532_992
    assert imported.parameter_count == expected
    assert imported.source == "preset:transformer"
    assert imported.scale_dims == {
        "d_model": 128,
        "d_ff": 512,
        "n_heads": 4,
        "d_head": 32,
        "n_layer": 2,
    }
    assert "d_ff = 4·d_model = 512." in imported.notes


@pytest.mark.server
def test_a_preset_spec_counts_as_its_expansion(client: Client) -> None:
    params = {"d_in": 4, "width": 8, "depth": 2, "d_out": 3}

    expanded = client.expand_preset("mlp", **params)
    result = client.recommend(Spec.preset("mlp", **params))

    assert expanded.parameter_count == 4 * 8 + 8 + 8 * 8 + 8 + 8 * 3 + 3 == 139
    assert result.parameter_count == 139
    assert [p.name for p in result.parameters] == [
        "input.weight",
        "input.bias",
        "hidden.0.fc.weight",
        "hidden.0.fc.bias",
        "output.weight",
        "output.bias",
    ]


@pytest.mark.server
def test_the_resnet_preset_defaults_to_resnet50(client: Client) -> None:
    assert client.expand_preset("resnet").parameter_count == RESNET50_PARAMETERS


@pytest.mark.server
def test_presets_list_mlp_resnet_and_transformer(client: Client) -> None:
    presets = {preset.name: preset for preset in client.presets()}

    assert set(presets) == {"mlp", "resnet", "transformer"}
    d_model = presets["transformer"].parameter("d_model")
    assert (d_model.type, d_model.default, d_model.minimum) == ("integer", 768, 1)
    assert presets["transformer"].parameter("d_ff").default is None
    norm = presets["mlp"].parameter("norm")
    assert norm.choices == ("none", "layer_norm", "rms_norm")
    assert presets["resnet"].parameter("depth").choices == (18, 34, 50, 101, 152)
    blocks = presets["resnet"].parameter("blocks")
    assert (blocks.type, blocks.min_items, blocks.max_items) == ("integer_list", 4, 4)


@pytest.mark.server
def test_an_unsupported_model_type_raises_naming_config_model_type(
    client: Client,
) -> None:
    config = {**json.loads(GPT2_CONFIG.read_text()), "model_type": "gpt-neox"}

    with pytest.raises(ValidationError) as caught:
        client.import_spec(config=config)

    error = caught.value
    assert error.status == 422
    assert [field.pointer for field in error.errors] == ["/config/model_type"]
    assert "config/model_type" in str(error)
    assert 'unsupported model_type "gpt-neox"' in error.errors[0].message
    assert "gpt2, llama, mistral, bert, t5, vit" in error.errors[0].message


@pytest.mark.server
def test_a_problem_inside_a_spec_s_import_points_under_spec(client: Client) -> None:
    config = {**json.loads(GPT2_CONFIG.read_text()), "model_type": "gpt-neox"}

    with pytest.raises(ValidationError) as caught:
        client.recommend(Spec.from_hf_config(config))

    pointers = [field.pointer for field in caught.value.errors]
    assert pointers == ["/spec/import/config/model_type"]


@pytest.mark.server
def test_an_unknown_preset_parameter_points_at_it(client: Client) -> None:
    with pytest.raises(ValidationError) as caught:
        client.expand_preset("mlp", depht=3)

    (field,) = caught.value.errors
    assert field.pointer == "/depht"
    assert 'did you mean "depth"' in field.message


@pytest.mark.server
def test_a_mup_table_from_a_hf_config_in_one_call(client: Client) -> None:
    table = client.mup_table(
        Spec.from_hf_config(GPT2_CONFIG),
        base_dims={"d_model": 256, "d_ff": 1024, "n_heads": 4},
        targets=[{}],
        lr=6e-4,
    )

    (target,) = table.targets
    assert target.parameter_count == GPT2_PARAMETERS
    assert target.width_multipliers == {"d_model": 3.0, "d_ff": 3.0, "n_heads": 3.0}
    # Tensor Programs V, Table 8 (Adam): a hidden weight's lr is η/m_in, with
    # m_in = 768/256 = 3 for the attention's output projection.
    row = target.by_name("h.0.attn.o.weight")
    assert row.param_class == "matrix_like"
    assert row.m_in == 3.0
    assert row.lr == pytest.approx(6e-4 / 3, rel=1e-12)
    assert target.by_name("wte.weight").lr == pytest.approx(6e-4, rel=1e-12)


def test_a_config_mapping_with_numpy_integers_is_sent_as_json_integers() -> None:
    class NumpyLikeInt(int):
        """Stands for numpy.int64: an Integral that json cannot write as it is."""

        def __index__(self) -> int:
            return int(self)

    import numbers

    numbers.Integral.register(NumpyLikeInt)
    spec = Spec.from_hf_config({"model_type": "gpt2", "n_layer": NumpyLikeInt(6)})

    assert type(spec["import"]["config"]["n_layer"]) is int
    assert json.loads(json.dumps(spec))["import"]["config"]["n_layer"] == 6
