// An administrator onboards a support employee who completes the
// invitation; grants and revokes a time-boxed role; then offboards the
// employee, whose open browser session is refused on its next request.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { spawnSync } from 'node:child_process';
import { dirname, join } from 'node:path';
import { createHash, createPublicKey, verify } from 'node:crypto';
import { startServer, launch, newPage, hydrated, freshCode, createFirstAdmin, enrolTotp } from './helpers.mjs';

const ADMIN = 'maya.okafor@sunridge-solar.example';
const ADMIN_PW = 'violet harbour lantern 42';
const EMP = 'jonas.becker@sunridge-solar.example';
const EMP_PW = 'quiet meadow lantern 7';
let server, browser;
// The trail is also streamed to a JSON-lines file, a SIEM sink.
const siemFile = join(mkdtempSync(join(tmpdir(), 'gatehouse-siem-')), 'audit.jsonl');
const admin = { key: null, used: new Set(), page: null };
const emp = { key: null, used: new Set(), page: null, link: null, id: null };

before(async () => {
  server = await startServer({ env: { GATEHOUSE_SIEM_SINKS: `archive=file://${siemFile}` } });
  browser = await launch();
});

after(async () => {
  await browser?.close();
  await server?.stop();
});

/** Enrols TOTP on the enrolment page with otplib; returns the key. */
const enrol = (page, who) => enrolTotp(page, server, who.used);

test('the administrator onboards an employee who completes the invitation', async () => {
  const page = await newPage(browser);
  admin.page = page;
  await createFirstAdmin(page, server, { name: 'Maya Okafor', email: ADMIN, password: ADMIN_PW });
  admin.key = await enrol(page, admin);

  await page.goto(`${server.base}/employees/new`);
  await hydrated(page);
  await page.getByLabel('Full name').fill('Jonas Becker');
  await page.getByLabel('Work email').fill(EMP);
  await page.getByLabel('Department').selectOption('support');
  await page.locator('#role-support').check();
  await page.getByRole('button', { name: 'Create employee and invitation' }).click();
  const link = page.locator('#invitation-link');
  await link.waitFor();
  emp.link = await link.inputValue();
  assert.match(emp.link, /\/invite\?token=[A-Za-z0-9_-]{20,}$/);
  const href = await page.getByRole('link', { name: "Open the employee's page" }).getAttribute('href');
  emp.id = href.split('/').pop();

  // The employee, in a browser of their own.
  const ep = await newPage(browser);
  emp.page = ep;
  await ep.goto(emp.link);
  await hydrated(ep);
  await ep.getByText('Welcome, Jonas Becker').waitFor();
  await ep.getByLabel('Password', { exact: true }).fill(EMP_PW);
  await ep.getByLabel('Repeat the password').fill(EMP_PW);
  await ep.getByRole('button', { name: 'Set password' }).click();
  emp.key = await enrol(ep, emp);
  await ep.goto(`${server.base}/`);
  await hydrated(ep);
  assert.deepEqual(await ep.locator('#my-roles li').allTextContents(), ['Customer support']);
  // The link works once.
  const again = await newPage(browser);
  await again.goto(emp.link);
  await again.getByText('This invitation link is not valid').waitFor();
  await again.context().close();
  // A support employee cannot open administration pages: the server refuses.
  const res = await ep.goto(`${server.base}/admin`);
  assert.equal(res.status(), 403);
});

