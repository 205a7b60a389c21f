"""The client's µP checks: the models, what the methods send, the live service.

The unit tests read answers written out by hand for the MLP 8 → w → w → 4
(ReLU) at widths 32 and 128, whose log2 ratio is 2, so every slope of log2
mean |x| against log2 width is half the log2 ratio of its two means (Yang et
al. 2022, Tensor Programs V, §7: under SP a hidden layer grows with width
after the first update, under µP it stays flat). The live tests post the
same MLP, small enough to train in well under a second, to the real service
(gunicorn on 127.0.0.1).
"""

from __future__ import annotations

import copy
import json
import math
from collections.abc import Iterator

import numpy as np
import pytest
import requests

import initlab_client
from initlab_client import (
    TRAINING_READ_TIMEOUT,
    CheckAxis,
    Client,
    CoordCheck,
    CoordLayer,
    InvalidResponse,
    LimitExceeded,
    TrainingCost,
    TransferCheck,
    TransferCurve,
    ValidationError,
)

from .recording import RecordingAdapter
from .recording import recording_client as record

MLP = {
    "dims": {"w": 32},
    "layers": [
        {"kind": "linear", "name": "fc1", "in": 8, "out": "w", "activation": "relu"},
        {"kind": "linear", "name": "fc2", "in": "w", "out": "w", "activation": "relu"},
        {"kind": "linear", "name": "fc3", "in": "w", "out": 4},
    ],
}
DATA = (
    "Synthetic: inputs x ~ N(0, 1) of size 8, a fixed random linear teacher T"
    " with entries N(0, 1/8) drawn from seed 0, labels argmax(xT) over the 4"
    " outputs, loss cross-entropy; a fresh batch of 16 at every step, the same"
    " sequence of batches for every width, parametrization and learning rate."
)
COST = {
    "multiply_adds": 10838016,
    "other": 623815680,
    "random_numbers": 103216,
    "table_rows": 54,
    "runs": 12,
    "peak_bytes": 464720,
    "work": 956261696,
}


def coord_layer(name: str, role: str, mean: list, slopes: list, **values) -> dict:
    """A layer of the coordinate check, flat unless told, SDs of two seeds."""
    layer = {
        "name": name,
        "kind": "linear",
        "role": role,
        "mean": mean,
        "sd": [[0.05, 0.02] for _ in mean],
        "slopes": slopes,
        "verdict": "flat",
        "largest_slope": 0.0,
        "largest_slope_step": 2,
    }
    layer.update(values)
    return layer


# [step][width]: at t = 2, SP's fc2 doubles from width 32 to 128 (slope ½);
# at t = 3 its readout grows 8-fold (slope 1.5). µP keeps both flat, and its
# zero-initialized readout has no slope at the init.
COORD = {
    "widths": [32, 128],
    "width_dim": "w",
    "dims": [{"w": 32}, {"w": 128}],
    "optimizer": "adam",
    "weight_decay": 0.0,
    "batch_size": 16,
    "seeds": 2,
    "seed": 0,
    "loss": "cross_entropy",
    "init_scheme": {"name": "auto"},
    "readout_zero_init": True,
    "data": DATA,
    "cost": COST,
    "budget": 1200000000000,
    "notes": [
        "t = 1 is the init and t = 2..3 follow one update each (2 updates).",
    ],
    "lr": 0.01,
    "steps": [1, 2, 3],
    "parametrizations": [
        {
            "name": "sp",
            "hidden_flat": False,
            "summary": "SP: fc2 grows with width (slope 0.5 at t = 2).",
            "layers": [
                coord_layer(
                    "fc1", "input", [[0.75, 0.75], [0.7, 0.7], [0.72, 0.72]], [0, 0, 0]
                ),
                coord_layer(
                    "fc2",
                    "hidden",
                    [[0.7, 0.7], [0.5, 1.0], [0.5, 0.5 * math.sqrt(2)]],
                    [0.0, 0.5, 0.25],
                    verdict="grows",
                    largest_slope=0.5,
                ),
                coord_layer(
                    "fc3",
                    "output",
                    [[0.5, 0.5], [0.25, 1.0], [0.25, 2.0]],
                    [0.0, 1.0, 1.5],
                    verdict="grows",
                    largest_slope=1.5,
                    largest_slope_step=3,
                ),
            ],
        },
        {
            "name": "mup",
            "hidden_flat": True,
            "summary": "µP: all hidden layers flat (|slope| < 0.1 at t ≥ 2).",
            "layers": [
                coord_layer(
                    "fc1", "input", [[0.75, 0.75], [0.7, 0.7], [0.72, 0.72]], [0, 0, 0]
                ),
                coord_layer(
                    "fc2", "hidden", [[0.7, 0.7], [0.7, 0.7], [0.72, 0.72]], [0, 0, 0]
                ),
                coord_layer(
                    "fc3",
                    "output",
                    [[0.0, 0.0], [0.25, 0.25], [0.3, 0.3]],
                    [None, 0.0, 0.0],
                ),
            ],
        },
    ],
    "axes": {
        "x": {"label": "width (w)", "scale": "log2"},
        "y": {"label": "mean |x| of the layer's output", "scale": "log"},
    },
}


