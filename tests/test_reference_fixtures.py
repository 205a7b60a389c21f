"""The service's numbers against those PyTorch, Keras and JAX produce.

Every expected value comes from ``tests/fixtures/reference/*.json``, written by
``tools/make_reference_fixtures.py`` from the libraries themselves (``make
fixtures``); this test needs none of them. Each case is a one-layer spec and
the initlab scheme that corresponds to the library call; it is posted to
``POST /v1/recommendations`` and every number the library fixed is compared at
a relative error of 1e-12. Activation moments and PyTorch's gains are
compared through ``GET /v1/activations``.

When a number disagrees, the library is right: fix the service, never the
fixture (regenerate the fixtures only when a library version changes).
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from initlab.web.app import create_app

FIXTURES = Path(__file__).resolve().parent / "fixtures" / "reference"
RELATIVE_TOLERANCE = 1e-12
INITIALIZER_FILES = (
    "pytorch_init.json",
    "pytorch_module_defaults.json",
    "keras_init.json",
    "jax_init.json",
)


def load(file_name: str) -> dict:
    return json.loads((FIXTURES / file_name).read_text())


def cases_of(*file_names: str) -> list[dict]:
    return [case for name in file_names for case in load(name)["cases"]]


INITIALIZER_CASES = cases_of(*INITIALIZER_FILES)
ACTIVATIONS = load("activations.json")


@pytest.fixture(scope="module")
def client():
    return create_app().test_client()


def relative_error(ours: float, library: float) -> float:
    if ours == library:
        return 0.0
    return abs(ours - library) / max(abs(ours), abs(library))


def assert_close(
    ours: float | None, library: float, what: str, tolerance: float = RELATIVE_TOLERANCE
) -> None:
    assert ours is not None, f"{what}: ours is null, the library's is {library!r}"
    error = relative_error(ours, library)
    assert error <= tolerance, (
        f"{what}: ours {ours!r}, the library's {library!r} (relative error {error:.3g})"
    )


def recommend(client, case: dict) -> dict[str, dict]:
    body = {"spec": {"dims": {}, "layers": [case["layer"]]}, "scheme": case["scheme"]}
    response = client.post("/v1/recommendations", json=body)
    assert response.status_code == 200, (
        f"{case['id']}: {response.status_code} {response.get_data(as_text=True)}"
    )
    return {row["name"]: row for row in response.get_json()["parameters"]}


def check_parameter(row: dict, expected: dict, case_id: str) -> None:
    """Compare one parameter's row with what the library did to it."""
    what = f"{case_id} {expected['name']}"
    assert row["distribution"] == expected["distribution"], (
        f"{what} distribution: ours {row['distribution']!r}, "
        f"the library's {expected['distribution']!r}"
    )
    for fan in ("fan_in", "fan_out"):
        if expected[fan] is not None:
            assert row[fan] == expected[fan], (
                f"{what} {fan}: ours {row[fan]!r}, the library's {expected[fan]!r}"
            )
    if expected["gain"] is not None:
        assert_close(row["gain"], expected["gain"], f"{what} gain")

    if expected["std"] == 0.0:
        assert row["std"] == 0.0, f"{what} std: ours {row['std']!r}, the library's 0"
    else:
        assert_close(row["std"], expected["std"], f"{what} std")

    if expected["distribution"] == "constant":
        assert row["mean"] == expected["value"], (
            f"{what} value: ours {row['mean']!r}, the library's {expected['value']!r}"
        )
    elif expected["distribution"] in ("normal", "uniform"):
        # Zero means: compare on the scale of the distribution.
        scale = max(abs(expected["mean"]), expected["std"])
        assert abs(row["mean"] - expected["mean"]) <= RELATIVE_TOLERANCE * scale, (
            f"{what} mean: ours {row['mean']!r}, the library's {expected['mean']!r}"
        )

    if expected["bound"] is None:
        assert row["bound"] is None, f"{what} bound: ours {row['bound']!r}, none"
    else:
        assert_close(row["bound"], expected["bound"], f"{what} bound")

    if expected["truncation"] is None:
        assert row["truncation"] is None, (
            f"{what} truncation: ours {row['truncation']!r}, the library cuts nothing"
        )
    else:
        assert row["truncation"] is not None, f"{what}: ours is not truncated"
        for key in ("lower", "upper", "sampler_std"):
            assert_close(
                row["truncation"][key],
                expected["truncation"][key],
                f"{what} truncation.{key}",
            )


@pytest.mark.parametrize("case", INITIALIZER_CASES, ids=lambda case: case["id"])
def test_recommendation_matches_the_library(client, case):
    rows = recommend(client, case)

    for expected in case["parameters"]:
        assert expected["name"] in rows, (
            f"{case['id']}: no parameter {expected['name']!r} in {sorted(rows)}"
        )
        check_parameter(rows[expected["name"]], expected, case["id"])


MOMENTS = (
    "second_moment_gain",
    "variance_gain",
    "gradient_gain",
    "second_moment",
    "derivative_second_moment",
)


