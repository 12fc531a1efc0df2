// Time-series charts over uPlot (vendored, loaded as the global `uPlot` when a page first
// imports this module, so pages without charts never fetch it): time axis in the
// browser's zone, humanised units on the axis and legend, drag to zoom (the page changes its
// range), expected-range and forecast bands, annotations as vertical lines or spans with
// their text, an export menu per chart. The container carries data-testid="chart",
// data-chart=<id> and data-points=<points drawn>, kept up to date as points arrive live.
// A series of few points shows them as dots (a lone sample draws no line), an isolated point
// in a long series too; the y axis always holds the data: ratios 0–100 % unless they go
// beyond, other units from 0 unless negative. The plot is as wide as the card's content box.

import { el } from "./app.js";
import { formatter } from "./format.js";

/** uPlot, loaded once from beside this module (the same version directory). */
const uPlotReady = window.uPlot ? Promise.resolve() : new Promise((resolve, reject) => {
  const script = document.createElement("script");
  script.src = new URL("./vendor/uplot/uPlot.iife.min.js", import.meta.url).href;
  script.onload = resolve;
  script.onerror = () => reject(new Error("cannot load the chart library"));
  document.head.append(script);
});

/** Up to this many points in view, a series shows every point as a dot. */
const FEW_POINTS = 40;

/** Axis steps for bytes: 1, 2, 4 … 512 times each power of 1024. */
const BINARY_STEPS = [0, 1, 2, 3, 4, 5].flatMap(e => [1, 2, 4, 8, 16, 32, 64, 128, 256, 512].map(m => m * 1024 ** e));

const PALETTE = ["#2f7ed8", "#e8743b", "#19a979", "#945ecf", "#ed4a7b", "#13a4b4", "#d6a100",
  "#6c8893", "#525df4", "#bf399e", "#7cb342", "#ee6868"];

const css = name => getComputedStyle(document.documentElement).getPropertyValue(name).trim();

/** A hex colour with `alpha`. */
const fade = (hex, alpha) => {
  const n = parseInt(hex.slice(1), 16);
  return `rgba(${n >> 16},${(n >> 8) & 255},${n & 255},${alpha})`;
};

export class Chart {
  /**
   * id: data-chart; title; unit (see format.formatter); onZoom(startMs, endMs);
   * exportLinks(): {match: [selector], start, end, step?} or null; height in px.
   */
  constructor({ id, title, unit = "", onZoom, exportLinks, height = 220, stacked = false }) {
    this.unit = unit;
    this.fmt = formatter(unit);
    this.onZoom = onZoom;
    this.exportLinks = exportLinks;
    this.height = height;
    this.series = [];
    this.bands = [];
    this.annotations = [];
    this.stacked = stacked;
    this.plot = null;
    this.plotArea = el("div", { class: "plot", role: "img", "aria-label": `${title}: chart` });
    this.empty = el("p", { class: "muted empty" }, "No data in this range.");
    this.menu = el("div", { class: "menu", hidden: true, role: "menu" });
    const button = el("button", {
      type: "button", class: "ghost small", "data-testid": "export", "aria-haspopup": "true",
      "aria-expanded": "false", "aria-label": `Export ${title}`,
      onclick: () => {
        const open = this.menu.hidden;
        this.fillMenu();
        this.menu.hidden = !open;
        button.setAttribute("aria-expanded", String(open));
        if (open) this.menu.querySelector("a")?.focus();
      },
    }, "Export ▾");
    // The menu closes on Escape (focus back on its button), a click elsewhere or a choice.
    const close = focus => {
      if (this.menu.hidden) return;
      this.menu.hidden = true;
      button.setAttribute("aria-expanded", "false");
      if (focus) button.focus();
    };
    this.menu.addEventListener("keydown", e => { if (e.key === "Escape") close(true); });
    this.menu.addEventListener("click", e => { if (e.target.closest("a")) close(false); });
    this.onOutside = e => { if (!e.target.closest || !this.exportBox.contains(e.target)) close(false); };
    document.addEventListener("click", this.onOutside);
    this.exportBox = el("div", { class: "export" }, button, this.menu);
    this.node = el("section", {
      class: "card chart", "data-testid": "chart", dataset: { chart: id, points: "0" },
    },
    el("header", {}, el("h3", {}, title), this.exportBox),
    this.plotArea, this.empty);
    this.fillMenu();
    // Follows the card's content box; resized on the next frame: resizing inside the
    // observer's callback would loop.
    this.resize = new ResizeObserver(() => requestAnimationFrame(() => this.fit()));
    this.resize.observe(this.node);
    this.onTheme = () => this.rebuild();
    window.addEventListener("themechange", this.onTheme);
  }

