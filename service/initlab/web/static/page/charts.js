// Line charts in plain SVG: scales, axes, lines with markers, bands, labels.
//
// Every chart is drawn in a fixed viewBox and scaled by CSS. The SVG carries
// what a reader (or a test) needs to recover the numbers from the drawing:
// data-plot = [left, top, right, bottom] of the plot area in viewBox units,
// data-x-domain and data-y-domain (the values at its edges), data-x-scale and
// data-y-scale (linear, log or log2), and on every line data-values, the
// values it was drawn from, one per x (null where nothing is drawn).

const SVG_NS = "http://www.w3.org/2000/svg";

// Okabe & Ito's colour-blind-safe palette, each colour paired with its own
// dash pattern and marker, so no curve is told from another by colour alone.
export const STYLES = [
  { color: "#0072B2", dash: "", marker: "circle" },
  { color: "#D55E00", dash: "7 4", marker: "square" },
  { color: "#009E73", dash: "2 3", marker: "triangle" },
  { color: "#CC79A7", dash: "10 3 2 3", marker: "diamond" },
  { color: "#8a6d00", dash: "4 2", marker: "cross" },
  { color: "#56B4E9", dash: "1 2", marker: "plus" },
  { color: "#000000", dash: "12 4", marker: "triangleDown" },
  { color: "#6b4aa0", dash: "5 2 1 2", marker: "star" },
];

export function styleFor(index) {
  return STYLES[index % STYLES.length];
}

/** An SVG element with attributes (null and undefined are left out). */
export function svg(tag, attributes = {}, children = []) {
  const element = document.createElementNS(SVG_NS, tag);
  for (const [name, value] of Object.entries(attributes)) {
    if (value !== null && value !== undefined) {
      element.setAttribute(name, String(value));
    }
  }
  for (const child of children) {
    element.append(child);
  }
  return element;
}

const SUPERSCRIPTS = { "-": "⁻", 0: "⁰", 1: "¹", 2: "²", 3: "³", 4: "⁴", 5: "⁵", 6: "⁶", 7: "⁷", 8: "⁸", 9: "⁹" };

function superscript(integer) {
  return String(integer)
    .split("")
    .map((character) => SUPERSCRIPTS[character] ?? character)
    .join("");
}

/** A number for people: 4 significant digits, powers of ten beyond 1e5 or under 1e-3. */
export function formatNumber(value, digits = 4) {
  if (value === null || value === undefined) {
    return "—";
  }
  if (!Number.isFinite(value)) {
    return String(value);
  }
  if (value === 0) {
    return "0";
  }
  const magnitude = Math.abs(value);
  if (magnitude >= 1e-3 && magnitude < 1e5) {
    return String(Number(value.toPrecision(digits)));
  }
  const [mantissa, exponent] = value.toExponential(digits - 1).split("e");
  const shortMantissa = String(Number(mantissa));
  const power = `10${superscript(Number(exponent))}`;
  return shortMantissa === "1" ? power : `${shortMantissa}×${power}`;
}

function finitePositive(value) {
  return typeof value === "number" && Number.isFinite(value) && value > 0;
}

/** A scale: value → viewBox coordinate, over `domain` onto `range`. */
export function makeScale(kind, domain, range) {
  const transform = kind === "log" ? Math.log10 : kind === "log2" ? Math.log2 : (v) => v;
  const [d0, d1] = domain.map(transform);
  const [r0, r1] = range;
  const span = d1 - d0 || 1;
  const scale = (value) => r0 + ((transform(value) - d0) / span) * (r1 - r0);
  scale.kind = kind;
  scale.domain = domain;
  scale.range = range;
  scale.accepts = kind === "linear" ? Number.isFinite : finitePositive;
  return scale;
}

/** Whole decades around the positive values; at least one decade wide. */
export function logDomain(values) {
  const positive = values.filter(finitePositive);
  if (positive.length === 0) {
    return [0.1, 10];
  }
  let low = Math.floor(Math.log10(Math.min(...positive)));
  let high = Math.ceil(Math.log10(Math.max(...positive)));
  if (high === low) {
    low -= 1;
    high += 1;
  }
  return [10 ** low, 10 ** high];
}

