// Wires the page: the catalogues, the two views, their requests and states.
//
// Each view has data-state = idle | loading | ready | error and, once it has
// asked, data-request = the URL it asked (the propagation view) so a reader or
// a test can fetch the same answer and compare.

import { getJSON, postJSON, ProblemError, queryUrl, setApiKey } from "./api.js";
import { formatNumber } from "./charts.js";
import { clearCoord, COORD_CHECK_PATH, coordBody, renderCoord } from "./coord.js";
import { activationText, count, el, fill } from "./dom.js";
import { clearPhase, phasePoints, phaseQuery, phaseUrl, renderPhase } from "./phase.js";
import { clearPropagation, propagationQuery, propagationUrl, renderPropagation, schemesOf } from "./propagation.js";

const $ = (id) => document.getElementById(id);

const propagation = {
  view: $("view-propagation"),
  form: $("propagation-form"),
  status: $("propagation-status"),
  problem: $("propagation-problem"),
  figures: [$("forward-figure"), $("backward-figure"), $("phase-figure")],
  elements: {
    headline: $("verdict-headline"),
    verdicts: $("verdict-list"),
    legend: $("propagation-legend"),
    forwardChart: $("forward-chart"),
    forwardTable: $("forward-table"),
    backwardChart: $("backward-chart"),
    backwardTable: $("backward-table"),
    notes: $("propagation-notes"),
  },
  phase: {
    figure: $("phase-figure"),
    problem: $("phase-problem"),
    elements: { chart: $("phase-chart"), legend: $("phase-legend"), points: $("phase-points"), caption: $("phase-caption") },
  },
  controller: null,
};

const mup = {
  view: $("view-mup"),
  form: $("mup-form"),
  status: $("mup-status"),
  problem: $("mup-problem"),
  figures: [$("mup-figure")],
  elements: {
    summaries: $("mup-summaries"),
    legend: $("mup-legend"),
    panels: $("mup-panels"),
    table: $("mup-table"),
    notes: $("mup-notes"),
  },
  controller: null,
  ran: false,
};

// A refusal can name every layer of a deep stack; the first few say enough.
const SHOWN_FIELD_ERRORS = 5;

let catalogues = null;

// Answers already drawn, by URL or body: every answer is a pure function of
// its request, so asking again would only cost the service time.
const answers = new Map();

async function cached(key, ask) {
  if (!answers.has(key)) {
    answers.set(key, await ask());
  }
  return answers.get(key);
}

/** Fill the activation and scheme controls from the catalogues, keeping choices. */
async function loadCatalogues(signal) {
  if (catalogues) {
    return catalogues;
  }
  const [activations, schemes] = await Promise.all([
    getJSON(queryUrl("v1/activations", {}), signal),
    getJSON(queryUrl("v1/schemes", {}), signal),
  ]);
  for (const select of [$("activation"), $("mup-activation")]) {
    const chosen = select.value;
    fill(
      select,
      activations.activations.map((activation) =>
        el("option", { value: activation.name, selected: activation.name === chosen, text: activationText(activation) }),
      ),
    );
  }
  const list = $("scheme-list");
  const checked = new Set([...list.querySelectorAll("input:checked")].map((input) => input.value));
  fill(
    list,
    schemes.schemes.map((scheme) =>
      el("label", { title: scheme.description }, [
        el("input", { type: "checkbox", name: "schemes", value: scheme.name, checked: checked.has(scheme.name) }),
        ` ${scheme.name}`,
      ]),
    ),
  );
  catalogues = { activations, schemes };
  return catalogues;
}

function setState(target, state, message) {
  target.view.dataset.state = state;
  for (const figure of target.figures) {
    figure.setAttribute("aria-busy", String(state === "loading"));
  }
  target.status.textContent = message;
  target.status.classList.toggle("loading", state === "loading");
}

function clearInvalid(form) {
  for (const control of form.querySelectorAll("[aria-invalid]")) {
    control.removeAttribute("aria-invalid");
  }
}

