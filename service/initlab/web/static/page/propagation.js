// The first view: second moments through depth under several schemes.
//
// Draws GET /v1/visualizations/propagation as two log-scale charts (forward
// and backward), each scheme an analytic line with its Monte Carlo band, and
// writes each scheme's verdicts in words.

import { queryUrl } from "./api.js";
import { formatNumber, lineChart, numbersTable, styleFor, swatch } from "./charts.js";
import { activationText, count, el, fill, schemeOptions } from "./dom.js";

export const PROPAGATION_PATH = "v1/visualizations/propagation";

/** The query of the chart as the form sets it, values as typed (the service checks them). */
export function propagationQuery(form) {
  const data = new FormData(form);
  return {
    activation: data.get("activation"),
    schemes: data.getAll("schemes").join(","),
    depth: String(data.get("depth")).trim(),
    width: String(data.get("width")).trim(),
    sigma_b2: String(data.get("sigma_b2")).trim(),
    method: data.get("method"),
    seeds: String(data.get("seeds")).trim(),
  };
}

export function propagationUrl(query) {
  return queryUrl(PROPAGATION_PATH, query);
}

const VERDICT_ORDER = ["stable", "vanishing", "exploding"];
const MOVES = {
  vanishing: "vanishes",
  stable: "stays within 10×",
  exploding: "explodes",
};

/** The schemes of an answer, in its order, each with its drawing style. */
export function schemesOf(answer) {
  return answer.verdicts.map((verdict, index) => ({
    name: verdict.scheme.name,
    scheme: verdict.scheme,
    style: styleFor(index),
    verdict,
  }));
}

/** Draw the answer into the view's elements. */
export function renderPropagation(answer, elements) {
  const schemes = schemesOf(answer);
  renderVerdicts(answer, schemes, elements);
  renderLegend(answer, schemes, elements.legend);
  for (const direction of ["forward", "backward"]) {
    renderChart(answer, schemes, direction, elements[`${direction}Chart`], elements[`${direction}Table`]);
    elements[`${direction}Table`].closest("details").hidden = false;
  }
  fill(
    elements.notes,
    answer.notes.map((note) => el("li", { text: note })),
  );
}

/** Empty the view (after a refusal, so nothing on it contradicts the form). */
export function clearPropagation(elements, busy = false) {
  elements.headline.textContent = busy
    ? "Nothing drawn: the service is busy with other computations (see above); press Draw again in a few seconds."
    : "Nothing drawn: the service refused these settings (see above).";
  for (const key of ["verdicts", "legend", "forwardChart", "forwardTable", "backwardChart", "backwardTable", "notes"]) {
    elements[key].replaceChildren();
  }
  for (const table of [elements.forwardTable, elements.backwardTable]) {
    table.closest("details").hidden = true;
  }
}

/** "vanishes under a, b; explodes under c": the schemes grouped by one verdict. */
function verdictClauses(schemes, pick) {
  const groups = new Map();
  for (const { name, verdict } of schemes) {
    const word = pick(verdict)?.verdict;
    if (word) {
      groups.set(word, [...(groups.get(word) || []), name]);
    }
  }
  return [...groups.entries()]
    .sort(([a], [b]) => VERDICT_ORDER.indexOf(a) - VERDICT_ORDER.indexOf(b))
    .map(([word, names]) => `${MOVES[word] ?? word} under ${names.join(", ")}`)
    .join("; ");
}

function renderVerdicts(answer, schemes, elements) {
  const activation = activationText(answer.activation);
  const forward = verdictClauses(schemes, (verdict) => verdict.forward);
  const backward = verdictClauses(schemes, (verdict) => verdict.backward);
  elements.headline.textContent =
    `Through ${count(answer.depth, "layer")} of ${activation}, ${count(answer.width, "unit")} wide, ` +
    `the forward signal ${forward}.` +
    (backward ? ` The gradient, from the output down, ${backward}.` : "");

  fill(
    elements.verdicts,
    schemes.map(({ name, scheme, style, verdict }) => {
      const options = schemeOptions(scheme);
      const phase = verdict.phase;
      const item = el(
        "li",
        {
          "data-scheme": name,
          "data-forward": verdict.forward.verdict,
          "data-backward": verdict.backward ? verdict.backward.verdict : null,
          "data-phase": phase.phase,
        },
        [
          swatch(style),
          el("strong", { text: name }),
          options ? el("span", { class: "options", text: ` (${options})` }) : null,
          el("span", { class: "verdict-part" }, [
            "Forward: ",
            el("span", { class: `verdict verdict-${verdict.forward.verdict}`, text: verdict.forward.verdict }),
            el("span", { class: "reason", text: ` — ${verdict.forward.reason}.` }),
          ]),
          verdict.backward
            ? el("span", { class: "verdict-part" }, [
                "Backward: ",
                el("span", { class: `verdict verdict-${verdict.backward.verdict}`, text: verdict.backward.verdict }),
                el("span", { class: "reason", text: ` — ${verdict.backward.reason}.` }),
              ])
            : null,
          el("span", { class: "verdict-part" }, [
            "Phase: ",
            el("span", { class: `verdict phase-${phase.phase ?? "none"}`, text: phase.phase ?? "none" }),
            el("span", { class: "reason", text: ` — ${phase.reason}.` }),
          ]),
        ],
      );
      return item;
    }),
  );
}

