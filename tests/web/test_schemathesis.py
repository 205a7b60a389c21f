"""Schemathesis against the live service: every operation of openapi.yaml.

Each operation of the committed contract is one test. Schemathesis generates
requests from the contract, valid ones and ones that break it in one place,
sends them over HTTP to the real gunicorn server (``live_server_url``) and
checks every answer: no 5xx, a documented status, content type, headers and
body schema, an Allow header on 405, and a 4xx for every request the contract
rules out. The live server rather than the Flask app, because gunicorn is
what hostile bytes meet first (request parsing, the worker timeout).

The run is seeded and derandomized, with a bounded number of examples per
operation: the same requests every time, in well under a minute on two cores.

Where the contract cannot say what the service does, the run is told so here,
each with its reason:

- ``positive_data_acceptance`` is off: a request can satisfy every schema and
  still break a rule the service answers with a documented 422 (a dim that
  does not exist, an activation parameter of another activation, learning
  rates out of order).
- ``X-Request-ID`` is sent unchecked: the service replaces an id that breaks
  the documented pattern with its own, as the parameter's description says,
  so an insane id is not a bad request.
- The two µP checks get only requests that break the contract: a valid one
  trains for up to INITLAB_TRAINING_BUDGET (about 25 s of one core), which the
  tests of those endpoints cover.
- Requests whose first line is longer than gunicorn's limit are not sent:
  gunicorn refuses them itself, before the service sees them, with a 414
  problem the contract does not list per operation (tests/web/
  test_hostile_corpus.py checks that answer).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import requests
import schemathesis
import yaml
from hypothesis import HealthCheck, assume, settings
from schemathesis.config import SchemathesisConfig

pytestmark = pytest.mark.server

OPENAPI_PATH = Path(__file__).resolve().parents[2] / "openapi.yaml"
SEED = 20260
MAX_EXAMPLES = 50
# The µP checks train on every valid request; see the module docstring.
TRAINING_PATHS = ("/v1/mup/coord-check", "/v1/mup/transfer-check")
# Operations whose bodies are whole specs: the coverage phase would send some
# five thousand requests to each (one per boundary of every layer kind).
SPEC_BODY_PATHS = ("/v1/recommendations", "/v1/statistics", "/v1/mup/table")
# gunicorn's limit_request_line default: longer request lines get its HTML 414.
MAX_REQUEST_LINE = 4094
# Past gunicorn's 60 s worker timeout a request is killed and answered 500,
# which the checks report; this only stops a client that would wait forever.
REQUEST_TIMEOUT_SECONDS = 90
EXPECTED_REJECTIONS = ["400", "404", "405", "413", "415", "422"]


def _contract() -> dict[str, Any]:
    """openapi.yaml, with X-Request-ID as the service reads it: any string."""
    document = yaml.safe_load(OPENAPI_PATH.read_text(encoding="utf-8"))
    document["components"]["parameters"]["RequestId"]["schema"].pop("pattern", None)
    return document


def _config() -> SchemathesisConfig:
    return SchemathesisConfig.from_dict(
        {
            "seed": SEED,
            "generation": {"max-examples": MAX_EXAMPLES, "deterministic": True},
            "phases": {"stateful": {"enabled": False}},
            "checks": {
                "positive_data_acceptance": {"enabled": False},
                "negative_data_rejection": {"expected-statuses": EXPECTED_REJECTIONS},
            },
            "operations": [
                *(
                    {
                        "include-path": path,
                        "generation": {"mode": "negative"},
                        "phases": {"coverage": {"enabled": False}},
                    }
                    for path in TRAINING_PATHS
                ),
                *(
                    {"include-path": path, "phases": {"coverage": {"enabled": False}}}
                    for path in SPEC_BODY_PATHS
                ),
            ],
        }
    )


schema = schemathesis.openapi.from_dict(_contract(), config=_config())


# pytest 9.2 builds a test's id from its parametrization alone, and the items
# schemathesis makes per operation carry none: this one parameter gives each
# an id that names its operation, "[POST /v1/statistics][gunicorn]".
@schema.parametrize()
@pytest.mark.parametrize("server", ["gunicorn"])
@settings(deadline=None, suppress_health_check=list(HealthCheck))
def test_every_operation_conforms(
    server: str, live_server_url: str, case: schemathesis.Case
) -> None:
    assume(_request_line_length(case, live_server_url) <= MAX_REQUEST_LINE)

    case.call_and_validate(base_url=live_server_url, timeout=REQUEST_TIMEOUT_SECONDS)


def _request_line_length(case: schemathesis.Case, base_url: str) -> int:
    """Bytes of ``METHOD /path?query HTTP/1.1`` as requests would send them."""
    sent = case.as_transport_kwargs(base_url=base_url)
    prepared = requests.Request(
        sent["method"], sent["url"], params=sent.get("params")
    ).prepare()
    parts = urlsplit(prepared.url)
    target = parts.path + (f"?{parts.query}" if parts.query else "")
    return len(f"{sent['method']} {target} HTTP/1.1")