def transfer_curve(width: int, losses: list, best_index: int) -> dict:
    return {
        "width": width,
        "losses": losses,
        "sd": [None if loss is None else 0.0 for loss in losses],
        "best_index": best_index,
        "best_lr": LRS[best_index],
    }


# The grid 2⁻¹⁰, 2⁻⁸, 2⁻⁶, 2⁻⁴: SP's best lr moves from 2⁻⁶ at width 32 to
# 2⁻¹⁰ at 128 (2 grid steps, 4 in log2) and its largest lr diverges there;
# µP's stays at 2⁻⁶.
LRS = [2.0**-10, 2.0**-8, 2.0**-6, 2.0**-4]
TRANSFER = {
    "widths": [32, 128],
    "width_dim": "w",
    "dims": [{"w": 32}, {"w": 128}],
    "optimizer": "adam",
    "weight_decay": 0.0,
    "batch_size": 8,
    "seeds": 1,
    "seed": 0,
    "loss": "cross_entropy",
    "init_scheme": {"name": "auto"},
    "readout_zero_init": False,
    "data": DATA,
    "cost": COST,
    "budget": 1200000000000,
    "notes": ["Final loss: the mean of the last 1 of 6 training losses."],
    "lrs": LRS,
    "log2_lrs": [-10.0, -8.0, -6.0, -4.0],
    "steps": 6,
    "loss_window": 1,
    "verdict": "Across widths 32–128: SP drifts (best lr moves 2 grid steps);"
    " µP transfers (best lr moves 0 grid steps).",
    "parametrizations": [
        {
            "name": "sp",
            "curves": [
                transfer_curve(32, [1.2, 0.9, 0.8, 1.1], 2),
                transfer_curve(128, [0.6, 0.7, 1.5, None], 0),
            ],
            "drift": 2,
            "drift_log2": 4.0,
            "verdict": "drifts",
            "summary": "SP: the best learning rate moves by 2 grid steps.",
        },
        {
            "name": "mup",
            "curves": [
                transfer_curve(32, [1.2, 0.9, 0.8, 1.1], 2),
                transfer_curve(128, [1.1, 0.8, 0.6, 0.9], 2),
            ],
            "drift": 0,
            "drift_log2": 0.0,
            "verdict": "transfers",
            "summary": "µP: the best learning rate moves by 0 grid steps.",
        },
    ],
    "axes": {
        "x": {"label": "learning rate (base model's)", "scale": "log2"},
        "y": {"label": "final training loss (cross_entropy)", "scale": "linear"},
    },
}


# -- models ------------------------------------------------------------------


def test_a_coordinate_check_echoes_its_settings() -> None:
    check = CoordCheck.from_json(COORD)

    assert check.widths == (32, 128) and check.width_dim == "w"
    assert check.dims == ({"w": 32}, {"w": 128})
    assert check.steps == (1, 2, 3)
    assert (check.optimizer, check.lr, check.weight_decay) == ("adam", 0.01, 0.0)
    assert (check.batch_size, check.seeds, check.seed) == (16, 2, 0)
    assert check.loss == "cross_entropy" and check.init_scheme == {"name": "auto"}
    assert check.readout_zero_init is True
    assert check.data == DATA
    assert check.cost == TrainingCost(**COST)
    assert check.cost.work <= check.budget == 1.2e12
    assert check.axes == {
        "x": CheckAxis("width (w)", "log2"),
        "y": CheckAxis("mean |x| of the layer's output", "log"),
    }
    assert check.notes == (COORD["notes"][0],)
    assert check.raw == COORD


