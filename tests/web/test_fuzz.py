"""Arbitrary requests never crash the service and always get a documented answer.

Hypothesis builds bodies that are near-misses of real specs (right shape,
random values) and arbitrary JSON; whatever it sends, the answer is a 200 or a
problem the document describes, never a 500.
"""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from initlab.core.activations import ACTIVATION_NAMES
from initlab.core.schemes import SCHEME_NAMES
from initlab.core.spec import ITEM_KINDS

from .conftest import ContractClient

FUZZ = settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
DIMS = ("d", "width", "vocab")

scalars = (
    st.none()
    | st.booleans()
    | st.integers(-3, 70)
    | st.floats(allow_nan=False, allow_infinity=False, width=32)
    | st.text(max_size=6)
)
json_values = st.recursive(
    scalars,
    lambda children: (
        st.lists(children, max_size=3)
        | st.dictionaries(st.text(max_size=6), children, max_size=3)
    ),
    max_leaves=12,
)
sizes = st.integers(-1, 48) | st.sampled_from([*DIMS, "missing", "", 2.5, None])
activations = st.sampled_from([*ACTIVATION_NAMES, "swish"]) | st.fixed_dictionaries(
    {"name": st.sampled_from(ACTIVATION_NAMES)},
    optional={"negative_slope": st.floats(-1, 2), "alpha": st.floats(-1, 3)},
)
layer_fields = {
    "in": sizes,
    "out": sizes,
    "name": st.sampled_from(["a", "b", "fc", "0", "x.y", ""]),
    "bias": st.booleans(),
    "activation": activations,
    "kernel_size": sizes | st.lists(sizes, max_size=3),
    "groups": sizes,
    "d_model": sizes,
    "n_heads": sizes,
    "d_ff": sizes,
    "count": sizes,
    "norm": st.sampled_from(["pre", "post", "none", "mid"]),
    "layout": st.sampled_from(["out_in", "in_out", "in"]),
    "tied_to": st.sampled_from(["a", "b", "fc", "nowhere"]),
    "fused_qkv": st.booleans(),
}


def _layers(children: st.SearchStrategy) -> st.SearchStrategy:
    return st.lists(children, min_size=1, max_size=3)


layers = st.recursive(
    st.fixed_dictionaries(
        {"kind": st.sampled_from([*ITEM_KINDS, "dense"])}, optional=layer_fields
    ),
    lambda children: st.fixed_dictionaries(
        {
            "kind": st.sampled_from(["residual", "repeat", "sequential"]),
            "layers": _layers(children),
        },
        optional=layer_fields,
    ),
    max_leaves=6,
)
specs = st.fixed_dictionaries(
    {
        "dims": st.dictionaries(
            st.sampled_from(DIMS), st.integers(-1, 48) | st.text(max_size=3), max_size=3
        ),
        "layers": _layers(layers),
    }
)
schemes = (
    st.sampled_from([*SCHEME_NAMES, "xavier"])
    | st.fixed_dictionaries(
        {"name": st.sampled_from(SCHEME_NAMES)},
        optional={
            "gain": st.floats(-1, 3) | st.none(),
            "mode": st.sampled_from(["fan_in", "fan_out", "fan_avg"]),
            "std": st.floats(-1, 1),
            "nonlinearity": st.sampled_from(["layer", "relu", "tanh", "cosine"]),
        },
    )
    | json_values
)
requests = st.fixed_dictionaries(
    {"spec": specs},
    optional={
        "scheme": schemes,
        "overrides": st.dictionaries(
            st.sampled_from(["*", "a*", "*.bias", "nothing", ""]), schemes, max_size=2
        ),
    },
)


def _answered_without_a_crash(response) -> None:
    assert response.status_code in (200, 400, 422), response.get_data(as_text=True)


@FUZZ
@given(body=requests)
def test_near_miss_specs_get_200_or_a_problem(api: ContractClient, body: dict) -> None:
    response = api.post("/v1/recommendations", json_body=body, conforms=None)

    _answered_without_a_crash(response)


@FUZZ
@given(body=json_values)
def test_arbitrary_json_gets_a_problem(api: ContractClient, body: object) -> None:
    response = api.post("/v1/recommendations", json_body=body, conforms=None)

    _answered_without_a_crash(response)
    assert response.status_code != 200


@FUZZ
@given(data=st.binary(max_size=64))
def test_arbitrary_bytes_get_a_problem(api: ContractClient, data: bytes) -> None:
    response = api.post(
        "/v1/recommendations", data=data, content_type="application/json", conforms=None
    )

    _answered_without_a_crash(response)


@FUZZ
@given(
    query=st.dictionaries(
        st.sampled_from(["name", "negative_slope", "alpha", "beta", "gamma"]),
        st.sampled_from([*ACTIVATION_NAMES, "0.5", "-1", "nan", "inf", "1e400", ""]),
        max_size=3,
    )
)
def test_arbitrary_activation_queries_get_200_or_422(
    api: ContractClient, query: dict[str, str]
) -> None:
    response = api.get("/v1/activations", query=query, conforms=None)

    assert response.status_code in (200, 422), response.get_data(as_text=True)
