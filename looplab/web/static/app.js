// looplab web UI: the API client, a hash router, sign-in, projects and the dashboard.
// The label page lives in label.js. Data from the server only ever reaches the page through
// textContent and attributes, never innerHTML: a record may contain anything.

import { adminPage } from "./admin.js";
import { labelPage } from "./label.js";
import { monitorPanel } from "./monitor.js";

const TOKEN_KEY = "looplab.token";
let signedOutBecause = "";
let me = null;

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

export function setHeader(project = null, active = "") {
  const nav = $("#nav");
  nav.replaceChildren();
  nav.hidden = !project;
  if (project) {
    nav.append(h("span", { className: "nav-project" }, project));
    for (const [page, text] of [
      ["label", "Label"],
      ["dashboard", "Dashboard"],
    ]) {
      const link = h("a", { href: `#/projects/${enc(project)}/${page}` }, text);
      if (page === active) link.setAttribute("aria-current", "page");
      nav.append(link);
    }
  }
  const signedIn = Boolean(token());
  $("#who-name").textContent = signedIn && me ? `${me.name} · ${me.role}` : "";
  showAdminLink(active === "admin");
  $("#sign-out").hidden = !signedIn;
  $("#help-button").hidden = active !== "label";
}

/** The header's Admin link, for admins only (the server checks every admin call anyway). */
function showAdminLink(current) {
  const link = $("#admin-link");
  link.hidden = !(token() && me && me.role === "admin");
  if (current) link.setAttribute("aria-current", "page");
  else link.removeAttribute("aria-current");
}

export function signOut(reason = "") {
  localStorage.removeItem(TOKEN_KEY);
  me = null;
  signedOutBecause = reason;
  if (location.hash === "#/signin") route();
  else location.hash = "#/signin";
}

// ---------------------------------------------------------------- pages

function focusHeading(root) {
  const heading = root.querySelector("h1");
  if (heading) heading.focus({ preventScroll: true });
}

function signinPage(view) {
  setHeader();
  const { node } = clone("signin");
  view.el.append(node);
  const form = $("#signin-form", view.el);
  const input = $("#token", view.el);
  const error = $("#signin-error", view.el);
  const button = $("button[type=submit]", form);
  const fail = (message) => {
    error.textContent = message;
    input.setAttribute("aria-invalid", "true");
    input.focus();
    input.select();
  };
  if (signedOutBecause) fail(`You were signed out: ${signedOutBecause}`);
  signedOutBecause = "";
  input.focus();
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const candidate = input.value.trim();
    if (!candidate) return fail("Paste your access token first.");
    button.disabled = true;
    error.textContent = "";
    try {
      me = await api("/me", { auth: candidate });
      localStorage.setItem(TOKEN_KEY, candidate);
      const next = sessionStorage.getItem("looplab.next") || "#/projects";
      sessionStorage.removeItem("looplab.next");
      location.hash = next;
    } catch (err) {
      fail(err.message);
    } finally {
      button.disabled = false;
    }
  });
}

async function projectsPage(view) {
  setHeader();
  const { node, slots } = clone("projects");
  view.el.append(node);
  focusHeading(view.el);
  const projects = await api("/projects");
  slots.empty.hidden = projects.length > 0;
  for (const project of projects) {
    const card = clone("project-card");
    const base = `#/projects/${enc(project.name)}`;
    card.slots["label-link"].textContent = project.name;
    card.slots["label-link"].href = `${base}/label`;
    card.slots["label-button"].href = `${base}/label`;
    card.slots["label-button"].setAttribute("aria-label", `Label ${project.name}`);
    card.slots.dashboard.href = `${base}/dashboard`;
    card.slots.dashboard.setAttribute("aria-label", `Dashboard of ${project.name}`);
    card.slots.task.textContent = project.task;
    card.slots.labels.textContent = project.labels.join(", ");
    slots.list.append(card.node);
    const progress = card.slots.progress;
    api(`/projects/${enc(project.name)}/status`).then(
      (s) => (progress.textContent = `${number(s.labeled)} of ${number(s.records)} labeled`),
      () => (progress.textContent = ""),
    );
  }
}