def test_a_coordinate_check_reads_each_layer_by_step_and_width() -> None:
    check = CoordCheck.from_json(COORD)
    sp, mup = check.parametrizations

    assert (sp.name, sp.hidden_flat) == ("sp", False)
    assert (mup.name, mup.hidden_flat) == ("mup", True)
    assert check.parametrization("mup") is mup
    hidden = sp.layer("fc2")
    assert isinstance(hidden, CoordLayer)
    assert (hidden.kind, hidden.role, hidden.verdict) == ("linear", "hidden", "grows")
    # mean[step][width]: at t = 2 the output doubles from width 32 to 128.
    assert hidden.mean[1] == (0.5, 1.0)
    assert hidden.slopes[1] == math.log2(1.0 / 0.5) / math.log2(128 / 32)
    assert (hidden.largest_slope, hidden.largest_slope_step) == (0.5, 2)
    assert hidden.sd == ((0.05, 0.02),) * 3
    assert sp.layer("fc3").slopes == (0.0, 1.0, 1.5)
    assert mup.layer("fc2").verdict == "flat"
    assert [layer.name for layer in mup.layers] == ["fc1", "fc2", "fc3"]
    assert mup.summary.startswith("µP: all hidden layers flat")


def test_a_zero_readout_has_no_slope_at_the_init() -> None:
    readout = CoordCheck.from_json(COORD).parametrization("mup").layer("fc3")

    assert readout.mean[0] == (0.0, 0.0)
    assert readout.slopes == (None, 0.0, 0.0)
    assert readout.verdict == "flat"
    assert readout.raw == COORD["parametrizations"][1]["layers"][2]


def test_a_transfer_check_reads_curves_drift_and_verdicts() -> None:
    check = TransferCheck.from_json(TRANSFER)
    sp, mup = check.parametrizations

    assert check.lrs == tuple(LRS) and check.log2_lrs == (-10, -8, -6, -4)
    assert (check.steps, check.loss_window) == (6, 1)
    assert check.verdict.startswith("Across widths 32–128: SP drifts")
    assert (sp.drift, sp.drift_log2, sp.verdict) == (2, 4.0, "drifts")
    assert (mup.drift, mup.drift_log2, mup.verdict) == (0, 0.0, "transfers")
    wide = sp.curve(128)
    assert isinstance(wide, TransferCurve)
    # The largest lr diverged at width 128: null loss and SD, never best.
    assert wide.losses == (0.6, 0.7, 1.5, None) and wide.sd[3] is None
    assert (wide.best_index, wide.best_lr) == (0, 2.0**-10)
    assert check.lrs[mup.curve(128).best_index] == mup.curve(128).best_lr == 2.0**-6
    # drift_log2 is the move of log2(best lr): from −6 at width 32 to −10.
    assert sp.drift_log2 == math.log2(sp.curve(32).best_lr) - math.log2(wide.best_lr)
    assert check.parametrization("sp") is sp
    assert check.cost.runs == 12
    assert check.axes["y"].scale == "linear"
    assert check.raw == TRANSFER


def test_an_undetermined_transfer_reads_no_drift() -> None:
    undetermined = copy.deepcopy(TRANSFER)
    entry = undetermined["parametrizations"][0]
    entry["curves"][1] |= {
        "losses": [None] * 4,
        "sd": [None] * 4,
        "best_index": None,
        "best_lr": None,
    }
    entry |= {"drift": None, "drift_log2": None, "verdict": "undetermined"}

    sp = TransferCheck.from_json(undetermined).parametrization("sp")

    assert (sp.drift, sp.drift_log2, sp.verdict) == (None, None, "undetermined")
    assert sp.curve(128).best_lr is None and sp.curve(128).losses == (None,) * 4


# Members kept whole as mappings (a resolved scheme, dims by name) or read as
# a mapping of models (axes by name): a member added there would be a dim, an
# option or an axis, not a field.
FREE_FORM = {"init_scheme", "dims", "axes"}


