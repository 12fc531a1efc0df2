// The dashboard in headless Chromium against a running collector with two agents (`alpha` and
// `beta` unless HCMON_NODES says otherwise): each check is a named step; every step runs, the
// failures are listed at the end and the exit code is 1 when any failed. Screenshots of every
// page go to HCMON_SCREENSHOTS. tests/tests/dashboard_browser.rs starts the processes and runs
// this; by hand, against any collector with two agents and a firing alert:
//   HCMON_NODES=alpha,beta HCMON_URL=http://127.0.0.1:9464 HCMON_ADMIN_TOKEN=… HCMON_OPERATOR_TOKEN=… \
//   HCMON_VIEWER_TOKEN=… node tests/browser/dashboard.test.mjs
// What it relies on in the page (the dashboard keeps these for it): fleet cards
// [data-testid=fleet-node][data-node][data-state]; charts [data-testid=chart][data-chart]
// [data-points] with an [data-testid=export] menu of <a download data-format=csv|json|xlsx>;
// alert rows [data-testid=alert][data-alert-id][data-state] with [data-testid=ack|silence]
// for operators only; the compare form's [data-testid=compare-node|compare-before-start|
// compare-before-end|compare-after-start|compare-after-end|compare-run] and ranked
// [data-testid=compare-row][data-metric]; body[data-live=open|closed][data-role];
// [data-testid=theme] and html[data-theme=light|dark].

import { api, env, openBrowser, remoteWrite, until } from './lib.mjs';
import { mkdirSync, readFileSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import http from 'node:http';
import { join } from 'node:path';

const base = env('HCMON_URL');
const admin = env('HCMON_ADMIN_TOKEN');
const operator = env('HCMON_OPERATOR_TOKEN');
const viewer = env('HCMON_VIEWER_TOKEN');
const shots = process.env.HCMON_SCREENSHOTS || 'hcmon-screenshots';
const [alpha, beta] = (process.env.HCMON_NODES || 'alpha,beta').split(',');
mkdirSync(shots, { recursive: true });

/** The series with an injected level shift, and two that do not shift, for the comparison. */
const SHIFTED = 'browser_test_level_shift';
const STEADY = ['browser_test_steady', 'browser_test_noise'];

const failures = [];
const consoleErrors = [];

async function step(name, body) {
  const started = Date.now();
  try {
    const note = await body();
    console.log(`ok    ${name} (${Date.now() - started} ms)${note ? `: ${note}` : ''}`);
  } catch (error) {
    failures.push(name);
    console.log(`FAIL  ${name} (${Date.now() - started} ms)\n      ${String(error.message || error).replaceAll('\n', '\n      ')}`);
  }
}

/** Console errors and uncaught exceptions of `page`, with the address they happened at. */
function watch(page, who) {
  page.on('console', (message) => {
    if (message.type() !== 'error') return;
    const at = message.location()?.url;
    consoleErrors.push(`${who} ${page.url()}: console: ${message.text()}${at ? ` (${at})` : ''}`);
  });
  page.on('pageerror', (error) => consoleErrors.push(`${who} ${page.url()}: uncaught: ${error.message}`));
  page.on('dialog', (dialog) => dialog.accept());
}

const route = (hash) => `${base.replace(/\/$/, '')}/#/${hash}`;
const points = (page, chart) =>
  page.$eval(`[data-testid=chart][data-chart=${chart}]`, (el) => Number(el.dataset.points || 0));

/** Waits until `chart` on the page draws points; their count. */
async function chartPoints(page, chart, timeout = 20_000) {
  const selector = `[data-testid=chart][data-chart=${chart}]`;
  await page.waitForSelector(selector, { timeout }).catch(() => {
    throw new Error(`no ${selector} on ${page.url()}`);
  });
  await page
    .waitForFunction((s) => Number(document.querySelector(s)?.dataset.points || 0) > 0, selector, { timeout })
    .catch(async () => {
      throw new Error(`${selector} has data-points=${await points(page, chart)} after ${timeout} ms`);
    });
  return points(page, chart);
}

async function screenshot(page, name) {
  await page.waitForTimeout(800);
  await page.screenshot({ path: join(shots, `${name}.png`), fullPage: true });
}

/** The time of `node`'s newest stored CPU usage sample (ms; the CPU chart's total), from the API. */
async function newestCpuSample(node) {
  const data = await api(base, admin, `/api/v1/query?query=${encodeURIComponent(`timestamp(node_cpu_usage_ratio{node="${node}"})`)}`);
  return data.result.length ? Number(data.result[0].value[1]) * 1000 : 0;
}

/** Series for the comparison: 20 min of 10 s points for `node`, the shifted one 4× higher after `at`. */
function levelShift(node, at) {
  const wobble = (i) => Math.sin(i * 1.7) * 0.5 + ((i * 7919) % 13) / 13;
  const make = (name, shift) => ({
    labels: { __name__: name, node },
    samples: Array.from({ length: 120 }, (_, i) => {
      const ms = at - 600_000 + i * 10_000;
      return [ms, 10 + wobble(i) + (ms >= at ? shift : 0)];
    }),
  });
  return [make(SHIFTED, 30), make(STEADY[0], 0), make(STEADY[1], 0.05)];
}

/** A WebSocket handshake on /api/v1/stream with `headers`: the HTTP status answered. */
function upgradeStatus(headers) {
  return new Promise((resolve, reject) => {
    const request = http.request(new URL('/api/v1/stream', base), {
      headers: {
        Connection: 'Upgrade',
        Upgrade: 'websocket',
        'Sec-WebSocket-Version': '13',
        'Sec-WebSocket-Key': randomBytes(16).toString('base64'),
        ...headers,
      },
    });
    request.on('upgrade', (response, socket) => {
      socket.destroy();
      resolve(response.statusCode);
    });
    request.on('response', (response) => {
      response.resume();
      resolve(response.statusCode);
    });
    request.on('error', reject);
    request.setTimeout(5000, () => request.destroy(new Error('no answer within 5 s')));
    request.end();
  });
}

/** RFC 4180 CSV: rows of fields. */
function parseCsv(text) {
  const rows = [];
  let row = [];
  let cell = '';
  let quoted = false;
  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    if (quoted) {
      if (c === '"' && text[i + 1] === '"') (cell += '"'), i++;
      else if (c === '"') quoted = false;
      else cell += c;
    } else if (c === '"') quoted = true;
    else if (c === ',') row.push(cell), (cell = '');
    else if (c === '\n' || c === '\r') {
      if (c === '\r' && text[i + 1] === '\n') i++;
      row.push(cell), rows.push(row), (row = []), (cell = '');
    } else cell += c;
  }
  if (cell || row.length) row.push(cell), rows.push(row);
  return rows;
}