/** Ticks of a log axis: decades (every k-th when there are many), 2 and 5 when few. */
export function logTicks(domain) {
  const low = Math.round(Math.log10(domain[0]));
  const high = Math.round(Math.log10(domain[1]));
  const decades = high - low;
  // Round steps, and labels at multiples of them: 10⁰, 10¹⁰, 10²⁰ rather than 10⁻⁶, 10², 10¹⁰.
  const step = [1, 2, 3, 5, 10, 20, 25, 50, 100].find((s) => s >= decades / 6) ?? Math.ceil(decades / 6);
  const ticks = [];
  for (let power = low; power <= high; power += 1) {
    if (power % step === 0) {
      ticks.push({ value: 10 ** power, power });
    }
    if (decades <= 2 && power < high) {
      ticks.push({ value: 2 * 10 ** power, minor: true });
      ticks.push({ value: 5 * 10 ** power, minor: true });
    }
  }
  return ticks;
}

/** About `count` round ticks over a linear domain. */
export function linearTicks(domain, count = 6) {
  const [low, high] = domain;
  const raw = (high - low) / Math.max(1, count);
  if (!(raw > 0)) {
    return [{ value: low }];
  }
  const power = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 2.5, 5, 10].map((m) => m * power).find((s) => s >= raw) ?? 10 * power;
  const ticks = [];
  for (let value = Math.ceil(low / step - 1e-9) * step; value <= high + step * 1e-9; value += step) {
    ticks.push({ value: Number(value.toPrecision(12)) });
  }
  return ticks;
}

function tickLabel(tick, parent, attributes) {
  const text = svg("text", attributes);
  if (tick.power !== undefined) {
    text.append("10");
    const exponent = svg("tspan", { dy: -6, "font-size": "0.75em" });
    exponent.textContent = String(tick.power).replace("-", "−");
    text.append(exponent);
  } else {
    text.textContent = tick.label ?? formatNumber(tick.value);
  }
  parent.append(text);
}

/** The marker `shape` centred at (x, y), as path data. */
export function markerPath(shape, x, y, r = 3.5) {
  const f = (v) => v.toFixed(2);
  switch (shape) {
    case "square":
      return `M${f(x - r)} ${f(y - r)}h${f(2 * r)}v${f(2 * r)}h${f(-2 * r)}Z`;
    case "triangle":
      return `M${f(x)} ${f(y - r * 1.2)}L${f(x + r * 1.1)} ${f(y + r * 0.8)}L${f(x - r * 1.1)} ${f(y + r * 0.8)}Z`;
    case "triangleDown":
      return `M${f(x)} ${f(y + r * 1.2)}L${f(x + r * 1.1)} ${f(y - r * 0.8)}L${f(x - r * 1.1)} ${f(y - r * 0.8)}Z`;
    case "diamond":
      return `M${f(x)} ${f(y - r * 1.3)}L${f(x + r)} ${f(y)}L${f(x)} ${f(y + r * 1.3)}L${f(x - r)} ${f(y)}Z`;
    case "cross":
      return `M${f(x - r)} ${f(y - r)}L${f(x + r)} ${f(y + r)}M${f(x + r)} ${f(y - r)}L${f(x - r)} ${f(y + r)}`;
    case "plus":
      return `M${f(x - r * 1.2)} ${f(y)}h${f(2.4 * r)}M${f(x)} ${f(y - r * 1.2)}v${f(2.4 * r)}`;
    case "star":
      return `${markerPath("plus", x, y, r)}${markerPath("cross", x, y, r * 0.8)}`;
    default:
      return `M${f(x - r)} ${f(y)}a${f(r)} ${f(r)} 0 1 0 ${f(2 * r)} 0a${f(r)} ${f(r)} 0 1 0 ${f(-2 * r)} 0Z`;
  }
}

const OPEN_MARKERS = new Set(["cross", "plus", "star"]);

/** A small inline SVG showing a style's line, dash and marker: a legend key. */
export function swatch(style, { band = false, line = true } = {}) {
  const key = svg("svg", {
    width: 36,
    height: 14,
    viewBox: "0 0 36 14",
    "aria-hidden": "true",
    class: "swatch",
  });
  if (band) {
    key.append(svg("rect", { x: 1, y: 2, width: 34, height: 10, fill: style.color, "fill-opacity": 0.18 }));
  }
  if (line) {
    key.append(
      svg("path", {
        d: "M1 7H35",
        stroke: style.color,
        "stroke-width": 2,
        "stroke-dasharray": style.dash || null,
        fill: "none",
      }),
    );
    key.append(markerShape(style, 18, 7));
  }
  return key;
}

