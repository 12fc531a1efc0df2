// Anomalies: the current verdicts with the detectors that fired; a verdict opens its series'
// last hour with the expected range drawn as a band. Below, every node's Isolation Forest
// verdict with each feature's share of the isolation as a bar list. Live: new anomalous
// verdicts from the stream reload the list.

import { api, el, problem, queryRange } from "../app.js";
import { Chart } from "../chart.js";
import { formatter, number, seriesText, time, unitOf } from "../format.js";

export async function render(main, { signal, live }) {
  const list = el("div");
  const detail = el("div");
  const nodes = el("div", { class: "cards" });
  const all = el("input", { type: "checkbox", id: "all-verdicts" });
  main.append(el("div", { class: "page-head" }, el("h1", {}, "Anomalies"),
    el("label", { for: "all-verdicts", class: "small" }, all, " show normal verdicts too")),
  detail, list, el("h2", {}, "Node-level (Isolation Forest)"), nodes);

  const load = async () => {
    try {
      const verdicts = await api("/api/v1/anomalies", { params: { anomalous: all.checked ? null : "true" }, signal });
      list.replaceChildren(verdictTable(verdicts.slice(0, 100), v => open(v, detail, signal)));
    } catch (e) {
      list.replaceChildren(problem(e, "anomaly verdicts"));
    }
  };
  all.addEventListener("change", load);
  let timer = null;
  live.on("anomaly", () => { clearTimeout(timer); timer = setTimeout(load, 500); });
  await load();
  try {
    const forests = await api("/api/v1/node_anomalies", { signal });
    nodes.replaceChildren(...(forests.length ? forests.map(forestCard)
      : [el("p", { class: "muted" }, "No node verdicts yet: the forests train on the first hours of data.")]));
  } catch (e) {
    nodes.replaceChildren(problem(e, "node verdicts"));
  }
}

function verdictTable(verdicts, onOpen) {
  if (!verdicts.length) return el("p", { class: "muted" }, "No series is anomalous now.");
  return el("div", { class: "table-wrap" }, el("table", {},
    el("thead", {}, el("tr", {}, ["Series", "Value", "Score", "Severity", "Detectors", "At"].map(h => el("th", { scope: "col" }, h)))),
    el("tbody", {}, verdicts.map(v => {
      const fmt = formatter(unitOf(v.metric.__name__));
      const text = seriesText(v.metric);
      return el("tr", { "data-testid": "anomaly", dataset: { metric: text } },
        el("td", {}, el("button", { type: "button", class: "link", onclick: () => onOpen(v) }, text)),
        el("td", { class: "num" }, fmt(v.value)),
        el("td", { class: "num" }, number(v.score)),
        el("td", {}, el("span", { class: `badge ${v.is_anomaly ? "firing" : ""}` }, v.learning ? "learning" : v.severity),
          v.low_confidence ? el("span", { class: "badge warning", title: "the series' data is incomplete or invalid: this verdict does not page" }, "low confidence") : null),
        el("td", { class: "small" }, v.detectors.map(d => `${d.detector} (${number(d.strength)}; expected ${fmt(d.expected[0])} – ${fmt(d.expected[1])})`).join(", ") || "–"),
        el("td", {}, time(v.timestamp * 1000)));
    }))));
}

/** The verdict's series over the last hour with its expected range as a band. */
async function open(v, box, signal) {
  const text = seriesText(v.metric);
  const unit = unitOf(v.metric.__name__);
  const end = Date.now(), start = end - 3600_000;
  const chart = new Chart({
    id: "anomaly", title: text, unit,
    exportLinks: () => ({ match: [text], start, end }),
  });
  box.replaceChildren(chart.node);
  chart.node.scrollIntoView({ block: "nearest" });
  chart.node.focus?.();
  try {
    const [series] = await queryRange(text, start, end, 15, signal);
    const points = series ? series.points : [];
    const strongest = [...v.detectors].sort((a, b) => b.strength - a.strength)[0];
    const lines = [{ label: "value", points }];
    const bands = [];
    if (strongest && points.length) {
      const [lo, hi] = strongest.expected;
      lines.push({ label: "expected high", points: points.map(([t]) => [t, hi]) });
      lines.push({ label: "expected low", points: points.map(([t]) => [t, lo]) });
      bands.push(["expected high", "expected low"]);
    }
    chart.set(lines, { bands, x: [start, end], annotations: [{ time_ms: v.timestamp * 1000, end_ms: null, text: "verdict", kind: "now" }] });
  } catch (e) {
    box.append(problem(e));
  }
}

function forestCard(n) {
  const top = [...n.features].sort((a, b) => b.share - a.share).slice(0, 8);
  return el("section", { class: `card ${n.is_anomaly ? "state-down" : ""}` },
    el("header", {}, el("h3", {}, n.node),
      el("span", { class: `badge ${n.is_anomaly ? "firing" : "connected"}` }, n.is_anomaly ? "anomalous" : "normal")),
    el("p", { class: "muted small" }, `score ${number(n.score)} · minute ${time(n.minute * 1000)} · trained on ${n.training_rows} rows`),
    el("ul", { class: "bars" }, top.map(f => el("li", {},
      el("span", { class: "name" }, f.feature),
      el("span", { class: "bar", "aria-hidden": "true" }, el("span", { style: `width:${Math.max(1, Math.min(100, f.share * 100)).toFixed(0)}%` })),
      el("span", { class: "num" }, `${(f.share * 100).toFixed(0)} %`)))));
}
