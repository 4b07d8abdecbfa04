// looplab web UI: what every page shares. DOM and SVG helpers, the API client, toasts, the
// header and the signed-in person. Each page has a file of its own (label.js, dashboard.js,
// monitor.js, admin.js); app.js is the router. Data from the server only ever reaches the page
// through textContent and attributes, never innerHTML: a record may contain anything.

const TOKEN_KEY = "looplab.token";

/** Who is signed in (from GET /me), and why the last sign-out happened (for the sign-in page). */
export const session = { me: null, signedOutBecause: "" };

// ---------------------------------------------------------------- small DOM helpers

export const $ = (selector, root = document) => root.querySelector(selector);

/** A fresh copy of <template id="tpl-NAME">, and a lookup for its [data-slot] elements. */
export function clone(name) {
  const node = document.getElementById(`tpl-${name}`).content.cloneNode(true);
  const slots = {};
  for (const el of node.querySelectorAll("[data-slot]")) slots[el.dataset.slot] = el;
  return { node, slots };
}

/** Create an element: h("p", {className: "x"}, "text", child). Strings become text nodes. */
export function h(tag, props = {}, ...children) {
  const el = document.createElement(tag);
  for (const [key, value] of Object.entries(props)) {
    if (key in el && !key.startsWith("aria") && key !== "role") el[key] = value;
    else el.setAttribute(key, value);
  }
  for (const child of children) {
    if (child !== null && child !== undefined) el.append(child instanceof Node ? child : String(child));
  }
  return el;
}

/** Move focus to a page's heading, so a screen reader announces the new page. */
export function focusHeading(root) {
  const heading = root.querySelector("h1");
  if (heading) heading.focus({ preventScroll: true });
}

export const enc = encodeURIComponent;
export const percent = (x) => `${Math.round(x * 100)}%`;
export const number = (n) => Number(n).toLocaleString("en");

// ---------------------------------------------------------------- the API client

export class ApiError extends Error {
  constructor(status, code, message, details) {
    super(message);
    this.status = status;
    this.code = code;
    this.details = details || {};
  }

  /** Worth trying again: the network, a timeout, rate limiting or a server error. */
  get retryable() {
    return this.status === 0 || this.status === 408 || this.status === 429 || this.status >= 500;
  }
}

export function token() {
  return localStorage.getItem(TOKEN_KEY);
}

/** Call /api/v1 + path; resolve to the JSON body or throw an ApiError built from the fixed
 * error shape {"error": {"code", "message", "details"}}. A 401 for the stored token signs out. */
export async function api(path, { method = "GET", body, auth = token(), keepalive = false } = {}) {
  const headers = { Accept: "application/json" };
  if (auth) headers.Authorization = `Bearer ${auth}`;
  if (body !== undefined) headers["Content-Type"] = "application/json";
  let response;
  try {
    response = await fetch(`/api/v1${path}`, {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
      keepalive,
    });
  } catch {
    throw new ApiError(0, "network", "Cannot reach the looplab server. Is it running?");
  }
  const text = await response.text();
  let data = null;
  try {
    data = text ? JSON.parse(text) : null;
  } catch {
    data = null;
  }
  if (!response.ok) {
    const e = (data && data.error) || {};
    const error = new ApiError(
      response.status,
      e.code || "http_error",
      e.message || `The server answered ${response.status} ${response.statusText}.`,
      e.details,
    );
    if (response.status === 401 && auth && auth === token()) signOut(error.message);
    throw error;
  }
  return data;
}

// ---------------------------------------------------------------- toasts (one aria-live region)