def _with_future_fields(document: object) -> object:
    """Every object of ``document`` with a member no client knows yet."""
    if isinstance(document, dict):
        newer = {
            key: value if key in FREE_FORM else _with_future_fields(value)
            for key, value in document.items()
        }
        newer["added_in_v1_9"] = {"anything": [1, 2]}
        return newer
    if isinstance(document, list):
        return [_with_future_fields(item) for item in document]

    return document


@pytest.mark.parametrize(
    ("model", "answer"), [(CoordCheck, COORD), (TransferCheck, TRANSFER)]
)
def test_fields_from_a_newer_service_are_ignored_and_kept_in_raw(model, answer) -> None:
    newer = _with_future_fields(copy.deepcopy(answer))

    check = model.from_json(newer)

    assert check == model.from_json(answer)
    assert check.raw["added_in_v1_9"] == {"anything": [1, 2]}
    assert check.parametrizations[0].raw["added_in_v1_9"] == {"anything": [1, 2]}


@pytest.mark.parametrize(
    ("model", "answer"), [(CoordCheck, COORD), (TransferCheck, TRANSFER)]
)
def test_dims_and_axes_are_optional_as_the_contract_says(model, answer) -> None:
    leaner = {
        key: value for key, value in answer.items() if key not in ("dims", "axes")
    }

    check = model.from_json(leaner)

    assert check.dims == () and check.axes == {}
    assert check.widths == (32, 128)
    assert "dims" not in check.raw


def test_a_missing_contract_field_is_named_where_it_is_missing() -> None:
    older = copy.deepcopy(COORD)
    del older["parametrizations"][1]["layers"][0]["verdict"]

    with pytest.raises(
        InvalidResponse, match=r"parametrizations\[1\]\.layers\[0\].*'verdict'"
    ):
        CoordCheck.from_json(older)


def test_a_curve_without_best_lr_is_an_invalid_response() -> None:
    older = copy.deepcopy(TRANSFER)
    del older["parametrizations"][0]["curves"][1]["best_lr"]

    with pytest.raises(
        InvalidResponse,
        match=r"^transfer check\.parametrizations\[0\]\.curves\[1\]: .*'best_lr'",
    ):
        TransferCheck.from_json(older)


def test_an_answer_that_is_not_an_object_is_an_invalid_response() -> None:
    with pytest.raises(InvalidResponse, match="coordinate check: expected a JSON"):
        CoordCheck.from_json([COORD])


def test_unknown_names_say_which_there_are() -> None:
    check = CoordCheck.from_json(COORD)
    transfer = TransferCheck.from_json(TRANSFER)

    with pytest.raises(KeyError, match=r"'fc4' under mup; layers: fc1, fc2, fc3"):
        check.parametrization("mup").layer("fc4")
    with pytest.raises(KeyError, match=r"'SP' in this check; it has sp, mup"):
        check.parametrization("SP")
    with pytest.raises(KeyError, match=r"width 64 under sp; widths: 32, 128"):
        transfer.parametrization("sp").curve(64)


def test_the_checks_are_read_only() -> None:
    layer = CoordCheck.from_json(COORD).parametrizations[0].layers[0]

    with pytest.raises(AttributeError):
        layer.verdict = "grows"  # type: ignore[misc]


# -- what the methods send ---------------------------------------------------


def recording_client(
    answer: dict = COORD, error: Exception | None = None, **options
) -> tuple[Client, RecordingAdapter]:
    return record(answer, error=error, **options)


def sent(adapter: RecordingAdapter) -> dict:
    (request,) = adapter.requests
    return json.loads(request.body)


def test_coord_check_sends_only_the_options_given() -> None:
    client, adapter = recording_client()

    check = client.coord_check(MLP, widths=[32, 64, 128], steps=3)

    (request,) = adapter.requests
    assert request.method == "POST"
    assert request.url == "http://initlab.test/v1/mup/coord-check"
    assert json.loads(request.body) == {
        "spec": MLP,
        "widths": [32, 64, 128],
        "steps": 3,
    }
    assert check == CoordCheck.from_json(COORD)


