// The dashboard's monitoring panel: drift per feature, accuracy from feedback, prediction mix and
// latency over the monitor windows, then the trigger rules. Inline SVG, no library. Data from
// the server reaches the page only through textContent and attributes. Colours come from CSS
// variables (style.css: --chart-1 ... --chart-8 and the page's own), through class names, so
// both colour schemes hold WCAG contrast: text 4.5:1, lines and marks 3:1 on the panel.

import { api, enc, h, niceTicks, number, percent, svg as s } from "./core.js";

const N_COLORS = 8; // series classes c0 ... c7 (style.css)
const W = 640;
const H = 260;
const M = { left: 70, right: 16, top: 14, bottom: 46 };

const shortDate = (iso) => String(iso).slice(5, 16).replace("T", " ");
// Every figure is one model version's: a window holds the predictions of one version.
const tag = (w) => `window ${w.id} (${w.model_version})`;

/** Decimals that show every tick of `ticks` exactly (step 0.05 -> 2, 2.5 -> 1, 20 -> 0). */
function decimals(ticks) {
  const step = String(Number((ticks[1] - ticks[0]).toPrecision(12)));
  const dot = step.indexOf(".");
  return dot < 0 ? 0 : step.length - dot - 1;
}

/** A chart frame over windows 0..n-1: axes, y grid, window labels, alarm bands. The y axis runs
 * to the first round tick at or above `top`; `yFormat(v, decimals)` writes a tick. */
function frame(label, windows, top, yFormat, yLabel) {
  const yTicks = niceTicks(top);
  const yMax = yTicks[yTicks.length - 1];
  const places = decimals(yTicks);
  const n = windows.length;
  const step = (W - M.left - M.right) / Math.max(n, 1);
  const x = (i) => M.left + (i + 0.5) * step;
  const y = (v) => H - M.bottom - (Math.min(v, yMax) / yMax) * (H - M.top - M.bottom);
  const svg = s("svg", { viewBox: `0 0 ${W} ${H}`, role: "img", "aria-label": label, class: "chart monitor-chart" });
  svg.append(s("title", {}, label));
  // Alarms (accuracy at risk: level performance) and warnings (inputs or predictions changed).
  windows.forEach((w, i) => {
    const level = w.level || (w.alarm ? "performance" : "none");
    if (level === "none") return;
    const band = s("rect", {
      class: level === "performance" ? "alarm-band" : "warning-band",
      x: x(i) - step / 2, y: M.top, width: step, height: H - M.top - M.bottom,
    });
    const why = (w.level_reasons || []).join("; ");
    band.append(s("title", {}, `${tag(w)}: ${level === "performance" ? "alarm" : "warning"}, level ${level}${why ? ": " + why : ""}`));
    svg.append(band);
  });
  // Where another version's windows begin: its figures compare with its own reference.
  windows.forEach((w, i) => {
    if (!i || w.model_version === windows[i - 1].model_version) return;
    const at = x(i) - step / 2;
    svg.append(s("line", { class: "version-change", x1: at, x2: at, y1: M.top, y2: H - M.bottom, "stroke-dasharray": "2 3" }));
    svg.append(s("text", { class: "version-name", x: at + 3, y: M.top + 10, "font-size": 11 }, w.model_version || "?"));
  });
  for (const v of yTicks) {
    svg.append(s("line", { class: "gridline", x1: M.left, x2: W - M.right, y1: y(v), y2: y(v) }));
    svg.append(s("text", { class: "tick-label y-tick", x: M.left - 6, y: y(v) + 4, "text-anchor": "end", "font-size": 11 }, yFormat(v, places)));
  }
  const every = Math.max(1, Math.ceil(n / 6));
  windows.forEach((w, i) => {
    if (i % every && i !== n - 1) return;
    svg.append(s("text", { class: "tick-label", x: x(i), y: H - M.bottom + 16, "text-anchor": "middle", "font-size": 11 }, shortDate(w.end)));
  });
  svg.append(s("line", { class: "axis", x1: M.left, x2: W - M.right, y1: H - M.bottom, y2: H - M.bottom }));
  svg.append(s("text", { class: "axis-label", x: (M.left + W - M.right) / 2, y: H - 8, "text-anchor": "middle", "font-size": 12 }, "Window end (UTC)"));
  svg.append(s("text", { class: "axis-label", transform: `translate(12 ${(M.top + H - M.bottom) / 2}) rotate(-90)`, "text-anchor": "middle", "font-size": 12 }, yLabel));
  return { svg, x, y, windows };
}

