"""The client's µP tables: the models, the JSON and CSV writers, the live method.

The unit tests read an answer written out by hand for the MLP of
tests/fixtures/mup/mlp.spec.json (base width 64) under µP's Table 8 as the
mup package applies it with AdamW (Yang et al. 2022, Tensor Programs V): a
hidden weight's lr is η/m_in and its weight decay λ·m_in, its init std
σ/√m_in; the readout's forward multiplier is 1/m_in. The live tests post the
same spec to the real service (gunicorn on 127.0.0.1).
"""

from __future__ import annotations

import copy
import csv
import io
import json
import math
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import requests

from initlab_client import (
    Client,
    InvalidResponse,
    MupPackageValues,
    MupParamGroup,
    MupRow,
    MupTable,
    ValidationError,
    load_spec,
)
from initlab_client.mup import CSV_COLUMNS

from .recording import RecordingAdapter
from .recording import recording_client as record

REPO_ROOT = Path(__file__).resolve().parents[2]
MLP_SPEC = REPO_ROOT / "tests" / "fixtures" / "mup" / "mlp.spec.json"
GPT_SPEC = REPO_ROOT / "tests" / "fixtures" / "mup" / "gpt.spec.json"
BASE_WIDTH = 64
LR = 1e-3
WEIGHT_DECAY = 0.1
INIT_STD = 0.02


def mlp_row(name: str, shape: list, base_shape: list, role: str, **values) -> dict:
    """One row of the answer; a tensor with no width-like dim unless told."""
    row = {
        "name": name,
        "shape": shape,
        "base_shape": base_shape,
        "layout": "out_in",
        "tied_to": None,
        "width_dims": [],
        "m_in": 1.0,
        "m_out": 1.0,
        "class": "scalar_like",
        "role": role,
        "lr": LR,
        "lr_multiplier": 1.0,
        "weight_decay": WEIGHT_DECAY,
        "init_std": INIT_STD,
        "init_mean": 0.0,
        "init_distribution": "normal",
        "forward_multiplier": 1.0,
        "depth_scaled": False,
        "mup_package": None,
        "notes": [],
    }
    row.update(values)
    return row


def mlp_target(width: int) -> dict:
    """The answer's target for the MLP at ``width``, base width 64, AdamW."""
    m = width / BASE_WIDTH
    w = width
    fan_out = {"width_dims": ["w"], "m_out": m, "class": "vector_like"}
    fan_in = {"width_dims": ["w"], "m_in": m, "class": "vector_like"}
    both = {"width_dims": ["w", "w"], "m_in": m, "m_out": m, "class": "matrix_like"}
    hidden = {
        "lr": LR / m,
        "lr_multiplier": 1 / m,
        "weight_decay": WEIGHT_DECAY * m,
        "init_std": INIT_STD / math.sqrt(m),
    }
    zero = {"init_std": 0.0, "init_distribution": "constant"}
    readout = {**zero, "forward_multiplier": 1 / m}
    rows = [
        mlp_row("fc1.weight", [w, 32], [64, 32], "input", **fan_out),
        mlp_row("fc1.bias", [w], [64], "bias", **fan_out, **zero),
        mlp_row("fc2.weight", [w, w], [64, 64], "hidden", **both, **hidden),
        mlp_row("fc2.bias", [w], [64], "bias", **fan_out, **zero),
        mlp_row("fc3.weight", [w, w], [64, 64], "hidden", **both, **hidden),
        mlp_row("fc3.bias", [w], [64], "bias", **fan_out, **zero),
        mlp_row("readout.weight", [10, w], [10, 64], "output", **fan_in, **readout),
        mlp_row("readout.bias", [10], [10], "bias", **zero),
    ]
    hidden_names = ["fc2.weight", "fc3.weight"]

    return {
        "dims": {"d_in": 32, "w": width, "n_out": 10},
        "parameter_count": sum(math.prod(row["shape"]) for row in rows),
        "residual_branch_count": 0,
        "width_multipliers": {"w": m},
        "depth_multiplier": 1.0,
        "output_multiplier": 1 / m,
        "input_multiplier": 1.0,
        "attention_scale": None,
        "attention": [],
        "residual_multiplier": 1.0,
        "adam_eps": 1e-8,
        "parameters": rows,
        "param_groups": [
            {
                "params": [r["name"] for r in rows if r["name"] not in hidden_names],
                "lr": LR,
                "weight_decay": WEIGHT_DECAY,
                "eps": 1e-8,
            },
            {
                "params": hidden_names,
                "lr": hidden["lr"],
                "weight_decay": hidden["weight_decay"],
                "eps": 1e-8,
            },
        ],
        "notes": ["readout.weight starts at zero (readout_zero_init)."],
    }


