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


# --- µP tables ---------------------------------------------------------------------

GPT_DIMS = ("vocab", "n_positions", "d_model", "d_ff", "n_layer", "n_head")
SMALL_GPT = {
    "dims": {
        "vocab": 50,
        "n_positions": 16,
        "d_model": 8,
        "d_ff": 32,
        "n_layer": 2,
        "n_head": 2,
    },
    "layers": [
        {"kind": "embedding", "name": "wte", "in": "vocab", "out": "d_model"},
        {"kind": "embedding", "name": "wpe", "in": "n_positions", "out": "d_model"},
        {
            "kind": "repeat",
            "name": "h",
            "count": "n_layer",
            "layers": [
                {
                    "kind": "residual",
                    "norm": "pre",
                    "norm_layer": {"kind": "layer_norm", "name": "ln_1"},
                    "layers": [
                        {
                            "kind": "attention",
                            "name": "attn",
                            "d_model": "d_model",
                            "n_heads": "n_head",
                            "layout": "in_out",
                        }
                    ],
                },
                {
                    "kind": "residual",
                    "norm": "pre",
                    "layers": [
                        {
                            "kind": "linear",
                            "name": "fc",
                            "in": "d_model",
                            "out": "d_ff",
                        },
                        {
                            "kind": "linear",
                            "name": "proj",
                            "in": "d_ff",
                            "out": "d_model",
                        },
                    ],
                },
            ],
        },
        {
            "kind": "linear",
            "name": "head",
            "in": "d_model",
            "out": "vocab",
            "tied_to": "wte",
        },
    ],
}
dim_overrides = st.dictionaries(
    st.sampled_from([*GPT_DIMS, "d_modle"]),
    st.integers(1, 96) | st.sampled_from([0, -4, 2.0, "8", None]),
    max_size=4,
)
mup_requests = st.fixed_dictionaries(
    {
        "spec": st.just(SMALL_GPT) | specs,
        "targets": st.lists(dim_overrides, max_size=3) | json_values,
        "lr": st.floats(-1, 2) | st.sampled_from([1e-3, 0, "1e-3"]),
    },
    optional={
        "base_dims": dim_overrides,
        "optimizer": st.sampled_from(["adam", "adamw", "sgd", "lion"]),
        "weight_decay": st.floats(-1, 1),
        "init_std": st.floats(-1, 1) | st.none(),
        "init_scheme": schemes,
        "form": st.sampled_from(["mup_package", "table3", "practitioner", "table8"]),
        "weight_decay_convention": st.sampled_from(
            ["mup_package", "unscaled", "independent", "coupled"]
        ),
        "depth": st.none()
        | st.fixed_dictionaries(
            {"rule": st.sampled_from(["completep", "depth_mup", "u_mup"])},
            optional={"alpha": st.floats(0, 2)},
        ),
        "width_dims": st.lists(st.sampled_from([*GPT_DIMS, "x"]), max_size=3),
        "width_dim": st.sampled_from([*GPT_DIMS, "x"]),
        "output_multiplier": st.floats(-1, 1e7),
        "readout_zero_init": st.booleans() | st.none(),
    },
)


@FUZZ
@given(body=mup_requests)
def test_mup_tables_get_200_or_a_problem(api: ContractClient, body: dict) -> None:
    response = api.post("/v1/mup/table", json_body=body, conforms=None)

    _answered_without_a_crash(response)