def test_coord_check_sends_every_option_by_its_contract_name() -> None:
    client, adapter = recording_client()

    client.coord_check(
        MLP,
        widths=(32, 64),
        base_dims={"w": 32},
        width_dim="w",
        optimizer="sgd",
        lr=0.1,
        weight_decay=0.0,
        steps=4,
        batch_size=16,
        seeds=2,
        seed=7,
        parametrizations=("mup",),
        readout_zero_init=False,
        init_scheme={"name": "kaiming_normal", "mode": "fan_in"},
        loss="mse",
    )

    assert sent(adapter) == {
        "spec": MLP,
        "widths": [32, 64],
        "base_dims": {"w": 32},
        "width_dim": "w",
        "optimizer": "sgd",
        "lr": 0.1,
        "weight_decay": 0.0,
        "steps": 4,
        "batch_size": 16,
        "seeds": 2,
        "seed": 7,
        "parametrizations": ["mup"],
        "readout_zero_init": False,
        "init_scheme": {"name": "kaiming_normal", "mode": "fan_in"},
        "loss": "mse",
    }


def test_transfer_check_with_no_arguments_sends_an_empty_object() -> None:
    client, adapter = recording_client(TRANSFER)

    check = client.transfer_check()

    assert adapter.requests[0].url == "http://initlab.test/v1/mup/transfer-check"
    assert sent(adapter) == {}
    assert check == TransferCheck.from_json(TRANSFER)


def test_transfer_check_sends_its_grid_and_window() -> None:
    client, adapter = recording_client(TRANSFER)

    client.transfer_check(
        MLP,
        widths=[32, 64],
        lrs=[1e-3, 1e-2, 1e-1],
        steps=6,
        loss_window=2,
        seeds=1,
        batch_size=8,
        init_scheme="xavier_normal",
    )

    assert sent(adapter) == {
        "spec": MLP,
        "widths": [32, 64],
        "lrs": [1e-3, 1e-2, 1e-1],
        "steps": 6,
        "loss_window": 2,
        "seeds": 1,
        "batch_size": 8,
        "init_scheme": "xavier_normal",
    }


def test_numpy_numbers_are_sent_as_json_numbers() -> None:
    client, adapter = recording_client(TRANSFER)

    client.transfer_check(
        widths=2 ** np.arange(5, 8),
        lrs=2.0 ** np.arange(-10, -6),
        base_dims={"w": np.int64(32)},
        steps=np.int32(6),
        loss_window=np.uint8(2),
        seeds=np.int64(1),
        seed=np.int16(3),
        weight_decay=np.float32(0.5),
    )

    text = adapter.requests[0].body.decode()
    body = json.loads(text)
    assert body["widths"] == [32, 64, 128]
    assert body["lrs"] == [2.0**-10, 2.0**-9, 2.0**-8, 2.0**-7]
    assert body["base_dims"] == {"w": 32}
    assert (body["steps"], body["loss_window"], body["seeds"]) == (6, 2, 1)
    assert body["seed"] == 3 and body["weight_decay"] == 0.5
    assert '"widths":[32,64,128]' in text and '"steps":6,' in text


@pytest.mark.parametrize("widths", ["32,64", {"w": 32}])
def test_widths_that_are_not_a_list_are_refused_before_sending(widths) -> None:
    client, adapter = recording_client()

    with pytest.raises(TypeError, match=r"^widths must be a list of sizes"):
        client.coord_check(MLP, widths=widths)

    assert adapter.requests == []


@pytest.mark.parametrize(
    ("width", "type_name"),
    [(64.0, "float"), (np.float32(64), "float32"), (True, "bool")],
)
def test_a_float_or_bool_width_is_refused_naming_its_index(width, type_name) -> None:
    client, adapter = recording_client()

    with pytest.raises(
        TypeError, match=rf"^widths\[1\] must be an integer size.*\({type_name}\)$"
    ):
        client.coord_check(MLP, widths=[32, width])

    assert adapter.requests == []


def test_widths_the_client_cannot_judge_go_to_the_service_as_they_are() -> None:
    client, adapter = recording_client()

    client.coord_check(MLP, widths=64)
    client.coord_check(MLP, widths=[32, "64"])

    first, second = (json.loads(request.body) for request in adapter.requests)
    assert (first["widths"], second["widths"]) == (64, [32, "64"])


