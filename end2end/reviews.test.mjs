// An access review in the browser, on the demo company: the administrator
// names a role owner and starts a campaign; the owner keeps one support
// grant and revokes another; the administrator closes the campaign with
// "Close now" (an authenticator code), which revokes the undecided
// critical grant; the auditor downloads the evidence bundle, which
// `gatehouse audit verify` accepts, and rejects once the report is edited.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { startServer, launch, hydrated, freshCode, enrolDemoPerson } from './helpers.mjs';

let server, browser;

before(async () => {
  server = await startServer({ seed: true });
  browser = await launch();
});

after(async () => {
  await browser?.close();
  await server?.stop();
});

/** A server function called from the signed-in page (same origin, its session). */
async function call(page, endpoint, fields) {
  return page.evaluate(async ([endpoint, fields]) => {
    const r = await fetch(`/api/${endpoint}`, { method: 'POST', body: new URLSearchParams(fields) });
    return { status: r.status, text: await r.text() };
  }, [endpoint, fields]);
}

function verify(file) {
  const bin = process.env.GATEHOUSE_BIN || 'target/debug/gatehouse';
  const r = spawnSync(bin, ['audit', 'verify', file], { encoding: 'utf8', env: { ...process.env, RUST_LOG: 'error' } });
  return { ok: r.status === 0, out: r.stdout + r.stderr };
}

