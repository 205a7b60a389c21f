"""What the client refuses before sending, and how it reads spec files.

A request body is JSON the service reads strictly: the client turns numpy
numbers into plain ones and refuses, with the field's pointer, anything JSON
cannot hold. Spec files are read by the same rules the service applies to a
body (no NaN, no key twice), so a file that loads is a file the service reads.
"""

from __future__ import annotations

import datetime
import json
import socket
from pathlib import Path

import numpy as np
import pytest
import requests

from initlab_client import (
    Client,
    InitlabError,
    InvalidRequest,
    SpecFileError,
    layers,
    load_spec,
)
from initlab_client import ConnectionError as ClientConnectionError

from .recording import recording_client as record


def recording_client():
    return record({"status": "ok"})


LINEAR = {"kind": "linear", "name": "fc", "in": 3, "out": 4}


@pytest.mark.parametrize(
    ("value", "message"),
    [
        (float("nan"), "nan is not a JSON number"),
        (float("inf"), "inf is not a JSON number"),
        (np.float64("-inf"), "is not a JSON number"),
        (
            datetime.date(2024, 1, 1),
            "the date 2024-01-01 has no JSON form; give a number, or the string"
            ' "2024-01-01" (in YAML, write it in quotes)',
        ),
        (datetime.datetime(2024, 1, 1, 8, 30), "the datetime 2024-01-01T08:30:00 has"),
        ({1, 2}, "(set) has no JSON form"),
        (b"768", "(bytes) has no JSON form"),
    ],
)
def test_a_value_json_cannot_hold_is_refused_with_its_pointer(
    value, message: str
) -> None:
    client, adapter = recording_client()
    spec = {"dims": {}, "layers": [dict(LINEAR, out=value)]}

    with pytest.raises(InvalidRequest) as caught:
        client.recommend(spec)

    assert caught.value.pointer == "/spec/layers/0/out"
    assert "/spec/layers/0/out: " in str(caught.value)
    assert message in str(caught.value)
    assert "not sent" in str(caught.value)
    assert adapter.requests == []
    # A ValueError as well, for code that catches those around its inputs.
    assert isinstance(caught.value, (ValueError, InitlabError))


def test_a_nan_in_a_scheme_option_names_the_option() -> None:
    client, adapter = recording_client()

    with pytest.raises(InvalidRequest) as caught:
        client.recommend(
            {"dims": {}, "layers": [LINEAR]},
            scheme={"name": "normal", "std": float("nan")},
        )

    assert caught.value.pointer == "/scheme/std"
    assert adapter.requests == []


def test_numpy_numbers_in_a_plain_spec_are_sent_as_json_numbers() -> None:
    client, adapter = recording_client()
    spec = {
        "dims": {"d": np.int64(768)},
        "layers": [{"kind": "linear", "in": np.int32(3), "out": "d"}],
    }

    client._send("POST", "/v1/recommendations", json={"spec": spec})

    (request,) = adapter.requests
    assert request.headers["Content-Type"] == "application/json"
    assert request.body == (
        b'{"spec":{"dims":{"d":768},"layers":[{"kind":"linear","in":3,"out":"d"}]}}'
    )


@pytest.mark.parametrize(
    ("key", "said"),
    [
        (1, 'the key 1 is a number; JSON keys are strings: write it as the string "1"'),
        (
            datetime.date(2024, 1, 15),
            "the key 2024-01-15 is a date; JSON keys are strings: write it as the"
            ' string "2024-01-15"',
        ),
        (None, "the key null is null; JSON keys"),
        (True, "the key true is a boolean; JSON keys"),
    ],
)
def test_a_non_string_key_is_refused_in_jsons_words(key: object, said: str) -> None:
    client, _ = recording_client()

    with pytest.raises(InvalidRequest) as caught:
        client.recommend({"dims": {key: 768}, "layers": [LINEAR]})

    assert f"not sent: /spec/dims: {said}" in str(caught.value)


def test_a_list_that_contains_itself_is_refused_with_its_pointer() -> None:
    client, adapter = recording_client()
    looped: list = [LINEAR]
    looped.append(looped)

    with pytest.raises(InvalidRequest) as caught:
        client.recommend({"dims": {}, "layers": looped})

    assert caught.value.pointer == "/spec/layers/1"
    assert "/spec/layers/1: this list or mapping contains itself" in str(caught.value)
    assert adapter.requests == []


def test_one_list_in_two_places_is_no_loop() -> None:
    client, adapter = recording_client()
    shared = [LINEAR]

    client._send("POST", "/v1/recommendations", json={"a": shared, "b": shared})

    assert json.loads(adapter.requests[0].body) == {"a": [LINEAR], "b": [LINEAR]}


