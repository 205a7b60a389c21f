// The phase diagram: GET /v1/visualizations/phase-diagram as ordered and
// chaotic regions over (σ_w², σ_b²), the edge of chaos, and the point where
// each compared scheme puts the stack (from the propagation answer's phases).

import { queryUrl } from "./api.js";
import { formatNumber, linearTicks, makeScale, markerPath, svg, swatch } from "./charts.js";
import { activationText, el, fill } from "./dom.js";

export const PHASE_PATH = "v1/visualizations/phase-diagram";

// The grid stretches to show the schemes' points up to this σ_w²; points
// further out are marked at the edge with their value.
const LARGEST_GRID_SIGMA_W2 = 16;
const LARGEST_GRID_SIGMA_B2 = 10;
const SIGMA_W2_STEPS = 40;
const SIGMA_B2_STEPS = 26;

const FILLS = { ordered: "#d7e8f6", chaotic: "#fde0c8", critical: "#8c959f" };

/** The schemes' (σ_w², σ_b²) points, from the propagation answer's phases. */
export function phasePoints(schemes) {
  return schemes
    .filter(({ verdict }) => verdict.phase.homogeneous && verdict.phase.sigma_w2 !== null)
    .map(({ name, style, verdict }) => ({
      name,
      style,
      sigmaW2: verdict.phase.sigma_w2,
      sigmaB2: verdict.phase.sigma_b2,
      phase: verdict.phase.phase,
      chi1: verdict.phase.chi_1,
    }));
}

/** The diagram's query: a grid from 0 that holds the points, within bounds. */
export function phaseQuery(activation, points, chosenSigmaB2) {
  const inReach = points.map((p) => p.sigmaW2).filter((w) => w <= LARGEST_GRID_SIGMA_W2);
  const widest = Math.max(0, ...inReach);
  const sigmaW2Max = widest <= 3.6 ? 4 : Math.min(LARGEST_GRID_SIGMA_W2, Math.ceil(widest * 1.15));
  const biases = [chosenSigmaB2, ...points.map((p) => p.sigmaB2)].filter(
    (b) => Number.isFinite(b) && b <= LARGEST_GRID_SIGMA_B2,
  );
  const sigmaB2Max = Math.max(0.5, roundUp(1.2 * Math.max(0, ...biases)));
  return {
    activation,
    sigma_w2_min: sigmaW2Max / SIGMA_W2_STEPS,
    sigma_w2_max: sigmaW2Max,
    sigma_w2_steps: SIGMA_W2_STEPS,
    sigma_b2_min: 0,
    sigma_b2_max: sigmaB2Max,
    sigma_b2_steps: SIGMA_B2_STEPS,
  };
}

function roundUp(value) {
  if (value <= 0) {
    return 0;
  }
  const power = 10 ** Math.floor(Math.log10(value));
  return Math.ceil(value / power) * power;
}

export function phaseUrl(query) {
  return queryUrl(PHASE_PATH, query);
}

/** Cell edges that tile [low, high] around evenly spaced centres. */
function cellEdges(centres, low, high) {
  return centres.map((centre, i) => [
    i === 0 ? low : (centres[i - 1] + centre) / 2,
    i === centres.length - 1 ? high : (centre + centres[i + 1]) / 2,
  ]);
}

export function clearPhase(elements) {
  for (const key of ["chart", "legend", "points"]) {
    elements[key].replaceChildren();
  }
  elements.caption.textContent = "Phase diagram: nothing drawn for these settings.";
}

