"""The ``initlab`` command against the real service, and its exit statuses.

Each command runs in-process with click's CliRunner (stdout and stderr kept
apart, neither a terminal) against gunicorn on 127.0.0.1; its ``--json``
output is compared with the body the service returns to the same request
sent with ``requests``, and its table and CSV with values worked out here.
Failures come from a tiny local HTTP server that answers what a test asks
for, and from ports where nothing listens.
"""

from __future__ import annotations

import contextlib
import csv
import io
import json
import math
import re
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import requests
import urllib3.util.connection
from click.testing import CliRunner, Result

from initlab_client import Client, __version__
from initlab_client.cli import EXIT_CODES, main
from initlab_client.cli.app import cli
from initlab_client.cli.output import Output

from .test_retries import BUSY, FAR_FUTURE, Answer, DroppingServer, ScriptedServer
from .test_spec_files import BILLION_LAUGHS

pytestmark = pytest.mark.server

REPO_ROOT = Path(__file__).resolve().parents[2]
MLP_PATH = REPO_ROOT / "examples" / "mlp-3layer.spec.json"
MLP = json.loads(MLP_PATH.read_text())
GPT2_CONFIG_PATH = REPO_ROOT / "examples" / "hf" / "gpt2-small.json"
# 784 → 256 → 256 → 10 with biases, counted by hand.
MLP_PARAMETERS = (784 * 256 + 256) + (256 * 256 + 256) + (256 * 10 + 10)
# Radford et al. (2019), GPT-2 small with the LM head tied to wte; torchvision's
# resnet50() has 25,557,032 parameters (its model card).
GPT2_SMALL_PARAMETERS = 124_439_808
RESNET50_PARAMETERS = 25_557_032
ANSI_ESCAPE = "\x1b["
BOX_CHARACTERS = set("─━│┃┌┐└┘├┤┬┴┼╭╮╰╯")
SMALL_CHECK = ["--steps", "2", "--seeds", "1", "--batch-size", "8"]


def run(*args: str, input: str | None = None) -> Result:
    """``initlab ARGS`` in-process, without the caller's INITLAB_* variables."""
    runner = CliRunner()
    environment = {"INITLAB_URL": None, "INITLAB_API_KEY": None}

    return runner.invoke(cli, list(args), input=input, env=environment)


def post(url: str, path: str, body: dict[str, Any]) -> Any:
    answer = requests.post(url + path, json=body, timeout=120)
    assert answer.status_code == 200, answer.text

    return answer.json()


def get(url: str, path: str, params: dict[str, Any] | None = None) -> Any:
    answer = requests.get(url + path, params=params, timeout=30)
    assert answer.status_code == 200, answer.text

    return answer.json()


def table_row(stdout: str, first_cell: str) -> list[str]:
    """The cells of the row that starts with ``first_cell``, split on 2+ spaces."""
    for line in stdout.splitlines():
        cells = re.split(r"\s{2,}", line.strip())
        if cells[0] == first_cell:
            return cells

    raise AssertionError(f"no row {first_cell!r} in:\n{stdout}")


def csv_rows(stdout: str) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(stdout)))


def ok(result: Result) -> Result:
    assert result.exit_code == 0, (result.exit_code, result.stderr, result.exception)
    # Neither stream is a terminal here: no spinner, no colour, no boxes.
    assert result.stderr == ""
    assert ANSI_ESCAPE not in result.stdout
    assert not BOX_CHARACTERS & set(result.stdout)

    return result


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


# --- recommend -------------------------------------------------------------


def test_recommend_prints_each_layers_std_in_a_plain_table(
    live_server_url: str,
) -> None:
    result = ok(
        run(
            "--url",
            live_server_url,
            "recommend",
            str(MLP_PATH),
            "--scheme",
            "kaiming_normal",
        )
    )

    # He et al. (2015), fan_in mode: std = gain/√fan_in, with the gain of the
    # activation that follows the layer (the scheme's nonlinearity "layer"):
    # √2 after a ReLU, 1 for fc3, which has none.
    expected = {
        "fc1.weight": ("256x784", math.sqrt(2 / 784), math.sqrt(2), "784", "256"),
        "fc2.weight": ("256x256", math.sqrt(2 / 256), math.sqrt(2), "256", "256"),
        "fc3.weight": ("10x256", 1 / math.sqrt(256), 1.0, "256", "10"),
    }
    for name, (shape, std, gain, fan_in, fan_out) in expected.items():
        cells = table_row(result.stdout, name)
        assert cells[1] == shape
        assert cells[2] == "normal"
        assert float(cells[3]) == pytest.approx(std, rel=1e-5)
        assert float(cells[5]) == pytest.approx(gain, rel=1e-5)
        assert cells[6:9] == [fan_in, fan_out, "pytorch"]
    for bias in ("fc1.bias", "fc2.bias", "fc3.bias"):
        assert table_row(result.stdout, bias)[2:4] == ["constant 0", "0"]

    lines = result.stdout.splitlines()
    assert lines[0] == "scheme: kaiming_normal (mode=fan_in, nonlinearity=layer)"
    assert lines[1].startswith(f"parameters: {MLP_PARAMETERS:,} in 6 tensors")
    assert re.split(r"\s{2,}", lines[2]) == [
        "name",
        "shape",
        "distribution",
        "std",
        "bound",
        "gain",
        "fan_in",
        "fan_out",
        "convention",
    ]
    assert "notes:" in lines
    assert all(line == line.rstrip() for line in lines)