/** Whether the service refused for want of a turn to compute (503 busy), not the settings. */
function isBusy(error) {
  return error instanceof ProblemError && error.status === 503;
}

/** A sentence without its final full stop, for comparing two ways of saying it. */
function withoutStop(text) {
  return String(text ?? "").replace(/\.$/, "");
}

/** Show a refusal: the problem's title, detail, field errors and request id. */
function showProblem(container, error, form) {
  container.hidden = false;
  if (!(error instanceof ProblemError)) {
    fill(container, [el("p", { class: "problem-title" }, [el("strong", { text: "The page could not get an answer" })]), el("p", { class: "problem-detail", text: error.message })]);
    return;
  }
  const problem = error.problem;
  const errors = Array.isArray(problem.errors) ? problem.errors : [];
  // A detail that only restates its one field error is shown once.
  const restated =
    errors.length === 1 && withoutStop(problem.detail) === withoutStop(`${errors[0].pointer}: ${errors[0].message}`);
  fill(container, [
    el("p", { class: "problem-title" }, [el("strong", { text: problem.title ?? "Refused" }), ` (HTTP ${error.status})`]),
    el("p", { class: "problem-detail", text: problem.detail ?? "" }),
    errors.length && !restated
      ? el(
          "ul",
          { class: "problem-errors" },
          [
            ...errors
              .slice(0, SHOWN_FIELD_ERRORS)
              .map((fieldError) => el("li", {}, [el("code", { text: fieldError.pointer }), `: ${fieldError.message}`])),
            errors.length > SHOWN_FIELD_ERRORS
              ? el("li", { text: `and ${errors.length - SHOWN_FIELD_ERRORS} more fields (the answer lists every one)` })
              : null,
          ],
        )
      : null,
    error.status === 401 ? el("p", { text: "Enter the key under “API key” above, then ask again." }) : null,
    problem.instance ? el("p", { class: "problem-instance" }, ["Request id: ", el("code", { text: problem.instance })]) : null,
  ]);
  if (error.status === 401) {
    $("api-key").closest("details").open = true;
  }
  for (const fieldError of errors) {
    const name = fieldError.parameter ?? String(fieldError.pointer || "").split("/")[1];
    const control = name ? form.elements.namedItem(name) : null;
    if (control && typeof control.setAttribute === "function") {
      control.setAttribute("aria-invalid", "true");
    }
  }
}

function hideProblem(container) {
  container.hidden = true;
  container.replaceChildren();
}

/** Run `task` for a view: one request at a time, the last one asked wins. */
async function run(target, loadingMessage, task) {
  target.controller?.abort();
  const controller = new AbortController();
  target.controller = controller;
  clearInvalid(target.form);
  hideProblem(target.problem);
  setState(target, "loading", loadingMessage);
  try {
    const message = await task(controller.signal);
    if (target.controller === controller) {
      setState(target, "ready", message);
    }
  } catch (error) {
    if (error.name === "AbortError" || target.controller !== controller) {
      return;
    }
    showProblem(target.problem, error, target.form);
    setState(target, "error", "The service refused the request: see the message below.");
  }
}

