// The pages. Each takes the <main> element and fills it from the APIs.
import { actionForm, actionsCard } from "./actions.js";
import { actsOn, api, may, me, optional, page, sees } from "./api.js";
import { barChart, lineChart, sparkline } from "./charts.js";
import {
  alertBadge, badge, fill, fmt, fmtCount, h, moreButton, num, segmentLabel, statusBadge, statusOf,
  STATUS, targetLines, thresholdText, when,
} from "./format.js";

let catalogCache = null;

export async function catalog() {
  if (!catalogCache) {
    const data = await api("indicators", "/v1/catalog");
    catalogCache = { parameters: data.parameters, byCode: {} };
    for (const ind of data.indicators) catalogCache.byCode[ind.code] = ind;
  }
  return catalogCache;
}

export const resetCache = () => { catalogCache = null; };

const link = (code, segment) =>
  `#/indicator/${encodeURIComponent(code)}?segment=${encodeURIComponent(segment || "all")}`;

function setAsOf(asOf) {
  const el = document.getElementById("asof");
  if (el) el.textContent = asOf ? `Business date ${asOf}` : "";
}

function cell(label, ...content) {
  return h("td", { "data-label": label }, ...content);
}

/** "Signed in as … · branches …": who the pages are filtered for. */
function scopeLine(who) {
  const where = who.branches
    ? `branches ${who.branches.join(", ")}${who.institution_level_visible ? " and the institution" : ""}`
    : "all branches";
  return h("p", { class: "hint", "data-testid": "who" }, `Signed in as ${who.name} · ${where}`);
}

/** Who made the latest change of an objective (its audit trail's last version). */
async function lastChange(objectiveId) {
  let last = null;
  let cursor;
  do {
    const got = await page("objectives", `/v1/objectives/${encodeURIComponent(objectiveId)}/history`,
      { params: { limit: 200, cursor } });
    if (got.items.length) last = got.items[got.items.length - 1];
    cursor = got.next;
  } while (cursor);
  return last;
}

const byWhom = (name, subject) => h("span", { title: subject || "" }, name);

// --- overview -------------------------------------------------------------------------------

