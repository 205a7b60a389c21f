"""POST /v1/mup/table: defaults echoed, the request's rules, limits, a large table.

Every exchange goes through the ``api`` fixture, which checks it against
openapi.yaml. The numbers themselves are checked in tests/core/test_mup.py
(by hand) and tests/test_mup_reference.py (against the mup package); here they
only show that the answer is the core's, written as JSON.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest
from werkzeug.test import TestResponse

from initlab.core.mup import MupLimits
from initlab.web.config import Config

from .conftest import ContractClient, load_example

PROBLEMS = "https://initlab.dev/problems/"
PATH = "/v1/mup/table"

# 3072 → w → w → 10 (tests/fixtures/mup/mlp-3072.spec.json).
MLP = {
    "dims": {"d_in": 3072, "w": 256, "n_out": 10},
    "layers": [
        {
            "kind": "linear",
            "name": "fc1",
            "in": "d_in",
            "out": "w",
            "activation": "relu",
        },
        {"kind": "linear", "name": "fc2", "in": "w", "out": "w", "activation": "relu"},
        {"kind": "linear", "name": "readout", "in": "w", "out": "n_out"},
    ],
}
REQUEST = {"spec": MLP, "targets": [{"w": 1024}], "lr": 1e-3}


def problem_of(response: TestResponse, kind: str = "validation") -> dict:
    """The problem body, after the checks every 422 must pass."""
    assert response.status_code == 422, response.get_data(as_text=True)
    assert response.mimetype == "application/problem+json"
    body = json.loads(response.get_data())
    assert body["type"] == PROBLEMS + kind
    assert body["status"] == 422
    assert body["instance"] == response.headers["X-Request-ID"]
    return body


def pointers(body: dict) -> list[str]:
    return [error["pointer"] for error in body["errors"]]


def message_at(body: dict, pointer: str) -> str:
    found = [
        error["message"] for error in body["errors"] if error["pointer"] == pointer
    ]
    assert found, f"no error at {pointer}: {pointers(body)}"
    return found[0]


def post(api: ContractClient, conforms: bool | None = True, **fields: Any):
    return api.post(PATH, json_body={**REQUEST, **fields}, conforms=conforms)


# --- 200 ---------------------------------------------------------------------------


def test_a_minimal_request_echoes_every_default(api: ContractClient) -> None:
    response = api.post(PATH, json_body=REQUEST)

    assert response.status_code == 200, response.get_data(as_text=True)
    assert response.mimetype == "application/json"
    body = response.get_json()
    echoed = {
        key: value
        for key, value in body.items()
        if key not in ("convention", "notes", "targets")
    }
    assert echoed == {
        "form": "mup_package",
        "optimizer": "adamw",
        "lr": 1e-3,
        "weight_decay": 0.0,
        "eps": 1e-8,
        "weight_decay_convention": "mup_package",
        "init": {"std": 0.02},
        "readout_zero_init": True,
        "query_zero_init": False,
        "output_multiplier": 1.0,
        "input_multiplier": 1.0,
        "attention_multiplier": 1.0,
        "depth": None,
        "width_dims": ["w"],
        "depth_dims": [],
        "width_dim": "w",
        "base": {
            "dims": {"d_in": 3072, "w": 256, "n_out": 10},
            # 3072·256 + 256 + 256·256 + 256 + 256·10 + 10
            "parameter_count": 855_050,
            "residual_branch_count": 0,
        },
    }
    assert "Table 8" in body["convention"]
    assert body["notes"]


def test_a_target_answers_in_the_contracts_shape(api: ContractClient) -> None:
    """w 256 → 1024: fc2 at η/4 and init σ/2, the readout at α/4, zero init."""
    response = api.post(PATH, json_body={**REQUEST, "weight_decay": 0.1})

    assert response.status_code == 200, response.get_data(as_text=True)
    (target,) = response.get_json()["targets"]
    rows = {row["name"]: row for row in target["parameters"]}
    assert list(rows) == [
        "fc1.weight",
        "fc1.bias",
        "fc2.weight",
        "fc2.bias",
        "readout.weight",
        "readout.bias",
    ]
    assert rows["fc2.weight"] == {
        "name": "fc2.weight",
        "shape": [1024, 1024],
        "base_shape": [256, 256],
        "layout": "out_in",
        "tied_to": None,
        "width_dims": ["w", "w"],
        "m_in": 4.0,
        "m_out": 4.0,
        "class": "matrix_like",
        "role": "hidden",
        "lr": 2.5e-4,
        "lr_multiplier": 0.25,
        "weight_decay": 0.4,
        "init_std": 0.01,
        "init_mean": 0.0,
        "init_distribution": "normal",
        "forward_multiplier": 1.0,
        "depth_scaled": False,
        "mup_package": None,
        "notes": [],
    }
    assert rows["readout.weight"]["init_std"] == 0.0
    assert rows["readout.weight"]["init_distribution"] == "constant"
    assert rows["readout.weight"]["forward_multiplier"] == 0.25
    assert target["output_multiplier"] == 0.25
    assert target["width_multipliers"] == {"w": 4.0}
    assert target["depth_multiplier"] == 1.0
    assert target["residual_multiplier"] == 1.0
    assert target["adam_eps"] == 1e-8
    assert target["attention_scale"] is None
    assert target["attention"] == []
    assert target["param_groups"] == [
        {
            "params": [
                "fc1.weight",
                "fc1.bias",
                "fc2.bias",
                "readout.weight",
                "readout.bias",
            ],
            "lr": 1e-3,
            "weight_decay": 0.1,
            "eps": 1e-8,
        },
        {"params": ["fc2.weight"], "lr": 2.5e-4, "weight_decay": 0.4, "eps": 1e-8},
    ]


def test_an_init_scheme_and_a_depth_rule_are_echoed_resolved(
    api: ContractClient,
) -> None:
    spec = {
        "dims": {"d": 64, "n": 2},
        "layers": [
            {"kind": "linear", "name": "inp", "in": 16, "out": "d"},
            {
                "kind": "repeat",
                "name": "h",
                "count": "n",
                "layers": [
                    {
                        "kind": "residual",
                        "norm": "pre",
                        "layers": [
                            {"kind": "linear", "name": "fc", "in": "d", "out": "d"}
                        ],
                    }
                ],
            },
            {"kind": "linear", "name": "out", "in": "d", "out": 10},
        ],
    }
    response = api.post(
        PATH,
        json_body={
            "spec": spec,
            "targets": [{"d": 256, "n": 8}],
            "lr": 1e-3,
            "init_scheme": "torch_default",
            "depth": {"rule": "depth_mup"},
        },
    )

    assert response.status_code == 200, response.get_data(as_text=True)
    body = response.get_json()
    assert body["init"] == {
        "scheme": {"name": "torch_default", "attention": "multihead_attention"}
    }
    assert body["depth"] == {"rule": "depth_mup", "alpha": 0.5}
    assert body["depth_dims"] == ["n"]
    assert body["width_dim"] == "d"
    (target,) = body["targets"]
    # m_L = 8/2 = 4: branches × 4^-½; ε/m_N/√m_L = 1e-8/4/2.
    assert target["residual_multiplier"] == 0.5
    assert target["adam_eps"] == pytest.approx(1.25e-9, rel=1e-12)


# --- 422: the request's own rules --------------------------------------------------


def test_a_missing_lr_is_named(api: ContractClient) -> None:
    request = {key: value for key, value in REQUEST.items() if key != "lr"}
    body = problem_of(api.post(PATH, json_body=request, conforms=False))

    assert pointers(body) == ["/lr"]
    assert message_at(body, "/lr") == 'missing: a µP table request needs "lr"'


@pytest.mark.parametrize("lr", [0, -1e-3, 5e-324])
def test_an_lr_that_is_not_positive_is_refused_with_the_range(
    api: ContractClient, lr: float
) -> None:
    body = problem_of(post(api, conforms=False, lr=lr))

    assert pointers(body) == ["/lr"]
    assert message_at(body, "/lr").startswith("must be a number in [1e-20, 1e6]; got")


def test_an_unknown_optimizer_gets_a_suggestion(api: ContractClient) -> None:
    body = problem_of(post(api, conforms=False, optimizer="adamm"))

    message = message_at(body, "/optimizer")
    assert "allowed: adamw, adam, sgd" in message
    assert 'did you mean "adam"?' in message


def test_no_targets_is_refused(api: ContractClient) -> None:
    body = problem_of(post(api, conforms=False, targets=[]))

    assert pointers(body) == ["/targets"]
    assert "at least one target" in message_at(body, "/targets")


def test_targets_must_be_a_list(api: ContractClient) -> None:
    body = problem_of(post(api, conforms=False, targets={"w": 1024}))

    assert pointers(body) == ["/targets"]
    message = message_at(body, "/targets")
    assert "list" in message
    assert '{"w": 1024}' in message


def test_each_bad_target_size_is_pointed_at(api: ContractClient) -> None:
    """0, "64" and 1.5 are not positive integers; each is named at its dim."""
    body = problem_of(
        post(api, conforms=False, targets=[{"w": 0}, {"w": "64"}, {"w": 1.5}])
    )

    assert pointers(body) == ["/targets/0/w", "/targets/1/w", "/targets/2/w"]
    assert "positive integer" in message_at(body, "/targets/0/w")
    assert '"64"' in message_at(body, "/targets/1/w")
    assert "1.5" in message_at(body, "/targets/2/w")


def test_a_bad_base_dim_is_pointed_at_by_its_name(api: ContractClient) -> None:
    """A size of 0 and a name that is no identifier: the pointer is the dim's
    own member of base_dims, as /spec/dims/<name> is for a spec's dims."""
    body = problem_of(post(api, conforms=False, base_dims={"w": 0, "e-f": 3}))

    assert sorted(pointers(body)) == ["/base_dims/e-f", "/base_dims/w"]
    assert "positive integer" in message_at(body, "/base_dims/w")
    assert "identifier" in message_at(body, "/base_dims/e-f")


