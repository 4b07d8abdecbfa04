// The record browser (#/projects/NAME/records, reviewers): search text and metadata, filter by
// label, annotator, split, disagreement and flags, page through the matches; open a record
// (#/projects/NAME/records/ID) to see its full history. The results list carries data-total
// and data-query (the query it shows) once a search has come back.

import { $, api, clone, enc, focusHeading, h, number, setHeader } from "./core.js";
import { answersView, factsView, recordView, reviewsView } from "./history.js";

const PAGE = 25;

export async function recordsPage(view, name) {
  setHeader(name, "records");
  const { node, slots } = clone("records");
  view.el.append(node);
  $("h1", view.el).textContent = `${name}: records`;
  focusHeading(view.el);
  const project = await api(`/projects/${enc(name)}`);
  const form = slots.form;
  form.elements.label.append(...project.labels.map((label) => h("option", { value: label }, label)));
  let offset = 0;
  const search = async () => {
    const params = new URLSearchParams({ limit: String(PAGE), offset: String(offset) });
    const data = new FormData(form);
    for (const key of ["q", "label", "annotator", "split"]) {
      const value = String(data.get(key) || "").trim();
      if (value) params.set(key, value);
    }
    for (const key of ["disagreement", "flagged"]) if (data.get(key)) params.set(key, "true");
    const query = params.toString();
    slots.results.dataset.query = "";
    slots.error.textContent = "";
    let page;
    try {
      page = await api(`/projects/${enc(name)}/browse?${query}`);
    } catch (err) {
      if (view.left) return;
      slots.error.textContent = err.message;
      slots.results.replaceChildren();
      slots.results.dataset.total = "0";
      slots.results.dataset.query = query;
      return;
    }
    if (view.left) return;
    showResults(project, page, slots, offset);
    slots.results.dataset.total = String(page.total);
    slots.results.dataset.query = query;
    slots.prev.disabled = offset === 0;
    slots.next.disabled = offset + PAGE >= page.total;
  };
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    offset = 0;
    search();
  });
  form.addEventListener("change", (event) => {
    if (event.target.type === "checkbox" || event.target.tagName === "SELECT") {
      offset = 0;
      search();
    }
  });
  slots.prev.addEventListener("click", () => {
    offset = Math.max(0, offset - PAGE);
    search();
  });
  slots.next.addEventListener("click", () => {
    offset += PAGE;
    search();
  });
  await search();
}

function preview(project, payload) {
  const text = project.task === "text" ? String(payload.text ?? "") : Object.entries(payload).map(([k, v]) => `${k}: ${v}`).join(", ");
  return text.length > 140 ? `${text.slice(0, 140)}…` : text;
}

function showResults(project, page, slots, offset) {
  slots.count.textContent = page.total
    ? `${number(offset + 1)}–${number(offset + page.items.length)} of ${number(page.total)} records`
    : "No record matches.";
  const rows = page.items.map((r) => {
    const link = h("a", { href: `#/projects/${enc(project.name)}/records/${r.id}` }, preview(project, r.payload) || `record ${r.id}`);
    const flags = [r.disagreement ? "disagreement" : "", r.flagged ? "flagged" : ""].filter(Boolean).join(", ");
    return h(
      "tr",
      { "data-record": r.id },
      h("td", { className: "num" }, String(r.id)),
      h("td", {}, link),
      h("td", {}, r.labels.join(", ") || "–"),
      h("td", {}, r.annotators.join(", ") || "–"),
      h("td", {}, flags || "–"),
    );
  });
  slots.results.replaceChildren(...rows);
}

/** One record and its full history (#/projects/NAME/records/ID). */
export async function recordPage(view, name, id) {
  setHeader(name, "records");
  const { node, slots } = clone("record-history");
  view.el.append(node);
  $("h1", view.el).textContent = `${name}: record ${id}`;
  slots.back.href = `#/projects/${enc(name)}/records`;
  focusHeading(view.el);
  const [project, history] = await Promise.all([
    api(`/projects/${enc(name)}`),
    api(`/projects/${enc(name)}/records/${enc(id)}/history`),
  ]);
  slots.record.replaceChildren(recordView(project, history));
  const meta = Object.entries(history.record.meta || {});
  slots.meta.replaceChildren(...meta.map(([k, v]) => h("li", {}, h("span", { className: "tag-key" }, `${k} `), String(v))));
  slots.facts.replaceChildren(factsView(history));
  slots.answers.replaceChildren(answersView(history));
  const reviews = reviewsView(history);
  slots.reviews.replaceChildren(...(reviews ? [reviews] : [h("p", { className: "muted" }, "Never queued for review.")]));
  $(".record-page", view.el).dataset.record = String(history.record.id);
}