/** Draw the diagram with the points on it. */
export function renderPhase(answer, points, elements) {
  const width = 640;
  const height = 400;
  const left = 64;
  const right = width - 24;
  const top = 14;
  const bottom = height - 50;
  const xDomain = [0, answer.sigma_w2[answer.sigma_w2.length - 1]];
  const yDomain = [0, Math.max(answer.sigma_b2[answer.sigma_b2.length - 1], 1e-9)];
  const x = makeScale("linear", xDomain, [left, right]);
  const y = makeScale("linear", yDomain, [bottom, top]);
  const activation = activationText(answer.activation);

  const root = svg("svg", {
    viewBox: `0 0 ${width} ${height}`,
    role: "img",
    "aria-labelledby": "phase-svg-title phase-svg-desc",
    class: "phase-chart",
    "data-activation": answer.activation.name,
    "data-plot": JSON.stringify([left, top, right, bottom]),
    "data-x-domain": JSON.stringify(xDomain),
    "data-y-domain": JSON.stringify(yDomain),
    "data-edge": JSON.stringify(answer.edge.map((p) => [p.sigma_w2, p.sigma_b2])),
  });
  const title = svg("title", { id: "phase-svg-title" });
  title.textContent = `Phase diagram of a deep ${activation} network over σ_w² and σ_b²`;
  const description = svg("desc", { id: "phase-svg-desc" });
  description.textContent = describe(answer, points);
  root.append(title, description);

  const hatch = svg("pattern", {
    id: "phase-hatch",
    width: 7,
    height: 7,
    patternUnits: "userSpaceOnUse",
    patternTransform: "rotate(45)",
  });
  hatch.append(svg("line", { x1: 0, y1: 0, x2: 0, y2: 7, stroke: "#b5541c", "stroke-width": 1.3, "stroke-opacity": 0.45 }));
  root.append(svg("defs", {}, [hatch]));

  root.append(regions(answer, x, y, xDomain, yDomain));
  root.append(axes(x, y, { left, right, top, bottom, height }, answer));
  const placer = new LabelPlacer({ top, bottom });
  const edge = edgeOfChaos(answer, x, y, placer);
  root.append(pointMarks(points, x, y, xDomain, yDomain, { left, right, top, bottom }, placer));
  root.append(edge);

  elements.chart.replaceChildren(root);
  elements.caption.textContent =
    `Phases of a deep ${activation} stack over σ_w² (x) and σ_b² (y), ` +
    `with the edge of chaos and the compared schemes`;
  fill(elements.legend, legendItems(answer.phase.some((row) => row.includes("critical"))));
  fill(
    elements.points,
    points.map((p) => {
      const off = p.sigmaW2 > xDomain[1] || p.sigmaB2 > yDomain[1];
      return el("li", { "data-scheme": p.name }, [
        swatch(p.style),
        el("strong", { text: p.name }),
        `: σ_w² = ${formatNumber(p.sigmaW2)}, σ_b² = ${formatNumber(p.sigmaB2)}, ` +
          `${p.phase ?? "no phase"} (χ₁ = ${formatNumber(p.chi1)})${off ? "; beyond the drawn grid" : ""}`,
      ]);
    }),
  );
}

function describe(answer, points) {
  const edge = answer.edge.length
    ? `The edge of chaos runs from σ_w² = ${formatNumber(answer.edge[0].sigma_w2)} at σ_b² = ${formatNumber(answer.edge[0].sigma_b2)}` +
      (answer.edge.length > 1
        ? ` to σ_w² = ${formatNumber(answer.edge[answer.edge.length - 1].sigma_w2)} at σ_b² = ${formatNumber(answer.edge[answer.edge.length - 1].sigma_b2)}.`
        : ".")
    : "The grid holds no point of the edge of chaos.";
  const where = points.map((p) => `${p.name} is ${p.phase ?? "without a phase"} at σ_w² = ${formatNumber(p.sigmaW2)}`).join("; ");
  return `Ordered phase at small σ_w², chaotic at large. ${edge} ${where}.`;
}

function regions(answer, x, y, xDomain, yDomain) {
  const group = svg("g", { class: "regions" });
  const columns = cellEdges(answer.sigma_w2, xDomain[0], xDomain[1]);
  const rows = cellEdges(answer.sigma_b2, yDomain[0], yDomain[1]);
  const sums = {};
  answer.phase.forEach((row, i) => {
    const [b0, b1] = rows[i];
    let start = 0;
    for (let j = 1; j <= row.length; j += 1) {
      if (j < row.length && row[j] === row[start]) {
        continue;
      }
      const phase = row[start];
      const x0 = x(columns[start][0]);
      const x1 = x(columns[j - 1][1]);
      const y0 = y(b1);
      const y1 = y(b0);
      const attributes = { x: x0.toFixed(2), y: y0.toFixed(2), width: (x1 - x0).toFixed(2), height: (y1 - y0).toFixed(2) };
      group.append(svg("rect", { ...attributes, fill: FILLS[phase], class: `cell phase-${phase}`, "data-phase": phase }));
      if (phase === "chaotic") {
        group.append(svg("rect", { ...attributes, fill: "url(#phase-hatch)" }));
      }
      const weight = (x1 - x0) * (y1 - y0);
      const sum = (sums[phase] ||= { x: 0, y: 0, weight: 0 });
      sum.x += ((x0 + x1) / 2) * weight;
      sum.y += ((y0 + y1) / 2) * weight;
      sum.weight += weight;
      start = j;
    }
  });
  const names = { ordered: "ordered · χ₁ < 1", chaotic: "chaotic · χ₁ > 1" };
  for (const [phase, text] of Object.entries(names)) {
    const sum = sums[phase];
    if (!sum || sum.weight <= 0) {
      continue;
    }
    const label = svg("text", {
      x: (sum.x / sum.weight).toFixed(1),
      y: (sum.y / sum.weight).toFixed(1),
      "text-anchor": "middle",
      class: "region-label",
    });
    label.textContent = text;
    group.append(label);
  }
  return group;
}

