// Node: charts for every tier (CPU by mode, memory, filesystems, network, disk IO, load),
// probes (latency, hit ratio), sensors; top processes and failed systemd units; a time range
// picker (presets, custom, drag to zoom) that reads rollup-sized windows for long ranges;
// annotations on every chart; live points appended as the node's samples are stored.
// A node younger than the range (a relative one) has its time axes start where its data
// does, said beside the picker, so a few minutes of data are not squeezed into the right edge.

import {
  api, el, nodeState, problem, query, queryRange, rangePicker, rangeParam, readRange, resolveRange,
  setParams, stepFor, rateWindow,
} from "../app.js";
import { Chart } from "../chart.js";
import { bytes, percent, shortLabel, time } from "../format.js";

const PROBE_LATENCY = "redis_check_duration_seconds|memcached_check_duration_seconds|http_check_duration_seconds|tcp_check_connect_duration_seconds";
const HIT_RATIO = "redis_keyspace_hit_ratio|memcached_get_hit_ratio";

/** The charts: queries built from the node's selector `s` (e.g. node="a"), the rate windows
 * `w` (10 s tier) and `slow` (60 s tier: CPU modes, disk IO) and `g(selector)`, a gauge read
 * as is or averaged over the step on long ranges. */
function charts(s, w, g, slow) {
  const q = (expr, label) => ({ expr, label });
  const byLabel = name => m => m[name] || shortLabel(m);
  return [
    { id: "cpu", title: "CPU by mode", unit: "ratio", export: [`node_cpu_usage_ratio{${s}}`, `node_cpu_seconds_total{${s}}`],
      queries: [
        q(g(`node_cpu_usage_ratio{${s}}`), () => "total"),
        q(`avg by (mode) (rate(node_cpu_seconds_total{${s},mode!="idle"}[${slow}]))`, byLabel("mode")),
      ] },
    { id: "memory", title: "Memory", unit: "bytes",
      export: [`{__name__=~"node_memory_(MemTotal|MemAvailable|Cached|Buffers|SwapTotal|SwapFree)_bytes",${s}}`],
      queries: [
        q(`${g(`node_memory_MemTotal_bytes{${s}}`)} - ${g(`node_memory_MemAvailable_bytes{${s}}`)}`, () => "used"),
        q(g(`node_memory_Cached_bytes{${s}}`), () => "cached"),
        q(g(`node_memory_Buffers_bytes{${s}}`), () => "buffers"),
        q(`${g(`node_memory_SwapTotal_bytes{${s}}`)} - ${g(`node_memory_SwapFree_bytes{${s}}`)}`, () => "swap used"),
        q(g(`node_memory_MemTotal_bytes{${s}}`), () => "total"),
      ] },
    { id: "filesystems", title: "Filesystems used", unit: "ratio", export: [`node_filesystem_used_ratio{${s}}`],
      queries: [q(g(`node_filesystem_used_ratio{${s}}`), byLabel("mountpoint"))] },
    { id: "network", title: "Network", unit: "bytes/s",
      export: [`node_network_receive_bytes_total{${s}}`, `node_network_transmit_bytes_total{${s}}`],
      queries: [
        q(`rate(node_network_receive_bytes_total{${s},device!="lo"}[${w}])`, m => `rx ${m.device}`),
        q(`rate(node_network_transmit_bytes_total{${s},device!="lo"}[${w}])`, m => `tx ${m.device}`),
      ] },
    { id: "disk", title: "Disk IO", unit: "bytes/s",
      export: [`node_disk_read_bytes_total{${s}}`, `node_disk_written_bytes_total{${s}}`],
      queries: [
        q(`rate(node_disk_read_bytes_total{${s}}[${slow}])`, m => `read ${m.device}`),
        q(`rate(node_disk_written_bytes_total{${s}}[${slow}])`, m => `write ${m.device}`),
      ] },
    { id: "load", title: "Load", unit: "", export: [`{__name__=~"node_load(1|5|15)",${s}}`],
      queries: ["1", "5", "15"].map(n => q(g(`node_load${n}{${s}}`), () => `load${n}`)) },
    { id: "probe-latency", title: "Probe latency", unit: "seconds", export: [`{__name__=~"${PROBE_LATENCY}",${s}}`],
      queries: [q(g(`{__name__=~"${PROBE_LATENCY}",${s}}`), m => shortLabel(m))] },
    { id: "hit-ratio", title: "Cache hit ratio", unit: "ratio", export: [`{__name__=~"${HIT_RATIO}",${s}}`],
      queries: [q(g(`{__name__=~"${HIT_RATIO}",${s}}`), m => shortLabel(m))] },
    { id: "sensors", title: "Temperatures", unit: "celsius", export: [`node_hwmon_temp_celsius{${s}}`],
      queries: [q(g(`node_hwmon_temp_celsius{${s}}`), m => `${m.chip || ""} ${m.sensor || ""}`.trim())] },
  ];
}

