// The board report page: pick a month, download its PDF or XLSX (GET /v1/report, served beside
// the dashboard: by the embedded mode and by `spm serve dashboard`). The file is fetched with the session's cookie (the server
// turns it into the person's token) and handed to the browser as a download.
import { ApiError, loadConfig } from "./api.js";
import { fill, h } from "./format.js";

function previousMonth() {
  const d = new Date();
  d.setDate(1);
  d.setMonth(d.getMonth() - 1);
  return `${d.getFullYear()}-${String(d.getMonth() + 1).padStart(2, "0")}`;
}

async function download(month, format) {
  const config = await loadConfig();
  const base = (config.apis && config.apis.report) || "";
  const url = new URL(`${base}/v1/report`, base ? undefined : window.location.origin);
  url.searchParams.set("month", month);
  url.searchParams.set("format", format);
  let resp;
  try {
    resp = await fetch(url, { credentials: "same-origin", cache: "no-store" });
  } catch {
    throw new ApiError(0, "The report service cannot be reached.");
  }
  if (!resp.ok) {
    let detail = `The server answered ${resp.status}.`;
    try {
      const body = await resp.json();
      if (body && typeof body.detail === "string") detail = body.detail;
    } catch { /* not JSON */ }
    throw new ApiError(resp.status, detail);
  }
  const link = h("a", { href: URL.createObjectURL(await resp.blob()),
    download: `spm-report-${month}.${format}` });
  document.body.append(link);
  link.click();
  link.remove();
  setTimeout(() => URL.revokeObjectURL(link.href), 60_000);
}

export async function report(main, notify) {
  const month = h("input", { id: "report-month", type: "month", value: previousMonth(),
    required: true });
  const state = h("p", { class: "hint", role: "status" });
  const button = (format, label) => h("button", {
    type: "button",
    "data-format": format,
    onclick: async (event) => {
      const btn = event.currentTarget;
      btn.disabled = true;
      fill(state, `Building the ${format.toUpperCase()} for ${month.value}…`);
      try {
        await download(month.value, format);
        fill(state, `Downloaded spm-report-${month.value}.${format}.`);
      } catch (err) {
        fill(state, "");
        notify(err.message || String(err));
      } finally {
        btn.disabled = false;
      }
    },
  }, label);
  fill(main,
    h("h1", {}, "Board report"),
    h("p", {}, "The month's social performance report for the board: each objective's targets "
      + "with value and status on the month's last day, twelve months of trend, the segments "
      + "furthest off target, the month's alerts and corrective actions, and the definition of "
      + "every figure."),
    h("p", {}, h("label", { for: "report-month" }, "Month "), month),
    h("div", { class: "actions" }, button("pdf", "Download PDF"), button("xlsx", "Download XLSX")),
    state);
}
