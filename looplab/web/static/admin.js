// The admin page (#/admin): create a project, import a file, export, settings, users.
//
// Every action is a call to the HTTP API the CLI's functions sit behind, so the server checks
// and audits it; the page only gathers input and shows answers. Server text reaches the page
// through textContent and attributes only. Each form reports through a live region next to it.

import { api, ApiError, enc, h, number, setHeader, toast, token } from "./core.js";

const POLL_MS = 400; // how often a running import is asked for its progress
const FORMATS = ["jsonl", "csv", "parquet", "label-studio"];
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

export async function adminPage(view) {
  setHeader(null, "admin");
  const heading = h("h1", { id: "admin-title", tabIndex: -1 }, "Admin");
  const page = h("section", { className: "admin", "aria-labelledby": "admin-title" }, heading);
  view.el.append(page);
  heading.focus({ preventScroll: true });

  const state = { projects: [] };
  const picker = h("select", { id: "admin-project" });
  const projectBar = h(
    "div",
    { className: "admin-project panel" },
    h("label", { htmlFor: "admin-project" }, "Project"),
    picker,
    h("p", { className: "muted" }, "Import, export and settings below act on this project."),
  );
  const create = createSection(state, async (name) => {
    await loadProjects(name);
  });
  const importer = importSection(state, picker, view);
  const exporter = exportSection(picker);
  const settings = settingsSection(picker, view);
  const users = usersSection();
  page.append(
    h("div", { className: "admin-grid" }, create.el, users.el),
    projectBar,
    h("div", { className: "admin-grid" }, importer.el, exporter.el),
    settings.el,
  );

  async function loadProjects(select) {
    state.projects = await api("/projects");
    const keep = select || picker.value;
    picker.replaceChildren(...state.projects.map((p) => h("option", { value: p.name }, p.name)));
    if (keep && state.projects.some((p) => p.name === keep)) picker.value = keep;
    projectBar.hidden = state.projects.length === 0;
    importer.el.hidden = exporter.el.hidden = settings.el.hidden = state.projects.length === 0;
    picker.dispatchEvent(new Event("change"));
  }
  picker.addEventListener("change", () => {
    const project = state.projects.find((p) => p.name === picker.value);
    importer.setProject(project);
    settings.load(project);
  });
  await Promise.all([loadProjects(), users.load()]);
}

// ---------------------------------------------------------------- helpers

/** A labelled control: <div class="field"><label>…</label>control<p hint></p></div>. */
function field(id, text, control, hint = "") {
  control.id = id;
  const parts = [h("label", { htmlFor: id }, text), control];
  if (hint) {
    const note = h("p", { id: `${id}-hint`, className: "hint muted" }, hint);
    control.setAttribute("aria-describedby", note.id);
    parts.push(note);
  }
  return h("div", { className: "field" }, ...parts);
}

function panel(id, title, ...children) {
  return h("section", { className: "panel admin-panel", "aria-labelledby": id }, h("h2", { id }, title), ...children);
}

/** A status line read out by screen readers; `kind` "error" makes it an alert. */
function statusLine() {
  const el = h("p", { className: "status", role: "status", "aria-live": "polite" });
  return {
    el,
    say(text, kind = "") {
      el.className = `status ${kind}`;
      el.setAttribute("role", kind === "error" ? "alert" : "status");
      el.textContent = text;
    },
  };
}

/** Mark the control named by an API error's details as invalid and focus it. */
function markInvalid(form, error) {
  for (const el of form.querySelectorAll("[aria-invalid]")) el.removeAttribute("aria-invalid");
  const details = (error && error.details) || {};
  const names = [details.field, ...(details.problems || []).map((p) => p.field)].filter(Boolean);
  for (const name of names) {
    const control = form.querySelector(`[name="${CSS.escape(String(name).split(".")[0])}"]`);
    if (control) {
      control.setAttribute("aria-invalid", "true");
      control.focus();
      return;
    }
  }
}

const count = (n, noun) => `${number(n)} ${noun}${n === 1 ? "" : "s"}`;

const list = (text) =>
  text
    .split(",")
    .map((part) => part.trim())
    .filter(Boolean);

// ---------------------------------------------------------------- create a project

