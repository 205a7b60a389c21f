"""Service configuration, read once from environment variables at start-up.

Every setting has a documented default; a value the service cannot use stops
it before it serves anything, with a message naming the variable, the value
and what is allowed (an API key is named by its position, never quoted). The
spec limits are the fields of :class:`initlab.core.spec.SpecLimits`, each read
from ``INITLAB_<FIELD>`` (``max_repeat_count`` from
``INITLAB_MAX_REPEAT_COUNT``), so a limit added to the core is configurable
without touching this module. The bounds of the
statistics and chart endpoints are the fields of :class:`StatisticsLimits`,
read the same way (``compute_budget`` from ``INITLAB_COMPUTE_BUDGET``).
"""

from __future__ import annotations

import dataclasses
import math
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TypeVar
from urllib.parse import urlsplit

from flask import current_app

from initlab.core.montecarlo import RANDOM_NUMBER_FLOPS
from initlab.core.mup import MupLimits
from initlab.core.spec import SpecLimits

ENV_PREFIX = "INITLAB_"
DEFAULT_MAX_BODY_BYTES = 1024 * 1024
DEFAULT_MAX_JSON_DEPTH = 64
DEFAULT_RESPONSE_CACHE_BYTES = 64 * 1024 * 1024
# Per worker: the multi-second computations running at once (with the
# default two workers, four share two cores, so a check budgeted at 25 s of
# one core ends within about a minute), those waiting for a turn, and how
# long they wait before a 503.
DEFAULT_MAX_RUNNING_COMPUTATIONS = 2
DEFAULT_MAX_QUEUED_COMPUTATIONS = 2
DEFAULT_COMPUTATION_WAIT_SECONDS = 30
# An hour: longer than any proxy waits, and within what a thread can wait for.
MAX_COMPUTATION_WAIT_SECONDS = 3600
MIN_API_KEY_LENGTH = 16
APP_EXTENSION = "initlab.config"

# RFC 6750 §2.1: what a bearer token may be written with.
_BEARER_TOKEN = re.compile(r"[A-Za-z0-9\-._~+/]+=*")
_KEY_ALPHABET = "A-Z a-z 0-9 - . _ ~ + / (and = padding at the end)"
_NEW_KEY_COMMAND = "python -c 'import secrets; print(secrets.token_urlsafe(32))'"

Limits = TypeVar("Limits")


class ConfigError(ValueError):
    """An environment variable holds a value the service cannot start with."""


def _limit(default: int, description: str) -> int:
    return field(default=default, metadata={"description": description})


@dataclass(frozen=True)
class StatisticsLimits:
    """How much work one statistics or chart request may ask for.

    ``compute_budget`` and ``memory_budget`` bound the cost the Monte Carlo
    engine estimates before it starts (``initlab.core.montecarlo.Cost``:
    floating-point operations and peak bytes); the others bound single request
    fields. A request over any of them is refused with 422 ``limit-exceeded``.
    The analytic method costs no simulation; its quadratures are bounded by
    ``max_statistics_layers``.
    """

    max_statistics_layers: int = _limit(
        1000,
        "Most layers (weight tensors after expansion) a statistics request may"
        " follow, whatever the method (default 1000).",
    )
    max_batch_size: int = _limit(
        1024, "Largest Monte Carlo batch (inputs per network) (default 1024)."
    )
    max_seeds: int = _limit(
        64, "Most independent networks one Monte Carlo request may draw (default 64)."
    )
    max_spatial_size: int = _limit(
        32, "Largest side of the grid a conv net is simulated on (default 32)."
    )
    max_sequence_length: int = _limit(
        1024, "Most tokens per simulated sequence (default 1024)."
    )
    compute_budget: int = _limit(
        200_000_000_000,
        "Most work a Monte Carlo request may need, in flop-equivalents (flops plus"
        f" each random number drawn at the price of {RANDOM_NUMBER_FLOPS} flops), as"
        " estimated before any work (default 2e11, a few seconds of one core).",
    )
    memory_budget: int = _limit(
        512 * 1024 * 1024,
        "Most bytes of working memory a Monte Carlo request may need, as"
        " estimated before any work (default 536870912, 512 MiB).",
    )
    max_chart_depth: int = _limit(
        500, "Most layers of a propagation chart (default 500)."
    )
    max_chart_width: int = _limit(
        4096, "Widest layer of a propagation chart (default 4096)."
    )
    max_chart_schemes: int = _limit(
        8, "Most schemes one propagation chart compares (default 8)."
    )
    max_grid_steps: int = _limit(
        101, "Most grid points along each axis of a phase diagram (default 101)."
    )