export async function overview(main) {
  const [who, cat, objectives, active, current, alerts] = await Promise.all([
    me(),
    catalog(),
    api("objectives", "/v1/objectives", { params: { status: "active" } }),
    optional("objectives", "/v1/targets", null),
    api("indicators", "/v1/indicators"),
    optional("alerts", "/v1/alerts", []),
  ]);
  setAsOf(current.as_of);
  const values = new Map(current.items.map((i) => [`${i.code}|${i.segment}`, i]));
  const activeIds = active ? new Set(active.map((t) => t.id)) : null;
  const firing = new Map();
  for (const a of alerts) if (!firing.has(a.target_id) || a.state === "firing") firing.set(a.target_id, a);
  const targets = objectives.flatMap((o) => o.targets.map((t) => ({ ...t, objective: o })))
    .filter((t) => (activeIds ? activeIds.has(t.id) : t.status === "active"))
    .filter((t) => sees(who, t.segment));
  const series = await Promise.all(targets.map((t) =>
    optional("indicators", `/v1/indicators/${encodeURIComponent(t.indicator)}/series`,
      { points: [] }, { params: { segment: t.segment } })));
  const spark = new Map(targets.map((t, i) => [t.id, series[i].points || []]));
  const counts = { ok: 0, warning: 0, breached: 0, nodata: 0 };
  const rows = new Map();
  for (const t of targets) {
    const value = values.get(`${t.indicator}|${t.segment}`);
    const key = statusOf(t, value ? value.value : null);
    counts[key] += 1;
    rows.set(t.id, { value, key });
  }
  fill(main, 
    h("h1", {}, "Social targets"),
    scopeLine(who),
    h("p", { class: "hint" },
      `${targets.length} active targets: `,
      Object.entries(counts).map(([k, n], i) => [i ? ", " : "", `${n} ${STATUS[k].label.toLowerCase()}`]),
      alerts.length ? ` · ${alerts.length} open alerts` : ""),
    objectives.length === 0 ? h("p", {}, "No active objectives yet.") : null,
    objectives.map((o) => {
      const own = targets.filter((t) => t.objective.id === o.id);
      if (!own.length) return null;
      return h("section", { class: "card", "aria-labelledby": `obj-${o.id}` },
        h("header", {}, h("h2", { id: `obj-${o.id}` }, o.name),
          h("p", {}, `${o.dimension} · owner: ${o.owner}`, o.description ? ` · ${o.description}` : "")),
        h("div", { class: "table-wrap" }, h("table", { class: "stack" },
          h("thead", {}, h("tr", {}, ["Indicator", "Segment", "Current", "Target", "Status",
            "Trend (90 days)"].map((c) => h("th", { scope: "col", class: c === "Current" ? "num" : null }, c)))),
          h("tbody", {}, own.map((t) => {
            const ind = cat.byCode[t.indicator] || { name: t.indicator, unit: "" };
            const { value, key } = rows.get(t.id);
            const alert = firing.get(t.id);
            const pts = spark.get(t.id).map((p) => p.value);
            const { target } = targetLines(t);
            return h("tr", { "data-target": t.id, "data-status": key },
              cell("Indicator", h("a", { href: link(t.indicator, t.segment) }, ind.name)),
              cell("Segment", segmentLabel(t.segment)),
              h("td", { class: "num", "data-label": "Current" }, fmt(value ? value.value : null, ind.unit)),
              cell("Target", thresholdText(t, ind.unit)),
              cell("Status", statusBadge(key), alert ? [" ", h("a", { href: "#/alerts" },
                alertBadge(alert.state))] : null),
              cell("Trend", sparkline(pts, { lines: target,
                label: `${ind.name} over 90 days${pts.length ? `, now ${fmt(pts[pts.length - 1], ind.unit)}` : ""}` })));
          })))));
    }));
}

// --- indicator ------------------------------------------------------------------------------

