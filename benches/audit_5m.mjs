// Issue 4's benchmarks on a database of 5 million audit events (SQLite):
// ingestion through the batch API, filtered console pages, access checks
// under load (wrk), full verification, and an export of 1 million events
// with the server's memory sampled. Run through benches/audit_5m.sh, which
// builds the release binary first. Figures go to docs/benchmarks.md by hand.
//
// Environment: GATEHOUSE_BIN (default target/release/gatehouse), EVENTS
// (default 5000000), EXPORT_EVENTS (default 1000000), KEEP_DIR=1 to keep
// the database afterwards.
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import otplib from 'otplib';

const { authenticator } = otplib;
const bin = process.env.GATEHOUSE_BIN || 'target/release/gatehouse';
const TOTAL = Number(process.env.EVENTS || 5_000_000);
const EXPORT_EVENTS = Number(process.env.EXPORT_EVENTS || 1_000_000);
const BATCH = 1000;
const CONCURRENCY = 2;
const CUSTOMERS = 20_000;
const port = 3990;
const base = `http://127.0.0.1:${port}`;
const dir = mkdtempSync(join(tmpdir(), 'gatehouse-5m-'));
const env = {
  ...process.env,
  GATEHOUSE_DATA_DIR: dir,
  GATEHOUSE_DATABASE_URL: `sqlite://${dir}/g.db`,
  GATEHOUSE_LISTEN: `127.0.0.1:${port}`,
  RUST_LOG: 'warn',
};
const log = (...a) => console.log(new Date().toISOString().slice(11, 19), ...a);

function cli(...args) {
  const r = spawnSync(bin, args, { env, encoding: 'utf8', maxBuffer: 64 << 20 });
  if (r.status !== 0) throw new Error(`gatehouse ${args.join(' ')}: ${r.stderr}`);
  return r.stdout;
}

const pct = (sorted, p) => sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))];
const rss = (pid) => Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))[1]) / 1024;

const people = [...cli('seed-demo').matchAll(/^(\S+@\S+)\s+(\S+)\s+(\S+)$/gm)].map((m) => ({ email: m[1], role: m[2], password: m[3] }));
const eventsToken = cli('service-token', 'event-feed', 'events:write').trim();
const checkToken = cli('service-token', 'customer-api', 'access:check').trim();
const server = spawn(bin, ['serve'], { env, stdio: ['ignore', 'ignore', 'inherit'] });
process.on('exit', () => { server.kill('SIGINT'); if (!process.env.KEEP_DIR) rmSync(dir, { recursive: true, force: true }); });
for (let i = 0; ; i++) {
  try { if ((await fetch(`${base}/healthz`)).ok) break; } catch {}
  if (i > 100) throw new Error('server did not start');
  await new Promise((r) => setTimeout(r, 100));
}
log(`server pid ${server.pid}, RSS ${rss(server.pid).toFixed(0)} MB, database ${dir}`);

// --- ingestion -------------------------------------------------------------
const employees = people.map((p) => p.email);
const ACTIONS = ['customer.view', 'order.update', 'account.update', 'customer.export'];
// Daytime (10:00 to 17:59 UTC, company time by default) on earlier days, so
// the after-hours rule does not turn every event into an alert.
function batchBody(n) {
  const day = 86_400_000;
  const today = Math.floor(Date.now() / day) * day;
  const events = [];
  for (let i = 0; i < BATCH; i++) {
    const at = today - (1 + (n % 30)) * day + 10 * 3_600_000 + Math.floor(Math.random() * 8 * 3_600_000);
    events.push({
      employee: employees[(n * BATCH + i) % employees.length],
      action: ACTIONS[i % ACTIONS.length],
      customer_id: `C-${String(Math.floor(Math.random() * CUSTOMERS)).padStart(5, '0')}`,
      fields: ['name', 'address'],
      record_types: ['customer'],
      purpose: `SUP-${1000 + (i % 500)}`,
      source_system: i % 2 ? 'support-desk' : 'customer-api',
      occurred_at: new Date(at).toISOString(),
    });
  }
  return JSON.stringify({ events });
}

