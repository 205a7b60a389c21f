"""The page at / in a real browser, against the real service.

The page is the API's example client: for the settings a user picks, it must
draw exactly what the API answers. Each test sets the controls, fetches the
same answer itself, and reads the numbers back from the drawing: every curve's
path is inverted through the chart's scale and compared with the answer, so a
chart drawn from stale or made-up numbers fails.
"""

from __future__ import annotations

import json
import math
import re
import shutil
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl, urlencode, urlsplit

import pytest
import requests

if TYPE_CHECKING:
    from playwright.sync_api import BrowserContext, Page

    from .conftest import PageSession

pytestmark = pytest.mark.server

PROPAGATION = "/v1/visualizations/propagation"
PHASE_DIAGRAM = "/v1/visualizations/phase-diagram"
COORD_CHECK = "/v1/mup/coord-check"
# Drawn coordinates are written with 2 decimals in a chart a few hundred units
# tall: a value read back from them is within this relative error on a log
# axis spanning 40 decades (0.005 / 300 of 40 decades is 0.15 %).
READ_BACK = 5e-3
POINT = re.compile(r"[ML](-?\d+(?:\.\d+)?) (-?\d+(?:\.\d+)?)")


def save_screenshot(page: Page, name: str, directories: list[Path]) -> None:
    """A full-page screenshot as ``name`` in each of ``directories``."""
    first = directories[0] / name
    page.screenshot(path=str(first), full_page=True)
    assert first.stat().st_size > 0
    for directory in directories[1:]:
        shutil.copyfile(first, directory / name)


def numbers(text: str) -> Any:
    """JSON written by the page: JavaScript writes 3.6e16 as 36028797018963970."""
    return json.loads(text, parse_int=float)


def api_get(
    session: PageSession, path: str, query: dict[str, str]
) -> requests.Response:
    return requests.get(f"{session.origin}{path}?{urlencode(query)}", timeout=60)


def set_propagation_controls(page: Page, settings: dict[str, Any]) -> None:
    page.select_option("#activation", settings["activation"])
    page.fill("#depth", str(settings["depth"]))
    page.fill("#width", str(settings["width"]))
    page.fill("#sigma_b2", str(settings["sigma_b2"]))
    page.select_option("#method", settings["method"])
    page.fill("#seeds", str(settings["seeds"]))
    for box in page.locator('#scheme-list input[name="schemes"]').all():
        box.set_checked(box.get_attribute("value") in settings["schemes"])


def expected_query(settings: dict[str, Any]) -> dict[str, str]:
    """The chart's query for the settings, as the API documents its parameters."""
    return {
        "activation": settings["activation"],
        "schemes": ",".join(settings["schemes"]),
        "depth": str(settings["depth"]),
        "width": str(settings["width"]),
        "sigma_b2": str(settings["sigma_b2"]),
        "method": settings["method"],
        "seeds": str(settings["seeds"]),
    }


def draw(page: Page, settings: dict[str, Any], state: str = "ready") -> dict[str, str]:
    """Set the controls, press Draw, wait for ``state``; the query the page sent."""
    set_propagation_controls(page, settings)
    page.click("#propagation-draw")
    page.wait_for_selector(f'#view-propagation[data-state="{state}"]')
    request = page.get_attribute("#view-propagation", "data-request")
    return dict(parse_qsl(urlsplit(request).query))


def chart_frame(page: Page, chart: str) -> dict[str, Any]:
    svg = page.locator(f"{chart} svg").first
    return {
        name: json.loads(svg.get_attribute(f"data-{name}"))
        for name in ("plot", "x-domain", "y-domain", "x-values")
    }


def read_back(d: str, frame: dict[str, Any]) -> list[tuple[float, float]]:
    """The (x, value) points of a drawn path, through a linear x and log y scale."""
    left, top, right, bottom = frame["plot"]
    x0, x1 = frame["x-domain"]
    low, high = (math.log10(v) for v in frame["y-domain"])
    points = []
    for px, py in POINT.findall(d):
        x = x0 + (float(px) - left) / (right - left) * (x1 - x0)
        log_value = low + (bottom - float(py)) / (bottom - top) * (high - low)
        points.append((x, 10**log_value))
    return points