// The level shift is stored before any page opens: ten minutes ago, on the minute (the compare
// form takes minutes).
const shiftAt = Math.floor(Date.now() / 60_000) * 60_000 - 600_000;
await remoteWrite(base, admin, levelShift(alpha, shiftAt));

const { context, close } = await openBrowser();
const page = context.pages()[0] || (await context.newPage());
watch(page, 'operator');

await step('logging in with /?token= leaves the token out of the address bar', async () => {
  await page.goto(`${base}/?token=${encodeURIComponent(operator)}`);
  if (page.url().includes(operator)) throw new Error(`the address bar still holds the token: ${page.url()}`);
  const cookies = await context.cookies(base);
  if (!cookies.some((c) => c.name === 'hcmon_token')) throw new Error(`no hcmon_token cookie: ${JSON.stringify(cookies.map((c) => c.name))}`);
  await page.waitForSelector('body[data-role=operator]', { timeout: 10_000 }).catch(async () => {
    throw new Error(`body data-role is ${await page.getAttribute('body', 'data-role')}, not operator`);
  });
  return page.url();
});

await step(`the fleet page lists ${alpha} and ${beta}`, async () => {
  await page.goto(route('fleet'));
  const states = [];
  for (const node of [alpha, beta]) {
    const card = await page
      .waitForSelector(`[data-testid=fleet-node][data-node="${node}"]`, { timeout: 20_000 })
      .catch(async () => {
        const listed = await page.$$eval('[data-testid=fleet-node]', (els) => els.map((e) => e.dataset.node));
        throw new Error(`no fleet-node card for ${node}; cards: ${JSON.stringify(listed)}`);
      });
    states.push(`${node} ${await card.getAttribute('data-state')}`);
  }
  await screenshot(page, 'fleet');
  return states.join(', ');
});