TABLE = {
    "form": "mup_package",
    "optimizer": "adamw",
    "lr": LR,
    "weight_decay": WEIGHT_DECAY,
    "eps": 1e-8,
    "weight_decay_convention": "mup_package",
    "init": {"std": INIT_STD},
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
        "dims": {"d_in": 32, "w": 64, "n_out": 10},
        "parameter_count": 11082,
        "residual_branch_count": 0,
    },
    "convention": "Table 8 of Tensor Programs V as the mup package applies it.",
    "notes": ["width dims: w (64 in the base)."],
    # 192 = 3 × 64: lr, init std and multipliers that no decimal writes exactly.
    "targets": [mlp_target(256), mlp_target(192)],
}
TIED_ROW = {
    "name": "lm_head.weight",
    "shape": [50304, 1024],
    "base_shape": [50304, 256],
    "layout": "out_in",
    "tied_to": "wte.weight",
    "width_dims": ["d_model"],
    "m_in": 4.0,
    "m_out": 1.0,
    "class": "vector_like",
    "role": "output",
    "lr": LR,
    "lr_multiplier": 1.0,
    "weight_decay": 0.0,
    "init_std": INIT_STD,
    "init_mean": 0.0,
    "init_distribution": "normal",
    "forward_multiplier": 0.25,
    "depth_scaled": False,
    "mup_package": {"lr": LR, "weight_decay": 0.0, "init_std": 0.04},
    "notes": ["The mup package rescales the tied embedding by √m = 2."],
}


# -- models ------------------------------------------------------------------


def test_the_table_echoes_every_choice() -> None:
    table = MupTable.from_json(TABLE)

    assert (table.form, table.optimizer) == ("mup_package", "adamw")
    assert (table.lr, table.weight_decay, table.eps) == (1e-3, 0.1, 1e-8)
    assert table.weight_decay_convention == "mup_package"
    assert table.init == {"std": 0.02}
    assert table.readout_zero_init is True and table.query_zero_init is False
    assert table.depth is None
    assert table.width_dims == ("w",) and table.depth_dims == ()
    assert table.width_dim == "w"
    assert table.base.dims == {"d_in": 32, "w": 64, "n_out": 10}
    assert table.base.parameter_count == 11082
    assert len(table.targets) == 2
    assert table.raw == TABLE


def test_a_target_reads_its_multipliers_rows_and_groups() -> None:
    target = MupTable.from_json(TABLE).targets[0]

    assert target.dims["w"] == 256
    assert target.parameter_count == 142602
    assert target.width_multipliers == {"w": 4.0}
    assert target.output_multiplier == 0.25
    assert target.attention == () and target.attention_scale is None
    assert target.adam_eps == 1e-8
    hidden = target.by_name("fc2.weight")
    assert hidden.lr == 2.5e-4 and hidden.weight_decay == 0.4
    assert hidden.init_std == 0.01
    assert (hidden.m_in, hidden.m_out) == (4.0, 4.0)
    assert target.by_name("fc1.weight").lr == 1e-3
    assert target.param_groups[1] == MupParamGroup(
        ("fc2.weight", "fc3.weight"), 2.5e-4, 0.4, 1e-8
    )
    assert len(target.param_groups[0].params) == 6


def test_a_row_reads_class_as_param_class_and_keeps_its_json() -> None:
    row = MupRow.from_json(TIED_ROW)

    assert row.param_class == "vector_like"
    assert row.role == "output"
    assert row.shape == (50304, 1024) and row.base_shape == (50304, 256)
    assert row.width_dims == ("d_model",)
    assert row.tied_to == "wte.weight"
    assert row.mup_package == MupPackageValues(1e-3, 0.0, 0.04)
    assert row.notes == ("The mup package rescales the tied embedding by √m = 2.",)
    assert row.raw == TIED_ROW
    assert "param_class" not in row.raw


