// The dashboard's annotators panel (reviewers and admins): agreement over time, each person's
// accuracy with its interval, the flags with their evidence and standing, and a heatmap of one
// person's answers against the others' consensus. Quarantine, confirm and release call the trust
// routes; the row changes at once and the panel's data-pending falls back to 0 when the server
// has answered (what browser tests wait on). Data from the server reaches the page only through
// textContent and attributes. Colours: the monitoring panel's classes and variables (style.css).

import { api, enc, h, number, percent, session, showError, svg as s, toast } from "./core.js";

const W = 640;
const H = 240;
const M = { left: 56, right: 16, top: 14, bottom: 46 };
// Krippendorff's own guidance: below 0.667 draw no conclusion from the labels.
const TENTATIVE = 0.667;
// A batch on fewer records than this is drawn hollow: its interval is wide.
const FEW_RECORDS = 30;
const STATUS_TEXT = {
  ok: "ok",
  flagged: "flagged",
  quarantined: "quarantined",
  released: "released",
  confirmed: "confirmed",
};
const ACTIONS = {
  quarantine: { label: "Quarantine", status: "quarantined", when: ["ok", "flagged", "released"] },
  confirm: { label: "Confirm", status: "confirmed", when: ["quarantined"] },
  release: { label: "Release", status: "released", when: ["quarantined", "confirmed"] },
};

const fixed = (x, d = 2) => (typeof x === "number" ? x.toFixed(d) : "–");
const pct = (x) => (typeof x === "number" ? percent(x) : "–");

function panel(id, title, ...content) {
  return h("section", { className: "panel", "aria-labelledby": id }, h("h2", { id }, title), ...content);
}

// ---------------------------------------------------------------- agreement over time

function agreementChart(batches) {
  const lows = batches.map((b) => (typeof b.low === "number" ? b.low : b.alpha ?? 0));
  const bottom = Math.min(0, Math.floor(Math.min(...lows) * 5) / 5);
  const y = (v) => H - M.bottom - ((v - bottom) / (1 - bottom)) * (H - M.top - M.bottom);
  const step = (W - M.left - M.right) / Math.max(batches.length, 1);
  const x = (i) => M.left + (i + 0.5) * step;
  const label = "Krippendorff's alpha per time batch, with its 95% interval";
  const svg = s("svg", { viewBox: `0 0 ${W} ${H}`, role: "img", "aria-label": label, class: "chart monitor-chart agreement-chart" });
  svg.append(s("title", {}, label));
  for (let v = bottom; v <= 1 + 1e-9; v += 0.2) {
    svg.append(s("line", { class: "gridline", x1: M.left, x2: W - M.right, y1: y(v), y2: y(v) }));
    svg.append(s("text", { class: "tick-label y-tick", x: M.left - 6, y: y(v) + 4, "text-anchor": "end" }, v.toFixed(1)));
  }
  svg.append(s("line", { class: "floor", x1: M.left, x2: W - M.right, y1: y(TENTATIVE), y2: y(TENTATIVE), "stroke-dasharray": "5 4" }));
  svg.append(s("text", { class: "floor-label", x: W - M.right, y: y(TENTATIVE) - 4, "text-anchor": "end" }, `${TENTATIVE}: tentative at best below`));
  const drawn = batches.map((b, i) => ({ ...b, i })).filter((b) => typeof b.alpha === "number");
  const banded = drawn.filter((b) => typeof b.low === "number" && typeof b.high === "number");
  if (banded.length > 1) {
    const top = banded.map((b) => `${x(b.i).toFixed(1)},${y(b.high).toFixed(1)}`);
    const base = banded.slice().reverse().map((b) => `${x(b.i).toFixed(1)},${y(b.low).toFixed(1)}`);
    svg.append(s("path", { class: "band c0", d: `M${top.join(" L")} L${base.join(" L")} Z` }));
  }
  if (drawn.length > 1) {
    const d = drawn.map((b, j) => `${j ? "L" : "M"}${x(b.i).toFixed(1)},${y(b.alpha).toFixed(1)}`).join(" ");
    svg.append(s("path", { class: "series-line c0", d, "stroke-width": 2 }));
  }
  for (const b of drawn) {
    if (typeof b.low === "number") {
      svg.append(s("line", { class: "whisker c0", x1: x(b.i), x2: x(b.i), y1: y(b.low), y2: y(b.high) }));
    }
    const few = b.n_records < FEW_RECORDS;
    const dot = s("circle", { class: `point c0${few ? " hollow" : ""}`, cx: x(b.i), cy: y(b.alpha), r: 4, "stroke-width": 2 });
    dot.append(s("title", {}, `${b.batch}: alpha ${fixed(b.alpha)} (95% ${fixed(b.low)} to ${fixed(b.high)}) on ${number(b.n_records)} records${few ? ", few: a wide interval" : ""}`));
    svg.append(dot);
  }
  const every = Math.max(1, Math.ceil(batches.length / 6));
  batches.forEach((b, i) => {
    if (i % every && i !== batches.length - 1) return;
    svg.append(s("text", { class: "tick-label", x: x(i), y: H - M.bottom + 16, "text-anchor": "middle" }, b.batch));
  });
  svg.append(s("line", { class: "axis", x1: M.left, x2: W - M.right, y1: H - M.bottom, y2: H - M.bottom }));
  svg.append(s("text", { class: "axis-label", x: (M.left + W - M.right) / 2, y: H - 8, "text-anchor": "middle" }, "Batch of each record's first answer"));
  svg.append(s("text", { class: "axis-label", transform: `translate(12 ${(M.top + H - M.bottom) / 2}) rotate(-90)`, "text-anchor": "middle" }, "Alpha"));
  return svg;
}