await step(`${alpha}'s node page draws its CPU chart`, async () => {
  await page.goto(route(`node/${alpha}`));
  const n = await chartPoints(page, 'cpu');
  await screenshot(page, 'node');
  return `${n} points`;
});

await step('a new sample appears on the open page within 2 s, without reloading', async () => {
  await page.goto(route(`node/${alpha}`));
  await chartPoints(page, 'cpu');
  await page.waitForSelector('body[data-live=open]', { timeout: 10_000 }).catch(() => {
    throw new Error('body[data-live=open] never appeared: the page has no open WebSocket');
  });
  await page.evaluate(() => (window.__hcmonSamePage = true));
  // The agent's next batch: its arrival at the collector is when the API first answers with it.
  const before = await points(page, 'cpu');
  const stored = await newestCpuSample(alpha);
  await until(`a new CPU sample of ${alpha} stored after ${new Date(stored).toISOString()}`, 25_000, async () => (await newestCpuSample(alpha)) > stored, 50);
  const arrived = performance.now();
  await page
    .waitForFunction(({ n }) => Number(document.querySelector('[data-chart=cpu]').dataset.points) > n, { n: before }, { timeout: 2000, polling: 20 })
    .catch(async () => {
      throw new Error(`data-points stayed ${await points(page, 'cpu')} (was ${before}) for 2 s after the collector stored a new sample`);
    });
  const latency = Math.round(performance.now() - arrived);
  if (!(await page.evaluate(() => window.__hcmonSamePage))) throw new Error('the page reloaded');
  return `${before} → ${await points(page, 'cpu')} points, ${latency} ms after the collector had the sample`;
});

await step('acknowledging an alert on the Alerts page acknowledges it in the API', async () => {
  await page.goto(route('alerts'));
  const row = await page.waitForSelector('[data-testid=alert][data-state=firing]', { timeout: 30_000 }).catch(async () => {
    const rows = await page.$$eval('[data-testid=alert]', (els) => els.map((e) => `${e.dataset.alertId}:${e.dataset.state}`));
    throw new Error(`no firing alert row on the Alerts page; rows: ${JSON.stringify(rows)}`);
  });
  const id = await row.getAttribute('data-alert-id');
  await screenshot(page, 'alerts');
  const ack = await row.$('[data-testid=ack]');
  if (!ack) throw new Error(`alert ${id} has no [data-testid=ack] button for an operator`);
  await ack.click();
  const alert = await until(`alert ${id} acknowledged in GET /api/v1/alerts`, 10_000, async () => {
    const { alerts } = await api(base, admin, '/api/v1/alerts');
    const found = alerts.find((a) => a.id === id);
    return found?.hcmonState === 'acknowledged' && found;
  });
  await page.waitForSelector(`[data-testid=alert][data-alert-id="${id}"][data-state=acknowledged]`, { timeout: 5000 }).catch(() => {
    throw new Error(`the API says ${id} is acknowledged but its row still says data-state=firing`);
  });
  return `${alert.labels.alertname} ${id} acknowledged by ${alert.acknowledged?.by}`;
});