function createSection(state, created) {
  const status = statusLine();
  const name = h("input", { name: "name", required: true, autocomplete: "off", spellcheck: false });
  const task = h("select", { name: "task" }, h("option", { value: "text" }, "text"), h("option", { value: "tabular" }, "tabular"));
  const labels = h("input", { name: "labels", required: true, autocomplete: "off" });
  const fields = h("input", { name: "fields", autocomplete: "off" });
  const guidelines = h("textarea", { name: "guidelines", rows: 3 });
  const fieldsRow = field("new-fields", "Input fields (optional)", fields, "Comma-separated; else the first import's columns.");
  fieldsRow.hidden = true;
  task.addEventListener("change", () => (fieldsRow.hidden = task.value !== "tabular"));
  const button = h("button", { type: "submit", className: "primary" }, "Create project");
  const form = h(
    "form",
    { id: "create-form", noValidate: true },
    field("new-name", "Name", name, "Lower-case letters, digits, _ and -, e.g. news."),
    field("new-task", "Task", task),
    field("new-labels", "Labels", labels, "Comma-separated, at least two, e.g. business, sport, tech."),
    fieldsRow,
    field("new-guidelines", "Guidelines for annotators", guidelines),
    h("p", { className: "actions" }, button),
    status.el,
  );
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    button.disabled = true;
    status.say("Creating…");
    const body = { name: name.value.trim(), task: task.value, labels: list(labels.value), guidelines: guidelines.value };
    if (task.value === "tabular" && list(fields.value).length) body.fields = list(fields.value);
    try {
      const project = await api("/projects", { method: "POST", body });
      status.say(`Created project ${project.name} (${project.task}; labels: ${project.labels.join(", ")}).`, "ok");
      form.reset();
      fieldsRow.hidden = true;
      await created(project.name);
    } catch (err) {
      status.say(err.message, "error");
      markInvalid(form, err);
    } finally {
      button.disabled = false;
    }
  });
  return { el: panel("create-title", "Create a project", form) };
}

// ---------------------------------------------------------------- import: upload, then a job

/** Column names from the start of a CSV or JSONL file (null when they cannot be read here). */
async function sniffColumns(file) {
  const lower = file.name.toLowerCase();
  const head = await file.slice(0, 256 * 1024).text();
  const first = head.split(/\r?\n/, 1)[0].replace(/^\uFEFF/, "");
  if (lower.endsWith(".csv")) return parseCsvLine(first).filter(Boolean);
  if (lower.endsWith(".jsonl") || lower.endsWith(".ndjson")) {
    try {
      const row = JSON.parse(first);
      return row && typeof row === "object" && !Array.isArray(row) ? Object.keys(row) : null;
    } catch {
      return null;
    }
  }
  return null; // Parquet and Label Studio JSON: type the names
}

function parseCsvLine(line) {
  const out = [];
  let cell = "";
  let quoted = false;
  for (let i = 0; i < line.length; i++) {
    const c = line[i];
    if (quoted) {
      if (c === '"' && line[i + 1] === '"') {
        cell += '"';
        i++;
      } else if (c === '"') quoted = false;
      else cell += c;
    } else if (c === '"') quoted = true;
    else if (c === ",") {
      out.push(cell.trim());
      cell = "";
    } else cell += c;
  }
  out.push(cell.trim());
  return out;
}