function renderLegend(answer, schemes, legend) {
  const items = schemes.map(({ name, scheme, style }) => {
    const options = schemeOptions(scheme);
    return el("li", { "data-scheme": name }, [swatch(style), `${name}${options ? ` (${options})` : ""}`]);
  });
  // On a log axis a band whose mean − SD is not positive has no lower edge to
  // draw: bandPath runs it down to the axis, and the key says so.
  const reachesAxis = answer.series.some(
    (entry) => entry.monte_carlo && entry.monte_carlo.lower.some((value) => value !== null && value <= 0),
  );
  const axisNote = reachesAxis ? "; where mean − SD is 0 or less, the band runs down to the axis" : "";
  const simulatedOnly = answer.series.filter((entry) => entry.analytic === null).map((entry) => entry.scheme.name);
  const meanNote = simulatedOnly.length
    ? ` (${[...new Set(simulatedOnly)].join(", ")}: the Monte Carlo mean, as the notes below say)`
    : "";
  if (answer.method === "both") {
    items.push(
      el("li", { class: "band-key" }, [
        swatch({ color: "#555", dash: "", marker: "circle" }, { band: true, line: false }),
        `shaded band: Monte Carlo mean ± SD over ${answer.seeds} networks of width ${answer.width}; line: the analytic (infinite-width) value${meanNote}${axisNote}`,
      ]),
    );
  } else if (answer.method === "monte_carlo") {
    items.push(
      el("li", { class: "band-key" }, [
        swatch({ color: "#555", dash: "", marker: "circle" }, { band: true, line: false }),
        `line: Monte Carlo mean over ${answer.seeds} networks of width ${answer.width}; shaded band: ± SD${axisNote}`,
      ]),
    );
  } else {
    items.push(el("li", { class: "band-key" }, ["line: the analytic (infinite-width) value; no Monte Carlo"]));
  }
  fill(legend, items);
}

function renderChart(answer, schemes, direction, chartElement, tableElement) {
  const axis = answer[`${direction}_axis`];
  const styles = new Map(schemes.map(({ name, style }) => [name, style]));
  const series = answer.series
    .filter((entry) => entry.direction === direction)
    .map((entry) => {
      const analytic = entry.analytic !== null;
      const band = entry.monte_carlo;
      return {
        id: entry.scheme.name,
        label: entry.label,
        shortLabel: entry.scheme.name,
        style: styles.get(entry.scheme.name),
        values: analytic ? entry.analytic : band.mean,
        band: band ? { lower: band.lower, upper: band.upper } : null,
        data: {
          scheme: entry.scheme.name,
          direction,
          source: analytic ? "analytic" : "monte_carlo",
        },
      };
    });

  const summary = schemes
    .map(({ name, verdict }) => {
      const trend = verdict[direction];
      return trend ? `${name}: ${trend.verdict}, ${formatNumber(trend.ratio)}× end to end` : `${name}: no ${direction} values`;
    })
    .join("; ");
  const chart = lineChart({
    title: `${direction === "forward" ? "Forward" : "Backward"}: ${axis.label} per layer, log scale`,
    description: summary,
    width: 600,
    height: 380,
    margin: { top: 42, right: 118, left: 52 },
    x: { values: answer.x, label: `${answer.x_axis.label} (${answer.x_axis.unit})`, scale: "linear" },
    y: { label: axis.label, note: `${axis.unit}; log scale`, scale: "log", placement: "top" },
    series,
    directLabels: true,
  });
  chart.dataset.direction = direction;
  chartElement.replaceChildren(chart);

  const headers = ["layer"];
  const columns = [];
  for (const entry of answer.series.filter((s) => s.direction === direction)) {
    if (entry.analytic !== null) {
      headers.push(`${entry.scheme.name} analytic`);
      columns.push(entry.analytic);
    }
    if (entry.monte_carlo) {
      headers.push(`${entry.scheme.name} Monte Carlo mean`, `${entry.scheme.name} SD`);
      columns.push(entry.monte_carlo.mean, entry.monte_carlo.sd);
    }
  }
  const rows = answer.x.map((x, i) => [x, ...columns.map((column) => column[i])]);
  tableElement.replaceChildren(numbersTable(`${axis.label} (${axis.unit}) per layer`, headers, rows));
}