def test_recommend_json_is_the_services_answer(live_server_url: str) -> None:
    result = ok(
        run(
            "--url",
            live_server_url,
            "recommend",
            str(MLP_PATH),
            "--scheme",
            "kaiming_normal",
            "--json",
        )
    )

    expected = post(
        live_server_url,
        "/v1/recommendations",
        {"spec": MLP, "scheme": "kaiming_normal"},
    )
    assert json.loads(result.stdout) == expected


def test_recommend_options_and_overrides_reach_the_service(
    live_server_url: str,
) -> None:
    args = [
        "--url",
        live_server_url,
        "recommend",
        str(MLP_PATH),
        "--scheme",
        "kaiming_normal",
        "--option",
        "mode=fan_out",
        "--override",
        "fc3=xavier_normal",
    ]

    answer = json.loads(ok(run(*args, "--json")).stdout)
    rows = {row["name"]: row for row in csv_rows(ok(run(*args, "--csv")).stdout)}

    expected = post(
        live_server_url,
        "/v1/recommendations",
        {
            "spec": MLP,
            "scheme": {"name": "kaiming_normal", "mode": "fan_out"},
            "overrides": {"fc3": "xavier_normal"},
        },
    )
    assert answer == expected
    # fan_out mode: fc1's weight (256, 784) has fan_out 256, so √2/√256;
    # fc3 under Xavier normal: √(2/(fan_in + fan_out)) = √(2/266).
    assert float(rows["fc1.weight"]["std"]) == pytest.approx(
        math.sqrt(2) / 16, rel=1e-12
    )
    assert float(rows["fc3.weight"]["std"]) == pytest.approx(
        math.sqrt(2 / 266), rel=1e-12
    )


def test_recommend_csv_has_one_line_per_tensor_with_every_digit(
    live_server_url: str,
) -> None:
    result = ok(
        run(
            "--url",
            live_server_url,
            "recommend",
            str(MLP_PATH),
            "--scheme",
            "kaiming_normal",
            "--csv",
        )
    )

    rows = csv_rows(result.stdout)
    assert [row["name"] for row in rows] == [
        f"fc{layer}.{tensor}" for layer in (1, 2, 3) for tensor in ("weight", "bias")
    ]
    weight = rows[0]
    assert weight["shape"] == "256x784"
    assert weight["distribution"] == "normal"
    assert weight["bound"] == ""
    assert (int(weight["fan_in"]), int(weight["fan_out"])) == (784, 256)
    # Every digit kept: √(2/784) to the last ulp or so (torch rounds gain/√fan).
    assert float(weight["std"]) == pytest.approx(math.sqrt(2 / 784), rel=1e-15)
    assert weight["pytorch"].startswith("torch.nn.init.kaiming_normal_(")
    assert rows[1]["distribution"] == "constant" and float(rows[1]["std"]) == 0.0


def test_a_spec_from_standard_input_a_yaml_file_and_a_preset(
    live_server_url: str, tmp_path: Path
) -> None:
    yaml_path = tmp_path / "mlp.yaml"
    yaml_path.write_text(
        "dims: {d_in: 784, d_hidden: 256, n_classes: 10}\n"
        "layers:\n"
        "  - {kind: linear, name: fc1, in: d_in, out: d_hidden, activation: relu}\n"
        "  - {kind: linear, name: fc2, in: d_hidden, out: d_hidden, activation: relu}\n"
        "  - {kind: linear, name: fc3, in: d_hidden, out: n_classes}\n"
    )
    url = ["--url", live_server_url]

    from_stdin = ok(run(*url, "recommend", "-", "--json", input=MLP_PATH.read_text()))
    from_yaml = ok(run(*url, "recommend", str(yaml_path), "--json"))
    yaml_stdin = ok(run(*url, "recommend", "-", "--json", input=yaml_path.read_text()))
    from_preset = ok(
        run(*url, "recommend", "--preset", "mlp", "--param", "width=64", "--json")
    )

    expected = post(
        live_server_url, "/v1/recommendations", {"spec": MLP, "scheme": "auto"}
    )
    assert json.loads(from_stdin.stdout) == expected
    assert json.loads(from_yaml.stdout) == expected
    assert json.loads(yaml_stdin.stdout) == expected
    preset = json.loads(from_preset.stdout)
    assert preset == post(
        live_server_url,
        "/v1/recommendations",
        {"spec": {"preset": {"name": "mlp", "width": 64}}, "scheme": "auto"},
    )
    # The mlp preset's defaults: 784 → width → width → 10.
    assert preset["parameter_count"] == (784 * 64 + 64) + (64 * 64 + 64) + (
        64 * 10 + 10
    )


def test_a_hugging_face_config_is_read_as_the_model_it_describes(
    live_server_url: str,
) -> None:
    result = ok(
        run(
            "--url",
            live_server_url,
            "recommend",
            str(GPT2_CONFIG_PATH),
            "--scheme",
            "gpt2",
            "--json",
        )
    )

    answer = json.loads(result.stdout)
    config = json.loads(GPT2_CONFIG_PATH.read_text())
    imported = {"format": "huggingface", "config": config, "head": "default"}
    assert answer == post(
        live_server_url,
        "/v1/recommendations",
        {"spec": {"import": imported}, "scheme": "gpt2"},
    )
    assert answer["parameter_count"] == GPT2_SMALL_PARAMETERS


# --- stats -----------------------------------------------------------------


