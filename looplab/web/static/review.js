// The review page (#/projects/NAME/review): walks the project's review queue, most suspect
// first. For each item: the record, every answer it got and from whom, the consensus and its
// confidence, the scan's and the model's suggestion. Keep the given label (K), relabel (number
// keys) or mark the record ambiguous (A). The page section carries data-item (the item shown)
// and data-pending (decisions being saved) for tests and tools.

import { $, api, clone, enc, focusHeading, h, number, percent, setHeader, showError } from "./core.js";
import { answersView, factsView, recordView, reviewsView } from "./history.js";

const DIGITS = ["1", "2", "3", "4", "5", "6", "7", "8", "9", "0"];

export async function reviewPage(view, name) {
  setHeader(name, "review");
  const { node, slots } = clone("review");
  view.el.append(node);
  $("h1", view.el).textContent = `${name}: review`;
  focusHeading(view.el);
  const [project, quality] = await Promise.all([api(`/projects/${enc(name)}`), api(`/projects/${enc(name)}/quality`)]);
  const walker = new Walker(view, project, slots);
  slots.scan.addEventListener("click", () => scanNow(view, name, slots, walker));
  showScan(name, slots, quality);
  await walker.load();
  if (quality.scan && !quality.scan.finished_at && quality.scan.status !== "failed") await watchScan(view, name, slots, walker);
}

function showScan(name, slots, quality) {
  slots.summary.replaceChildren(...summaryText(name, quality));
  const status = quality.scan ? quality.scan.status : "none";
  $(".review-page").dataset.scan = status;
  slots.scan.disabled = status === "queued" || status === "running";
}

/** Queue a scan (a worker runs it), then follow it until it is done and reload the queue. */
async function scanNow(view, name, slots, walker) {
  slots.scan.disabled = true;
  try {
    await api(`/projects/${enc(name)}/quality/scan`, { method: "POST" });
  } catch (err) {
    slots.scan.disabled = false;
    showError(err);
    return;
  }
  await watchScan(view, name, slots, walker);
}

async function watchScan(view, name, slots, walker) {
  for (;;) {
    const quality = await api(`/projects/${enc(name)}/quality`);
    if (view.left) return;
    showScan(name, slots, quality);
    if (quality.scan.status === "done" || quality.scan.status === "failed") break;
    await new Promise((resolve) => setTimeout(resolve, 2000));
  }
  await walker.load();
}

/** The last scan in a sentence, with the confirm rate and its interval. */
function summaryText(name, quality) {
  const scan = quality.scan;
  if (!scan) return [`No label-error scan yet: run `, h("code", {}, `looplab quality ${name} --run`), "."];
  if (scan.skipped) return [`The last scan did not run: ${scan.skipped}.`];
  if (scan.status === "failed") return [`Scan ${scan.job_id} failed: ${scan.error}`];
  if (scan.status !== "done") return [`Scan ${scan.job_id} is ${scan.status}…`];
  const p = scan.precision;
  const rate = p.decided
    ? ` Reviewers confirmed ${number(p.confirmed)} of ${number(p.decided)} decided (${percent(p.rate)}, 95% interval ${percent(p.low)} to ${percent(p.high)}).`
    : "";
  return [`Scan ${scan.job_id}: ${number(scan.n_suspects)} suspects among ${number(scan.n_scanned)} labeled records.${rate}`];
}

class Walker {
  constructor(view, project, slots) {
    this.view = view;
    this.project = project;
    this.slots = slots;
    this.items = [];
    this.total = 0;
    this.item = null;
    this.pending = 0;
    this.section = $(".review-page", view.el);
    this.buttons = project.labels.map((label, i) => this.labelButton(label, i));
    slots.labels.replaceChildren(...this.buttons);
    slots.keep.addEventListener("click", () => this.decide("keep"));
    slots.ambiguous.addEventListener("click", () => this.decide("ambiguous"));
    const onKey = (event) => this.onKey(event);
    document.addEventListener("keydown", onKey);
    view.onLeave(() => document.removeEventListener("keydown", onKey));
    this.setPending(0);
  }