function markerShape(style, x, y) {
  const open = OPEN_MARKERS.has(style.marker);
  return svg("path", {
    d: markerPath(style.marker, x, y),
    fill: open ? "none" : "#fff",
    stroke: style.color,
    "stroke-width": open ? 1.6 : 1.4,
    class: "marker",
  });
}

/** Path data through the points, broken where a value cannot be drawn. */
function linePath(xs, values, xScale, yScale) {
  const parts = [];
  let drawing = false;
  values.forEach((value, i) => {
    if (value === null || !yScale.accepts(value)) {
      drawing = false;
      return;
    }
    const command = drawing ? "L" : "M";
    parts.push(`${command}${xScale(xs[i]).toFixed(2)} ${yScale(value).toFixed(2)}`);
    drawing = true;
  });
  return parts.join("");
}

/** The band between lower and upper; a bound the scale cannot show is put at the axis. */
function bandPath(xs, lower, upper, xScale, yScale) {
  const [bottom, top] = yScale.range;
  const place = (value, fallback) => (value !== null && yScale.accepts(value) ? yScale(value) : fallback);
  const edge = [];
  const back = [];
  xs.forEach((x, i) => {
    if (upper[i] === null || !yScale.accepts(upper[i])) {
      return;
    }
    const px = xScale(x).toFixed(2);
    edge.push(`${px} ${Math.max(top, place(upper[i], top)).toFixed(2)}`);
    back.unshift(`${px} ${Math.min(bottom, place(lower[i], bottom)).toFixed(2)}`);
  });
  if (edge.length === 0) {
    return "";
  }
  return `M${edge.join("L")}L${back.join("L")}Z`;
}

/** Move label positions apart so that neighbours are at least `gap` apart. */
function spread(positions, gap, low, high) {
  const order = positions.map((y, i) => ({ y, i })).sort((a, b) => a.y - b.y);
  for (let k = 1; k < order.length; k += 1) {
    order[k].y = Math.max(order[k].y, order[k - 1].y + gap);
  }
  const overflow = order.length ? order[order.length - 1].y - high : 0;
  if (overflow > 0) {
    for (const item of order) {
      item.y -= overflow;
    }
    for (let k = order.length - 2; k >= 0; k -= 1) {
      order[k].y = Math.min(order[k].y, order[k + 1].y - gap);
    }
  }
  const placed = new Array(positions.length);
  for (const item of order) {
    placed[item.i] = Math.max(low, item.y);
  }
  return placed;
}

let chartCount = 0;

/**
 * A line chart.
 *
 * options: { title, description, width, height, margin: {top, right, bottom, left},
 *   x: { values, label, scale, domain?, ticks? },
 *   y: { label, scale, domain?, showLabel?, placement?: "top", note? },
 *   series: [{ id, label, style, values, band?: { lower, upper }, data?: {...} }],
 *   directLabels, markers }
 */
