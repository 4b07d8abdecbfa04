// The label page: one record at a time, driven by the keyboard.
//
// Flow: the record on screen is `current`; the next one is already fetched into `upcoming`
// (GET queue/next?exclude=<ids on this page>), so answering shows it at once. Answers are sent
// in the background (`send`): in order per record, retried on network and server errors, with a
// toast offering to retry when that fails too. Answered records go on `history`; Backspace takes
// the last one back on screen and puts `current` in front of `upcoming`.

import { api, clone, enc, h, number, percent, setHeader, showError, toast } from "./core.js";

const REFRESH_EVERY = 10; // new labels between progress refreshes
const RETRIES = 3; // automatic attempts before asking the person
const LOADING_DELAY = 150; // ms before "Loading…" shows, so a fast answer never flickers

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

export async function labelPage(view, name) {
  setHeader(name, "label");
  const project = await api(`/projects/${enc(name)}`);
  if (view.left) return;
  const page = new LabelPage(view, project);
  await page.start();
}

class LabelPage {
  constructor(view, project) {
    this.view = view;
    this.project = project;
    this.base = `/projects/${enc(project.name)}`;
    this.showSuggestions = project.settings?.show_suggestions !== false;
    this.current = null; // {record, suggestion, spent, answer} or null when the queue is empty
    this.shownAt = null; // performance.now() when current was shown (null while the tab is hidden)
    this.picked = null; // index of the highlighted label
    this.upcoming = []; // [{item, promise, error}] records fetched ahead, first is next
    this.history = []; // answered or skipped items, most recent last
    this.pending = new Map(); // record id -> the latest job sending its answer
    this.waiting = false; // true while the next record is being awaited: input is ignored
    this.askedServerForLast = false;
    this.status = null;
    this.newSinceStatus = 0; // new labels since the status was fetched (shown optimistically)
    this.savedSinceRefresh = 0;
    this.session = { labels: 0, seconds: 0 };

    const { node, slots } = clone("label");
    this.slots = slots;
    view.el.append(node);
    this.buttons = project.labels.map((label, i) => this.labelButton(label, i));
    slots.labels.append(...this.buttons);
    slots.guidelines.textContent = project.guidelines || "No guidelines for this project yet.";
    slots.guidelines.classList.toggle("muted", !project.guidelines);
    slots.submit.addEventListener("click", () => this.submitPicked());
    slots.accept.addEventListener("click", () => this.acceptSuggestion());
    // A long record scrolls inside its box; a fade and "Continues below" say there is more.
    slots.more.addEventListener("click", () =>
      slots.record.scrollBy({ top: slots.record.clientHeight * 0.8, behavior: "smooth" }),
    );
    slots.record.addEventListener("scroll", () => this.showMore(), { passive: true });
    const resized = new ResizeObserver(() => this.showMore());
    resized.observe(slots.record);
    slots.skip.addEventListener("click", () => this.skip());
    slots.back.addEventListener("click", () => this.back());

    const onKey = (event) => this.onKey(event);
    const onVisibility = () => this.onVisibility();
    const onUnload = (event) => {
      if (this.pending.size) {
        event.preventDefault();
        event.returnValue = "";
      }
    };
    document.addEventListener("keydown", onKey);
    document.addEventListener("visibilitychange", onVisibility);
    window.addEventListener("beforeunload", onUnload);
    view.onLeave(() => {
      document.removeEventListener("keydown", onKey);
      document.removeEventListener("visibilitychange", onVisibility);
      window.removeEventListener("beforeunload", onUnload);
      resized.disconnect();
    });
  }

  labelButton(label, i) {
    const key = labelKey(i);
    const button = h(
      "button",
      { type: "button", className: "label", "aria-pressed": "false" },
      h("kbd", { className: "num", "aria-hidden": "true" }, key || " "),
      h("span", { className: "name" }, label),
      h("span", { className: "hint" }),
    );
    if (key) button.setAttribute("aria-keyshortcuts", key);
    button.addEventListener("click", () => this.submit(i));
    return button;
  }

  async start() {
    this.refreshStatus();
    this.loading();
    let item = null;
    let error = null;
    try {
      item = await this.fetchNext();
    } catch (err) {
      if (err.status === 401) return;
      error = err;
    }
    if (this.view.left) return;
    this.show(item, error);
    this.prefetch();
  }