function agreementPart(found) {
  const body = [];
  if (!found.overall) {
    body.push(h("p", { className: "empty-note", "data-slot": "agreement-empty" }, `Not measured yet: ${found.note}.`));
    return panel("agreement-title", "Agreement over time", ...body);
  }
  const o = found.overall;
  body.push(
    h(
      "p",
      { "data-slot": "agreement-overall" },
      h("strong", {}, `Alpha ${fixed(o.alpha)} `),
      `(95% interval ${fixed(o.low)} to ${fixed(o.high)}) on ${number(o.n_records)} records answered by two or more people. ` +
        "1 is perfect agreement, 0 what chance gives.",
    ),
  );
  const batches = found.per_batch || [];
  if (batches.length < 2) {
    body.push(h("p", { className: "muted", "data-slot": "agreement-few" }, `One ${found.by} of overlapped records so far: a trend needs two.`));
  }
  if (batches.length) {
    body.push(agreementChart(batches));
    const rows = batches.map((b) =>
      h("tr", {}, h("th", { scope: "row" }, b.batch), h("td", { className: "num" }, fixed(b.alpha)),
        h("td", { className: "num" }, `${fixed(b.low)} to ${fixed(b.high)}`), h("td", { className: "num" }, number(b.n_records))),
    );
    const head = h("thead", {}, h("tr", {}, ...[found.by, "Alpha", "95% interval", "Records"].map((c) => h("th", { scope: "col" }, c))));
    body.push(h("details", {}, h("summary", {}, "Show as a table"), h("table", { className: "counts" }, head, h("tbody", {}, ...rows))));
  }
  return panel("agreement-title", "Agreement over time", ...body);
}

// ---------------------------------------------------------------- accuracy per person