/** Show a message; `action: {label, run}` adds a button. Errors stay until dismissed. */
export function toast(message, { kind = "info", action = null, timeout } = {}) {
  const region = $("#toasts");
  const box = h("div", { className: `toast ${kind}` });
  const dismiss = () => box.remove();
  box.append(h("span", { className: "toast-text" }, message));
  if (action) {
    const button = h("button", { type: "button", className: "primary" }, action.label);
    button.addEventListener("click", () => {
      dismiss();
      action.run();
    });
    box.append(button);
  }
  const close = h("button", { type: "button", className: "quiet", "aria-label": "Dismiss" }, "×");
  close.addEventListener("click", dismiss);
  box.append(close);
  region.append(box);
  const wait = timeout ?? (kind === "error" ? 0 : 4000);
  if (wait) setTimeout(dismiss, wait);
  return dismiss;
}

export function showError(error, prefix = "") {
  return toast(prefix + error.message, { kind: "error" });
}

// ---------------------------------------------------------------- header

let header = { project: null, active: "" };

/** Draw the header again (once GET /me has said who is signed in, and so which links they get). */
export function refreshHeader() {
  setHeader(header.project, header.active);
}

export function setHeader(project = null, active = "") {
  header = { project, active };
  const nav = $("#nav");
  nav.replaceChildren();
  nav.hidden = !project;
  if (project) {
    nav.append(h("span", { className: "nav-project" }, project));
    // Review and records are the reviewer's (the server checks every call anyway).
    const reviewer = session.me && session.me.role !== "annotator";
    const pages = [
      ["label", "Label"],
      ["dashboard", "Dashboard"],
      ...(reviewer ? [["review", "Review"], ["records", "Records"]] : []),
    ];
    for (const [page, text] of pages) {
      const link = h("a", { href: `#/projects/${enc(project)}/${page}` }, text);
      if (page === active) link.setAttribute("aria-current", "page");
      nav.append(link);
    }
  }
  const signedIn = Boolean(token());
  $("#who-name").textContent = signedIn && session.me ? `${session.me.name} · ${session.me.role}` : "";
  showAdminLink(active === "admin");
  $("#sign-out").hidden = !signedIn;
  $("#help-button").hidden = active !== "label";
}

/** The header's Admin link, for admins only (the server checks every admin call anyway). */
export function showAdminLink(current) {
  const link = $("#admin-link");
  link.hidden = !(token() && session.me && session.me.role === "admin");
  if (current) link.setAttribute("aria-current", "page");
  else link.removeAttribute("aria-current");
}

export function signOut(reason = "") {
  localStorage.removeItem(TOKEN_KEY);
  session.me = null;
  session.signedOutBecause = reason;
  // The router (app.js) listens for hash changes; on the sign-in page already, ask it again.
  if (location.hash === "#/signin") window.dispatchEvent(new HashChangeEvent("hashchange"));
  else location.hash = "#/signin";
}

/** Keep `candidate` as the token of `user`, who just proved it works (GET /me). */
export function signIn(candidate, user) {
  localStorage.setItem(TOKEN_KEY, candidate);
  session.me = user;
}

// ---------------------------------------------------------------- inline SVG (the charts)

const SVG_NS = "http://www.w3.org/2000/svg";

/** Create an SVG element: svg("text", {x: 4}, "label", child). Strings become text nodes. */
export function svg(tag, attrs = {}, ...children) {
  const el = document.createElementNS(SVG_NS, tag);
  for (const [key, value] of Object.entries(attrs)) el.setAttribute(key, value);
  for (const child of children) {
    if (child !== null && child !== undefined) el.append(child instanceof Node ? child : String(child));
  }
  return el;
}

/** Round ticks from 0 to at least `max`: steps of 1, 2, 2.5 or 5 times a power of ten. */
export function niceTicks(max, count = 4) {
  if (!(max > 0)) return [0, 1];
  const raw = max / count;
  const magnitude = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 2.5, 5, 10].map((m) => m * magnitude).find((x) => x >= raw * (1 - 1e-9));
  const n = Math.ceil(max / step - 1e-9);
  return Array.from({ length: n + 1 }, (_, i) => Number((i * step).toPrecision(12)));
}