  // ------------------------------------------------------------ the queue

  /** Ids the server must not hand out again: on screen, fetched ahead, or still being saved. */
  onPage() {
    const ids = new Set(this.pending.keys());
    if (this.current) ids.add(this.current.record.id);
    for (const slot of this.upcoming) if (slot.item) ids.add(slot.item.record.id);
    return ids;
  }

  async fetchNext() {
    const query = [...this.onPage()].map((id) => `exclude=${id}`).join("&");
    const data = await api(`${this.base}/queue/next${query ? `?${query}` : ""}`);
    if (!data.record) return null;
    return {
      record: data.record,
      suggestion: data.suggestion || null,
      note: data.suggestion_note || "",
      source: data.source || null,
      spent: 0,
      answer: null,
    };
  }

  /** Fetch the record after the current one while the person reads. */
  prefetch() {
    if (this.upcoming.length || !this.current || this.view.left) return;
    const slot = { item: undefined, error: null };
    slot.promise = this.fetchNext().then(
      (item) => (slot.item = item),
      (error) => (slot.error = error),
    );
    this.upcoming.push(slot);
  }

  /** Show the next record: the prefetched one if it is there, otherwise ask the server. */
  async advance() {
    this.waiting = true;
    const timer = setTimeout(() => this.loading(), LOADING_DELAY);
    try {
      const slot = this.upcoming.shift();
      let item = null;
      if (slot) {
        await slot.promise;
        item = slot.item;
      }
      // Nothing fetched ahead (or the queue looked empty then): ask again now, once.
      if (!item) item = await this.fetchNext();
      if (this.view.left) return;
      this.show(item);
      this.prefetch();
    } catch (error) {
      if (this.view.left || error.status === 401) return;
      this.show(null, error);
    } finally {
      clearTimeout(timer);
      this.waiting = false;
    }
  }

  // ------------------------------------------------------------ showing a record

  loading() {
    this.slots.record.replaceChildren(h("p", { className: "muted" }, "Loading…"));
    this.slots.record.setAttribute("aria-busy", "true");
    this.showMore();
  }

  show(item, error = null) {
    this.current = item;
    this.shownAt = document.hidden ? null : performance.now();
    const { slots } = this;
    slots.record.removeAttribute("aria-busy");
    this.pick(null);
    for (const button of this.buttons) {
      button.classList.remove("suggested");
      button.querySelector(".hint").textContent = "";
      button.disabled = !item;
    }
    slots.submit.disabled = slots.skip.disabled = !item;
    slots.suggestion.hidden = true;
    slots["suggestion-note"].hidden = true;
    slots.fixing.hidden = true;
    if (!item) return this.showEmpty(error);

    const { record, suggestion, answer } = item;
    slots.record.dataset.recordId = record.id;
    this.showSource(item);
    slots.record.replaceChildren(...renderPayload(this.project, record.payload || {}));

    const i = suggestion && this.showSuggestions ? this.project.labels.indexOf(suggestion.label) : -1;
    if (i >= 0) {
      // The server hands out a suggestion only from a version above the project's floor, with
      // a sentence saying how often that version was right on held-out records like this one.
      // Below an even chance it is shown quietly: no highlighted button.
      const sure = suggestion.right_rate === null || suggestion.right_rate >= 0.5;
      slots["suggestion-text"].textContent = suggestion.words || `The model guesses ${suggestion.label}.`;
      slots.suggestion.title = `model ${suggestion.model_version}, confidence ${percent(suggestion.confidence)}`;
      slots.suggestion.classList.toggle("unsure", !sure);
      slots.suggestion.hidden = false;
      if (sure) {
        this.buttons[i].classList.add("suggested");
        this.buttons[i].querySelector(".hint").textContent = "suggested";
      }
    } else if (item.note && this.showSuggestions) {
      slots["suggestion-note"].textContent = item.note;
      slots["suggestion-note"].hidden = false;
    }
    if (answer) {
      slots.fixing.hidden = false;
      if (answer.skipped) {
        slots.fixing.textContent = "You skipped this one. Pick a label, or press S to leave it skipped.";
      } else {
        slots.fixing.textContent = `Your answer: ${answer.label}. Pick another label, or press Enter or S to keep it.`;
        this.pick(this.project.labels.indexOf(answer.label), false);
      }
    }
    slots.record.focus({ preventScroll: true });
    slots.record.scrollTop = 0;
    this.showMore();
  }

