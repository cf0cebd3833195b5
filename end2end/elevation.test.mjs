// Just-in-time elevation in the browser, on the demo company: a support
// employee asks for PII access to one customer, an administrator approves
// with an authenticator code, and the backend is answered for that customer
// only; an engineer breaks the glass, the auditor sees the alert and the
// ticket view, and the administrator records the post-incident review.
// Finally the support employee's five minutes run out and the backend is
// refused (the test waits for the real end instant).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startServer, launch, hydrated, freshCode, enrolDemoPerson } from './helpers.mjs';

let server, browser;
const WHY = 'customer 1042 asks to correct the delivery address';

before(async () => {
  server = await startServer({ seed: true });
  browser = await launch();
});

after(async () => {
  await browser?.close();
  await server?.stop();
});

/** Signs a demo person in for the first time, enrolling TOTP with otplib. */
function signIn(role) {
  return enrolDemoPerson(server, browser, role);
}

test('scoped PII access is approved with a code and answered for its customer only; break-glass alerts the auditor and is reviewed', async () => {
  assert.ok(server.people.length >= 18, 'the demo company');
  const admin = await signIn('admin');
  const support = await signIn('support');
  const engineer = await signIn('engineer');
  const auditor = await signIn('auditor');

  // The backend's token.
  let page = admin.page;
  await page.goto(`${server.base}/service-accounts`);
  await hydrated(page);
  await page.getByLabel('Name').fill('customer-api');
  await page.locator('#scope-check').check();
  await page.locator('#scope-events').check();
  await page.getByRole('button', { name: 'Create service account' }).click();
  const section = page.locator('section[data-account="customer-api"]');
  await section.waitFor();
  await section.getByLabel('Token label').fill('production cluster');
  // Step-up: asked when the last code is more than 5 minutes old.
  await section.getByLabel('Your authenticator code').fill(await freshCode(admin.key, admin.used));
  await section.getByRole('button', { name: 'Create token' }).click();
  const token = await page.locator('#new-token').inputValue();
  const api = async (path, body) => {
    const res = await fetch(`${server.base}${path}`, { method: 'POST', headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' }, body: JSON.stringify(body) });
    return { status: res.status, body: await res.json() };
  };
  const pii = (customer) => api('/api/v1/access-checks', { employee: support.email, permission: 'customers:read_pii', resource: { type: 'customer', id: customer }, customer_id: customer, purpose: 'SUP-1234' });

  // The support employee asks for customer 1042 only.
  const sp = support.page;
  await sp.goto(`${server.base}/requests`);
  await hydrated(sp);
  assert.equal(await sp.locator('#glass-h').count(), 0, 'break-glass is for engineers');
  await sp.locator('#req-role').selectOption('support-pii');
  // The shortest a request may last: the test waits for its end below.
  await sp.locator('#req-duration').fill('5m');
  await sp.locator('#req-ticket').fill('SUP-1234');
  await sp.locator('#req-why').fill(WHY);
  await sp.locator('#req-customers').fill('1042');
  await sp.getByRole('button', { name: 'Send request' }).click();
  const mine = sp.locator('#my-requests li[data-state="pending"]');
  await mine.waitFor();
  assert.match(await mine.textContent(), /only customers 1042/);
  assert.equal((await pii('1042')).body.decision, 'deny', 'nothing before approval');

  // The administrator approves with a code.
  await page.goto(`${server.base}/requests`);
  await hydrated(page);
  const item = page.locator('#queue li[data-state="pending"]');
  await item.waitFor();
  assert.match(await item.textContent(), /only customers 1042/);
  assert.match(await item.textContent(), /Approvals 0 of 1/);
  await item.locator('input[name="code"]').fill(await freshCode(admin.key, admin.used));
  await item.locator('button.approve').click();
  await page.locator('#queue li[data-state="approved"]').waitFor();

  const allowed = await pii('1042');
  assert.equal(allowed.body.decision, 'allow', JSON.stringify(allowed.body));
  const grant = allowed.body.grant.id;
  const other = await pii('1043');
  assert.equal(other.body.decision, 'deny');
  assert.equal(other.body.reason, 'customers:read_pii is granted only for other customers');
  const reported = await api('/api/v1/audit-events', { events: [{ employee: support.email, action: 'customer.view', customer_id: '1042', fields: ['address'], source_system: 'support-desk', occurred_at: new Date().toISOString(), grant_id: grant }] });
  assert.equal(reported.status, 201, JSON.stringify(reported.body));

  // An engineer breaks the glass with a code.
  const ep = engineer.page;
  await ep.goto(`${server.base}/requests`);
  await hydrated(ep);
  await ep.locator('#glass-why').fill('payments API down, stuck orders need a database fix');
  await ep.locator('#glass-duration').fill('20m');
  await ep.locator('#glass-code').fill(await freshCode(engineer.key, engineer.used));
  await ep.getByRole('button', { name: 'Break the glass' }).click();
  await ep.getByText(/Break-glass access \d+ is active/).waitFor();
  await ep.locator('#my-requests li[data-state="approved"] .countdown').waitFor();

  // The auditor sees the alert (the job runs every 2 seconds) and the ticket.
  const ap = auditor.page;
  for (let i = 0; ; i++) {
    await ap.goto(`${server.base}/audit`);
    await hydrated(ap);
    if (await ap.locator('#open-alerts li[data-rule="breakglass"]').count() > 0) break;
    assert.ok(i < 15, 'a break-glass alert within 15 seconds');
    await new Promise((r) => setTimeout(r, 1000));
  }
  await ap.locator('#elevations-link').click();
  await ap.locator('#elevations').waitFor();
  assert.match(await ap.locator('#elevations').textContent(), /Break-glass \(break-glass\)/);
  const row = ap.locator('#elevations tr', { hasText: 'SUP-1234' });
  await row.getByRole('link').click();
  await ap.locator('#ticket-events').waitFor();
  const actions = await ap.locator('#ticket-events tbody tr td:nth-child(3)').allTextContents();
  assert.deepEqual(actions, ['elevation.approved', 'access.check', 'data.access']);
  assert.equal(await ap.locator('#ticket-events tr[data-customer="1042"]').count(), 2);
  assert.equal(await ap.locator('#ticket-events tr[data-customer="1043"]').count(), 0, 'the denied check was not under the grant');

  // The administrator records the post-incident review; the flag clears.
  await page.reload();
  await hydrated(page);
  const glass = page.locator('#queue li', { hasText: 'break-glass' });
  await glass.locator('input[name="note"]').fill('expired TLS certificate on the payments API; access used for 12 minutes');
  await glass.getByRole('button', { name: 'Record review' }).click();
  await page.locator('#queue form.review').waitFor({ state: 'detached' });

  // The support employee's access ends by itself at its end instant.
  const wait = allowed.body.grant.expires_at - Date.now() + 1000;
  assert.ok(wait < 5 * 60 * 1000 + 1000, 'five minutes at most');
  if (wait > 0) await new Promise((r) => setTimeout(r, wait));
  const expired = await pii('1042');
  assert.equal(expired.body.decision, 'deny');
  assert.equal(expired.body.reason, 'no active grant gives customers:read_pii');
  await sp.reload();
  await hydrated(sp);
  await sp.locator('#my-requests li[data-state="expired"]').waitFor();

  for (const p of [page, sp, ep, ap]) {
    assert.deepEqual(p.problems.filter((m) => /Content Security Policy|Refused|hydration|panicked/i.test(m)), []);
  }
});