function axes(x, y, box, answer) {
  const group = svg("g", { class: "axes" });
  for (const tick of linearTicks(x.domain, 8)) {
    const px = x(tick.value);
    group.append(svg("line", { x1: px, x2: px, y1: box.bottom, y2: box.bottom + 5, class: "tick-mark" }));
    const label = svg("text", { x: px, y: box.bottom + 18, "text-anchor": "middle", class: "tick" });
    label.textContent = formatNumber(tick.value);
    group.append(label);
  }
  for (const tick of linearTicks(y.domain, 5)) {
    const py = y(tick.value);
    group.append(svg("line", { x1: box.left - 5, x2: box.left, y1: py, y2: py, class: "tick-mark" }));
    const label = svg("text", { x: box.left - 8, y: py + 4, "text-anchor": "end", class: "tick" });
    label.textContent = formatNumber(tick.value);
    group.append(label);
  }
  group.append(
    svg("path", {
      d: `M${box.left} ${box.top}V${box.bottom}H${box.right}`,
      class: "axis-line",
      fill: "none",
    }),
  );
  const xLabel = svg("text", { x: (box.left + box.right) / 2, y: box.height - 10, "text-anchor": "middle", class: "axis-label" });
  xLabel.textContent = `${answer.x_axis.label} (${answer.x_axis.unit})`;
  const middle = (box.top + box.bottom) / 2;
  const yLabel = svg("text", {
    x: 14,
    y: middle,
    transform: `rotate(-90 14 ${middle})`,
    "text-anchor": "middle",
    class: "axis-label",
  });
  yLabel.textContent = `${answer.y_axis.label} (${answer.y_axis.unit})`;
  group.append(xLabel, yLabel);
  return group;
}

/**
 * Labels that do not overlap: each is tried at its wished height, then moved
 * up one line at a time (down when it reaches the top) until it is clear of
 * the labels placed before it. Widths are estimated from the character count.
 */
class LabelPlacer {
  constructor(box) {
    this.box = box;
    this.placed = [];
  }

  place(text, anchorX, wishedY, toLeft) {
    const width = text.length * 7.4 + 8;
    const x0 = toLeft ? anchorX - width : anchorX;
    let y = Math.min(this.box.bottom - 6, Math.max(this.box.top + 12, wishedY));
    let step = -15;
    for (let tries = 0; tries < 40 && this.overlaps(x0, width, y); tries += 1) {
      if (y + step < this.box.top + 12) {
        step = 15;
        y = wishedY;
      }
      y += step;
    }
    this.placed.push({ x0, width, y });
    return y;
  }

  overlaps(x0, width, y) {
    return this.placed.some(
      (other) => x0 < other.x0 + other.width && other.x0 < x0 + width && Math.abs(other.y - y) < 14,
    );
  }
}