def test_a_limit_the_spec_breaks_by_itself_is_the_specs_not_the_base_dims(
    make_api: Callable[..., ContractClient],
) -> None:
    # No base_dims and an empty target: the spec's own sizes break the limit,
    # so the problem is the spec's, as on every other endpoint.
    api = make_api(Config())
    wide = {**MLP, "dims": {**MLP["dims"], "n_out": 2**40}}

    body = problem_of(
        post(api, spec=wide, targets=[{}], conforms=None), "limit-exceeded"
    )

    assert pointers(body) == ["/spec/dims/n_out"]


def test_a_limit_a_target_breaks_with_a_size_it_gives_is_the_targets(
    make_api: Callable[..., ContractClient],
) -> None:
    api = make_api(Config())

    body = problem_of(
        post(api, targets=[{"w": 2**40}], conforms=None), "limit-exceeded"
    )

    assert pointers(body) == ["/targets/0/w"]


def test_a_limit_broken_inside_an_import_points_at_its_config(
    make_api: Callable[..., ContractClient],
) -> None:
    api = make_api(Config())
    config = {**load_example("hf/gpt2-small.json"), "n_layer": 20_000}
    spec = {"import": {"format": "huggingface", "config": config}}

    body = problem_of(
        post(api, spec=spec, targets=[{}], conforms=None), "limit-exceeded"
    )

    assert pointers(body) == ["/spec/import/config/n_layer"]