async function dashboardPage(view, name) {
  setHeader(name, "dashboard");
  const { node, slots } = clone("dashboard");
  view.el.append(node);
  $("h1", view.el).textContent = `${name}: dashboard`;
  focusHeading(view.el);
  const [status, curve] = await Promise.all([
    api(`/projects/${enc(name)}/status`),
    api(`/projects/${enc(name)}/learning-curve`).catch((err) => {
      if (err.status === 404 && err.code === "not_found" && !err.details.project) return [];
      throw err;
    }),
  ]);
  const stat = (label, value) =>
    h("div", { className: "stat" }, h("span", { className: "stat-value" }, value), h("span", { className: "stat-label" }, label));
  const share = status.records ? ` (${percent(status.labeled / status.records)})` : "";
  slots.stats.append(
    stat("records", number(status.records)),
    stat("labeled", number(status.labeled) + share),
    stat("to do", number(status.unlabeled)),
    stat("models", number(curve.length)),
  );
  if (status.quarantined) slots.stats.append(stat("quarantined", number(status.quarantined)));
  const newest = curve.filter((p) => typeof p.accuracy === "number").pop();
  if (newest) {
    // A score travels with its n and its interval: 90% of 10 test records is not 90% of 1,000.
    // The metric the project gates on leads, beside what always answering the majority scores.
    const lead = newest.metric || "accuracy";
    slots.stats.append(
      stat(`${newest.version}'s ${METRIC_NAMES[lead]} ${scoreNote(newest, lead)}`, percent(newest[lead])),
    );
    if (typeof newest.baseline === "number") {
      slots.stats.append(
        stat(`majority baseline: always “${newest.baseline_label}” scores this ${METRIC_NAMES[lead]}`, percent(newest.baseline)),
      );
    }
  }
  slots["per-label"].append(countTable("Label", status.per_label));
  slots["per-annotator"].append(
    Object.keys(status.per_annotator).length
      ? countTable("Annotator", status.per_annotator, true)
      : h("p", { className: "muted" }, "Nobody has labeled anything yet."),
  );
  const points = curve.filter((p) => p.accuracy !== null || p.macro_f1 !== null);
  if (points.length) slots.curve.append(...learningCurve(points));
  else
    slots.curve.append(
      h("p", { className: "empty" }, "No model yet."),
      h(
        "p",
        { className: "muted" },
        "A model is trained in the background once enough records are labeled; its test scores appear here.",
      ),
    );
  await monitorPanel(view, name, $("section", view.el));
}

/** "on 20 test records, 95% interval 60% to 93%": what a held-out score needs beside it. */
function scoreNote(point, key) {
  const ci = point[`${key}_ci`];
  const interval = ci ? `, 95% interval ${percent(ci[0])} to ${percent(ci[1])}` : "";
  return `on ${number(point.n_test)} test record${point.n_test === 1 ? "" : "s"}${interval}`;
}

/** A table of name -> count with a bar per row; `sort` orders by count, largest first. */
function countTable(heading, counts, sort = false) {
  const rows = Object.entries(counts);
  if (sort) rows.sort((a, b) => b[1] - a[1]);
  const max = Math.max(1, ...rows.map(([, n]) => n));
  const body = h("tbody");
  for (const [name, n] of rows) {
    const fill = h("span", { className: "bar-fill" });
    fill.style.width = `${(100 * n) / max}%`;
    body.append(
      h(
        "tr",
        {},
        h("th", { scope: "row" }, name),
        h("td", { className: "num" }, number(n)),
        h("td", { className: "bar-cell" }, h("span", { className: "bar", "aria-hidden": "true" }, fill)),
      ),
    );
  }
  const head = h(
    "thead",
    {},
    h("tr", {}, h("th", { scope: "col" }, heading), h("th", { scope: "col", className: "num" }, "Count"), h("td")),
  );
  return h("table", { className: "counts" }, head, body);
}

// ---------------------------------------------------------------- the learning curve (inline SVG)

const SVG = "http://www.w3.org/2000/svg";