@dataclass(frozen=True)
class Setting:
    """One environment variable, its default and what it controls."""

    variable: str
    default: int | float | str
    description: str


@dataclass(frozen=True)
class Config:
    """What the service needs to know about its deployment.

    ``max_body_bytes`` bounds the request body (413 above it);
    ``max_json_depth`` bounds how deeply arrays and objects may nest in a
    body (400 above it); ``spec_limits`` bounds the expanded architecture
    ``statistics_limits`` the work of the statistics and chart endpoints and
    ``mup_limits`` the size of a µP table (422 above them).

    ``response_cache_bytes`` bounds each worker's cache of /v1 answers (0
    turns it off): read from the environment it defaults to
    :data:`DEFAULT_RESPONSE_CACHE_BYTES`, but a ``Config`` built in code has
    the cache off unless asked, so that an app made for a test computes every
    answer it is asked for. ``cors_origins`` are the browser origins allowed
    to call the API (none: no CORS headers); ``api_keys`` are the bearer
    tokens the API accepts (none: no authentication), left out of ``repr``.

    ``max_running_computations`` multi-second computations (statistics, charts,
    µP checks) run at once in a worker, ``max_queued_computations`` more wait
    up to ``computation_wait_seconds`` for a turn, and any further one gets a
    503 at once (:mod:`initlab.web.admission`). Like the cache, the gate is
    on when read from the environment and off (0) in a ``Config`` built in code.
    """

    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES
    max_json_depth: int = DEFAULT_MAX_JSON_DEPTH
    spec_limits: SpecLimits = field(default_factory=SpecLimits)
    statistics_limits: StatisticsLimits = field(default_factory=StatisticsLimits)
    mup_limits: MupLimits = field(default_factory=MupLimits)
    response_cache_bytes: int = 0
    max_running_computations: int = 0
    max_queued_computations: int = DEFAULT_MAX_QUEUED_COMPUTATIONS
    computation_wait_seconds: int = DEFAULT_COMPUTATION_WAIT_SECONDS
    cors_origins: tuple[str, ...] = ()
    api_keys: tuple[str, ...] = field(default=(), repr=False)

    @classmethod
    def from_environ(cls, environ: Mapping[str, str] | None = None) -> Config:
        """Read every setting from ``environ`` (default ``os.environ``).

        Unset or empty variables keep their defaults. Raises
        :class:`ConfigError` for a value the service cannot start with.
        """
        if environ is None:
            environ = os.environ

        return cls(
            max_body_bytes=_read_positive(
                environ, env_variable("max_body_bytes"), DEFAULT_MAX_BODY_BYTES
            ),
            max_json_depth=_read_positive(
                environ, env_variable("max_json_depth"), DEFAULT_MAX_JSON_DEPTH
            ),
            spec_limits=_read_limits(environ, SpecLimits),
            statistics_limits=_read_limits(environ, StatisticsLimits),
            mup_limits=_read_limits(environ, MupLimits),
            response_cache_bytes=_read_non_negative(
                environ,
                env_variable("response_cache_bytes"),
                DEFAULT_RESPONSE_CACHE_BYTES,
            ),
            max_running_computations=_read_non_negative(
                environ,
                env_variable("max_running_computations"),
                DEFAULT_MAX_RUNNING_COMPUTATIONS,
                zero="0 turns the gate off",
            ),
            max_queued_computations=_read_non_negative(
                environ,
                env_variable("max_queued_computations"),
                DEFAULT_MAX_QUEUED_COMPUTATIONS,
                zero="0: none waits",
            ),
            computation_wait_seconds=_read_wait_seconds(environ),
            cors_origins=_read_origins(environ, env_variable("cors_origins")),
            api_keys=_read_api_keys(environ, env_variable("api_keys")),
        )

    def faults(self) -> list[str]:
        """What makes this configuration unusable, one sentence each; [] if none.

        :meth:`from_environ` refuses such values already; this checks a
        configuration however it was built (the readiness probe asks it).
        """
        found = []
        numbers: list[tuple[str, int | float, int | float]] = [
            ("max_body_bytes", self.max_body_bytes, 1),
            ("max_json_depth", self.max_json_depth, 1),
            ("response_cache_bytes", self.response_cache_bytes, 0),
            ("max_running_computations", self.max_running_computations, 0),
            ("max_queued_computations", self.max_queued_computations, 0),
            ("computation_wait_seconds", self.computation_wait_seconds, 1),
        ]
        for limits in (self.spec_limits, self.statistics_limits, self.mup_limits):
            numbers += [
                (limit.name, getattr(limits, limit.name), 1)
                for limit in dataclasses.fields(limits)
            ]
        if self.computation_wait_seconds > MAX_COMPUTATION_WAIT_SECONDS:
            found.append(
                f"computation_wait_seconds = {self.computation_wait_seconds!r}"
                f" ({env_variable('computation_wait_seconds')}) must be at most"
                f" {MAX_COMPUTATION_WAIT_SECONDS}."
            )
        for name, value, least in numbers:
            usable = isinstance(value, int | float) and not isinstance(value, bool)
            if not usable or not math.isfinite(value) or value < least:
                allowed = "a positive number" if least else "a number >= 0"
                found.append(
                    f"{name} = {value!r} ({env_variable(name)}) must be {allowed}."
                )

        for origin in self.cors_origins:
            fault = origin_fault(origin)
            if fault is not None:
                found.append(
                    f"the CORS origin {origin!r} ({env_variable('cors_origins')}):"
                    f" {fault}."
                )
        for position, key in enumerate(self.api_keys, start=1):
            fault = api_key_fault(key)
            if fault is not None:
                found.append(
                    f"API key {position} of {len(self.api_keys)}"
                    f" ({env_variable('api_keys')}): {fault}."
                )

        return found