@pytest.mark.parametrize("case", ACTIVATIONS["cases"], ids=lambda case: case["id"])
def test_activation_matches_pytorch_and_quadrature(client, case):
    response = client.get(
        "/v1/activations", query_string={"name": case["name"], **case["parameters"]}
    )
    assert response.status_code == 200, response.get_data(as_text=True)
    (ours,) = response.get_json()["activations"]

    assert ours["name"] == case["name"]
    # PyTorch's calculate_gain is plain float arithmetic: equal to the bit.
    assert ours["pytorch_gain"] == case["pytorch_gain"], (
        f"{case['id']} pytorch_gain: ours {ours['pytorch_gain']!r}, "
        f"{case['pytorch_gain_call']} gives {case['pytorch_gain']!r}"
    )
    for moment in MOMENTS:
        assert_close(ours[moment], case[moment], f"{case['id']} {moment}")
    # E[φ] is 0 for odd φ: compare on the scale of φ, √E[φ²].
    scale = math.sqrt(case["second_moment"])
    assert abs(ours["mean"] - case["mean"]) <= RELATIVE_TOLERANCE * scale, (
        f"{case['id']} mean: ours {ours['mean']!r}, quadrature {case['mean']!r}"
    )


def calculate_gain_calls_for_activations() -> list[dict]:
    """The calculate_gain calls that name an initlab activation with a valid slope."""
    # initlab's identity is PyTorch's 'linear' (see the activation cases);
    # calculate_gain('identity') itself raises.
    names = {case["name"] for case in ACTIVATIONS["cases"]} - {"identity"}
    return [
        entry
        for entry in ACTIVATIONS["calculate_gain"]
        if entry["nonlinearity"] in names
        and (entry["param"] is None or type(entry["param"]) is float)
        and (entry["param"] is None or 0.0 <= entry["param"] <= 1.0)
    ]


@pytest.mark.parametrize(
    "entry", calculate_gain_calls_for_activations(), ids=lambda entry: entry["call"]
)
def test_pytorch_gain_is_calculate_gain(client, entry):
    query = {"name": entry["nonlinearity"]}
    if entry["param"] is not None:
        query["negative_slope"] = entry["param"]
    response = client.get("/v1/activations", query_string=query)
    assert response.status_code == 200, response.get_data(as_text=True)
    (ours,) = response.get_json()["activations"]

    # None where PyTorch raises (gelu, silu, elu, ...).
    assert ours["pytorch_gain"] == entry["gain"], (
        f"{entry['call']}: ours {ours['pytorch_gain']!r}, PyTorch "
        f"{entry['raises'] or entry['gain']!r}"
    )


def test_fixtures_hold_the_documented_library_numbers():
    """Guards the fixture files against a broken regeneration.

    The documented numbers (shared/reference/initializers.md) were computed
    in a slightly different order of operations, so a few differ from the
    library's by one unit in the last place: compare at 1e-15.
    """
    by_id = {case["id"]: case["parameters"] for case in INITIALIZER_CASES}

    def first(case_id: str) -> dict:
        return by_id[case_id][0]

    def documented(value: float, number: float, what: str) -> None:
        assert_close(value, number, what, tolerance=1e-15)

    relu = first("kaiming_normal_/linear_784_256/fan_in/relu")
    assert (relu["fan_in"], relu["fan_out"]) == (784, 256)
    documented(relu["std"], 0.050507627227610534, "kaiming_normal relu std")
    documented(
        first("kaiming_uniform_/linear_784_256/fan_in/relu")["bound"],
        0.08748177652797065,
        "kaiming_uniform relu bound",
    )
    documented(
        first("kaiming_normal_/conv2d_64_128_k3/fan_out/relu")["std"],
        1 / 24,
        "conv fan_out std",
    )
    transposed = first("kaiming_normal_/conv_transpose2d_64_128_k3/fan_in/relu")
    assert (transposed["fan_in"], transposed["fan_out"]) == (1152, 576)
    depthwise = first("kaiming_normal_/conv2d_depthwise_32_k3/fan_in/relu")
    assert (depthwise["fan_in"], depthwise["fan_out"]) == (9, 288)
    documented(
        first("xavier_uniform_/linear_100_300/gain=1.0")["bound"],
        0.1224744871391589,
        "xavier_uniform bound",
    )
    documented(first("default/nn.Linear(784, 256)")["bound"], 1 / 28, "Linear bound")
    trunc = first("trunc_normal_/linear_768_768/mean=0.0/std=0.02/a=-0.04/b=0.04")
    assert abs(trunc["std"] - 0.0175925) < 1e-7
    documented(
        first("keras.HeNormal/dense_784_256")["truncation"]["sampler_std"],
        0.057419456326711804,
        "Keras he_normal sampler std",
    )

    for name in INITIALIZER_FILES + ("activations.json",):
        versions = load(name)["generated_by"]["libraries"]
        assert versions.get("torch", "2.13.0").startswith("2.13.0")
        assert versions.get("keras", "3.15.1") == "3.15.1"
        assert versions.get("jax", "0.10.2") == "0.10.2"