/** The series the stream sends for this page: one per chart family is enough to move them. */
const LIVE_NAMES = "node_cpu_usage_ratio|node_cpu_seconds_total|node_memory_MemAvailable_bytes|node_filesystem_used_ratio|node_network_receive_bytes_total|node_disk_read_bytes_total|node_load1|node_hwmon_temp_celsius|" + PROBE_LATENCY;

export async function render(main, { arg: name, params, signal, live }) {
  let range = readRange(params.get("range"));
  const sel = `node=${JSON.stringify(name)}`;
  const head = el("div", { class: "page-head" },
    el("h1", {}, el("a", { href: "#/fleet", class: "crumb" }, "Fleet"), " / ", name));
  const facts = el("p", { class: "muted" });
  const picker = el("div");
  const since = el("p", { class: "muted small", "aria-live": "polite" });
  const grid = el("div", { class: "charts" });
  const tables = el("div", { class: "cards two" });
  main.append(head, facts, picker, since, grid, tables);

  api("/api/v1/agents", { signal }).then(agents => {
    const a = agents.find(x => x.node === name);
    if (!a) { facts.replaceChildren(problem(new Error(`no node named ${name}`))); return; }
    const state = nodeState(a);
    head.append(" ", el("span", { class: `badge ${state}` }, state));
    facts.textContent = `${a.host.hostname} · ${a.host.os_name} ${a.host.os_version} · kernel ${a.host.kernel_version} · ${a.host.arch} · ${a.host.cpu_count} CPU · ${bytes(a.host.memory_total_bytes)} · agent ${a.agent_version}`;
  }).catch(e => facts.replaceChildren(problem(e, "agents")));

  let built = [];
  let window_ = null;
  let annotations = [];

  const setRange = r => {
    range = r;
    setParams({ range: rangeParam(r) });
    draw();
  };

  async function draw() {
    for (const c of built) c.chart.destroy();
    picker.replaceChildren(rangePicker(range, setRange));
    since.textContent = "";
    const { start, end } = resolveRange(range);
    const step = stepFor(start, end);
    const w = rateWindow(step);
    const long = step >= 60;
    const g = sel => (long ? `avg_over_time(${sel}[${w}])` : sel);
    window_ = { start, end, step, w, g, relative: range.from == null };
    built = charts(sel, w, g, rateWindow(step, 180)).map(def => {
      const chart = new Chart({
        id: def.id, title: def.title, unit: def.unit,
        onZoom: (a, b) => setRange({ from: a, to: b }),
        // The range as of the click: a relative one has moved on since the draw.
        exportLinks: () => ({ match: def.export, ...resolveRange(range), step: long ? step : null }),
      });
      return { def, chart };
    });
    grid.replaceChildren(...built.map(b => b.chart.node));
    api("/api/v1/annotations", { params: { start: start / 1000, end: end / 1000 }, signal })
      .then(list => {
        annotations = list.filter(a => a.node == null || a.node === name);
        for (const b of built) b.chart.setAnnotations(annotations);
      }).catch(() => { annotations = []; });
    await Promise.all(built.map(async ({ def, chart }) => {
      try {
        const results = await Promise.all(def.queries.map(q => queryRange(q.expr, start, end, step, signal)
          .then(r => r.map(x => ({ label: q.label(x.metric), points: x.points })))));
        chart.set(results.flat(), { annotations, x: [start, end] });
      } catch (e) {
        chart.node.append(problem(e));
      }
    }));
    if (window_.relative) fitToData(start, end, step);
    tablesFor(name, sel, tables, signal);
  }

  /** Starts the time axes where the node's data does when that is well inside the range. */
  function fitToData(start, end, step) {
    const firsts = built.flatMap(b => b.chart.series.filter(x => x.points.length).map(x => x.points[0][0]));
    if (!firsts.length) return;
    const first = Math.min(...firsts);
    if (first - start < (end - start) / 10) return;
    // At least five minutes shown, so a lone first sample has an axis of minutes around it.
    const from = Math.max(start, Math.min(first - Math.max(2 * step * 1000, (end - first) / 20), end - 300_000));
    for (const b of built) b.chart.setX([from, end]);
    since.textContent = `Data from ${time(first)} only: the time axes start there.`;
  }

  /** Adds the points at `t` (ms) to every chart, or back-fills from each chart's last point.
   * One round at a time: a round asked for while one runs follows it (no duplicate reads). */
  let tipTimer = null, tipAt = 0, running = null, again = null;
  const tip = async (t, backfill) => {
    if (!window_ || !window_.relative || signal.aborted) return;
    if (running) { again = { t: Math.max(t, again?.t || 0), backfill: backfill || again?.backfill }; return; }
    const span = window_.end - window_.start;
    running = Promise.all(built.map(async ({ def, chart }) => {
      const last = chart.lastTime();
      const from = backfill && last ? last + window_.step * 1000 : t;
      if (!backfill && last && t <= last) return;
      const results = await Promise.all(def.queries.map(q =>
        queryRange(q.expr, from, Math.max(from, t), window_.step, signal)
          .then(r => r.map(x => [q.label(x.metric), x.points])).catch(() => [])));
      const byLabel = {};
      for (const [label, points] of results.flat()) (byLabel[label] ||= []).push(...points);
      chart.append(byLabel, t - span);
    }));
    await running;
    running = null;
    if (again) { const next = again; again = null; tip(next.t, next.backfill); }
  };
  live.subscribe([`{__name__=~"${LIVE_NAMES}",${sel}}`], list => {
    for (const s of list) for (const [t] of s.points) tipAt = Math.max(tipAt, t);
    clearTimeout(tipTimer);
    tipTimer = setTimeout(() => tip(tipAt, false), 150);
  }, () => tip(Date.now(), true));

  await draw();
}