def current_config() -> Config:
    """The configuration of the application handling the current request."""
    return current_app.extensions[APP_EXTENSION]


def env_variable(setting_name: str) -> str:
    """The variable of a setting: ``max_dim_size`` → ``INITLAB_MAX_DIM_SIZE``."""
    return ENV_PREFIX + setting_name.upper()


def settings() -> list[Setting]:
    """Every environment variable the service reads, with its default."""
    described = [
        Setting(
            env_variable("max_body_bytes"),
            DEFAULT_MAX_BODY_BYTES,
            "Largest request body accepted, in bytes; larger bodies get 413.",
        ),
        Setting(
            env_variable("max_json_depth"),
            DEFAULT_MAX_JSON_DEPTH,
            "Deepest nesting of JSON arrays and objects in a body; deeper gets 400.",
        ),
    ]
    described += [
        Setting(
            env_variable("response_cache_bytes"),
            DEFAULT_RESPONSE_CACHE_BYTES,
            "Bytes of /v1 answers each worker keeps to repeat byte for byte"
            " (least recently used out first); 0 turns the cache off.",
        ),
        Setting(
            env_variable("max_running_computations"),
            DEFAULT_MAX_RUNNING_COMPUTATIONS,
            "Multi-second computations (statistics, charts, µP checks) a worker"
            " runs at once; 0 lets every one run (no gate).",
        ),
        Setting(
            env_variable("max_queued_computations"),
            DEFAULT_MAX_QUEUED_COMPUTATIONS,
            "Such computations that may wait for a turn in a worker; any more get"
            " 503 busy with Retry-After. Keep running + queued below"
            " GUNICORN_THREADS so that threads stay free for health checks.",
        ),
        Setting(
            env_variable("computation_wait_seconds"),
            DEFAULT_COMPUTATION_WAIT_SECONDS,
            "Seconds a queued computation waits for a turn before 503 busy.",
        ),
        Setting(
            env_variable("cors_origins"),
            "",
            "Browser origins allowed to call the API (CORS), comma-separated and"
            " exact (https://app.example.com); empty sends no CORS headers.",
        ),
        Setting(
            env_variable("api_keys"),
            "",
            "Comma-separated API keys; when set, every endpoint but the"
            " operations and documentation pages needs `Authorization: Bearer"
            " <key>` (401 without). Empty turns authentication off.",
        ),
    ]
    for limits_class in (SpecLimits, StatisticsLimits, MupLimits):
        for limit, default in _limit_defaults(limits_class):
            description = limit.metadata.get("description") or (
                f"Limit {limit.name} ({limits_class.__name__}); over it gets 422."
            )
            described.append(Setting(env_variable(limit.name), default, description))

    return described


def _limit_defaults(limits_class: type) -> list[tuple[dataclasses.Field, int | float]]:
    defaults = limits_class()
    return [
        (limit, getattr(defaults, limit.name))
        for limit in dataclasses.fields(limits_class)
    ]


def _read_limits(environ: Mapping[str, str], limits_class: type[Limits]) -> Limits:
    """An instance of ``limits_class`` with each field read from its variable."""
    values = {
        limit.name: _read_positive(environ, env_variable(limit.name), default)
        for limit, default in _limit_defaults(limits_class)
    }
    return limits_class(**values)