def test_stats_table_json_and_csv(live_server_url: str) -> None:
    args = [
        "--url",
        live_server_url,
        "stats",
        str(MLP_PATH),
        "--init",
        "kaiming_normal",
        "--seeds",
        "2",
        "--batch-size",
        "16",
        "--seed",
        "3",
    ]

    table = ok(run(*args)).stdout
    answer = json.loads(ok(run(*args, "--json")).stdout)
    rows = csv_rows(ok(run(*args, "--csv")).stdout)

    expected = post(
        live_server_url,
        "/v1/statistics",
        {
            "spec": MLP,
            "init": "kaiming_normal",
            "method": "both",
            "seed": 3,
            "seeds": 2,
            "batch_size": 16,
            "input": {"second_moment": 1.0},
        },
    )
    assert answer == expected
    # Mean field with unit inputs: E[h²] = σ_w²·E[x²] = 2 at fc1, then
    # 2·E[relu(h)²] = 2·(2/2) = 2 at fc2, and 1·(2/2) = 1 at fc3 (gain 1).
    assert [row["name"] for row in rows] == ["fc1", "fc2", "fc3"]
    assert [float(row["analytic_second_moment"]) for row in rows] == pytest.approx(
        [2.0, 2.0, 1.0], rel=1e-12
    )
    monte_carlo = [
        layer["monte_carlo"]["second_moment"]["mean"] for layer in expected["layers"]
    ]
    assert [float(row["monte_carlo_second_moment_mean"]) for row in rows] == monte_carlo
    assert rows[0]["analytic_saturation_fraction"] == ""
    assert table.splitlines()[1] == "method: both (2 networks, batch 16, seed 3)"
    cells = table_row(table, "fc3")
    assert cells[:5] == ["fc3", "dense", "10", "identity", "1"]
    assert cells[5].startswith(f"{monte_carlo[2]:.4g} ± ")
    assert f"forward: {expected['summary']['forward']['verdict']}: " in table


# --- mup-table -------------------------------------------------------------


def test_mup_table_targets_json_and_csv(live_server_url: str) -> None:
    args = [
        "--url",
        live_server_url,
        "mup-table",
        str(MLP_PATH),
        "--lr",
        "1e-3",
        "--widths",
        "d_hidden=512,1024",
        "--weight-decay",
        "0.1",
    ]

    table = ok(run(*args)).stdout
    answer = json.loads(ok(run(*args, "--json")).stdout)
    rows = csv_rows(ok(run(*args, "--csv")).stdout)

    expected = post(
        live_server_url,
        "/v1/mup/table",
        {
            "spec": MLP,
            "targets": [{"d_hidden": 512}, {"d_hidden": 1024}],
            "optimizer": "adamw",
            "lr": 1e-3,
            "weight_decay": 0.1,
        },
    )
    assert answer == expected
    # Tensor Programs V, Table 8 under Adam: a hidden matrix's lr is η/m_in,
    # with m_in = 512/256 = 2 and 1024/256 = 4; a vector-like tensor keeps η.
    hidden = [row for row in rows if row["name"] == "fc2.weight"]
    assert [float(row["lr"]) for row in hidden] == pytest.approx([5e-4, 2.5e-4])
    assert [float(row["m_in"]) for row in hidden] == [2.0, 4.0]
    assert {float(row["lr"]) for row in rows if row["name"] == "fc1.bias"} == {1e-3}
    assert len(rows) == 2 * 6
    assert "target 1: d_in=784, d_hidden=1024, n_classes=10" in table
    assert table_row(table, "fc2.weight")[:5] == [
        "fc2.weight",
        "512x512",
        "hidden",
        "matrix_like",
        "2",
    ]


def test_mup_table_targets_given_dim_by_dim(live_server_url: str) -> None:
    result = ok(
        run(
            "--url",
            live_server_url,
            "mup-table",
            str(MLP_PATH),
            "--lr",
            "0.01",
            "--optimizer",
            "sgd",
            "--target",
            "d_hidden=1024",
            "--base",
            "d_hidden=128",
            "--json",
        )
    )

    assert json.loads(result.stdout) == post(
        live_server_url,
        "/v1/mup/table",
        {
            "spec": MLP,
            "targets": [{"d_hidden": 1024}],
            "optimizer": "sgd",
            "lr": 0.01,
            "base_dims": {"d_hidden": 128},
        },
    )


# --- the µP checks ---------------------------------------------------------


def test_coord_check_table_json_and_csv(live_server_url: str) -> None:
    args = [
        "--url",
        live_server_url,
        "coord-check",
        str(MLP_PATH),
        "--widths",
        "d_hidden=16,32",
        *SMALL_CHECK,
    ]

    table = ok(run(*args)).stdout
    answer = json.loads(ok(run(*args, "--json")).stdout)
    rows = csv_rows(ok(run(*args, "--csv")).stdout)

    expected = post(
        live_server_url,
        "/v1/mup/coord-check",
        {
            "spec": MLP,
            "widths": [16, 32],
            "width_dim": "d_hidden",
            "steps": 2,
            "seeds": 1,
            "batch_size": 8,
        },
    )
    assert answer == expected
    # One line per parametrization, layer, step and width: 2 × 3 × 2 × 2.
    assert len(rows) == 24
    mup_fc2 = next(
        entry["layers"][1]
        for entry in expected["parametrizations"]
        if entry["name"] == "mup"
    )
    line = next(
        row
        for row in rows
        if row["parametrization"] == "mup"
        and row["layer"] == "fc2"
        and row["step"] == "2"
        and row["width"] == "32"
    )
    assert float(line["mean_abs"]) == mup_fc2["mean"][1][1]
    assert float(line["slope"]) == mup_fc2["slopes"][1]
    for entry in expected["parametrizations"]:
        assert entry["summary"] in table
    assert "widths of d_hidden: 16, 32" in table


