"""POST /v1/recommendations end to end, on the repository's example specs.

The numbers are the reference libraries' own: torch.nn.init's kaiming_normal_
and nn.Linear's default, GPT-2's N(0, 0.02²) with residual projections scaled
by 1/√(2·n_layer) (Radford et al. 2019, section 2.3).
"""

from __future__ import annotations

import json
import math

import pytest

from .conftest import ContractClient, load_example

MLP = load_example("mlp-3layer.spec.json")
GPT2 = load_example("gpt2-small.spec.json")
RESNET50 = load_example("resnet50.spec.json")


def recommend(api: ContractClient, **request) -> dict:
    response = api.post("/v1/recommendations", json_body=request)
    assert response.status_code == 200, response.get_data(as_text=True)
    assert response.mimetype == "application/json"
    return response.get_json()


def by_name(answer: dict) -> dict[str, dict]:
    return {row["name"]: row for row in answer["parameters"]}


def test_kaiming_normal_on_the_mlp_gives_torch_numbers(api: ContractClient) -> None:
    answer = recommend(api, spec=MLP, scheme="kaiming_normal")
    rows = by_name(answer)

    fc1 = rows["fc1.weight"]
    # torch.nn.init.kaiming_normal_ on a (256, 784) tensor, nonlinearity relu.
    assert fc1["std"] == pytest.approx(0.050507627227610534, rel=1e-12, abs=0)
    assert fc1["gain"] == pytest.approx(math.sqrt(2), rel=1e-15)
    assert (fc1["fan_in"], fc1["fan_out"]) == (784, 256)
    assert fc1["shape"] == [256, 784]
    assert fc1["distribution"] == "normal"
    assert fc1["mean"] == 0
    assert fc1["bound"] is None
    assert fc1["truncation"] is None
    assert fc1["scheme"]["nonlinearity"] == "relu"
    assert rows["fc2.weight"]["std"] == pytest.approx(math.sqrt(2 / 256), rel=1e-12)
    # fc3 is followed by no activation: gain 1.
    assert rows["fc3.weight"]["std"] == pytest.approx(1 / 16, rel=1e-12)
    assert rows["fc1.bias"]["distribution"] == "constant"
    assert rows["fc1.bias"]["mean"] == 0


def test_the_answer_lists_every_parameter_in_forward_order(api: ContractClient) -> None:
    answer = recommend(api, spec=MLP)

    assert [row["name"] for row in answer["parameters"]] == [
        "fc1.weight",
        "fc1.bias",
        "fc2.weight",
        "fc2.bias",
        "fc3.weight",
        "fc3.bias",
    ]
    assert (
        answer["parameter_count"] == 784 * 256 + 256 + 256 * 256 + 256 + 256 * 10 + 10
    )
    assert answer["residual_branch_count"] == 0
    assert answer["dims"] == {"d_in": 784, "d_hidden": 256, "n_classes": 10}
    assert answer["scheme"] == {"name": "auto"}
    assert answer["overrides"] == []


def test_torch_default_linear_is_uniform_over_one_over_root_fan_in(
    api: ContractClient,
) -> None:
    rows = by_name(recommend(api, spec=MLP, scheme="torch_default"))

    for tensor in ("fc1.weight", "fc1.bias"):
        assert rows[tensor]["distribution"] == "uniform"
        assert rows[tensor]["bound"] == pytest.approx(1 / 28, rel=1e-12, abs=0)
        assert rows[tensor]["std"] == pytest.approx(1 / 28 / math.sqrt(3), rel=1e-12)


def test_gpt2_scales_the_residual_projections(api: ContractClient) -> None:
    answer = recommend(api, spec=GPT2, scheme="gpt2")
    rows = by_name(answer)

    projections = [
        name for name in rows if name.endswith((".attn.o.weight", ".mlp.c_proj.weight"))
    ]
    assert len(projections) == 24
    for name in projections:
        assert rows[name]["std"] == pytest.approx(0.02 / math.sqrt(24), rel=1e-12)
    for name in (
        "wte.weight",
        "wpe.weight",
        "h.5.attn.qkv.weight",
        "h.11.mlp.c_fc.weight",
    ):
        assert rows[name]["std"] == pytest.approx(0.02, rel=1e-12)
    assert answer["scheme"] == {"name": "gpt2", "std": 0.02}
    assert answer["residual_branch_count"] == 24


