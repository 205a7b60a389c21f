"""Python client of the initlab service.

    from initlab_client import Client, Spec, load_spec

    with Client() as client:  # INITLAB_URL, else http://127.0.0.1:8000
        result = client.recommend(load_spec("gpt2-small.spec.json"))
        print(result.by_name("h.0.attn.q.weight").std)

        # Or a spec the service builds from a real model's config:
        gpt2 = Spec.from_hf_config("gpt2-small.json")
        print(client.recommend(gpt2, scheme="gpt2").parameter_count)

Depends on ``requests`` only (PyYAML with the ``yaml`` extra, for YAML specs).
"""

from __future__ import annotations

import logging

from . import layers
from ._version import __version__
from .checks import (
    CheckAxis,
    CoordCheck,
    CoordLayer,
    CoordParametrization,
    TrainingCost,
    TransferCheck,
    TransferCurve,
    TransferParametrization,
)
from .client import (
    API_KEY_ENV,
    BASE_URL_ENV,
    DEFAULT_BACKOFF,
    DEFAULT_BASE_URL,
    DEFAULT_RETRIES,
    DEFAULT_TIMEOUT,
    MAX_RETRY_AFTER,
    TRAINING_READ_TIMEOUT,
    Client,
)
from .errors import (
    APIError,
    BadRequest,
    ConnectionDropped,
    ConnectionError,
    ConnectTimeout,
    FieldError,
    InitlabError,
    InvalidRequest,
    InvalidResponse,
    LimitExceeded,
    MethodNotAllowed,
    NotFound,
    PayloadTooLarge,
    ServerError,
    ServiceBusy,
    SpecFileError,
    Timeout,
    TooManyRequests,
    Unauthorized,
    UnsupportedMediaType,
    ValidationError,
)
from .imports import ImportedSpec, Preset, PresetParameter
from .models import (
    ActivationInfo,
    OverrideResult,
    ParameterRecommendation,
    Recommendations,
    SchemeInfo,
    SchemeOption,
    Truncation,
)
from .mup import (
    MupAttention,
    MupBase,
    MupPackageValues,
    MupParamGroup,
    MupRow,
    MupTable,
    MupTarget,
)
from .spec import Spec, load_spec
from .statistics import (
    AnalyticValues,
    Axis,
    Band,
    Cost,
    EdgePoint,
    Estimate,
    MonteCarloValues,
    Phase,
    PhaseDiagram,
    PropagationChart,
    SchemeVerdict,
    Series,
    Statistics,
    StatisticsLayer,
    StatisticsSummary,
    Trend,
)

# The client logs nothing itself; the handler keeps Python from warning that
# no handler is configured if an application raises the level.
logging.getLogger(__name__).addHandler(logging.NullHandler())

__all__ = [
    "layers",
    "APIError",
    "ActivationInfo",
    "AnalyticValues",
    "Axis",
    "API_KEY_ENV",
    "BASE_URL_ENV",
    "DEFAULT_BACKOFF",
    "DEFAULT_RETRIES",
    "MAX_RETRY_AFTER",
    "BadRequest",
    "Band",
    "CheckAxis",
    "Client",
    "ConnectTimeout",
    "ConnectionDropped",
    "ConnectionError",
    "CoordCheck",
    "CoordLayer",
    "CoordParametrization",
    "Cost",
    "DEFAULT_BASE_URL",
    "DEFAULT_TIMEOUT",
    "EdgePoint",
    "Estimate",
    "FieldError",
    "ImportedSpec",
    "InitlabError",
    "InvalidRequest",
    "InvalidResponse",
    "LimitExceeded",
    "MonteCarloValues",
    "MupAttention",
    "MupBase",
    "MupPackageValues",
    "MupParamGroup",
    "MupRow",
    "MupTable",
    "MupTarget",
    "NotFound",
    "OverrideResult",
    "ParameterRecommendation",
    "PayloadTooLarge",
    "Phase",
    "PhaseDiagram",
    "Preset",
    "PresetParameter",
    "PropagationChart",
    "Recommendations",
    "SchemeInfo",
    "SchemeOption",
    "SchemeVerdict",
    "Series",
    "ServerError",
    "ServiceBusy",
    "Spec",
    "SpecFileError",
    "Statistics",
    "StatisticsLayer",
    "StatisticsSummary",
    "TRAINING_READ_TIMEOUT",
    "Timeout",
    "TooManyRequests",
    "Unauthorized",
    "UnsupportedMediaType",
    "MethodNotAllowed",
    "TrainingCost",
    "TransferCheck",
    "TransferCurve",
    "TransferParametrization",
    "Trend",
    "Truncation",
    "ValidationError",
    "__version__",
    "load_spec",
]