export async function indicator(main, code, query, notify = () => {}) {
  const who = await me();
  const home = who.branches && !who.institution_level_visible && who.branches.length
    ? `branch:${who.branches[0]}` : "all";
  const segment = query.get("segment") || home;
  const days = Number(query.get("days") || 90);
  const cat = await catalog();
  const ind = cat.byCode[code];
  if (!ind) throw new Error(`Unknown indicator ${code}`);
  const dims = ind.segments.filter((s) => s !== "all");
  const by = dims.includes(query.get("by")) ? query.get("by") : dims.includes("branch") ? "branch" : dims[0];
  const current = await api("indicators", "/v1/indicators", { params: { code, segment } });
  const value = current.items[0] || null;
  setAsOf(current.as_of);
  const from = current.as_of ? new Date(Date.parse(current.as_of) - (days - 1) * 864e5)
    .toISOString().slice(0, 10) : undefined;
  const [series, targets, breakdown] = await Promise.all([
    api("indicators", `/v1/indicators/${encodeURIComponent(code)}/series`,
      { params: { segment, from } }),
    optional("objectives", "/v1/targets", [], { params: { indicator: code } }),
    by ? api("indicators", `/v1/indicators/${encodeURIComponent(code)}/breakdown`,
      { params: { by } }) : { items: [] },
  ]);
  const target = targets.find((t) => t.segment === segment);
  const changed = target ? await lastChange(target.objective_id).catch(() => null) : null;
  const lines = targetLines(target);
  const format = (v) => fmt(v, ind.unit);
  const go = (changes) => {
    const q = new URLSearchParams(query);
    for (const [k, v] of Object.entries(changes)) q.set(k, v);
    window.location.hash = `#/indicator/${encodeURIComponent(code)}?${q}`;
  };
  const segOptions = [...(sees(who, "all") ? ["all"] : []),
    ...breakdown.items.map((i) => i.segment).filter((s) => sees(who, s))];
  if (!segOptions.includes(segment)) segOptions.push(segment);
  const rows = breakdown.items.map((i) => {
    const t = targets.find((x) => x.segment === i.segment) || targets.find((x) => x.segment === "all");
    const key = t ? statusOf(t, i.value) : null;
    return { ...i, key, label: i.segment.split(/:(.*)/s)[1] || i.segment };
  });
  const key = target ? statusOf(target, value ? value.value : null) : null;
  // The alert's page is this one (alert links open it): actions go on the open alert, if any.
  const openAlerts = target ? await optional("alerts", "/v1/alerts", [], { params: { limit: 1000 } }) : [];
  const alert = openAlerts.find((a) => a.target_id === target.id && a.segment === segment && a.kind === "breach")
    || openAlerts.find((a) => a.target_id === target.id && a.segment === segment);
  const actionsSection = target ? await actionsCard({ targetId: target.id, alert }, notify) : null;
  fill(main, 
    h("p", {}, h("a", { href: "#/overview" }, "← Overview")),
    h("h1", {}, ind.name, h("span", { class: "hint" }, ` · ${segmentLabel(segment)}`)),
    h("div", { class: "grid" },
      h("section", { class: "card", "aria-label": "Current value" },
        h("div", { class: "big", "data-testid": "current-value" }, format(value ? value.value : null)),
        h("p", {}, key ? statusBadge(key) : "No target for this segment",
          target ? ` · target ${thresholdText(target, ind.unit)}` : ""),
        changed ? h("p", { class: "hint", "data-testid": "target-changed" },
          `Target ${changed.action} by `, byWhom(changed.author, changed.author_subject),
          ` ${when(changed.changed_at)}${changed.reason ? `: ${changed.reason}` : ""}`) : null,
        h("dl", { class: "kv" },
          h("dt", {}, "As of"), h("dd", {}, current.as_of || "–"),
          h("dt", {}, "Numerator"), h("dd", {}, fmtCount(value && value.numerator)),
          h("dt", {}, "Denominator"), h("dd", {}, fmtCount(value && value.denominator)),
          value && value.n != null ? [h("dt", {}, "n"), h("dd", {}, fmtCount(value.n))] : null)),
      h("section", { class: "card", "aria-label": "Definition" },
        h("h2", {}, "How it is computed"),
        h("p", { class: "formula", "data-testid": "formula" }, ind.formula),
        h("dl", { class: "kv" },
          h("dt", {}, "Kind"), h("dd", {}, ind.kind + (ind.window_days ? `, ${ind.window_days}-day window` : "")),
          h("dt", {}, "Unit"), h("dd", {}, ind.unit),
          ind.serves ? [h("dt", {}, "Serves"), h("dd", {}, ind.serves)] : null,
          ind.reference ? [h("dt", {}, "Reference"), h("dd", {}, ind.reference)] : null))),
    h("section", { class: "card" },
      h("div", { class: "inline" },
        h("div", {}, h("label", { for: "seg" }, "Segment"),
          h("select", { id: "seg", onchange: (e) => go({ segment: e.target.value }) },
            segOptions.map((s) => h("option", { value: s, selected: s === segment }, segmentLabel(s))))),
        h("div", {}, h("label", { for: "days" }, "Period"),
          h("select", { id: "days", onchange: (e) => go({ days: e.target.value }) },
            [30, 90, 180, 365].map((d) => h("option", { value: d, selected: d === days }, `${d} days`))))),
      h("h2", {}, "Time series"),
      lineChart(series.points, { ...lines, format, title: `${ind.name}, ${segmentLabel(segment)}` })),
    by ? h("section", { class: "card" },
      h("div", { class: "inline" },
        h("div", {}, h("label", { for: "by" }, "Breakdown by"),
          h("select", { id: "by", onchange: (e) => go({ by: e.target.value }) },
            dims.map((d) => h("option", { value: d, selected: d === by }, d))))),
      h("h2", {}, `By ${by}`),
      rows.length ? barChart(rows.map((r) => ({ label: r.label, value: r.value,
        icon: r.key ? STATUS[r.key].icon : "", flag: r.key === "breached" || r.key === "warning" })),
      { target: lines.target, format, title: `${ind.name} by ${by}` }) : h("p", {}, "No segments yet."),
      h("div", { class: "table-wrap" }, h("table", { class: "stack", "data-testid": "breakdown" },
        h("thead", {}, h("tr", {}, ["Segment", "Value", "Numerator", "Denominator", "Status"]
          .map((c) => h("th", { scope: "col" }, c)))),
        h("tbody", {}, rows.map((r) => h("tr", {},
          cell("Segment", h("a", { href: link(code, r.segment) }, r.label)),
          cell("Value", format(r.value)),
          cell("Numerator", fmtCount(r.numerator)),
          cell("Denominator", fmtCount(r.denominator)),
          cell("Status", r.key ? statusBadge(r.key) : "–"))))))) : null,
    actionsSection);
}

