// Shared by the dashboard's browser test and its page-weight measurement: starting Debian's
// Chromium through playwright-core, the collector's API with a token, Prometheus remote write
// (protobuf + snappy, encoded here so the scripts need nothing but playwright-core), and
// waiting for conditions with messages that say what was awaited.

import { chromium } from 'playwright-core';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export const CHROMIUM = process.env.CHROMIUM || '/usr/bin/chromium';

// As root in this closed network Chromium needs no sandbox and none of its background traffic
// (without these flags it waits on connections that are refused): /work/shared/CRATES.md.
const ARGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];

/** A required environment variable. */
export function env(name) {
  const value = process.env[name];
  if (!value) throw new Error(`${name} is not set`);
  return value;
}

/**
 * Chromium with a fresh, empty profile (so a cold cache and no cookies): a persistent context,
 * as playwright names a browser started on a user data dir. `close()` also removes the profile.
 */
export async function openBrowser(options = {}) {
  const profile = mkdtempSync(join(tmpdir(), 'hcmon-chromium-'));
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM,
    headless: true,
    args: ARGS,
    viewport: { width: 1280, height: 900 },
    timezoneId: 'UTC',
    acceptDownloads: true,
    ...options,
  });
  const close = async () => {
    await context.close().catch(() => {});
    rmSync(profile, { recursive: true, force: true });
  };
  return { context, close };
}

/** `fetch` of the collector's API with a bearer token; the parsed JSON's `data`. */
export async function api(base, token, path, init = {}) {
  const response = await fetch(new URL(path, base), {
    ...init,
    headers: { Authorization: `Bearer ${token}`, ...(init.headers || {}) },
  });
  const text = await response.text();
  if (!response.ok) throw new Error(`${init.method || 'GET'} ${path}: ${response.status}: ${text}`);
  return JSON.parse(text).data;
}

/** Polls `check` (async, returning a truthy value when done) every `every` ms; its value. */
export async function until(what, timeoutMs, check, every = 100) {
  const deadline = Date.now() + timeoutMs;
  let last;
  for (;;) {
    try {
      const value = await check();
      if (value) return value;
    } catch (error) {
      last = error;
    }
    if (Date.now() > deadline) {
      throw new Error(`${what}: not within ${timeoutMs} ms${last ? ` (last error: ${last.message})` : ''}`);
    }
    await new Promise((resolve) => setTimeout(resolve, every));
  }
}

// Protobuf, just what remote write 1.0 uses: varints, length-delimited fields, doubles.
function varint(n) {
  const out = [];
  let v = BigInt(n);
  while (v >= 0x80n) {
    out.push(Number((v & 0x7fn) | 0x80n));
    v >>= 7n;
  }
  out.push(Number(v));
  return Buffer.from(out);
}

function field(number, bytes) {
  return Buffer.concat([varint((number << 3) | 2), varint(bytes.length), bytes]);
}

function sample(value, timestampMs) {
  const double = Buffer.alloc(8);
  double.writeDoubleLE(value);
  return Buffer.concat([varint((1 << 3) | 1), double, varint(2 << 3), varint(timestampMs)]);
}

/** A remote-write `WriteRequest` of `series` ([{labels: {__name__, ...}, samples: [[ms, v]]}]). */
export function encodeWriteRequest(series) {
  return Buffer.concat(
    series.map(({ labels, samples }) => {
      const parts = Object.keys(labels)
        .sort()
        .map((name) =>
          field(1, Buffer.concat([field(1, Buffer.from(name)), field(2, Buffer.from(labels[name]))])),
        );
      for (const [ms, v] of samples) parts.push(field(2, sample(v, ms)));
      return field(1, Buffer.concat(parts));
    }),
  );
}

/** Snappy's block format with literals only: valid, uncompressed, and enough for a test. */
export function snappyLiteral(bytes) {
  const out = [varint(bytes.length)];
  for (let at = 0; at < bytes.length; at += 65536) {
    const chunk = bytes.subarray(at, at + 65536);
    const tag = Buffer.from([61 << 2, (chunk.length - 1) & 0xff, (chunk.length - 1) >> 8]);
    out.push(tag, chunk);
  }
  return Buffer.concat(out);
}

/** Stores `series` in the collector through `POST /api/v1/write` (a token with write scope). */
export async function remoteWrite(base, token, series) {
  const response = await fetch(new URL('/api/v1/write', base), {
    method: 'POST',
    headers: {
      Authorization: `Bearer ${token}`,
      'Content-Encoding': 'snappy',
      'Content-Type': 'application/x-protobuf',
      'X-Prometheus-Remote-Write-Version': '0.1.0',
    },
    body: snappyLiteral(encodeWriteRequest(series)),
  });
  if (!response.ok) throw new Error(`remote write: ${response.status}: ${await response.text()}`);
}

export function median(values) {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
}
