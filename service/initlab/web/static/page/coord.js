// The second view: µP's coordinate check from POST /v1/mup/coord-check.
//
// A small MLP (32 → w → w → 10) is trained for a few steps at widths from 64
// up; one panel per parametrization and step shows each layer's mean |x|
// against width, both on log scales, so a flat line means the layer's size
// does not depend on width.

import { formatNumber, lineChart, logDomain, numbersTable, styleFor, swatch } from "./charts.js";
import { el, fill } from "./dom.js";

export const COORD_CHECK_PATH = "v1/mup/coord-check";
export const SMALLEST_WIDTH = 64;
// Small settings, so that a check takes a second or two on one core.
export const SEEDS = 2;
export const BATCH_SIZE = 32;

const NAMES = { sp: "SP", mup: "µP" };

/** The MLP the check trains: 32 inputs, two hidden layers of width w, 10 outputs. */
export function coordSpec(activation) {
  return {
    dims: { d_in: 32, w: SMALLEST_WIDTH, n_out: 10 },
    layers: [
      { kind: "linear", name: "fc1", in: "d_in", out: "w", activation },
      { kind: "linear", name: "fc2", in: "w", out: "w", activation },
      { kind: "linear", name: "readout", in: "w", out: "n_out" },
    ],
  };
}

/** Powers of two from the base width up to `largest`. */
export function widthsUpTo(largest) {
  const widths = [];
  for (let width = SMALLEST_WIDTH; width <= largest; width *= 2) {
    widths.push(width);
  }
  return widths;
}

/** The request body as the form sets it. */
export function coordBody(form) {
  const data = new FormData(form);
  const number = (name) => {
    const text = String(data.get(name)).trim();
    return text === "" ? null : Number(text);
  };
  return {
    spec: coordSpec(data.get("activation")),
    base_dims: { w: SMALLEST_WIDTH },
    widths: widthsUpTo(Number(data.get("largest"))),
    optimizer: data.get("optimizer"),
    lr: number("lr"),
    steps: number("steps"),
    seeds: SEEDS,
    batch_size: BATCH_SIZE,
  };
}

export function clearCoord(elements) {
  for (const key of ["summaries", "legend", "panels", "table", "notes"]) {
    elements[key].replaceChildren();
  }
}

/** Draw the answer: verdicts, the panel grid and the numbers. */
export function renderCoord(answer, elements) {
  const layerNames = answer.parametrizations[0].layers.map((layer) => layer.name);
  const styles = new Map(layerNames.map((name, i) => [name, styleFor(i)]));

  fill(
    elements.summaries,
    answer.parametrizations.map((p) =>
      el("li", { "data-parametrization": p.name, "data-hidden-flat": String(p.hidden_flat) }, [
        // The summary names its parametrization ("SP: 1 of 1 hidden layers not flat …").
        el("span", { class: `verdict ${p.hidden_flat ? "verdict-stable" : "verdict-exploding"}`, text: p.hidden_flat ? "flat" : "not flat" }),
        el("span", { text: ` ${p.summary}` }),
      ]),
    ),
  );
  elements.summaries.append(el("li", { class: "layer-verdicts" }, [verdictTable(answer)]));

  const first = answer.parametrizations[0].layers[0];
  fill(
    elements.legend,
    first
      ? answer.parametrizations[0].layers.map((layer) =>
          el("li", { "data-layer": layer.name }, [swatch(styles.get(layer.name)), `${layer.name} (${layer.role} layer)`]),
        )
      : [],
  );

  const all = [];
  for (const p of answer.parametrizations) {
    for (const layer of p.layers) {
      for (const row of layer.mean) {
        all.push(...row);
      }
    }
  }
  const yDomain = logDomain(all);
  const xDomain = [answer.widths[0] / 1.3, answer.widths[answer.widths.length - 1] * 1.3];
  const every = Math.ceil(answer.widths.length / 4);
  const xTicks = answer.widths
    .filter((_, i) => (answer.widths.length - 1 - i) % every === 0)
    .map((value) => ({ value, label: String(value) }));

  const grid = el("div", {
    class: "panel-grid",
    style: null,
    "data-steps": JSON.stringify(answer.steps),
    "data-widths": JSON.stringify(answer.widths),
  });
  grid.style.setProperty("--columns", String(answer.steps.length));
  answer.parametrizations.forEach((p, row) => {
    grid.append(el("p", { class: "row-heading", text: NAMES[p.name] }));
    answer.steps.forEach((step, s) => {
      const heading = `${NAMES[p.name]}, t = ${step}${step === 1 ? " (init)" : ""}`;
      const lastRow = row === answer.parametrizations.length - 1;
      const chart = lineChart({
        title: `${heading}: mean |x| against width`,
        description: p.layers
          .map((layer) => `${layer.name} slope ${formatNumber(layer.slopes[s], 2)}`)
          .join("; "),
        width: 250,
        height: 210,
        margin: { top: 10, right: 10, bottom: lastRow ? 44 : 26, left: s === 0 ? 58 : 44 },
        x: {
          values: answer.widths,
          label: answer.axes?.x?.label ?? "width",
          scale: "log2",
          domain: xDomain,
          ticks: xTicks,
          showLabel: lastRow,
        },
        y: { label: answer.axes?.y?.label ?? "mean |x|", scale: "log", domain: yDomain, showLabel: s === 0 },
        series: p.layers.map((layer) => ({
          id: layer.name,
          label: `${layer.name} (${layer.role})`,
          style: styles.get(layer.name),
          values: layer.mean[s],
          data: { layer: layer.name, role: layer.role, slope: layer.slopes[s] ?? "null" },
        })),
      });
      grid.append(
        el("figure", { class: "panel", "data-parametrization": p.name, "data-step": String(step) }, [
          el("figcaption", { text: heading }),
          chart,
        ]),
      );
    });
  });
  elements.panels.replaceChildren(grid);

  const headers = ["parametrization, layer, step", ...answer.widths.map((w) => `width ${w}`)];
  const rows = [];
  for (const p of answer.parametrizations) {
    for (const layer of p.layers) {
      answer.steps.forEach((step, s) => {
        rows.push([`${NAMES[p.name]}, ${layer.name}, t = ${step}`, ...layer.mean[s]]);
      });
    }
  }
  elements.table.replaceChildren(numbersTable("mean |x| of each layer's output, averaged over seeds", headers, rows));
  fill(elements.notes, [el("li", { text: answer.data }), ...answer.notes.map((note) => el("li", { text: note }))]);
}

function verdictTable(answer) {
  const headers = ["layer", ...answer.parametrizations.map((p) => `${NAMES[p.name]}: verdict (slope at each t)`)];
  const rows = answer.parametrizations[0].layers.map((layer, index) => [
    `${layer.name} (${layer.role})`,
    ...answer.parametrizations.map((p) => {
      const same = p.layers[index];
      const slopes = same.slopes.map((slope) => formatNumber(slope, 2)).join(", ");
      return `${same.verdict} (${slopes})`;
    }),
  ]);
  const table = numbersTable(
    "Slope of log₂ mean |x| against log₂ width, per layer; flat means |slope| < 0.1 at every t ≥ 2",
    headers,
    rows,
  );
  table.classList.add("verdict-table");
  return table;
}