/** Lines with optional interval whiskers; `points` hold {i, v, lo, hi, hollow, tip}.
 * A line breaks where the model version changes: two versions' figures are not one series. */
function lines(chart, series) {
  const legend = h("ul", { className: "monitor-legend" });
  series.forEach((ser, k) => {
    const color = `c${(ser.color ?? k) % N_COLORS}`;
    const pts = ser.points.filter((p) => typeof p.v === "number");
    if (!pts.length) return;
    const version = (p) => chart.windows[p.i].model_version;
    const d = pts.map((p, j) => `${j && version(p) === version(pts[j - 1]) ? "L" : "M"}${chart.x(p.i).toFixed(1)},${chart.y(p.v).toFixed(1)}`).join(" ");
    chart.svg.append(s("path", { class: `series-line ${color}`, d, "stroke-width": 2, "stroke-dasharray": ser.dash || "" }));
    for (const p of pts) {
      if (typeof p.lo === "number" && typeof p.hi === "number") {
        chart.svg.append(s("line", { class: `whisker ${color}`, x1: chart.x(p.i), x2: chart.x(p.i), y1: chart.y(p.lo), y2: chart.y(p.hi) }));
      }
      const dot = s("circle", {
        cx: chart.x(p.i), cy: chart.y(p.v), r: 4, "stroke-width": 2,
        class: `point ${color}${p.hollow ? " hollow" : ""}`,
      });
      dot.append(s("title", {}, p.tip));
      chart.svg.append(dot);
    }
    const swatch = h("span", { className: `swatch ${color}`, "aria-hidden": "true" });
    legend.append(h("li", {}, swatch, ser.name));
  });
  return legend;
}

function driftChart(windows) {
  const names = new Map();
  for (const w of windows) {
    for (const [name, f] of Object.entries(w.features)) {
      names.set(name, Math.max(names.get(name) || 0, f.effect_size || 0));
    }
  }
  const top = [...names.entries()].sort((a, b) => b[1] - a[1]).slice(0, 8).map(([n]) => n);
  const floor = Math.max(0, ...windows.flatMap((w) => Object.values(w.features).map((f) => f.min_effect || 0)));
  const yMax = Math.max(floor * 2, ...top.map((n) => names.get(n))) * 1.1 || 0.1;
  const chart = frame("Drift per feature: effect size per window (filled = drift)", windows, yMax, (v, d) => v.toFixed(d), "Effect size");
  chart.svg.append(s("line", { class: "floor", x1: M.left, x2: W - M.right, y1: chart.y(floor), y2: chart.y(floor), "stroke-dasharray": "5 4" }));
  chart.svg.append(s("text", { class: "floor-label", x: W - M.right, y: chart.y(floor) - 4, "text-anchor": "end", "font-size": 11 }, `floor ${floor}`));
  const series = top.map((name) => ({
    name,
    points: windows.map((w, i) => {
      const f = w.features[name];
      if (!f) return { i, v: null };
      return {
        i, v: f.effect_size, hollow: !f.drift,
        tip: `${name}, ${tag(w)}: ${f.test} Holm p ${Number(f.p_holm).toPrecision(2)}, ${f.effect_name} ${Number(f.effect_size).toFixed(3)}${f.drift ? " — drift" : ""}`,
      };
    }),
  }));
  return [chart.svg, lines(chart, series)];
}

