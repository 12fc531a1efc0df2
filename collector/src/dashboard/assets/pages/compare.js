// Compare: two ranges (or an annotation's before and after) for a node's series or a
// selector; the series ranked by how much they changed, with the test's explanation, and the
// two ranges overlaid on one time axis (the after range shifted onto the before range's
// start). Below, the annotations, and a form to mark a moment or a span (operators and admins).

import { api, canOperate, el, problem, queryRange, setParams } from "../app.js";
import { Chart } from "../chart.js";
import { fromInput, localInput, number, percent, seriesText, time, unitOf, formatter } from "../format.js";

export async function render(main, { params, signal }) {
  const nodes = await api("/api/v1/agents", { signal }).catch(() => []);
  const now = Date.now(), hour = 3600_000;
  const input = (testid, label, value, type = "datetime-local") =>
    el("label", {}, el("span", {}, label), el("input", { type, "data-testid": testid, value, "aria-label": label }));
  const datalist = el("datalist", { id: "compare-nodes" }, nodes.map(a => el("option", { value: a.node })));
  const node = el("input", { type: "text", list: "compare-nodes", "data-testid": "compare-node", "aria-label": "Node", value: params.get("node") || nodes[0]?.node || "" });
  const match = el("input", { type: "text", "aria-label": "Or series selector", placeholder: "or a selector: redis_op_duration_seconds{…}", value: params.get("match") || "" });
  const bs = input("compare-before-start", "Before from", localInput(Number(params.get("bs")) || now - 2 * hour));
  const be = input("compare-before-end", "Before to", localInput(Number(params.get("be")) || now - hour));
  const as = input("compare-after-start", "After from", localInput(Number(params.get("as")) || now - hour));
  const ae = input("compare-after-end", "After to", localInput(Number(params.get("ae")) || now));
  const value = label => fromInput(label.querySelector("input").value);
  const result = el("div");
  const form = el("form", { class: "compare-form", onsubmit: e => { e.preventDefault(); run(); } },
    el("label", {}, el("span", {}, "Node"), node), datalist, el("label", { class: "grow" }, el("span", {}, "Selector"), match),
    bs, be, as, ae, el("button", { type: "submit", "data-testid": "compare-run" }, "Compare"));
  const marks = el("div");
  main.append(el("div", { class: "page-head" }, el("h1", {}, "Compare")), form, result,
    el("h2", {}, "Annotations"), marks);

  async function run(annotation) {
    const p = annotation ? { annotation: annotation.id, window: "1h" } : {
      before_start: value(bs) / 1000, before_end: value(be) / 1000,
      after_start: value(as) / 1000, after_end: value(ae) / 1000,
    };
    if (match.value.trim()) p["match[]"] = match.value.trim(); else p.node = node.value.trim();
    if (!annotation) setParams({ node: p.node, match: p["match[]"], bs: value(bs), be: value(be), as: value(as), ae: value(ae) });
    result.replaceChildren(el("p", { class: "muted" }, "Comparing…"));
    try {
      const answer = await api("/api/v1/compare", { params: p, signal });
      result.replaceChildren(comparison(answer, signal));
    } catch (e) {
      result.replaceChildren(problem(e, "comparison"));
    }
  }
  annotationsBox(marks, signal, run);
  if (params.get("node") || params.get("match")) await run();
}

/** The method, the ranked rows, and the overlay of the first (or clicked) series. */
export function comparison(answer, signal) {
  const chartBox = el("div");
  const show = row => overlay(chartBox, row.metric, answer.before, answer.after, signal);
  const rows = answer.series || [];
  const box = el("div", {},
    el("p", { class: "muted small" }, `Before ${time(answer.before.start_ms)} – ${time(answer.before.end_ms)}; after ${time(answer.after.start_ms)} – ${time(answer.after.end_ms)} (each from its start up to, not including, its end). ${answer.method || ""}`),
    compareTable(rows, show), chartBox);
  const first = rows.find(r => r.before?.n > 0 && r.after?.n > 0) || rows[0];
  if (first) show(first);
  return box;
}