// --- alerts ---------------------------------------------------------------------------------

export function silenceForm(who, alert, done, notify) {
  const ends = new Date(Date.now() + 24 * 3600e3);
  const local = new Date(ends.getTime() - ends.getTimezoneOffset() * 6e4).toISOString().slice(0, 16);
  const id = `sil-${alert.id}`;
  const form = h("form", { class: "inline", "aria-label": `Silence ${alert.indicator}` },
    h("div", {}, h("label", { for: `${id}-end` }, "Silence until"),
      h("input", { id: `${id}-end`, type: "datetime-local", value: local, required: true })),
    h("div", {}, h("label", { for: `${id}-comment` }, "Comment"),
      h("input", { id: `${id}-comment`, type: "text", required: true, maxlength: 2000,
        placeholder: "Why (e.g. known data delay)" })),
    h("div", {}, h("button", { type: "submit" }, "Create silence")));
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const endsAt = new Date(form.querySelector(`#${CSS.escape(id)}-end`).value);
    const button = form.querySelector("button");
    button.disabled = true;
    try {
      await api("alerts", "/v1/silences", { method: "POST", body: {
        // a branch manager's silence names the branch too: the server accepts only those from them
        matchers: [{ name: "fingerprint", value: alert.fingerprint, op: "=" },
          ...(who.branches ? [{ name: "segment", value: alert.segment, op: "=" }] : [])],
        comment: form.querySelector(`#${CSS.escape(id)}-comment`).value,
        ends_at: endsAt.toISOString(),
      } });
    } catch (err) {
      button.disabled = false;
      notify(err.message);
      return;
    }
    done(`Silence created until ${when(endsAt.toISOString())}.`);
  });
  return form;
}

const ALERTS_PAGE = 50;

