"""Fixtures of the browser tests: the service with its page, and Chromium.

The browser is Debian's Chromium at /usr/bin/chromium (``make browser``
installs it), driven by Playwright without any browser download, headless,
with a fresh profile and Chromium's own network features (background
networking, component updates, sync, QUIC) off, so the only requests it makes
are the page's. When Chromium or Playwright is missing the tests fail and say
how to install it: a page nobody checked is not a pass.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from playwright.sync_api import BrowserContext, Page

REPO_ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGUMENTS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
)
PLAYWRIGHT_PIN = "playwright==1.65.2"
VIEWPORT = {"width": 1280, "height": 900}
# Milliseconds Playwright waits for an element or a state; the slowest answer
# the page asks for takes about 2 s on one core.
WAIT_MS = 30_000
ARTIFACTS_VARIABLE = "INITLAB_ARTIFACTS"


@dataclass
class PageSession:
    """A browser tab on the page, with every request and error it produced."""

    page: Page
    base_url: str
    requests: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    @property
    def origin(self) -> str:
        return self.base_url.rstrip("/")


@pytest.fixture(scope="session")
def page_url(live_server_url: str) -> str:
    """Base URL of the suite's real gunicorn, which serves the page at ``/``."""
    return live_server_url


def require_chromium(path: Path = CHROMIUM) -> None:
    """Fail, naming the command that installs it, when Chromium is not at ``path``."""
    if not path.is_file():
        pytest.fail(
            f"Chromium is not installed at {path}, and the page's tests drive it."
            " Install it with `make browser` (as root it runs `apt-get install -y"
            " --no-install-recommends chromium`)."
        )


def require_playwright() -> Any:
    """Playwright's ``sync_playwright``; fail with the pip command when missing."""
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        pytest.fail(
            "The Python package playwright drives the browser and is not installed:"
            f" run `.venv/bin/pip install {PLAYWRIGHT_PIN}` (no browser download is"
            " needed: the tests use Debian's Chromium)."
        )

    return sync_playwright


@pytest.fixture(scope="session")
def browser_context(tmp_path_factory: Any) -> Iterator[BrowserContext]:
    """Debian's Chromium, headless, with a fresh user data directory."""
    require_chromium()
    sync_playwright = require_playwright()

    profile = tmp_path_factory.mktemp("chromium-profile")
    with sync_playwright() as playwright:
        context = playwright.chromium.launch_persistent_context(
            str(profile),
            executable_path=str(CHROMIUM),
            headless=True,
            args=list(CHROMIUM_ARGUMENTS),
            viewport=VIEWPORT,
        )
        context.set_default_timeout(WAIT_MS)
        try:
            yield context
        finally:
            context.close()


@pytest.fixture(scope="module")
def page_session(
    browser_context: BrowserContext, page_url: str
) -> Iterator[PageSession]:
    """The page opened in a new tab, drawn with its default settings."""
    page = browser_context.new_page()
    session = PageSession(page=page, base_url=page_url)
    page.on("request", lambda sent: session.requests.append(sent.url))
    page.on("pageerror", lambda error: session.errors.append(f"uncaught: {error}"))
    page.on("console", lambda message: _keep_console_error(session, message))

    page.goto(f"{session.origin}/")
    page.wait_for_selector('#view-propagation[data-state="ready"]')
    try:
        yield session
    finally:
        page.close()


@pytest.fixture
def artifacts(tmp_path: Path) -> list[Path]:
    """Directories a test's screenshots go to: its tmp dir and $INITLAB_ARTIFACTS."""
    directories = [tmp_path]
    extra = os.environ.get(ARTIFACTS_VARIABLE, "").strip()
    if extra:
        directory = Path(extra)
        directory.mkdir(parents=True, exist_ok=True)
        directories.append(directory)
    return directories


def _keep_console_error(session: PageSession, message: Any) -> None:
    # A refused fetch is logged by Chromium itself ("Failed to load resource"):
    # the page shows those; what counts is the page's own errors and any
    # request the Content-Security-Policy blocked.
    if message.type != "error" or "Failed to load resource" in message.text:
        return
    session.errors.append(f"console: {message.text}")