def test_gpt2_small_has_its_published_size_and_tied_head(api: ContractClient) -> None:
    answer = recommend(api, spec=GPT2, scheme="gpt2")
    rows = by_name(answer)

    assert answer["parameter_count"] == 124_439_808
    assert rows["lm_head.weight"]["tied_to"] == "wte.weight"
    assert rows["lm_head.weight"]["shape"] == [50257, 768]
    assert rows["h.3.attn.qkv.weight"]["layout"] == "in_out"
    assert rows["h.3.attn.qkv.weight"]["shape"] == [2304, 768]
    assert rows["h.3.ln_1.weight"]["distribution"] == "constant"
    assert rows["h.3.ln_1.weight"]["mean"] == 1


def test_resnet50_with_torchvision_init(api: ContractClient) -> None:
    scheme = {"name": "kaiming_normal", "mode": "fan_out", "nonlinearity": "relu"}

    answer = recommend(api, spec=RESNET50, scheme=scheme)
    rows = by_name(answer)

    assert answer["parameter_count"] == 25_557_032
    # conv1 is (64, 3, 7, 7): fan_out = 64·49.
    assert rows["conv1.weight"]["std"] == pytest.approx(math.sqrt(2) / 56, rel=1e-12)
    assert rows["layer1.0.conv2.weight"]["std"] == pytest.approx(
        math.sqrt(2 / (64 * 9)), rel=1e-12
    )
    assert rows["bn1.weight"]["mean"] == 1
    assert rows["bn1.bias"]["mean"] == 0


def test_overrides_apply_in_order_and_report_what_they_matched(
    api: ContractClient,
) -> None:
    answer = recommend(
        api,
        spec=MLP,
        scheme="kaiming_normal",
        overrides={
            "fc*": "xavier_uniform",
            "fc3.weight": {"name": "orthogonal", "gain": 2},
            "fc*.bias": {"name": "constant", "value": 0.1},
        },
    )
    rows = by_name(answer)

    # Each override lists what it set; later overrides take the rest.
    assert answer["overrides"] == [
        {
            "pattern": "fc*",
            "scheme": {"name": "xavier_uniform", "gain": 1.0},
            "matched": ["fc1.weight", "fc2.weight"],
            "notes": [
                'Leaves 3 matched tensors to the later override "fc*.bias": fc1.bias,'
                " fc2.bias, fc3.bias.",
                'Leaves 1 matched tensor to the later override "fc3.weight":'
                " fc3.weight.",
            ],
        },
        {
            "pattern": "fc3.weight",
            "scheme": {"name": "orthogonal", "gain": 2.0},
            "matched": ["fc3.weight"],
            "notes": [],
        },
        {
            "pattern": "fc*.bias",
            "scheme": {"name": "constant", "value": 0.1},
            "matched": ["fc1.bias", "fc2.bias", "fc3.bias"],
            "notes": [],
        },
    ]
    assert rows["fc1.weight"]["bound"] == pytest.approx(math.sqrt(6 / 1040), rel=1e-12)
    assert rows["fc3.weight"]["distribution"] == "orthogonal"
    assert rows["fc3.weight"]["std"] == pytest.approx(2 / math.sqrt(256), rel=1e-12)
    assert rows["fc2.bias"]["mean"] == pytest.approx(0.1)


def test_an_override_that_matches_nothing_is_a_422_at_its_pattern(
    api: ContractClient,
) -> None:
    response = api.post(
        "/v1/recommendations",
        json_body={"spec": MLP, "overrides": {"encoder.*": "xavier_uniform"}},
    )

    assert response.status_code == 422
    [error] = response.get_json()["errors"]
    assert error["pointer"] == "/overrides/encoder.*"
    assert '"encoder.*"' in error["message"]


def test_the_same_request_gets_the_same_bytes(api: ContractClient) -> None:
    request = {"spec": GPT2, "scheme": "auto", "overrides": {"lm_head": "normal"}}

    first = api.post("/v1/recommendations", json_body=request)
    second = api.post("/v1/recommendations", json_body=request)

    assert first.status_code == 200
    assert first.get_data() == second.get_data()