function accuracyChart(windows) {
  const chart = frame("Accuracy over time: audit sample, volunteered feedback and CBPE estimate, 95% intervals", windows, 1, percent, "Accuracy");
  const audit = windows.map((w, i) => {
    const a = w.audit || {};
    return {
      i, v: a.n ? a.accuracy : null, lo: a.ci_low, hi: a.ci_high,
      tip: a.n ? `${tag(w)}: ${a.accepted} of ${a.n} audited predictions right (${percent(a.accuracy)}, 95% ${percent(a.ci_low)}–${percent(a.ci_high)}; drawn at random)` : "",
    };
  });
  const fb = windows.map((w, i) => {
    const f = w.feedback || {};
    return {
      i, v: f.accuracy ?? null, lo: f.ci_low, hi: f.ci_high,
      tip: f.n ? `${tag(w)}: ${f.accepted} of ${f.n} predictions accepted (${percent(f.accuracy)}, 95% ${percent(f.ci_low)}–${percent(f.ci_high)}; volunteered, possibly selective)` : "",
    };
  });
  const est = windows.map((w, i) => {
    const e = w.estimate || {};
    return {
      i, v: e.accuracy ?? null, lo: e.ci_low, hi: e.ci_high, hollow: e.status !== "trusted",
      tip: `${tag(w)}: estimated ${percent(e.accuracy || 0)} (CBPE, ${e.status || "untrusted"}: ${e.reason})`,
    };
  });
  return [chart.svg, lines(chart, [
    { name: "Accuracy on the audit sample", points: audit, color: 2 },
    { name: "Accept rate from volunteered feedback", points: fb, color: 0 },
    { name: "Estimated accuracy (CBPE)", points: est, color: 3, dash: "6 4" },
  ]), accuracyExplained(windows)];
}

const pct = (x) => (typeof x === "number" ? percent(x) : "?");

/** What the two accuracy lines are, in words, with the latest window's numbers; and, when they
 * disagree, which to believe and why. */