def test_an_unknown_target_dim_is_pointed_at_with_the_spec_dims(
    api: ContractClient,
) -> None:
    body = problem_of(post(api, targets=[{"w": 1024}, {"ww": 512}]))

    assert pointers(body) == ["/targets/1/ww"]
    assert "d_in, w, n_out" in message_at(body, "/targets/1/ww")


def test_init_std_and_init_scheme_together_are_refused(api: ContractClient) -> None:
    body = problem_of(post(api, init_std=0.02, init_scheme="torch_default"))

    assert pointers(body) == ["/init_scheme"]
    assert "give init_std or init_scheme, not both" in message_at(body, "/init_scheme")


def test_an_unknown_init_scheme_gets_a_suggestion(api: ContractClient) -> None:
    body = problem_of(post(api, conforms=False, init_scheme="torch_defualt"))

    assert pointers(body) == ["/init_scheme"]
    assert 'did you mean "torch_default"?' in message_at(body, "/init_scheme")


def test_depth_mup_refuses_another_alpha(api: ContractClient) -> None:
    body = problem_of(post(api, depth={"rule": "depth_mup", "alpha": 0.7}))

    assert pointers(body) == ["/depth/alpha"]
    message = message_at(body, "/depth/alpha")
    assert "depth_mup fixes α at 0.5" in message
    assert '"completep"' in message


def test_an_unknown_depth_rule_gets_a_suggestion(api: ContractClient) -> None:
    body = problem_of(post(api, conforms=False, depth={"rule": "complete"}))

    assert pointers(body) == ["/depth/rule"]
    message = message_at(body, "/depth/rule")
    assert "allowed: completep, depth_mup" in message
    assert 'did you mean "completep"?' in message


def test_an_unknown_field_is_named_with_the_allowed_ones(api: ContractClient) -> None:
    body = problem_of(post(api, conforms=False, wieght_decay=0.1))

    assert pointers(body) == ["/wieght_decay"]
    message = message_at(body, "/wieght_decay")
    assert 'unknown field "wieght_decay"' in message
    assert 'did you mean "weight_decay"?' in message


