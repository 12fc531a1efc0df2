// Alerts: open alerts with state, severity, escalation tier, evidence and related series (links
// to Explore); acknowledge and silence for operators and admins only; the incident history.
// Live: an alert event from the stream reloads the table.

import { api, canOperate, el, problem, session } from "../app.js";
import { formatter, time, unitOf } from "../format.js";

const OPEN = ["firing", "pending", "acknowledged"];
const SEVERITY = { critical: 0, error: 1, warning: 2 };

export async function render(main, { signal, live }) {
  const table = el("div");
  const history = el("div");
  main.append(el("div", { class: "page-head" }, el("h1", {}, "Alerts")), table,
    el("h2", {}, "Incident history"), history);
  const load = async () => {
    try {
      const { alerts } = await api("/api/v1/alerts", { signal });
      table.replaceChildren(alertTable(alerts.filter(a => OPEN.includes(a.hcmonState)), load));
    } catch (e) {
      table.replaceChildren(problem(e, "alerts"));
    }
    try {
      const incidents = await api("/api/v1/incidents", { params: { limit: 50 }, signal });
      history.replaceChildren(incidentTable(incidents));
    } catch (e) {
      history.replaceChildren(problem(e, "incidents"));
    }
  };
  let timer = null;
  live.on("alert", () => { clearTimeout(timer); timer = setTimeout(load, 300); });
  await load();
}

function alertTable(alerts, reload) {
  if (!alerts.length) return el("p", { class: "muted" }, "No open alerts.");
  alerts.sort((a, b) => (SEVERITY[a.labels.severity] ?? 3) - (SEVERITY[b.labels.severity] ?? 3)
    || a.activeAt.localeCompare(b.activeAt) || a.id.localeCompare(b.id));
  const operator = canOperate();
  return el("div", { class: "table-wrap" }, el("table", { class: "alerts" },
    el("thead", {}, el("tr", {}, ["State", "Severity", "Alert", "Since", "Tier", "Evidence", "Related", operator ? "Actions" : null]
      .filter(Boolean).map(h => el("th", { scope: "col" }, h)))),
    el("tbody", {}, alerts.map(a => alertRow(a, operator, reload)))));
}

function alertRow(a, operator, reload) {
  const l = a.labels;
  const name = l.alertname || a.id;
  const where = l.node || l.instance || "";
  const e = a.evidence || {};
  const fmt = formatter(unitOfAlert(a));
  const evidence = [];
  if (a.value) evidence.push(`value ${fmt(Number(a.value))}`);
  if (e.threshold != null) evidence.push(`threshold ${fmt(e.threshold)}`);
  if (e.expected) evidence.push(`expected ${fmt(e.expected[0])} – ${fmt(e.expected[1])}`);
  evidence.push(...(e.details || []));
  const actions = el("div", { class: "actions" });
  const row = el("tr", { "data-testid": "alert", dataset: { alertId: a.id, state: a.hcmonState } },
    el("td", {}, el("span", { class: `badge ${a.hcmonState}` }, a.hcmonState),
      a.flapping ? el("span", { class: "badge warning" }, "flapping") : null,
      a.muted ? el("span", { class: "badge", title: a.muted }, "muted") : null),
    el("td", {}, el("span", { class: `badge sev-${l.severity || "none"}` }, l.severity || "–")),
    el("td", {}, el("strong", {}, name), where ? el("div", { class: "muted small" }, where) : null,
      a.annotations.summary ? el("div", { class: "small" }, a.annotations.summary) : null),
    el("td", {}, time(Date.parse(a.activeAt))),
    el("td", {}, a.escalationTiers ? `${a.escalationTier}/${a.escalationTiers}` : "–"),
    el("td", { class: "small" }, evidence.join("; ") || "–",
      a.acknowledged ? el("div", { class: "muted" }, `acknowledged by ${a.acknowledged.by}`) : null),
    el("td", { class: "small" }, (e.related || []).map(s => el("div", {}, linked(s)))),
    operator ? el("td", {}, actions) : null);
  if (operator) {
    if (a.hcmonState !== "acknowledged") {
      actions.append(el("button", {
        type: "button", "data-testid": "ack", class: "small",
        onclick: async ev => {
          ev.target.disabled = true;
          try {
            await api(`/api/v1/alerts/${encodeURIComponent(a.id)}/ack`, { method: "POST", body: { by: session.name } });
            reload();
          } catch (err) { actions.append(problem(err)); ev.target.disabled = false; }
        },
      }, "Ack"));
    }
    actions.append(el("button", {
      type: "button", "data-testid": "silence", class: "small ghost",
      onclick: () => actions.append(silenceForm(a, reload)),
    }, "Silence"));
  }
  return row;
}

