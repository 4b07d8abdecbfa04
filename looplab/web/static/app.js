// looplab web UI: the hash router, sign-in and the project list. What the pages share is in
// core.js; each other page has a file of its own (label.js, dashboard.js, admin.js).

import { adminPage } from "./admin.js";
import { $, api, clone, enc, focusHeading, h, number, refreshHeader, session, setHeader, showAdminLink, signIn, signOut, token } from "./core.js";
import { dashboardPage } from "./dashboard.js";
import { labelPage } from "./label.js";
import { recordPage, recordsPage } from "./records.js";
import { reviewPage } from "./review.js";

// ---------------------------------------------------------------- pages

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
  if (session.signedOutBecause) fail(`You were signed out: ${session.signedOutBecause}`);
  session.signedOutBecause = "";
  input.focus();
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const candidate = input.value.trim();
    if (!candidate) return fail("Paste your access token first.");
    button.disabled = true;
    error.textContent = "";
    try {
      signIn(candidate, await api("/me", { auth: candidate }));
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

// ---------------------------------------------------------------- the router

const ROUTES = [
  [/^#\/signin$/, signinPage],
  [/^#\/projects$/, projectsPage],
  [/^#\/projects\/([^/]+)\/label$/, labelPage],
  [/^#\/projects\/([^/]+)\/dashboard$/, dashboardPage],
  [/^#\/projects\/([^/]+)\/review$/, reviewPage],
  [/^#\/projects\/([^/]+)\/records$/, recordsPage],
  [/^#\/projects\/([^/]+)\/records\/(\d+)$/, recordPage],
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
        session.me = user;
        $("#who-name").textContent = `${user.name} · ${user.role}`;
        showAdminLink(location.hash === "#/admin");
        refreshHeader();
      },
      () => {},
    );
  }
  route();
}

boot();
