// The dashboard page (#/projects/NAME/dashboard): progress, labels per class and per person, the
// learning curve, then the annotators panel (trust.js, reviewers) and the monitoring panel
// (monitor.js). The page's section gets data-loaded when every part has been drawn.

import { $, api, clone, enc, focusHeading, h, niceTicks, number, percent, setHeader, svg as s } from "./core.js";
import { monitorPanel } from "./monitor.js";
import { trustPanel } from "./trust.js";

export async function dashboardPage(view, name) {
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
  const root = $("section", view.el);
  await trustPanel(view, name, root);
  await monitorPanel(view, name, root);
  root.dataset.loaded = "true";
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
  const xs = niceTicks(Math.max(...points.map((p) => p.n_labels)), 5);
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
  const text = (attrs, content) => s("text", attrs, content);
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
