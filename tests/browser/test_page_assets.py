"""The page's blueprint: what it serves, with which types and which policy.

Run on the blueprint alone (a bare Flask app), so these hold whatever app
registers it; the browser tests run the page in the real service.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from flask.testing import FlaskClient

from initlab.web.app import create_app
from initlab.web.config import Config
from initlab.web.page import PAGE_DIRECTORY

# Every relative URL the page names (href/src) and every module a script imports.
HTML_REFERENCE = re.compile(r'(?:href|src)="(page/[^"]+)"')
MODULE_IMPORT = re.compile(r'^import .* from "\./([^"]+)";$', re.MULTILINE)
# A URL with a host, written with or without its scheme ("//cdn.example.org").
ABSOLUTE_URL = re.compile(r"(?:https?:)?//[a-z0-9-]+(?:\.[a-z0-9-]+)+", re.IGNORECASE)


@pytest.fixture
def client() -> FlaskClient:
    return create_app(Config()).test_client()


def test_the_page_and_its_assets_stay_open_when_api_keys_are_on() -> None:
    key = "k" * 32
    client = create_app(Config(api_keys=(key,))).test_client()
    index = client.get("/")
    assets = HTML_REFERENCE.findall(index.text)

    assert index.status_code == 200
    assert assets
    for asset in assets:
        assert client.get(f"/{asset}").status_code == 200, asset
    # The API itself is not open: the page's own requests carry the key.
    assert client.get("/v1/schemes").status_code == 401
    headers = {"Authorization": f"Bearer {key}"}
    assert client.get("/v1/schemes", headers=headers).status_code == 200


def test_the_page_is_served_at_the_root_with_a_same_origin_policy(
    client: FlaskClient,
) -> None:
    response = client.get("/")

    assert response.status_code == 200
    assert response.mimetype == "text/html"
    assert response.text == (PAGE_DIRECTORY / "index.html").read_text("utf-8")
    policy = dict(
        directive.strip().split(" ", 1)
        for directive in response.headers["Content-Security-Policy"].split(";")
    )
    assert policy["default-src"] == "'none'"
    assert policy["script-src"] == "'self'"
    assert policy["connect-src"] == "'self'"
    assert policy["style-src"] == "'self'"
    assert response.headers["Cache-Control"] == "no-cache"


def test_every_script_and_stylesheet_the_page_names_is_served(
    client: FlaskClient,
) -> None:
    page = (PAGE_DIRECTORY / "index.html").read_text("utf-8")
    named = set(HTML_REFERENCE.findall(page))
    assert named == {"page/page.css", "page/main.js"}

    # Follow the module imports from main.js: every one must be served.
    seen: set[str] = set()
    pending = ["main.js"]
    while pending:
        name = pending.pop()
        if name in seen:
            continue
        seen.add(name)
        response = client.get(f"/page/{name}")
        assert response.status_code == 200, name
        assert response.mimetype == "text/javascript", name
        assert response.headers["X-Content-Type-Options"] == "nosniff"
        pending.extend(MODULE_IMPORT.findall(response.text))

    scripts = {path.name for path in PAGE_DIRECTORY.glob("*.js")}
    assert seen == scripts
    stylesheet = client.get("/page/page.css")
    assert stylesheet.status_code == 200
    assert stylesheet.mimetype == "text/css"


def test_the_page_names_no_other_host() -> None:
    for path in sorted(PAGE_DIRECTORY.iterdir()):
        text = path.read_text("utf-8")
        # The SVG namespace is a name, never fetched.
        hosts = set(ABSOLUTE_URL.findall(text)) - {"http://www.w3.org"}
        assert hosts == set(), f"{path.name} names {hosts}"


@pytest.mark.parametrize(
    "path",
    [
        "/page/index.html",
        "/page/missing.js",
        "/page/..%2Fpage.py",
        "/page/../page.py",
        "/page/%2E%2E%2Fpage.py",
    ],
)
def test_nothing_else_is_served(client: FlaskClient, path: str) -> None:
    assert client.get(path).status_code == 404


def test_the_page_directory_holds_only_what_it_serves() -> None:
    suffixes = {path.suffix for path in Path(PAGE_DIRECTORY).iterdir()}
    assert suffixes == {".html", ".js", ".css"}