function accuracyChart(people) {
  const rowH = 28;
  const height = M.top + rowH * people.length + 40;
  const left = 100;
  const width = 480;
  const x = (v) => left + v * (width - left - M.right);
  const label = "Accuracy per person: on gold records (95% Wilson interval) and Dawid-Skene's estimate";
  const svg = s("svg", { viewBox: `0 0 ${width} ${height}`, role: "img", "aria-label": label, class: "chart monitor-chart people-chart" });
  svg.append(s("title", {}, label));
  const bottom = M.top + rowH * people.length;
  for (const v of [0, 0.25, 0.5, 0.75, 1]) {
    svg.append(s("line", { class: "gridline", x1: x(v), x2: x(v), y1: M.top, y2: bottom }));
    svg.append(s("text", { class: "tick-label", x: x(v), y: bottom + 16, "text-anchor": "middle" }, percent(v)));
  }
  people.forEach((p, i) => {
    const y = M.top + rowH * (i + 0.5);
    svg.append(s("text", { class: "tick-label person-name", x: left - 8, y: y + 4, "text-anchor": "end" }, p.user));
    const g = p.gold;
    if (g && typeof g.rate === "number") {
      svg.append(s("line", { class: "whisker c0", x1: x(g.low), x2: x(g.high), y1: y - 4, y2: y - 4 }));
      const dot = s("circle", { class: "point c0", cx: x(g.rate), cy: y - 4, r: 4, "stroke-width": 2 });
      dot.append(s("title", {}, `${p.user}: ${g.right} of ${g.n} gold answers right (${pct(g.rate)}, 95% ${pct(g.low)} to ${pct(g.high)})`));
      svg.append(dot);
    }
    if (typeof p.estimated_accuracy === "number") {
      const e = p.estimated_accuracy;
      const mark = s("rect", { class: "point c3 hollow", x: x(e) - 4, y: y + 1, width: 8, height: 8, "stroke-width": 2 });
      mark.append(s("title", {}, `${p.user}: estimated ${pct(e)} (Dawid-Skene, from ${number(p.labels)} answers; no interval)`));
      svg.append(mark);
    }
  });
  svg.append(s("line", { class: "axis", x1: left, x2: width - M.right, y1: bottom, y2: bottom }));
  svg.append(s("text", { class: "axis-label", x: (left + width - M.right) / 2, y: height - 6, "text-anchor": "middle" }, "Accuracy"));
  const legend = h(
    "ul",
    { className: "monitor-legend" },
    h("li", {}, h("span", { className: "swatch c0", "aria-hidden": "true" }), "On gold records, 95% Wilson interval"),
    h("li", {}, h("span", { className: "swatch c3", "aria-hidden": "true" }), "Estimated by Dawid-Skene (hollow square)"),
  );
  return [svg, legend];
}

// ---------------------------------------------------------------- people: flags, standing, actions

function evidenceCell(p, minLabels) {
  const cell = h("td", { className: "evidence" });
  if (p.flags.length) {
    const list = h("ul", { className: "flags" });
    for (const f of p.flags) {
      list.append(h("li", {}, h("strong", {}, f.reason.replace("_", " ")), `: ${f.detail} (value ${fixed(f.value)}, threshold ${f.threshold})`));
    }
    cell.append(list);
  } else if (p.labels < minLabels) {
    cell.append(h("span", { className: "muted" }, `not judged: ${number(p.labels)} answers, fewer than ${minLabels}`));
  } else {
    cell.append(h("span", { className: "muted" }, "no flag"));
  }
  const st = p.standing;
  if (st.status !== "ok" && st.reason) {
    cell.append(h("p", { className: "decision muted" }, `${st.status} by ${st.decided_by || "?"}${st.decided_at ? " on " + st.decided_at.slice(0, 10) : ""}: ${st.reason}`));
  }
  return cell;
}

/** The person's status; flags the reliability check has not recorded yet still read "flagged". */
const statusOf = (p) => (p.standing.status === "ok" && p.flags.length ? "flagged" : p.standing.status);

function personRow(p, ctx) {
  const a = p.agreement;
  const g = p.gold;
  const shown = statusOf(p);
  const row = h("tr", { "data-user": p.user, "data-status": shown });
  const status = h("span", { className: `status status-${shown}`, "data-slot": "status" }, STATUS_TEXT[shown]);
  const buttons = h("div", { className: "row-actions" });
  // Reading this evidence and deciding about a person take the same role (reviewer), so whoever
  // sees the panel gets the buttons; the server checks each call anyway.
  for (const [what, spec] of Object.entries(ACTIONS)) {
    if (!spec.when.includes(shown)) continue;
    const button = h("button", { type: "button", "data-action": what, "aria-label": `${spec.label} ${p.user}` }, spec.label);
    button.disabled = ctx.busy.has(p.user);
    button.addEventListener("click", () => ctx.ask(p, what, button));
    buttons.append(button);
  }
  row.append(
    h("th", { scope: "row" }, p.user),
    h("td", { className: "num" }, number(p.labels)),
    h("td", { className: "num" }, g ? `${g.right} of ${g.n}: ${pct(g.rate)} (${pct(g.low)}–${pct(g.high)})` : "no gold"),
    h("td", { className: "num" }, pct(p.estimated_accuracy)),
    h("td", { className: "num" }, a && a.n ? `${pct(a.rate)} (${pct(a.low)}–${pct(a.high)}) of ${number(a.n)}, κ ${fixed(a.kappa)}` : "–"),
    h("td", { className: "num" }, typeof p.median_seconds === "number" ? `${fixed(p.median_seconds, 1)} s / ${fixed(p.others_median_seconds, 1)} s` : "–"),
    evidenceCell(p, ctx.minLabels),
    h("td", {}, status, buttons),
  );
  return row;
}

