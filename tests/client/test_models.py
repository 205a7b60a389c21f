"""The client's result types: built from JSON, blind to fields they do not know."""

from __future__ import annotations

import copy
import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from initlab_client import (
    ActivationInfo,
    InvalidResponse,
    ParameterRecommendation,
    Recommendations,
    SchemeInfo,
    Truncation,
)

KAIMING_STD = math.sqrt(2.0) / math.sqrt(784)

WEIGHT = {
    "name": "fc.weight",
    "shape": [256, 784],
    "layer": "fc",
    "kind": "linear",
    "tensor": "weight",
    "layout": "out_in",
    "scheme": {"name": "kaiming_normal", "mode": "fan_in"},
    "fan_in": 784,
    "fan_out": 256,
    "signal_fan_in": 784,
    "signal_fan_out": 256,
    "gain": math.sqrt(2.0),
    "gain_source": "pytorch",
    "distribution": "truncated_normal",
    "mean": 0.0,
    "std": KAIMING_STD,
    "bound": None,
    "truncation": {"lower": -0.1, "upper": 0.1, "sampler_std": 0.06},
    "pytorch": "torch.nn.init.kaiming_normal_(w, nonlinearity='relu')",
    "convention": "pytorch",
    "tied_to": None,
    "notes": ["a note"],
}
BIAS = {
    **WEIGHT,
    "name": "fc.bias",
    "shape": [256],
    "tensor": "bias",
    "distribution": "constant",
    "std": 0.0,
    "truncation": None,
    "notes": [],
}
RECOMMENDATIONS = {
    "scheme": {"name": "kaiming_normal", "mode": "fan_in"},
    "overrides": [
        {"pattern": "*.bias", "scheme": {"name": "zeros"}, "matched": ["fc.bias"]}
    ],
    "dims": {"d_in": 784},
    "parameter_count": 784 * 256 + 256,
    "residual_branch_count": 0,
    "parameters": [WEIGHT, BIAS],
    "notes": [],
}
ACTIVATION = {
    "name": "leaky_relu",
    "parameters": {"negative_slope": 0.2},
    "pytorch_gain": math.sqrt(2.0 / (1 + 0.2**2)),
    "second_moment_gain": 1.0,
    "variance_gain": 1.0,
    "gradient_gain": 1.0,
    "mean": 0.3,
    "second_moment": 0.52,
    "derivative_second_moment": 0.52,
    "method": "closed_form",
    "notes": [],
}
SCHEME = {
    "name": "kaiming_normal",
    "description": "He et al. (2015), normal.",
    "applies_to": ["linear", "conv"],
    "options": [
        {
            "name": "mode",
            "type": "string",
            "default": "fan_in",
            "allowed": ["fan_in", "fan_out"],
            "description": "Which fan keeps its variance.",
        }
    ],
    "formula": r"\sigma = g / \sqrt{\mathrm{fan}}",
    "source": "He et al. 2015",
    "convention": "pytorch",
}

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=8),
    lambda inner: (
        st.lists(inner, max_size=3)
        | st.dictionaries(st.text(max_size=5), inner, max_size=3)
    ),
    max_leaves=6,
)


def test_parameter_reads_every_contract_field() -> None:
    parameter = ParameterRecommendation.from_json(WEIGHT)

    assert parameter.name == "fc.weight"
    assert parameter.shape == (256, 784)
    assert parameter.std == KAIMING_STD
    assert parameter.truncation == Truncation(-0.1, 0.1, 0.06)
    assert parameter.scheme == {"name": "kaiming_normal", "mode": "fan_in"}
    assert parameter.notes == ("a note",)
    assert parameter.raw == WEIGHT


def test_recommendations_nest_parameters_and_overrides() -> None:
    result = Recommendations.from_json(RECOMMENDATIONS)

    assert result.parameter_count == 200960
    assert [p.name for p in result.parameters] == ["fc.weight", "fc.bias"]
    assert result.parameters[1].truncation is None
    assert result.overrides[0].matched == ("fc.bias",)
    assert result.overrides[0].scheme == {"name": "zeros"}
    assert result.by_name("fc.bias").distribution == "constant"


def test_by_name_of_an_unknown_parameter_says_what_names_look_like() -> None:
    result = Recommendations.from_json(RECOMMENDATIONS)

    with pytest.raises(KeyError, match=r"'fc\.wieght'.*like 'fc\.weight'"):
        result.by_name("fc.wieght")


@pytest.mark.parametrize(
    ("model", "data"),
    [
        (Recommendations, RECOMMENDATIONS),
        (ActivationInfo, ACTIVATION),
        (SchemeInfo, SCHEME),
    ],
)
def test_unknown_fields_are_ignored_and_kept_in_raw(model, data) -> None:
    newer = {**copy.deepcopy(data), "added_in_v1_5": {"anything": [1, 2]}}

    assert model.from_json(newer) == model.from_json(data)
    assert model.from_json(newer).raw["added_in_v1_5"] == {"anything": [1, 2]}


@given(extra=st.dictionaries(st.text(max_size=12), json_values, max_size=4))
def test_a_parameter_ignores_any_added_field(extra: dict) -> None:
    added = {key: value for key, value in extra.items() if key not in WEIGHT}

    parameter = ParameterRecommendation.from_json({**WEIGHT, **added})

    assert parameter == ParameterRecommendation.from_json(WEIGHT)
    assert parameter.raw == {**WEIGHT, **added}


def test_nested_unknown_fields_are_ignored() -> None:
    newer = copy.deepcopy(RECOMMENDATIONS)
    newer["parameters"][0]["truncation"]["method"] = "inverse_cdf"
    newer["overrides"][0]["priority"] = 1
    newer_scheme = {**SCHEME, "options": [{**SCHEME["options"][0], "unit": None}]}

    assert Recommendations.from_json(newer) == Recommendations.from_json(
        RECOMMENDATIONS
    )
    assert SchemeInfo.from_json(newer_scheme).options[0].allowed == (
        "fan_in",
        "fan_out",
    )


def test_a_missing_contract_field_is_an_invalid_response_naming_it() -> None:
    older = copy.deepcopy(RECOMMENDATIONS)
    del older["parameters"][1]["std"]

    with pytest.raises(InvalidResponse, match=r"parameters\[1\].*'std'"):
        Recommendations.from_json(older)


def test_a_non_object_is_an_invalid_response() -> None:
    with pytest.raises(InvalidResponse, match="expected a JSON object, got list"):
        ActivationInfo.from_json([ACTIVATION])


def test_results_are_read_only() -> None:
    parameter = ParameterRecommendation.from_json(WEIGHT)

    with pytest.raises(AttributeError):
        parameter.std = 1.0  # type: ignore[misc]