def test_nesting_is_bounded_where_the_service_bounds_it() -> None:
    # The service reads 64 levels of a body (INITLAB_MAX_JSON_DEPTH): the
    # body itself, "spec" inside it, and so on.
    client, adapter = recording_client()

    def nested(levels: int) -> list:
        value: list = []
        for _ in range(levels - 1):
            value = [value]
        return value

    client._send("POST", "/v1/recommendations", json={"deep": nested(63)})
    with pytest.raises(InvalidRequest) as caught:
        client._send("POST", "/v1/recommendations", json={"deep": nested(64)})

    assert caught.value.pointer == "/deep" + "/0" * 63
    assert "nest more than 64 levels deep here" in str(caught.value)
    assert len(adapter.requests) == 1


def test_unicode_is_sent_as_utf8() -> None:
    client, adapter = recording_client()

    client._send("POST", "/v1/recommendations", json={"name": "注意"})

    assert adapter.requests[0].body == '{"name":"注意"}'.encode()


# -- spec files ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "text", "message"),
    [
        ("twice.json", '{"dims": {}, "dims": {}}', 'the key "dims" appears twice'),
        ("nan.json", '{"layers": [{"in": NaN}]}', "NaN is not a JSON number"),
        ("inf.json", '{"layers": [{"in": -Infinity}]}', "-Infinity is not a JSON"),
        ("huge.json", '{"layers": [{"in": 1e400}]}', "1e400 is too large"),
        ("deep.json", '{"l":' + "[" * 5000 + "]" * 5000 + "}", "nest too deeply"),
        (
            "nested.json",
            '{"l":' + "[" * 63 + "]" * 63 + "}",
            "/l" + "/0" * 62 + ": lists and objects nest more than 63 levels",
        ),
        (
            "loop.yaml",
            "a: &a [*a]\n",
            "line 1, column 8: YAML aliases (*a) are not read in a spec file",
        ),
        (
            "loop-map.yaml",
            "layers:\n- &fc {kind: linear, in: 2, out: 2, next: *fc}\n",
            "line 2, column 43: YAML aliases (*fc) are not read in a spec file",
        ),
        ("blank.json", " \n\t\n", "is empty"),
        ("list.json", "[1, 2]", "must be an object with 'dims' and 'layers'"),
        ("date.yaml", "layers:\n- in: 2024-01-01\n", "/layers/0/in: the date 2024"),
        ("nan.yaml", "layers:\n- in: .nan\n", "/layers/0/in: nan is not a JSON"),
        ("twice.yaml", "dims: {}\nlayers: []\ndims: {}\n", "'dims' appears twice"),
        ("broken.yaml", "layers: [\n", "not valid YAML"),
    ],
)
def test_spec_files_are_read_as_strictly_as_the_service_reads_bodies(
    tmp_path: Path, name: str, text: str, message: str
) -> None:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")

    with pytest.raises(SpecFileError) as caught:
        load_spec(path)

    assert str(caught.value).startswith(str(path))
    assert message in str(caught.value)


def test_a_byte_order_mark_is_read_past(tmp_path: Path) -> None:
    path = tmp_path / "bom.json"
    path.write_bytes(b"\xef\xbb\xbf" + json.dumps({"dims": {}, "layers": []}).encode())

    assert load_spec(path) == {"dims": {}, "layers": []}


def test_yaml_and_json_read_the_same_spec(tmp_path: Path) -> None:
    (tmp_path / "a.json").write_text(json.dumps({"dims": {"d": 4}, "layers": []}))
    (tmp_path / "a.yaml").write_text("dims:\n  d: 4\nlayers: []\n")

    assert load_spec(tmp_path / "a.json") == load_spec(tmp_path / "a.yaml")


# -- client settings -----------------------------------------------------------


@pytest.mark.parametrize(
    ("timeout", "error"),
    [
        (0, ValueError),
        (-3, ValueError),
        (float("nan"), ValueError),
        ((3, 0), ValueError),
        ((1, 2, 3), ValueError),
        ("10", TypeError),
        (True, TypeError),
    ],
)
def test_a_bad_timeout_is_refused_when_the_client_is_made(timeout, error) -> None:
    with pytest.raises(error, match="timeout must be"):
        Client("http://127.0.0.1:8000", timeout=timeout)


@pytest.mark.parametrize("timeout", [None, 5, 2.5, (3.05, 60), (3, None)])
def test_good_timeouts_are_kept(timeout) -> None:
    assert Client("http://127.0.0.1:8000", timeout=timeout).timeout == timeout


def test_a_session_of_ones_own_reports_its_own_attempts() -> None:
    # The caller's session has requests' default adapter, which tries once.
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    client = Client(f"http://127.0.0.1:{port}", session=requests.Session())

    with pytest.raises(ClientConnectionError, match="after 1 attempt "):
        client.health()


# -- layers --------------------------------------------------------------------


@pytest.mark.parametrize("size", [0, -3, np.int64(0)])
def test_layer_sizes_start_at_one(size) -> None:
    with pytest.raises(ValueError, match=r"in must be a positive integer .*start at 1"):
        layers.linear(size, 4)
