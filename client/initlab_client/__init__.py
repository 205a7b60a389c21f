"""Python client of the initlab service.

    from initlab_client import Client, load_spec

    with Client() as client:  # INITLAB_URL, else http://127.0.0.1:8000
        result = client.recommend(load_spec("gpt2-small.spec.json"))
        print(result.by_name("h.0.attn.q.weight").std)

Depends on ``requests`` only (PyYAML with the ``yaml`` extra, for YAML specs).
"""

from __future__ import annotations

import logging

from ._version import __version__
from .client import BASE_URL_ENV, DEFAULT_BASE_URL, DEFAULT_TIMEOUT, Client
from .errors import (
    APIError,
    BadRequest,
    ConnectionError,
    FieldError,
    InitlabError,
    InvalidResponse,
    NotFound,
    PayloadTooLarge,
    ServerError,
    SpecFileError,
    Timeout,
    ValidationError,
)
from .models import (
    ActivationInfo,
    OverrideResult,
    ParameterRecommendation,
    Recommendations,
    SchemeInfo,
    SchemeOption,
    Truncation,
)
from .spec import load_spec

# The client logs nothing itself; the handler keeps Python from warning that
# no handler is configured if an application raises the level.
logging.getLogger(__name__).addHandler(logging.NullHandler())

__all__ = [
    "APIError",
    "ActivationInfo",
    "BASE_URL_ENV",
    "BadRequest",
    "Client",
    "ConnectionError",
    "DEFAULT_BASE_URL",
    "DEFAULT_TIMEOUT",
    "FieldError",
    "InitlabError",
    "InvalidResponse",
    "NotFound",
    "OverrideResult",
    "ParameterRecommendation",
    "PayloadTooLarge",
    "Recommendations",
    "SchemeInfo",
    "SchemeOption",
    "ServerError",
    "SpecFileError",
    "Timeout",
    "Truncation",
    "ValidationError",
    "__version__",
    "load_spec",
]