def test_transfer_check_table_json_and_csv(live_server_url: str) -> None:
    args = [
        "--url",
        live_server_url,
        "transfer-check",
        str(MLP_PATH),
        "--widths",
        "16,32",
        "--width-dim",
        "d_hidden",
        "--lrs",
        "1e-3,1e-2",
        "--parametrization",
        "mup",
        *SMALL_CHECK,
    ]

    table = ok(run(*args)).stdout
    answer = json.loads(ok(run(*args, "--json")).stdout)
    rows = csv_rows(ok(run(*args, "--csv")).stdout)

    expected = post(
        live_server_url,
        "/v1/mup/transfer-check",
        {
            "spec": MLP,
            "widths": [16, 32],
            "width_dim": "d_hidden",
            "lrs": [1e-3, 1e-2],
            "parametrizations": ["mup"],
            "steps": 2,
            "seeds": 1,
            "batch_size": 8,
        },
    )
    assert answer == expected
    (entry,) = expected["parametrizations"]
    assert [(row["width"], row["lr"]) for row in rows] == [
        ("16", "0.001"),
        ("16", "0.01"),
        ("32", "0.001"),
        ("32", "0.01"),
    ]
    losses = [loss for curve in entry["curves"] for loss in curve["losses"]]
    assert [float(row["loss"]) for row in rows] == losses
    best = [row["best"] == "true" for row in rows]
    assert best == [
        index == curve["best_index"] for curve in entry["curves"] for index in (0, 1)
    ]
    assert expected["verdict"] in table


# --- import ----------------------------------------------------------------


def test_import_prints_the_spec_and_its_summary(
    live_server_url: str, tmp_path: Path
) -> None:
    config = json.loads(GPT2_CONFIG_PATH.read_text())
    expected = post(
        live_server_url, "/v1/specs/import", {"format": "huggingface", "config": config}
    )
    url = ["--url", live_server_url]

    printed = run(*url, "import", str(GPT2_CONFIG_PATH))
    saved = ok(
        run(
            *url,
            "import",
            str(GPT2_CONFIG_PATH),
            "--output",
            str(tmp_path / "gpt2.json"),
        )
    )
    whole = ok(run(*url, "import", str(GPT2_CONFIG_PATH), "--json"))

    assert printed.exit_code == 0
    assert json.loads(printed.stdout) == expected["spec"]
    assert f"parameters: {GPT2_SMALL_PARAMETERS:,}" in printed.stderr
    assert "source: huggingface:gpt2" in printed.stderr
    assert json.loads((tmp_path / "gpt2.json").read_text()) == expected["spec"]
    assert f"parameters: {GPT2_SMALL_PARAMETERS:,}" in saved.stdout
    assert json.loads(whole.stdout) == expected


def test_import_a_torchvision_architecture(live_server_url: str) -> None:
    plain = run("--url", live_server_url, "import", "resnet50")
    ten = ok(
        run(
            "--url",
            live_server_url,
            "import",
            "resnet50",
            "--option",
            "num_classes=10",
            "--json",
        )
    )

    assert plain.exit_code == 0
    assert f"parameters: {RESNET50_PARAMETERS:,}" in plain.stderr
    answer = json.loads(ten.stdout)
    assert answer == post(
        live_server_url,
        "/v1/specs/import",
        {"format": "torchvision", "arch": "resnet50", "options": {"num_classes": 10}},
    )
    # The classifier shrinks from 2048·1000 + 1000 to 2048·10 + 10.
    assert answer["parameter_count"] == RESNET50_PARAMETERS - 2048 * 990 - 990


# --- catalogues ------------------------------------------------------------


def test_activations_table_json_and_csv(live_server_url: str) -> None:
    url = ["--url", live_server_url]

    table = ok(run(*url, "activations")).stdout
    answer = json.loads(ok(run(*url, "activations", "--json")).stdout)
    rows = {
        row["name"]: row
        for row in csv_rows(ok(run(*url, "activations", "--csv")).stdout)
    }
    leaky = json.loads(
        ok(
            run(
                *url,
                "activations",
                "leaky_relu",
                "--param",
                "negative_slope=0.2",
                "--json",
            )
        ).stdout
    )

    assert answer == get(live_server_url, "/v1/activations")
    assert leaky == get(
        live_server_url,
        "/v1/activations",
        {"name": "leaky_relu", "negative_slope": "0.2"},
    )
    # ReLU: E[relu(z)²] = 1/2, so the gain 1/√(1/2) = √2 (He et al. 2015);
    # leaky ReLU with slope a: √(2/(1 + a²)).
    assert float(rows["relu"]["second_moment_gain"]) == pytest.approx(
        math.sqrt(2), rel=1e-15
    )
    assert float(rows["tanh"]["pytorch_gain"]) == pytest.approx(5 / 3, rel=1e-15)
    (slope,) = leaky["activations"]
    assert slope["pytorch_gain"] == pytest.approx(math.sqrt(2 / 1.04), rel=1e-12)
    cells = table_row(table, "relu")
    assert cells[:3] == ["relu", "-", f"{math.sqrt(2):.6g}"]
    assert set(rows) == {activation["name"] for activation in answer["activations"]}