def read_back_linear(d: str, frame: dict[str, Any]) -> list[list[float]]:
    """The (x, y) points of a drawn path, through linear scales on both axes."""
    left, top, right, bottom = frame["plot"]
    x0, x1 = frame["x-domain"]
    y0, y1 = frame["y-domain"]
    return [
        [
            x0 + (float(px) - left) / (right - left) * (x1 - x0),
            y0 + (bottom - float(py)) / (bottom - top) * (y1 - y0),
        ]
        for px, py in POINT.findall(d)
    ]


def assert_drawn_as(
    page: Page, chart: str, scheme: str, xs: list[int], values: list[Any]
) -> None:
    """The scheme's line in ``chart`` holds and draws exactly ``values``."""
    line = page.locator(f'{chart} path.series-line[data-scheme="{scheme}"]')
    assert numbers(line.get_attribute("data-values")) == values

    expected = [(x, v) for x, v in zip(xs, values, strict=True) if v and v > 0]
    drawn = read_back(line.get_attribute("d"), chart_frame(page, chart))
    assert len(drawn) == len(expected)
    for (x, value), (drawn_x, drawn_value) in zip(expected, drawn, strict=True):
        assert drawn_x == pytest.approx(x, abs=0.01)
        assert drawn_value == pytest.approx(value, rel=READ_BACK)


def assert_same_origin(session: PageSession) -> None:
    assert session.requests, "the page made no request at all"
    foreign = [url for url in session.requests if not url.startswith(session.origin)]
    assert foreign == [], f"requests to another host: {foreign}"
    assert session.errors == []


def assert_propagation_matches(page: Page, answer: dict[str, Any]) -> None:
    for entry in answer["series"]:
        scheme = entry["scheme"]["name"]
        chart = f"#{entry['direction']}-chart"
        # A scheme past the mean-field integrals' range has no analytic line:
        # the page draws its Monte Carlo means.
        values = entry["analytic"]
        if values is None:
            values = entry["monte_carlo"]["mean"]
        assert_drawn_as(page, chart, scheme, answer["x"], values)
        band = page.locator(f'{chart} path.series-band[data-series="{scheme}"]')
        assert (
            numbers(band.get_attribute("data-lower")) == (entry["monte_carlo"]["lower"])
        )
        assert (
            numbers(band.get_attribute("data-upper")) == (entry["monte_carlo"]["upper"])
        )

    for verdict in answer["verdicts"]:
        item = page.locator(
            f'#verdict-list li[data-scheme="{verdict["scheme"]["name"]}"]'
        )
        assert item.get_attribute("data-forward") == verdict["forward"]["verdict"]
        assert item.get_attribute("data-backward") == verdict["backward"]["verdict"]
        text = item.inner_text()
        assert verdict["forward"]["reason"] in text
        assert verdict["backward"]["reason"] in text
        assert verdict["phase"]["reason"] in text


RELU_DEFAULTS = {
    "activation": "relu",
    # In the order the page lists them, the order of GET /v1/schemes.
    "schemes": ["xavier_normal", "kaiming_normal", "normal"],
    "depth": 20,
    "width": 128,
    "sigma_b2": 0,
    "method": "both",
    "seeds": 8,
}