export async function alerts(main, query, notify) {
  const showResolved = query.get("resolved") === "1";
  const none = { items: [], next: null };
  const alertPage = (state, cursor) => page("alerts", "/v1/alerts",
    { params: { state, limit: ALERTS_PAGE, cursor } });
  const notePage = (cursor) => optional("alerts", "/v1/notifications", none,
    { params: { limit: ALERTS_PAGE, cursor } }, page);
  const [who, cat, open, resolved, silences, notes] = await Promise.all([
    me(),
    catalog().catch(() => ({ byCode: {} })),
    alertPage(undefined, undefined),
    showResolved ? alertPage("resolved", undefined) : none,
    optional("alerts", "/v1/silences", []),
    notePage(undefined),
  ]);
  const reload = (msg) => { notify(msg, "info"); alerts(main, query, notify).catch((e) => notify(e.message)); };
  const list = [...open.items, ...resolved.items];
  const silenced = new Set(silences.filter((s) => s.status === "active").flatMap((s) => s.matchers)
    .filter((m) => m.name === "fingerprint" && (m.op || "=") === "=").map((m) => m.value));
  const unitOf = (code) => (cat.byCode[code] || {}).unit;
  const alertRow = (a) => {
    const name = (cat.byCode[a.indicator] || {}).name || a.indicator;
    const actions = h("div", { class: "actions" });
    const row = h("tr", { "data-alert": a.id, "data-state": a.state },
      cell("State", h("a", { href: `#/alert/${encodeURIComponent(a.id)}`, "aria-label": `Open the alert: ${name}, ${segmentLabel(a.segment)}` },
        alertBadge(a.state)), a.kind !== "breach" ? ` ${a.kind}` : "",
        silenced.has(a.fingerprint) ? [" ", badge("info", "Silenced", "⊘")] : null),
      cell("Severity", badge(a.severity, a.severity, a.severity === "critical" ? "‼" : "!")),
      cell("Indicator", h("a", { href: link(a.indicator, a.segment) }, name)),
      cell("Segment", segmentLabel(a.segment)),
      cell("Value", fmt(a.value, unitOf(a.indicator))),
      cell("Threshold", fmt(a.threshold, unitOf(a.indicator))),
      cell("Since", a.since),
      cell("Acknowledged", a.acked_at ? ["✓ by ", byWhom(a.acked_by, a.acked_by_subject),
        ` ${when(a.acked_at)}`] : "No"),
      cell("Actions", actions));
    const mayAct = may(who, "alerts:ack") && actsOn(who, a.segment);
    if (a.state !== "resolved" && !a.acked_at && mayAct) {
      actions.append(h("button", { type: "button", onclick: async (e) => {
        e.target.disabled = true;
        try {
          await api("alerts", `/v1/alerts/${encodeURIComponent(a.id)}/ack`,
            { method: "POST", body: {} });
          reload(`Acknowledged: ${name}, ${segmentLabel(a.segment)}.`);
        } catch (err) { e.target.disabled = false; notify(err.message); }
      } }, "Acknowledge"));
    }
    if (a.state !== "resolved" && mayAct) {
      actions.append(h("button", { type: "button", class: "secondary", onclick: (e) => {
        e.target.replaceWith(silenceForm(who, a, reload, notify));
      } }, "Silence…"));
    }
    if (mayAct) {
      actions.append(h("button", { type: "button", class: "secondary", onclick: (e) => {
        e.target.replaceWith(actionForm({ alert_id: a.id }, (made) => reload(`Action recorded: ${made.title}.`), notify));
      } }, "Record action…"));
    }
    return row;
  };
  const shown = (a) => sees(who, a.segment);
  const rows = h("tbody", {}, list.filter(shown).map(alertRow));
  // The open list first, then (when shown) the resolved one; each page goes under the last.
  let openNext = open.next;
  const more = moreButton("More alerts", "more-alerts", open.next || resolved.next,
    async (cursor) => {
      const got = await alertPage(openNext ? undefined : "resolved", cursor);
      if (openNext) {
        openNext = got.next;
        if (!openNext) return { items: got.items, next: resolved.next };
      }
      return got;
    },
    (items) => rows.append(...items.filter(shown).map(alertRow)), notify);
  const noteRow = (n) => h("tr", {},
    cell("Created", when(n.created_at)), cell("Reason", n.reason),
    cell("Receiver", n.receiver), cell("Channel", `${n.channel} → ${n.destination}`),
    cell("Subject", n.subject),
    cell("Status", n.status + (n.last_error ? ` (${n.last_error})` : "")),
    cell("Attempts", n.attempts), cell("Sent", when(n.sent_at)));
  const noteRows = h("tbody", {}, notes.items.map(noteRow));
  fill(main, 
    h("h1", {}, "Alerts"),
    h("section", { class: "card" },
      h("div", { class: "inline" }, h("h2", {}, `Firing and pending (${open.items.length}${open.next ? "+" : ""})`),
        h("a", { href: showResolved ? "#/alerts" : "#/alerts?resolved=1" },
          showResolved ? "Hide resolved" : "Show recently resolved")),
      list.length === 0 ? h("p", {}, "No open alerts.") : h("div", { class: "table-wrap" },
        h("table", { class: "stack", "data-testid": "alerts" },
          h("thead", {}, h("tr", {}, ["State", "Severity", "Indicator", "Segment", "Value",
            "Threshold", "Since", "Acknowledged", "Actions"].map((c) => h("th", { scope: "col" }, c)))),
          rows)),
      more),
    h("section", { class: "card" }, h("h2", {}, "Silences"),
      silences.length === 0 ? h("p", {}, "No silences.") : h("div", { class: "table-wrap" },
        h("table", { class: "stack" },
          h("thead", {}, h("tr", {}, ["Status", "Matches", "Until", "By", "Comment", ""]
            .map((c) => h("th", { scope: "col" }, c)))),
          h("tbody", {}, silences.map((s) => h("tr", {},
            cell("Status", s.status),
            cell("Matches", s.matchers.map((m) => `${m.name}${m.op}${m.value}`).join(", ")),
            cell("Until", when(s.ends_at)),
            cell("By", byWhom(s.created_by, s.created_by_subject),
              s.expired_by ? [" · expired by ", byWhom(s.expired_by, s.expired_by_subject)] : null),
            cell("Comment", s.comment),
            cell("", s.status !== "expired" && may(who, "alerts:ack")
              && (!who.branches || (s.branch && who.branches.includes(s.branch))) ? h("button", { type: "button", class: "secondary",
              onclick: async () => {
                try {
                  await api("alerts", `/v1/silences/${encodeURIComponent(s.id)}`, { method: "DELETE" });
                  reload("Silence expired.");
                } catch (err) { notify(err.message); }
              } }, "Expire") : ""))))))),
    h("section", { class: "card" }, h("h2", {}, "Notification history"),
      notes.items.length === 0 ? h("p", {}, "No notifications sent yet.") : h("div", { class: "table-wrap" },
        h("table", { class: "stack", "data-testid": "notifications" },
          h("thead", {}, h("tr", {}, ["Created", "Reason", "Receiver", "Channel", "Subject", "Status",
            "Attempts", "Sent"].map((c) => h("th", { scope: "col" }, c)))),
          noteRows)),
      moreButton("More notifications", "more-notifications", notes.next, notePage,
        (items) => noteRows.append(...items.map(noteRow)), notify)));
}

