// Sign-in, navigation and routing (hash URLs: #/overview, #/indicator/<code>?segment=, #/alerts,
// #/alert/<id>, #/actions?owner=&status=, #/action/<id>, #/report).
import * as actions from "./actions.js";
import { alert as alertPage } from "./alert.js";
import {
  ApiError, forgetMe, forgetSession, getSession, loadConfig, loadSession, signIn, signInOptions,
  signOut,
} from "./api.js";
import { h } from "./format.js";
import { report } from "./report.js";
import * as views from "./views.js";

const main = () => document.getElementById("main");

function notify(text, kind = "error") {
  const box = document.getElementById("status");
  box.replaceChildren(text ? h("div", { class: `msg ${kind}` }, text) : "");
}

const ROLE_NAMES = {
  viewer: "Viewer",
  branch_manager: "Branch manager",
  spm_officer: "SPM officer",
  risk_compliance: "Risk and compliance",
  administrator: "Administrator",
};

/** Who is signed in and what they may see, in the header. */
function showWho() {
  const who = document.getElementById("who");
  const s = getSession();
  if (!s) {
    who.hidden = true;
    who.replaceChildren();
    return;
  }
  const branches = s.user.branches ? s.user.branches.join(", ") : "all branches";
  who.replaceChildren(
    h("span", { class: "who-name", "data-testid": "who-name" }, s.user.name),
    " · ",
    h("span", { "data-testid": "who-scope" },
      `${ROLE_NAMES[s.user.role] || s.user.role} · ${branches}`));
  who.hidden = false;
}

async function signin(reason) {
  document.getElementById("nav").hidden = true;
  showWho();
  const options = await signInOptions();
  const card = h("div", { class: "card signin" }, h("h1", { id: "signin-title" }, "Sign in"));
  if (options.oidc) {
    card.append(h("p", {}, h("a", { class: "button", href: "/auth/oidc/login" },
      `Sign in with ${options.oidc.name}`)));
  }
  const form = h("form", { "aria-labelledby": "signin-title" },
    h("label", { for: "username" }, "Username"),
    h("input", { id: "username", name: "username", autocomplete: "username", required: true }),
    h("label", { for: "password" }, "Password"),
    h("input", { id: "password", name: "password", type: "password",
      autocomplete: "current-password", required: true }),
    h("p", {}, h("button", { type: "submit" }, "Sign in")));
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const password = form.querySelector("#password");
    try {
      await signIn(form.querySelector("#username").value.trim(), password.value);
    } catch (err) {
      password.value = "";
      if (err instanceof ApiError && err.status === 401) notify("Wrong username or password.");
      else if (err instanceof ApiError && err.status === 423) {
        notify("This account is locked after too many wrong passwords. Try again later.");
      } else notify(err.message);
      return;
    }
    forgetMe(); // a new person: their own name, scopes and branches
    notify("");
    if (!window.location.hash || window.location.hash === "#/signin") {
      window.location.hash = "#/overview"; // the hashchange listener routes: once, not twice
    } else {
      await route();
    }
    await refreshNav();
  });
  card.append(form);
  main().replaceChildren(card);
  if (reason) notify(reason);
  form.querySelector("#username").focus();
}

let shownRoute = 0; // the newest navigation: only it may fill the page

async function route() {
  if (!getSession()) return signin();
  document.getElementById("nav").hidden = false;
  showWho();
  const [path, qs] = (window.location.hash.slice(1) || "/overview").split("?");
  const query = new URLSearchParams(qs || "");
  const parts = path.split("/").filter(Boolean);
  const page = parts[0] || "overview";
  for (const a of document.querySelectorAll("[data-nav]")) {
    if (a.dataset.nav === (page === "alert" ? "alerts" : page)) a.setAttribute("aria-current", "page");
    else a.removeAttribute("aria-current");
  }
  notify("");
  // A page is built off-screen and shown only if no later navigation began meanwhile: a slow
  // page finishing after a quick one replaced it (the alerts list gave way to the overview).
  const generation = ++shownRoute;
  const current = () => generation === shownRoute;
  const view = h("div", { class: "view" });
  main().replaceChildren(h("p", { class: "hint" }, "Loading…"));
  main().setAttribute("aria-busy", "true");
  try {
    if (page === "indicator" && parts[1]) await views.indicator(view, decodeURIComponent(parts[1]), query, notify);
    else if (page === "alerts") await views.alerts(view, query, notify);
    else if (page === "alert" && parts[1]) await alertPage(view, decodeURIComponent(parts[1]), notify);
    else if (page === "actions") await actions.actions(view, query, notify);
    else if (page === "action" && parts[1]) {
      await actions.action(view, decodeURIComponent(parts[1]), notify, views.catalog);
    }
    else if (page === "mail") await views.mail(view);
    else if (page === "report") await report(view, notify);
    else await views.overview(view);
    if (!current()) return;
    main().replaceChildren(view);
    document.title = `${view.querySelector("h1")?.textContent || "Dashboard"} · SPM Monitor`;
  } catch (err) {
    if (!current()) return;
    if (err instanceof ApiError && err.status === 401) return sessionEnded();
    main().replaceChildren(h("p", {}, "This page could not be loaded."));
    notify(err.message || String(err));
  } finally {
    if (current()) main().removeAttribute("aria-busy");
  }
}

/** The server no longer knows the session (it expired, or an administrator ended it). */
function sessionEnded() {
  forgetSession();
  forgetMe();
  return signin("Your session has ended. Sign in again.");
}

// Called after a page was shown, so nothing else would catch its refusal: a session ended in
// between must send the person to sign in, not leave an unhandled rejection behind.
async function refreshNav() {
  let mail = false;
  try {
    mail = Boolean(getSession()) && (await views.hasMail());
  } catch (err) {
    if (err instanceof ApiError && err.status === 401) return sessionEnded();
    /* any other failure: the demo's mailbox link stays hidden */
  }
  document.getElementById("nav-mail").hidden = !mail;
}

async function start() {
  const config = await loadConfig();
  document.getElementById("title").textContent = config.title || "SPM Monitor";
  document.getElementById("signout").addEventListener("click", async () => {
    try {
      await signOut();
    } catch {
      /* the session is forgotten here either way */
    }
    forgetMe();
    views.resetCache();
    window.location.hash = "#/signin";
    await signin("You are signed out.");
  });
  try {
    await loadSession();
  } catch (err) {
    notify(err.message || String(err));
  }
  window.addEventListener("hashchange", route);
  await route();
  await refreshNav();
}

start();
