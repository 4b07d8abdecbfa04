// A record's full history, as the review page and the record browser show it: the record, every
// answer (who, when, origin, status, the model versions it taught), the consensus of the answers
// and its confidence, the gold answer, the model's suggestion and the label training uses now.

import { h, number, percent } from "./core.js";
import { renderPayload } from "./label.js";

const when = (iso) => (iso ? new Date(iso).toLocaleString("en-GB", { dateStyle: "medium", timeStyle: "short" }) : "–");

/** The record itself (text large, other fields in a table). */
export function recordView(project, history) {
  return h("article", { className: "record history-record", tabindex: "-1" }, ...renderPayload(project, history.record.payload || {}));
}

/** One line per fact a reviewer weighs: consensus, gold, suggestion, training label. */
export function factsView(history, item = null) {
  const list = h("dl", { className: "facts" });
  const add = (term, ...value) => list.append(h("dt", {}, term), h("dd", {}, ...value));
  const c = history.consensus;
  if (c) {
    const votes = Object.entries(c.votes)
      .sort((a, b) => b[1] - a[1])
      .map(([label, n]) => `${label} ${number(n)}`)
      .join(", ");
    add("Consensus", h("strong", { "data-fact": "consensus" }, c.label), ` (${percent(c.confidence)} of the votes: ${votes})`);
  } else {
    add("Consensus", h("span", { className: "muted" }, "no active answer"));
  }
  if (history.gold) add("Gold answer", h("strong", {}, history.gold.label), ` (${history.gold.source}, ${history.gold.created_by})`);
  if (item && item.suggested_label) {
    add("Scan suggests", h("strong", { "data-fact": "suggested" }, item.suggested_label), ` (given label's out-of-fold probability ${percent(item.score)})`);
  }
  const s = history.suggestion;
  if (s) add("Model", `${s.model || "a model"} guesses `, h("strong", {}, s.label), s.confidence === null ? "" : ` (${percent(s.confidence)})`);
  const t = history.training_label;
  add("Trains as", t.label ? h("strong", { "data-fact": "training" }, t.label) : h("span", { "data-fact": "training" }, "nothing"), ` — ${t.why}`);
  return list;
}

/** Every answer, oldest first: who, label, origin, status, when, and the versions it taught. */
export function answersView(history) {
  if (!history.answers.length) return h("p", { className: "muted" }, "No answer yet.");
  const body = h("tbody");
  for (const a of history.answers) {
    const taught = a.models.length
      ? a.models.map((m) => `${m.version} (${m.split}${m.weight === 0 ? ", outvoted" : ""})`).join(", ")
      : "–";
    const label = a.ambiguous ? h("em", {}, "ambiguous") : a.label ?? "–";
    const row = h(
      "tr",
      { className: a.status === "active" ? "" : "inactive", "data-answer": a.id },
      h("td", {}, a.annotator ?? h("span", { className: "muted" }, "imported")),
      h("td", {}, label, a.ground_truth ? " ★" : ""),
      h("td", {}, a.origin),
      h("td", {}, a.status),
      h("td", {}, when(a.created_at)),
      h("td", {}, taught),
    );
    body.append(row);
  }
  const head = h("thead", {}, h("tr", {}, ...["Who", "Label", "Origin", "Status", "When", "Taught"].map((t) => h("th", { scope: "col" }, t))));
  return h("table", { className: "counts answers" }, h("caption", { className: "visually-hidden" }, "Answers"), head, body);
}

/** The review items about the record (what was suspected, and what was decided). */
export function reviewsView(history) {
  if (!history.reviews.length) return null;
  const items = history.reviews.map((r) =>
    h(
      "li",
      {},
      `${r.reason.replace("_", " ")}: given ${r.given_label ?? "–"}`,
      r.suggested_label ? `, suggested ${r.suggested_label}` : "",
      ` — ${r.status}`,
      r.decided_by ? ` by ${r.decided_by}, ${when(r.decided_at)}` : "",
    ),
  );
  return h("ul", { className: "reviews" }, ...items);
}