def test_the_page_draws_the_api_answer_and_follows_activation_and_depth(
    page_session: PageSession, artifacts: list[Path]
) -> None:
    page = page_session.page

    # The page opens with ReLU at depth 20: He init keeps the signal, Xavier's
    # halves it at every layer, N(0, 1) multiplies it by width/2.
    query = draw(page, RELU_DEFAULTS)
    assert query == expected_query(RELU_DEFAULTS)
    relu = api_get(page_session, PROPAGATION, query).json()
    assert_propagation_matches(page, relu)
    verdicts = {v["scheme"]["name"]: v["forward"]["verdict"] for v in relu["verdicts"]}
    assert verdicts == {
        "kaiming_normal": "stable",
        "xavier_normal": "vanishing",
        "normal": "exploding",
    }
    headline = page.inner_text("#verdict-headline")
    assert "20 layers of relu" in headline
    assert "explodes under normal" in headline
    # The gradient's verdicts, read back from the output, have a sentence too.
    backward = {v["scheme"]["name"]: v["backward"]["verdict"] for v in relu["verdicts"]}
    assert backward == verdicts
    assert headline.endswith(
        "The gradient, from the output down, stays within 10× under"
        " kaiming_normal; vanishes under xavier_normal; explodes under normal."
    )
    save_screenshot(page, "page.png", artifacts)

    tanh = {**RELU_DEFAULTS, "activation": "tanh", "depth": 12}
    query = draw(page, tanh)
    assert query == expected_query(tanh)
    answer = api_get(page_session, PROPAGATION, query).json()
    assert answer["x"] == list(range(1, 13))
    assert_propagation_matches(page, answer)
    kaiming = page.locator(
        '#forward-chart path.series-line[data-scheme="kaiming_normal"]'
    )
    assert len(numbers(kaiming.get_attribute("data-values"))) == 12
    assert "12 layers of tanh" in page.inner_text("#verdict-headline")

    # The phase diagram is tanh's, with each scheme at its own (σ_w², σ_b²).
    diagram = page.locator("#phase-chart svg")
    assert diagram.get_attribute("data-activation") == "tanh"
    phase_request = page.get_attribute("#phase-figure", "data-request")
    phase_query = dict(parse_qsl(urlsplit(phase_request).query))
    assert phase_query["activation"] == "tanh"
    phase = api_get(page_session, PHASE_DIAGRAM, phase_query).json()
    edge = [[point["sigma_w2"], point["sigma_b2"]] for point in phase["edge"]]
    assert numbers(diagram.get_attribute("data-edge")) == edge
    assert len(edge) > 1
    drawn_edge = read_back_linear(
        page.locator("#phase-chart path.edge-line").get_attribute("d"),
        {
            name: json.loads(diagram.get_attribute(f"data-{name}"))
            for name in ("plot", "x-domain", "y-domain")
        },
    )
    assert len(drawn_edge) == len(edge)
    for drawn, wanted in zip(drawn_edge, edge, strict=True):
        assert drawn == pytest.approx(wanted, abs=1e-3)
    for verdict in answer["verdicts"]:
        name = verdict["scheme"]["name"]
        point = page.locator(f'#phase-chart path.scheme-point[data-scheme="{name}"]')
        sigma_w2 = float(point.get_attribute("data-sigma-w2"))
        assert sigma_w2 == verdict["phase"]["sigma_w2"]
    # Kaiming's tanh gain 5/3 puts the stack at σ_w² = 25/9, in the chaos.
    assert verdicts_of(answer)["kaiming_normal"]["phase"]["phase"] == "chaotic"
    assert verdicts_of(answer)["kaiming_normal"]["phase"]["sigma_w2"] == (
        pytest.approx(25 / 9, rel=1e-12)
    )
    assert_same_origin(page_session)


def test_a_scheme_past_the_analytic_range_is_drawn_from_its_simulation(
    page_session: PageSession,
) -> None:
    page = page_session.page
    # N(0, 1) weights explode gelu's signal past 1e12 by layer 7, beyond the
    # mean-field integrals: the page draws that scheme's Monte Carlo means and
    # says why, beside the others' analytic lines.
    gelu = {**RELU_DEFAULTS, "activation": "gelu"}
    query = draw(page, gelu)
    answer = api_get(page_session, PROPAGATION, query).json()
    normal = next(
        entry
        for entry in answer["series"]
        if entry["scheme"]["name"] == "normal" and entry["direction"] == "forward"
    )
    assert normal["analytic"] is None
    assert_propagation_matches(page, answer)
    assert "explodes under" in page.inner_text("#verdict-headline")
    assert "normal has no analytic line" in page.inner_text("#propagation-notes")

    # Asked for the analytic line alone, the service names the scheme; the
    # page says it once, though the detail and the field error both end in a
    # full stop.
    query = draw(page, {**gelu, "method": "analytic"}, state="error")
    problem = api_get(page_session, PROPAGATION, query).json()
    [field_error] = problem["errors"]
    assert field_error["pointer"] == "/schemes/2"
    text = page.inner_text("#propagation-problem")
    assert text.count(field_error["message"]) == 1
    assert_same_origin(page_session)