/** Rows shown before the rest are folded away: every changed one, at least this many. */
const SHOWN = 15;

/** The ranked rows: changed ones and the first unchanged ones, then folded: the other
 * unchanged ones, and last the series without data in one window or both ("no data": nothing
 * to compare). Every row keeps data-testid="compare-row", in ranked order. */
export function compareTable(rows, onPick) {
  if (!rows.length) return el("p", { class: "muted" }, "No series in either range.");
  const both = rows.filter(r => r.before?.n > 0 && r.after?.n > 0);
  const lacking = rows.filter(r => !(r.before?.n > 0 && r.after?.n > 0));
  const shown = Math.max(SHOWN, both.filter(r => r.significant).length);
  const table = list => el("div", { class: "table-wrap" }, el("table", { class: "compare" },
    el("thead", {}, el("tr", {}, HEAD.map(h => el("th", { scope: "col", class: h.num ? "num" : null }, h.text)))),
    el("tbody", {}, list.map(r => compareRow(r, onPick)))));
  const folded = (list, text) => list.length
    ? el("details", { class: "more" }, el("summary", {}, text), table(list)) : null;
  const unchanged = both.length - shown;
  return el("div", {},
    both.length ? table(both.slice(0, shown)) : el("p", { class: "muted" }, "No series has data in both ranges."),
    folded(both.slice(shown), `${unchanged} more series without a significant change`),
    folded(lacking, `${lacking.length} series without data in both windows`));
}

const HEAD = [{ text: "Series" }, { text: "Before mean", num: true }, { text: "After mean", num: true },
  { text: "Δ mean (95 % CI)", num: true }, { text: "Δ median", num: true }, { text: "Change", num: true },
  { text: "p", num: true }, { text: "Effect", num: true }, { text: "" }];

function compareRow(r, onPick) {
  const fmt = formatter(unitOfRow(r));
  const text = seriesText(r.metric);
  const ci = r.diff_mean_ci ? ` [${fmt(r.diff_mean_ci[0])}, ${fmt(r.diff_mean_ci[1])}]` : "";
  const before = r.before?.n > 0, after = r.after?.n > 0;
  const missing = before ? "no samples in the after window" : after ? "no samples in the before window" : "no samples in either window";
  const verdict = r.significant ? el("span", { class: "badge firing" }, "changed")
    : before && after ? el("span", { class: "badge" }, "same")
      : el("span", { class: "badge", title: missing }, "no data");
  const cell = (label, value) => el("td", { class: "num", "data-label": label }, value);
  return el("tr", { "data-testid": "compare-row", dataset: { metric: text }, class: r.significant ? "significant" : "" },
    el("td", { class: "series" }, el("button", { type: "button", class: "link", title: text, onclick: () => onPick(r) }, seriesLabel(r.metric))),
    cell("Before mean", fmt(r.before?.mean)), cell("After mean", fmt(r.after?.mean)),
    cell("Δ mean (95 % CI)", r.diff_mean == null ? "–" : `${fmt(r.diff_mean)}${ci}`),
    cell("Δ median", fmt(r.diff_median)),
    cell("Change", r.relative_change == null ? "–" : percent(r.relative_change)),
    cell("p", r.p_value == null ? "–" : number(r.p_value)),
    cell("Effect", r.effect_size == null ? "–" : number(r.effect_size)),
    el("td", { class: "verdict" }, verdict));
}

/** A series as its name and one chip per label, so a line breaks between labels, not inside. */
function seriesLabel(metric) {
  const labels = Object.keys(metric).filter(k => k !== "__name__").sort();
  return [el("span", { class: "name" }, metric.__name__ || ""),
    ...labels.map(k => el("span", { class: "chip" }, `${k}=${JSON.stringify(metric[k])}`))];
}

/** The unit a row's figures are in: the answer's own when it names one the page formats,
 * else from the name (counters are compared as per-second rates). */
function unitOfRow(r) {
  const name = r.metric.__name__ || "";
  if (["ratio", "bytes", "seconds", "bytes/s", "celsius"].includes(r.unit)) return r.unit;
  return unitOf(name, name.endsWith("_total"));
}