test('the administrator grants and revokes a time-boxed role', async () => {
  const page = admin.page;
  await page.goto(`${server.base}/employees/${emp.id}`);
  await hydrated(page);
  await page.locator('#employee-name').getByText('Jonas Becker').waitFor();
  await page.locator('#role').selectOption('support-pii');
  await page.locator('#expires_in').fill('2h');
  await page.locator('#grant-reason').fill('case 4711: refund to the wrong address');
  await page.getByRole('button', { name: 'Grant role' }).click();
  const row = page.locator('tr[data-role="support-pii"][data-state="active"]');
  await row.waitFor();
  await page.locator('tr[data-permission="customers:read_pii"]').waitFor();

  const ep = emp.page;
  await ep.goto(`${server.base}/access`);
  await hydrated(ep);
  await ep.locator('tr[data-permission="customers:read_pii"]').waitFor();
  assert.match(await ep.locator('tr[data-permission="customers:read_pii"]').textContent(), /Support with customer PII \(grant \d+, until /);

  await row.locator('input[name="reason"]').fill('case closed');
  await row.locator('button.revoke').click();
  await page.locator('tr[data-role="support-pii"][data-state="revoked"]').waitFor();
  await ep.reload();
  await hydrated(ep);
  await ep.locator('tr[data-permission="customers:read"]').waitFor();
  assert.equal(await ep.locator('tr[data-permission="customers:read_pii"]').count(), 0);
});

test('the employee requests support-pii, the administrator approves with a code, then revokes', async () => {
  const ep = emp.page;
  await ep.goto(`${server.base}/requests`);
  await hydrated(ep);
  await ep.locator('#req-role').selectOption('support-pii');
  await ep.locator('#req-duration').fill('2h');
  await ep.locator('#req-ticket').fill('SUP-1234');
  await ep.locator('#req-why').fill('customer 1042 asks to correct the delivery address');
  await ep.getByRole('button', { name: 'Send request' }).click();
  await ep.locator('#my-requests li[data-state="pending"]').waitFor();

  const page = admin.page;
  await page.goto(`${server.base}/requests`);
  await hydrated(page);
  const item = page.locator('#queue li[data-state="pending"]');
  await item.waitFor();
  assert.match(await item.textContent(), /Jonas Becker asks for Support with customer PII for 2 hours/);
  await item.locator('input[name="code"]').fill(await freshCode(admin.key, admin.used));
  await item.locator('button.approve').click();
  await page.locator('#queue li[data-state="approved"]').waitFor();

  await ep.reload();
  await hydrated(ep);
  const active = ep.locator('#my-requests li[data-state="approved"]');
  await active.waitFor();
  // The countdown runs in the browser.
  const first = await active.locator('.countdown').textContent();
  assert.match(first, /^1:5\d:\d\d left$/);
  await ep.waitForFunction((t) => document.querySelector('#my-requests .countdown').textContent !== t, first, { timeout: 5000 });
  await ep.goto(`${server.base}/access`);
  await hydrated(ep);
  await ep.locator('tr[data-permission="customers:read_pii"]').waitFor();

  const live = page.locator('#queue li[data-state="approved"]');
  await live.locator('input[name="reason"]').fill('ticket closed');
  await live.getByRole('button', { name: 'Revoke now' }).click();
  await page.locator('#queue-empty').waitFor();
  await ep.reload();
  await hydrated(ep);
  await ep.locator('tr[data-permission="customers:read"]').waitFor();
  assert.equal(await ep.locator('tr[data-permission="customers:read_pii"]').count(), 0);
  for (const p of [page, ep]) {
    assert.deepEqual(p.problems.filter((m) => /hydration|panicked/i.test(m)), []);
  }
});

test('offboarding ends the employee\'s open session at once', async () => {
  const page = admin.page;
  await page.goto(`${server.base}/employees/${emp.id}`);
  await hydrated(page);
  await page.locator('#confirm_email').fill(EMP);
  await page.locator('#offboard-code').fill(await freshCode(admin.key, admin.used));
  await page.getByRole('button', { name: 'Offboard employee' }).click();
  await page.locator('#employee-status').getByText('offboarded').waitFor();
  assert.equal(await page.locator('tr[data-state="active"]').count(), 0);
  await page.locator('#no-sessions').waitFor();

  // The employee's browser, still open, is refused on its next request.
  const ep = emp.page;
  await ep.goto(`${server.base}/access`);
  await ep.waitForURL(`${server.base}/signin`);
  const me = await ep.evaluate(async () => (await fetch('/api/me', { method: 'POST' })).text());
  assert.equal(me, 'null');

  // The checklist outside Gatehouse.
  await page.locator('li[data-item="github"] button').click();
  await page.locator('li[data-item="github"] .checklist-done').waitFor();
  assert.match(await page.locator('li[data-item="github"]').textContent(), /Done by Maya Okafor/);
  await page.goto(`${server.base}/offboarding`);
  await hydrated(page);
  assert.match(await page.locator(`tr[data-email="${EMP}"]`).textContent(), /1 of 6 done/);
  assert.deepEqual(page.problems.filter((p) => /Content Security Policy|Refused|panicked/.test(p)), []);
});

test('a service account token answers access checks for the backend', async () => {
  const page = admin.page;
  await page.goto(`${server.base}/service-accounts`);
  await hydrated(page);
  await page.getByLabel('Name').fill('customer-api');
  await page.locator('#scope-check').check();
  await page.getByRole('button', { name: 'Create service account' }).click();
  const section = page.locator('section[data-account="customer-api"]');
  await section.waitFor();
  await section.getByLabel('Token label').fill('production cluster');
  // Step-up: asked when the last code is more than 5 minutes old.
  await section.getByLabel('Your authenticator code').fill(await freshCode(admin.key, admin.used));
  await section.getByRole('button', { name: 'Create token' }).click();
  const token = await page.locator('#new-token').inputValue();
  assert.match(token, /^ghs_\d+_[A-Za-z0-9_-]{43}$/);

  const ask = async (employee, permission) => {
    const res = await fetch(`${server.base}/api/v1/access-checks`, {
      method: 'POST',
      headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
      body: JSON.stringify({ employee, permission, resource: { type: 'customer', id: 'C-1042' }, customer_id: 'C-1042', purpose: 'SUP-77' }),
    });
    assert.equal(res.status, 200);
    return res.json();
  };
  // The administrator manages employees; the offboarded employee gets nothing.
  assert.equal((await ask(ADMIN, 'employees:manage')).decision, 'allow');
  // A denied check for customer PII (raises an alert, acknowledged below).
  assert.equal((await ask(ADMIN, 'customers:read_pii')).decision, 'deny');
  const d = await ask(EMP, 'customers:read');
  assert.equal(d.decision, 'deny');
  assert.equal(d.reason, 'employee is offboarded');
  assert.ok(d.audit_seq > 0);

  // Revoked in the browser, the token stops working at once.
  await page.reload();
  await hydrated(page);
  await section.getByRole('button', { name: 'Revoke' }).click();
  await section.locator('li').getByText('revoked').waitFor();
  const res = await fetch(`${server.base}/api/v1/access-checks`, {
    method: 'POST',
    headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
    body: JSON.stringify({ employee: ADMIN, permission: 'employees:manage', resource: { type: 'employee', id: '1' } }),
  });
  assert.equal(res.status, 401);
});

test('an auditor filters the trail by customer, opens an event and verifies the chain', async () => {
  const page = admin.page;
  await page.goto(`${server.base}/employees/new`);
  await hydrated(page);
  await page.getByLabel('Full name').fill('Daniel Brandt');
  await page.getByLabel('Work email').fill('daniel.brandt@sunridge-solar.example');
  await page.getByLabel('Department').selectOption('audit');
  await page.locator('#role-auditor').check();
  await page.getByRole('button', { name: 'Create employee and invitation' }).click();
  const link = await page.locator('#invitation-link').inputValue();
  // The administrator cannot open the audit trail.
  assert.equal((await page.goto(`${server.base}/audit`)).status(), 403);

  const ap = await newPage(browser);
  await ap.goto(link);
  await hydrated(ap);
  await ap.getByLabel('Password', { exact: true }).fill('amber quarry signal 19');
  await ap.getByLabel('Repeat the password').fill('amber quarry signal 19');
  await ap.getByRole('button', { name: 'Set password' }).click();
  await enrol(ap, { used: new Set() });
  await ap.goto(`${server.base}/audit`);
  await hydrated(ap);
  await ap.getByLabel('Customer id').fill('C-1042');
  await ap.getByRole('button', { name: 'Filter' }).click();
  await ap.waitForURL(/customer=C-1042/);
  const items = ap.locator('#audit-events li');
  await items.first().waitFor();
  const actions = await items.evaluateAll((els) => els.map((e) => e.dataset.action));
  assert.ok(actions.length >= 2 && actions.every((a) => a === 'access.check'), actions.join(','));
  await items.first().locator('summary').click();
  assert.match(await items.first().locator('.event-hash').textContent(), /^[0-9a-f]{64}$/);
  assert.match(await items.first().textContent(), /svc:customer-api/);
  const [download] = await Promise.all([ap.waitForEvent('download'), ap.locator('#export-csv').click()]);
  const csv = readFileSync(await download.path(), 'utf8');
  assert.match(csv, /^seq,time_utc,actor,action,outcome,customer_id,target,reason,details,hash\r\n/);
  assert.ok(csv.split('\r\n').filter((l) => l.includes(',access.check,')).length >= 2, csv.slice(0, 500));
  // Sign a checkpoint, then check an event's inclusion proof and the
  // checkpoint's signature here, with Node's own SHA-256 and Ed25519.
  await ap.getByRole('button', { name: 'Sign a checkpoint now' }).click();
  await ap.locator('#latest-checkpoint[data-number]').waitFor();
  // Each recent checkpoint with its witnesses: none here.
  const newest = await ap.locator('#latest-checkpoint').getAttribute('data-number');
  await ap.locator(`#recent-checkpoints tbody tr[data-number="${newest}"]`).waitFor();
  assert.match(await ap.locator('#recent-checkpoints tbody tr').first().textContent(), /no witness/);
  assert.match(await ap.locator('#checkpoint-witnesses').textContent(), /Co-signed by no witness yet/);
  // A witness on "another machine" (its own state directory, only the URL
  // and a token) checks and co-signs; the console names it.
  const cli = (args) => {
    const r = spawnSync(process.env.GATEHOUSE_BIN || 'target/debug/gatehouse', args, {
      encoding: 'utf8',
      env: { ...process.env, GATEHOUSE_DATA_DIR: server.dir, GATEHOUSE_DATABASE_URL: `sqlite://${server.dir}/gatehouse.db`, RUST_LOG: 'info' },
    });
    return { code: r.status, stdout: r.stdout, out: r.stdout + r.stderr };
  };
  const minted = cli(['service-token', 'ledger-witness', 'audit:witness']);
  assert.equal(minted.code, 0, minted.out);
  const witnessArgs = ['witness', '--url', server.base, '--state', join(server.dir, 'witness'), '--token', minted.stdout.trim(), '--once'];
  const first = cli(witnessArgs);
  assert.equal(first.code, 1, first.out);
  const publicKey = first.out.match(/witness public key: ([0-9a-f]{64})/)[1];
  const added = cli(['audit', 'witness-add', 'ledger', publicKey, 'ledger-witness']);
  assert.equal(added.code, 0, added.out);
  const cosigned = cli(witnessArgs);
  assert.equal(cosigned.code, 0, cosigned.out);
  await ap.reload();
  await hydrated(ap);
  // (The latest checkpoint may be newer by now: the row of the one signed
  // above is checked.)
  const row = ap.locator(`#recent-checkpoints tbody tr[data-number="${newest}"]`);
  await row.waitFor();
  assert.match(await row.textContent(), /ledger/);
  assert.doesNotMatch(await row.textContent(), /no witness/);
  const seq = Number(await items.first().getAttribute('data-seq'));
  const { proof, keys } = await ap.evaluate(async (s) => ({
    proof: await (await fetch(`/api/v1/audit/proofs/${s}`)).json(),
    keys: await (await fetch('/api/v1/audit/public-key')).json(),
  }), seq);
  const sha = (...parts) => createHash('sha256').update(Buffer.concat(parts)).digest();
  let r = sha(Buffer.from([0]), Buffer.from(proof.event_hash, 'hex'));
  let [fn, sn] = [seq - 1, proof.tree_size - 1];
  for (const step of proof.audit_path.map((h) => Buffer.from(h, 'hex'))) {
    if (fn % 2 === 1 || fn === sn) {
      r = sha(Buffer.from([1]), step, r);
      while (fn % 2 === 0 && fn !== 0) { fn >>= 1; sn >>= 1; }
    } else {
      r = sha(Buffer.from([1]), r, step);
    }
    fn >>= 1; sn >>= 1;
  }
  assert.equal(sn, 0);
  assert.equal(r.toString('hex'), proof.checkpoint.root, 'the proof leads to the signed root');
  const raw = Buffer.from(keys.keys.find((k) => k.key_id === proof.checkpoint.key_id).public_key, 'hex');
  const key = createPublicKey({ key: Buffer.concat([Buffer.from('302a300506032b6570032100', 'hex'), raw]), format: 'der', type: 'spki' });
  const message = Buffer.from(proof.checkpoint.signed_message);
  assert.ok(verify(null, message, key, Buffer.from(proof.checkpoint.signature, 'hex')), 'Ed25519 signature');
  assert.ok(!verify(null, Buffer.from(proof.checkpoint.signed_message.replace(/tree_size \d+/, 'tree_size 1')), key, Buffer.from(proof.checkpoint.signature, 'hex')));
  await ap.getByRole('button', { name: 'Verify the chain now' }).click();
  await ap.locator('#verify-result').getByText('The chain is intact').waitFor();
  assert.match(await ap.locator('#verify-result').textContent(), /[1-9]\d* signed checkpoints match/);

  // A signed bundle of the trail: the command line accepts it offline and
  // rejects a copy with one event changed.
  const [bundle] = await Promise.all([ap.waitForEvent('download'), ap.locator('#export-bundle').click()]);
  const bundlePath = await bundle.path();
  const bin = process.env.GATEHOUSE_BIN || 'target/debug/gatehouse';
  const run = (file) => spawnSync(bin, ['audit', 'verify', file, '--public-key', raw.toString('hex')], { encoding: 'utf8' });
  const good = run(bundlePath);
  assert.equal(good.status, 0, good.stdout + good.stderr);
  assert.match(good.stdout, /^OK: events 1 to \d+ \(\d+ events\) verified/);
  const lines = readFileSync(bundlePath, 'utf8').split('\n');
  const i = lines.findIndex((l) => l.includes('"customer_id":"C-1042"'));
  assert.ok(i > 0);
  const seqEdited = JSON.parse(lines[i]).seq;
  lines[i] = lines[i].replace('"customer_id":"C-1042"', '"customer_id":"C-1043"');
  const edited = join(dirname(bundlePath), 'edited.jsonl');
  writeFileSync(edited, lines.join('\n'));
  const bad = run(edited);
  assert.equal(bad.status, 1);
  assert.match(bad.stderr, new RegExp(`bundle REJECTED: event ${seqEdited}: content does not match its hash`));

  // The denied PII check raised an alert; the auditor acknowledges it.
  let alert = ap.locator('#open-alerts li[data-rule="pii_denied"]');
  for (let i = 0; i < 10 && (await alert.count()) === 0; i++) {
    await ap.waitForTimeout(1000);
    await ap.reload();
    await hydrated(ap);
  }
  await alert.first().waitFor();
  await alert.first().locator('input[name="comment"]').fill('Asked the admin: a mistaken lookup, no data shown');
  await alert.first().getByRole('button', { name: 'Acknowledge' }).click();
  await ap.locator('#acknowledged-alerts li').first().waitFor({ state: 'attached' });
  assert.match(await ap.locator('#acknowledged-alerts').textContent(), /a mistaken lookup/);

  // The report of who accessed customer C-1042, reached from the trail.
  await ap.goto(`${server.base}/audit`);
  await hydrated(ap);
  await ap.locator('#reports-link').click();
  await ap.waitForURL(/\/audit\/reports/);
  await hydrated(ap);
  await ap.getByLabel('Report', { exact: true }).selectOption('customer');
  await ap.getByLabel('Customer id').fill('C-1042');
  await ap.getByRole('button', { name: 'Show report' }).click();
  await ap.waitForURL(/kind=customer/);
  const rows = ap.locator('#report tbody tr');
  await rows.first().waitFor();
  assert.ok((await rows.count()) >= 2);
  assert.match(await ap.locator('#report').textContent(), /customer-api/);
  assert.deepEqual(ap.problems.filter((p) => /Content Security Policy|Refused|panicked/.test(p)), []);
});

test('the administrator sees the SIEM sink caught up with the trail it received', async () => {
  const page = admin.page;
  const row = page.locator('#siem tr[data-sink="archive"]');
  let backlog = '';
  for (let i = 0; i < 20 && backlog !== '0'; i++) {
    if (i) await page.waitForTimeout(500);
    await page.goto(`${server.base}/admin`);
    await hydrated(page);
    await row.waitFor();
    backlog = (await row.locator('[data-field="backlog"]').textContent()).trim();
  }
  assert.equal(backlog, '0');
  assert.match(await row.textContent(), /archive\s*file/);
  assert.equal((await row.locator('[data-field="lag"]').textContent()).trim(), 'none');
  assert.equal((await row.locator('[data-field="error"]').textContent()).trim(), 'none');
  const delivered = Number(await row.locator('[data-field="delivered"]').textContent());
  // The file holds every event up to there, in order, as OCSF records
  // carrying the chain's sequence numbers and hashes.
  const records = readFileSync(siemFile, 'utf8').trim().split('\n').map((l) => JSON.parse(l));
  const seqs = records.map((r) => r.metadata.sequence);
  assert.deepEqual(seqs.slice(0, delivered), Array.from({ length: delivered }, (_, i) => i + 1));
  assert.ok(records.every((r) => [3001, 3002, 3004, 6003].includes(r.class_uid) && /^[0-9a-f]{64}$/.test(r.metadata.uid)));
  assert.ok(records.some((r) => r.class_uid === 3002 && r.unmapped.gatehouse.action === 'auth.signin'));
});
