// Passkeys in Chromium, with its virtual authenticator (DevTools
// WebAuthn.addVirtualAuthenticator), on `localhost` (browsers refuse
// WebAuthn on IP addresses): an administrator registers a passkey on
// /security, signs in with password + passkey and then with the passkey
// alone, approves a support employee's request confirming with the
// passkey, and removes it. Under GATEHOUSE_REQUIRE_PASSKEY=administrators
// an administrator's authenticator code alone is refused.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startServer, launch, hydrated, freshCode, enrolDemoPerson, virtualAuthenticator } from './helpers.mjs';

let server, browser;

before(async () => {
  server = await startServer({ seed: true, localhost: true });
  browser = await launch();
});

after(async () => {
  await browser?.close();
  await server?.stop();
});

async function signOut(page, base) {
  await page.locator('#user-menu-button').click();
  await page.getByRole('button', { name: 'Sign out', exact: true }).click();
  await page.waitForURL(`${base}/signin`);
}

async function password(page, base, person) {
  await page.goto(`${base}/signin`);
  await hydrated(page);
  await page.getByLabel('Email').fill(person.email);
  await page.getByLabel('Password').fill(person.password);
  await page.getByRole('button', { name: 'Continue' }).click();
  await page.waitForURL(`${base}/mfa`);
  await hydrated(page);
}

async function addPasskey(page, base, name) {
  await page.goto(`${base}/security`);
  await hydrated(page);
  await page.getByLabel('Name a new passkey').fill(name);
  await page.locator('#passkey-add').click();
  await page.locator('#passkeys li', { hasText: name }).waitFor();
}

test('register a passkey, sign in with password + passkey and without a password, approve with it, remove it', async () => {
  const base = server.base;
  assert.match(base, /^http:\/\/localhost:/);
  const admin = await enrolDemoPerson(server, browser, 'admin');
  const support = await enrolDemoPerson(server, browser, 'support');
  const page = admin.page;
  const { cdp, authenticatorId } = await virtualAuthenticator(page);

  // Register.
  await addPasskey(page, base, 'Work laptop');
  const item = page.locator('#passkeys li', { hasText: 'Work laptop' });
  assert.match(await item.textContent(), /never used/);
  const { credentials } = await cdp.send('WebAuthn.getCredentials', { authenticatorId });
  assert.equal(credentials.length, 1);
  assert.equal(credentials[0].isResidentCredential, true, 'a discoverable credential');
  assert.equal(credentials[0].rpId, 'localhost');

  // Password, then the passkey, offered first.
  await signOut(page, base);
  await password(page, base, admin);
  await page.getByRole('button', { name: 'Use your passkey' }).click();
  await page.waitForURL(`${base}/`);
  await page.goto(`${base}/security`);
  await hydrated(page);
  assert.match(await page.locator('#passkeys li', { hasText: 'Work laptop' }).textContent(), /last used/);

  // Without a password.
  await signOut(page, base);
  await page.goto(`${base}/signin`);
  await hydrated(page);
  await page.getByRole('button', { name: 'Sign in with a passkey' }).click();
  await page.waitForURL(`${base}/`);
  await page.locator('#user-menu-button').waitFor();

  // Step-up for an approval with the passkey.
  const sp = support.page;
  await sp.goto(`${base}/requests`);
  await hydrated(sp);
  await sp.locator('#req-role').selectOption('support-pii');
  await sp.locator('#req-duration').fill('30m');
  await sp.locator('#req-ticket').fill('SUP-77');
  await sp.locator('#req-why').fill('customer 1042 asks to correct the delivery address');
  await sp.locator('#req-customers').fill('1042');
  await sp.getByRole('button', { name: 'Send request' }).click();
  await sp.locator('#my-requests li[data-state="pending"]').waitFor();
  await page.goto(`${base}/requests`);
  await hydrated(page);
  const pending = page.locator('#queue li[data-state="pending"]');
  await pending.waitFor();
  await pending.getByRole('button', { name: 'Approve with a passkey' }).click();
  await page.locator('#queue li[data-state="approved"]').waitFor();
  await page.goto(`${base}/activity`);
  await hydrated(page);
  await page.getByText('Confirmed with a passkey').first().waitFor();

  // Removal, confirmed with the passkey.
  await page.goto(`${base}/security`);
  await hydrated(page);
  const mine = page.locator('#passkeys li', { hasText: 'Work laptop' });
  await mine.getByRole('button', { name: 'Use a passkey instead' }).click();
  await page.locator('#passkeys li').first().waitFor({ state: 'detached' });
  assert.equal(await page.locator('#passkeys li').count(), 0);
  assert.deepEqual(page.problems.filter((p) => !p.includes('401')), [], 'no console errors');
});

test('under GATEHOUSE_REQUIRE_PASSKEY an administrator adds a passkey, and a code alone is refused', async () => {
  const strict = await startServer({ seed: true, localhost: true, env: { GATEHOUSE_REQUIRE_PASSKEY: 'administrators' } });
  try {
    const base = strict.base;
    const admin = await enrolDemoPerson(strict, browser, 'admin');
    const page = admin.page;
    await virtualAuthenticator(page);
    // Enrolled with a code: the next page asks for a passkey first.
    await page.goto(`${base}/`);
    await page.waitForURL(`${base}/mfa/passkey`);
    await hydrated(page);
    await page.getByLabel('Name the passkey').fill('Work laptop');
    await page.locator('#passkey-add').click();
    await page.waitForURL(`${base}/mfa`);
    await hydrated(page);
    await page.getByRole('button', { name: 'Use your passkey' }).click();
    await page.waitForURL(`${base}/`);
    await page.locator('#user-menu-button').waitFor();

    // The authenticator code alone is refused.
    await signOut(page, base);
    await password(page, base, admin);
    await page.getByLabel('6-digit code').fill(await freshCode(admin.key, admin.used));
    await page.getByRole('button', { name: 'Verify' }).click();
    await page.getByText('Your access requires a passkey').waitFor();
    assert.equal(new URL(page.url()).pathname, '/mfa');
    await page.getByRole('button', { name: 'Use your passkey' }).click();
    await page.waitForURL(`${base}/`);
  } finally {
    await strict.stop();
  }
});