def test_schemes_presets_and_health(live_server_url: str) -> None:
    url = ["--url", live_server_url]

    schemes = ok(run(*url, "schemes"))
    schemes_json = ok(run(*url, "schemes", "--json"))
    presets = ok(run(*url, "presets"))
    presets_json = ok(run(*url, "presets", "--json"))
    health = ok(run(*url, "health"))
    health_json = ok(run(*url, "health", "--json"))

    assert json.loads(schemes_json.stdout) == get(live_server_url, "/v1/schemes")
    assert json.loads(presets_json.stdout) == get(live_server_url, "/v1/presets")
    assert json.loads(health_json.stdout) == {"status": "ok"}
    assert health.stdout == f"{live_server_url}: ok\n"
    assert table_row(schemes.stdout, "xavier_normal")[:2] == [
        "xavier_normal",
        "gain=1.0",
    ]
    assert table_row(presets.stdout, "width")[:3] == ["width", "integer", "256"]


def test_schemes_and_presets_csv_have_a_line_per_scheme_and_parameter(
    live_server_url: str,
) -> None:
    url = ["--url", live_server_url]

    schemes = csv_rows(ok(run(*url, "schemes", "--csv")).stdout)
    presets = csv_rows(ok(run(*url, "presets", "--csv")).stdout)

    served = get(live_server_url, "/v1/schemes")["schemes"]
    assert [row["name"] for row in schemes] == [scheme["name"] for scheme in served]
    kaiming = next(row for row in schemes if row["name"] == "kaiming_normal")
    assert json.loads(kaiming["options"]) == {
        "mode": "fan_in",
        "nonlinearity": "layer",
        "negative_slope": None,
    }
    assert kaiming["convention"] == "pytorch"
    assert "He" in kaiming["source"]

    served_presets = get(live_server_url, "/v1/presets")["presets"]
    assert len(presets) == sum(len(p["parameters"]) for p in served_presets)
    width = next(
        row for row in presets if (row["preset"], row["parameter"]) == ("mlp", "width")
    )
    assert (width["type"], width["default"], width["minimum"]) == (
        "integer",
        "256",
        "1",
    )
    widths = next(
        row for row in presets if (row["preset"], row["parameter"]) == ("mlp", "widths")
    )
    assert (widths["default"], widths["min_items"], widths["max_items"]) == (
        "",
        "1",
        "1000",
    )


# --- failures --------------------------------------------------------------


def test_a_refused_spec_exits_2_naming_the_field(live_server_url: str) -> None:
    bad = {"dims": {"d": -4}, "layers": [{"kind": "linear", "in": "d", "out": 4}]}

    result = run("--url", live_server_url, "recommend", "-", input=json.dumps(bad))

    assert result.exit_code == 2
    assert result.stdout == ""
    lines = result.stderr.splitlines()
    assert lines[0] == "initlab: 422 Request breaks a rule"
    # The field at fault, once: the detail that restates it is not repeated.
    assert [line for line in lines if "/spec/dims/d" in line] == [
        '  /spec/dims/d: dim "d" must be a positive integer; got -4'
    ]
    assert re.fullmatch(r"  request id: [0-9a-f]{32}", lines[-1])


def test_a_request_over_a_limit_exits_2(live_server_url: str) -> None:
    result = run("--url", live_server_url, "stats", str(MLP_PATH), "--seeds", "100000")

    assert result.exit_code == 2
    assert "/seeds: " in result.stderr


def test_a_missing_or_broken_spec_file_exits_2(tmp_path: Path) -> None:
    broken = tmp_path / "broken.json"
    broken.write_text('{"dims": {}, "layers": [')
    url = f"http://127.0.0.1:{free_port()}"

    missing = run("--url", url, "recommend", str(tmp_path / "nope.json"))
    unparsable = run("--url", url, "recommend", str(broken))
    a_list = run("--url", url, "recommend", "-", input="[1, 2]")
    nothing = run("--url", url, "recommend")

    for result in (missing, unparsable, a_list, nothing):
        assert result.exit_code == 2, result.stderr
        assert result.stdout == ""
    assert "nope.json" in missing.stderr
    assert "not valid JSON at line 1" in unparsable.stderr
    assert "got list" in a_list.stderr
    assert "missing SPEC" in nothing.stderr


@pytest.mark.parametrize(
    "args",
    [
        ["recommend", str(MLP_PATH), "--json", "--csv"],
        ["recommend", str(MLP_PATH), "--option", "fan_out"],
        ["mup-table", str(MLP_PATH), "--lr", "nan"],
        ["mup-table", str(MLP_PATH), "--lr", "0.01", "--widths", "512,1024"],
        ["coord-check", str(MLP_PATH), "--widths", "16,x"],
        ["recommend", "--preset", "mlp", str(MLP_PATH)],
        ["--url", "ftp://example.org", "recommend", str(MLP_PATH)],
    ],
)
def test_bad_options_exit_2_before_anything_is_sent(args: list[str]) -> None:
    result = run(*args)

    assert result.exit_code == 2, (result.stderr, result.exception)
    assert result.stdout == ""
    assert "Error: " in result.stderr


@pytest.mark.parametrize(
    ("url", "problem"),
    [
        (
            "http://127.0.0.1:99999",
            "base_url has the port '99999'; a port is a number from 1 to 65535",
        ),
        ("http://127.0.0.1:abc", "base_url has the port 'abc'; a port is a number"),
        ("http://127.0.0.1:0", "base_url has the port '0'; a port is a number"),
        (
            "http://ada:s3cret-pw@127.0.0.1:8000",
            "base_url must not carry a user name and password (got"
            " 'http://ada:***@127.0.0.1:8000'): the service takes an API key",
        ),
    ],
)
def test_a_url_that_is_no_service_url_exits_2_before_sending(
    url: str, problem: str
) -> None:
    result = run("--url", url, "health")

    assert result.exit_code == 2, (result.stderr, result.exception)
    assert result.stdout == ""
    (error,) = [line for line in result.stderr.splitlines() if "Error" in line]
    assert error.startswith(f"Error: Invalid value for --url / INITLAB_URL: {problem}")
    assert "s3cret" not in result.stderr