def test_a_row_reads_the_distribution_its_init_is_drawn_from() -> None:
    target = MupTable.from_json(TABLE).targets[0]

    assert target.by_name("fc2.weight").init_distribution == "normal"
    assert target.by_name("fc2.bias").init_distribution == "constant"
    # readout_zero_init: the readout starts at the constant 0.
    assert target.by_name("readout.weight").init_distribution == "constant"
    assert MupRow.from_json(TIED_ROW).init_distribution == "normal"


def test_a_row_from_an_older_service_without_init_distribution_reads_none() -> None:
    older = copy.deepcopy(TABLE)
    for target in older["targets"]:
        for row in target["parameters"]:
            del row["init_distribution"]

    table = MupTable.from_json(older)

    rows = [row for target in table.targets for row in target.parameters]
    assert len(rows) == 16
    assert {row.init_distribution for row in rows} == {None}
    assert "init_distribution" not in rows[0].raw
    assert rows[2].lr == 2.5e-4


def test_a_row_without_class_is_an_invalid_response_naming_it() -> None:
    older = copy.deepcopy(TABLE)
    del older["targets"][1]["parameters"][2]["class"]

    with pytest.raises(
        InvalidResponse, match=r"targets\[1\]\.parameters\[2\].*'class'"
    ):
        MupTable.from_json(older)


def test_a_missing_contract_field_is_named_where_it_is_missing() -> None:
    older = copy.deepcopy(TABLE)
    del older["targets"][0]["param_groups"][1]["eps"]

    with pytest.raises(
        InvalidResponse, match=r"targets\[0\]\.param_groups\[1\].*'eps'"
    ):
        MupTable.from_json(older)


def test_fields_from_a_newer_service_are_ignored_and_kept_in_raw() -> None:
    newer = copy.deepcopy(TABLE)
    newer["coord_check"] = {"steps": 3}
    newer["targets"][0]["flops"] = 1.0e9
    newer["targets"][0]["parameters"][0]["u_mup"] = {"scale": 1.0}
    newer["targets"][0]["param_groups"][0]["betas"] = [0.9, 0.95]

    table = MupTable.from_json(newer)

    assert table == MupTable.from_json(TABLE)
    assert table.raw["coord_check"] == {"steps": 3}
    assert table.targets[0].parameters[0].raw["u_mup"] == {"scale": 1.0}


def test_by_name_of_an_unknown_tensor_says_what_names_look_like() -> None:
    target = MupTable.from_json(TABLE).targets[0]

    with pytest.raises(KeyError, match=r"'fc2\.wieght' among 8.*like 'fc1\.weight'"):
        target.by_name("fc2.wieght")


def test_the_table_is_read_only() -> None:
    row = MupTable.from_json(TABLE).targets[0].parameters[0]

    with pytest.raises(AttributeError):
        row.lr = 1.0  # type: ignore[misc]


# -- writers -----------------------------------------------------------------


def test_to_json_writes_the_answer_as_received(tmp_path: Path) -> None:
    table = MupTable.from_json(TABLE)
    path = tmp_path / "table.json"

    table.to_json(path)

    written = path.read_text(encoding="utf-8")
    assert json.loads(written) == TABLE
    # The service's own bytes: compact, keys in its order, one final newline.
    assert written == json.dumps(TABLE, separators=(",", ":")) + "\n"
    assert json.loads(written)["targets"][1]["parameters"][2]["lr"] == LR / 3


def test_to_json_writes_to_an_open_file_and_indents_on_request() -> None:
    table = MupTable.from_json(TABLE)
    compact, indented = io.StringIO(), io.StringIO()

    table.to_json(compact)
    table.to_json(indented, indent=2)

    assert json.loads(compact.getvalue()) == TABLE
    assert json.loads(indented.getvalue()) == TABLE
    assert indented.getvalue().startswith('{\n  "form": "mup_package",')
    assert not compact.closed


def read_csv(text: str) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(text, newline="")))


