// Inline SVG charts. Readable without colour: the series has point markers, the target line is
// dashed and the warning line dotted, each named in a legend and in the chart's text alternative.
import { h, num } from "./format.js";

const SERIES = "#0b5cad";
const TARGET = "#b0202e";
const WARNING = "#8a5300";

function scale(d0, d1, r0, r1) {
  const span = d1 - d0 || 1;
  return (v) => r0 + ((v - d0) / span) * (r1 - r0);
}

function extent(values) {
  const vs = values.filter((v) => v !== null && Number.isFinite(v));
  if (!vs.length) return [0, 1];
  let lo = Math.min(...vs);
  let hi = Math.max(...vs);
  if (lo === hi) {
    lo -= Math.abs(lo) * 0.1 || 0.5;
    hi += Math.abs(hi) * 0.1 || 0.5;
  }
  const pad = (hi - lo) * 0.08;
  return [lo >= 0 && lo - pad < 0 ? 0 : lo - pad, hi + pad];
}

/** A small trend line for a table cell; `lines` are target values drawn dashed. */
export function sparkline(values, { lines = [], label = "trend" } = {}) {
  const w = 120;
  const ht = 32;
  const vs = values.map(num);
  const [lo, hi] = extent([...vs, ...lines]);
  const x = scale(0, Math.max(vs.length - 1, 1), 2, w - 4);
  const y = scale(lo, hi, ht - 3, 3);
  const pts = vs.map((v, i) => (v === null ? null : `${x(i).toFixed(1)},${y(v).toFixed(1)}`));
  const last = vs.length - 1;
  return h("svg", { class: "spark", viewBox: `0 0 ${w} ${ht}`, role: "img", "aria-label": label },
    h("title", { text: label }),
    lines.map((t) => h("line", { x1: 0, x2: w, y1: y(t), y2: y(t), stroke: TARGET,
      "stroke-width": 1, "stroke-dasharray": "4 3" })),
    h("polyline", { points: pts.filter(Boolean).join(" "), fill: "none", stroke: SERIES,
      "stroke-width": 1.6 }),
    last >= 0 && vs[last] !== null
      ? h("circle", { cx: x(last), cy: y(vs[last]), r: 2.6, fill: SERIES }) : null);
}

function legendItem(label, attrs, marker = false) {
  return h("li", {},
    h("svg", { width: 28, height: 10, "aria-hidden": "true" },
      h("line", { x1: 0, x2: 28, y1: 5, y2: 5, "stroke-width": 2, ...attrs }),
      marker ? h("circle", { cx: 14, cy: 5, r: 3, fill: attrs.stroke }) : null),
    " ", label);
}