function accuracyExplained(windows) {
  const withFeedback = windows.filter((w) => w.feedback && w.feedback.n > 0);
  const withEstimate = windows.filter((w) => w.estimate && typeof w.estimate.accuracy === "number");
  const fbWin = withFeedback[withFeedback.length - 1];
  const estWin = withEstimate[withEstimate.length - 1];
  const box = h("div", { className: "explain", "data-slot": "accuracy-explained" });
  const para = (term, ...rest) => box.append(h("p", {}, h("strong", {}, term), ...rest));
  if (estWin && estWin.estimate.status === "contradicted") {
    // The labelled figure leads: the estimate's assumption failed in this window.
    const used = estWin.labels_used === "audit" ? estWin.audit : estWin.feedback;
    box.append(
      h(
        "p",
        { className: "disagree", "data-slot": "contradicted" },
        h("strong", {}, `Accuracy in ${tag(estWin)}: ${pct(used.accuracy)} on ${number(used.n)} ${estWin.labels_used === "audit" ? "audited" : "volunteered"} labels. `),
        `The estimate (${pct(estWin.estimate.accuracy)}) is contradicted: ${estWin.estimate.reason}. ` +
          "Believe the labels: the estimate cannot see a change in P(y|x).",
      ),
    );
  }
  const auWin = windows.filter((w) => w.audit && w.audit.n > 0).pop();
  if (auWin) {
    const a = auWin.audit;
    para(
      "Accuracy on the audit sample is measured on predictions drawn at random. ",
      `People labelled ${number(a.n)} of them in ${tag(auWin)}; ${number(a.accepted)} were right: ` +
        `${pct(a.accuracy)} (95% interval ${pct(a.ci_low)} to ${pct(a.ci_high)}).`,
    );
  }
  if (fbWin) {
    const f = fbWin.feedback;
    para(
      "Accept rate from feedback is measured. ",
      `People checked ${number(f.n)} of the ${number(fbWin.n)} predictions in ${tag(fbWin)} and accepted ` +
        `${number(f.accepted)}: ${pct(f.accuracy)} (95% interval ${pct(f.ci_low)} to ${pct(f.ci_high)}). ` +
        "It needs people's answers, so it comes late, and it covers only the predictions they checked: " +
        "volunteered feedback comes mostly when an answer looked wrong, so it may be biased low.",
    );
  } else {
    para("Accept rate from feedback: ", "no feedback on these windows yet, so nothing is measured.");
  }
  if (estWin) {
    const e = estWin.estimate;
    para(
      "Estimated accuracy (CBPE) needs no labels. ",
      `It averages the model's own confidence over all ${number(estWin.n)} predictions of ${tag(estWin)}: ` +
        `${pct(e.accuracy)} (95% interval ${pct(e.ci_low)} to ${pct(e.ci_high)}), ` +
        (e.status === "contradicted" ? "contradicted by the labels (above)" : `${e.status || "untrusted"}: ${e.reason}`) +
        `. It ${e.assumes || "assumes P(y|x) does not change."}`,
    );
  }
  if (fbWin && estWin && fbWin.id === estWin.id && estWin.estimate.status !== "contradicted") {
    const f = fbWin.feedback;
    const e = estWin.estimate;
    const apart = f.ci_low > e.ci_high || e.ci_low > f.ci_high;
    box.append(
      h(
        "p",
        { className: apart ? "disagree" : "" },
        apart
          ? `In ${tag(fbWin)} they disagree: ${pct(f.accuracy)} measured against ${pct(e.accuracy)} estimated. ` +
              "Believe the measured figure: it rests on people's answers, while the estimate cannot see a " +
              "change in P(y|x). Unless the feedback is not a fair sample (people report mostly the " +
              "predictions they disagree with, or only easy ones): then neither is the accuracy."
          : `In ${tag(fbWin)} they agree within their intervals.`,
      ),
    );
  }
  return box;
}

function latencyChart(windows) {
  const max = Math.max(1, ...windows.map((w) => (w.latency && w.latency.p99_ms) || 0));
  const chart = frame("Prediction latency percentiles per window", windows, max, (v, d) => `${v.toFixed(d)} ms`, "Latency");
  const series = ["p50_ms", "p95_ms", "p99_ms"].map((key, k) => ({
    name: key.replace("_ms", ""),
    color: [2, 3, 1][k],
    points: windows.map((w, i) => ({ i, v: w.latency ? w.latency[key] : null, tip: `${tag(w)}: ${key.replace("_ms", "")} ${w.latency ? w.latency[key].toFixed(1) : "-"} ms` })),
  }));
  return [chart.svg, lines(chart, series)];
}

function mixChart(windows) {
  const labels = [...new Set(windows.flatMap((w) => Object.keys(w.mix || {})))].sort();
  const chart = frame("Prediction mix per window: share of each predicted label", windows, 1, percent, "Share");
  const n = windows.length;
  const width = Math.max(4, Math.min(40, ((W - M.left - M.right) / Math.max(n, 1)) * 0.7));
  windows.forEach((w, i) => {
    let acc = 0;
    labels.forEach((label, k) => {
      const share = (w.mix || {})[label] || 0;
      if (!share) return;
      const rect = s("rect", {
        x: chart.x(i) - width / 2, y: chart.y(acc + share), width, height: chart.y(acc) - chart.y(acc + share),
        class: `mix-bar c${k % N_COLORS}`,
      });
      rect.append(s("title", {}, `${tag(w)}: ${label} ${percent(share)}`));
      chart.svg.append(rect);
      acc += share;
    });
  });
  const legend = h("ul", { className: "monitor-legend" });
  labels.forEach((label, k) => {
    const swatch = h("span", { className: `swatch c${k % N_COLORS}`, "aria-hidden": "true" });
    legend.append(h("li", {}, swatch, label));
  });
  return [chart.svg, legend];
}