  fillMenu() {
    const spec = this.exportLinks?.();
    this.menu.replaceChildren();
    if (!spec || !spec.match.length) {
      this.menu.append(el("span", { class: "muted" }, "Nothing to export"));
      return;
    }
    for (const format of ["csv", "json", "xlsx"]) {
      const p = new URLSearchParams();
      for (const m of spec.match) p.append("match[]", m);
      p.set("start", (spec.start / 1000).toFixed(0));
      p.set("end", (spec.end / 1000).toFixed(0));
      if (spec.step) p.set("step", `${spec.step}s`);
      p.set("format", format);
      this.menu.append(el("a", {
        href: `/api/v1/export?${p}`, download: "", "data-format": format, role: "menuitem",
      }, format.toUpperCase()));
    }
  }

  /** Replaces what is drawn: [{label, points: [[ms, value]], dash?, color?}];
   * bands: [[upperLabel, lowerLabel]] filled between; x: [startMs, endMs] the time axis
   * (the data's own extent when absent). */
  set(series, { bands = [], annotations, x = null } = {}) {
    this.series = series.map(s => ({ ...s, points: s.points.slice() }));
    this.bands = bands;
    this.x = x;
    if (annotations) this.annotations = annotations;
    this.rebuild();
  }

  setAnnotations(annotations) {
    this.annotations = annotations || [];
    this.plot?.redraw(false);
  }

  /** Moves the time axis to [startMs, endMs]. */
  setX(x) {
    this.x = x;
    this.plot?.setData(this.aligned());
  }

  /** Adds points: {label: [[ms, value]]}; points older than `keepFromMs` are dropped. */
  append(byLabel, keepFromMs) {
    let changed = false, shape = false;
    for (const [label, points] of Object.entries(byLabel)) {
      let s = this.series.find(x => x.label === label);
      if (!s) { s = { label, points: [] }; this.series.push(s); shape = true; }
      for (const p of points) {
        const last = s.points[s.points.length - 1];
        if (!last || p[0] > last[0]) { s.points.push(p); changed = true; }
      }
      if (keepFromMs != null) while (s.points.length > 2 && s.points[0][0] < keepFromMs) s.points.shift();
    }
    if (!changed) return;
    // A sliding window: the axis follows the newest point (its start only moves forward, so
    // an axis fitted to where the data begins stays fitted).
    if (this.x && keepFromMs != null) this.x = [Math.max(this.x[0], keepFromMs), Math.max(this.x[1], this.lastTime())];
    if (shape || !this.plot) this.rebuild(); else this.plot.setData(this.aligned());
    this.count();
  }

  /** The newest time drawn. */
  lastTime() {
    let last = 0;
    for (const s of this.series) if (s.points.length) last = Math.max(last, s.points[s.points.length - 1][0]);
    return last || null;
  }

  /** uPlot's columns: the times of every series, each series' value at them; `undefined`
   * where a series has no point at another's time (uPlot draws across it), `null` for a
   * value that is not a number and just after the last point before a gap in the series'
   * own data (a collector or agent that was down), so no line is drawn where nothing was
   * measured. */
  aligned() {
    const times = new Set();
    const breaks = this.series.map(s => gapStarts(s.points));
    for (const s of this.series) for (const [t] of s.points) times.add(t);
    for (const b of breaks) for (const [t] of b) times.add(t);
    const xs = [...times].sort((a, b) => a - b);
    const index = new Map(xs.map((t, i) => [t, i]));
    const data = [xs.map(t => t / 1000)];
    this.series.forEach((s, k) => {
      const ys = new Array(xs.length).fill(undefined);
      for (const [t, v] of s.points) ys[index.get(t)] = isFinite(v) ? v : null;
      // The whole gap is null, not only its first time: uPlot joins a line across
      // `undefined` from the last value before the null to the first after the gap.
      for (const [from, to] of breaks[k]) {
        for (let i = index.get(from); i < xs.length && xs[i] < to; i++) if (ys[i] === undefined) ys[i] = null;
      }
      data.push(ys);
    });
    return data;
  }

  count() {
    let n = 0;
    for (const s of this.series) for (const [, v] of s.points) if (isFinite(v)) n++;
    this.node.dataset.points = String(n);
    this.empty.hidden = n > 0;
    this.plotArea.hidden = n === 0;
  }