function importSection(state, picker, view) {
  let project = null;
  let columns = null;
  const status = statusLine();
  const file = h("input", { type: "file", name: "file", accept: ".csv,.jsonl,.ndjson,.parquet,.pq,.json" });
  const mapping = h("div", { className: "mapping" });
  const bar = h("progress", { max: 100, className: "import-progress", "aria-label": "Import progress" });
  bar.hidden = true;
  const button = h("button", { type: "submit", className: "primary" }, "Import");
  const form = h(
    "form",
    { id: "import-form", noValidate: true },
    field("import-file", "File", file, "CSV, JSONL, Parquet or Label Studio JSON. All or nothing: a bad row imports nothing."),
    mapping,
    h("p", { className: "actions" }, button),
    bar,
    status.el,
  );
  const controls = {};

  function columnSelect(name, id, text, { optional = false, hint = "" } = {}) {
    let control;
    if (columns) {
      control = h("select", { name });
      if (optional) control.append(h("option", { value: "" }, "(none)"));
      for (const column of columns) control.append(h("option", { value: column }, column));
    } else control = h("input", { name, autocomplete: "off", spellcheck: false });
    controls[name] = control;
    return field(id, text, control, hint);
  }

  function columnChoices(name, legend, hint) {
    if (!columns) {
      const control = h("input", { name, autocomplete: "off", spellcheck: false });
      controls[name] = control;
      return field(`import-${name}`, legend, control, `${hint} Comma-separated.`);
    }
    const boxes = columns.map((column, i) => {
      const box = h("input", { type: "checkbox", name, value: column, id: `import-${name}-${i}` });
      return h("label", { className: "check", htmlFor: box.id }, box, column);
    });
    controls[name] = { get value() { return boxes.map((l) => l.firstChild).filter((b) => b.checked).map((b) => b.value).join(","); } };
    return h("fieldset", { className: "choices" }, h("legend", {}, legend), h("p", { className: "hint muted" }, hint), ...boxes);
  }

  function renderMapping() {
    mapping.replaceChildren();
    for (const key of Object.keys(controls)) delete controls[key];
    if (!project) return;
    if (project.task === "text") {
      mapping.append(columnSelect("text", "import-text", "Text column"));
      if (columns && columns.includes("text")) controls.text.value = "text";
    } else if (!project.fields.length) {
      mapping.append(columnChoices("fields", "Input columns", "The first import sets the project's fields."));
    } else {
      mapping.append(h("p", { className: "muted" }, `Input columns: ${project.fields.join(", ")} (set by the first import).`));
    }
    mapping.append(columnSelect("label", "import-label", "Label column (optional)", { optional: true, hint: "Known labels, imported as answers." }));
    mapping.append(columnChoices("meta", "Metadata columns (optional)", "Kept with each record: slices, source, date."));
    if (!columns && file.files.length) mapping.prepend(h("p", { className: "muted" }, "Column names cannot be read from this file here: type them."));
  }

  file.addEventListener("change", async () => {
    columns = file.files.length ? await sniffColumns(file.files[0]).catch(() => null) : null;
    renderMapping();
    status.say("");
    bar.hidden = true;
  });

  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    if (!project) return;
    if (!file.files.length) {
      status.say("Choose a file first.", "error");
      file.focus();
      return;
    }
    const chosen = file.files[0];
    const params = new URLSearchParams({ filename: chosen.name });
    for (const key of ["text", "label", "fields", "meta"]) {
      const value = controls[key] ? String(controls[key].value || "").trim() : "";
      if (value) params.set(key, value);
    }
    button.disabled = true;
    bar.hidden = false;
    bar.removeAttribute("value"); // indeterminate while the file goes up
    status.say(`Uploading ${chosen.name} (${number(chosen.size)} bytes)…`);
    try {
      const job = await upload(`/projects/${enc(project.name)}/imports?${params}`, chosen);
      await follow(job, chosen.name);
    } catch (err) {
      bar.hidden = true;
      status.say(err.message, "error");
      markInvalid(form, err);
    } finally {
      button.disabled = false;
    }
  });

  async function follow(job, name) {
    while (!view.left) {
      const p = job.progress;
      if (job.status === "queued") {
        bar.removeAttribute("value");
        status.say(`Queued: waiting for a worker to import ${name}…`);
      } else if (job.status === "running") {
        const share = p && p.total ? Math.min(100, (100 * p.done) / p.total) : null;
        if (share === null) bar.removeAttribute("value");
        else bar.value = share;
        const rows = p ? `${number(p.rows)} records read` : "starting";
        status.say(`Importing ${name}: ${rows}${share === null ? "" : ` (${Math.round(share)}%)`}…`);
      } else if (job.status === "done") {
        const r = job.result;
        bar.value = 100;
        status.say(
          `Done: imported ${count(r.imported, "record")} from ${r.file} (${count(r.duplicates, "duplicate")} dropped, ${count(r.labels, "label")}).`,
          "ok",
        );
        toast(`Imported ${count(r.imported, "record")} into ${job.project}.`);
        return;
      } else {
        bar.hidden = true;
        status.say(`Import failed, nothing was written: ${job.error}`, "error");
        return;
      }
      await sleep(POLL_MS);
      job = await api(`/jobs/${job.id}`);
    }
  }

  return {
    el: panel("import-title", "Import records", form),
    setProject(next) {
      project = next || null;
      renderMapping();
    },
  };
}

/** POST a file as the raw request body; resolve to the JSON answer or throw an ApiError. */
async function upload(path, file) {
  let response;
  try {
    response = await fetch(`/api/v1${path}`, {
      method: "POST",
      headers: { Authorization: `Bearer ${token()}`, "Content-Type": "application/octet-stream", Accept: "application/json" },
      body: file,
    });
  } catch {
    throw new ApiError(0, "network", "Cannot reach the looplab server. Is it running?");
  }
  const data = await response.json().catch(() => null);
  if (!response.ok) {
    const e = (data && data.error) || {};
    throw new ApiError(response.status, e.code || "http_error", e.message || `The server answered ${response.status}.`, e.details);
  }
  return data;
}

