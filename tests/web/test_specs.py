"""Specs from real models and presets, over HTTP, and in place of a spec.

The importers' numbers are checked in tests/core/test_import_*.py and
tests/core/test_presets.py; here every exchange goes through the contract
client, and the counts show the answer is the importer's.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from flask import Flask

from initlab.web.problems import FieldError, validation_problem
from initlab.web.spec_sources import import_source, repoint_problem

from .conftest import ContractClient

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
PROBLEMS = "https://initlab.dev/problems/"

COUNTS = {
    "gpt2-small": 124_439_808,
    "gpt2-medium": 354_823_168,
    "bert-base-uncased": 109_482_240,
    "llama-2-7b": 6_738_415_616,
    "mistral-7b-v0.1": 7_241_732_096,
    "t5-small": 60_506_624,
    "vit-base-patch16-224": 86_567_656,
}


def hf_config(name: str) -> dict:
    return json.loads((EXAMPLES / "hf" / f"{name}.json").read_text(encoding="utf-8"))


def problem(response, pointer: str) -> str:
    """The message at ``pointer`` of a 422 validation or limit problem."""
    assert response.status_code == 422, response.get_data(as_text=True)
    assert response.mimetype == "application/problem+json"
    body = response.get_json()
    messages = [e["message"] for e in body["errors"] if e["pointer"] == pointer]
    assert messages, body["errors"]
    return messages[0]


@pytest.mark.parametrize("name", sorted(COUNTS))
def test_an_imported_config_has_the_real_models_parameter_count(
    api: ContractClient, name: str
) -> None:
    response = api.post(
        "/v1/specs/import",
        json_body={"format": "huggingface", "config": hf_config(name)},
    )

    assert response.status_code == 200, response.get_data(as_text=True)
    body = response.get_json()
    assert body["parameter_count"] == COUNTS[name]
    assert body["source"].startswith("huggingface:")
    assert set(body["scale_dims"]) >= {
        "d_model",
        "d_ff",
        "n_heads",
        "d_head",
        "n_layer",
    }
    assert body["notes"]


def test_gpt2_imports_with_conv1d_layouts_a_tied_head_and_its_scale_dims(
    api: ContractClient,
) -> None:
    body = api.post(
        "/v1/specs/import",
        json_body={"format": "huggingface", "config": hf_config("gpt2-small")},
    ).get_json()
    recommendations = api.post(
        "/v1/recommendations", json_body={"spec": body["spec"], "scheme": "gpt2"}
    ).get_json()
    rows = {row["name"]: row for row in recommendations["parameters"]}

    assert body["scale_dims"] == {
        "d_model": 768,
        "d_ff": 3072,
        "n_heads": 12,
        "d_head": 64,
        "n_layer": 12,
    }
    assert body["derived_dims"] == ["d_head"]
    assert rows["h.0.attn.qkv.weight"]["layout"] == "in_out"
    assert rows["lm_head.weight"]["tied_to"] == "wte.weight"
    # The residual output projections get GPT-2's 0.02/√(2·12).
    assert rows["h.3.mlp.c_proj.weight"]["std"] == pytest.approx(0.02 / 24**0.5)
    assert rows["h.3.mlp.c_fc.weight"]["std"] == 0.02


def test_a_torchvision_arch_imports_with_its_parameter_count(api: ContractClient):
    response = api.post(
        "/v1/specs/import",
        json_body={"format": "torchvision", "arch": "resnet101", "options": {}},
    )

    assert response.status_code == 200, response.get_data(as_text=True)
    assert response.get_json()["parameter_count"] == 44_549_160


def test_an_import_stands_in_for_a_spec_everywhere(api: ContractClient) -> None:
    source = {"import": {"format": "huggingface", "config": hf_config("gpt2-small")}}

    recommendations = api.post(
        "/v1/recommendations", json_body={"spec": source, "scheme": "gpt2"}
    )
    table = api.post(
        "/v1/mup/table",
        json_body={
            "spec": source,
            "base_dims": {"d_model": 256, "d_ff": 1024, "n_heads": 4},
            "targets": [{}],
            "lr": 6e-4,
        },
    )

    assert recommendations.get_json()["parameter_count"] == 124_439_808
    assert table.status_code == 200, table.get_data(as_text=True)
    target = table.get_json()["targets"][0]
    assert target["parameter_count"] == 124_439_808
    # d_model 256 → 768: the hidden Adam learning rate is η/3.
    rows = {row["name"]: row for row in target["parameters"]}
    assert rows["h.0.attn.o.weight"]["lr"] == pytest.approx(6e-4 / 3, rel=1e-12)


def test_a_preset_stands_in_for_a_spec(api: ContractClient) -> None:
    expanded = api.post(
        "/v1/specs/expand", json_body={"preset": "mlp", "width": 128, "depth": 3}
    ).get_json()
    by_preset = api.post(
        "/v1/statistics",
        json_body={
            "spec": {"preset": {"name": "mlp", "width": 128, "depth": 3}},
            "method": "analytic",
        },
    )
    written_out = api.post(
        "/v1/statistics", json_body={"spec": expanded["spec"], "method": "analytic"}
    )

    assert expanded["source"] == "preset:mlp"
    assert by_preset.status_code == 200, by_preset.get_data(as_text=True)
    # The same answer, with the preset's notes first.
    preset_notes = [
        f"preset:mlp (at /spec/preset): {note}" for note in expanded["notes"]
    ]
    answer = by_preset.get_json()
    assert answer["notes"][: len(preset_notes)] == preset_notes
    answer["notes"] = answer["notes"][len(preset_notes) :]
    assert answer == written_out.get_json()


@pytest.mark.parametrize(
    ("name", "source", "shape", "broken_at"),
    [
        (
            "t5-small",
            "huggingface:t5",
            "T5 is an encoder and a decoder, which reads the encoder's output"
            " beside its own",
            "/layers/1/layers/0",
        ),
        (
            "vit-base-patch16-224",
            "huggingface:vit",
            "ViT starts with a patch embedding (a convolution over the image) and"
            " a class token beside the patches",
            "/layers/0/layers/0/layers/1",
        ),
    ],
)
def test_statistics_of_an_import_beyond_one_stack_say_why(
    api: ContractClient, name: str, source: str, shape: str, broken_at: str
) -> None:
    response = api.post(
        "/v1/statistics",
        json_body={
            "spec": {"import": {"format": "huggingface", "config": hf_config(name)}},
            "method": "analytic",
        },
    )

    message = problem(response, "/spec/import")
    body = response.get_json()
    # The user wrote none of the built spec's layers: the detail says why the
    # statistics cannot follow it and where to go instead, and every error
    # points at the import, quoting where in the built spec it broke.
    assert body["detail"] == (
        "The statistics follow one stack of layers whose widths chain from its"
        f" input, and the spec that /spec/import builds ({source}) is not one:"
        f" {shape} (see errors for where it breaks). /v1/recommendations and"
        " /v1/mup/table take it; for statistics, write the part to follow as"
        " a spec."
    )
    assert {error["pointer"] for error in body["errors"]} == {"/spec/import"}
    assert message.startswith(
        f"the spec that /spec/import builds ({source}; /v1/specs/import shows it)"
        f" breaks a rule at {broken_at}"
    )


@pytest.mark.parametrize(
    ("path", "wrap", "pointer"),
    [
        ("/v1/specs/import", lambda source: source, "/config/n_layer"),
        (
            "/v1/recommendations",
            lambda source: {"spec": {"import": source}},
            "/spec/import/config/n_layer",
        ),
    ],
    ids=["import", "in-place-of-a-spec"],
)
def test_a_limit_broken_by_one_config_value_points_at_that_value(
    api: ContractClient, path: str, wrap, pointer: str
) -> None:
    config = {**hf_config("gpt2-small"), "n_layer": 10**9}
    source = {"format": "huggingface", "config": config}

    response = api.post(path, json_body=wrap(source))

    message = problem(response, pointer)
    assert response.get_json()["limit"] == "max_repeat_count"
    assert (
        f"breaks a rule at /layers/2/count (a size that {pointer} decides):"
        " over the limit max_repeat_count = 10000: got a repeat count of 1000000000"
    ) in message


def test_a_number_that_only_equals_the_broken_size_is_not_blamed(
    api: ContractClient,
) -> None:
    # d_ff is 4 × n_embd: n_embd is the cause, though bos_token_id holds the
    # very value d_ff breaks the limit with.
    config = {
        **hf_config("gpt2-small"),
        "n_embd": 600_000_000,
        "n_head": 1,
        "bos_token_id": 2_400_000_000,
    }

    response = api.post(
        "/v1/specs/import", json_body={"format": "huggingface", "config": config}
    )

    message = problem(response, "/config/n_embd")
    assert "breaks a rule at /dims/d_ff (a size that /config/n_embd decides)" in message
    assert "bos_token_id" not in message


def test_a_size_given_outright_is_blamed_on_the_number_that_gives_it(
    api: ContractClient,
) -> None:
    # n_inner, when given, is d_ff: n_embd no longer decides it.
    config = {**hf_config("gpt2-small"), "n_inner": 3_000_000_000}

    response = api.post(
        "/v1/specs/import", json_body={"format": "huggingface", "config": config}
    )

    problem(response, "/config/n_inner")


def test_a_config_of_very_many_numbers_is_not_traced(api: ContractClient) -> None:
    # Each number traced costs a build: a body of thousands would make every
    # refusal slow. The problem stays with the import, saying where it broke.
    padding = {f"unused_{index}": index for index in range(5000)}
    config = {**hf_config("gpt2-small"), "n_layer": 10**9, **padding}

    response = api.post(
        "/v1/specs/import", json_body={"format": "huggingface", "config": config}
    )

    assert "breaks a rule at /layers/2/count: over the limit" in problem(response, "")


def test_a_limit_of_the_whole_built_spec_stays_with_the_import(
    api: ContractClient,
) -> None:
    # No one option is the parameter count: the problem is the import's.
    source = {"format": "torchvision", "arch": "resnet50", "options": {"groups": 10**6}}

    response = api.post("/v1/specs/import", json_body=source)

    message = problem(response, "")
    assert message.startswith(
        "the spec that this request builds (torchvision:resnet50) breaks a rule at"
        " /layers: over the limit max_parameters"
    )


def test_a_detail_naming_an_error_inside_a_built_spec_names_it_as_moved(
    app: Flask,
) -> None:
    # The detail of a refusal restates its first error: once that error is
    # moved to the import that built the spec, the detail follows it.
    source = {"format": "huggingface", "config": hf_config("gpt2-small")}
    errors = [FieldError("/spec/layers/2", "a repeat group needs a name")]
    with app.test_request_context():
        import_source(source, ("spec", "import"), {"spec": {"import": source}})
        problem = repoint_problem(validation_problem(errors))

    assert problem.detail == (
        "/spec/import: the spec that /spec/import builds (huggingface:gpt2;"
        " /v1/specs/import shows it) breaks a rule at /layers/2: a repeat group"
        " needs a name."
    )
    assert [error.pointer for error in problem.errors] == ["/spec/import"]


def test_expanding_without_a_preset_says_it_is_missing(api: ContractClient) -> None:
    response = api.post("/v1/specs/expand", json_body={"width": 8}, conforms=None)

    assert problem(response, "/preset") == (
        "missing: name the preset, one of mlp, resnet, transformer (GET"
        " /v1/presets lists their parameters)"
    )


def test_the_presets_are_listed_with_their_parameters(api: ContractClient) -> None:
    presets = api.get("/v1/presets").get_json()["presets"]
    by_name = {preset["name"]: preset for preset in presets}

    assert set(by_name) == {"mlp", "resnet", "transformer"}
    parameters = {p["name"]: p for p in by_name["transformer"]["parameters"]}
    assert {"d_model", "n_layer", "n_heads", "gated", "tied"} <= set(parameters)


# --- Problems ----------------------------------------------------------------------


def test_an_unknown_model_type_lists_the_supported_ones(api: ContractClient) -> None:
    response = api.post(
        "/v1/specs/import",
        json_body={"format": "huggingface", "config": {"model_type": "gpt-neox"}},
    )

    message = problem(response, "/config/model_type")
    for supported in ("gpt2", "llama", "mistral", "bert", "t5", "vit"):
        assert supported in message


def test_a_config_missing_a_key_names_it(api: ContractClient) -> None:
    config = hf_config("llama-2-7b")
    del config["hidden_size"]

    response = api.post(
        "/v1/specs/import", json_body={"format": "huggingface", "config": config}
    )

    assert "hidden_size" in problem(response, "/config/hidden_size")


def test_a_nonsense_value_in_an_import_standing_in_for_a_spec_is_pointed_at(
    api: ContractClient,
) -> None:
    config = hf_config("gpt2-small") | {"n_head": 7}

    response = api.post(
        "/v1/recommendations",
        json_body={"spec": {"import": {"format": "huggingface", "config": config}}},
    )

    assert "7" in problem(response, "/spec/import/config/n_head")


@pytest.mark.parametrize(
    "body, pointer",
    [
        ({"format": "onnx", "config": {}}, "/format"),
        ({"format": "huggingface"}, "/config"),
        ({"format": "torchvision"}, "/arch"),
        ({"format": "torchvision", "arch": "resnet50", "config": {}}, "/config"),
        ({"format": "huggingface", "config": []}, "/config"),
        ({"format": "torchvision", "arch": "resnet51"}, "/arch"),
    ],
)
def test_a_malformed_import_is_refused_at_its_field(
    api: ContractClient, body: dict, pointer: str
) -> None:
    response = api.post("/v1/specs/import", json_body=body, conforms=None)

    assert problem(response, pointer)


@pytest.mark.parametrize(
    "body, pointer",
    [
        ({"preset": "cnn"}, "/preset"),
        ({"width": 3}, "/preset"),
        ({"preset": "transformer", "d_model": 256}, "/n_heads"),
        ({"preset": "mlp", "widht": 3}, "/widht"),
    ],
)
def test_a_bad_preset_is_refused_at_its_field(
    api: ContractClient, body: dict, pointer: str
) -> None:
    response = api.post("/v1/specs/expand", json_body=body, conforms=None)

    assert problem(response, pointer)


def test_a_bad_preset_in_place_of_a_spec_points_inside_it(api: ContractClient):
    response = api.post(
        "/v1/recommendations",
        json_body={"spec": {"preset": {"name": "mlp", "depth": 0}}},
        conforms=None,
    )

    assert problem(response, "/spec/preset/depth")


def test_an_imports_notes_reach_the_answer_it_stands_in_for(api: ContractClient):
    source = {"format": "torchvision", "arch": "resnet50", "options": {}}
    source["options"]["zero_init_residual"] = True

    notes = api.post(
        "/v1/recommendations",
        json_body={"spec": {"import": source}, "scheme": "kaiming_normal"},
    ).get_json()["notes"]

    assert any(
        note.startswith("torchvision:resnet50 (at /spec/import): zero_init_residual")
        for note in notes
    )


def test_an_import_beside_a_specs_own_fields_is_refused_with_the_fix(api):
    response = api.post(
        "/v1/recommendations",
        json_body={
            "spec": {
                "import": {"format": "torchvision", "arch": "resnet18"},
                "dims": {},
            }
        },
        conforms=None,
    )

    assert "comes alone" in problem(response, "/spec")