@pytest.mark.parametrize(
    ("name", "text", "problem"),
    [
        (
            "rec.yaml",
            "a: &a [*a]\n",
            "line 1, column 8: YAML aliases (*a) are not read in a spec file;"
            " write the value out",
        ),
        (
            "bomb.yaml",
            BILLION_LAUGHS,
            "line 2, column 8: YAML aliases (*a) are not read in a spec file;"
            " write the value out",
        ),
        (
            "key.yaml",
            "? [a, b]\n: 1\n",
            "line 1, column 3: this mapping key is a list; the keys of a spec"
            " are names (JSON keys are strings): write a name",
        ),
        (
            "deep.json",
            '{"dims": {}, "layers": ' + "[" * 80 + "]" * 80 + "}",
            "/layers" + "/0" * 62 + ": lists and objects nest more than 63 levels"
            " deep here, deeper than the service reads (a spec nests a few levels;"
            " see examples/*.spec.json)",
        ),
    ],
)
def test_a_hostile_or_too_deep_spec_file_exits_2_naming_it(
    tmp_path: Path, name: str, text: str, problem: str
) -> None:
    path = tmp_path / name
    path.write_text(text)

    result = run("--url", f"http://127.0.0.1:{free_port()}", "recommend", str(path))

    assert result.exit_code == 2, (result.stderr, result.exception)
    assert result.stdout == ""
    assert "Traceback" not in result.stderr
    (error,) = [line for line in result.stderr.splitlines() if "Error" in line]
    assert error == f"Error: Invalid value for SPEC: {path}: {problem}"


@pytest.mark.parametrize(
    ("args", "stdin", "message"),
    [
        (["--timeout", "0", "health"], None, "timeout must be a positive"),
        (["--timeout", "-3", "health"], None, "timeout must be a positive"),
        (["recommend", "-"], "", "standard input is empty"),
        (["recommend", "-"], " \n", "standard input is empty"),
        (
            ["recommend", "-"],
            '{"dims": {}, "layers": [{"kind": "linear", "in": NaN, "out": 4}]}',
            "NaN is not a JSON number",
        ),
        (
            ["recommend", "-"],
            '{"dims": {}, "dims": {}, "layers": []}',
            'the key "dims" appears twice',
        ),
        (
            ["recommend", "-"],
            "layers:\n- kind: linear\n  in: 2024-01-01\n  out: 4\n",
            "/layers/0/in: the date 2024-01-01 has no JSON form",
        ),
        (["recommend", "-"], '{"layers":' + "[" * 3000 + "]" * 3000 + "}", "deeply"),
        (
            ["recommend", "-"],
            "a: &a [*a]\n",
            "SPEC: <stdin>: line 1, column 8: YAML aliases (*a) are not read",
        ),
        (["recommend", "-"], BILLION_LAUGHS, "SPEC: <stdin>: line 2, column 8: YAML"),
        (["recommend", "-"], "dims:\n  ? {d: 1}\n  : 4\n", "key is a mapping"),
        (
            ["recommend", str(MLP_PATH), "--scheme", "normal", "--option", "std=NaN"],
            None,
            "/scheme/std: nan is not a JSON number",
        ),
        (
            ["recommend", str(MLP_PATH), "--scheme", "normal", "--option", "std=1e999"],
            None,
            "/scheme/std: inf is not a JSON number",
        ),
        (
            ["recommend", str(MLP_PATH), "--scheme", '{"name": "normal", "std": NaN}'],
            None,
            "/scheme/std: nan is not a JSON number",
        ),
        (["recommend", "--preset", "mlp", "--param", "width=1e400"], None, "inf is"),
    ],
)
def test_user_mistakes_exit_2_with_a_message_and_no_traceback(
    args: list[str], stdin: str | None, message: str
) -> None:
    # Nothing listens on this port: each mistake is caught before sending.
    url = f"http://127.0.0.1:{free_port()}"

    result = run("--url", url, "--retries", "0", *args, input=stdin)

    assert result.exit_code == 2, (result.stderr, result.exception)
    assert result.stdout == ""
    assert message in result.stderr
    assert "Traceback" not in result.stderr


def test_a_service_still_busy_after_the_retries_exits_4(
    canned: CannedService,
) -> None:
    canned.problem(429, "Too Many Requests", "req-429")

    result = run("--url", canned.url, "--retries", "0", "schemes")

    assert result.exit_code == 4
    assert len(canned.headers) == 1
    assert result.stderr.splitlines() == [
        f"initlab: the initlab service at {canned.url} is still busy after the"
        " retries: 429 Too Many Requests.",
        "Try again later, or with more --retries.",
    ]


@pytest.mark.parametrize(
    ("retry_after", "said"),
    [
        ("5", " (it asks to wait 5 s)."),
        (
            "7200",
            " (it asks to wait 7,200 s; this client waits at most 60 s before"
            " a retry).",
        ),
        (FAR_FUTURE, "; this client waits at most 60 s before a retry)."),
    ],
)
def test_a_busy_answer_says_what_it_asked_and_what_the_client_waits(
    retry_after: str, said: str
) -> None:
    busy = {"title": "Too Many Requests", "status": 429, "type": "about:blank"}
    script = [Answer(429, busy, {"Retry-After": retry_after})]

    with ScriptedServer(script) as server:
        result = run("--url", server.url, "--retries", "0", "schemes")

    assert result.exit_code == 4
    first = result.stderr.splitlines()[0]
    assert first.startswith(f"initlab: the initlab service at {server.url} is still")
    assert first.endswith(said)
    assert "21600" not in first