await step("the CPU chart's CSV export downloads and holds the stored samples", async () => {
  await page.goto(route(`node/${alpha}`));
  await chartPoints(page, 'cpu');
  const chart = page.locator('[data-testid=chart][data-chart=cpu]');
  await chart.locator('[data-testid=export]').click();
  const link = chart.locator('a[data-format=csv]');
  await link.waitFor({ timeout: 5000 });
  const href = await link.getAttribute('href');
  const [download] = await Promise.all([page.waitForEvent('download', { timeout: 10_000 }), link.click()]);
  const file = join(shots, download.suggestedFilename());
  await download.saveAs(file);
  const rows = parseCsv(readFileSync(file, 'utf8')).filter((r) => r.some((c) => c !== ''));
  const [header, ...data] = rows;
  if (!header || data.length === 0) throw new Error(`${file}: no data rows (header ${JSON.stringify(header)})`);
  if (!data.every((r) => r.length === header.length)) throw new Error(`${file}: rows of different widths than the header ${JSON.stringify(header)}`);
  // The same selection from the API as JSON lines: one row per sample (long layout) or per
  // timestamp (wide layout).
  const url = new URL(href, base);
  url.searchParams.set('format', 'jsonl');
  const response = await fetch(url, { headers: { Authorization: `Bearer ${admin}` } });
  if (!response.ok) throw new Error(`GET ${url}: ${response.status}`);
  const series = (await response.text()).split('\n').filter(Boolean).map((line) => JSON.parse(line));
  const samples = series.reduce((n, s) => n + s.timestamps.length, 0);
  const stamps = new Set(series.flatMap((s) => s.timestamps)).size;
  const wide = header.length === series.length + 1;
  const expected = wide ? stamps : samples;
  if (data.length !== expected) {
    throw new Error(`${file}: ${data.length} data rows, the export API has ${samples} samples of ${series.length} series at ${stamps} timestamps (${href})`);
  }
  // Long layout: the same (time, value) pairs as the API's samples.
  const [time, value] = ['timestamp', 'value'].map((name) => header.indexOf(name));
  if (!wide && time >= 0 && value >= 0) {
    const ms = (t) => (/^\d+(\.\d+)?$/.test(t) ? Number(t) * (Number(t) < 1e11 ? 1000 : 1) : Date.parse(t));
    const csv = data.map((r) => `${ms(r[time])} ${Number(r[value])}`).sort();
    const stored = series.flatMap((s) => s.timestamps.map((t, i) => `${t} ${Number(s.values[i])}`)).sort();
    const differ = csv.findIndex((pair, i) => pair !== stored[i]);
    if (differ >= 0) throw new Error(`${file}: (time value) ${csv[differ]} where the API has ${stored[differ]}`);
  }
  return `${data.length} rows of ${series.length} series match the API, header ${JSON.stringify(header)}`;
});

await step('a comparison across the injected level shift ranks that series first', async () => {
  await page.goto(route('compare'));
  const local = (ms) => new Date(ms).toISOString().slice(0, 16);
  const node = page.locator('[data-testid=compare-node]');
  await node.waitFor({ timeout: 10_000 });
  if ((await node.evaluate((el) => el.tagName)) === 'SELECT') await node.selectOption(alpha);
  else await node.fill(alpha);
  await page.fill('[data-testid=compare-before-start]', local(shiftAt - 540_000));
  await page.fill('[data-testid=compare-before-end]', local(shiftAt));
  await page.fill('[data-testid=compare-after-start]', local(shiftAt));
  await page.fill('[data-testid=compare-after-end]', local(shiftAt + 540_000));
  await page.click('[data-testid=compare-run]');
  await page.waitForSelector('[data-testid=compare-row]', { timeout: 20_000 });
  const ranked = await page.$$eval('[data-testid=compare-row]', (els) => els.map((e) => e.dataset.metric));
  await screenshot(page, 'compare');
  if (!ranked[0]?.startsWith(SHIFTED)) throw new Error(`the first row is ${ranked[0]}, not ${SHIFTED}; ranking: ${JSON.stringify(ranked.slice(0, 5))}`);
  return `${ranked.length} series ranked, first ${ranked[0]}`;
});

await step(`the quality page scores ${alpha} and ${beta} in five dimensions`, async () => {
  await page.goto(route('quality'));
  const found = [];
  for (const node of [alpha, beta]) {
    const card = await page
      .waitForSelector(`[data-testid=quality-node][data-node="${node}"]`, { timeout: 20_000 })
      .catch(async () => {
        const listed = await page.$$eval('[data-testid=quality-node]', (els) => els.map((e) => e.dataset.node));
        throw new Error(`no quality card for ${node}; cards: ${JSON.stringify(listed)}`);
      });
    const scores = await card.$$eval('[data-testid=quality-dimension] td:nth-of-type(1)', (tds) => tds.map((td) => td.textContent.trim()));
    if (scores.length !== 5 || scores.some((s) => Number.isNaN(Number(s)))) {
      throw new Error(`${node}'s card shows ${JSON.stringify(scores)}, not five scores`);
    }
    found.push(`${node} ${scores.join('/')}`);
  }
  await screenshot(page, 'quality');
  return found.join(', ');
});

