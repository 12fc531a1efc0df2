// Human units and times, shared by every page: bytes in IEC units, ratios as %, durations,
// rates, times in the browser's own zone, series as PromQL text.

const IEC = ["B", "KiB", "MiB", "GiB", "TiB", "PiB"];

export function bytes(n, suffix = "", extra = 0) {
  if (n == null || !isFinite(n)) return "–";
  let i = 0, v = Math.abs(n);
  while (v >= 1024 && i < IEC.length - 1) { v /= 1024; i++; }
  return `${n < 0 ? "-" : ""}${trim(v, extra)} ${IEC[i]}${suffix}`;
}

/** A ratio as a percentage: whole percents from 10 %, one decimal from 0.1 %, one significant
 * digit below (a threshold of 0.0001 reads "0.01 %", not "0.0 %"); `digits` fixes them. */
export function percent(ratio, digits) {
  if (ratio == null || !isFinite(ratio)) return "–";
  const p = ratio * 100, a = Math.abs(p);
  if (digits != null) return `${p.toFixed(digits)} %`;
  const text = a === 0 ? "0" : a >= 10 ? p.toFixed(0) : a >= 0.1 ? p.toFixed(1) : String(+p.toPrecision(1));
  return `${text} %`;
}

export function number(n) {
  if (n == null || !isFinite(n)) return "–";
  const a = Math.abs(n);
  if (a >= 1e9) return trim(n / 1e9) + " G";
  if (a >= 1e6) return trim(n / 1e6) + " M";
  if (a >= 1e4) return trim(n / 1e3) + " k";
  if (a !== 0 && a < 0.01) return n.toExponential(1);
  return trim(n);
}

/** Three significant digits or so, trailing zeros dropped; `extra` more when asked. */
function trim(v, extra = 0) {
  const a = Math.abs(v);
  const digits = (a >= 100 ? 0 : a >= 10 ? 1 : 2) + extra;
  const text = v.toFixed(digits);
  return digits ? text.replace(/\.?0+$/, "") : text;
}

/** Seconds as "9 h 12 min", "850 ms", "3 d 4 h". */
export function duration(s) {
  if (s == null || !isFinite(s)) return "–";
  const a = Math.abs(s), sign = s < 0 ? "-" : "";
  if (a < 1e-3) return sign + trim(a * 1e6) + " µs";
  if (a < 1) return sign + trim(a * 1e3) + " ms";
  if (a < 60) return sign + trim(a) + " s";
  const parts = [[86400, "d"], [3600, "h"], [60, "min"]];
  const out = [];
  let rest = a;
  for (const [size, name] of parts) {
    if (rest >= size && out.length < 2) { out.push(`${Math.floor(rest / size)} ${name}`); rest %= size; }
    else if (out.length) break;
  }
  return sign + out.join(" ");
}

/** What a metric measures, from its name (and whether a rate of it is shown). */
export function unitOf(name = "", rated = false) {
  if (/_ratio$|_percent$|_utilization$/.test(name)) return "ratio";
  if (/_bytes(_total)?$/.test(name)) return rated ? "bytes/s" : "bytes";
  if (/_seconds_total$/.test(name)) return rated ? "ratio" : "seconds";
  if (/_seconds$/.test(name)) return "seconds";
  if (/_celsius$/.test(name)) return "celsius";
  if (/_total$/.test(name) && rated) return "/s";
  return "";
}

/** A formatter for values of `unit`; `precise` for axis ticks close together. */
export function formatter(unit, precise = false) {
  const extra = precise ? 2 : 0;
  switch (unit) {
    case "ratio": return v => percent(v, precise ? 2 : undefined);
    case "bytes": return v => bytes(v, "", extra);
    case "bytes/s": return v => bytes(v, "/s", extra);
    case "seconds": return precise ? v => (v == null || !isFinite(v) ? "–" : `${+v.toPrecision(6)} s`) : duration;
    case "celsius": return v => (v == null || !isFinite(v) ? "–" : `${trim(v)} °C`);
    case "/s": return v => (v == null || !isFinite(v) ? "–" : `${number(v)}/s`);
    default: return precise ? v => (v == null || !isFinite(v) ? "–" : String(+v.toPrecision(6))) : number;
  }
}

const pad = n => String(n).padStart(2, "0");

/** A time in the browser's zone, short. */
export function time(ms) {
  if (ms == null || !isFinite(ms)) return "–";
  return new Date(ms).toLocaleString(undefined, {
    month: "short", day: "numeric", hour: "2-digit", minute: "2-digit", second: "2-digit",
  });
}

/** "3 min ago". */
export function ago(ms, now = Date.now()) {
  if (!ms) return "never";
  const s = (now - ms) / 1000;
  return s < 5 ? "just now" : `${duration(Math.round(s))} ago`;
}

/** A value for <input type="datetime-local"> in the browser's zone. */
export function localInput(ms) {
  const d = new Date(ms);
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())}T${pad(d.getHours())}:${pad(d.getMinutes())}`;
}

/** Milliseconds from a datetime-local value (read in the browser's zone). */
export function fromInput(value) {
  const ms = new Date(value).getTime();
  return isFinite(ms) ? ms : null;
}

/** Parses "15m", "1h", "7d" into seconds. */
export function parseDuration(text) {
  const m = /^(\d+(?:\.\d+)?)(ms|s|m|h|d|w)$/.exec(String(text).trim());
  if (!m) return null;
  const f = { ms: 1e-3, s: 1, m: 60, h: 3600, d: 86400, w: 604800 }[m[2]];
  return Number(m[1]) * f;
}

/** Seconds as a PromQL duration ("90s", "5m"). */
export function promDuration(s) {
  s = Math.max(1, Math.round(s));
  if (s % 86400 === 0) return `${s / 86400}d`;
  if (s % 3600 === 0) return `${s / 3600}h`;
  if (s % 60 === 0) return `${s / 60}m`;
  return `${s}s`;
}

/** A series as PromQL text: name{a="b",…}, labels sorted. */
export function seriesText(metric = {}) {
  const name = metric.__name__ || "";
  const labels = Object.keys(metric).filter(k => k !== "__name__").sort()
    .map(k => `${k}=${JSON.stringify(metric[k])}`);
  return labels.length ? `${name}{${labels.join(",")}}` : name;
}

/** A short label for a series: the labels that differ from `common`. */
export function shortLabel(metric = {}, skip = ["job", "instance", "node"]) {
  const parts = Object.keys(metric).filter(k => k !== "__name__" && !skip.includes(k)).sort()
    .map(k => metric[k]);
  return parts.join(" ") || metric.__name__ || "value";
}