def test_a_depth_change_without_a_rule_points_at_the_repeat_count(
    api: ContractClient,
) -> None:
    spec = load_example("llama-2-7b.spec.json")
    body = problem_of(
        api.post(
            PATH,
            json_body={
                "spec": spec,
                "base_dims": {"d_model": 256, "d_ff": 688, "n_layer": 4},
                "targets": [{"d_model": 512, "d_ff": 1376, "n_layer": 8}],
                "lr": 3e-4,
            },
        )
    )

    assert pointers(body) == ["/targets/0/n_layer"]
    assert '"depth": {"rule": "completep"}' in message_at(body, "/targets/0/n_layer")


# --- 422: limits ---------------------------------------------------------------------


def test_too_many_targets_name_the_variable_that_raises_the_limit(
    make_api: Callable[[Config], ContractClient],
) -> None:
    api = make_api(Config(mup_limits=MupLimits(max_mup_targets=2)))
    body = problem_of(
        post(api, targets=[{"w": 512}, {"w": 1024}, {}]), "limit-exceeded"
    )

    assert body["limit"] == "max_mup_targets"
    assert body["limit_value"] == 2
    assert "INITLAB_MAX_MUP_TARGETS" in body["detail"]
    assert pointers(body) == ["/targets"]
    assert message_at(body, "/targets").startswith("3 targets are more than the 2")


def test_too_many_rows_name_their_limit(
    make_api: Callable[[Config], ContractClient],
) -> None:
    """Three targets of 6 tensors are 18 rows."""
    api = make_api(Config(mup_limits=MupLimits(max_mup_rows=17)))
    body = problem_of(
        post(api, targets=[{"w": 512}, {"w": 1024}, {}]), "limit-exceeded"
    )

    assert (body["limit"], body["limit_value"]) == ("max_mup_rows", 17)
    assert "INITLAB_MAX_MUP_ROWS" in body["detail"]
    assert "18 parameter tensors" in message_at(body, "/targets")


def test_the_default_target_limit_is_64(api: ContractClient) -> None:
    body = problem_of(
        post(api, targets=[{"w": 256 + i} for i in range(65)]),
        "limit-exceeded",
    )

    assert (body["limit"], body["limit_value"]) == ("max_mup_targets", 64)


# --- A Llama-2-7B-shaped table -------------------------------------------------------

LLAMA_TARGETS = [
    {"d_model": 512, "d_ff": 1376},
    {"d_model": 1024, "d_ff": 2752},
    {"d_model": 2048, "d_ff": 5504},
    {"d_model": 3072, "d_ff": 8256},
    {},
]


def test_a_llama_2_7b_table_from_a_256_wide_base(api: ContractClient) -> None:
    """Five targets of 291 tensors (embedding, 32 blocks of 9, norm, head)."""
    response = api.post(
        PATH,
        json_body={
            "spec": load_example("llama-2-7b.spec.json"),
            "base_dims": {"d_model": 256, "d_ff": 688},
            "targets": LLAMA_TARGETS,
            "lr": 3e-4,
            "weight_decay": 0.1,
        },
    )

    assert response.status_code == 200, response.get_data(as_text=True)[:2000]
    body = response.get_json()
    assert body["width_dims"] == ["d_model", "d_ff"]
    assert body["base"]["dims"]["d_model"] == 256
    assert [len(target["parameters"]) for target in body["targets"]] == [291] * 5
    full = body["targets"][-1]
    assert full["dims"]["d_model"] == 4096
    assert full["parameter_count"] == 6_738_415_616
    assert full["width_multipliers"] == {"d_model": 16.0, "d_ff": 16.0}
    rows = {row["name"]: row for row in full["parameters"]}
    # d_model ×16: hidden lr η/16, decay 16λ, std σ/4; the readout α/16.
    down = rows["model.layers.31.mlp.down.weight"]
    assert (down["lr"], down["weight_decay"], down["init_std"]) == pytest.approx(
        (3e-4 / 16, 0.1 * 16, 0.02 / 4), rel=1e-12
    )
    assert rows["lm_head.weight"]["forward_multiplier"] == 1 / 16
    assert rows["model.embed_tokens.weight"]["lr"] == 3e-4
    # 32 heads: d_head 8 → 128, scale √8/128.
    assert full["attention_scale"] == pytest.approx(8**0.5 / 128, rel=1e-12)