@st.composite
def plausible_mup_requests(draw: st.DrawFn) -> dict:
    """Requests that mostly reach the mathematics: widths that divide into heads,
    depth changes only with a depth rule, every option drawn from its choices."""
    depth = draw(
        st.none()
        | st.just({"rule": "depth_mup"})
        | st.fixed_dictionaries(
            {"rule": st.just("completep")},
            optional={"alpha": st.sampled_from([0.5, 0.75, 1.0])},
        )
    )

    def dims() -> dict:
        n_head = draw(st.sampled_from([1, 2, 4]))
        chosen = {
            "d_model": n_head * draw(st.sampled_from([2, 4, 16])),
            "d_ff": draw(st.sampled_from([8, 32, 128])),
            "n_head": n_head,
        }
        if depth is not None:
            chosen["n_layer"] = draw(st.sampled_from([1, 2, 4, 8]))
        return draw(st.sampled_from([chosen, {}, {"d_model": chosen["d_model"]}]))

    body = {
        "spec": SMALL_GPT,
        "base_dims": dims(),
        "targets": [dims() for _ in range(draw(st.integers(1, 3)))],
        "lr": draw(st.sampled_from([1e-3, 0.1, 3.0])),
        "depth": depth,
    }
    optional = {
        "optimizer": st.sampled_from(["adam", "adamw", "sgd"]),
        "weight_decay": st.sampled_from([0.0, 0.1]),
        "init_scheme": st.sampled_from(["torch_default", "auto", "xavier_uniform"]),
        "form": st.sampled_from(["mup_package", "table3", "practitioner"]),
        "weight_decay_convention": st.sampled_from(
            ["mup_package", "unscaled", "independent"]
        ),
        "width_dims": st.lists(
            st.sampled_from(["d_model", "d_ff", "n_head"]), max_size=3, unique=True
        ),
        "query_zero_init": st.booleans(),
        "output_multiplier": st.sampled_from([0.5, 1.0, 10.0]),
    }
    for name, strategy in optional.items():
        if draw(st.booleans()):
            body[name] = draw(strategy)

    return body


@FUZZ
@given(body=plausible_mup_requests())
def test_plausible_mup_tables_get_a_documented_answer(
    api: ContractClient, body: dict
) -> None:
    """Near-valid requests reach the mathematics: a 200 that conforms, or a 422."""
    response = api.post("/v1/mup/table", json_body=body, conforms=None)

    _answered_without_a_crash(response)


# --- µP checks, imports and presets ------------------------------------------------

small_widths = st.lists(st.sampled_from([4, 8, 16, -1, 0, 2.5, "8"]), max_size=3)
check_requests = st.fixed_dictionaries(
    {},
    optional={
        "spec": st.just(
            {
                "dims": {"w": 8},
                "layers": [
                    {"kind": "linear", "name": "a", "in": 3, "out": "w"},
                    {"kind": "linear", "name": "b", "in": "w", "out": 2},
                ],
            }
        )
        | specs
        | st.just({"preset": {"name": "mlp", "d_in": 3, "width": 8, "d_out": 2}}),
        "widths": small_widths,
        "width_dim": st.sampled_from(["w", "d", "x"]),
        "base_dims": st.dictionaries(st.sampled_from(["w", "q"]), st.integers(-1, 9)),
        "optimizer": st.sampled_from(["adam", "sgd", "adamw", "rmsprop"]),
        "lr": st.floats(-1, 10) | st.sampled_from([1e-3, "0.1"]),
        "steps": st.integers(-1, 3),
        "seeds": st.integers(-1, 2),
        "batch_size": st.integers(-1, 4),
        "parametrizations": st.lists(st.sampled_from(["sp", "mup", "ntk"]), max_size=2),
        "readout_zero_init": st.booleans(),
        "loss": st.sampled_from(["cross_entropy", "mse", "hinge"]),
        "lrs": st.lists(st.floats(-1, 1), max_size=3),
    },
)


@FUZZ
@given(body=check_requests, path=st.sampled_from(["coord-check", "transfer-check"]))
def test_mup_checks_get_200_or_a_problem(
    api: ContractClient, body: dict, path: str
) -> None:
    if path == "coord-check":
        body.pop("lrs", None)
    else:
        body.setdefault("steps", 2)
        body.setdefault("widths", [4, 8])
        body.setdefault("lrs", [1e-3, 1e-2])
    response = api.post(f"/v1/mup/{path}", json_body=body, conforms=None)

    _answered_without_a_crash(response)


