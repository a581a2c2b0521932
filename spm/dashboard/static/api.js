// Calls to the service APIs as the signed-in person. The session is an HttpOnly cookie the page
// cannot read; the server turns it into the person's identity for the services. What the page
// keeps is the session's CSRF token (in memory only), sent with every state-changing request.
let config = { title: "SPM Monitor", apis: {} };
let session = null;

export class ApiError extends Error {
  constructor(status, message, body) {
    super(message);
    this.status = status;
    this.body = body;
  }
}

export async function loadConfig() {
  try {
    const resp = await fetch("config.json", { cache: "no-store" });
    if (resp.ok) config = await resp.json();
  } catch {
    /* keep the defaults: every API on this origin */
  }
  return config;
}

export const getSession = () => session;

async function authCall(path, { method = "GET", body } = {}) {
  const headers = { Accept: "application/json" };
  if (body !== undefined) headers["Content-Type"] = "application/json";
  if (method !== "GET" && session) headers["X-CSRF-Token"] = session.csrf_token;
  let resp;
  try {
    resp = await fetch(path, {
      method, headers, credentials: "same-origin", cache: "no-store",
      body: body === undefined ? undefined : JSON.stringify(body),
    });
  } catch {
    throw new ApiError(0, "The dashboard server cannot be reached.");
  }
  const text = await resp.text();
  let data = null;
  try {
    data = text ? JSON.parse(text) : null;
  } catch {
    data = null;
  }
  if (!resp.ok) throw new ApiError(resp.status, message(resp.status, data), data);
  return data;
}

/** Ways of signing in this server offers: `{ local, oidc: { name } | null }`. */
export async function signInOptions() {
  try {
    return await authCall("/auth/config");
  } catch {
    return { local: true, oidc: null };
  }
}

/** The current session (`{ user, scopes, csrf_token }`), or null when not signed in. */
export async function loadSession() {
  try {
    session = await authCall("/auth/session");
  } catch (err) {
    if (err instanceof ApiError && err.status === 401) session = null;
    else throw err;
  }
  return session;
}

export async function signIn(username, password) {
  session = await authCall("/auth/login", { method: "POST", body: { username, password } });
  return session;
}

/** Ends the session on the server (every tab of it), then forgets it here. */
export async function signOut() {
  try {
    if (session) await authCall("/auth/logout", { method: "POST" });
  } finally {
    session = null;
  }
}

export const forgetSession = () => {
  session = null;
};

function urlOf(name, path, params) {
  const base = (config.apis && config.apis[name]) || "";
  const url = new URL(base + path, base ? undefined : window.location.origin);
  for (const [k, v] of Object.entries(params || {})) {
    if (v !== undefined && v !== null && v !== "") url.searchParams.set(k, v);
  }
  return url;
}

function message(status, data) {
  if (data && typeof data.detail === "string") {
    const fields = (data.errors || []).map((e) => `${e.field}: ${e.reason}`).join("; ");
    return fields && !data.detail.includes(fields) ? `${data.detail} (${fields})` : data.detail;
  }
  if (status === 403) return "Your role does not allow what this page needs.";
  return `The server answered ${status}.`;
}

/** Call API `name` (indicators, objectives, alerts, ingest, demo); resolves to parsed JSON. */
export async function api(name, path, opts) {
  return (await request(name, path, opts)).data;
}

/**
 * One page of a list: `{ items, next }`, where `next` is the cursor of the following page
 * (the X-Next-Cursor header) or null on the last one. Pass it back as `params.cursor`.
 */
export async function page(name, path, opts) {
  const { data, resp } = await request(name, path, opts);
  return { items: data || [], next: resp.headers.get("X-Next-Cursor") };
}

async function request(name, path, { method = "GET", params, body } = {}) {
  if (!session) throw new ApiError(401, "Sign in first.");
  const headers = { Accept: "application/json" };
  if (body !== undefined) headers["Content-Type"] = "application/json";
  if (method !== "GET") headers["X-CSRF-Token"] = session.csrf_token;
  let resp;
  try {
    resp = await fetch(urlOf(name, path, params), {
      method,
      headers,
      credentials: "same-origin",
      body: body === undefined ? undefined : JSON.stringify(body),
      cache: "no-store",
    });
  } catch {
    throw new ApiError(0, `The ${name} service cannot be reached.`);
  }
  const text = await resp.text();
  let data = null;
  try {
    data = text ? JSON.parse(text) : null;
  } catch {
    data = null;
  }
  if (!resp.ok) throw new ApiError(resp.status, message(resp.status, data), data);
  return { data, resp };
}

// Who is signed in (GET /v1/me, on every service): name, scopes, branches. The pages use it to
// hide what the server would refuse (other branches' entries, buttons for scopes one lacks);
// the server enforces the same rules whatever the page shows.
let meCache = null;
export async function me() {
  if (!meCache) meCache = await api("indicators", "/v1/me");
  return meCache;
}
export const forgetMe = () => { meCache = null; };

/** Whether `who` (from me()) holds `scope`; `admin` holds every scope. */
export const may = (who, scope) => who.scopes.includes(scope) || who.scopes.includes("admin");

/** Whether `who` sees `segment`: their branches' segments, institution-level ones if allowed. */
export function sees(who, segment) {
  if (!who.branches) return true;
  const branch = segment.startsWith("branch:") ? segment.slice(7) : null;
  return branch === null ? who.institution_level_visible : who.branches.includes(branch);
}

/** Whether `who` may acknowledge or silence on `segment`: only their own branches when limited. */
export function actsOn(who, segment) {
  if (!who.branches) return true;
  return segment.startsWith("branch:") && who.branches.includes(segment.slice(7));
}

/** Like api(), but a missing API or a missing scope gives `fallback` instead of an error. */
export async function optional(name, path, fallback, opts, call = api) {
  try {
    return await call(name, path, opts);
  } catch (err) {
    if (err instanceof ApiError && [0, 403, 404, 405].includes(err.status)) return fallback;
    throw err;
  }
}