def test_a_service_busy_with_computations_exits_4_saying_to_try_later() -> None:
    # Retry-After 0: the client's retries follow at once, and the test takes
    # no time.
    script = [Answer(503, BUSY, {"Retry-After": "0"})]

    with ScriptedServer(script) as server:
        result = run("--url", server.url, "--retries", "1", "stats", str(MLP_PATH))

    assert result.exit_code == 4
    assert len(server.received) == 2
    assert result.stdout == ""
    assert result.stderr.splitlines() == [
        f"initlab: the initlab service at {server.url} is still busy after 2"
        " attempts: 503 Service busy (it asks to wait 0 s); try again later, or"
        " with more --retries.",
        f"  {BUSY['detail']}",
        "  request id: req-busy",
    ]


def test_a_server_error_without_a_request_id_does_not_ask_for_one(
    canned: CannedService,
) -> None:
    canned.status = 502
    canned.content_type = "text/html"
    canned.body = b"<html>Bad Gateway</html>"

    result = run("--url", canned.url, "--retries", "0", "schemes")

    assert result.exit_code == 3
    assert "request id" not in result.stderr
    assert "or a proxy in front of it, failed" in result.stderr


def test_a_stopped_service_exits_4_naming_the_url() -> None:
    url = f"http://127.0.0.1:{free_port()}"

    result = run("--url", url, "--retries", "0", "recommend", str(MLP_PATH))

    assert result.exit_code == 4
    assert result.stdout == ""
    assert result.stderr.splitlines()[0] == (
        f"initlab: cannot reach the initlab service at {url}."
    )
    assert "make serve" in result.stderr


def test_a_dropped_connection_exits_4_without_asking_to_start_the_service() -> None:
    with DroppingServer(drops=100) as server:
        result = run("--url", server.url, "--retries", "1", "health")

    assert result.exit_code == 4
    assert len(server.received) == 2
    lines = result.stderr.splitlines()
    assert lines[0] == (
        f"initlab: the initlab service at {server.url} dropped the connection"
        " before answering."
    )
    assert lines[1].startswith(
        f"  GET {server.url}/healthz: no answer after 2 attempts"
    )
    assert "restarted a worker: try again later, or check its logs" in lines[1]
    assert "make serve" not in result.stderr