def test_to_csv_writes_one_line_per_target_and_tensor(tmp_path: Path) -> None:
    table = MupTable.from_json(TABLE)
    path = tmp_path / "table.csv"

    table.to_csv(path)

    with open(path, encoding="utf-8", newline="") as file:
        header = next(csv.reader(file))
    lines = read_csv(path.read_text(encoding="utf-8"))
    assert tuple(header) == CSV_COLUMNS
    assert len(lines) == 16
    assert lines[4] == {
        "target": "0",
        "target_dims": '{"d_in":32,"w":256,"n_out":10}',
        "name": "fc3.weight",
        "shape": "256x256",
        "layout": "out_in",
        "class": "matrix_like",
        "role": "hidden",
        "width_dims": "w;w",
        "m_in": "4.0",
        "m_out": "4.0",
        "lr": "0.00025",
        "lr_multiplier": "0.25",
        "weight_decay": "0.4",
        "init_std": "0.01",
        "init_mean": "0.0",
        "forward_multiplier": "1.0",
        "depth_scaled": "false",
        "tied_to": "",
        "init_distribution": "normal",
        "adam_eps": "1e-08",
        "residual_multiplier": "1.0",
        "attention_scale": "",
        "output_multiplier": "0.25",
        "mup_package_lr": "",
        "mup_package_weight_decay": "",
        "mup_package_init_std": "",
        "notes": "",
    }
    assert [line["shape"] for line in lines[:2]] == ["256x32", "256"]
    assert lines[1]["init_distribution"] == "constant"
    assert lines[15]["width_dims"] == "" and lines[15]["class"] == "scalar_like"


def test_the_csv_keeps_its_first_columns_and_appends_the_new_ones() -> None:
    # A script that reads columns by position keeps working.
    assert CSV_COLUMNS[:18] == (
        "target",
        "target_dims",
        "name",
        "shape",
        "layout",
        "class",
        "role",
        "width_dims",
        "m_in",
        "m_out",
        "lr",
        "lr_multiplier",
        "weight_decay",
        "init_std",
        "init_mean",
        "forward_multiplier",
        "depth_scaled",
        "tied_to",
    )
    assert CSV_COLUMNS[18:] == (
        "init_distribution",
        "adam_eps",
        "residual_multiplier",
        "attention_scale",
        "output_multiplier",
        "mup_package_lr",
        "mup_package_weight_decay",
        "mup_package_init_std",
        "notes",
    )


def test_the_csv_read_back_equals_the_rows() -> None:
    table = MupTable.from_json(TABLE)
    buffer = io.StringIO(newline="")

    table.to_csv(buffer)

    lines = read_csv(buffer.getvalue())
    rows = [
        (index, target, row)
        for index, target in enumerate(table.targets)
        for row in target.parameters
    ]
    assert len(lines) == len(rows)
    for line, (index, target, row) in zip(lines, rows, strict=True):
        assert int(line["target"]) == index
        assert json.loads(line["target_dims"]) == target.dims
        assert line["name"] == row.name
        assert tuple(int(size) for size in line["shape"].split("x")) == row.shape
        assert (line["layout"], line["class"], line["role"]) == (
            row.layout,
            row.param_class,
            row.role,
        )
        assert tuple(filter(None, line["width_dims"].split(";"))) == row.width_dims
        for column in ("m_in", "m_out", "lr", "lr_multiplier", "weight_decay"):
            assert float(line[column]) == getattr(row, column)
        for column in ("init_std", "init_mean", "forward_multiplier"):
            assert float(line[column]) == getattr(row, column)
        assert (line["depth_scaled"] == "true") is row.depth_scaled
        assert (line["tied_to"] or None) == row.tied_to
        assert line["init_distribution"] == row.init_distribution
        assert float(line["adam_eps"]) == target.adam_eps
        assert float(line["residual_multiplier"]) == target.residual_multiplier
        assert line["attention_scale"] == "" and target.attention_scale is None
        assert float(line["output_multiplier"]) == target.output_multiplier
        assert line["notes"] == "" and row.notes == ()


def test_csv_numbers_keep_every_digit() -> None:
    buffer = io.StringIO()

    MupTable.from_json(TABLE).to_csv(buffer)

    fc2 = read_csv(buffer.getvalue())[8 + 2]
    assert fc2["target_dims"] == '{"d_in":32,"w":192,"n_out":10}'
    assert fc2["lr"] == "0.0003333333333333333"
    assert float(fc2["lr"]) == 1e-3 / 3
    assert float(fc2["init_std"]) == 0.02 / math.sqrt(3)
    assert float(fc2["weight_decay"]) == 0.1 * 3