function peopleTable(people, ctx) {
  const head = h(
    "thead",
    {},
    h("tr", {}, ...["Person", "Answers", "Gold accuracy (95%)", "Estimated accuracy", "Agreement with the others (95%)", "Median s/label: own / others'", "Flags and evidence", "Status"].map((c) => h("th", { scope: "col" }, c))),
  );
  return h("table", { className: "counts people" }, head, h("tbody", {}, ...people.map((p) => personRow(p, ctx))));
}

// ---------------------------------------------------------------- the heatmap

/** Shade step of a share of a row (0 ... 4); style.css gives each step colours of enough contrast. */
const shade = (share) => (share <= 0 ? 0 : share < 0.1 ? 1 : share < 0.3 ? 2 : share < 0.6 ? 3 : 4);

function heatmap(p) {
  const c = p.confusion;
  if (!c || !c.n) {
    return h("p", { className: "empty-note", "data-slot": "heatmap-empty" }, `No record ${p.user} answered was answered by someone else too: nothing to compare with.`);
  }
  const flipped = p.flags.some((f) => f.reason === "flipped_class") && p.worst_confusion ? p.worst_confusion : null;
  const head = h("thead", {}, h("tr", {}, h("td"), ...c.classes.map((name) => h("th", { scope: "col" }, name))));
  const body = h("tbody");
  c.counts.forEach((row, t) => {
    const total = row.reduce((x, y) => x + y, 0);
    const tr = h("tr", {}, h("th", { scope: "row" }, c.classes[t]));
    row.forEach((n, a) => {
      const share = total ? n / total : 0;
      const hot = flipped && flipped.truth === c.classes[t] && flipped.answered === c.classes[a];
      const td = h(
        "td",
        { className: `cell h${shade(share)}${a === t ? " diagonal" : ""}${hot ? " flipped" : ""}`, "data-truth": c.classes[t], "data-answered": c.classes[a], title: `${number(n)} of ${number(total)} records the others call ${c.classes[t]}: ${p.user} answered ${c.classes[a]} (${pct(share)})${hot ? "; the flagged flip" : ""}` },
        h("span", { className: "cell-text" }, number(n)),
      );
      if (hot) td.setAttribute("aria-description", "flagged flip");
      tr.append(td);
    });
    body.append(tr);
  });
  const caption = h("caption", {}, `${p.user}'s answers (columns) on ${number(c.n)} records, against the others' consensus (rows). Shade: share of the row.${flipped ? ` Outlined: the flagged flip, ${flipped.truth} answered ${flipped.answered}.` : ""}`);
  return h("table", { className: "heatmap", "data-user": p.user }, caption, head, body);
}

function heatmapPart(people, root) {
  const named = people.filter((p) => p.labels > 0);
  if (!named.length) return panel("heatmap-title", "Answers against consensus", h("p", { className: "empty-note" }, "Nobody has answered yet."));
  const pick = named.find((p) => p.flags.length) || named.find((p) => p.standing.status !== "ok") || named[0];
  const select = h("select", { id: "heatmap-person", "data-slot": "heatmap-person" });
  for (const p of named) select.append(h("option", { value: p.user, selected: p === pick }, `${p.user}${p.flags.length ? " (flagged)" : ""}`));
  const holder = h("div", { "data-slot": "heatmap" }, heatmap(pick));
  select.addEventListener("change", () => holder.replaceChildren(heatmap(named.find((p) => p.user === select.value))));
  root.append(h("label", { htmlFor: "heatmap-person" }, "Person"), select, holder);
  return root;
}

// ---------------------------------------------------------------- decisions

