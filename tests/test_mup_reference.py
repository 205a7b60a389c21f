"""The µP tables of POST /v1/mup/table against what the mup package gives.

Every expected value comes from ``tests/fixtures/reference/mup_*.json``,
written by ``tools/make_mup_fixtures.py`` from microsoft's mup 1.0.0 run with
PyTorch 2.13 (``make fixtures``); this test needs neither. Each case is posted
to the service as it is stored, and for every target the readout's output
multiplier and, for every parameter, the learning rate, weight decay and init
std the package gave are compared at a relative error of 1e-12 (exactly, where
the package's number is 0).

The gpt-conv1d family stores its attention and MLP weights (in, out). The
package then takes the output dimension as fan_in, so its file holds the
package's numbers: a row is compared through its ``mup_package`` entry when it
has one. The row's own numbers for those weights must be the true fan_in
answer, which is the gpt family's for the same question.

When a number disagrees, the package is right: fix the service, never the
fixture (regenerate the fixtures only when a pinned version changes).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest

from initlab.web.app import create_app

FIXTURES = Path(__file__).resolve().parent / "fixtures" / "reference"
RELATIVE_TOLERANCE = 1e-12
FIELDS = ("lr", "weight_decay", "init_std")
FAMILIES = ("mlp", "gpt", "gpt-conv1d", "mlp-3072")
IN_OUT_FAMILY = "gpt-conv1d"
OUT_IN_TWIN = "gpt"
# Tensors per block of the gpt specs stored (in, out) in gpt-conv1d:
# q, k, v, o and the MLP's c_fc and c_proj.
IN_OUT_WEIGHTS_PER_BLOCK = 6


def load_families() -> dict[str, dict]:
    """Every mup_<family>.json, by family."""
    return {
        path.stem.removeprefix("mup_"): json.loads(path.read_text(encoding="utf-8"))
        for path in sorted(FIXTURES.glob("mup_*.json"))
    }


DOCUMENTS = load_families()
CASES = [
    pytest.param(family, case, id=case["id"])
    for family, document in DOCUMENTS.items()
    for case in document["cases"]
]
IN_OUT_CASES = [
    pytest.param(case, id=case["id"])
    for case in DOCUMENTS.get(IN_OUT_FAMILY, {"cases": []})["cases"]
]


@pytest.fixture(scope="module")
def client():
    return create_app().test_client()


@pytest.fixture(scope="module")
def table(client) -> Callable[[dict], dict]:
    """The service's answer to a case's request, posted once per case."""
    answers: dict[str, dict] = {}

    def answer(case: dict) -> dict:
        if case["id"] not in answers:
            response = client.post("/v1/mup/table", json=case["request"])
            assert response.status_code == 200, (
                f"{case['id']}: {response.status_code}"
                f" {response.get_data(as_text=True)[:2000]}"
            )
            answers[case["id"]] = response.get_json()
        return answers[case["id"]]

    return answer


def relative_error(ours: float, package: float) -> float:
    if ours == package:
        return 0.0
    return abs(ours - package) / max(abs(ours), abs(package))


def assert_close(ours: object, package: float, what: str) -> None:
    assert isinstance(ours, float), f"{what}: ours is {ours!r}, not a float"
    if package == 0.0:
        assert ours == 0.0, f"{what}: ours {ours!r}, the package's is exactly 0"
        return

    error = relative_error(ours, package)
    assert error <= RELATIVE_TOLERANCE, (
        f"{what}: ours {ours!r}, the package's {package!r} (relative error {error:.3g})"
    )


def rows_by_name(target: dict, where: str) -> dict[str, dict]:
    rows = {row["name"]: row for row in target["parameters"]}
    assert len(rows) == len(target["parameters"]), f"{where}: a name repeats"
    return rows


def differs(package: dict, true_answer: dict) -> bool:
    return any(
        relative_error(package[field], true_answer[field]) > RELATIVE_TOLERANCE
        for field in FIELDS
    )


def in_out_weight_names(parameters: dict) -> set[str]:
    """The gpt-conv1d weights stored (in, out): attention and MLP projections."""
    return {
        name
        for name in parameters
        if name.endswith(".weight") and (".attn." in name or ".mlp." in name)
    }


def twin_case(case: dict) -> dict:
    """The gpt case asking the same question of the (out, in) spec."""

    def question(candidate: dict) -> dict:
        return {k: v for k, v in candidate["request"].items() if k != "spec"}

    twins = [
        candidate
        for candidate in DOCUMENTS[OUT_IN_TWIN]["cases"]
        if question(candidate) == question(case)
    ]
    assert len(twins) == 1, f"{case['id']}: {len(twins)} gpt cases ask the same"
    return twins[0]


def test_every_family_has_fixtures():
    assert set(DOCUMENTS) == set(FAMILIES)
    for family, document in DOCUMENTS.items():
        assert document["versions"]["mup"] == "1.0.0", family
        assert document["cases"], family


def test_conv1d_fixtures_depart_from_the_true_fan_in():
    """The layout check below is not vacuous: some package numbers are wrong."""
    departures = []
    for case in DOCUMENTS[IN_OUT_FAMILY]["cases"]:
        twin = twin_case(case)
        pairs = zip(
            case["expected"]["targets"], twin["expected"]["targets"], strict=True
        )
        for package, true_answer in pairs:
            assert package["dims"] == true_answer["dims"], case["id"]
            departures += [
                (case["id"], name)
                for name in in_out_weight_names(package["parameters"])
                if differs(package["parameters"][name], true_answer["parameters"][name])
            ]

    assert ("gpt-conv1d-adamw-out2.5", "h.0.mlp.c_fc.weight") in departures
    assert ("gpt-conv1d-sgd-out2.5", "h.1.mlp.c_proj.weight") in departures


@pytest.mark.parametrize(("family", "case"), CASES)
def test_table_matches_the_mup_package(family: str, case: dict, table) -> None:
    answer = table(case)
    expected_targets = case["expected"]["targets"]
    assert len(answer["targets"]) == len(expected_targets), case["id"]

    for index, (ours, expected) in enumerate(
        zip(answer["targets"], expected_targets, strict=True)
    ):
        where = f"{case['id']} target {index} {expected['dims']}"
        assert ours["dims"] == expected["dims"], where
        assert_close(
            ours["output_multiplier"],
            expected["output_multiplier"],
            f"{where} output_multiplier",
        )

        rows = rows_by_name(ours, where)
        assert set(rows) == set(expected["parameters"]), where
        for name, values in expected["parameters"].items():
            row = rows[name]
            compared = row
            if family == IN_OUT_FAMILY and row["mup_package"] is not None:
                compared = row["mup_package"]
            for field in FIELDS:
                assert_close(compared[field], values[field], f"{where} {name} {field}")


@pytest.mark.parametrize("case", IN_OUT_CASES)
def test_in_out_weights_get_the_true_fan_in(case: dict, table) -> None:
    answer = table(case)
    twin = twin_case(case)
    n_layer = case["request"]["spec"]["dims"]["n_layer"]
    targets = zip(
        answer["targets"],
        case["expected"]["targets"],
        twin["expected"]["targets"],
        strict=True,
    )

    for index, (ours, package, true_answer) in enumerate(targets):
        where = f"{case['id']} target {index} {package['dims']}"
        rows = rows_by_name(ours, where)
        names = in_out_weight_names(package["parameters"])
        assert len(names) == IN_OUT_WEIGHTS_PER_BLOCK * n_layer, where

        for name in sorted(names):
            row = rows[name]
            assert row["layout"] == "in_out", f"{where} {name}"
            for field in FIELDS:
                assert_close(
                    row[field],
                    true_answer["parameters"][name][field],
                    f"{where} {name} {field} (true fan_in)",
                )
            if differs(package["parameters"][name], true_answer["parameters"][name]):
                assert row["mup_package"] is not None, (
                    f"{where} {name}: the package uses the fan_out multiplier"
                    " here, but the row has no mup_package entry"
                )