/** A time series with target and warning lines. points: [{as_of, value}] */
export function lineChart(points, { target = [], warning = [], format = String, title = "" } = {}) {
  const w = 720;
  const ht = 280;
  const m = { l: 64, r: 16, t: 14, b: 30 };
  const vs = points.map((p) => num(p.value));
  const [lo, hi] = extent([...vs, ...target, ...warning]);
  const x = scale(0, Math.max(points.length - 1, 1), m.l, w - m.r);
  const y = scale(lo, hi, ht - m.b, m.t);
  const ticks = [0, 1, 2, 3, 4].map((i) => lo + ((hi - lo) * i) / 4);
  const xi = points.length > 1 ? [0, Math.floor((points.length - 1) / 2), points.length - 1] : [0];
  const every = Math.max(1, Math.ceil(points.length / 45));
  const known = vs.filter((v) => v !== null);
  const desc = known.length
    ? `${points.length} days from ${points[0].as_of} to ${points[points.length - 1].as_of}; `
      + `first ${format(known[0])}, last ${format(known[known.length - 1])}, `
      + `lowest ${format(Math.min(...known))}, highest ${format(Math.max(...known))}.`
      + (target.length ? ` Target ${target.map(format).join(" and ")}.` : "")
    : "No values in this period.";
  const segments = [];
  let run = [];
  vs.forEach((v, i) => {
    if (v === null) { if (run.length) segments.push(run); run = []; } else run.push(`${x(i)},${y(v)}`);
  });
  if (run.length) segments.push(run);
  const svg = h("svg", { class: "chart", viewBox: `0 0 ${w} ${ht}`, role: "img",
    "aria-label": `${title}: ${desc}` },
  h("title", { text: title }), h("desc", { text: desc }),
  ticks.map((t) => h("g", {},
    h("line", { x1: m.l, x2: w - m.r, y1: y(t), y2: y(t), stroke: "#e3e6ea" }),
    h("text", { x: m.l - 6, y: y(t) + 4, "text-anchor": "end", text: format(t) }))),
  xi.map((i) => points[i] ? h("text", { x: x(i), y: ht - 8,
    "text-anchor": i === 0 ? "start" : i === points.length - 1 ? "end" : "middle",
    text: points[i].as_of }) : null),
  warning.map((t) => h("line", { x1: m.l, x2: w - m.r, y1: y(t), y2: y(t), stroke: WARNING,
    "stroke-width": 2, "stroke-dasharray": "2 4", class: "warning-line" })),
  target.map((t) => h("line", { x1: m.l, x2: w - m.r, y1: y(t), y2: y(t), stroke: TARGET,
    "stroke-width": 2, "stroke-dasharray": "8 5", class: "target-line" })),
  segments.map((s) => h("polyline", { points: s.join(" "), fill: "none", stroke: SERIES,
    "stroke-width": 2.2, class: "series" })),
  vs.map((v, i) => (v !== null && (i % every === 0 || i === vs.length - 1)
    ? h("circle", { cx: x(i), cy: y(v), r: 3, fill: SERIES }) : null)));
  const legend = h("ul", { class: "legend" },
    legendItem("Value (daily, with markers)", { stroke: SERIES }, true),
    target.length ? legendItem("Target (dashed)", { stroke: TARGET, "stroke-dasharray": "8 5" })
      : null,
    warning.length ? legendItem("Warning (dotted)", { stroke: WARNING, "stroke-dasharray": "2 4" })
      : null);
  return h("figure", { class: "chart-figure" }, svg, legend);
}

/** Horizontal bars, one per segment, with the target as a dashed line.
 *  items: [{label, value, icon}] */
export function barChart(items, { target = [], format = String, title = "" } = {}) {
  const row = 28;
  const w = 720;
  const m = { l: 150, r: 110, t: 8, b: 8 };
  const ht = m.t + m.b + row * Math.max(items.length, 1);
  const vs = items.map((i) => num(i.value));
  const max = Math.max(0, ...vs.filter((v) => v !== null), ...target) || 1;
  const x = scale(0, max * 1.05, m.l, w - m.r);
  const desc = items.map((i) => `${i.label}: ${format(i.value)}`).join("; ");
  return h("figure", { class: "chart-figure" },
    h("svg", { class: "chart", viewBox: `0 0 ${w} ${ht}`, role: "img",
      "aria-label": `${title}: ${desc}` },
    h("title", { text: title }), h("desc", { text: desc }),
    h("defs", {}, h("pattern", { id: "hatch", width: 6, height: 6,
      patternUnits: "userSpaceOnUse", patternTransform: "rotate(45)" },
    h("rect", { width: 6, height: 6, fill: "#dce7f5" }),
    h("line", { x1: 0, y1: 0, x2: 0, y2: 6, stroke: SERIES, "stroke-width": 2 }))),
    items.map((item, i) => {
      const v = vs[i];
      const top = m.t + i * row;
      return h("g", {},
        h("text", { x: m.l - 8, y: top + row / 2 + 4, "text-anchor": "end",
          text: `${item.icon ? `${item.icon} ` : ""}${item.label}` }),
        v === null ? null : h("rect", { x: m.l, y: top + 5, height: row - 10,
          width: Math.max(1, x(v) - m.l), fill: item.flag ? "url(#hatch)" : SERIES,
          stroke: SERIES }),
        h("text", { x: (v === null ? m.l : x(v)) + 6, y: top + row / 2 + 4,
          text: format(item.value) }));
    }),
    target.map((t) => h("line", { x1: x(t), x2: x(t), y1: 0, y2: ht, stroke: TARGET,
      "stroke-width": 2, "stroke-dasharray": "8 5" }))),
  h("ul", { class: "legend" },
    legendItem("Segment value", { stroke: SERIES }),
    items.some((i) => i.flag) ? h("li", {}, "Hatched bar: off target or warning") : null,
    target.length ? legendItem("Target (dashed)", { stroke: TARGET, "stroke-dasharray": "8 5" })
      : null));
}
