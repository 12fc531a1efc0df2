// The dashboard's shell: theme, the API client (unwraps {status, data}), who is logged in and
// what the role may do, the hash router (one module per page under pages/), and the helpers
// every page uses (DOM building, range picker, range queries).

import { Live } from "./live.js";
import { localInput, fromInput, parseDuration, promDuration } from "./format.js";

// ---- theme ------------------------------------------------------------------------------
const THEME_KEY = "hcmon-theme";

export function initTheme() {
  const scheme = matchMedia("(prefers-color-scheme: dark)");
  const follow = () => {
    document.documentElement.dataset.theme = localStorage.getItem(THEME_KEY) || (scheme.matches ? "dark" : "light");
  };
  follow();
  // Until the toggle is used, the page follows the system's choice as it changes.
  scheme.addEventListener("change", () => { follow(); window.dispatchEvent(new Event("themechange")); });
  for (const b of document.querySelectorAll('[data-testid="theme"]')) {
    b.addEventListener("click", () => {
      const next = document.documentElement.dataset.theme === "dark" ? "light" : "dark";
      document.documentElement.dataset.theme = next;
      localStorage.setItem(THEME_KEY, next);
      window.dispatchEvent(new Event("themechange"));
    });
  }
}

// ---- API ----------------------------------------------------------------------------------
export class ApiError extends Error {
  constructor(message, status) { super(message); this.status = status; }
  get missing() { return this.status === 404 || this.status === 405; }
}

/** Calls the API; answers `data` of a success, throws ApiError otherwise. A 401 goes to the
 * login page. `params` become the query string (arrays repeat the name). */
export async function api(path, { method = "GET", params, body, signal } = {}) {
  const url = new URL(path, location.origin);
  for (const [k, v] of Object.entries(params || {})) {
    for (const one of Array.isArray(v) ? v : [v]) if (one != null && one !== "") url.searchParams.append(k, one);
  }
  const init = { method, signal, headers: {}, credentials: "same-origin" };
  if (body !== undefined) {
    init.headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(body);
  }
  let response;
  try {
    response = await fetch(url, init);
  } catch (e) {
    if (e.name === "AbortError") throw e;
    throw new ApiError(`cannot reach the collector (${e.message})`, 0);
  }
  if (response.status === 401 && !path.includes("whoami")) {
    location.assign("/login?error=expired");
  }
  let json = null;
  try { json = await response.json(); } catch { /* not JSON */ }
  if (response.ok && json && json.status === "success") return json.data;
  const message = json && json.error ? json.error :
    response.status === 404 ? "not available in this collector" : `HTTP ${response.status}`;
  throw new ApiError(message, response.status);
}

/** `/api/v1/query_range` as [{metric, points: [[ms, value]]}]. */
export async function queryRange(query, startMs, endMs, stepS, signal) {
  const data = await api("/api/v1/query_range", {
    params: { query, start: startMs / 1000, end: endMs / 1000, step: stepS }, signal,
  });
  return (data.result || []).map(r => ({
    metric: r.metric,
    points: r.values.map(([t, v]) => [Math.round(t * 1000), Number(v)]),
  }));
}

/** `/api/v1/query` as [{metric, value}]. */
export async function query(q, signal) {
  const data = await api("/api/v1/query", { params: { query: q }, signal });
  if (data.resultType === "scalar") return [{ metric: {}, value: Number(data.result[1]) }];
  return (data.result || []).map(r => ({ metric: r.metric, value: Number(r.value[1]), at: r.value[0] * 1000 }));
}

// ---- who is logged in --------------------------------------------------------------------
export const session = { name: "", role: "viewer", write: false };
const RANK = { viewer: 0, operator: 1, admin: 2 };

/** Whether the role may acknowledge, silence, mark and run experiments. */
export const canOperate = () => RANK[session.role] >= 1;

// ---- DOM ----------------------------------------------------------------------------------
/** el("div", {class: "x", onclick: f, dataset: {a: 1}}, child, "text", …) */
export function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v == null || v === false) continue;
    if (k === "dataset") Object.assign(node.dataset, v);
    else if (k.startsWith("on")) node.addEventListener(k.slice(2), v);
    else if (k === "text") node.textContent = v;
    else if (k in node && k !== "list" && typeof v !== "string") node[k] = v;
    else node.setAttribute(k, v === true ? "" : v);
  }
  for (const c of children.flat()) if (c != null && c !== false) node.append(c.nodeType ? c : String(c));
  return node;
}

/** A box saying what could not be shown and why; 404s say "not available". */
export function problem(error, what = "") {
  if (error && error.name === "AbortError") return el("span");
  const missing = error instanceof ApiError && error.missing;
  const text = missing ? `${what ? what + ": " : ""}not available in this collector (${error.message})`
    : `${what ? what + ": " : ""}${error && error.message ? error.message : error}`;
  return el("p", { class: missing ? "notice" : "notice error", role: "status" }, text);
}

// ---- time ranges --------------------------------------------------------------------------
export const RANGES = ["15m", "1h", "6h", "24h", "7d", "30d"];

/** The range a page shows: a relative one ("1h", ending now) or a fixed one. */
export function resolveRange(range) {
  if (range.from != null) return { start: range.from, end: range.to };
  const seconds = parseDuration(range.last || "1h") || 3600;
  const end = Date.now();
  return { start: end - seconds * 1000, end };
}