function s(tag, attrs = {}, ...children) {
  const el = document.createElementNS(SVG, tag);
  for (const [key, value] of Object.entries(attrs)) el.setAttribute(key, value);
  for (const child of children) el.append(child);
  return el;
}

/** 0, a round step, ... up to at least `max`: the ticks of a linear axis. */
function ticks(max, count = 5) {
  if (!(max > 0)) return [0, 1];
  const raw = max / count;
  const magnitude = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 2.5, 5, 10].map((m) => m * magnitude).find((x) => x >= raw);
  const out = [];
  for (let i = 0; out.length === 0 || out[out.length - 1] < max; i++) out.push(i * step);
  return out;
}

const SERIES = [
  { key: "accuracy", name: "Accuracy", className: "line-accuracy" },
  { key: "balanced_accuracy", name: "Balanced accuracy", className: "line-balanced" },
  { key: "macro_f1", name: "Macro F1", className: "line-f1" },
];
const METRIC_NAMES = { accuracy: "accuracy", balanced_accuracy: "balanced accuracy", macro_f1: "macro F1" };

function learningCurve(points) {
  const W = 640;
  const H = 320;
  const m = { left: 64, right: 20, top: 16, bottom: 56 };
  const xs = ticks(Math.max(...points.map((p) => p.n_labels)));
  const xmax = xs[xs.length - 1] || 1;
  const x = (n) => m.left + (n / xmax) * (W - m.left - m.right);
  const y = (v) => H - m.bottom - v * (H - m.top - m.bottom);
  const title = s("title", { id: "curve-svg-title" });
  title.textContent = "Learning curve: test scores of each model against the labels it was trained on";
  const svg = s("svg", {
    viewBox: `0 0 ${W} ${H}`,
    role: "img",
    "aria-labelledby": "curve-svg-title",
    class: "chart",
  }, title);
  const grid = s("g", { class: "grid" });
  const text = (attrs, content) => {
    const t = s("text", attrs);
    t.textContent = content;
    return t;
  };
  for (const v of [0, 0.25, 0.5, 0.75, 1]) {
    grid.append(s("line", { x1: m.left, x2: W - m.right, y1: y(v), y2: y(v) }));
    grid.append(text({ x: m.left - 8, y: y(v) + 4, "text-anchor": "end" }, percent(v)));
  }
  for (const n of xs) {
    grid.append(s("line", { class: "tick", x1: x(n), x2: x(n), y1: H - m.bottom, y2: H - m.bottom + 5 }));
    grid.append(text({ x: x(n), y: H - m.bottom + 20, "text-anchor": "middle" }, number(n)));
  }
  svg.append(grid);
  svg.append(s("line", { class: "axis", x1: m.left, x2: W - m.right, y1: H - m.bottom, y2: H - m.bottom }));
  svg.append(s("line", { class: "axis", x1: m.left, x2: m.left, y1: m.top, y2: H - m.bottom }));
  svg.append(text({ class: "axis-label", x: (m.left + W - m.right) / 2, y: H - 10, "text-anchor": "middle" }, "Labels used for training"));
  svg.append(
    text(
      { class: "axis-label", transform: `translate(16 ${(m.top + H - m.bottom) / 2}) rotate(-90)`, "text-anchor": "middle" },
      "Score on the test set",
    ),
  );
  const legend = h("ul", { className: "legend" });
  for (const series of SERIES) {
    const data = points.filter((p) => typeof p[series.key] === "number");
    if (!data.length) continue;
    const path = data.map((p, i) => `${i ? "L" : "M"}${x(p.n_labels).toFixed(1)},${y(p[series.key]).toFixed(1)}`);
    svg.append(s("path", { class: `line ${series.className}`, d: path.join(" ") }));
    for (const p of data) {
      const ci = p[`${series.key}_ci`];
      if (ci && series.key === "accuracy") {
        svg.append(s("line", { class: `whisker ${series.className}`, x1: x(p.n_labels), x2: x(p.n_labels), y1: y(ci[0]), y2: y(ci[1]) }));
      }
    }
    for (const p of data) {
      const dot = s("circle", { class: `dot ${series.className}`, cx: x(p.n_labels), cy: y(p[series.key]), r: 4.5 });
      const tip = s("title");
      tip.textContent = `${p.version}: ${series.name} ${percent(p[series.key])} ${scoreNote(p, series.key)}; trained on ${number(p.n_labels)} labels`;
      dot.append(tip);
      svg.append(dot);
    }
    legend.append(h("li", { className: series.className }, series.name));
  }
  const table = h(
    "table",
    { className: "counts" },
    h(
      "thead",
      {},
      h(
        "tr",
        {},
        ...["Model", "Labels", "Test records", "Gated on", "Majority baseline", "Accuracy (95% interval)", "Balanced accuracy (95% interval)", "Macro F1 (95% interval)"].map((c) =>
          h("th", { scope: "col" }, c),
        ),
      ),
    ),
    h(
      "tbody",
      {},
      ...points.map((p) =>
        h(
          "tr",
          {},
          h("th", { scope: "row" }, p.version),
          h("td", { className: "num" }, number(p.n_labels)),
          h("td", { className: "num" }, number(p.n_test)),
          h("td", {}, `${METRIC_NAMES[p.metric || "accuracy"]} ${withInterval(p, p.metric || "accuracy")}`),
          h("td", { className: "num" }, typeof p.baseline === "number" ? percent(p.baseline) : "–"),
          h("td", { className: "num" }, withInterval(p, "accuracy")),
          h("td", { className: "num" }, withInterval(p, "balanced_accuracy")),
          h("td", { className: "num" }, withInterval(p, "macro_f1")),
        ),
      ),
    ),
  );
  return [svg, legend, h("details", {}, h("summary", {}, "Show as a table"), table)];
}