let sent = 0;
let paused = 0;
let gate = null;
let marks = [];
const latencies = [];
const start = performance.now();
let exportFrom = null;
async function worker() {
  for (;;) {
    const n = sent++;
    if (n * BATCH >= TOTAL) return;
    if (n * BATCH === TOTAL - EXPORT_EVENTS) {
      // The export range is given to the minute: both senders pause until a
      // fresh minute, so the export holds about the last EXPORT_EVENTS. The
      // pause is left out of the ingestion rate.
      const wait = 60_000 - (Date.now() % 60_000) + 50;
      paused += wait;
      gate = new Promise((r) => setTimeout(r, wait));
      await gate;
      gate = null;
      exportFrom = new Date();
    }
    if (gate) await gate;
    const body = batchBody(n);
    const t0 = performance.now();
    const r = await fetch(`${base}/api/v1/audit-events`, { method: 'POST', headers: { authorization: `Bearer ${eventsToken}`, 'content-type': 'application/json' }, body });
    if (r.status !== 201) throw new Error(`batch ${n}: ${r.status} ${await r.text()}`);
    await r.arrayBuffer();
    latencies.push(performance.now() - t0);
    const done = (n + 1) * BATCH;
    if (done % 500_000 === 0) {
      marks.push({ done, s: (performance.now() - start) / 1000 });
      const m = marks.at(-1);
      const prev = marks.at(-2) || { done: 0, s: 0 };
      log(`${done.toLocaleString()} events, ${((m.done - prev.done) / (m.s - prev.s)).toFixed(0)}/s over the last 500,000, RSS ${rss(server.pid).toFixed(0)} MB`);
    }
  }
}
await Promise.all(Array.from({ length: CONCURRENCY }, worker));
const ingestS = (performance.now() - start - paused) / 1000;
latencies.sort((a, b) => a - b);
const lastMillion = marks.filter((m) => m.done >= TOTAL - 1_000_000);
const results = {
  events: TOTAL,
  ingest_s: ingestS,
  ingest_per_s: TOTAL / ingestS,
  last_million_per_s: lastMillion.length >= 2 ? (lastMillion.at(-1).done - lastMillion[0].done) / (lastMillion.at(-1).s - lastMillion[0].s) : null,
  batch_p50_ms: pct(latencies, 50),
  batch_p99_ms: pct(latencies, 99),
};
log('ingestion', results);
const exportTo = new Date(Date.now() + 60_000);

// Let the alert and checkpoint jobs catch up before measuring reads: wait
// until the server uses under 5% of a core over 2 seconds.
const cpu = (pid) => { const f = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' '); return (Number(f[11]) + Number(f[12])) / 100; };
const idleFrom = performance.now();
for (;;) {
  const c0 = cpu(server.pid);
  await new Promise((r) => setTimeout(r, 2000));
  if (cpu(server.pid) - c0 < 0.1) break;
}
results.jobs_catch_up_s = (performance.now() - idleFrom) / 1000;
log(`the server's jobs were done ${results.jobs_catch_up_s.toFixed(0)} s after the last batch`);

// --- an auditor signs in (password, then enrolment with otplib) --------------
const auditor = people.find((p) => p.role === 'auditor');
let cookie = '';
async function call(name, form = {}) {
  const r = await fetch(`${base}/api/${name}`, { method: 'POST', headers: { cookie, 'content-type': 'application/x-www-form-urlencoded' }, body: new URLSearchParams(form), redirect: 'manual' });
  const set = r.headers.get('set-cookie');
  if (set) cookie = set.split(';')[0];
  return r;
}
await call('sign_in', { email: auditor.email, password: auditor.password });
const key = (await (await call('enrolment')).json()).key.replace(/\s+/g, '');
const confirmed = await call('confirm_enrolment', { code: authenticator.generate(key) });
if (!confirmed.ok) throw new Error(`enrolment: ${confirmed.status} ${await confirmed.text()}`);
await call('take_recovery_codes');

