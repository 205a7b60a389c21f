"""Configuration from environment variables, and refusing to start on a bad one."""

from __future__ import annotations

import dataclasses
import os
import subprocess
import sys

import pytest

from initlab.core.spec import SpecLimits
from initlab.web.app import create_app
from initlab.web.config import Config, ConfigError, settings

from .conftest import REPO_ROOT


def test_defaults_without_any_variable() -> None:
    config = Config.from_environ({})

    assert config.max_body_bytes == 1024 * 1024
    assert config.max_json_depth == 64
    assert config.spec_limits == SpecLimits()


def test_every_spec_limit_is_read_from_its_variable() -> None:
    environ = {
        f"INITLAB_{limit.name.upper()}": str(index + 7)
        for index, limit in enumerate(dataclasses.fields(SpecLimits))
    }

    config = Config.from_environ(environ | {"INITLAB_MAX_BODY_BYTES": " 2048 "})

    assert config.max_body_bytes == 2048
    for index, limit in enumerate(dataclasses.fields(SpecLimits)):
        assert getattr(config.spec_limits, limit.name) == index + 7


def test_an_empty_variable_keeps_the_default() -> None:
    assert Config.from_environ({"INITLAB_MAX_REPEAT_COUNT": ""}).spec_limits == (
        SpecLimits()
    )


@pytest.mark.parametrize("raw", ["lots", "0", "-5", "1.5", "1e3"])
def test_a_bad_value_names_the_variable_the_value_and_the_default(raw: str) -> None:
    with pytest.raises(ConfigError) as refused:
        Config.from_environ({"INITLAB_MAX_REPEAT_COUNT": raw})

    assert str(refused.value) == (
        f"INITLAB_MAX_REPEAT_COUNT must be a positive integer; got {raw!r}. Fix the"
        f" value or unset INITLAB_MAX_REPEAT_COUNT to use the default"
        f" {SpecLimits().max_repeat_count}."
    )


def test_create_app_reads_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("INITLAB_MAX_BODY_BYTES", "4096")

    app = create_app()

    assert app.config["MAX_CONTENT_LENGTH"] == 4096


def test_settings_lists_every_variable_with_its_default() -> None:
    listed = {setting.variable: setting.default for setting in settings()}

    assert listed["INITLAB_MAX_BODY_BYTES"] == 1024 * 1024
    assert listed["INITLAB_MAX_JSON_DEPTH"] == 64
    for limit in dataclasses.fields(SpecLimits):
        assert listed[f"INITLAB_{limit.name.upper()}"] == limit.default
    assert all(setting.description for setting in settings())


def test_the_wsgi_module_refuses_to_start_on_a_bad_value() -> None:
    environment = {**os.environ, "INITLAB_MAX_BODY_BYTES": "lots"}

    started = subprocess.run(
        [sys.executable, "-c", "import initlab.web.wsgi"],
        cwd=REPO_ROOT,
        env=environment,
        capture_output=True,
        text=True,
    )

    # One line naming the variable, no traceback before it.
    assert started.returncode == 1
    assert started.stderr == (
        "INITLAB_MAX_BODY_BYTES must be a positive integer; got 'lots'. Fix the"
        " value or unset INITLAB_MAX_BODY_BYTES to use the default 1048576.\n"
    )


def test_the_compute_gate_is_read_from_the_environment() -> None:
    config = Config.from_environ(
        {
            "INITLAB_MAX_RUNNING_COMPUTATIONS": "0",
            "INITLAB_MAX_QUEUED_COMPUTATIONS": "5",
            "INITLAB_COMPUTATION_WAIT_SECONDS": "3600",
        }
    )
    defaults = Config.from_environ({})

    assert config.max_running_computations == 0  # no gate
    assert config.max_queued_computations == 5
    assert config.computation_wait_seconds == 3600
    assert (
        defaults.max_running_computations,
        defaults.max_queued_computations,
        defaults.computation_wait_seconds,
    ) == (2, 2, 30)


def test_a_wait_longer_than_an_hour_is_refused_before_a_thread_overflows() -> None:
    # A thread's wait takes at most about 2**63 ns; an hour is the ceiling.
    with pytest.raises(ConfigError) as refused:
        Config.from_environ(
            {"INITLAB_COMPUTATION_WAIT_SECONDS": "99999999999999999999999"}
        )

    assert str(refused.value) == (
        "INITLAB_COMPUTATION_WAIT_SECONDS must be at most 3600 (an hour); got"
        " 99999999999999999999999. Lower it, or unset"
        " INITLAB_COMPUTATION_WAIT_SECONDS to use the default 30."
    )
    built = dataclasses.replace(Config(), computation_wait_seconds=7200)
    assert any("must be at most 3600" in fault for fault in built.faults())
