"""Service configuration, read once from environment variables at start-up.

Every setting has a documented default; a value that is not a positive number
stops the service before it serves anything, with a message naming the
variable, the value and what is allowed. The spec limits are the fields of
:class:`initlab.core.spec.SpecLimits`, each read from ``INITLAB_<FIELD>``
(``max_repeat_count`` from ``INITLAB_MAX_REPEAT_COUNT``), so a limit added to
the core is configurable without touching this module.
"""

from __future__ import annotations

import dataclasses
import math
import os
from collections.abc import Mapping
from dataclasses import dataclass, field

from flask import current_app

from initlab.core.spec import SpecLimits

ENV_PREFIX = "INITLAB_"
DEFAULT_MAX_BODY_BYTES = 1024 * 1024
DEFAULT_MAX_JSON_DEPTH = 64
APP_EXTENSION = "initlab.config"


class ConfigError(ValueError):
    """An environment variable holds a value the service cannot start with."""


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
    (422 above it).
    """

    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES
    max_json_depth: int = DEFAULT_MAX_JSON_DEPTH
    spec_limits: SpecLimits = field(default_factory=SpecLimits)

    @classmethod
    def from_environ(cls, environ: Mapping[str, str] | None = None) -> Config:
        """Read every setting from ``environ`` (default ``os.environ``).

        Unset or empty variables keep their defaults. Raises
        :class:`ConfigError` for a value that is not a positive number.
        """
        if environ is None:
            environ = os.environ

        limits = {
            limit.name: _read_positive(environ, env_variable(limit.name), default)
            for limit, default in _spec_limit_defaults()
        }
        return cls(
            max_body_bytes=_read_positive(
                environ, env_variable("max_body_bytes"), DEFAULT_MAX_BODY_BYTES
            ),
            max_json_depth=_read_positive(
                environ, env_variable("max_json_depth"), DEFAULT_MAX_JSON_DEPTH
            ),
            spec_limits=SpecLimits(**limits),
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
    for limit, default in _spec_limit_defaults():
        description = limit.metadata.get("description") or (
            f"Spec limit {limit.name} (initlab.core.spec.SpecLimits); over it gets 422."
        )
        described.append(Setting(env_variable(limit.name), default, description))

    return described


def _spec_limit_defaults() -> list[tuple[dataclasses.Field, int | float]]:
    defaults = SpecLimits()
    return [
        (limit, getattr(defaults, limit.name))
        for limit in dataclasses.fields(SpecLimits)
    ]


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