  /** The header: the import file and line, and the metadata, not only the database id. */
  showSource(item) {
    const { record, source } = item;
    const line = record.source_line;
    let where = `Record ${record.id}`;
    if (source) where = line ? `${source}, line ${number(line)}` : source;
    else if (line) where = `Line ${number(line)} of its import`;
    const parts = [where];
    if (record.needed > 1) parts.push(`${record.needed} people label this one`);
    this.slots["record-meta"].textContent = parts.join(" · ");
    this.slots["record-meta"].title = `looplab record ${record.id}`;
    const tags = Object.entries(record.meta || {})
      .filter(([, value]) => value !== null && value !== undefined && value !== "")
      .slice(0, 8)
      .map(([key, value]) => {
        const text = typeof value === "object" ? JSON.stringify(value) : String(value);
        const short = text.length > 60 ? `${text.slice(0, 59)}…` : text;
        return h("li", { title: `${key}: ${text}` }, h("span", { className: "tag-key" }, `${key}:`), " ", short);
      });
    if (source || line) tags.push(h("li", { className: "tag-id" }, `id ${record.id}`));
    this.slots["record-tags"].replaceChildren(...tags);
  }

  /** Fade the record's bottom edge and offer "Continues below" while part of it is out of view. */
  showMore() {
    const el = this.slots.record;
    const more = el.scrollHeight - el.scrollTop - el.clientHeight > 4;
    this.slots.frame.classList.toggle("has-more", more);
    this.slots.more.hidden = !more;
  }

  /** A: submit the label the model suggests (only while a suggestion is on screen). */
  acceptSuggestion() {
    const item = this.current;
    if (!item || this.waiting || this.slots.suggestion.hidden || !item.suggestion) return;
    const i = this.project.labels.indexOf(item.suggestion.label);
    if (i >= 0) this.submit(i);
  }

  /** The queue is empty (or, with `error`, the next record could not be loaded). */
  showEmpty(error = null) {
    const { slots } = this;
    delete slots.record.dataset.recordId;
    slots["record-meta"].textContent = "";
    slots["record-tags"].replaceChildren();
    const again = h("button", { type: "button", className: "primary" }, error ? "Try again" : "Check again");
    again.addEventListener("click", () => {
      if (!this.waiting) this.advance();
    });
    const dashboard = h("a", { href: `#${this.base}/dashboard`, className: "button" }, "Open the dashboard");
    slots.record.replaceChildren(
      error
        ? h("p", { className: "empty error", role: "alert" }, "Could not load the next record.")
        : h("p", { className: "empty" }, "No more records to label right now."),
      h(
        "p",
        { className: "muted" },
        error ? error.message : "Everything open is labeled, skipped by you, or being labeled by someone else.",
      ),
      h("p", { className: "actions" }, again, dashboard),
    );
    this.showMore();
    again.focus();
  }

  /** Highlight label i (null: none); with `focus`, move focus to it so Enter submits it. */
  pick(i, focus = true) {
    this.picked = i === null || i < 0 ? null : i;
    this.buttons.forEach((button, j) => button.setAttribute("aria-pressed", String(j === this.picked)));
    if (focus && this.picked !== null) this.buttons[this.picked].focus();
  }

  /** Seconds spent on the current record, over every time it was on screen. */
  elapsed() {
    const item = this.current;
    const now = this.shownAt === null ? 0 : performance.now() - this.shownAt;
    return Math.max(0.001, Math.round(item.spent + now) / 1000);
  }

  /** Bank the time spent on the current record before it leaves the screen unanswered. */
  stash() {
    if (this.current && this.shownAt !== null) this.current.spent += performance.now() - this.shownAt;
    this.shownAt = null;
  }

  onVisibility() {
    if (!this.current) return;
    if (document.hidden) this.stash();
    else if (this.shownAt === null) this.shownAt = performance.now();
  }

  // ------------------------------------------------------------ answering

  submitPicked() {
    if (!this.current || this.waiting) return;
    if (this.picked === null) {
      const n = this.project.labels.length;
      toast(`Pick a label first: press 1 to ${Math.min(n, 9)}.`);
      return;
    }
    this.submit(this.picked);
  }