// ---------------------------------------------------------------- export

function exportSection(picker) {
  const status = statusLine();
  const format = h("select", { name: "format" }, ...FORMATS.map((f) => h("option", { value: f }, f)));
  const button = h("button", { type: "submit", className: "primary" }, "Download");
  const form = h(
    "form",
    { id: "export-form" },
    field("export-format", "Format", format, "Every record with its metadata, final label and every answer, as `looplab export` writes it."),
    h("p", { className: "actions" }, button),
    status.el,
  );
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const name = picker.value;
    button.disabled = true;
    status.say(`Exporting ${name}…`);
    try {
      const response = await fetch(`/api/v1/projects/${enc(name)}/export?format=${enc(format.value)}`, {
        headers: { Authorization: `Bearer ${token()}` },
      });
      if (!response.ok) {
        const data = await response.json().catch(() => null);
        throw new Error((data && data.error && data.error.message) || `The server answered ${response.status}.`);
      }
      const blob = await response.blob();
      const disposition = response.headers.get("Content-Disposition") || "";
      const filename = (disposition.match(/filename="([^"]+)"/) || [])[1] || `${name}.${format.value}`;
      const link = h("a", { href: URL.createObjectURL(blob), download: filename });
      document.body.append(link);
      link.click();
      link.remove();
      setTimeout(() => URL.revokeObjectURL(link.href), 10_000);
      status.say(`Downloaded ${filename} (${number(blob.size)} bytes).`, "ok");
    } catch (err) {
      status.say(err.message, "error");
    } finally {
      button.disabled = false;
    }
  });
  return { el: panel("export-title", "Export", form) };
}

// ---------------------------------------------------------------- settings

/** A value as `looplab config key=value` reads it: JSON if it parses, else the text. */
function parseValue(text) {
  try {
    return JSON.parse(text);
  } catch {
    return text;
  }
}

function settingsSection(picker, view) {
  const status = statusLine();
  const body = h("div", { className: "settings-fields" });
  const button = h("button", { type: "submit", className: "primary" }, "Save settings");
  const form = h(
    "form",
    { id: "settings-form", noValidate: true },
    h("p", { className: "muted" }, "Values are read as `looplab config` reads them: JSON (numbers, true, false, null, lists) or plain text. Only changed values are sent."),
    body,
    h("p", { className: "actions" }, button),
    status.el,
  );
  let current = {};
  const inputs = {};
  let loading = 0; // only the latest load fills the form (the picker may change again first)

  async function load(project) {
    const ticket = ++loading;
    status.say("");
    delete form.dataset.project; // whose settings the fields hold: none while a load is pending
    if (!project) {
      body.replaceChildren();
      return;
    }
    const settings = await api(`/projects/${enc(project.name)}/settings`);
    if (view.left || ticket !== loading) return;
    current = settings;
    body.replaceChildren();
    for (const key of Object.keys(inputs)) delete inputs[key];
    for (const [key, value] of Object.entries(current)) {
      let control;
      if (typeof value === "boolean") {
        control = h("input", { type: "checkbox", name: key, checked: value });
        const id = `setting-${key}`;
        control.id = id;
        body.append(h("div", { className: "field check-field" }, h("label", { className: "check", htmlFor: id }, control, key)));
      } else {
        // Plain text shows as typed; everything else as JSON (null, numbers, lists).
        const shown = typeof value === "string" && parseValue(value) === value ? value : JSON.stringify(value);
        control = h("input", { name: key, autocomplete: "off", spellcheck: false, value: shown });
        body.append(field(`setting-${key}`, key, control));
      }
      inputs[key] = control;
    }
    form.dataset.project = project.name;
  }

  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const changes = {};
    for (const [key, control] of Object.entries(inputs)) {
      const value = control.type === "checkbox" ? control.checked : parseValue(control.value.trim());
      if (JSON.stringify(value) !== JSON.stringify(current[key])) changes[key] = value;
    }
    if (!Object.keys(changes).length) {
      status.say("Nothing changed.");
      return;
    }
    button.disabled = true;
    try {
      await api(`/projects/${enc(picker.value)}/settings`, { method: "PATCH", body: changes });
      status.say(`Saved: ${Object.keys(changes).join(", ")}.`, "ok");
      for (const el of form.querySelectorAll("[aria-invalid]")) el.removeAttribute("aria-invalid");
      current = { ...current, ...changes };
    } catch (err) {
      status.say(err.message, "error");
      markInvalid(form, err);
    } finally {
      button.disabled = false;
    }
  });
  return { el: panel("settings-title", "Settings", form), load };
}