export function lineChart(options) {
  chartCount += 1;
  const id = `chart-${chartCount}`;
  const width = options.width ?? 560;
  const height = options.height ?? 360;
  const margin = { top: 14, right: 16, bottom: 48, left: 64, ...(options.margin || {}) };
  const left = margin.left;
  const top = margin.top;
  const right = width - margin.right;
  const bottom = height - margin.bottom;
  const xs = options.x.values;

  const xDomain = options.x.domain ?? paddedLinear(xs);
  const xScale = makeScale(options.x.scale, xDomain, [left, right]);
  const yDomain = options.y.domain ?? yDomainFor(options.y.scale, options.series);
  const yScale = makeScale(options.y.scale, yDomain, [bottom, top]);

  const root = svg("svg", {
    viewBox: `0 0 ${width} ${height}`,
    role: "img",
    "aria-labelledby": `${id}-title ${id}-desc`,
    class: "line-chart",
    "data-plot": JSON.stringify([left, top, right, bottom]),
    "data-x-scale": options.x.scale,
    "data-y-scale": options.y.scale,
    "data-x-domain": JSON.stringify(xDomain),
    "data-y-domain": JSON.stringify(yDomain),
    "data-x-values": JSON.stringify(xs),
  });
  const title = svg("title", { id: `${id}-title` });
  title.textContent = options.title;
  const description = svg("desc", { id: `${id}-desc` });
  description.textContent = options.description ?? "";
  root.append(title, description);

  const clip = svg("clipPath", { id: `${id}-clip` }, [
    svg("rect", { x: left, y: top - 4, width: right - left, height: bottom - top + 8 }),
  ]);
  root.append(svg("defs", {}, [clip]));

  drawGrid(root, { xScale, yScale, left, right, top, bottom, xTicks: options.x.ticks });
  drawAxisLabels(root, options, { left, right, top, bottom, width, height });

  const plot = svg("g", { "clip-path": `url(#${id}-clip)`, class: "plot" });
  root.append(plot);
  options.series.forEach((series) => {
    if (series.band) {
      const d = bandPath(xs, series.band.lower, series.band.upper, xScale, yScale);
      plot.append(
        svg("path", {
          d,
          fill: series.style.color,
          "fill-opacity": 0.16,
          stroke: "none",
          class: "series-band",
          "data-series": series.id,
          "data-lower": JSON.stringify(series.band.lower),
          "data-upper": JSON.stringify(series.band.upper),
        }),
      );
    }
  });
  const markerStep = Math.max(1, Math.ceil(xs.length / 12));
  options.series.forEach((series, index) => {
    const group = svg("g", { class: "series", "data-series": series.id });
    const attributes = {
      d: linePath(xs, series.values, xScale, yScale),
      fill: "none",
      stroke: series.style.color,
      "stroke-width": 2,
      "stroke-dasharray": series.style.dash || null,
      "stroke-linejoin": "round",
      class: "series-line",
      "data-series": series.id,
      "data-label": series.label,
      "data-values": JSON.stringify(series.values),
    };
    for (const [name, value] of Object.entries(series.data || {})) {
      attributes[`data-${name}`] = value;
    }
    group.append(svg("path", attributes));
    if (options.markers !== false) {
      const offset = index % markerStep;
      series.values.forEach((value, i) => {
        const due = (i - offset) % markerStep === 0 || i === series.values.length - 1;
        if (!due || value === null || !yScale.accepts(value)) {
          return;
        }
        group.append(markerShape(series.style, xScale(xs[i]), yScale(value)));
      });
    }
    plot.append(group);
  });

  if (options.directLabels) {
    drawDirectLabels(root, options.series, xs, xScale, yScale, { right, top, bottom });
  }
  return root;
}

function paddedLinear(xs) {
  const low = Math.min(...xs);
  const high = Math.max(...xs);
  return low === high ? [low - 0.5, high + 0.5] : [low, high];
}

function yDomainFor(kind, seriesList) {
  const lines = [];
  const bounds = [];
  for (const series of seriesList) {
    lines.push(...series.values.filter((v) => v !== null));
    if (series.band) {
      bounds.push(...series.band.lower, ...series.band.upper);
    }
  }
  if (kind !== "log") {
    const all = [...lines, ...bounds].filter(Number.isFinite);
    return all.length ? paddedLinear(all) : [0, 1];
  }

  // A band bound far below every line (a mean minus an SD near the mean) would
  // squash the lines: bounds count down to a tenth of the lowest line value.
  const positiveLines = lines.filter(finitePositive);
  const floor = positiveLines.length ? Math.min(...positiveLines) / 10 : 0;
  return logDomain([...positiveLines, ...bounds.filter((v) => finitePositive(v) && v >= floor)]);
}

