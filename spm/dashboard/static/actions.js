// Corrective actions (the alert service's /v1/actions): a card on the indicator page (the page an
// alert links to, and where a target lives), a form on each alert row, the list by owner and
// status (#/actions), and one action with its history (#/action/<id>).
import { api, optional, page } from "./api.js";
import { badge, fill, fmt, h, moreButton, segmentLabel, when } from "./format.js";

const STATUS = { open: ["info", "Open", "○"], done: ["ok", "Done", "✓"],
  cancelled: ["nodata", "Cancelled", "–"], overdue: ["breached", "Overdue", "!"] };
const VERDICT = { effective: ["ok", "Effective", "✓"], not_effective: ["breached", "Not effective", "✗"],
  too_early: ["nodata", "Too early to tell", "…"] };
const PAGE = 50;

const statusBadge = (s) => badge(...(STATUS[s] || ["info", s, "?"]));
export const verdictBadge = (v) => (v ? badge(...(VERDICT[v] || ["info", v, "?"])) : "Not judged yet");
const actionLink = (a) => h("a", { href: `#/action/${encodeURIComponent(a.id)}` }, a.title);
const cell = (label, ...content) => h("td", { "data-label": label }, ...content);
const isoDay = (offsetDays) => new Date(Date.now() + offsetDays * 864e5).toISOString().slice(0, 10);

/** A form that records an action on `on` (`{ alert_id }` or `{ target_id }`); `done(action)`. */
export function actionForm(on, done, notify) {
  const id = `act-${(on.alert_id || on.target_id || "x").replace(/[^A-Za-z0-9_-]/g, "")}`;
  const field = (name, label, attrs) => h("div", {}, h("label", { for: `${id}-${name}` }, label),
    h("input", { id: `${id}-${name}`, name, ...attrs }));
  const form = h("form", { class: "inline", "aria-label": "Record an action", "data-testid": "action-form" },
    field("title", "What will be done", { type: "text", required: true, maxlength: 500 }),
    field("owner", "Owner", { type: "text", required: true, maxlength: 200 }),
    field("owner_notify", "Owner's e-mail (optional)", { type: "text", maxlength: 254 }),
    field("due_date", "Due", { type: "date", required: true, value: isoDay(14) }),
    field("review_date", "Review", { type: "date", required: true, value: isoDay(45) }),
    h("div", {}, h("button", { type: "submit" }, "Record action")));
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const value = (name) => form.querySelector(`#${CSS.escape(`${id}-${name}`)}`).value.trim();
    const body = { ...on, title: value("title"), owner: value("owner"),
      due_date: value("due_date"), review_date: value("review_date") };
    if (value("owner_notify")) body.owner_notify = value("owner_notify");
    const button = form.querySelector("button");
    button.disabled = true;
    try {
      done(await api("alerts", "/v1/actions", { method: "POST", body }));
    } catch (err) {
      button.disabled = false;
      notify(err.message);
    }
  });
  return form;
}

function table(items, testid) {
  const row = (a) => h("tr", { "data-action": a.id, "data-status": a.status },
    cell("Action", actionLink(a)), cell("Owner", a.owner), cell("Status", statusBadge(a.status)),
    cell("Segment", segmentLabel(a.segment)), cell("Due", a.due_date), cell("Review", a.review_date),
    cell("Effect", verdictBadge(a.effectiveness)));
  const body = h("tbody", {}, items.map(row));
  const el = h("div", { class: "table-wrap" }, h("table", { class: "stack", "data-testid": testid },
    h("thead", {}, h("tr", {}, ["Action", "Owner", "Status", "Segment", "Due", "Review", "Effect"]
      .map((c) => h("th", { scope: "col" }, c)))), body));
  return { el, append: (more) => body.append(...more.map(row)) };
}

/**
 * The actions card of a target (and of the alerts on it): its actions, and a form that records
 * one on the open alert if there is one, else on the target. With `onlyAlert`, the alert's own
 * actions only (the alert's page).
 */
export async function actionsCard({ targetId, alert, onlyAlert = false }, notify) {
  const section = h("section", { class: "card", "data-testid": "actions-card" });
  const filter = onlyAlert ? { alert_id: alert.id } : { target_id: targetId };
  const draw = async (message) => {
    const items = await optional("alerts", "/v1/actions", null, { params: { ...filter, limit: PAGE } });
    if (items === null) { section.replaceChildren(); return; } // no alerts:read scope, or no alert service
    const on = alert ? { alert_id: alert.id } : { target_id: targetId };
    section.replaceChildren(
      h("h2", {}, "Corrective actions"),
      items.length ? table(items, "actions").el
        : h("p", {}, `No actions recorded for this ${onlyAlert ? "alert" : "target"}.`),
      h("details", {}, h("summary", {}, "Record an action"),
        actionForm(on, async (a) => { await draw(`Action recorded: ${a.title}.`); }, notify)));
    if (message) notify(message, "info");
  };
  await draw();
  return section;
}