  submit(i) {
    const item = this.current;
    if (!item || this.waiting) return;
    const label = this.project.labels[i];
    const before = item.answer;
    if (before && before.label === label) {
      this.history.push(item); // unchanged: nothing to send
      this.advance();
      return;
    }
    const seconds = this.elapsed();
    item.spent = seconds * 1000;
    item.answer = { label };
    this.history.push(item);
    if (!before || before.skipped) {
      this.session.labels += 1;
      this.session.seconds += seconds;
      this.newSinceStatus += 1;
      this.showProgress();
    }
    this.send(item, { record_id: item.record.id, label, seconds }, !before || before.skipped);
    this.advance();
  }

  skip() {
    const item = this.current;
    if (!item || this.waiting) return;
    this.history.push(item);
    if (item.answer) {
      this.advance(); // fixing an earlier record: S keeps its answer
      return;
    }
    this.stash();
    item.answer = { skipped: true };
    this.send(item, { record_id: item.record.id, skip: true }, false);
    this.advance();
  }

  async back() {
    if (this.waiting) return;
    let item = this.history.pop();
    if (!item && !this.askedServerForLast) {
      this.askedServerForLast = true;
      this.waiting = true;
      try {
        item = await this.lastFromServer();
      } finally {
        this.waiting = false;
      }
      if (this.view.left) return;
    }
    if (!item) {
      toast("Nothing further back to change.");
      return;
    }
    if (this.current) {
      this.stash();
      const slot = { item: this.current, error: null };
      slot.promise = Promise.resolve(slot.item);
      this.upcoming.unshift(slot);
    }
    this.show(item);
  }

  /** After a reload the page has no history; the server knows the last answer. */
  async lastFromServer() {
    try {
      const last = await api(`${this.base}/annotations/last`);
      if (this.onPage().has(last.record_id)) return null;
      const record = await api(`${this.base}/records/${last.record_id}`);
      const answer = last.status === "skipped" ? { skipped: true } : { label: last.label };
      return { record, suggestion: null, note: "", source: null, spent: 0, answer };
    } catch (error) {
      if (error.status !== 404) showError(error, "Could not load your last answer: ");
      return null;
    }
  }

  // ------------------------------------------------------------ saving in the background

  /** Send an answer (or a skip) for a record, after any earlier one for the same record. */
  send(item, body, isNew) {
    const id = item.record.id;
    const earlier = this.pending.get(id);
    if (earlier) earlier.obsolete = true; // the newer answer replaces it anyway
    if (earlier && earlier.release) earlier.release();
    const job = { id, body, isNew, obsolete: false, failed: false, release: null };
    job.done = (earlier ? earlier.done : Promise.resolve()).then(() => this.run(job));
    this.pending.set(id, job);
    this.showSaving();
  }

  async run(job) {
    const path = job.body.skip ? "/queue/skip" : "/annotations";
    const body = job.body.skip ? { record_id: job.id } : job.body;
    for (let attempt = 1; !job.obsolete; attempt++) {
      try {
        await api(this.base + path, { method: "POST", body, keepalive: true });
        break;
      } catch (error) {
        if (job.obsolete || error.status === 401) break;
        if (error.retryable && attempt < RETRIES) {
          await sleep(250 * 2 ** attempt); // 0.5 s, then 1 s
          continue;
        }
        if (!error.retryable) {
          showError(error, `Record ${job.id} was not saved: `);
          break;
        }
        job.failed = true;
        this.showSaving();
        await new Promise((resolve) => {
          const dismiss = toast(`Record ${job.id} was not saved: ${error.message}`, {
            kind: "error",
            action: { label: "Retry", run: resolve },
          });
          job.release = () => {
            dismiss();
            resolve();
          };
        });
        job.failed = false;
        job.release = null;
        attempt = 0;
      }
    }
    if (this.pending.get(job.id) === job) this.pending.delete(job.id);
    this.showSaving();
    if (job.isNew && !job.obsolete && ++this.savedSinceRefresh >= REFRESH_EVERY) {
      this.savedSinceRefresh = 0;
      this.refreshStatus();
    }
  }