def test_parametrizations_given_as_one_string_are_refused() -> None:
    client, adapter = recording_client()

    with pytest.raises(TypeError, match=r"such as \['sp', 'mup'\] or \['mup'\]"):
        client.coord_check(MLP, widths=[32, 64], parametrizations="mup")

    assert adapter.requests == []


def test_lrs_given_as_one_number_or_string_are_refused() -> None:
    client, adapter = recording_client(TRANSFER)

    with pytest.raises(TypeError, match=r"^lrs must be a list of base learning"):
        client.transfer_check(lrs="1e-3, 1e-2")

    assert adapter.requests == []


@pytest.mark.parametrize(
    ("arguments", "name"),
    [
        ({"lr": math.nan}, "lr"),
        ({"weight_decay": math.inf}, "weight_decay"),
    ],
)
def test_a_non_finite_number_is_refused_naming_it(arguments, name) -> None:
    client, adapter = recording_client()

    with pytest.raises(ValueError, match=rf"^{name} must be a finite number"):
        client.coord_check(MLP, widths=[32, 64], **arguments)

    assert adapter.requests == []


def test_a_non_finite_learning_rate_of_the_grid_is_refused_naming_its_index() -> None:
    client, adapter = recording_client(TRANSFER)

    with pytest.raises(ValueError, match=r"^lrs\[2\] must be a finite number"):
        client.transfer_check(lrs=[1e-3, 1e-2, np.float64("inf")])

    assert adapter.requests == []


def test_a_spec_that_is_not_a_mapping_is_refused() -> None:
    client, adapter = recording_client()

    with pytest.raises(TypeError, match="spec must be a mapping"):
        client.transfer_check("examples/mlp-3layer.spec.json")

    assert adapter.requests == []


# -- timeouts ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("timeout", "used"),
    [
        ((3.05, 60), (3.05, TRAINING_READ_TIMEOUT)),
        (5, (5, TRAINING_READ_TIMEOUT)),
        ((1, 300), (1, 300)),
        (500.0, (500.0, 500.0)),
        ((2, None), (2, None)),
        (None, None),
    ],
)
def test_the_checks_wait_at_least_the_training_read_timeout(timeout, used) -> None:
    for method, answer in (("coord_check", COORD), ("transfer_check", TRANSFER)):
        client, adapter = recording_client(answer, timeout=timeout)
        arguments = {"widths": [32, 64]} if method == "coord_check" else {}

        getattr(client, method)(MLP, **arguments)
        client.health()

        # The health check keeps the client's own timeout.
        assert adapter.timeouts == [used, timeout]


def test_a_check_that_times_out_names_the_timeout_it_waited() -> None:
    client, _ = recording_client(error=requests.ReadTimeout("read timed out"))

    with pytest.raises(initlab_client.Timeout, match=r"read timeout of 120 s"):
        client.coord_check(MLP, widths=[32, 64])


# -- against the real service ------------------------------------------------


@pytest.fixture(scope="module")
def client(live_server_url: str) -> Iterator[Client]:
    with Client(live_server_url) as client:
        yield client


SMALL_COORD = {"widths": [32, 64, 128], "steps": 3, "seeds": 2, "batch_size": 16}
SMALL_TRANSFER = {
    "widths": [32, 64],
    "lrs": [1e-3, 1e-2, 1e-1],
    "steps": 6,
    "seeds": 1,
    "batch_size": 8,
}


@pytest.fixture(scope="module")
def coord(client: Client) -> CoordCheck:
    return client.coord_check(MLP, **SMALL_COORD)


@pytest.fixture(scope="module")
def transfer(client: Client) -> TransferCheck:
    return client.transfer_check(MLP, **SMALL_TRANSFER)