/** #/actions?owner=&status=: every action, by owner and status. */
export async function actions(main, query, notify = () => {}) {
  const owner = query.get("owner") || "";
  const status = query.get("status") || "";
  const fetchPage = (cursor) => page("alerts", "/v1/actions",
    { params: { owner, status, limit: PAGE, cursor } });
  const first = await fetchPage(undefined);
  const list = table(first.items, "actions");
  const more = moreButton("More actions", "more-actions", first.next, fetchPage, list.append, notify);
  const filters = h("form", { class: "inline", "aria-label": "Filter actions" },
    h("div", {}, h("label", { for: "act-owner" }, "Owner"),
      h("input", { id: "act-owner", type: "text", value: owner, maxlength: 200 })),
    h("div", {}, h("label", { for: "act-status" }, "Status"),
      h("select", { id: "act-status" }, ["", "open", "overdue", "done", "cancelled"].map((s) =>
        h("option", { value: s, selected: s === status }, s ? STATUS[s][1] : "Any")))),
    h("div", {}, h("button", { type: "submit" }, "Show")));
  filters.addEventListener("submit", (event) => {
    event.preventDefault();
    const q = new URLSearchParams();
    const o = filters.querySelector("#act-owner").value.trim();
    const s = filters.querySelector("#act-status").value;
    if (o) q.set("owner", o);
    if (s) q.set("status", s);
    window.location.hash = `#/actions${q.toString() ? `?${q}` : ""}`;
  });
  fill(main, h("h1", {}, "Corrective actions"),
    h("section", { class: "card" }, filters,
      first.items.length ? list.el : h("p", {}, "No actions match."), more));
  notify("");
}

/** #/action/<id>: one action, the numbers it is judged with, its history, and its buttons.
 * `catalog` resolves to the indicator catalog (for the value's unit). */
export async function action(main, id, notify, catalog) {
  const [a, cat] = await Promise.all([api("alerts", `/v1/actions/${encodeURIComponent(id)}`),
    catalog().catch(() => ({ byCode: {} }))]);
  const unit = (cat.byCode[a.indicator] || {}).unit;
  const setStatus = (status) => async (e) => {
    e.target.disabled = true;
    try {
      await api("alerts", `/v1/actions/${encodeURIComponent(id)}`, { method: "PATCH", body: { status } });
      await action(main, id, notify, catalog);
      notify(`Action marked ${status}.`, "info");
    } catch (err) { e.target.disabled = false; notify(err.message); }
  };
  const live = a.status === "open" || a.status === "overdue";
  const changes = (e) => Object.entries(e.changes || {})
    .map(([k, v]) => `${k}: ${v.before ?? "–"} → ${v.after ?? "–"}`).join("; ");
  fill(main,
    h("p", {}, h("a", { href: "#/actions" }, "← Actions")),
    h("h1", {}, a.title),
    h("section", { class: "card", "aria-label": "Action" },
      h("dl", { class: "kv", "data-testid": "action" },
        h("dt", {}, "Status"), h("dd", {}, statusBadge(a.status)),
        h("dt", {}, "Owner"), h("dd", {}, a.owner),
        h("dt", {}, "Indicator"), h("dd", {}, h("a", { href: `#/indicator/${encodeURIComponent(a.indicator)}?segment=${encodeURIComponent(a.segment)}` },
          `${a.indicator}, ${segmentLabel(a.segment)}`)),
        h("dt", {}, "Due"), h("dd", {}, a.due_date),
        h("dt", {}, "Review"), h("dd", {}, a.review_date),
        h("dt", {}, "Done"), h("dd", {}, when(a.done_at)),
        h("dt", {}, "Value when opened"), h("dd", {}, fmt(a.opened_value, unit)),
        h("dt", {}, "Target line"), h("dd", {}, fmt(a.target_threshold, unit)),
        h("dt", {}, "Effect"), h("dd", { "data-testid": "effect" }, verdictBadge(a.effectiveness),
          a.judged_value != null ? ` (value ${fmt(a.judged_value, unit)} on ${a.judged_as_of})` : "")),
      h("div", { class: "actions" },
        live ? h("button", { type: "button", onclick: setStatus("done") }, "Mark done") : null,
        live ? h("button", { type: "button", class: "secondary", onclick: setStatus("cancelled") }, "Cancel action") : null,
        live ? null : h("button", { type: "button", class: "secondary", onclick: setStatus("open") }, "Reopen"))),
    h("section", { class: "card" }, h("h2", {}, "History"),
      h("div", { class: "table-wrap" }, h("table", { class: "stack", "data-testid": "action-history" },
        h("thead", {}, h("tr", {}, ["When", "Who", "What", "Changes", "Note"].map((c) => h("th", { scope: "col" }, c)))),
        h("tbody", {}, a.history.map((e) => h("tr", {},
          cell("When", when(e.at)), cell("Who", e.by), cell("What", e.event),
          cell("Changes", changes(e)), cell("Note", e.note || ""))))))));
}