  showSaving() {
    const jobs = [...this.pending.values()];
    const failed = jobs.filter((job) => job.failed).length;
    const el = this.slots.saving;
    el.dataset.pending = String(jobs.length);
    el.classList.toggle("error", failed > 0);
    if (failed) el.textContent = `${failed} answer${failed > 1 ? "s" : ""} not saved`;
    else if (jobs.length) el.textContent = "Saving…";
    else el.textContent = this.history.length ? "All answers saved" : "";
  }

  // ------------------------------------------------------------ progress

  async refreshStatus() {
    const counted = this.newSinceStatus;
    try {
      const status = await api(`${this.base}/status`);
      this.status = status;
      this.newSinceStatus -= counted;
    } catch (error) {
      if (error.status !== 401) showError(error, "Could not load progress: ");
    }
    this.showProgress();
  }

  showProgress() {
    const { slots, status, session } = this;
    if (status) {
      const labeled = Math.min(status.records, status.labeled + this.newSinceStatus);
      const share = status.records ? labeled / status.records : 0;
      slots["bar-fill"].style.width = `${(100 * share).toFixed(1)}%`;
      slots.progress.textContent = `${number(labeled)} of ${number(status.records)} labeled (${percent(share)})`;
    }
    if (session.labels) {
      const each = (session.seconds / session.labels).toFixed(1);
      slots.session.textContent = `You: ${number(session.labels)} this session, ${each} s each`;
    }
  }

  // ------------------------------------------------------------ the keyboard

  onKey(event) {
    if (event.defaultPrevented || event.ctrlKey || event.metaKey || event.altKey) return;
    if (document.querySelector("dialog[open]")) return;
    const target = event.target;
    if (target.closest?.("input, textarea, select, [contenteditable]")) return;
    const key = event.key;
    if (event.repeat && key !== "Backspace") return; // a held key answers once
    const i = labelIndex(key, this.project.labels.length);
    if (i !== null) {
      if (this.current && !this.waiting) {
        event.preventDefault();
        this.pick(i);
      }
    } else if (key === "Enter") {
      if (target.closest?.("button, a, summary")) return; // the focused control handles it
      event.preventDefault();
      this.submitPicked();
    } else if (key === "a" || key === "A") {
      event.preventDefault();
      this.acceptSuggestion();
    } else if (key === "s" || key === "S") {
      event.preventDefault();
      this.skip();
    } else if (key === "Backspace") {
      event.preventDefault();
      this.back();
    }
  }
}

// Every label gets a key: 1-9 and 0 for the first ten, then the letters no other shortcut uses
// (a accepts, s skips), then the same letters with Shift. 58 labels in all; a project with more
// picks the rest by click.
const LETTERS = "bcdefghijklmnopqrtuvwxyz";
const LABEL_KEYS = [
  ..."1234567890",
  ...LETTERS,
  ...LETTERS.toUpperCase(),
];

/** The key that picks label `i`, or "" past the last key. */
function labelKey(i) {
  return LABEL_KEYS[i] ?? "";
}

/** The label a key picks, or null: a key of no label (or past the project's labels). */
function labelIndex(key, count) {
  const i = LABEL_KEYS.indexOf(key);
  // A and S stay shortcuts whatever the label count (caps lock on); only keys of labels count.
  return i >= 0 && i < count ? i : null;
}

/** The record as DOM nodes: a text task shows `text` large, anything else a key/value table. */
export function renderPayload(project, payload) {
  const out = [];
  let keys = Object.keys(payload);
  if (project.task === "text") {
    out.push(h("p", { className: "record-text" }, String(payload.text ?? "")));
    keys = keys.filter((key) => key !== "text");
    if (!keys.length) return out;
  } else {
    const order = (project.fields || []).filter((k) => k in payload);
    keys.sort((a, b) => rank(order, a) - rank(order, b));
  }
  const body = h("tbody");
  for (const key of keys) {
    const value = payload[key];
    const shown = value === null || value === undefined ? "–" : typeof value === "object" ? JSON.stringify(value) : String(value);
    body.append(h("tr", {}, h("th", { scope: "row" }, key), h("td", {}, shown)));
  }
  out.push(h("table", { className: "kv" }, body));
  return out;
}

function rank(order, key) {
  const i = order.indexOf(key);
  return i < 0 ? order.length : i;
}