await step('every page renders (screenshots at 1280×900, phone width and dark)', async () => {
  const pages = ['fleet', `node/${alpha}`, 'alerts', 'anomalies', 'quality', 'trends', 'explore?q=node_cpu_usage_ratio&range=1h', 'compare', 'experiments'];
  for (const hash of pages) {
    await page.goto(route(hash));
    await page.waitForSelector('body[data-live=open]', { timeout: 10_000 }).catch(() => {});
    await screenshot(page, `page-${hash.replace(/[^a-z0-9]+/gi, '-')}`);
  }
  await page.setViewportSize({ width: 375, height: 812 });
  for (const hash of ['fleet', `node/${alpha}`]) {
    await page.goto(route(hash));
    await screenshot(page, `phone-${hash.split('/')[0]}`);
  }
  await page.setViewportSize({ width: 1280, height: 900 });
  // The theme follows prefers-color-scheme when the page loads, then the toggle.
  await page.emulateMedia({ colorScheme: 'dark' });
  for (const hash of ['fleet', `node/${alpha}`]) {
    await page.goto(route(hash));
    await page.reload();
    await page.waitForSelector('html[data-theme=dark]', { timeout: 5000 }).catch(() => {
      throw new Error('with prefers-color-scheme: dark the page did not set html[data-theme=dark]');
    });
    await screenshot(page, `dark-${hash.split('/')[0]}`);
  }
  await page.click('[data-testid=theme]');
  await page.waitForSelector('html[data-theme=light]', { timeout: 2000 }).catch(() => {
    throw new Error('the theme toggle did not switch dark to light');
  });
  await page.emulateMedia({ colorScheme: 'light' });
  const login = await context.newPage();
  watch(login, 'login');
  await login.goto(`${base}/login`);
  await screenshot(login, 'login');
  await login.close();
  return `in ${shots}`;
});

await step('a viewer sees no acknowledge or silence button', async () => {
  await context.clearCookies();
  await page.goto(`${base}/?token=${encodeURIComponent(viewer)}`);
  await page.goto(route('alerts'));
  await page.waitForSelector('body[data-role=viewer]', { timeout: 10_000 }).catch(async () => {
    throw new Error(`body data-role is ${await page.getAttribute('body', 'data-role')}, not viewer`);
  });
  await page.waitForSelector('[data-testid=alert]', { timeout: 20_000 }).catch(() => {
    throw new Error('the viewer sees no alert rows');
  });
  const buttons = await page.$$eval('[data-testid=ack], [data-testid=silence]', (els) => els.map((e) => e.dataset.testid));
  await screenshot(page, 'alerts-viewer');
  if (buttons.length) throw new Error(`a viewer has buttons: ${JSON.stringify(buttons)}`);
  return `${await page.$$eval('[data-testid=alert]', (els) => els.length)} alerts, no buttons`;
});

await step('the WebSocket refuses a handshake without the cookie', async () => {
  const refused = await upgradeStatus({});
  if (refused === 101) throw new Error('a handshake without a token was accepted (101)');
  if (refused !== 401) throw new Error(`a handshake without a token was answered ${refused}, not 401`);
  const accepted = await upgradeStatus({ Cookie: `hcmon_token=${viewer}` });
  if (accepted !== 101) throw new Error(`a handshake with the viewer's cookie was answered ${accepted}, not 101`);
  return 'without: 401, with the cookie: 101';
});

await step('no console errors on any page', async () => {
  if (consoleErrors.length) throw new Error(consoleErrors.join('\n'));
});

await close();
console.log(`screenshots: ${shots}`);
if (failures.length) {
  console.log(`${failures.length} step(s) failed: ${failures.join('; ')}`);
  process.exit(1);
}
