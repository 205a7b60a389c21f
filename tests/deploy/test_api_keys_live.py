"""API keys on a real server: the Python client with a key, a wrong one, none."""

from __future__ import annotations

import math
from collections.abc import Iterator

import pytest
import requests

from initlab_client import Client, Unauthorized
from serving import RunningService, running_service

pytestmark = pytest.mark.server

KEYS = ("live-key-one-0123456789abcdef", "live-key-two-0123456789abcdef")
WRONG_KEY = "live-key-wrong-0123456789abcdef"
MNIST_LAYER = {
    "dims": {},
    "layers": [
        {"kind": "linear", "name": "fc", "in": 784, "out": 256, "activation": "relu"}
    ],
}


@pytest.fixture(scope="module")
def keyed_service(
    serve_command: tuple[str, ...], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[RunningService]:
    environment = {"INITLAB_API_KEYS": ",".join(KEYS), "WEB_CONCURRENCY": "1"}
    log_dir = tmp_path_factory.mktemp("keyed-server")
    with running_service(serve_command, environment, log_dir) as service:
        yield service


@pytest.fixture(autouse=True)
def no_key_in_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("INITLAB_API_KEY", raising=False)


@pytest.mark.parametrize("key", KEYS)
def test_the_client_with_a_right_key_gets_its_answer(
    keyed_service: RunningService, key: str
) -> None:
    with Client(keyed_service.url, api_key=key) as client:
        result = client.recommend(MNIST_LAYER, scheme={"name": "kaiming_normal"})

    # He et al. 2015: std = √(2 / fan_in) for a ReLU layer.
    assert result.by_name("fc.weight").std == pytest.approx(
        math.sqrt(2 / 784), rel=1e-12
    )


def test_the_key_may_come_from_the_environment(
    keyed_service: RunningService, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("INITLAB_API_KEY", KEYS[0])

    with Client(keyed_service.url) as client:
        result = client.recommend(MNIST_LAYER, scheme={"name": "xavier_uniform"})

    # Glorot & Bengio 2010: bound = √(6 / (fan_in + fan_out)).
    assert result.by_name("fc.weight").bound == pytest.approx(
        math.sqrt(6 / (784 + 256)), rel=1e-12
    )


def test_the_client_with_a_wrong_key_raises_unauthorized(
    keyed_service: RunningService,
) -> None:
    client = Client(keyed_service.url, api_key=WRONG_KEY)
    with client, pytest.raises(Unauthorized) as refused:
        client.recommend(MNIST_LAYER)

    assert refused.value.status == 401
    assert refused.value.type == "https://initlab.dev/problems/unauthorized"
    assert "not one this service accepts" in refused.value.detail


def test_the_client_without_a_key_raises_unauthorized(
    keyed_service: RunningService,
) -> None:
    client = Client(keyed_service.url)
    with client, pytest.raises(Unauthorized) as refused:
        client.schemes()

    assert "Authorization: Bearer <key>" in refused.value.detail
    header = refused.value.response.headers["WWW-Authenticate"]
    assert header == 'Bearer realm="initlab"'


def test_the_probes_and_pages_answer_without_a_key(
    keyed_service: RunningService,
) -> None:
    for path in ("/healthz", "/readyz", "/metrics", "/openapi.yaml", "/docs"):
        answer = requests.get(keyed_service.url + path, timeout=30)
        assert answer.status_code == 200, path


def test_the_server_log_never_holds_a_key(keyed_service: RunningService) -> None:
    for key in (*KEYS, WRONG_KEY):
        requests.get(
            f"{keyed_service.url}/v1/schemes",
            headers={"Authorization": f"Bearer {key}"},
            timeout=30,
        )

    log = keyed_service.log()
    assert '"path": "/v1/schemes"' in log  # the requests were logged...
    for key in (*KEYS, WRONG_KEY):
        assert key not in log  # ...without the keys