  rebuild() {
    this.plot?.destroy();
    this.plot = null;
    this.count();
    if (!this.series.some(s => s.points.length)) return;
    if (!window.uPlot) {
      uPlotReady.then(() => { if (!this.plot) this.rebuild(); }, e => {
        this.empty.textContent = e.message;
        this.empty.hidden = false;
      });
      return;
    }
    const text = css("--muted") || "#666", grid = css("--grid") || "#ddd";
    const fmt = this.fmt;
    const labels = this.series.map(s => s.label);
    const axis = { stroke: text, grid: { stroke: grid, width: 1 }, ticks: { stroke: grid, width: 1 } };
    const opts = {
      width: this.width() || 600,
      height: this.height,
      // Room on the right for half the last time label.
      padding: [8, 28, 0, 0],
      series: [{ value: (u, v) => (v == null ? "–" : new Date(v * 1000).toLocaleString()) },
        ...this.series.map((s, i) => {
          const color = s.color || PALETTE[i % PALETTE.length];
          const inBand = this.bands.some(b => b.includes(s.label));
          return {
            label: s.label, stroke: inBand ? fade(color, 0.5) : color, width: inBand ? 1 : 1.5,
            dash: s.dash || (inBand ? [4, 4] : undefined), spanGaps: false,
            value: (u, v) => (v == null ? "–" : fmt(v)),
            points: {
              size: 6, width: 1, fill: color,
              show: (u, si, i0, i1) => defined(u.data[si], i0, i1) <= FEW_POINTS,
              filter: (u, si, show) => (show ? null : isolated(u.data[si])),
            },
          };
        })],
      bands: this.bands.map(([hi, lo]) => {
        const i = labels.indexOf(hi) + 1, j = labels.indexOf(lo) + 1;
        const color = this.series[i - 1]?.color || PALETTE[(i - 1) % PALETTE.length];
        return { series: [i, j], fill: fade(color, 0.15) };
      }).filter(b => b.series[0] > 0 && b.series[1] > 0),
      axes: [{ ...axis, space: 80, values: (u, splits, i, space, incr) => timeTicks(splits, incr) }, {
        ...axis, values: (u, splits) => this.ticks(splits),
        // Bytes step in powers of two (8 GiB, not 9.31 GiB).
        incrs: this.unit.startsWith("bytes") ? BINARY_STEPS : undefined,
        // Wide enough for the longest tick label, and for half the first time label.
        size: (u, values) => 16 + 7 * Math.max(5, ...(values || []).map(v => String(v).length)),
      }],
      scales: {
        x: { time: true, range: (u, min, max) => (this.x ? [this.x[0] / 1000, this.x[1] / 1000] : [min, max]) },
        y: { range: (u, min, max) => yRange(this.unit, min, max) },
      },
      cursor: { drag: { x: true, y: false, setScale: false } },
      legend: { live: true },
      hooks: {
        setSelect: [u => {
          if (u.select.width > 4 && this.onZoom) {
            const a = u.posToVal(u.select.left, "x"), b = u.posToVal(u.select.left + u.select.width, "x");
            this.onZoom(a * 1000, b * 1000);
          }
          u.setSelect({ left: 0, top: 0, width: 0, height: 0 }, false);
        }],
        draw: [u => this.drawAnnotations(u)],
      },
    };
    this.plot = new window.uPlot(opts, this.aligned(), this.plotArea);
  }

  /** Tick labels, more precise when the usual ones would repeat. */
  ticks(splits) {
    const labels = splits.map(v => this.fmt(v));
    if (new Set(labels).size === labels.length) return labels;
    const precise = formatter(this.unit, true);
    return splits.map(v => precise(v));
  }

