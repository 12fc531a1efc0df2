// Explore: a PromQL box, a range, a chart and a table of the newest values; the query and the
// range live in the address (#/explore?q=…&range=1h) so a view can be shared as a link.

import { api, el, problem, queryRange, rangeParam, rangePicker, readRange, resolveRange, setParams, stepFor } from "../app.js";
import { Chart } from "../chart.js";
import { formatter, seriesText, shortLabel, unitOf } from "../format.js";

/** A plain selector (exportable as is), not an expression. */
const isSelector = q => /^\s*([a-zA-Z_:][\w:]*)?\s*(\{[^{}]*\})?\s*$/.test(q) && q.trim() !== "";

export async function render(main, { params, signal }) {
  let range = readRange(params.get("range"));
  const box = el("textarea", {
    rows: 3, class: "promql", spellcheck: "false", "aria-label": "PromQL query",
    placeholder: 'rate(node_network_receive_bytes_total{device!="lo"}[5m])',
  });
  box.value = params.get("q") || "";
  const picker = el("div");
  const out = el("div");
  const form = el("form", { class: "explore", onsubmit: e => { e.preventDefault(); run(); } },
    box, el("div", { class: "toolbar" }, el("button", { type: "submit" }, "Run"),
      el("span", { class: "muted small" }, "Ctrl+Enter runs")));
  box.addEventListener("keydown", e => { if (e.key === "Enter" && (e.ctrlKey || e.metaKey)) { e.preventDefault(); run(); } });
  main.append(el("div", { class: "page-head" }, el("h1", {}, "Explore")), form, picker, out);

  const setRange = r => { range = r; run(); };
  async function run() {
    const q = box.value.trim();
    picker.replaceChildren(rangePicker(range, setRange));
    setParams({ q, range: rangeParam(range) });
    if (!q) { out.replaceChildren(); return; }
    const { start, end } = resolveRange(range);
    const step = stepFor(start, end);
    const name = (/^\s*([a-zA-Z_:][\w:]*)/.exec(q) || [])[1] || "";
    const rated = /^\s*(rate|irate|increase|deriv)\(/.test(q);
    const unit = unitOf(rated ? (/\(\s*([a-zA-Z_:][\w:]*)/.exec(q) || [])[1] : name, rated);
    const chart = new Chart({
      id: "explore", title: q, unit,
      onZoom: (a, b) => setRange({ from: a, to: b }),
      exportLinks: () => (isSelector(q) ? { match: [q], start, end, step: step >= 60 ? step : null } : null),
    });
    out.replaceChildren(chart.node);
    try {
      const result = await queryRange(q, start, end, step, signal);
      chart.set(result.map(r => ({ label: seriesText(r.metric) || shortLabel(r.metric), points: r.points })), { x: [start, end] });
      api("/api/v1/annotations", { params: { start: start / 1000, end: end / 1000 }, signal })
        .then(list => chart.setAnnotations(list)).catch(() => {});
      const fmt = formatter(unit);
      out.append(el("div", { class: "table-wrap" }, el("table", { "data-testid": "explore-table" },
        el("thead", {}, el("tr", {}, el("th", { scope: "col" }, "Series"), el("th", { scope: "col", class: "num" }, "Newest"), el("th", { scope: "col", class: "num" }, "Points"))),
        el("tbody", {}, result.map(r => {
          const last = r.points[r.points.length - 1];
          return el("tr", {}, el("td", {}, el("code", {}, seriesText(r.metric) || "{}")),
            el("td", { class: "num" }, last ? fmt(last[1]) : "–"), el("td", { class: "num" }, r.points.length));
        })))));
    } catch (e) {
      out.append(problem(e, "query"));
    }
  }
  await run();
}
