// One alert (#/alert/<id>): the page a notification's link opens. What fired, on which segment,
// the value against the target in the indicator's unit, who acknowledged it, every notification
// sent about it (escalations included), its corrective actions, and the buttons the signed-in
// person may use (the same rules as the alerts list; the server enforces them either way).
import { actionsCard } from "./actions.js";
import { actsOn, api, may, me, optional, page } from "./api.js";
import { alertBadge, badge, fill, fmt, h, moreButton, segmentLabel, when } from "./format.js";
import { catalog, silenceForm } from "./views.js";

const NOTES_PAGE = 50;
const KIND = { breach: "off target", warning: "in the warning band",
  trend: "heading for its target line", nodata: "not updated" };

const cell = (label, ...content) => h("td", { "data-label": label }, ...content);
const segmentWords = (segment) => (segment === "all" ? "the whole institution" : segmentLabel(segment));

export async function alert(main, id, notify) {
  const none = { items: [], next: null };
  const notePage = (cursor) => optional("alerts", "/v1/notifications", none,
    { params: { alert_id: id, limit: NOTES_PAGE, cursor } }, page);
  const [a, who, cat, notes] = await Promise.all([
    api("alerts", `/v1/alerts/${encodeURIComponent(id)}`),
    me(),
    catalog().catch(() => ({ byCode: {} })),
    notePage(undefined),
  ]);
  const ind = cat.byCode[a.indicator] || {};
  const name = ind.name || a.indicator;
  const unit = ind.unit;
  const reload = (msg) => {
    alert(main, id, notify).then(() => notify(msg, "info")).catch((e) => notify(e.message));
  };
  const buttons = h("div", { class: "actions" });
  const mayAct = may(who, "alerts:ack") && actsOn(who, a.segment);
  if (a.state !== "resolved" && !a.acked_at && mayAct) {
    buttons.append(h("button", { type: "button", onclick: async (e) => {
      e.target.disabled = true;
      try {
        await api("alerts", `/v1/alerts/${encodeURIComponent(id)}/ack`, { method: "POST", body: {} });
        reload(`Acknowledged: ${name}, ${segmentLabel(a.segment)}.`);
      } catch (err) { e.target.disabled = false; notify(err.message); }
    } }, "Acknowledge"));
  }
  if (a.state !== "resolved" && mayAct) {
    buttons.append(h("button", { type: "button", class: "secondary", onclick: (e) => {
      e.target.replaceWith(silenceForm(who, a, reload, notify));
    } }, "Silence…"));
  }
  const detail = a.detail || {};
  const figures = detail.numerator != null && detail.denominator != null
    ? `${detail.numerator} out of ${detail.denominator}` : null;
  const kv = (label, value, testid) => [h("dt", {}, label),
    h("dd", testid ? { "data-testid": testid } : {}, value)];
  const noteRow = (n) => h("tr", { "data-reason": n.reason },
    cell("Created", when(n.created_at)),
    cell("Reason", n.reason === "escalated" ? badge("breached", "Escalated", "↑") : n.reason),
    cell("Receiver", n.receiver), cell("Channel", `${n.channel} → ${n.destination}`),
    cell("Subject", n.subject),
    cell("Status", n.status + (n.last_error ? ` (${n.last_error})` : "")),
    cell("Sent", when(n.sent_at)));
  const noteRows = h("tbody", {}, notes.items.map(noteRow));
  const actionsSection = await actionsCard({ targetId: a.target_id, alert: a, onlyAlert: true }, notify);
  fill(main,
    h("p", {}, h("a", { href: "#/alerts" }, "← Alerts")),
    h("h1", {}, `${name}: ${KIND[a.kind] || a.kind}`),
    h("section", { class: "card", "aria-label": "Alert" },
      h("dl", { class: "kv", "data-testid": "alert", "data-alert": a.id },
        kv("Indicator", h("a", { href: `#/indicator/${encodeURIComponent(a.indicator)}?segment=${encodeURIComponent(a.segment)}` }, name)),
        kv("Segment", segmentWords(a.segment), "alert-segment"),
        kv("State", [alertBadge(a.state), " ", badge(a.severity, a.severity, a.severity === "critical" ? "‼" : "!")], "alert-state"),
        kv("Value", [fmt(a.value, unit), ` (on ${a.as_of})`], "alert-value"),
        kv("Target line", fmt(a.threshold, unit), "alert-threshold"),
        kv("Objective", a.objective_code),
        kv("Since", a.since),
        figures ? kv("Figures", figures, "alert-figures") : null,
        kv("Resolved", a.resolved_on || "No"),
        kv("Acknowledged", a.acked_at
          ? ["✓ by ", h("span", { title: a.acked_by_subject || "" }, a.acked_by), ` ${when(a.acked_at)}`,
            a.ack_comment ? ` · ${a.ack_comment}` : ""]
          : "No", "alert-acked")),
      buttons),
    h("section", { class: "card" }, h("h2", {}, "Notifications about this alert"),
      notes.items.length === 0 ? h("p", {}, "No notifications sent about this alert yet.")
        : h("div", { class: "table-wrap" },
          h("table", { class: "stack", "data-testid": "alert-notifications" },
            h("thead", {}, h("tr", {}, ["Created", "Reason", "Receiver", "Channel", "Subject",
              "Status", "Sent"].map((c) => h("th", { scope: "col" }, c)))),
            noteRows)),
      moreButton("More notifications", "more-alert-notifications", notes.next, notePage,
        (items) => noteRows.append(...items.map(noteRow)), notify)),
    actionsSection);
}
