// Sign-in, navigation and routing (hash URLs: #/overview, #/indicator/<code>?segment=, #/alerts,
// #/actions?owner=&status=, #/action/<id>, #/report).
import * as actions from "./actions.js";
import { api, ApiError, clearKey, forgetMe, getKey, loadConfig, setKey } from "./api.js";
import { h } from "./format.js";
import { report } from "./report.js";
import * as views from "./views.js";

const main = () => document.getElementById("main");

function notify(text, kind = "error") {
  const box = document.getElementById("status");
  box.replaceChildren(text ? h("div", { class: `msg ${kind}` }, text) : "");
}

function signin(reason) {
  document.getElementById("nav").hidden = true;
  const form = h("form", { class: "card signin", "aria-labelledby": "signin-title" },
    h("h1", { id: "signin-title" }, "Sign in"),
    h("p", { class: "hint" }, "Use the API key you were given. It stays in this browser tab only."),
    h("label", { for: "apikey" }, "API key"),
    h("input", { id: "apikey", name: "apikey", type: "password", autocomplete: "current-password",
      required: true }),
    h("p", {}, h("button", { type: "submit" }, "Sign in")));
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    setKey(form.querySelector("#apikey").value.trim());
    try {
      await api("indicators", "/v1/catalog");
    } catch (err) {
      clearKey();
      notify(err instanceof ApiError && err.status === 401 ? "That key was not accepted." : err.message);
      return;
    }
    notify("");
    window.location.hash = "#/overview";
    await route();
    await refreshNav();
  });
  main().replaceChildren(form);
  if (reason) notify(reason);
  form.querySelector("#apikey").focus();
}

async function route() {
  if (!getKey()) return signin();
  document.getElementById("nav").hidden = false;
  const [path, qs] = (window.location.hash.slice(1) || "/overview").split("?");
  const query = new URLSearchParams(qs || "");
  const parts = path.split("/").filter(Boolean);
  const page = parts[0] || "overview";
  for (const a of document.querySelectorAll("[data-nav]")) {
    if (a.dataset.nav === page) a.setAttribute("aria-current", "page");
    else a.removeAttribute("aria-current");
  }
  notify("");
  main().replaceChildren(h("p", { class: "hint" }, "Loading…"));
  main().setAttribute("aria-busy", "true");
  try {
    if (page === "indicator" && parts[1]) await views.indicator(main(), decodeURIComponent(parts[1]), query, notify);
    else if (page === "alerts") await views.alerts(main(), query, notify);
    else if (page === "actions") await actions.actions(main(), query, notify);
    else if (page === "action" && parts[1]) {
      await actions.action(main(), decodeURIComponent(parts[1]), notify, views.catalog);
    }
    else if (page === "mail") await views.mail(main());
    else if (page === "report") await report(main(), notify);
    else await views.overview(main());
    document.title = `${main().querySelector("h1")?.textContent || "Dashboard"} · SPM Monitor`;
  } catch (err) {
    if (err instanceof ApiError && err.status === 401) {
      clearKey();
      return signin("Your key was not accepted. Sign in again.");
    }
    main().replaceChildren(h("p", {}, "This page could not be loaded."));
    notify(err.message || String(err));
  } finally {
    main().removeAttribute("aria-busy");
  }
}

async function refreshNav() {
  document.getElementById("nav-mail").hidden = !(getKey() && (await views.hasMail()));
}

async function start() {
  const config = await loadConfig();
  document.getElementById("title").textContent = config.title || "SPM Monitor";
  document.getElementById("signout").addEventListener("click", () => {
    clearKey();
    forgetMe();
    views.resetCache();
    window.location.hash = "#/signin";
    signin();
  });
  window.addEventListener("hashchange", route);
  await route();
  await refreshNav();
}

start();