def test_csv_names_the_tensor_a_row_is_tied_to() -> None:
    tied = copy.deepcopy(TABLE)
    tied["targets"] = [tied["targets"][0]]
    tied["targets"][0]["parameters"].append(TIED_ROW)
    buffer = io.StringIO()

    MupTable.from_json(tied).to_csv(buffer)

    last = read_csv(buffer.getvalue())[-1]
    assert (last["name"], last["tied_to"]) == ("lm_head.weight", "wte.weight")
    assert last["shape"] == "50304x1024"
    assert last["forward_multiplier"] == "0.25"


def test_csv_gives_the_mup_package_values_where_they_differ() -> None:
    tied = copy.deepcopy(TABLE)
    tied["targets"] = [tied["targets"][0]]
    tied["targets"][0]["parameters"].append(TIED_ROW)
    buffer = io.StringIO()

    MupTable.from_json(tied).to_csv(buffer)

    lines = read_csv(buffer.getvalue())
    assert (lines[-1]["name"], lines[-1]["mup_package_lr"]) == (
        "lm_head.weight",
        "0.001",
    )
    assert lines[-1]["mup_package_weight_decay"] == "0.0"
    assert lines[-1]["mup_package_init_std"] == "0.04"
    assert (
        lines[-1]["notes"] == "The mup package rescales the tied embedding by √m = 2."
    )
    # A row the package reads as the service does leaves the three columns empty.
    assert lines[2]["name"] == "fc2.weight"
    assert [
        lines[2][f"mup_package_{key}"] for key in ("lr", "weight_decay", "init_std")
    ] == ["", "", ""]


def test_csv_writes_a_target_without_eps_or_readout_with_empty_cells() -> None:
    sgd = copy.deepcopy(TABLE)
    sgd["optimizer"] = "sgd"
    target = sgd["targets"][1]
    target["adam_eps"] = None
    target["output_multiplier"] = None
    target["attention_scale"] = 0.0625
    target["residual_multiplier"] = 0.25
    target["parameters"][0]["notes"] = ["first note", "second note"]
    buffer = io.StringIO()

    MupTable.from_json(sgd).to_csv(buffer)

    lines = read_csv(buffer.getvalue())
    first, second = lines[0], lines[8]
    assert (first["adam_eps"], first["output_multiplier"]) == ("1e-08", "0.25")
    assert second["target"] == "1" and second["name"] == "fc1.weight"
    assert (second["adam_eps"], second["output_multiplier"]) == ("", "")
    assert second["attention_scale"] == "0.0625"
    assert second["residual_multiplier"] == "0.25"
    assert second["notes"] == "first note; second note"
    assert {line["adam_eps"] for line in lines[8:]} == {""}
    assert lines[9]["notes"] == ""


def test_csv_leaves_init_distribution_empty_for_an_older_service() -> None:
    older = copy.deepcopy(TABLE)
    del older["targets"][0]["parameters"][0]["init_distribution"]
    buffer = io.StringIO()

    MupTable.from_json(older).to_csv(buffer)

    lines = read_csv(buffer.getvalue())
    assert lines[0]["init_distribution"] == ""
    assert lines[1]["init_distribution"] == "constant"


def test_a_destination_that_is_neither_path_nor_file_is_refused() -> None:
    table = MupTable.from_json(TABLE)

    with pytest.raises(TypeError, match="path .* or a text file.* got int"):
        table.to_csv(3)  # type: ignore[arg-type]


# -- what the method sends ---------------------------------------------------


def recording_client() -> tuple[Client, RecordingAdapter]:
    return record(TABLE)


def test_mup_table_sends_only_the_options_given() -> None:
    client, adapter = recording_client()
    spec = load_spec(MLP_SPEC)

    table = client.mup_table(
        spec, targets=({"w": 256},), lr=1e-3, weight_decay=0.1, width_dims=("w",)
    )

    (request,) = adapter.requests
    assert request.method == "POST"
    assert request.url == "http://initlab.test/v1/mup/table"
    assert json.loads(request.body) == {
        "spec": spec,
        "targets": [{"w": 256}],
        "optimizer": "adamw",
        "lr": 1e-3,
        "weight_decay": 0.1,
        "width_dims": ["w"],
    }
    assert table == MupTable.from_json(TABLE)


