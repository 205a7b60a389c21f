"""``pip install ./client`` into a new virtualenv: requests only, and it all works.

The virtualenv is made by the interpreter running the tests and filled with
``--no-index`` from the wheelhouse ``make`` downloads beside the dev venv
(requirements/client-wheels.txt), with the machine's pip configuration set
aside, so nothing comes from the network or from the dev venv. Every client
method is then called from inside it against the live service, and the
answers compared with those the dev venv's client gets.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from initlab_client import Client, load_spec

pytestmark = pytest.mark.server

REPO_ROOT = Path(__file__).resolve().parents[2]
WHEELHOUSE = Path(sys.prefix) / "wheelhouse"
MLP_SPEC = REPO_ROOT / "examples" / "mlp-3layer.spec.json"
GPT2_CONFIG = REPO_ROOT / "examples" / "hf" / "gpt2-small.json"
# The client's whole footprint: itself, requests and what requests requires.
CLIENT_DISTRIBUTIONS = {
    "initlab-client",
    "requests",
    "urllib3",
    "idna",
    "certifi",
    "charset-normalizer",
}
# What every virtualenv of this Python starts with.
VENV_SEED = {"pip", "setuptools"}
SERVICE_DISTRIBUTIONS = {"flask", "werkzeug", "marshmallow", "numpy", "initlab"}

# Calls every method of the client with small requests; prints each answer's
# JSON (the raw object, or a list of them) keyed by the method's name.
EVERY_METHOD = textwrap.dedent(
    """
    import json, sys
    from initlab_client import Client, Spec, load_spec

    url, spec_path, config_path = sys.argv[1:4]
    spec = load_spec(spec_path)
    small = {"widths": [16, 32], "base_dims": {"d_hidden": 16}, "steps": 2,
             "batch_size": 8, "seeds": 1}
    with Client(url, retries=0) as client:
        preset = client.presets()[0]
        answers = {
            "health": client.health(),
            "schemes": [scheme.raw for scheme in client.schemes()],
            "activations": [row.raw for row in client.activations()],
            "recommend": client.recommend(spec, scheme="kaiming_normal").raw,
            "statistics": client.statistics(spec, method="analytic").raw,
            "propagation": client.propagation(depth=8, width=64).raw,
            "phase_diagram": client.phase_diagram(
                sigma_w2=(0.5, 2.5, 5), sigma_b2=(0.0, 0.1, 3)
            ).raw,
            "mup_table": client.mup_table(
                spec, targets=[{"d_hidden": 1024}], lr=1e-3
            ).raw,
            "coord_check": client.coord_check(spec, **small).raw,
            "transfer_check": client.transfer_check(
                spec, lrs=[1e-3, 1e-2], **small
            ).raw,
            "import_spec": client.import_spec(config=config_path).raw,
            "recommend_imported": client.recommend(
                Spec.from_hf_config(config_path), scheme="gpt2"
            ).raw,
            "presets": [preset.raw],
            "expand_preset": client.expand_preset(preset.name).raw,
        }
    print(json.dumps(answers))
    """
)


def run(*command: str | Path, **options) -> subprocess.CompletedProcess[str]:
    environment = {
        **os.environ,
        # Neither the machine's pip configuration (extra indexes, find-links)
        # nor the dev venv's site may leak into the new virtualenv.
        "PIP_CONFIG_FILE": os.devnull,
        "PIP_DISABLE_PIP_VERSION_CHECK": "1",
        "PYTHONNOUSERSITE": "1",
    }
    environment.pop("PYTHONPATH", None)
    environment.pop("VIRTUAL_ENV", None)
    result = subprocess.run(
        [str(part) for part in command],
        capture_output=True,
        text=True,
        env=environment,
        check=False,
        **options,
    )
    assert result.returncode == 0, (command, result.stdout, result.stderr)
    return result


def installed(venv: Path) -> set[str]:
    listing = run(venv / "bin" / "python", "-m", "pip", "list", "--format", "json")
    return {entry["name"].lower() for entry in json.loads(listing.stdout)}


def new_venv_with(tmp_path_factory: pytest.TempPathFactory, requirement: str) -> Path:
    """A new virtualenv with ``requirement`` (``client``, ``client[cli]``) in it."""
    assert WHEELHOUSE.is_dir(), (
        f"{WHEELHOUSE} is missing: `make test` downloads it when it sets up the"
        " venv (requirements/client-wheels.txt)"
    )
    venv = tmp_path_factory.mktemp("fresh") / "venv"
    run(sys.executable, "-m", "venv", venv)
    assert installed(venv) <= VENV_SEED

    run(
        venv / "bin" / "python",
        "-m",
        "pip",
        "install",
        "--quiet",
        "--no-index",
        "--find-links",
        WHEELHOUSE,
        f"{REPO_ROOT}/{requirement}",
    )
    return venv


@pytest.fixture(scope="module")
def venv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return new_venv_with(tmp_path_factory, "client")


def test_pip_install_client_brings_requests_and_nothing_of_the_service(
    venv: Path,
) -> None:
    distributions = installed(venv) - VENV_SEED

    assert distributions == CLIENT_DISTRIBUTIONS
    assert not distributions & SERVICE_DISTRIBUTIONS


def test_every_method_works_from_the_fresh_install(
    venv: Path, live_server_url: str
) -> None:
    result = run(
        venv / "bin" / "python",
        "-c",
        EVERY_METHOD,
        live_server_url,
        MLP_SPEC,
        GPT2_CONFIG,
        cwd=venv,  # Not the checkout, whose client/ could shadow the install.
    )
    answers = json.loads(result.stdout)
    spec = load_spec(MLP_SPEC)

    # Values known independently of the service's code.
    recommended = {row["name"]: row for row in answers["recommend"]["parameters"]}
    assert (
        answers["recommend"]["parameter_count"]
        == 784 * 256 + 256 * 256 + 256 * 10 + 256 + 256 + 10
    )
    assert recommended["fc1.weight"]["std"] == pytest.approx(
        (2 / 784) ** 0.5, rel=1e-12
    )
    # The readout has no nonlinearity after it: gain 1, std 1/sqrt(fan_in).
    assert recommended["fc3.weight"]["std"] == pytest.approx(1 / 16, rel=1e-12)
    target = answers["mup_table"]["targets"][0]
    hidden = next(row for row in target["parameters"] if row["name"] == "fc2.weight")
    assert hidden["lr"] == pytest.approx(1e-3 * 256 / 1024, rel=1e-12)
    # GPT-2 small: 124,439,808 parameters with the readout tied to wte.
    assert answers["import_spec"]["parameter_count"] == 124_439_808
    assert answers["recommend_imported"]["parameter_count"] == 124_439_808
    assert answers["health"]["status"] == "ok"

    # Every answer equals what the dev venv's client gets for the same call.
    small = {
        "widths": [16, 32],
        "base_dims": {"d_hidden": 16},
        "steps": 2,
        "batch_size": 8,
        "seeds": 1,
    }
    with Client(live_server_url) as client:
        expected = {
            "schemes": [scheme.raw for scheme in client.schemes()],
            "activations": [row.raw for row in client.activations()],
            "statistics": client.statistics(spec, method="analytic").raw,
            "coord_check": client.coord_check(spec, **small).raw,
            "transfer_check": client.transfer_check(
                spec, lrs=[1e-3, 1e-2], **small
            ).raw,
            "expand_preset": client.expand_preset(answers["presets"][0]["name"]).raw,
        }
    for method, answer in expected.items():
        assert answers[method] == answer, method


def test_the_cli_extra_installs_a_working_initlab_command(
    tmp_path_factory: pytest.TempPathFactory, live_server_url: str
) -> None:
    venv = new_venv_with(tmp_path_factory, "client[cli]")
    distributions = installed(venv) - VENV_SEED
    assert distributions == CLIENT_DISTRIBUTIONS | {
        "click",
        "rich",
        "markdown-it-py",
        "mdurl",
        "pygments",
    }

    command = [venv / "bin" / "initlab", "--url", live_server_url, "recommend"]
    table = run(*command, MLP_SPEC, "--scheme", "kaiming_normal", cwd=venv)
    as_json = run(*command, MLP_SPEC, "--scheme", "kaiming_normal", "--json", cwd=venv)

    lines = table.stdout.splitlines()
    fc1 = next(line.split() for line in lines if line.startswith("fc1.weight"))
    assert fc1[:4] == ["fc1.weight", "256x784", "normal", f"{(2 / 784) ** 0.5:.6g}"]
    spec = load_spec(MLP_SPEC)
    with Client(live_server_url) as client:
        expected = client.recommend(spec, scheme="kaiming_normal").raw
    assert json.loads(as_json.stdout) == expected