function edgeOfChaos(answer, x, y, placer) {
  const group = svg("g", { class: "edge" });
  const points = answer.edge.map((p) => [x(p.sigma_w2), y(p.sigma_b2)]);
  if (points.length === 0) {
    return group;
  }
  if (points.length === 1) {
    const [px, py] = points[0];
    group.append(svg("circle", { cx: px, cy: py, r: 5, class: "edge-line", fill: "none" }));
  } else {
    group.append(
      svg("path", {
        d: `M${points.map(([px, py]) => `${px.toFixed(2)} ${py.toFixed(2)}`).join("L")}`,
        class: "edge-line",
        fill: "none",
      }),
    );
  }
  // Labelled at its upper end, away from the scheme points near σ_b² = 0.
  const [lx, ly] = points[points.length - 1];
  const toLeft = lx > (x.range[0] + x.range[1]) / 2;
  const text = "edge of chaos, χ₁ = 1";
  const anchorX = toLeft ? lx - 10 : lx + 10;
  const label = svg("text", {
    x: anchorX,
    y: placer.place(text, anchorX, points.length === 1 ? ly - 44 : ly + 16, toLeft),
    "text-anchor": toLeft ? "end" : "start",
    class: "edge-label",
  });
  label.textContent = text;
  group.append(label);
  return group;
}

function pointMarks(points, x, y, xDomain, yDomain, box, placer) {
  const group = svg("g", { class: "scheme-points" });
  // Schemes at the same point (xavier_normal, lecun_normal and orthogonal on a
  // square layer) share one label.
  const places = new Map();
  for (const p of points) {
    const key = `${p.sigmaW2.toPrecision(6)}|${p.sigmaB2.toPrecision(6)}`;
    places.set(key, [...(places.get(key) || []), p]);
  }
  for (const members of places.values()) {
    const p = members[0];
    const beyondX = p.sigmaW2 > xDomain[1];
    const beyondY = p.sigmaB2 > yDomain[1];
    const px = beyondX ? box.right - 8 : x(p.sigmaW2);
    const py = beyondY ? box.top + 8 : y(p.sigmaB2);
    members.forEach((member, k) => {
      const mark = svg("path", {
        d: markerPath(member.style.marker, px + k * 3, py - k * 3, 5.5),
        fill: "#fff",
        stroke: member.style.color,
        "stroke-width": 2,
        class: "scheme-point",
        "data-scheme": member.name,
        "data-sigma-w2": member.sigmaW2,
        "data-sigma-b2": member.sigmaB2,
        "data-beyond": beyondX || beyondY ? "true" : null,
      });
      const tip = svg("title");
      tip.textContent = `${member.name}: σ_w² = ${formatNumber(member.sigmaW2)}, σ_b² = ${formatNumber(member.sigmaB2)}`;
      mark.append(tip);
      group.append(mark);
    });
    let text = members.map((member) => member.name).join(", ");
    if (beyondX) {
      text += ` (σ_w² = ${formatNumber(p.sigmaW2)}) →`;
    }
    if (beyondY) {
      text += ` (σ_b² = ${formatNumber(p.sigmaB2)}) ↑`;
    }
    const toLeft = px > box.left + (box.right - box.left) * 0.6;
    const anchorX = toLeft ? px - 10 : px + 10;
    const label = svg("text", {
      x: anchorX,
      y: placer.place(text, anchorX, py - 10, toLeft),
      "text-anchor": toLeft ? "end" : "start",
      class: "point-label",
      fill: p.style.color,
    });
    label.textContent = text;
    group.append(label);
  }
  return group;
}

function legendItems(withCritical) {
  const key = (fillColour, hatched) => {
    const image = svg("svg", { width: 36, height: 14, viewBox: "0 0 36 14", "aria-hidden": "true", class: "swatch" });
    image.append(svg("rect", { x: 1, y: 1, width: 34, height: 12, fill: fillColour, stroke: "#888", "stroke-width": 0.5 }));
    if (hatched) {
      image.append(svg("rect", { x: 1, y: 1, width: 34, height: 12, fill: "url(#phase-hatch)" }));
    }
    return image;
  };
  const edge = svg("svg", { width: 36, height: 14, viewBox: "0 0 36 14", "aria-hidden": "true", class: "swatch" });
  edge.append(svg("path", { d: "M1 7H35", class: "edge-line", fill: "none" }));
  return [
    el("li", {}, [key(FILLS.ordered, false), "ordered phase (χ₁ < 1): plain"]),
    el("li", {}, [key(FILLS.chaotic, true), "chaotic phase (χ₁ > 1): hatched"]),
    withCritical ? el("li", {}, [key(FILLS.critical, false), "critical (χ₁ within 1e-6 of 1): grey"]) : null,
    el("li", {}, [edge, "edge of chaos (χ₁ = 1): thick line"]),
    el("li", {}, ["Each compared scheme: its marker from the charts above, with its name"]),
  ];
}