@pytest.mark.server
def test_a_live_coordinate_check_answers_per_layer_step_and_width(
    coord: CoordCheck,
) -> None:
    assert coord.widths == (32, 64, 128) and coord.width_dim == "w"
    assert coord.dims == ({"w": 32}, {"w": 64}, {"w": 128})
    assert coord.steps == (1, 2, 3)
    # The service's defaults, echoed: Adam at lr 0.01, the classifier's loss.
    assert (coord.optimizer, coord.lr, coord.loss) == ("adam", 0.01, "cross_entropy")
    assert (coord.batch_size, coord.seeds, coord.seed) == (16, 2, 0)
    assert [entry.name for entry in coord.parametrizations] == ["sp", "mup"]
    for entry in coord.parametrizations:
        assert [layer.name for layer in entry.layers] == ["fc1", "fc2", "fc3"]
        assert [layer.role for layer in entry.layers] == ["input", "hidden", "output"]
        for layer in entry.layers:
            assert len(layer.mean) == 3 and {len(row) for row in layer.mean} == {3}
            assert len(layer.sd) == 3 and len(layer.slopes) == 3
            assert all(value > 0 for row in layer.mean for value in row)
    # Two seeds times three widths times two parametrizations.
    assert coord.cost.runs == 12
    assert 0 < coord.cost.work <= coord.budget
    assert coord.axes["x"] == CheckAxis("width (w)", "log2")
    assert "teacher" in coord.data


@pytest.mark.server
def test_the_mup_hidden_layer_is_flat(coord: CoordCheck) -> None:
    hidden = coord.parametrization("mup").layer("fc2")

    assert hidden.verdict == "flat"
    assert all(abs(slope) < 0.1 for slope in hidden.slopes[1:])
    assert coord.parametrization("mup").hidden_flat is True
    # SP and µP start from the same init: at t = 1 the two runs are one.
    assert coord.parametrization("sp").layer("fc2").mean[0] == hidden.mean[0]


@pytest.mark.server
def test_the_live_slopes_fit_the_means(coord: CoordCheck) -> None:
    log_widths = np.log2(coord.widths)
    for entry in coord.parametrizations:
        for layer in entry.layers:
            for means, slope in zip(layer.mean, layer.slopes, strict=True):
                fitted = np.polyfit(log_widths, np.log2(means), 1)[0]
                assert slope == pytest.approx(fitted, abs=1e-9)


@pytest.mark.server
def test_a_live_coordinate_check_reads_as_the_service_wrote_it(
    live_server_url: str, coord: CoordCheck
) -> None:
    answer = requests.post(
        f"{live_server_url}/v1/mup/coord-check",
        json={"spec": MLP, **SMALL_COORD},
        timeout=60,
    ).json()

    assert coord.raw == answer
    newer = _with_future_fields(copy.deepcopy(answer))
    assert CoordCheck.from_json(newer) == coord


@pytest.mark.server
def test_a_live_transfer_check_answers_per_width_and_learning_rate(
    transfer: TransferCheck,
) -> None:
    assert transfer.lrs == (1e-3, 1e-2, 1e-1)
    assert transfer.log2_lrs == pytest.approx([math.log2(lr) for lr in transfer.lrs])
    assert (transfer.steps, transfer.loss_window) == (6, 1)
    assert (transfer.seeds, transfer.batch_size) == (1, 8)
    assert [entry.name for entry in transfer.parametrizations] == ["sp", "mup"]
    for entry in transfer.parametrizations:
        assert [curve.width for curve in entry.curves] == [32, 64]
        for curve in entry.curves:
            assert len(curve.losses) == 3
            # One seed: no spread.
            assert curve.sd == (0.0, 0.0, 0.0)
            assert curve.best_lr == transfer.lrs[curve.best_index]
            assert curve.losses[curve.best_index] == min(curve.losses)
        best = [curve.best_index for curve in entry.curves]
        assert entry.drift == max(best) - min(best)
        # A best rate at the edge of the grid may lie beyond it.
        edge = any(index in (0, 2) for index in best)
        expected = "transfers" if entry.drift <= 1 else "drifts"
        assert entry.verdict == ("undetermined" if edge else expected)
        assert entry.summary.startswith("SP: " if entry.name == "sp" else "µP: ")
    assert transfer.verdict.startswith("Across widths 32–64: SP ")
    assert transfer.cost.runs == 12  # 2 widths × 3 lrs × 2 parametrizations


@pytest.mark.server
def test_one_width_raises_validation_error_naming_widths(client: Client) -> None:
    with pytest.raises(ValidationError) as refused:
        client.coord_check(MLP, widths=[64], steps=2)

    error = refused.value
    assert not isinstance(error, LimitExceeded)
    assert error.status == 422
    assert [field.pointer for field in error.errors] == ["/widths"]
    assert "give 2 to 16 widths" in error.errors[0].message