def test_a_connection_that_never_opens_exits_4_saying_so(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def never_connects(*args: object, **kwargs: object) -> None:
        raise TimeoutError("timed out")

    monkeypatch.setattr(urllib3.util.connection, "create_connection", never_connects)
    url = "http://10.255.255.1:8000"

    result = run("--url", url, "--timeout", "2", "--retries", "0", "health")

    assert result.exit_code == 4
    lines = result.stderr.splitlines()
    assert (
        lines[0] == f"initlab: no connection to the initlab service at {url} in time."
    )
    assert "never opened within the connect timeout of 2 s after 1 attempt" in lines[1]
    assert "a larger --timeout helps" not in result.stderr


def test_a_service_that_does_not_answer_in_time_exits_4() -> None:
    # A socket that listens but never accepts: the connection is made, no
    # answer ever comes.
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(1)
        url = f"http://127.0.0.1:{silent.getsockname()[1]}"

        result = run("--url", url, "--timeout", "0.3", "--retries", "0", "health")

    assert result.exit_code == 4
    assert f"no answer from the initlab service at {url} in time" in result.stderr
    # The service is running, only slow: no advice to start one.
    assert "make serve" not in result.stderr
    assert "a larger --timeout helps" in result.stderr


class CannedService:
    """A local HTTP server answering every request with one canned response."""

    def __init__(self) -> None:
        self.status = 200
        self.content_type = "application/json"
        self.body = b"{}"
        self.headers: list[dict[str, str]] = []
        service = self

        class Handler(BaseHTTPRequestHandler):
            def answer(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                self.rfile.read(length)
                service.headers.append(dict(self.headers))
                self.send_response(service.status)
                self.send_header("Content-Type", service.content_type)
                self.send_header("Content-Length", str(len(service.body)))
                self.end_headers()
                self.wfile.write(service.body)

            do_GET = do_POST = answer

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"

    def problem(self, status: int, title: str, request_id: str) -> None:
        self.status = status
        self.content_type = "application/problem+json"
        self.body = json.dumps(
            {
                "type": "about:blank",
                "title": title,
                "status": status,
                "detail": f"{title}, as the test asked.",
                "instance": request_id,
                "errors": [],
            }
        ).encode()


@pytest.fixture
def canned() -> Iterator[CannedService]:
    service = CannedService()
    thread = threading.Thread(target=service.server.serve_forever, daemon=True)
    thread.start()
    try:
        yield service
    finally:
        service.server.shutdown()
        service.server.server_close()
        thread.join()


def test_a_server_error_exits_3_with_the_request_id(canned: CannedService) -> None:
    canned.problem(500, "Internal server error", "req-500")

    result = run("--url", canned.url, "--retries", "0", "recommend", str(MLP_PATH))

    assert result.exit_code == 3
    assert result.stdout == ""
    lines = result.stderr.splitlines()
    assert lines[0] == "initlab: 500 Internal server error"
    assert "  Internal server error, as the test asked." in lines
    assert "  request id: req-500" in lines


def test_an_answer_that_is_not_json_exits_3(canned: CannedService) -> None:
    canned.content_type = "text/html"
    canned.body = b"<html>a proxy's page</html>"

    result = run("--url", canned.url, "schemes")

    assert result.exit_code == 3
    assert f"the answer from {canned.url} cannot be read" in result.stderr


def test_a_4xx_that_is_no_problem_asks_whether_the_url_is_an_initlab_service(
    canned: CannedService,
) -> None:
    # Another web server at --url: its 404 page is not a problem document.
    canned.status = 404
    canned.content_type = "text/html"
    canned.body = b"<html>File not found</html>"

    result = run("--url", canned.url, "health")

    assert result.exit_code == 2
    assert result.stderr.splitlines()[-1] == (
        "The answer is not an initlab problem (text/html): is"
        f" {canned.url} the address of an initlab service? Give its URL with"
        " --url or INITLAB_URL."
    )


def test_a_501_page_asks_the_same_question(canned: CannedService) -> None:
    # http.server answers a POST so: it is no initlab service.
    canned.status = 501
    canned.content_type = "text/html"
    canned.body = b"<html>Unsupported method ('POST')</html>"

    result = run("--url", canned.url, "--retries", "0", "recommend", str(MLP_PATH))

    assert result.exit_code == 3
    assert f"is {canned.url} the address of an initlab service?" in result.stderr


def test_a_problem_of_the_service_gets_no_such_question(canned: CannedService) -> None:
    canned.problem(404, "Not found", "req-404")

    result = run("--url", canned.url, "health")

    assert result.exit_code == 2
    assert "initlab problem" not in result.stderr


def test_the_api_key_is_sent_and_a_401_says_how_to_give_one(
    canned: CannedService,
) -> None:
    canned.problem(401, "Unauthorized", "req-401")

    result = run("--url", canned.url, "--api-key", "s3cret", "activations")

    assert result.exit_code == 2
    assert canned.headers[0]["Authorization"] == "Bearer s3cret"
    assert "--api-key or INITLAB_API_KEY" in result.stderr
    assert "s3cret" not in result.stderr


def test_an_unexpected_error_exits_1_with_its_traceback(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def broken(*args: Any, **kwargs: Any) -> None:
        raise RuntimeError("a bug in the client")

    monkeypatch.setattr(Client, "activations", broken)

    result = run("--url", "http://127.0.0.1:9", "activations")

    assert result.exit_code == 1
    assert "unexpected error" in result.stderr
    assert "RuntimeError: a bug in the client" in result.stderr


# --- the program -----------------------------------------------------------


def test_help_lists_the_exit_statuses_and_version_prints_it() -> None:
    help_text = run("--help").stdout
    version = run("--version")

    for code in EXIT_CODES:
        assert re.search(rf"^\s+{code}  \S", help_text, re.MULTILINE)
    for command in ("recommend", "stats", "mup-table", "coord-check", "import"):
        assert command in help_text
    assert version.stdout == f"initlab {__version__}\n"


def test_python_m_runs_the_command_and_pipes_plain_text(live_server_url: str) -> None:
    command = [sys.executable, "-m", "initlab_client.cli", "--url", live_server_url]

    table = subprocess.run(
        [*command, "recommend", str(MLP_PATH), "--scheme", "kaiming_normal"],
        capture_output=True,
        text=True,
        check=False,
    )
    down = subprocess.run(
        [
            sys.executable,
            "-m",
            "initlab_client.cli",
            "--url",
            f"http://127.0.0.1:{free_port()}",
            "--retries",
            "0",
            "health",
        ],
        capture_output=True,
        text=True,
        check=False,
    )

    assert table.returncode == 0, table.stderr
    assert table.stderr == ""
    assert ANSI_ESCAPE not in table.stdout
    assert float(table_row(table.stdout, "fc2.weight")[3]) == pytest.approx(
        math.sqrt(2 / 256), rel=1e-5
    )
    assert down.returncode == 4
    assert "make serve" in down.stderr


def test_without_click_main_says_how_to_install_it(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setitem(sys.modules, "click", None)

    with pytest.raises(SystemExit) as exited:
        main(["--help"])

    assert exited.value.code == 1
    captured = capsys.readouterr()
    assert captured.out == ""
    (line,) = captured.err.splitlines()
    assert "pip install '<path to initlab>/client[cli]'" in line
    assert "initlab-client is not on PyPI" in line
    assert "click" in line


class Terminal(io.StringIO):
    """A text stream that says it is a terminal, as a shell's stdout does."""

    def isatty(self) -> bool:
        return True


def test_a_terminal_gets_ruled_tables_and_the_spinner(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for variable in ("NO_COLOR", "FORCE_COLOR", "TTY_COMPATIBLE", "TTY_INTERACTIVE"):
        monkeypatch.delenv(variable, raising=False)
    terminal, piped = Terminal(), io.StringIO()

    for stream in (terminal, piped):
        out = Output(stdout=stream, stderr=stream)
        table = out.table("name", ">std")
        table.add_row("fc1.weight", "0.0505076")
        out.print(table)

    assert "─" in terminal.getvalue()
    assert piped.getvalue() == "name              std\nfc1.weight  0.0505076\n"
    spinning = Output(stdout=piped, stderr=Terminal()).status("Asking")
    quiet = Output(stdout=Terminal(), stderr=io.StringIO()).status("Asking")
    assert not isinstance(spinning, contextlib.nullcontext)
    assert isinstance(quiet, contextlib.nullcontext)