function drawGrid(root, { xScale, yScale, left, right, top, bottom, xTicks }) {
  const grid = svg("g", { class: "grid", "aria-hidden": "true" });
  const axes = svg("g", { class: "axes", "aria-hidden": "true" });
  const yTicks = yScale.kind === "log" ? logTicks(yScale.domain) : linearTicks(yScale.domain, 5);
  for (const tick of yTicks) {
    const y = yScale(tick.value);
    if (y < top - 0.5 || y > bottom + 0.5) {
      continue;
    }
    grid.append(svg("line", { x1: left, x2: right, y1: y, y2: y, class: tick.minor ? "minor" : "major" }));
    tickLabel(tick, axes, { x: left - 6, y: y + 4, "text-anchor": "end", class: "tick" });
  }
  const ticks = xTicks ?? linearTicks(xScale.domain, 6).filter((t) => Number.isInteger(t.value));
  for (const tick of ticks) {
    const x = xScale(tick.value);
    if (x < left - 0.5 || x > right + 0.5) {
      continue;
    }
    grid.append(svg("line", { x1: x, x2: x, y1: top, y2: bottom, class: "major" }));
    tickLabel(tick, axes, { x, y: bottom + 16, "text-anchor": "middle", class: "tick" });
  }
  axes.append(svg("path", { d: `M${left} ${top}V${bottom}H${right}`, class: "axis-line", fill: "none" }));
  root.append(grid, axes);
}

function drawAxisLabels(root, options, { left, right, top, bottom, height }) {
  const labels = svg("g", { class: "axis-labels" });
  if (options.x.showLabel !== false) {
    const xLabel = svg("text", { x: (left + right) / 2, y: height - 8, "text-anchor": "middle", class: "axis-label" });
    xLabel.textContent = options.x.label;
    labels.append(xLabel);
  }
  if (options.y.showLabel !== false && options.y.placement === "top") {
    // A long label reads better level above the plot than turned on its side.
    const yLabel = svg("text", { x: 4, y: 14, class: "axis-label" });
    yLabel.textContent = `↑ ${options.y.label}`;
    labels.append(yLabel);
    if (options.y.note) {
      const note = svg("text", { x: 16, y: 29, class: "axis-note" });
      note.textContent = options.y.note;
      labels.append(note);
    }
  } else if (options.y.showLabel !== false) {
    const middle = (top + bottom) / 2;
    const yLabel = svg("text", {
      x: 14,
      y: middle,
      transform: `rotate(-90 14 ${middle})`,
      "text-anchor": "middle",
      class: "axis-label",
    });
    yLabel.textContent = options.y.label;
    labels.append(yLabel);
  }
  root.append(labels);
}

function drawDirectLabels(root, seriesList, xs, xScale, yScale, { right, top, bottom }) {
  const ends = seriesList.map((series) => {
    for (let i = series.values.length - 1; i >= 0; i -= 1) {
      const value = series.values[i];
      if (value !== null && yScale.accepts(value)) {
        return { x: xScale(xs[i]), y: yScale(value) };
      }
    }
    return null;
  });
  const present = ends.map((end, i) => ({ end, i })).filter((item) => item.end !== null);
  const placed = spread(
    present.map((item) => item.end.y),
    13,
    top + 4,
    bottom,
  );
  const group = svg("g", { class: "direct-labels", "aria-hidden": "true" });
  present.forEach((item, k) => {
    const series = seriesList[item.i];
    const y = placed[k];
    if (Math.abs(y - item.end.y) > 2) {
      group.append(
        svg("path", {
          d: `M${right + 1} ${item.end.y.toFixed(2)}L${right + 5} ${y.toFixed(2)}`,
          stroke: series.style.color,
          fill: "none",
          "stroke-width": 1,
        }),
      );
    }
    const label = svg("text", { x: right + 7, y: y + 4, fill: series.style.color, class: "direct-label" });
    label.textContent = series.shortLabel ?? series.label;
    group.append(label);
  });
  root.append(group);
}

/** A table of the numbers behind a chart: one row per x, one column per header. */
export function numbersTable(caption, headers, rows) {
  const table = document.createElement("table");
  const captionElement = document.createElement("caption");
  captionElement.textContent = caption;
  table.append(captionElement);
  const head = document.createElement("thead");
  const headRow = document.createElement("tr");
  for (const header of headers) {
    const cell = document.createElement("th");
    cell.scope = "col";
    cell.textContent = header;
    headRow.append(cell);
  }
  head.append(headRow);
  const body = document.createElement("tbody");
  for (const row of rows) {
    const tableRow = document.createElement("tr");
    row.forEach((value, i) => {
      const cell = document.createElement(i === 0 ? "th" : "td");
      if (i === 0) {
        cell.scope = "row";
      }
      cell.textContent = typeof value === "number" ? formatNumber(value) : value;
      tableRow.append(cell);
    });
    body.append(tableRow);
  }
  table.append(head, body);
  return table;
}
