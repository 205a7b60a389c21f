"""Service configuration, read once from environment variables at start-up.

Every setting has a documented default; a value that is not a positive number
stops the service before it serves anything, with a message naming the
variable, the value and what is allowed. The spec limits are the fields of
:class:`initlab.core.spec.SpecLimits`, each read from ``INITLAB_<FIELD>``
(``max_repeat_count`` from ``INITLAB_MAX_REPEAT_COUNT``), so a limit added to
the core is configurable without touching this module. The bounds of the
statistics and chart endpoints are the fields of :class:`StatisticsLimits`,
read the same way (``compute_budget`` from ``INITLAB_COMPUTE_BUDGET``).
"""

from __future__ import annotations

import dataclasses
import math
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TypeVar

from flask import current_app

from initlab.core.montecarlo import RANDOM_NUMBER_FLOPS
from initlab.core.mup import MupLimits
from initlab.core.spec import SpecLimits

ENV_PREFIX = "INITLAB_"
DEFAULT_MAX_BODY_BYTES = 1024 * 1024
DEFAULT_MAX_JSON_DEPTH = 64
APP_EXTENSION = "initlab.config"

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
    default: int | float
    description: str


@dataclass(frozen=True)
class Config:
    """What the service needs to know about its deployment.

    ``max_body_bytes`` bounds the request body (413 above it);
    ``max_json_depth`` bounds how deeply arrays and objects may nest in a
    body (400 above it); ``spec_limits`` bounds the expanded architecture
    ``statistics_limits`` the work of the statistics and chart endpoints and
    ``mup_limits`` the size of a µP table (422 above them).
    """

    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES
    max_json_depth: int = DEFAULT_MAX_JSON_DEPTH
    spec_limits: SpecLimits = field(default_factory=SpecLimits)
    statistics_limits: StatisticsLimits = field(default_factory=StatisticsLimits)
    mup_limits: MupLimits = field(default_factory=MupLimits)

    @classmethod
    def from_environ(cls, environ: Mapping[str, str] | None = None) -> Config:
        """Read every setting from ``environ`` (default ``os.environ``).

        Unset or empty variables keep their defaults. Raises
        :class:`ConfigError` for a value that is not a positive number.
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
        )


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
