// Experiments: named baseline and treatment windows, the series that define success and a
// criterion ("p95 latency down 10 %"); whether it was met and how sure, the ranked series, and
// the two windows overlaid. Creating and deleting is for operators and admins.

import { api, canOperate, el, problem } from "../app.js";
import { fromInput, localInput, percent, time } from "../format.js";
import { compareTable, overlay } from "./compare.js";

export async function render(main, { params, signal }) {
  const list = el("div");
  const detail = el("div");
  main.append(el("div", { class: "page-head" }, el("h1", {}, "Experiments")), list, detail);
  const load = async () => {
    try {
      const items = await api("/api/v1/experiments", { signal });
      list.replaceChildren(items.length ? el("ul", { class: "plain" }, items.map(x => el("li", {},
        el("button", { type: "button", class: "link", onclick: () => show(x.id) }, x.name),
        el("span", { class: "muted small" }, ` ${x.criterion ? `${x.criterion.statistic} ${x.criterion.direction} by ${x.criterion.by_percent} %` : ""}`), " ",
        canOperate() ? el("button", {
          type: "button", class: "small ghost", onclick: async () => {
            try { await api(`/api/v1/experiments/${encodeURIComponent(x.id)}`, { method: "DELETE" }); load(); } catch (e) { list.append(problem(e)); }
          },
        }, "Delete") : null)))
        : el("p", { class: "muted" }, "No experiments yet."));
    } catch (e) {
      list.replaceChildren(problem(e, "experiments"));
    }
  };
  const show = async id => {
    detail.replaceChildren(el("p", { class: "muted" }, "Evaluating…"));
    try {
      const x = await api(`/api/v1/experiments/${encodeURIComponent(id)}`, { signal });
      detail.replaceChildren(result(x, signal));
    } catch (e) {
      detail.replaceChildren(problem(e, "experiment"));
    }
  };
  await load();
  if (canOperate()) main.insertBefore(newForm(load, show), list);
  if (params.get("id")) show(params.get("id"));
}

function result(x, signal) {
  const r = x.result || {};
  const window = w => ({ start_ms: Date.parse(w.start) || w.start_ms || w.start * 1000, end_ms: Date.parse(w.end) || w.end_ms || w.end * 1000 });
  const chartBox = el("div");
  const rows = r.series || [];
  const pick = row => overlay(chartBox, row.metric, window(x.baseline), window(x.treatment), signal);
  const box = el("section", { class: "card" },
    el("h2", {}, x.name),
    x.description ? el("p", {}, x.description) : null,
    el("p", { class: "headline" }, el("span", { class: `badge ${r.met ? "connected" : "firing"}`, "data-testid": "experiment-met" }, r.met ? "met" : "not met"),
      ` ${r.confidence != null ? `${percent(r.confidence)} sure` : ""}`,
      r.observed_change_percent != null ? ` · observed change ${r.observed_change_percent.toFixed(1)} %` : ""),
    compareTable(rows, pick), chartBox);
  if (rows.length) pick(rows[0]);
  return box;
}

function newForm(reload, show) {
  const now = Date.now(), hour = 3600_000;
  const field = (label, attrs) => el("label", {}, el("span", {}, label), el("input", { "aria-label": label, ...attrs }));
  const name = field("Name", { type: "text", required: true, placeholder: "redis maxmemory 2g" });
  const description = field("Description", { type: "text" });
  const bs = field("Baseline from", { type: "datetime-local", value: localInput(now - 2 * hour) });
  const be = field("Baseline to", { type: "datetime-local", value: localInput(now - hour) });
  const ts = field("Treatment from", { type: "datetime-local", value: localInput(now - hour) });
  const te = field("Treatment to", { type: "datetime-local", value: localInput(now) });
  const match = field("Series", { type: "text", required: true, placeholder: 'redis_op_duration_seconds{node="…"}' });
  const statistic = el("select", { "aria-label": "Statistic" }, ["p95", "median", "mean"].map(s => el("option", { value: s }, s)));
  const direction = el("select", { "aria-label": "Direction" }, ["decrease", "increase"].map(s => el("option", { value: s }, s)));
  const by = el("input", { type: "number", value: "10", step: "any", "aria-label": "By percent" });
  const v = f => f.querySelector("input").value;
  const t = f => new Date(fromInput(v(f))).toISOString();
  const out = el("div");
  const form = el("form", {
    class: "compare-form", onsubmit: async e => {
      e.preventDefault();
      const body = {
        name: v(name), baseline: { start: t(bs), end: t(be) }, treatment: { start: t(ts), end: t(te) },
        match: [v(match)], criterion: { statistic: statistic.value, direction: direction.value, by_percent: Number(by.value) },
      };
      if (v(description)) body.description = v(description);
      try {
        const created = await api("/api/v1/experiments", { method: "POST", body });
        out.replaceChildren();
        await reload();
        show(created.id);
      } catch (err) { out.replaceChildren(problem(err)); }
    },
  }, name, description, bs, be, ts, te, match,
  el("label", {}, el("span", {}, "Criterion"), el("span", { class: "row" }, statistic, direction, "by", by, "%")),
  el("button", { type: "submit" }, "Create"));
  return el("details", { class: "card" }, el("summary", {}, "New experiment"), form, out,
    el("p", { class: "muted small" }, `Times in your zone (${Intl.DateTimeFormat().resolvedOptions().timeZone}); now is ${time(now)}.`));
}