async function tablesFor(name, sel, box, signal) {
  const [cpu, mem, failed, units] = await Promise.all([
    query(`topk(10, node_process_group_cpu_ratio{${sel}})`, signal).catch(e => e),
    query(`topk(10, node_process_group_resident_bytes{${sel}})`, signal).catch(e => e),
    query(`node_systemd_unit_failed{${sel}} == 1`, signal).catch(e => e),
    query(`node_systemd_units{${sel},state="failed"}`, signal).catch(() => []),
  ]);
  const procs = new Map();
  for (const r of Array.isArray(cpu) ? cpu : []) procs.set(r.metric.groupname, { cpu: r.value });
  for (const r of Array.isArray(mem) ? mem : []) procs.set(r.metric.groupname, { ...procs.get(r.metric.groupname), mem: r.value });
  const rows = [...procs].sort((a, b) => (b[1].cpu || 0) - (a[1].cpu || 0));
  const processes = el("section", { class: "card" }, el("h3", {}, "Top processes"),
    cpu instanceof Error ? problem(cpu) : rows.length ? el("table", {},
      el("thead", {}, el("tr", {}, el("th", {}, "Name"), el("th", { class: "num" }, "CPU"), el("th", { class: "num" }, "Memory"))),
      el("tbody", {}, rows.map(([n, v]) => el("tr", {}, el("td", {}, n),
        el("td", { class: "num" }, v.cpu == null ? "–" : percent(v.cpu)),
        el("td", { class: "num" }, v.mem == null ? "–" : bytes(v.mem))))))
      : el("p", { class: "muted" }, "No process figures."));
  const count = Array.isArray(units) && units.length ? units[0].value : null;
  const list = Array.isArray(failed) ? failed : [];
  const systemd = el("section", { class: "card" }, el("h3", {}, "systemd failures"),
    failed instanceof Error ? problem(failed) : list.length
      ? el("ul", { class: "plain" }, list.map(r => el("li", {}, el("span", { class: "badge firing" }, "failed"), " ", r.metric.unit || r.metric.name || "")))
      : el("p", { class: "muted" }, count == null ? "No systemd figures from this node." : "No failed units."),
    el("p", { class: "muted small" }, `As of ${time(Date.now())}`));
  box.replaceChildren(processes, systemd);
}