function triggerTable(rules) {
  if (!rules.length) return h("p", { className: "muted" }, "No trigger rules. Set them with looplab config PROJECT triggers='[...]'.");
  const body = h("tbody");
  for (const r of rules) {
    const params = Object.entries(r.params).map(([k, v]) => `${k}=${v}`).join(", ");
    const last = r.last_decision;
    body.append(
      h(
        "tr",
        { className: last && last.fired ? "fired" : "" },
        h("th", { scope: "row" }, r.name),
        h("td", {}, `${r.when} (${params})`),
        h("td", {}, r.actions.join(", ")),
        h("td", { className: "num" }, number(r.times_fired)),
        h("td", {}, last ? `${last.fired ? "FIRED: " : ""}${last.reason}` : "never evaluated"),
      ),
    );
  }
  const head = h("thead", {}, h("tr", {}, ...["Rule", "When", "Actions", "Fired", "Last decision"].map((c) => h("th", { scope: "col" }, c))));
  return h("table", { className: "counts triggers" }, head, body);
}

function panel(id, title, ...content) {
  return h("section", { className: "panel", "aria-labelledby": id }, h("h2", { id }, title), ...content);
}

/** Render the monitoring section into `root`; nothing for roles that may not read models. */
export async function monitorPanel(view, name, root) {
  let state;
  try {
    state = await api(`/projects/${enc(name)}/monitor`);
  } catch (err) {
    if (err.status === 403) return;
    throw err;
  }
  if (view.left) return;
  const section = h("section", { className: "monitor", "aria-labelledby": "monitor-title", id: "monitor" });
  section.append(h("h2", { id: "monitor-title" }, "Production monitoring"));
  const latest = state.latest;
  const summary = h("p", { className: "monitor-summary", "data-slot": "monitor-summary" });
  if (!latest) {
    summary.textContent = state.production_model
      ? `${state.production_model} is in production; ${number(state.pending_predictions)} of its predictions wait for its first window (it closes at ${number(state.min_predictions)}).`
      : "No model in production yet: nothing to watch.";
    section.append(summary, panel("triggers-title", "Triggers", triggerTable(state.triggers)));
    root.append(section);
    return;
  }
  const blamed = latest.blamed.length ? `; blamed: ${latest.blamed.join(", ")}` : "";
  const est = latest.estimate || {};
  const labelled = latest.labels_used === "audit" ? latest.audit : latest.feedback;
  // Labels lead when they contradict the estimate; else the estimate, with its status.
  const accuracy =
    est.status === "contradicted" && labelled
      ? `accuracy ${pct(labelled.accuracy)} on ${latest.labels_used} labels (estimate ${pct(est.accuracy)} contradicted)`
      : est.accuracy != null
        ? `estimated accuracy ${pct(est.accuracy)} (${est.status})`
        : "";
  summary.textContent =
    `${state.production_model || "no model"} in production · ${state.windows.length} windows, ` +
    `${state.alarms} alarms, ${state.warnings} warnings · latest window (${latest.model_version}) ` +
    `level ${latest.level}${latest.alarm ? " ALARM" : ""}${blamed}${accuracy ? " · " + accuracy : ""}`;
  if (latest.alarm) summary.classList.add("alarm");
  const ws = state.windows;
  section.append(
    summary,
    h(
      "div",
      { className: "dash-grid monitor-grid" },
      panel("drift-title", "Drift per feature", ...driftChart(ws)),
      panel("accuracy-title", "Accuracy: measured and estimated", ...accuracyChart(ws)),
      panel("mix-title", "Prediction mix", ...mixChart(ws)),
      panel("latency-title", "Latency", ...latencyChart(ws)),
    ),
    panel("triggers-title", "Triggers", triggerTable(state.triggers)),
  );
  root.append(section);
}