def _read_positive(
    environ: Mapping[str, str], variable: str, default: int | float
) -> int | float:
    raw = environ.get(variable, "").strip()
    if not raw:
        return default

    wants_integer = isinstance(default, int)
    kind = "a positive integer" if wants_integer else "a positive number"
    try:
        value = int(raw) if wants_integer else float(raw)
    except ValueError:
        value = None
    if value is None or not math.isfinite(value) or value <= 0:
        raise ConfigError(
            f"{variable} must be {kind}; got {raw!r}. Fix the value or unset"
            f" {variable} to use the default {default!r}."
        )

    return value


def origin_fault(origin: str) -> str | None:
    """Why ``origin`` is not an exact browser origin (``scheme://host[:port]``)."""
    if origin in ("*", "null"):
        return f"{origin!r} is not allowed; list each origin in full"

    parts = urlsplit(origin)
    try:
        _ = parts.port  # reading the port parses it
    except ValueError:
        return "its port is not a number from 0 to 65535"
    if parts.scheme not in ("http", "https"):
        return "it must start with http:// or https://"
    if not parts.hostname or parts.username is not None or parts.password is not None:
        return "it must name a host, and only a host (no user name)"
    if parts.path or parts.query or parts.fragment or origin.endswith(("?", "#")):
        return (
            "an origin has no path, query or fragment; write it as"
            f" {parts.scheme}://{parts.netloc}"
        )
    if origin != origin.lower():
        return f"browsers send origins in lower case; write it as {origin.lower()}"

    return None


def api_key_fault(key: str) -> str | None:
    """Why ``key`` cannot be an API key, without quoting it (it is a secret)."""
    if not _BEARER_TOKEN.fullmatch(key):
        return f"it may only use {_KEY_ALPHABET}"
    if len(key) < MIN_API_KEY_LENGTH:
        return (
            f"it is {len(key)} characters long; use at least {MIN_API_KEY_LENGTH}"
            f" (make one with {_NEW_KEY_COMMAND})"
        )

    return None


def _read_wait_seconds(environ: Mapping[str, str]) -> int:
    variable = env_variable("computation_wait_seconds")
    seconds = _read_positive(environ, variable, DEFAULT_COMPUTATION_WAIT_SECONDS)
    if seconds > MAX_COMPUTATION_WAIT_SECONDS:
        raise ConfigError(
            f"{variable} must be at most {MAX_COMPUTATION_WAIT_SECONDS} (an hour);"
            f" got {seconds}. Lower it, or unset {variable} to use the default"
            f" {DEFAULT_COMPUTATION_WAIT_SECONDS}."
        )
    return seconds


def _read_non_negative(
    environ: Mapping[str, str],
    variable: str,
    default: int,
    zero: str = "0 turns it off",
) -> int:
    raw = environ.get(variable, "").strip()
    if not raw:
        return default

    try:
        value = int(raw)
    except ValueError:
        value = -1
    if value < 0:
        raise ConfigError(
            f"{variable} must be a non-negative integer ({zero}); got"
            f" {raw!r}. Fix the value or unset {variable} to use the default"
            f" {default!r}."
        )

    return value


def _comma_separated(environ: Mapping[str, str], variable: str) -> list[str]:
    """The items of a comma-separated variable, stripped; empty items dropped."""
    raw = environ.get(variable, "")
    return [item.strip() for item in raw.split(",") if item.strip()]


def _read_origins(environ: Mapping[str, str], variable: str) -> tuple[str, ...]:
    origins = _comma_separated(environ, variable)
    for position, origin in enumerate(origins, start=1):
        fault = origin_fault(origin)
        if fault is not None:
            raise ConfigError(
                f"{variable} must list exact origins (scheme://host[:port],"
                f" comma-separated); item {position}, {origin!r}, is not one:"
                f" {fault}. Fix it, or unset {variable} to send no CORS headers."
            )

    return tuple(dict.fromkeys(origins))


def _read_api_keys(environ: Mapping[str, str], variable: str) -> tuple[str, ...]:
    keys = _comma_separated(environ, variable)
    for position, key in enumerate(keys, start=1):
        fault = api_key_fault(key)
        if fault is not None:
            # The key itself is never quoted: error messages end up in logs.
            raise ConfigError(
                f"{variable}: key {position} of {len(keys)} is not usable: {fault}."
                f" Fix it, or unset {variable} to turn authentication off."
            )

    return tuple(dict.fromkeys(keys))