def verdicts_of(answer: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {verdict["scheme"]["name"]: verdict for verdict in answer["verdicts"]}


def test_an_over_budget_request_shows_the_service_problem(
    page_session: PageSession,
) -> None:
    page = page_session.page
    # 8 networks of 100 layers of 4096 units each are far over the Monte Carlo
    # budget: the service refuses before any work.
    settings = {**RELU_DEFAULTS, "width": 4096, "depth": 100}
    query = draw(page, settings, state="error")
    assert query == expected_query(settings)

    refusal = api_get(page_session, PROPAGATION, query)
    assert refusal.status_code == 422
    problem = refusal.json()
    assert problem["limit"] == "compute_budget"
    shown = page.locator("#propagation-problem")
    assert shown.is_visible()
    text = shown.inner_text()
    assert problem["title"] in text
    assert problem["detail"] in text
    # The detail restates its one field error: the page says it once.
    [field_error] = problem["errors"]
    assert text.count(field_error["message"].rstrip(".")) == 1
    assert "HTTP 422" in text
    assert page.get_attribute("#width", "aria-invalid") == "true"
    # Nothing drawn for settings the service refused.
    assert page.locator("#forward-chart path.series-line").count() == 0
    assert page.locator("#phase-chart svg").count() == 0
    assert page.inner_text("#verdict-headline").startswith("Nothing drawn")
    assert page.inner_text("#phase-caption").startswith("Phase diagram: nothing drawn")
    assert not page.locator("#forward-table").locator("..").is_visible()

    # Asking for what fits clears the problem.
    draw(page, {**settings, "width": 64, "depth": 10})
    assert not page.locator("#propagation-problem").is_visible()
    assert page.get_attribute("#width", "aria-invalid") is None
    assert page.locator("#forward-table").locator("..").is_visible()
    assert "relu" in page.inner_text("#phase-caption")
    assert_same_origin(page_session)


def expected_coord_body(largest: int, steps: int) -> dict[str, Any]:
    """The coordinate check the µP view promises: the MLP 32 → w → w → 10."""
    widths = [64 * 2**k for k in range(int(math.log2(largest // 64)) + 1)]
    return {
        "spec": {
            "dims": {"d_in": 32, "w": 64, "n_out": 10},
            "layers": [
                {
                    "kind": "linear",
                    "name": "fc1",
                    "in": "d_in",
                    "out": "w",
                    "activation": "relu",
                },
                {
                    "kind": "linear",
                    "name": "fc2",
                    "in": "w",
                    "out": "w",
                    "activation": "relu",
                },
                {"kind": "linear", "name": "readout", "in": "w", "out": "n_out"},
            ],
        },
        "base_dims": {"w": 64},
        "widths": widths,
        "optimizer": "adam",
        "lr": 0.01,
        "steps": steps,
        "seeds": 2,
        "batch_size": 32,
    }


def assert_coord_matches(page: Page, answer: dict[str, Any]) -> None:
    for parametrization in answer["parametrizations"]:
        name = parametrization["name"]
        panels = page.locator(
            f'#mup-panels figure.panel[data-parametrization="{name}"]'
        )
        assert panels.count() == len(answer["steps"])
        for s, step in enumerate(answer["steps"]):
            panel = page.locator(
                f'#mup-panels figure.panel[data-parametrization="{name}"]'
                f'[data-step="{step}"]'
            )
            for layer in parametrization["layers"]:
                line = panel.locator(f'path.series-line[data-series="{layer["name"]}"]')
                assert numbers(line.get_attribute("data-values")) == (layer["mean"][s])
        summary = page.locator(f'#mup-summaries li[data-parametrization="{name}"]')
        assert parametrization["summary"] in summary.inner_text()
        assert summary.get_attribute("data-hidden-flat") == (
            str(parametrization["hidden_flat"]).lower()
        )


def test_the_mup_view_draws_a_panel_per_step_for_sp_and_mup(
    page_session: PageSession, artifacts: list[Path]
) -> None:
    page = page_session.page
    # Keyboard: from the first tab, the right arrow opens the µP view, which
    # runs its check with the default settings.
    page.focus("#tab-propagation")
    page.keyboard.press("ArrowRight")
    assert page.get_attribute("#tab-mup", "aria-selected") == "true"
    assert page.locator("#view-mup").is_visible()
    page.wait_for_selector('#view-mup[data-state="ready"]')

    body = json.loads(page.get_attribute("#view-mup", "data-request"))
    assert body == expected_coord_body(largest=2048, steps=4)
    answer = requests.post(
        f"{page_session.origin}{COORD_CHECK}", json=body, timeout=60
    ).json()
    assert answer["steps"] == [1, 2, 3, 4]
    assert_coord_matches(page, answer)
    # Tensor Programs V's picture: SP's hidden layer grows with width, µP's not.
    flat = {p["name"]: p["hidden_flat"] for p in answer["parametrizations"]}
    assert flat == {"sp": False, "mup": True}
    save_screenshot(page, "page-mup.png", artifacts)

    page.fill("#mup-steps", "3")
    page.select_option("#mup-largest", "1024")
    page.click("#mup-run")
    page.wait_for_selector('#view-mup[data-state="ready"]')
    body = json.loads(page.get_attribute("#view-mup", "data-request"))
    assert body == expected_coord_body(largest=1024, steps=3)
    answer = requests.post(
        f"{page_session.origin}{COORD_CHECK}", json=body, timeout=60
    ).json()
    assert_coord_matches(page, answer)
    assert page.locator("#mup-panels figure.panel").count() == 2 * 3

    page.focus("#tab-mup")
    page.keyboard.press("Home")
    assert page.get_attribute("#tab-propagation", "aria-selected") == "true"
    assert_same_origin(page_session)


def test_the_page_asks_only_its_own_service(page_session: PageSession) -> None:
    paths = {urlsplit(url).path for url in page_session.requests}
    assert "/" in paths
    assert {PROPAGATION, PHASE_DIAGRAM, "/v1/activations", "/v1/schemes"} <= paths
    assets = {path for path in paths if path.startswith("/page/")}
    assert {"/page/main.js", "/page/page.css"} <= assets
    assert_same_origin(page_session)


# A phone held upright (an iPhone 12 to 15 is 390 CSS pixels wide).
PHONE = {"width": 390, "height": 844}


def page_width_overflow(page: Page) -> int:
    """CSS pixels the page is wider than its viewport (0: no sideways scroll)."""
    return page.evaluate(
        "document.documentElement.scrollWidth - document.documentElement.clientWidth"
    )


def test_a_phone_wide_screen_never_scrolls_sideways(
    browser_context: BrowserContext, page_url: str, artifacts: list[Path]
) -> None:
    # Charts shrink to the screen, verdicts wrap, and a table wider than the
    # screen scrolls inside its own box.
    page = browser_context.new_page()
    try:
        page.set_viewport_size(PHONE)
        page.goto(f"{page_url.rstrip('/')}/")
        page.wait_for_selector('#view-propagation[data-state="ready"]')
        assert page_width_overflow(page) == 0

        page.click("#tab-mup")
        page.wait_for_selector('#view-mup[data-state="ready"]')
        assert page.locator("#mup-panels figure.panel").count() == 2 * 4
        assert page_width_overflow(page) == 0
        save_screenshot(page, "page-phone-mup.png", artifacts)
    finally:
        page.close()