function withInterval(point, key) {
  if (point[key] === null || point[key] === undefined) return "–";
  const ci = point[`${key}_ci`];
  return ci ? `${percent(point[key])} (${percent(ci[0])}–${percent(ci[1])})` : percent(point[key]);
}

// ---------------------------------------------------------------- the router

const ROUTES = [
  [/^#\/signin$/, signinPage],
  [/^#\/projects$/, projectsPage],
  [/^#\/projects\/([^/]+)\/label$/, labelPage],
  [/^#\/projects\/([^/]+)\/dashboard$/, dashboardPage],
  [/^#\/admin$/, adminPage],
];

let current = null;

async function route() {
  const hash = location.hash || "#/projects";
  if (!token() && hash !== "#/signin") {
    sessionStorage.setItem("looplab.next", hash);
    location.replace("#/signin");
    return;
  }
  if (current) current.leave();
  // Each page renders into a fresh element: a slow page that finishes after the person has
  // moved on writes into a detached element and nobody sees it.
  const view = { el: h("div", { className: "view" }), cleanups: [], left: false };
  view.onLeave = (fn) => view.cleanups.push(fn);
  view.leave = () => {
    view.left = true;
    for (const fn of view.cleanups) fn();
  };
  current = view;
  $("#main").replaceChildren(view.el);
  for (const [pattern, page] of ROUTES) {
    const match = hash.match(pattern);
    if (!match) continue;
    try {
      await page(view, ...match.slice(1).map(decodeURIComponent));
    } catch (err) {
      if (view.left || err.status === 401) return;
      view.el.append(h("p", { className: "error panel", role: "alert" }, err.message));
    }
    return;
  }
  location.replace("#/projects");
}

function boot() {
  $("#sign-out").addEventListener("click", () => signOut());
  const help = $("#help");
  $("#help-button").addEventListener("click", () => help.showModal());
  document.addEventListener("keydown", (event) => {
    if (event.key !== "?" || event.ctrlKey || event.metaKey || event.altKey) return;
    if (event.target.closest?.("input, textarea, select, [contenteditable]")) return;
    if ($("#help-button").hidden) return;
    event.preventDefault();
    if (help.open) help.close();
    else help.showModal();
  });
  window.addEventListener("hashchange", route);
  if (token()) {
    api("/me").then(
      (user) => {
        me = user;
        $("#who-name").textContent = `${me.name} · ${me.role}`;
        showAdminLink(location.hash === "#/admin");
      },
      () => {},
    );
  }
  route();
}

boot();