// ---------------------------------------------------------------- users

function usersSection() {
  const status = statusLine();
  const rows = h("tbody");
  const table = h(
    "table",
    { className: "counts users" },
    h("caption", { className: "visually-hidden" }, "Users"),
    h("thead", {}, h("tr", {}, ...["Name", "Role", "Status", "Actions"].map((c) => h("th", { scope: "col" }, c)))),
    rows,
  );
  const tokenBox = h("div", { className: "token-box", hidden: true, tabIndex: -1, role: "group", "aria-labelledby": "token-title" });
  const name = h("input", { name: "name", autocomplete: "off", spellcheck: false, required: true });
  const role = h("select", { name: "role" }, ...["annotator", "reviewer", "admin"].map((r) => h("option", { value: r }, r)));
  const button = h("button", { type: "submit", className: "primary" }, "Add user");
  const form = h(
    "form",
    { id: "user-form", className: "inline-form", noValidate: true },
    field("user-name", "Name", name),
    field("user-role", "Role", role),
    h("p", { className: "actions" }, button),
  );

  function showToken(user, token) {
    const code = h("code", { className: "token" }, token);
    const copy = h("button", { type: "button" }, "Copy");
    copy.addEventListener("click", async () => {
      try {
        await navigator.clipboard.writeText(token);
        copy.textContent = "Copied";
      } catch {
        const range = document.createRange();
        range.selectNodeContents(code);
        getSelection().removeAllRanges();
        getSelection().addRange(range);
        copy.textContent = "Selected: press Ctrl+C";
      }
    });
    const done = h("button", { type: "button", className: "quiet" }, "I have saved it");
    done.addEventListener("click", () => {
      tokenBox.hidden = true;
      tokenBox.replaceChildren();
      name.focus();
    });
    tokenBox.replaceChildren(
      h("h3", { id: "token-title" }, `Token for ${user.name} (${user.role})`),
      h("p", {}, "Shown once: only its hash is stored. Give it to the person now; a new one can be issued later."),
      code,
      h("p", { className: "actions" }, copy, done),
    );
    tokenBox.hidden = false;
    tokenBox.focus();
  }

  async function load() {
    const users = await api("/users");
    rows.replaceChildren();
    for (const user of users) {
      const actions = h("td", { className: "row-actions" });
      if (user.active) {
        const disable = h("button", { type: "button", "aria-label": `Disable ${user.name}` }, "Disable");
        disable.addEventListener("click", () => act(`/users/${enc(user.name)}/disable`, `Disabled ${user.name}: their token no longer works.`));
        actions.append(disable);
      }
      const issue = h("button", { type: "button", "aria-label": `New token for ${user.name}` }, "New token");
      issue.addEventListener("click", async () => {
        try {
          const created = await api(`/users/${enc(user.name)}/token`, { method: "POST" });
          status.say(`New token for ${user.name}; the old one stopped working.`, "ok");
          await load();
          showToken(created, created.token);
        } catch (err) {
          status.say(err.message, "error");
        }
      });
      actions.append(issue);
      rows.append(
        h(
          "tr",
          {},
          h("th", { scope: "row" }, user.name),
          h("td", {}, user.role),
          h("td", {}, user.active ? "active" : "disabled"),
          actions,
        ),
      );
    }
  }

  async function act(path, message) {
    try {
      await api(path, { method: "POST" });
      status.say(message, "ok");
      await load();
    } catch (err) {
      status.say(err.message, "error");
    }
  }

  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    button.disabled = true;
    try {
      const created = await api("/users", { method: "POST", body: { name: name.value.trim(), role: role.value } });
      status.say(`Created ${created.role} ${created.name}.`, "ok");
      form.reset();
      await load();
      showToken(created, created.token);
    } catch (err) {
      status.say(err.message, "error");
      markInvalid(form, err);
    } finally {
      button.disabled = false;
    }
  });
  return { el: panel("users-title", "Users", table, status.el, tokenBox, h("h3", {}, "Add a user"), form), load };
}