/** The unit of the series an alert watches, from the metric its summary or description names
 * first (ratios as %, bytes in IEC units, seconds as durations); a counter's is per second. */
function unitOfAlert(a) {
  const text = `${a.annotations?.summary || ""} ${a.annotations?.description || ""}`;
  const name = (/\b([a-zA-Z_:][\w:]*)(?=\{|\s)/.exec(text.trim()) || [])[1] || "";
  return unitOf(name, name.endsWith("_total"));
}

/** A description with each series in it ("a{x="1"} rose with b{…}") linked to Explore,
 * shown by its name (the labels are the alert's, in the link and its title). */
function linked(text) {
  const parts = [];
  let last = 0;
  for (const m of text.matchAll(/[a-zA-Z_:][\w:]*\{[^{}]*\}/g)) {
    parts.push(text.slice(last, m.index),
      el("a", { href: `#/explore?q=${encodeURIComponent(m[0])}&range=1h`, title: m[0] }, m[0].slice(0, m[0].indexOf("{"))));
    last = m.index + m[0].length;
  }
  parts.push(text.slice(last));
  return parts;
}

function silenceForm(a, reload) {
  const matchers = Object.entries(a.labels).filter(([k]) => ["alertname", "node", "instance"].includes(k))
    .map(([k, v]) => `${k}=${JSON.stringify(v)}`).join(",");
  const duration = el("select", { "aria-label": "Silence for" }, ["1h", "4h", "24h", "7d"].map(d => el("option", { value: d }, d)));
  const comment = el("input", { type: "text", placeholder: "why", "aria-label": "Comment" });
  const form = el("form", {
    class: "inline", onsubmit: async ev => {
      ev.preventDefault();
      try {
        await api("/api/v1/silences", {
          method: "POST",
          body: { matchers: `{${matchers}}`, duration: duration.value, created_by: session.name, comment: comment.value },
        });
        form.replaceChildren(el("span", { class: "muted" }, "silenced"));
        reload();
      } catch (err) { form.append(problem(err)); }
    },
  }, el("code", { class: "small" }, `{${matchers}}`), duration, comment, el("button", { type: "submit", class: "small" }, "Silence"));
  return form;
}

function incidentTable(incidents) {
  if (!incidents.length) return el("p", { class: "muted" }, "No incidents yet.");
  return el("div", { class: "table-wrap" }, el("table", {},
    el("thead", {}, el("tr", {}, ["Started", "Alert", "Severity", "Acknowledged", "Resolved"].map(h => el("th", { scope: "col" }, h)))),
    el("tbody", {}, incidents.map(i => el("tr", {},
      el("td", {}, time(Date.parse(i.startedAt))),
      el("td", {}, i.labels.alertname || i.alert, el("span", { class: "muted small" }, ` ${i.labels.node || ""}`)),
      el("td", {}, el("span", { class: `badge sev-${i.severity}` }, i.severity)),
      el("td", {}, i.acknowledged ? `${i.acknowledged.by}, ${time(Date.parse(i.acknowledged.at))}` : "–"),
      el("td", {}, i.resolvedAt ? time(Date.parse(i.resolvedAt)) : el("span", { class: "badge firing" }, "open")))))));
}
