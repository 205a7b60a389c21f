"""POST /v1/mup/coord-check and /v1/mup/transfer-check over HTTP.

The acceptance values (flat µP hidden layers, SP growing, the transfer of the
best learning rate) are checked in tests/core/test_mup_checks.py; these tests
keep the training small and check the contract, the echoed settings, the
problems and the budget.
"""

from __future__ import annotations

import dataclasses

import pytest

from initlab.core.mup import MupLimits
from initlab.web.config import Config

from .conftest import ContractClient

PROBLEMS = "https://initlab.dev/problems/"
MLP = {
    "dims": {"w": 32},
    "layers": [
        {"kind": "linear", "name": "fc1", "in": 8, "out": "w", "activation": "relu"},
        {"kind": "linear", "name": "fc2", "in": "w", "out": "w", "activation": "relu"},
        {"kind": "linear", "name": "fc3", "in": "w", "out": 4},
    ],
}
SMALL = {"spec": MLP, "widths": [32, 64, 128], "steps": 3, "seeds": 2, "batch_size": 16}


def problem(response, pointer: str, kind: str = "validation") -> str:
    assert response.status_code == 422, response.get_data(as_text=True)
    body = response.get_json()
    assert body["type"] == PROBLEMS + kind
    messages = [e["message"] for e in body["errors"] if e["pointer"] == pointer]
    assert messages, body["errors"]
    return messages[0]


def test_a_coordinate_check_answers_per_layer_step_and_width(api: ContractClient):
    response = api.post("/v1/mup/coord-check", json_body=SMALL)

    assert response.status_code == 200, response.get_data(as_text=True)
    body = response.get_json()
    assert body["widths"] == [32, 64, 128]
    assert body["width_dim"] == "w"
    assert body["steps"] == [1, 2, 3]
    assert [entry["name"] for entry in body["parametrizations"]] == ["sp", "mup"]
    for entry in body["parametrizations"]:
        names = [layer["name"] for layer in entry["layers"]]
        assert names == ["fc1", "fc2", "fc3"]
        for layer in entry["layers"]:
            assert len(layer["mean"]) == 3 and all(len(r) == 3 for r in layer["mean"])
            assert len(layer["slopes"]) == 3
    assert body["cost"]["work"] <= body["budget"]
    assert body["data"]
    assert body["axes"]["x"]["scale"] == "log2"


def test_the_same_coordinate_check_gives_the_same_bytes(api: ContractClient):
    first = api.post("/v1/mup/coord-check", json_body=SMALL).get_data()
    second = api.post("/v1/mup/coord-check", json_body=SMALL).get_data()

    assert first == second


def test_a_zero_readout_reads_0_at_the_init_and_has_no_slope(api: ContractClient):
    body = api.post(
        "/v1/mup/coord-check",
        json_body=SMALL | {"readout_zero_init": True, "parametrizations": ["mup"]},
    ).get_json()
    (mup,) = body["parametrizations"]
    readout = mup["layers"][-1]

    assert readout["mean"][0] == [0.0, 0.0, 0.0]
    assert readout["slopes"][0] is None


def test_a_transfer_check_answers_per_width_and_learning_rate(api: ContractClient):
    body = {
        "spec": {
            "preset": {"name": "mlp", "d_in": 8, "width": 32, "depth": 2, "d_out": 4}
        },
        "widths": [32, 64],
        "lrs": [1e-3, 1e-2, 1e-1],
        "steps": 6,
        "seeds": 1,
        "batch_size": 8,
    }
    response = api.post("/v1/mup/transfer-check", json_body=body)

    assert response.status_code == 200, response.get_data(as_text=True)
    answer = response.get_json()
    assert answer["lrs"] == [1e-3, 1e-2, 1e-1]
    for entry in answer["parametrizations"]:
        assert [curve["width"] for curve in entry["curves"]] == [32, 64]
        for curve in entry["curves"]:
            assert len(curve["losses"]) == 3
            assert curve["best_lr"] in answer["lrs"]
        assert entry["verdict"] in ("transfers", "drifts", "undetermined")


@pytest.mark.parametrize(
    "change, pointer",
    [
        ({"widths": [64]}, "/widths"),
        ({"steps": 0}, "/steps"),
        ({"parametrizations": ["np"]}, "/parametrizations/0"),
        ({"optimizer": "lion"}, "/optimizer"),
        ({"lr": 0}, "/lr"),
    ],
)
def test_a_bad_coordinate_check_is_refused_at_its_field(
    api: ContractClient, change: dict, pointer: str
) -> None:
    response = api.post("/v1/mup/coord-check", json_body=SMALL | change, conforms=False)

    assert problem(response, pointer)


def test_layers_the_engine_cannot_train_are_named(api: ContractClient) -> None:
    spec = {
        "dims": {"d": 32},
        "layers": [
            {"kind": "linear", "name": "fc", "in": 8, "out": "d"},
            {"kind": "attention", "name": "attn", "d_model": "d", "n_heads": 4},
            {"kind": "linear", "name": "head", "in": "d", "out": 4},
        ],
    }

    response = api.post("/v1/mup/coord-check", json_body=SMALL | {"spec": spec})

    assert response.status_code == 422, response.get_data(as_text=True)
    assert "attn" in response.get_data(as_text=True)


def test_training_over_the_budget_is_refused_before_any_work(make_api) -> None:
    limits = dataclasses.replace(MupLimits(), training_budget=1_000_000)
    api = make_api(Config(mup_limits=limits))

    response = api.post("/v1/mup/coord-check", json_body=SMALL)

    body = response.get_json()
    assert body["type"] == PROBLEMS + "limit-exceeded"
    assert body["limit"] == "training_budget"
    assert "INITLAB_TRAINING_BUDGET" in body["detail"]
    assert "training_budget" in body["errors"][0]["message"]