  labelButton(label, i) {
    const key = DIGITS[i] ?? "";
    const button = h(
      "button",
      { type: "button", className: "label" },
      h("kbd", { className: "num", "aria-hidden": "true" }, key || " "),
      h("span", { className: "name" }, label),
      h("span", { className: "hint" }),
    );
    if (key) button.setAttribute("aria-keyshortcuts", key);
    button.addEventListener("click", () => this.relabel(label));
    return button;
  }

  async load() {
    const page = await api(`/projects/${enc(this.project.name)}/review?limit=50`);
    this.items = page.items;
    this.total = page.total;
    await this.showNext();
  }

  async showNext() {
    if (this.view.left) return;
    this.item = this.items.shift() || null;
    if (!this.item && this.total > 0) {
      const page = await api(`/projects/${enc(this.project.name)}/review?limit=50`);
      this.items = page.items;
      this.total = page.total;
      this.item = this.items.shift() || null;
    }
    if (!this.item) return this.showEmpty();
    const history = await api(`/projects/${enc(this.project.name)}/records/${this.item.record_id}/history`);
    if (this.view.left) return;
    this.show(this.item, history);
  }

  show(item, history) {
    const { slots } = this;
    slots.work.hidden = false;
    slots.empty.hidden = true;
    slots.reason.textContent = `${item.reason.replace("_", " ")} · record ${item.record_id} · given ${item.given_label ?? "–"}`;
    slots.position.textContent = `${number(this.total)} open`;
    slots.record.replaceChildren(recordView(this.project, history));
    slots.facts.replaceChildren(factsView(history, item));
    slots.answers.replaceChildren(answersView(history));
    const reviews = reviewsView(history);
    slots.reviews.replaceChildren(...(reviews ? [reviews] : []));
    slots.open.href = `#/projects/${enc(this.project.name)}/records/${item.record_id}`;
    this.buttons.forEach((button, i) => {
      const label = this.project.labels[i];
      button.classList.toggle("given", label === item.given_label);
      button.classList.toggle("suggested", label === item.suggested_label);
      button.title = label === item.given_label ? "the given label: keeps it" : "";
      const hint = label === item.given_label ? "given" : label === item.suggested_label ? "suggested" : "";
      button.querySelector(".hint").textContent = hint;
    });
    this.section.dataset.item = String(item.id);
    $("article", slots.record)?.focus({ preventScroll: true });
  }

  showEmpty() {
    const { slots } = this;
    slots.work.hidden = true;
    slots.empty.hidden = false;
    this.section.dataset.item = "";
  }

  relabel(label) {
    if (!this.item) return;
    if (label === this.item.given_label) return this.decide("keep");
    return this.decide("relabel", label);
  }

  /** Save the decision, then show the next item; on failure the item stays on screen. */
  async decide(decision, label = undefined) {
    const item = this.item;
    if (!item || this.pending) return;
    this.setPending(this.pending + 1);
    try {
      await api(`/projects/${enc(this.project.name)}/review/${item.id}`, {
        method: "POST",
        body: label === undefined ? { decision } : { decision, label },
      });
      this.total = Math.max(0, this.total - 1);
      this.slots.done.textContent = `${decision === "relabel" ? `Relabeled as ${label}` : decision === "keep" ? "Kept" : "Marked ambiguous"}: record ${item.record_id}.`;
      this.setPending(this.pending - 1);
      await this.showNext();
    } catch (err) {
      this.setPending(this.pending - 1);
      showError(err, `Record ${item.record_id}: `);
      // A stale item (decided elsewhere, or its label changed) is skipped, not retried.
      if (err.status === 409 || err.status === 404) await this.showNext();
    }
  }

  setPending(n) {
    this.pending = n;
    this.section.dataset.pending = String(n);
    for (const el of [...this.buttons, this.slots.keep, this.slots.ambiguous]) el.disabled = n > 0;
  }

  onKey(event) {
    if (event.ctrlKey || event.metaKey || event.altKey) return;
    if (event.target.closest?.("input, textarea, select, [contenteditable]")) return;
    const key = event.key.toLowerCase();
    const i = DIGITS.indexOf(key);
    if (key === "k") this.decide("keep");
    else if (key === "a") this.decide("ambiguous");
    else if (i >= 0 && i < this.project.labels.length) this.relabel(this.project.labels[i]);
    else return;
    event.preventDefault();
  }
}