function reasonDialog(person, what) {
  const spec = ACTIONS[what];
  const dialog = h("dialog", { className: "reason-dialog", "aria-labelledby": "reason-title" });
  const input = h("textarea", { id: "decision-reason", rows: 3, maxLength: 2000, "aria-required": "true" });
  const error = h("p", { className: "error", role: "alert" });
  const form = h(
    "form",
    { method: "dialog", noValidate: true },
    h("h2", { id: "reason-title" }, `${spec.label} ${person.user}`),
    h("label", { htmlFor: "decision-reason" }, "Reason (audited and shown to reviewers)"),
    input,
    error,
    h("p", { className: "actions" },
      h("button", { type: "submit", className: "primary", value: "ok" }, spec.label),
      h("button", { type: "button", value: "cancel", "data-slot": "cancel" }, "Cancel")),
  );
  dialog.append(form);
  document.body.append(dialog);
  return new Promise((resolve) => {
    const done = (value) => {
      dialog.close();
      dialog.remove();
      resolve(value);
    };
    form.querySelector("[data-slot=cancel]").addEventListener("click", () => done(null));
    dialog.addEventListener("cancel", () => done(null));
    form.addEventListener("submit", (event) => {
      event.preventDefault();
      const reason = input.value.trim();
      if (!reason) {
        error.textContent = "Say why: the reason is audited.";
        input.focus();
        return;
      }
      done(reason);
    });
    dialog.showModal();
    input.focus();
  });
}

// ---------------------------------------------------------------- the panel

/** Render the annotators panel into `root`; nothing for people who may not read trust evidence. */
export async function trustPanel(view, name, root) {
  let found;
  let people;
  try {
    [found, people] = await Promise.all([
      api(`/projects/${enc(name)}/agreement`),
      api(`/projects/${enc(name)}/annotators`),
    ]);
  } catch (err) {
    if (err.status === 403) return;
    throw err;
  }
  if (view.left) return;
  const section = h("section", { className: "trust", id: "trust", "aria-labelledby": "trust-title", "data-slot": "trust", "data-pending": "0" });
  const list = people.annotators;
  const flagged = list.filter((p) => statusOf(p) === "flagged");
  const held = list.filter((p) => ["quarantined", "confirmed"].includes(p.standing.status));
  section.append(
    h("h2", { id: "trust-title" }, "Annotators: agreement and reliability"),
    h("p", { className: "trust-summary", "data-slot": "trust-summary" },
      list.length
        ? `${number(list.length)} people · ${flagged.length ? `flagged: ${flagged.map((p) => p.user).join(", ")}` : "nobody flagged"} · ${held.length ? `quarantined: ${held.map((p) => p.user).join(", ")}` : "nobody quarantined"} · quarantine policy ${people.quarantine_policy}`
        : "Nobody has answered yet: there is no one to judge."),
  );
  let pending = 0;
  const tableHolder = h("div", { className: "table-scroll" });
  const ctx = {
    minLabels: people.min_labels,
    busy: new Set(),
    ask: async (person, what, button) => {
      const reason = await reasonDialog(person, what);
      if (reason === null) return button.focus();
      const before = person.standing;
      ctx.busy.add(person.user);
      pending += 1;
      section.dataset.pending = String(pending);
      person.standing = { ...before, status: ACTIONS[what].status, reason, decided_by: session.me ? session.me.name : "you", decided_at: new Date().toISOString() };
      render();
      try {
        const out = await api(`/projects/${enc(name)}/annotators/${enc(person.user)}/${what}`, { method: "POST", body: { reason } });
        person.standing = { ...person.standing, status: out.status };
        const moved = typeof out.annotations === "number" ? `: ${number(out.annotations)} answers ${out.status}` : "";
        toast(`${person.user} ${out.status}${moved}${out.train_job ? `; retrain job #${out.train_job} queued` : ""}.`);
      } catch (err) {
        person.standing = before;
        showError(err, `${ACTIONS[what].label} ${person.user} failed: `);
      } finally {
        ctx.busy.delete(person.user);
        pending -= 1;
        render();
        section.dataset.pending = String(pending);
      }
    },
  };
  const render = () => {
    tableHolder.replaceChildren(list.length ? peopleTable(list, ctx) : h("p", { className: "empty-note" }, "Nobody has answered yet."));
  };
  render();
  const judged = list.filter((p) => p.gold || typeof p.estimated_accuracy === "number");
  section.append(
    h(
      "div",
      { className: "dash-grid monitor-grid" },
      agreementPart(found),
      panel("people-acc-title", "Accuracy per person",
        ...(judged.length ? accuracyChart(judged) : [h("p", { className: "empty-note" }, "Not measured yet: nobody has answered a gold record or a record someone else answered too.")])),
    ),
    panel("people-title", "People: flags, evidence and standing", tableHolder),
    heatmapPart(list, panel("heatmap-title", "Answers against the others' consensus")),
  );
  root.append(section);
}