config_values = st.integers(-2, 8) | st.sampled_from([None, "8", 8.0, True, [], {}])
hf_configs = st.fixed_dictionaries(
    {
        "model_type": st.sampled_from(
            ["gpt2", "llama", "mistral", "bert", "t5", "vit", "x"]
        )
    },
    optional={
        key: config_values
        for key in (
            "vocab_size",
            "n_positions",
            "n_embd",
            "n_layer",
            "n_head",
            "hidden_size",
            "intermediate_size",
            "num_hidden_layers",
            "num_attention_heads",
            "num_key_value_heads",
            "max_position_embeddings",
            "type_vocab_size",
            "d_model",
            "d_kv",
            "d_ff",
            "num_layers",
            "num_heads",
            "image_size",
            "patch_size",
            "num_channels",
        )
    },
)


@FUZZ
@given(
    body=st.fixed_dictionaries(
        {"format": st.sampled_from(["huggingface", "torchvision", "onnx"])},
        optional={
            "config": hf_configs | json_values,
            "arch": st.sampled_from(["resnet18", "resnet50", "vgg16"]) | json_values,
            "options": st.dictionaries(
                st.sampled_from(["num_classes", "groups", "width_per_group", "x"]),
                config_values,
            ),
            "head": st.sampled_from(["default", "lm", "pooler", "none", "?"]),
        },
    )
)
def test_imports_get_200_or_a_problem(api: ContractClient, body: dict) -> None:
    response = api.post("/v1/specs/import", json_body=body, conforms=None)

    _answered_without_a_crash(response)


@FUZZ
@given(
    preset=st.sampled_from(["mlp", "resnet", "transformer", "cnn"]),
    params=st.dictionaries(
        st.sampled_from(
            ["width", "depth", "d_model", "n_heads", "n_layer", "blocks", "widths", "x"]
        ),
        config_values | st.lists(st.integers(-1, 4), max_size=4),
        max_size=3,
    ),
)
def test_presets_get_200_or_a_problem(
    api: ContractClient, preset: str, params: dict
) -> None:
    response = api.post(
        "/v1/specs/expand", json_body={"preset": preset, **params}, conforms=None
    )

    _answered_without_a_crash(response)


@FUZZ
@given(
    body=st.fixed_dictionaries(
        {
            "spec": st.just(
                {
                    "dims": {"w": 8},
                    "layers": [
                        {"kind": "linear", "name": "a", "in": 3, "out": "w"},
                        {
                            "kind": "residual",
                            "norm": "pre",
                            "norm_layer": {"kind": "rms_norm", "name": "n"},
                            "layers": [
                                {
                                    "kind": "linear",
                                    "name": "h",
                                    "in": "w",
                                    "out": "w",
                                    "activation": "tanh",
                                }
                            ],
                        },
                        {"kind": "linear", "name": "b", "in": "w", "out": 2},
                    ],
                }
            ),
            "widths": st.lists(
                st.sampled_from([4, 8, 16]), min_size=2, max_size=3, unique=True
            ),
            "width_dim": st.just("w"),
        },
        optional={
            "optimizer": st.sampled_from(["adam", "sgd", "adamw"]),
            "lr": st.sampled_from([1e-3, 0.1, 10.0]),
            "steps": st.integers(2, 3),
            "seeds": st.integers(1, 2),
            "batch_size": st.integers(1, 4),
            "parametrizations": st.lists(
                st.sampled_from(["sp", "mup"]), min_size=1, max_size=2, unique=True
            ),
            "readout_zero_init": st.booleans(),
            "loss": st.sampled_from(["cross_entropy", "mse"]),
            "init_scheme": st.sampled_from(["auto", "xavier_uniform", "orthogonal"]),
        },
    )
)
def test_plausible_coordinate_checks_conform(api: ContractClient, body: dict) -> None:
    response = api.post("/v1/mup/coord-check", json_body=body, conforms=None)

    _answered_without_a_crash(response)
