// Page weight and time to first chart of the dashboard, cold: each load starts Chromium on a
// fresh profile (empty cache), already logged in (the cookie is set, so the login redirect is
// not counted), and counts what the network delivered from navigation until the first chart
// draws points plus a second of settling: requests, bytes transferred (Chromium's
// encodedDataLength: headers and compressed bodies as they crossed the wire; WebSocket frames
// are not counted) and bytes decoded. Times run from navigation start: first card to the
// first node card or chart container, first chart to the first chart drawn with points (a
// node chart's `data-points` above 0, a fleet sparkline). Median (and range) over HCMON_LOADS
// loads (default 5) of the fleet page and HCMON_NODE's page (default alpha), once every node
// of HCMON_NODES has two minutes of CPU samples. `deploy/dev.sh bench-page` starts a
// collector with two agents and runs this; by hand:
//   HCMON_URL=http://127.0.0.1:9464 HCMON_TOKEN=… node tests/browser/page-weight.mjs

import { api, env, median, openBrowser, until } from './lib.mjs';

const base = env('HCMON_URL').replace(/\/$/, '');
const token = env('HCMON_TOKEN');
const node = process.env.HCMON_NODE || 'alpha';
const loads = Number(process.env.HCMON_LOADS || 5);
// HCMON_VERBOSE=1: each request of a page's first load, with its bytes transferred, and each
// load's time to first chart.
let verbose = false;

// Records when the first chart with points appears, on performance.now()'s clock (0 =
// navigation start): a chart whose data-points is above 0, or a fleet card's sparkline path.
function firstChartProbe() {
  const seen = () =>
    document.querySelector('svg.spark path') !== null ||
    [...document.querySelectorAll('[data-points]')].some((el) => Number(el.dataset.points) > 0);
  const content = () => document.querySelector('[data-testid=fleet-node], [data-testid=chart]') !== null;
  const observer = new MutationObserver(() => {
    if (window.__firstContentMs === undefined && content()) window.__firstContentMs = performance.now();
    if (window.__firstChartMs === undefined && seen()) {
      window.__firstChartMs = performance.now();
      observer.disconnect();
    }
  });
  observer.observe(document, { subtree: true, childList: true, attributes: true, attributeFilter: ['data-points'] });
}

async function load(hash) {
  const { context, close } = await openBrowser();
  try {
    await context.addCookies([{ name: 'hcmon_token', value: token, url: base }]);
    const page = context.pages()[0] || (await context.newPage());
    await page.addInitScript(firstChartProbe);
    const cdp = await context.newCDPSession(page);
    await cdp.send('Network.enable');
    await cdp.send('Network.setCacheDisabled', { cacheDisabled: false });
    const requests = new Map();
    let encoded = 0;
    let decoded = 0;
    cdp.on('Network.requestWillBeSent', (e) => requests.set(e.requestId, { url: e.request.url, encoded: 0 }));
    cdp.on('Network.dataReceived', (e) => (decoded += e.dataLength));
    cdp.on('Network.loadingFinished', (e) => {
      encoded += e.encodedDataLength;
      if (requests.has(e.requestId)) requests.get(e.requestId).encoded = e.encodedDataLength;
    });
    await page.goto(`${base}/#/${hash}`);
    const firstChart = await page
      .waitForFunction(() => window.__firstChartMs, null, { timeout: 20_000, polling: 20 })
      .then((handle) => handle.jsonValue())
      .catch(() => NaN);
    await page.waitForTimeout(1000);
    const [loaded, firstContent] = await page.evaluate(() => [
      performance.getEntriesByType('navigation')[0]?.loadEventEnd || NaN,
      window.__firstContentMs ?? NaN,
    ]);
    if (verbose) {
      console.log(`${hash}:`);
      for (const r of requests.values()) console.log(`  ${String(r.encoded).padStart(7)} B  ${r.url.replace(base, '').slice(0, 100)}`);
      verbose = false;
    }
    return { requests: requests.size, encoded, decoded, firstChart, firstContent, loaded };
  } finally {
    await close();
  }
}

// A collector just started has no history yet: wait for two minutes of CPU samples of each
// node, so the fleet's sparklines (a line over 60 s steps: two points at least) are drawn from
// what is stored rather than when the next live sample arrives.
for (const name of (process.env.HCMON_NODES || node).split(',')) {
  const query = encodeURIComponent(`count_over_time(node_cpu_usage_ratio{node="${name}"}[10m]) >= 13`);
  await until(`2 min of CPU samples of ${name}`, 240_000, async () => (await api(base, token, `/api/v1/query?query=${query}`)).result.length, 1000);
}

const rows = [];
for (const [name, hash] of [['fleet', 'fleet'], [`node ${node}`, `node/${node}`]]) {
  const runs = [];
  verbose = process.env.HCMON_VERBOSE === '1';
  for (let i = 0; i < loads; i++) runs.push(await load(hash));
  const pick = (key) => runs.map((r) => r[key]);
  const range = (key, scale = 1) => {
    const values = pick(key).filter(Number.isFinite).map((v) => v / scale);
    if (!values.length) return 'n/a';
    return `${median(values).toFixed(0)} (${Math.min(...values).toFixed(0)}–${Math.max(...values).toFixed(0)})`;
  };
  if (process.env.HCMON_VERBOSE === '1') console.log(`${name}: first chart ms of each load ${JSON.stringify(pick('firstChart').map(Math.round))}`);
  rows.push([name, range('requests'), range('encoded', 1024), range('decoded', 1024), range('loaded'), range('firstContent'), range('firstChart')]);
}

const header = ['page', 'requests', 'KiB transferred', 'KiB decoded', 'load event ms', 'first card ms', 'first chart ms'];
const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i].length)));
const line = (cells) => cells.map((c, i) => c.padEnd(widths[i])).join('  ');
console.log(`${loads} cold loads each, median (min–max), ${base}`);
console.log(line(header));
for (const row of rows) console.log(line(row));