def test_mup_table_sends_every_option_by_its_contract_name() -> None:
    client, adapter = recording_client()

    client.mup_table(
        {"dims": {"w": 64}, "layers": []},
        targets=[{"w": 128}],
        lr=0.1,
        base_dims={"w": 32},
        optimizer="sgd",
        weight_decay=0.0,
        eps=1e-6,
        init_scheme={"name": "kaiming_normal"},
        readout_zero_init=False,
        query_zero_init=True,
        output_multiplier=2.0,
        input_multiplier=3.0,
        attention_multiplier=0.5,
        form="table3",
        weight_decay_convention="independent",
        depth={"rule": "completep", "alpha": 0.5},
        width_dim="w",
    )

    body = json.loads(adapter.requests[0].body)
    assert body["base_dims"] == {"w": 32}
    assert body["weight_decay"] == 0.0 and body["readout_zero_init"] is False
    assert body["init_scheme"] == {"name": "kaiming_normal"}
    assert body["depth"] == {"rule": "completep", "alpha": 0.5}
    assert set(body) == {
        "spec",
        "targets",
        "lr",
        "optimizer",
        "base_dims",
        "weight_decay",
        "eps",
        "init_scheme",
        "readout_zero_init",
        "query_zero_init",
        "output_multiplier",
        "input_multiplier",
        "attention_multiplier",
        "form",
        "weight_decay_convention",
        "depth",
        "width_dim",
    }


@pytest.mark.parametrize("targets", [{"w": 256}, "w=256"])
def test_targets_that_are_not_a_list_are_refused_before_sending(targets) -> None:
    client, adapter = recording_client()

    with pytest.raises(TypeError, match=r"targets must be a list of dim overrides"):
        client.mup_table(load_spec(MLP_SPEC), targets=targets, lr=1e-3)

    assert adapter.requests == []


def test_width_dims_given_as_one_string_is_refused_before_sending() -> None:
    client, adapter = recording_client()

    with pytest.raises(
        TypeError,
        match=r"""width_dims must be a list .*\["d_model", "d_ff"\]; got .* 'w'""",
    ):
        client.mup_table(
            load_spec(MLP_SPEC), targets=[{"w": 256}], lr=1e-3, width_dims="w"
        )

    assert adapter.requests == []


@pytest.mark.parametrize(
    ("depth", "sent"),
    [
        ("completep", {"rule": "completep"}),
        ("depth_mup", {"rule": "depth_mup"}),
        ({"rule": "completep", "alpha": 0.75}, {"rule": "completep", "alpha": 0.75}),
    ],
)
def test_depth_is_sent_as_a_rule_object(depth, sent) -> None:
    client, adapter = recording_client()

    client.mup_table(load_spec(MLP_SPEC), targets=[{"w": 256}], lr=1e-3, depth=depth)

    assert json.loads(adapter.requests[0].body)["depth"] == sent


@pytest.mark.parametrize("depth", [0.5, ["completep"], True])
def test_depth_of_another_type_is_refused_naming_depth(depth) -> None:
    client, adapter = recording_client()

    with pytest.raises(
        TypeError, match=r"^depth must be a rule name.*got (float|list|bool)$"
    ):
        client.mup_table(
            load_spec(MLP_SPEC), targets=[{"w": 256}], lr=1e-3, depth=depth
        )

    assert adapter.requests == []


def test_numpy_integer_dims_are_sent_as_json_integers() -> None:
    client, adapter = recording_client()

    client.mup_table(
        load_spec(MLP_SPEC),
        base_dims={"w": np.int32(64)},
        targets=[{"w": np.int64(256)}, {"w": np.uint16(1024), "d_in": 32}],
        lr=1e-3,
    )

    text = adapter.requests[0].body.decode()
    body = json.loads(text)
    assert body["base_dims"] == {"w": 64}
    assert body["targets"] == [{"w": 256}, {"w": 1024, "d_in": 32}]
    assert all(type(size) is int for size in body["targets"][1].values())
    assert '"targets":[{"w":256},{"w":1024,"d_in":32}]' in text