/** The series over both ranges on one axis: the after range shifted onto the before start. */
export async function overlay(box, metric, before, after, signal) {
  const text = seriesText(metric);
  const shift = after.start_ms - before.start_ms;
  const span = Math.max(before.end_ms - before.start_ms, after.end_ms - after.start_ms);
  const step = Math.max(15, Math.round(span / 1000 / 400));
  const chart = new Chart({
    id: "overlay", title: `${text}: after shifted onto before`, unit: unitOf(metric.__name__),
    height: 200,
    exportLinks: () => ({ match: [text], start: before.start_ms, end: after.end_ms }),
  });
  box.replaceChildren(chart.node);
  try {
    // Each window without its end, as the comparison reads it: the sample at the boundary
    // belongs to the after window only.
    const [b, a] = await Promise.all([
      queryRange(text, before.start_ms, before.end_ms - 1, step, signal),
      queryRange(text, after.start_ms, after.end_ms - 1, step, signal),
    ]);
    chart.set([
      { label: "before", points: b[0]?.points || [] },
      { label: "after", points: (a[0]?.points || []).map(([t, v]) => [t - shift, v]) },
    ], { x: [before.start_ms, before.start_ms + span] });
  } catch (e) {
    box.append(problem(e));
  }
}

async function annotationsBox(box, signal, compareAround) {
  const end = Date.now(), start = end - 30 * 86400_000;
  const list = el("div");
  box.append(list);
  const load = async () => {
    try {
      const items = await api("/api/v1/annotations", { params: { start: start / 1000, end: Date.now() / 1000 }, signal });
      list.replaceChildren(items.length ? el("ul", { class: "plain annotations" }, items.sort((a, b) => b.time_ms - a.time_ms).map(a => el("li", {},
        el("strong", {}, a.text), " ",
        el("span", { class: "muted small" }, `${time(a.time_ms)}${a.end_ms ? " – " + time(a.end_ms) : ""}${a.node ? " · " + a.node : ""}${a.tags?.length ? " · " + a.tags.join(", ") : ""} · ${a.created_by}`), " ",
        el("button", { type: "button", class: "small ghost", onclick: () => compareAround(a) }, "Compare 1 h around"),
        canOperate() ? el("button", {
          type: "button", class: "small ghost", onclick: async () => {
            try { await api(`/api/v1/annotations/${encodeURIComponent(a.id)}`, { method: "DELETE" }); load(); } catch (e) { list.append(problem(e)); }
          },
        }, "Delete") : null)))
        : el("p", { class: "muted" }, "No annotations in the last 30 days."));
    } catch (e) {
      list.replaceChildren(problem(e, "annotations"));
    }
  };
  await load();
  if (!canOperate()) return;
  const text = el("input", { type: "text", required: true, placeholder: "deployed v2", "aria-label": "Annotation text" });
  const at = el("input", { type: "datetime-local", value: localInput(Date.now()), "aria-label": "At" });
  const until = el("input", { type: "datetime-local", "aria-label": "Until (optional)" });
  const tags = el("input", { type: "text", placeholder: "tags, comma separated", "aria-label": "Tags" });
  const node = el("input", { type: "text", placeholder: "node (optional)", "aria-label": "Node" });
  const labelled = (text, field) => el("label", {}, el("span", {}, text), field);
  box.append(el("form", {
    class: "compare-form mark", "data-testid": "mark", onsubmit: async e => {
      e.preventDefault();
      const body = {
        time: fromInput(at.value) / 1000, text: text.value,
        tags: tags.value.split(",").map(t => t.trim()).filter(Boolean),
      };
      if (until.value) body.end = fromInput(until.value) / 1000;
      if (node.value.trim()) body.node = node.value.trim();
      try { await api("/api/v1/annotations", { method: "POST", body }); text.value = ""; load(); } catch (err) { list.append(problem(err)); }
    },
  }, labelled("Mark", text), labelled("At", at), labelled("Until (optional, a span)", until),
  labelled("Tags", tags), labelled("Node", node), el("button", { type: "submit" }, "Mark")));
}