  drawAnnotations(u) {
    if (!this.annotations.length) return;
    const ctx = u.ctx, { top, height } = u.bbox, ratio = devicePixelRatio || 1;
    const [min, max] = [u.scales.x.min, u.scales.x.max];
    const color = css("--annotation") || "#c026d3";
    ctx.save();
    ctx.font = `${11 * ratio}px system-ui, sans-serif`;
    ctx.textAlign = "left";
    ctx.textBaseline = "top";
    let row = 0;
    for (const a of this.annotations) {
      const start = a.time_ms / 1000, end = a.end_ms != null ? a.end_ms / 1000 : null;
      if ((end ?? start) < min || start > max) continue;
      const x0 = u.valToPos(Math.max(start, min), "x", true);
      ctx.fillStyle = color;
      ctx.strokeStyle = color;
      if (end != null) {
        const x1 = u.valToPos(Math.min(end, max), "x", true);
        ctx.globalAlpha = 0.12;
        ctx.fillRect(x0, top, Math.max(1, x1 - x0), height);
        ctx.globalAlpha = 1;
      }
      ctx.setLineDash(a.kind === "now" ? [3 * ratio, 3 * ratio] : []);
      ctx.lineWidth = ratio;
      ctx.beginPath();
      ctx.moveTo(x0, top);
      ctx.lineTo(x0, top + height);
      ctx.stroke();
      // Staggered over three rows, so marks close together stay readable.
      ctx.fillText(a.text.slice(0, 40), x0 + 3 * ratio, top + (2 + 13 * (row++ % 3)) * ratio);
    }
    ctx.restore();
  }

  /** The card's content width (0 while it is not laid out). */
  width() {
    const box = this.node.clientWidth;
    if (!box) return 0;
    const style = getComputedStyle(this.node);
    return Math.max(200, Math.floor(box - parseFloat(style.paddingLeft) - parseFloat(style.paddingRight)));
  }

  fit() {
    const width = this.width();
    if (!this.plot || !width) return;
    if (Math.abs(width - this.plot.width) > 1) this.plot.setSize({ width, height: this.height });
  }

  destroy() {
    this.resize.disconnect();
    document.removeEventListener("click", this.onOutside);
    window.removeEventListener("themechange", this.onTheme);
    this.plot?.destroy();
  }
}

/** The gaps in `points` longer than three of the series' usual intervals (the median between
 * its points), each as [just after the point before it, the point after it] in ms: where its
 * line must not be drawn. */
function gapStarts(points) {
  if (points.length < 3) return [];
  const steps = [];
  for (let i = 1; i < points.length; i++) steps.push(points[i][0] - points[i - 1][0]);
  const usual = steps.slice().sort((a, b) => a - b)[steps.length >> 1];
  const out = [];
  steps.forEach((d, i) => { if (d > 3 * usual) out.push([points[i][0] + 1, points[i + 1][0]]); });
  return out;
}

/** How many of `ys[i0..=i1]` are numbers. */
function defined(ys, i0, i1) {
  let n = 0;
  for (let i = i0; i <= i1; i++) if (ys[i] != null) n++;
  return n;
}

/** The indices of points with no drawn neighbour (the nearest values either side, skipping
 * other series' times, are gaps or absent): a line through them would draw nothing. */
function isolated(ys) {
  const out = [];
  let before = null;
  for (let i = 0; i < ys.length; i++) {
    const v = ys[i];
    if (v === undefined) continue;
    if (v !== null && before === null) {
      let j = i + 1;
      while (j < ys.length && ys[j] === undefined) j++;
      if (j >= ys.length || ys[j] === null) out.push(i);
    }
    before = v;
  }
  return out.length ? out : null;
}

/** The y axis's range: ratios 0–100 % unless the data goes beyond; others from 0 unless the
 * data is negative; a flat series gets some height. */
function yRange(unit, min, max) {
  if (min == null || max == null) return [0, 1];
  if (unit === "ratio") {
    const lo = Math.min(0, min), hi = Math.max(1, max);
    return hi > 1 || lo < 0 ? window.uPlot.rangeNum(lo, hi, 0.05, true) : [0, 1];
  }
  const lo = Math.min(0, min);
  const hi = max > lo ? max : lo + (Math.abs(lo) || 1);
  return window.uPlot.rangeNum(lo, hi, 0.1, true);
}

/** Time tick labels in the browser's zone: hours and minutes (seconds on short ranges), the
 * day under the first label and wherever the day changes; days alone for long ranges. */
function timeTicks(splits, incr) {
  const day = d => d.toLocaleDateString(undefined, { month: "short", day: "numeric" });
  const clock = { hour: "numeric", minute: "2-digit", ...(incr < 60 ? { second: "2-digit" } : {}) };
  let previous = null;
  return splits.map((s, i) => {
    const d = new Date(s * 1000), date = day(d);
    if (incr >= 86400) return date;
    const text = d.toLocaleTimeString(undefined, clock);
    const label = i === 0 || date !== previous ? `${text}\n${date}` : text;
    previous = date;
    return label;
  });
}

/** Series of a query_range answer as chart series, labelled by `label(metric)`. */
export function toSeries(result, label) {
  return result.map(r => ({ label: label(r.metric), points: r.points }));
}
