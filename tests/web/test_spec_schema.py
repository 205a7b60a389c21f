"""initlab.web.schemas.spec: the JSON shape of a spec, its errors, its OpenAPI form."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest
import yaml
from apispec import APISpec
from apispec.ext.marshmallow import MarshmallowPlugin
from hypothesis import given, settings
from hypothesis import strategies as st
from marshmallow import ValidationError
from openapi_schema_validator import OAS31Validator

from initlab.core.errors import InvalidInput, LimitExceeded
from initlab.core.spec import (
    ConvSpec,
    LinearSpec,
    NormLayerSpec,
    ResidualGroup,
    Spec,
    SpecLimits,
    expand,
)
from initlab.core.types import Activation
from initlab.web.schemas.spec import SpecSchema, add_spec_components, load_spec

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def errors_of(data) -> dict[tuple, list[str]]:
    """Every message of a failed load, keyed by the path of its field."""
    with pytest.raises(ValidationError) as raised:
        load_spec(data)

    found: dict[tuple, list[str]] = {}

    def walk(messages, path):
        if isinstance(messages, dict):
            for key, nested in messages.items():
                walk(nested, path if key == "_schema" else (*path, key))
        else:
            found.setdefault(path, []).extend(messages)

    walk(raised.value.messages, ())
    return found


def only_error(data) -> tuple[tuple, str]:
    errors = errors_of(data)
    assert len(errors) == 1, errors
    [(path, messages)] = errors.items()
    assert len(messages) == 1, messages
    return path, messages[0]


def spec_with(*layers, dims=None) -> dict:
    return {"dims": dims or {"d": 8}, "layers": list(layers)}


def linear(**fields) -> dict:
    return {"kind": "linear", "in": 8, "out": 8, **fields}


# --- Loading ----------------------------------------------------------------------


def test_loads_every_field_into_the_core_dataclasses():
    spec = load_spec(
        spec_with(
            linear(
                name="fc",
                out="d",
                bias=False,
                activation={"name": "leaky_relu", "negative_slope": 0.2},
                layout="in_out",
            ),
            {
                "kind": "residual",
                "norm": "pre",
                "norm_layer": {"kind": "rms_norm", "name": "ln"},
                "layers": [
                    {
                        "kind": "conv2d",
                        "in": 8,
                        "out": 8,
                        "kernel_size": [3, "d"],
                        "groups": 2,
                        "stride": [1, 2],
                        "padding": "same",
                    }
                ],
            },
        )
    )

    assert spec == Spec(
        dims={"d": 8},
        layers=(
            LinearSpec(
                name="fc",
                in_features=8,
                out_features="d",
                bias=False,
                activation=Activation("leaky_relu", (("negative_slope", 0.2),)),
                layout="in_out",
            ),
            ResidualGroup(
                norm="pre",
                norm_layer=NormLayerSpec(kind="rms_norm", name="ln"),
                layers=(
                    ConvSpec(
                        kind="conv2d",
                        in_features=8,
                        out_features=8,
                        kernel_size=(3, "d"),
                        groups=2,
                    ),
                ),
            ),
        ),
    )


def test_gpt2_example_loads_and_expands():
    data = json.loads((EXAMPLES / "gpt2-small.spec.json").read_text())
    expanded = expand(load_spec(data))

    assert expanded.parameter_count == 124_439_808
    assert expanded.residual_branch_count == 24


def test_dims_are_optional():
    assert load_spec({"layers": [linear()]}).dims == {}


# --- Errors at the exact path, saying what is allowed ------------------------------


def test_unknown_kind_suggests_the_closest():
    path, message = only_error(spec_with(linear(), {"kind": "lineer", "in": 1}))

    assert path == ("layers", 1, "kind")
    assert 'unknown layer kind "lineer"' in message
    assert "allowed: linear, conv1d" in message and "sequential" in message
    assert 'did you mean "linear"?' in message


def test_missing_kind():
    path, message = only_error(spec_with({"in": 8, "out": 8}))

    assert path == ("layers", 0, "kind")
    assert "needs a 'kind'" in message


@pytest.mark.parametrize(
    ("size", "expected"),
    [
        (0, "got 0; sizes start at 1"),
        (-3, "got -3; sizes start at 1"),
        (True, "got true (booleans are not sizes)"),
        (2.5, "got 2.5"),
        (None, "got null"),
        ("768", 'got the string "768"'),
        ("two words", 'got the string "two words"'),
    ],
)
def test_sizes_are_positive_integers_or_dim_names(size, expected):
    path, message = only_error(spec_with(linear(), linear(out=size)))

    assert path == ("layers", 1, "out")
    assert message.startswith("must be a positive integer or the name of a dim")
    assert expected in message


def test_quoted_numbers_get_a_hint():
    _, message = only_error(spec_with(linear(**{"in": "768"})))

    assert "write numbers without quotes" in message


def test_missing_size():
    spec = spec_with(linear())
    del spec["layers"][0]["out"]
    path, message = only_error(spec)

    assert path == ("layers", 0, "out")
    assert message == 'missing: a linear layer needs "out"'


def test_unknown_field_names_the_allowed_fields():
    path, message = only_error(spec_with(linear(activaton="relu")))

    assert path == ("layers", 0, "activaton")
    assert 'unknown field "activaton" in a linear layer' in message
    assert "allowed fields: activation, bias, in, kind, layout, name, out, tied_to" in (
        message
    )
    assert 'did you mean "activation"?' in message


def test_unknown_field_at_the_top_and_in_a_norm_layer():
    residual = {
        "kind": "residual",
        "norm": "pre",
        "norm_layer": {"kind": "layer_norm", "eps": 1e-5},
        "layers": [linear()],
    }
    errors = errors_of({**spec_with(residual), "extra": 1})

    assert set(errors) == {("extra",), ("layers", 0, "norm_layer", "eps")}
    assert "allowed fields: dims, layers" in errors[("extra",)][0]
    assert (
        "allowed fields: bias, kind, name"
        in errors[("layers", 0, "norm_layer", "eps")][0]
    )


def test_unknown_activation():
    path, message = only_error(spec_with(linear(activation="relux")))

    assert path == ("layers", 0, "activation")
    assert 'unknown activation "relux"' in message
    assert '"relu"' in message


def test_bad_activation_parameter():
    activation = {"name": "leaky_relu", "negative_slope": 2}
    path, message = only_error(spec_with(linear(activation=activation)))

    assert path == ("layers", 0, "activation", "negative_slope")
    assert "[0, 1]" in message and "got 2" in message


def test_activation_parameter_of_another_activation():
    activation = {"name": "relu", "alpha": 1.0}
    path, message = only_error(spec_with(linear(activation=activation)))

    assert path == ("layers", 0, "activation", "alpha")
    assert "relu takes no parameters" in message


@pytest.mark.parametrize(
    ("field", "value", "expected"),
    [
        ("bias", 1, "must be true or false; got 1"),
        ("bias", "yes", 'must be true or false; got "yes"'),
        ("name", 3, "Not a valid string."),
        ("name", "a.b", "no dots"),
        ("layout", "inout", 'unknown layout "inout"; allowed: out_in, in_out'),
        ("tied_to", ["wte"], "Not a valid string."),
    ],
)
def test_wrong_types(field, value, expected):
    path, message = only_error(spec_with(linear(**{field: value})))

    assert path == ("layers", 0, field)
    assert expected in message


def test_wrong_container_types():
    errors = errors_of({"dims": [1], "layers": {"kind": "linear"}})

    assert set(errors) == {("dims",), ("layers",)}
    assert "dims must be an object" in errors[("dims",)][0]
    assert "a spec takes a list of layers and groups" in errors[("layers",)][0]


def test_items_that_are_not_objects():
    path, message = only_error(spec_with(linear(), 5))

    assert path == ("layers", 1)
    assert message == "a layer must be an object with a 'kind'; got 5"


def test_bad_dims():
    errors = errors_of(spec_with(linear(), dims={"d": True, "2d": 4, "ok": 1}))

    assert errors == {
        ("dims", "d"): ['dim "d" must be a positive integer; got true'],
        ("dims", "2d"): [
            "a dim name must be an identifier (letters, digits and '_', not"
            ' starting with a digit); got "2d"'
        ],
    }


def test_kernel_size_items_are_checked_one_by_one():
    conv = {"kind": "conv2d", "in": 8, "out": 8, "kernel_size": [3, 0]}
    path, message = only_error(spec_with(conv))

    assert path == ("layers", 0, "kernel_size", 1)
    assert "sizes start at 1" in message


def test_stride_and_padding_are_accepted_and_checked():
    conv = {"kind": "conv1d", "in": 8, "out": 8, "kernel_size": 3}
    load_spec(spec_with({**conv, "stride": 2, "padding": [0]}))
    load_spec(spec_with({**conv, "padding": "valid"}))
    path, message = only_error(spec_with({**conv, "stride": 0}))

    assert path == ("layers", 0, "stride")
    assert "integer ≥ 1" in message and "ignored" in message


def test_groups_need_layers_and_a_norm_placement():
    errors = errors_of(spec_with({"kind": "residual", "layers": []}))

    assert set(errors) == {("layers", 0, "norm"), ("layers", 0, "layers")}
    assert errors[("layers", 0, "norm")] == [
        'missing: a residual group needs "norm"; allowed: pre, post, none'
    ]
    assert "at least one layer" in errors[("layers", 0, "layers")][0]


def test_nested_error_paths_are_exact():
    inner = {"kind": "sequential", "name": "mlp", "layers": [linear(), linear(out=-1)]}
    block = {"kind": "residual", "norm": "none", "layers": [inner]}
    spec = spec_with({"kind": "repeat", "count": 2, "name": "h", "layers": [block]})
    path, _ = only_error(spec)

    assert path == ("layers", 0, "layers", 0, "layers", 0, "layers", 1, "out")


def test_every_problem_is_listed():
    spec = spec_with(linear(bias=1), {"kind": "nope"}, linear(out=0))

    assert set(errors_of(spec)) == {
        ("layers", 0, "bias"),
        ("layers", 1, "kind"),
        ("layers", 2, "out"),
    }


def test_semantic_rules_are_left_to_the_core_with_spec_paths():
    spec = load_spec(spec_with(linear(), linear(**{"in": "d_modle"})))
    with pytest.raises(InvalidInput) as raised:
        expand(spec)

    [problem] = raised.value.problems
    assert problem.path == ("layers", 1, "in")
    assert 'unknown dim "d_modle"' in problem.message


def test_repeat_count_over_the_limit_after_loading():
    spec = load_spec(
        spec_with({"kind": "repeat", "count": 10**9, "layers": [linear()]})
    )
    with pytest.raises(LimitExceeded) as raised:
        expand(spec)

    assert raised.value.limit == "max_repeat_count"
    assert raised.value.problems[0].path == ("layers", 0, "count")


def test_long_lists_are_refused_before_loading():
    data = {"layers": [{"kind": "not even checked"}] * 5}
    with pytest.raises(LimitExceeded) as raised:
        load_spec(data, SpecLimits(max_layers=4))

    assert raised.value.limit == "max_layers"
    assert raised.value.problems[0].path == ("layers",)


def test_deep_nesting_is_refused_before_loading():
    item = linear()
    for _ in range(4):
        item = {"kind": "sequential", "layers": [item]}
    with pytest.raises(LimitExceeded) as raised:
        SpecSchema(limits=SpecLimits(max_nesting_depth=3)).load({"layers": [item]})

    assert raised.value.limit == "max_nesting_depth"
    assert raised.value.problems[0].path == ("layers", 0, *("layers", 0) * 3, "layers")


# --- OpenAPI -------------------------------------------------------------------------


@pytest.fixture(scope="module")
def components() -> dict:
    document = APISpec("test", "1", "3.1.0", plugins=[MarshmallowPlugin()])
    add_spec_components(document)
    add_spec_components(document)  # a second call changes nothing
    return document.to_dict()["components"]["schemas"]


@pytest.fixture(scope="module")
def spec_validator(components) -> OAS31Validator:
    return OAS31Validator(
        {"$ref": "#/components/schemas/Spec", "components": {"schemas": components}}
    )


def test_layer_union_is_one_of_with_a_discriminator(components):
    union = components["Layer"]
    mapping = union["discriminator"]["mapping"]

    assert union["discriminator"]["propertyName"] == "kind"
    assert set(mapping) == {
        "linear",
        "conv1d",
        "conv2d",
        "conv3d",
        "conv_transpose1d",
        "conv_transpose2d",
        "conv_transpose3d",
        "embedding",
        "layer_norm",
        "rms_norm",
        "batch_norm",
        "attention",
        "gated_mlp",
        "residual",
        "repeat",
        "sequential",
    }
    assert mapping["conv2d"] == "#/components/schemas/ConvLayer"
    assert {"$ref": mapping["residual"]} in union["oneOf"]
    assert components["Spec"]["properties"]["layers"]["items"] == {
        "$ref": "#/components/schemas/Layer"
    }


def test_layer_components_are_closed_and_name_their_required_fields(components):
    linear_layer = components["LinearLayer"]

    assert linear_layer["additionalProperties"] is False
    assert sorted(linear_layer["required"]) == ["in", "kind", "out"]
    assert linear_layer["properties"]["in"] == {"$ref": "#/components/schemas/Size"}
    assert components["ResidualGroup"]["properties"]["norm"]["enum"] == [
        "pre",
        "post",
        "none",
    ]


@pytest.mark.parametrize("name", sorted(p.name for p in EXAMPLES.glob("*.spec.json")))
def test_the_examples_match_the_openapi_description(spec_validator, name):
    spec_validator.validate(json.loads((EXAMPLES / name).read_text()))


@pytest.mark.parametrize(
    "layer",
    [
        {"kind": "lineer", "in": 8, "out": 8},
        linear(out=True),
        linear(out=0),
        linear(activaton="relu"),
        linear(activation={"name": "relu", "slope": 1}),
        {"kind": "conv2d", "in": 8, "out": 8},
        {"kind": "residual", "layers": [linear()]},
    ],
)
def test_the_openapi_description_refuses_what_the_schema_refuses(spec_validator, layer):
    data = spec_with(layer)
    with pytest.raises(ValidationError):
        load_spec(copy.deepcopy(data))

    assert not spec_validator.is_valid(data)


# --- Robustness ----------------------------------------------------------------------

_values = st.one_of(
    st.integers(min_value=-3, max_value=300),
    st.booleans(),
    st.none(),
    st.sampled_from(["d", "e", "pre", "post", "none", "relu", "in_out", "0", "a.b"]),
    st.floats(allow_nan=False, allow_infinity=False),
    st.lists(st.integers(min_value=-1, max_value=5), max_size=4),
)
_keys = st.sampled_from(
    [
        "kind", "name", "in", "out", "bias", "activation", "layout", "tied_to",
        "kernel_size", "groups", "stride", "padding", "d_model", "n_heads",
        "n_kv_heads", "d_head", "fused_qkv", "d_ff", "norm", "norm_layer", "count",
        "shortcut", "layers", "extra",
    ]
)  # fmt: skip
_kinds = st.sampled_from(
    [
        "linear", "conv1d", "conv_transpose2d", "embedding", "layer_norm",
        "rms_norm", "batch_norm", "attention", "gated_mlp", "residual", "repeat",
        "sequential", "lineer",
    ]
)  # fmt: skip
_items = st.recursive(
    st.fixed_dictionaries(
        {"kind": _kinds}, optional={"in": _values, "out": _values}
    ).flatmap(
        lambda base: st.dictionaries(_keys, _values, max_size=5).map(
            lambda extra: {**extra, **base}
        )
    ),
    lambda children: st.fixed_dictionaries(
        {
            "kind": st.sampled_from(["residual", "repeat", "sequential"]),
            "layers": st.lists(children, max_size=3),
        },
        optional={
            "norm": st.sampled_from(["pre", "post", "none"]),
            "count": _values,
            "name": st.sampled_from(["a", "b", "0"]),
            "shortcut": st.lists(children, max_size=2),
        },
    ),
    max_leaves=8,
)


@settings(max_examples=200, deadline=None)
@given(
    layers=st.lists(_items, max_size=4),
    dims=st.dictionaries(st.sampled_from(["d", "e", "2x"]), _values, max_size=2),
)
def test_any_json_spec_is_refused_with_a_field_error_or_expands(layers, dims):
    try:
        expanded = expand(load_spec({"dims": dims, "layers": layers}))
    except ValidationError as error:
        assert error.messages
    except InvalidInput as error:
        assert error.problems
        assert all(problem.message for problem in error.problems)
    else:
        assert expanded.parameter_count >= 0


def test_components_share_no_objects(components):
    # A dict used twice would be written as a YAML anchor and alias into
    # openapi.yaml, which some OpenAPI tools do not read.
    text = yaml.safe_dump(components)

    assert "&id" not in text and "*id" not in text