// --- mail (embedded demo's SMTP sink) -------------------------------------------------------

const first = (obj, ...names) => names.map((n) => obj[n]).find((v) => v !== undefined && v !== null);

export async function mail(main) {
  const data = await api("demo", "/v1/demo/mail");
  const messages = Array.isArray(data) ? data : (data && (data.messages || data.items)) || [];
  fill(main, 
    h("h1", {}, "Mail"),
    h("p", { class: "hint" }, "Messages received by the demo's local SMTP sink, newest first."),
    messages.length === 0 ? h("p", {}, "No mail yet.") : messages.map((m) => {
      const to = first(m, "to", "recipients", "rcpt_to");
      return h("article", { class: "card" },
        h("h2", {}, first(m, "subject") || "(no subject)"),
        h("dl", { class: "kv" },
          h("dt", {}, "From"), h("dd", {}, first(m, "from", "sender", "mail_from") || "–"),
          h("dt", {}, "To"), h("dd", {}, Array.isArray(to) ? to.join(", ") : to || "–"),
          h("dt", {}, "Received"), h("dd", {}, when(first(m, "received_at", "date")))),
        h("div", { class: "mail-body" }, first(m, "text", "body", "plain") || ""));
    }));
}

export const hasMail = async () => (await optional("demo", "/v1/demo/mail", null)) !== null;