/** A step giving ~450 points over the range, rounded to a readable size, at least 5 s. */
export function stepFor(startMs, endMs) {
  const raw = (endMs - startMs) / 1000 / 450;
  const nice = [5, 10, 15, 30, 60, 120, 300, 600, 900, 1200, 1800, 3600, 7200, 10800, 21600, 43200, 86400];
  return nice.find(s => s >= raw) || 86400;
}

/** A rate window for `step`: the step (rollup-sized for long ranges), at least `min` seconds
 * (three samples of the tier the counter comes in). */
export const rateWindow = (step, min = 30) => promDuration(Math.max(step, min));

/** The range picker: buttons for the presets, a custom from/to, calls `onChange(range)`. */
export function rangePicker(range, onChange) {
  const buttons = RANGES.map(r => el("button", {
    type: "button", class: range.last === r && range.from == null ? "on" : "",
    "aria-pressed": String(range.last === r && range.from == null),
    onclick: () => onChange({ last: r }),
  }, r));
  const { start, end } = resolveRange(range);
  const from = el("input", { type: "datetime-local", value: localInput(start), "aria-label": "From" });
  const to = el("input", { type: "datetime-local", value: localInput(end), "aria-label": "To" });
  const apply = el("button", { type: "submit" }, "Apply");
  const custom = el("form", {
    class: "custom", onsubmit: e => {
      e.preventDefault();
      const f = fromInput(from.value), t = fromInput(to.value);
      if (f != null && t != null && t > f) onChange({ from: f, to: t });
    },
  }, from, to, apply);
  return el("div", { class: "range-picker" }, el("div", { class: "presets", role: "group", "aria-label": "Time range" }, buttons), custom);
}

/** Serialises a range for the URL hash. */
export function rangeParam(range) {
  return range.from != null ? `${Math.round(range.from)}-${Math.round(range.to)}` : range.last;
}

/** Reads a range from the URL hash's `range` parameter. */
export function readRange(text, fallback = "1h") {
  const m = /^(\d+)-(\d+)$/.exec(text || "");
  if (m) return { from: Number(m[1]), to: Number(m[2]) };
  return { last: parseDuration(text || "") ? text : fallback };
}

/** A node's state from its agent record: down (stream closed), silent (open, but nothing for
 * a minute) or connected. */
export function nodeState(agent, now = Date.now()) {
  if (!agent.connected) return "down";
  return now - agent.last_batch_at_ms > 60_000 ? "silent" : "connected";
}

// ---- router -------------------------------------------------------------------------------
const PAGES = ["fleet", "node", "alerts", "anomalies", "quality", "trends", "explore", "compare", "experiments"];
export const live = new Live();
let current = null;

/** The current route: page, argument, hash parameters. */
export function route() {
  const hash = location.hash.replace(/^#\/?/, "");
  const [path, search = ""] = hash.split("?");
  const [page, ...rest] = path.split("/");
  return {
    page: PAGES.includes(page) ? page : "fleet",
    arg: rest.length ? decodeURIComponent(rest.join("/")) : "",
    params: new URLSearchParams(search),
  };
}

/** Rewrites the hash's parameters without re-rendering the page. */
export function setParams(values) {
  const r = route();
  for (const [k, v] of Object.entries(values)) {
    if (v == null || v === "") r.params.delete(k); else r.params.set(k, v);
  }
  const path = r.arg ? `${r.page}/${encodeURIComponent(r.arg)}` : r.page;
  const search = r.params.toString();
  history.replaceState(null, "", `#/${path}${search ? "?" + search : ""}`);
}

async function show() {
  const r = route();
  if (current) current.abort();
  const controller = new AbortController();
  current = controller;
  live.reset();
  const main = document.querySelector("main");
  for (const a of document.querySelectorAll("nav a")) {
    const on = a.dataset.page === r.page || (r.page === "node" && a.dataset.page === "fleet");
    a.classList.toggle("on", on);
    if (on) a.setAttribute("aria-current", "page"); else a.removeAttribute("aria-current");
  }
  main.replaceChildren(el("p", { class: "muted" }, "Loading…"));
  document.title = `hcmon · ${r.page}${r.arg ? " " + r.arg : ""}`;
  try {
    const module = await import(`./pages/${r.page}.js`);
    if (controller.signal.aborted) return;
    main.replaceChildren();
    await module.render(main, { ...r, signal: controller.signal, live });
  } catch (error) {
    if (error.name !== "AbortError") main.replaceChildren(problem(error, r.page));
  }
}

async function start() {
  initTheme();
  // Fetched while who is logged in is asked: the page needs both.
  import(`./pages/${route().page}.js`).catch(() => {});
  try {
    Object.assign(session, await api("/api/v1/whoami"));
  } catch (error) {
    if (error instanceof ApiError && error.status === 401) {
      location.replace("/login");
      return;
    }
  }
  document.body.dataset.role = session.role;
  const who = document.querySelector(".who");
  if (who) who.textContent = `${session.name} · ${session.role}`;
  document.querySelector(".logout")?.addEventListener("click", async () => {
    try { await api("/api/v1/logout", { method: "POST" }); } catch { /* gone already */ }
    location.assign("/login");
  });
  live.connect();
  window.addEventListener("hashchange", show);
  if (!location.hash) history.replaceState(null, "", "#/fleet");
  show();
}

if (document.querySelector("main") && !document.body.classList.contains("login-page")) start();