@pytest.mark.parametrize(
    ("size", "type_name"),
    [(512.0, "float"), (np.float64(512.0), "float64"), (True, "bool")],
)
def test_a_float_or_bool_dim_is_refused_naming_the_target_and_dim(
    size, type_name
) -> None:
    client, adapter = recording_client()
    targets = [{"w": 256}, {"d_in": 32, "w": size}]

    with pytest.raises(
        TypeError,
        match=rf"^targets\[1\]: dim 'w' must be an integer size.*\({type_name}\)$",
    ):
        client.mup_table(load_spec(MLP_SPEC), targets=targets, lr=1e-3)

    assert adapter.requests == []


def test_a_float_base_dim_is_refused_naming_base_dims() -> None:
    client, adapter = recording_client()

    with pytest.raises(TypeError, match=r"^base_dims: dim 'w' must be an integer size"):
        client.mup_table(
            load_spec(MLP_SPEC), base_dims={"w": 64.0}, targets=[{"w": 256}], lr=1e-3
        )

    assert adapter.requests == []


NUMBER_ARGUMENTS = (
    "lr",
    "weight_decay",
    "eps",
    "init_std",
    "output_multiplier",
    "input_multiplier",
    "attention_multiplier",
)


@pytest.mark.parametrize("value", [math.nan, math.inf, -math.inf, np.float32("nan")])
@pytest.mark.parametrize("argument", NUMBER_ARGUMENTS)
def test_a_non_finite_number_is_refused_naming_the_argument(argument, value) -> None:
    client, adapter = recording_client()
    arguments = {"lr": 1e-3, argument: value}

    with pytest.raises(ValueError, match=rf"^{argument} must be a finite number.*got"):
        client.mup_table(load_spec(MLP_SPEC), targets=[{"w": 256}], **arguments)

    assert adapter.requests == []


def test_numpy_numbers_are_sent_as_json_numbers() -> None:
    client, adapter = recording_client()

    client.mup_table(
        load_spec(MLP_SPEC),
        targets=[{"w": 256}],
        lr=np.float64(1e-3),
        weight_decay=np.float32(0.5),
        output_multiplier=np.int64(2),
    )

    body = json.loads(adapter.requests[0].body)
    assert (body["lr"], body["weight_decay"]) == (1e-3, 0.5)
    assert body["output_multiplier"] == 2 and type(body["output_multiplier"]) is int


# -- against the real service ------------------------------------------------


@pytest.fixture(scope="module")
def client(live_server_url: str) -> Iterator[Client]:
    with Client(live_server_url) as client:
        yield client


@pytest.fixture(scope="module")
def mlp_table(client: Client) -> MupTable:
    return client.mup_table(
        load_spec(MLP_SPEC),
        base_dims={"w": 64},
        targets=[{"w": 256}, {"w": 1024}],
        optimizer="adamw",
        lr=1e-3,
        weight_decay=0.1,
    )


@pytest.mark.server
def test_hidden_lr_scales_as_one_over_m_in(mlp_table: MupTable) -> None:
    wide, wider = mlp_table.targets

    # Tensor Programs V, Table 8 (MuAdamW): a hidden weight's lr is η/m_in.
    assert wide.width_multipliers == {"w": 4.0}
    assert wide.by_name("fc2.weight").m_in == 4.0
    assert wide.by_name("fc2.weight").lr == pytest.approx(2.5e-4, rel=1e-12)
    assert wide.by_name("fc2.weight").param_class == "matrix_like"
    assert wider.by_name("fc2.weight").lr == pytest.approx(6.25e-5, rel=1e-12)
    # mup package convention: weight decay × m_in, so lr·wd stays constant.
    assert wide.by_name("fc2.weight").weight_decay == pytest.approx(0.4, rel=1e-12)


@pytest.mark.server
def test_input_weights_keep_the_base_lr_and_the_readout_divides_by_m(
    mlp_table: MupTable,
) -> None:
    wide = mlp_table.targets[0]

    assert wide.by_name("fc1.weight").lr == pytest.approx(1e-3, rel=1e-12)
    assert wide.by_name("fc1.weight").param_class == "vector_like"
    assert wide.output_multiplier == pytest.approx(0.25, rel=1e-12)
    assert wide.by_name("readout.weight").init_std == 0.0
    assert mlp_table.form == "mup_package" and mlp_table.optimizer == "adamw"
    assert mlp_table.base.dims["w"] == 64
    assert [target.dims["w"] for target in mlp_table.targets] == [256, 1024]