async function drawPropagation() {
  const target = propagation;
  await run(target, "Asking the service…", async (signal) => {
    await loadCatalogues(signal);
    const query = propagationQuery(target.form);
    const url = propagationUrl(query);
    target.view.dataset.request = url;
    const schemes = query.schemes ? query.schemes.split(",").length : 0;
    target.status.textContent = `Computing ${count(schemes, "scheme")} through ${query.depth} layers…`;
    let answer;
    try {
      answer = await cached(url, () => getJSON(url, signal));
    } catch (error) {
      clearPropagation(target.elements, isBusy(error));
      clearPhase(target.phase.elements);
      delete target.phase.figure.dataset.request;
      throw error;
    }
    renderPropagation(answer, target.elements);

    const points = phasePoints(schemesOf(answer));
    const diagram = phaseQuery(answer.activation.name, points, answer.sigma_b2);
    const diagramUrl = phaseUrl(diagram);
    target.phase.figure.dataset.request = diagramUrl;
    hideProblem(target.phase.problem);
    try {
      const phaseAnswer = await cached(diagramUrl, () => getJSON(diagramUrl, signal));
      renderPhase(phaseAnswer, points, target.phase.elements);
    } catch (error) {
      if (error.name === "AbortError") {
        throw error;
      }
      clearPhase(target.phase.elements);
      showProblem(target.phase.problem, error, target.form);
    }

    const cost = answer.cost
      ? ` Monte Carlo work ${formatNumber(answer.cost.work, 2)} of the budget ${formatNumber(answer.cost.compute_budget, 2)} flop-equivalents.`
      : "";
    return `Drawn: ${count(answer.verdicts.length, "scheme")}, ${count(answer.depth, "layer")} of ${count(answer.width, "unit")}.${cost}`;
  });
}

async function runCoordCheck() {
  const target = mup;
  const body = coordBody(target.form);
  target.ran = true;
  $("mup-setup").textContent =
    `The MLP 32 → w → w → 10 (${body.spec.layers[0].activation}), µP base width ${body.base_dims.w}, ` +
    `widths ${body.widths.join(", ")}; ${body.seeds} seeds, batch ${body.batch_size}.`;
  await run(target, "Training at every width…", async (signal) => {
    await loadCatalogues(signal);
    const key = JSON.stringify(body);
    target.view.dataset.request = key;
    let answer;
    try {
      answer = await cached(key, () => postJSON(COORD_CHECK_PATH, body, signal));
    } catch (error) {
      clearCoord(target.elements);
      throw error;
    }
    renderCoord(answer, target.elements);
    return (
      `Done: ${answer.parametrizations.length} parametrizations × ${answer.widths.length} widths × ` +
      `${answer.steps.length} steps; training work ${formatNumber(answer.cost.work, 2)} of the budget ${formatNumber(answer.budget, 2)}.`
    );
  });
}

// Tabs, as the WAI-ARIA tabs pattern: arrows, Home and End move between them.
const tabs = [...document.querySelectorAll('[role="tab"]')];

function selectTab(tab, focus) {
  for (const other of tabs) {
    const selected = other === tab;
    other.setAttribute("aria-selected", String(selected));
    other.tabIndex = selected ? 0 : -1;
    $(other.getAttribute("aria-controls")).hidden = !selected;
  }
  if (focus) {
    tab.focus();
  }
  const hash = tab.id === "tab-mup" ? "#mup" : "#depth";
  if (location.hash !== hash) {
    history.replaceState(null, "", hash);
  }
  if (tab.id === "tab-mup" && !mup.ran) {
    runCoordCheck();
  }
}

for (const tab of tabs) {
  tab.addEventListener("click", () => selectTab(tab, false));
  tab.addEventListener("keydown", (event) => {
    const index = tabs.indexOf(tab);
    const moves = {
      ArrowRight: (index + 1) % tabs.length,
      ArrowLeft: (index - 1 + tabs.length) % tabs.length,
      Home: 0,
      End: tabs.length - 1,
    };
    if (event.key in moves) {
      event.preventDefault();
      selectTab(tabs[moves[event.key]], true);
    }
  });
}

propagation.form.addEventListener("submit", (event) => {
  event.preventDefault();
  drawPropagation();
});
mup.form.addEventListener("submit", (event) => {
  event.preventDefault();
  runCoordCheck();
});
$("api-key-form").addEventListener("submit", (event) => event.preventDefault());
$("api-key").addEventListener("change", (event) => {
  setApiKey(event.target.value);
  catalogues = null;
  answers.clear();
});

if (location.hash === "#mup") {
  selectTab($("tab-mup"), false);
}
drawPropagation();