test('a role owner decides, Close now revokes the undecided critical grant, and the evidence verifies offline', async () => {
  const admin = await enrolDemoPerson(server, browser, 'admin');
  const owner = await enrolDemoPerson(server, browser, 'engineer');
  const auditor = await enrolDemoPerson(server, browser, 'auditor');
  const sales = server.people.find((p) => p.role === 'sales');
  const page = admin.page;
  await page.goto(`${server.base}/reviews/campaigns`);
  await hydrated(page);

  // Set-up through the server functions: a standing grant of a role that
  // carries customers' PII, held by the sales employee.
  const people = JSON.parse((await call(page, 'list_employees', [])).text);
  const id = (email) => people.find((p) => p.email === email).id;
  const ownerName = people.find((p) => p.email === owner.email).name;
  const auditorName = people.find((p) => p.email === auditor.email).name;
  let r = await call(page, 'save_role', [['key', 'billing-pii'], ['name', 'Billing with PII'], ['permissions[]', 'customers:read_pii']]);
  assert.equal(r.status, 200, r.text);
  r = await call(page, 'grant_role', [['user_id', String(id(sales.email))], ['role', 'billing-pii'], ['reason', 'chargebacks']]);
  assert.equal(r.status, 200, r.text);

  // The engineer owns the support role's reviews; the campaign covers it
  // and the critical role.
  // Chosen by name, not by number: the auditor is not offered as an owner.
  await page.reload();
  await hydrated(page);
  await page.locator('#owners-role').selectOption('support');
  const offered = page.locator('label', { has: page.locator('input[name="owners[]"]') });
  assert.equal(await offered.filter({ hasText: auditor.email }).count(), 0);
  await offered.filter({ hasText: owner.email }).locator('input').check();
  await page.getByRole('button', { name: 'Save owners' }).click();
  await page.getByText('Owners saved.').waitFor();
  const owners = page.locator('table[aria-label="Role owners"] tr[data-role="support"]');
  await page.waitForFunction((name) => document.querySelector('table[aria-label="Role owners"] tr[data-role="support"]')?.textContent.includes(name), ownerName);
  // Choosing the role again shows its owner ticked.
  await page.locator('#owners-role').selectOption('sales');
  assert.equal(await offered.filter({ hasText: owner.email }).locator('input').isChecked(), false);
  await page.locator('#owners-role').selectOption('support');
  assert.equal(await offered.filter({ hasText: owner.email }).locator('input').isChecked(), true);
  assert.match(await owners.textContent(), new RegExp(ownerName));
  await page.getByLabel('Name', { exact: true }).fill('Q4 support and PII review');
  await page.locator('#scope-kind').selectOption('roles');
  await page.locator('input[name="roles[]"][value="support"]').check();
  await page.locator('input[name="roles[]"][value="billing-pii"]').check();
  await page.getByLabel('Due in (days, 1 to 90)').fill('14');
  await page.getByLabel('Your authenticator code').fill(await freshCode(admin.key, admin.used));
  await page.getByRole('button', { name: 'Start campaign' }).click();
  const card = page.locator('section[data-campaign]').first();
  await card.waitFor();
  assert.match(await card.textContent(), /0 of 4 decided/);
  const campaign = await card.getAttribute('data-campaign');

  // The owner sees the three support grants, not the critical one.
  const op = owner.page;
  await op.goto(`${server.base}/reviews`);
  await hydrated(op);
  const items = op.locator('li[data-item]');
  await items.first().waitFor();
  assert.equal(await items.count(), 3);
  // Grouped by person, under their names.
  assert.equal(await op.locator('[data-holder]').count(), 3);
  const row = (name) => op.locator(`[data-holder="${name}"] li[data-item]`);
  assert.match(await op.locator('[data-holder="Leila Farahani"] h3').textContent(), /1 to review/);
  await row('Leila Farahani').getByRole('button', { name: 'Keep' }).click();
  await op.getByText('Decision recorded.').waitFor();
  await row('Jonas Becker').getByLabel(/^Comment on/).fill('moved to sales');
  await row('Jonas Becker').getByRole('button', { name: 'Revoke' }).click();
  await op.waitForFunction(() => !document.querySelector('main').textContent.includes('Jonas Becker'));
  assert.match(await row('Leila Farahani').textContent(), /Decided: keep/);

  // The administrator closes it now, with a code.
  await page.goto(`${server.base}/reviews/${campaign}`);
  await hydrated(page);
  assert.match(await page.locator('body').textContent(), /2 of 4 decided/);
  // Reassign Aisha Bello's item to the owner, chosen by name.
  // (Each row's list offers everyone but its holder.)
  const aisha = page.locator('tr[data-item]').filter({ has: page.locator('td:first-child', { hasText: 'Aisha Bello' }) });
  const to = page.getByLabel('Reassign Aisha Bello · support to');
  assert.equal(await to.locator('option', { hasText: 'Aisha Bello' }).count(), 0, 'never to the holder');
  assert.equal(await to.locator('option', { hasText: auditorName }).count(), 0, 'never to an auditor');
  assert.ok((await to.locator('option').count()) > 1);
  await to.selectOption({ label: ownerName });
  await aisha.getByRole('button', { name: 'Reassign' }).click();
  await page.getByText('Item reassigned.').waitFor();
  await page.waitForFunction((name) => [...document.querySelectorAll('tr[data-item]')].some((r) => r.querySelector('td').textContent.includes('Aisha Bello') && r.querySelectorAll('td')[2].textContent.startsWith(name)), ownerName);
  await page.getByLabel('Your authenticator code').fill(await freshCode(admin.key, admin.used));
  await page.getByRole('button', { name: 'Close now' }).click();
  await page.getByText('Download the evidence bundle').waitFor();
  const outcome = (name) => page.locator('tr[data-item]', { hasText: name }).locator('td').nth(4).textContent();
  assert.match(await outcome('Ryan'), /revoked/, 'undecided critical: revoked');
  assert.match(await outcome('Jonas Becker'), /revoked/);
  assert.match(await outcome('Leila Farahani'), /kept/);
  assert.match(await outcome('Aisha Bello'), /kept_flagged \(undecided\)/);

  // The auditor downloads the evidence bundle and checks it offline.
  const ap = auditor.page;
  await ap.goto(`${server.base}/reviews/${campaign}`);
  await hydrated(ap);
  const [download] = await Promise.all([
    ap.waitForEvent('download'),
    ap.getByRole('link', { name: 'Download the evidence bundle' }).click(),
  ]);
  const file = join(server.dir, 'evidence.jsonl');
  await download.saveAs(file);
  let v = verify(file);
  assert.ok(v.ok, v.out);
  assert.match(v.out, new RegExp(`OK: access review ${campaign}:`));
  const edited = readFileSync(file, 'utf8')
    .split('\n')
    .map((l) => (l.startsWith('{"type":"report"') ? l.replace('moved to sales', 'moved to sale') : l))
    .join('\n');
  writeFileSync(file, edited);
  v = verify(file);
  assert.ok(!v.ok, v.out);
  assert.match(v.out, /evidence REJECTED: the report does not match/);
  for (const p of [page, op, ap]) assert.deepEqual(p.problems, []);
});