def test_the_answered_scheme_can_be_posted_again(api: ContractClient) -> None:
    first = recommend(api, spec=MLP, scheme="variance_scaling")

    second = recommend(api, spec=MLP, scheme=first["scheme"])

    assert second == first
    assert first["scheme"] == {
        "name": "variance_scaling",
        "scale": 1.0,
        "mode": "fan_in",
        "distribution": "truncated_normal",
        "convention": "keras",
    }


def test_the_response_is_compact_json_without_non_finite_numbers(
    api: ContractClient,
) -> None:
    response = api.post("/v1/recommendations", json_body={"spec": MLP})

    text = response.get_data(as_text=True)
    assert text.startswith('{"scheme":{"name":"auto"},"overrides":[]')
    json.loads(text, parse_constant=lambda token: pytest.fail(f"{token} in the answer"))


def scheme_names() -> list[str]:
    from initlab.core.schemes import scheme_catalogue

    return [scheme.name for scheme in scheme_catalogue()]


@pytest.mark.parametrize("name", scheme_names())
def test_every_scheme_with_its_catalogue_defaults_conforms_and_echoes(
    api: ContractClient, name: str
) -> None:
    [entry] = [
        s for s in api.get("/v1/schemes").get_json()["schemes"] if s["name"] == name
    ]
    scheme = {"name": name} | {o["name"]: o["default"] for o in entry["options"]}

    answer = recommend(api, spec=MLP, scheme=scheme)

    assert answer["scheme"] == scheme


def test_an_override_lists_only_what_it_set_and_says_why_it_left_the_rest(
    api: ContractClient,
) -> None:
    answer = recommend(
        api,
        spec=GPT2,
        scheme="gpt2",
        overrides={"h.*.attn.o": {"name": "normal", "std": 0.002}},
    )

    (override,) = answer["overrides"]
    assert override["matched"] == [f"h.{i}.attn.o.weight" for i in range(12)]
    assert override["notes"] == [
        "Leaves 12 matched tensors to the policy (h.0.attn.o.bias, h.1.attn.o.bias,"
        " h.2.attn.o.bias and 9 more): biases stay 0 under a weight scheme (aim a"
        ' value scheme at the biases alone, such as "*.bias", to change them).'
    ]
    rows = by_name(answer)
    assert rows["h.3.attn.o.weight"]["std"] == 0.002
    assert rows["h.3.attn.o.bias"]["std"] == 0.0


def test_fixup_reads_the_true_fan_in_of_gpt2s_in_out_weights(
    api: ContractClient,
) -> None:
    stored_in_out = by_name(recommend(api, spec=GPT2, scheme="fixup"))
    out_in = json.loads(json.dumps(GPT2).replace('"in_out"', '"out_in"'))
    stored_out_in = by_name(recommend(api, spec=out_in, scheme="fixup"))

    row = stored_in_out["h.0.mlp.c_fc.weight"]
    assert row["std"] == stored_out_in["h.0.mlp.c_fc.weight"]["std"]
    # He for gelu_tanh over the true fan_in 768, scaled by 24^(-1/2).
    assert row["std"] == pytest.approx(0.011296, abs=5e-7)
    assert (row["signal_fan_in"], row["fan_in"]) == (768, 3072)


def test_signal_fans_come_in_pairs_when_either_differs(api: ContractClient) -> None:
    depthwise = {
        "kind": "conv2d",
        "name": "dw",
        "in": 32,
        "out": 32,
        "kernel_size": 3,
        "groups": 32,
    }
    plain = {"kind": "linear", "name": "fc", "in": 8, "out": 4}

    rows = by_name(recommend(api, spec={"layers": [depthwise, plain]}))

    # fan_in 9 agrees with the signal's, fan_out 288 does not: both are given.
    dw = rows["dw.weight"]
    assert (dw["fan_in"], dw["fan_out"]) == (9, 288)
    assert (dw["signal_fan_in"], dw["signal_fan_out"]) == (9, 9)
    fc = rows["fc.weight"]
    assert (fc["signal_fan_in"], fc["signal_fan_out"]) == (None, None)