// --- filtered console pages ------------------------------------------------------
async function pages(label, formFor, n = 200) {
  const times = [];
  for (let i = 0; i < n; i++) {
    const t0 = performance.now();
    const r = await call('audit_browse', formFor(i));
    const page = await r.json();
    if (!r.ok || !Array.isArray(page.events)) throw new Error(`${label}: ${r.status} ${JSON.stringify(page).slice(0, 200)}`);
    times.push(performance.now() - t0);
  }
  times.sort((a, b) => a - b);
  const out = { p50_ms: pct(times, 50), p95_ms: pct(times, 95), p99_ms: pct(times, 99) };
  log(label, out);
  return out;
}
results.page_by_customer = await pages('page of 50 by customer', (i) => ({ customer: `C-${String((i * 7919) % CUSTOMERS).padStart(5, '0')}` }));
results.page_by_employee = await pages('page of 50 by employee', (i) => ({ employee: employees[i % employees.length] }));
results.page_unfiltered = await pages('page of 50, no filter', () => ({}), 100);

// --- access checks under load (wrk) -------------------------------------------------
function wrk(label, body, connections) {
  const script = join(dir, 'check.lua');
  writeFileSync(script, `wrk.method = "POST"\nwrk.headers["Content-Type"] = "application/json"\nwrk.headers["Authorization"] = "Bearer ${checkToken}"\nwrk.body = '${JSON.stringify(body)}'\n`);
  const r = spawnSync('wrk', ['-t2', `-c${connections}`, '-d15s', '--latency', '-s', script, `${base}/api/v1/access-checks`], { encoding: 'utf8' });
  const rate = Number(/Requests\/sec:\s+([\d.]+)/.exec(r.stdout)?.[1]);
  const unit = (v, u) => Number(v) * ({ us: 0.001, ms: 1, s: 1000 }[u]);
  const p = (q) => { const m = new RegExp(`\\s${q}%\\s+([\\d.]+)(us|ms|s)`).exec(r.stdout); return m ? unit(m[1], m[2]) : null; };
  const out = { connections, per_s: rate, p50_ms: p(50), p99_ms: p(99) };
  log(`access checks, ${label}`, out);
  return out;
}
const support = people.find((p) => p.role === 'support').email;
results.checks_recorded = [2, 3, 4, 8].map((c) => wrk('customer named (recorded)', { employee: support, permission: 'customers:read', resource: { type: 'customer', id: 'C-00042' }, customer_id: 'C-00042', purpose: 'SUP-1' }, c));
results.checks_plain = wrk('no customer (not recorded)', { employee: support, permission: 'orders:write', resource: { type: 'order', id: 'O-1' } }, 4);

// --- export of the last EXPORT_EVENTS events, memory sampled ------------------------
const fmt = (d) => d.toISOString().slice(0, 16);
let peak = rss(server.pid);
const baseline = peak;
const sampler = setInterval(() => { peak = Math.max(peak, rss(server.pid)); }, 50);
const t0 = performance.now();
const r = await fetch(`${base}/audit/export.bundle?from=${fmt(exportFrom)}&to=${fmt(exportTo)}`, { headers: { cookie } });
if (!r.ok) throw new Error(`export: ${r.status} ${await r.text()}`);
const file = join(dir, 'export.bundle');
let bytes = 0;
const out = (await import('node:fs')).createWriteStream(file);
for await (const chunk of r.body) { bytes += chunk.length; if (!out.write(chunk)) await new Promise((res) => out.once('drain', res)); }
await new Promise((res) => out.end(res));
clearInterval(sampler);
results.export = { s: (performance.now() - t0) / 1000, mb: bytes / 1048576, server_rss_before_mb: baseline, server_rss_peak_mb: peak };
const exported = cli('audit', 'verify', file);
results.export.verify = exported.trim().split('\n')[0];
results.export.events = Number(/(\d[\d,]*) events/.exec(exported)?.[1]?.replace(/,/g, '') || 0);
log('export', results.export);

// --- full verification from the database ---------------------------------------------
const v0 = performance.now();
const verified = cli('audit', 'verify');
const vs = (performance.now() - v0) / 1000;
const vn = Number(/(\d[\d,]*) events/.exec(verified)?.[1]?.replace(/,/g, '') || 0);
const inProcessMs = Number(/\((\d+) ms\)/.exec(verified)?.[1]);
results.verify = { events: vn, s_with_process_start: vs, per_s: vn / (inProcessMs / 1000), output: verified.trim().split('\n')[0] };
log('verify', results.verify);
results.database_mb = statSync(join(dir, 'g.db')).size / 1048576;
results.server_rss_end_mb = rss(server.pid);
console.log(JSON.stringify(results, null, 2));
process.exit(0);
