"""The browser tests fail, never skip, when their browser is missing."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from .conftest import PLAYWRIGHT_PIN, require_chromium, require_playwright


def test_a_missing_chromium_fails_naming_the_command_that_installs_it(
    tmp_path: Path,
) -> None:
    missing = tmp_path / "chromium"
    with pytest.raises(pytest.fail.Exception) as failure:
        require_chromium(missing)

    message = str(failure.value)
    assert str(missing) in message
    assert "make browser" in message
    assert "apt-get install -y --no-install-recommends chromium" in message


def test_a_missing_playwright_fails_naming_the_pinned_install(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # None in sys.modules makes the import raise ImportError.
    monkeypatch.setitem(sys.modules, "playwright.sync_api", None)
    with pytest.raises(pytest.fail.Exception) as failure:
        require_playwright()

    assert f".venv/bin/pip install {PLAYWRIGHT_PIN}" in str(failure.value)