@pytest.mark.server
def test_to_json_writes_the_service_bytes(
    live_server_url: str, mlp_table: MupTable
) -> None:
    body = {
        "spec": load_spec(MLP_SPEC),
        "base_dims": {"w": 64},
        "targets": [{"w": 256}, {"w": 1024}],
        "optimizer": "adamw",
        "lr": 1e-3,
        "weight_decay": 0.1,
    }
    answer = requests.post(f"{live_server_url}/v1/mup/table", json=body, timeout=60)
    buffer = io.StringIO()

    mlp_table.to_json(buffer)

    assert answer.status_code == 200
    assert buffer.getvalue().encode() == answer.content


@pytest.mark.server
def test_the_live_csv_reads_back_to_the_rows(mlp_table: MupTable) -> None:
    buffer = io.StringIO(newline="")

    mlp_table.to_csv(buffer)

    lines = read_csv(buffer.getvalue())
    rows = [row for target in mlp_table.targets for row in target.parameters]
    assert [line["name"] for line in lines] == [row.name for row in rows]
    assert [float(line["lr"]) for line in lines] == [row.lr for row in rows]
    assert [line["class"] for line in lines] == [row.param_class for row in rows]


@pytest.mark.server
def test_live_rows_name_their_init_distribution(mlp_table: MupTable) -> None:
    wide = mlp_table.targets[0]

    # init_std 0.02 draws every weight from a normal; biases start at 0 and the
    # readout too (readout_zero_init), both constants.
    assert wide.by_name("fc2.weight").init_distribution == "normal"
    assert wide.by_name("fc1.bias").init_distribution == "constant"
    assert wide.by_name("readout.weight").init_distribution == "constant"


@pytest.fixture(scope="module")
def deeper_gpt(client: Client) -> MupTable:
    # numpy integers as dims, the depth rule by name: both as a user writes them.
    return client.mup_table(
        load_spec(GPT_SPEC),
        targets=[{"n_layer": np.int64(8), "d_model": np.int64(256), "d_ff": 1024}],
        lr=1e-3,
        depth="completep",
    )


@pytest.mark.server
def test_a_depth_rule_by_name_scales_branches_and_eps(deeper_gpt: MupTable) -> None:
    (target,) = deeper_gpt.targets

    # CompleteP (Dey et al. 2025), α = 1: m_L = 16/4 residual branches = 4 and
    # m_N = 256/64 = 4. Branch outputs × m_L^−α; Adam ε × m_N⁻¹·m_L^−α.
    assert deeper_gpt.depth == {"rule": "completep", "alpha": 1.0}
    assert target.dims["n_layer"] == 8 and target.dims["d_model"] == 256
    assert target.depth_multiplier == 4.0
    assert target.residual_multiplier == pytest.approx(0.25, rel=1e-12)
    assert target.adam_eps == pytest.approx(1e-8 / 16, rel=1e-12)
    # µP attention: √(d_head base = 16) / (d_head = 64).
    assert target.attention_scale == pytest.approx(0.0625, rel=1e-12)


@pytest.mark.server
def test_the_live_csv_carries_what_training_needs(deeper_gpt: MupTable) -> None:
    (target,) = deeper_gpt.targets
    buffer = io.StringIO(newline="")

    deeper_gpt.to_csv(buffer)

    lines = read_csv(buffer.getvalue())
    assert len(lines) == len(target.parameters)
    for line, row in zip(lines, target.parameters, strict=True):
        assert line["name"] == row.name
        assert line["init_distribution"] == row.init_distribution
        assert float(line["adam_eps"]) == target.adam_eps
        assert float(line["residual_multiplier"]) == target.residual_multiplier
        assert float(line["attention_scale"]) == target.attention_scale
        assert float(line["output_multiplier"]) == target.output_multiplier
        assert line["notes"] == "; ".join(row.notes)
    by_name = {line["name"]: line for line in lines}
    assert by_name["h.0.ln_1.weight"]["init_distribution"] == "constant"
    assert by_name["h.7.mlp.c_fc.weight"]["init_distribution"] == "normal"


@pytest.mark.server
def test_no_targets_raises_validation_error_naming_targets(client: Client) -> None:
    with pytest.raises(ValidationError) as caught:
        client.mup_table(load_spec(MLP_SPEC), targets=[], lr=1e-3)

    error = caught.value
    assert error.status == 422
    assert any(field.pointer.startswith("/targets") for field in error.errors)
