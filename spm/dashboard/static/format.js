// Numbers, statuses and a tiny DOM builder (no innerHTML: API text is never parsed as HTML).

export function h(tag, attrs = {}, ...children) {
  const svg = ["svg", "g", "line", "polyline", "circle", "rect", "text", "title", "desc", "path",
    "pattern", "defs"].includes(tag);
  const el = svg ? document.createElementNS("http://www.w3.org/2000/svg", tag)
    : document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k.startsWith("on") && typeof v === "function") el.addEventListener(k.slice(2), v);
    else if (k === "text") el.textContent = v;
    else el.setAttribute(k, v === true ? "" : String(v));
  }
  for (const child of children.flat(Infinity)) {
    if (child === undefined || child === null || child === false) continue;
    el.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return el;
}

/** Replace el's children; like h(), arrays are flattened and null/false skipped. */
export function fill(el, ...children) {
  el.replaceChildren(...children.flat(Infinity).filter((c) => c !== null && c !== undefined
    && c !== false).map((c) => (c instanceof Node ? c : document.createTextNode(String(c)))));
  return el;
}

export const num = (v) => (v === null || v === undefined || v === "" ? null : Number(v));

const SHARE_UNITS = new Set(["share", "fraction", "likelihood"]);

export function fmt(value, unit) {
  const v = num(value);
  if (v === null || Number.isNaN(v)) return "–";
  if (SHARE_UNITS.has(unit)) return `${(v * 100).toFixed(1)} %`;
  if (unit === "count") return Math.round(v).toLocaleString("en");
  if (unit === "days") return `${v.toFixed(1)} days`;
  if (unit === "per_1k" || unit === "per_1000") return `${v.toFixed(2)} ‰`;
  if (unit === "ratio") return v.toFixed(3);
  if (/^[A-Z]{3}$/.test(unit || "")) {
    return `${v.toLocaleString("en", { maximumFractionDigits: 0 })} ${unit}`;
  }
  return v.toLocaleString("en", { maximumFractionDigits: 4 });
}

export const fmtCount = (v) => (num(v) === null ? "–" : Number(v).toLocaleString("en",
  { maximumFractionDigits: 2 }));

function pair(threshold) {
  return Array.isArray(threshold) ? threshold.map(num) : [num(threshold), num(threshold)];
}

export function thresholdText(target, unit) {
  const [lo, hi] = pair(target.threshold);
  if (target.direction === "at_least") return `≥ ${fmt(lo, unit)}`;
  if (target.direction === "at_most") return `≤ ${fmt(hi, unit)}`;
  return `${fmt(lo, unit)} – ${fmt(hi, unit)}`;
}

/** Lines to draw on a chart for a target: the threshold(s) and the warning line(s). */
export function targetLines(target) {
  if (!target) return { target: [], warning: [] };
  const [lo, hi] = pair(target.threshold);
  const w = target.warning_threshold == null ? [] : pair(target.warning_threshold);
  if (target.direction === "at_least") return { target: [lo], warning: w.length ? [w[0]] : [] };
  if (target.direction === "at_most") return { target: [hi], warning: w.length ? [w[1]] : [] };
  return { target: [lo, hi], warning: w };
}

export const STATUS = {
  ok: { icon: "✓", label: "On target" },
  warning: { icon: "⚠", label: "Warning" },
  breached: { icon: "✖", label: "Off target" },
  nodata: { icon: "–", label: "No data" },
};

/** Where a value stands against a target: ok, warning, breached or nodata. */
export function statusOf(target, value) {
  const v = num(value);
  if (v === null) return "nodata";
  const [lo, hi] = pair(target.threshold);
  const outside = (a, b) =>
    (target.direction !== "at_most" && a !== null && v < a) ||
    (target.direction !== "at_least" && b !== null && v > b);
  if (outside(lo, hi)) return "breached";
  if (target.warning_threshold != null) {
    const [wlo, whi] = pair(target.warning_threshold);
    if (outside(wlo, whi)) return "warning";
  }
  return "ok";
}

export function badge(kind, text, icon) {
  return h("span", { class: `badge ${kind}` }, h("span", { "aria-hidden": "true" }, icon), text);
}

export const statusBadge = (key) => badge(key, STATUS[key].label, STATUS[key].icon);

export const ALERT_STATE = {
  firing: { icon: "▲", label: "Firing" },
  pending: { icon: "◷", label: "Pending" },
  resolved: { icon: "✓", label: "Resolved" },
};

export function alertBadge(state) {
  const s = ALERT_STATE[state] || { icon: "?", label: state };
  return badge(state, s.label, s.icon);
}

export function segmentLabel(segment) {
  if (!segment || segment === "all") return "Institution";
  const [dim, value] = segment.split(/:(.*)/s);
  const names = { branch: "Branch", product: "Product", gender: "Gender", rural: "Rural" };
  return `${names[dim] || dim} ${value}`;
}

export function when(iso) {
  if (!iso) return "–";
  const d = new Date(iso);
  return Number.isNaN(d.getTime()) ? String(iso) : d.toLocaleString("en-GB",
    { dateStyle: "medium", timeStyle: "short" });
}

/**
 * A "More" button that walks a cursor-paged list: each click fetches the page after `next`
 * and hands its rows to `append`; the button goes away on the last page.
 */
export function moreButton(label, testid, next, fetchPage, append, notify) {
  if (!next) return null;
  const button = h("button", { type: "button", class: "secondary", "data-testid": testid,
    onclick: async () => {
      button.disabled = true;
      try {
        const got = await fetchPage(next);
        append(got.items);
        next = got.next;
        if (next) button.disabled = false; else button.remove();
      } catch (err) { button.disabled = false; notify(err.message); }
    } }, label);
  return button;
}
