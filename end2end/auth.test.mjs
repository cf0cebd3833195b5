// First administrator, TOTP enrolment with an independent TOTP library,
// sign-out, sign-in with password and code, a replayed code refused,
// recovery-code sign-in, own activity, and lockout after repeated failures.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startServer, launch, newPage, hydrated, freshCode, authenticator, createFirstAdmin } from './helpers.mjs';

const EMAIL = 'maya.okafor@sunridge-solar.example';
const PASSWORD = 'violet harbour lantern 42';
let server, browser;
const state = { key: null, codes: [], used: new Set() };

before(async () => {
  server = await startServer();
  browser = await launch();
});

after(async () => {
  await browser?.close();
  await server?.stop();
});

async function signInWithPassword(page, password = PASSWORD) {
  await page.goto(`${server.base}/signin`);
  await hydrated(page);
  await page.getByLabel('Email').fill(EMAIL);
  await page.getByLabel('Password').fill(password);
  await page.getByRole('button', { name: 'Continue' }).click();
}

async function signOut(page) {
  await page.getByRole('button', { name: 'Maya Okafor' }).click();
  await page.getByRole('button', { name: 'Sign out', exact: true }).click();
  await page.waitForURL(`${server.base}/signin`);
}

test('set up the first administrator and enrol TOTP', async () => {
  const page = await newPage(browser);
  await createFirstAdmin(page, server, { name: 'Maya Okafor', email: EMAIL, password: PASSWORD });

  await page.waitForURL(`${server.base}/mfa/enrol`);
  await page.locator('svg[aria-label="QR code for your authenticator app"]').waitFor();
  const key = (await page.locator('#totp-key').textContent()).replace(/\s+/g, '');
  assert.match(key, /^[A-Z2-7]{32}$/);
  const uri = await page.locator('#totp-uri').getAttribute('href');
  assert.ok(uri.startsWith(`otpauth://totp/Gatehouse:${EMAIL.replace('@', '@')}?secret=${key}`), uri);
  state.key = key;

  await page.getByLabel('6-digit code').fill(await freshCode(key, state.used));
  await page.getByRole('button', { name: 'Confirm and continue' }).click();
  await page.waitForURL(`${server.base}/mfa/recovery-codes`);
  await page.locator('#recovery-codes li').first().waitFor();
  state.codes = await page.locator('#recovery-codes li').allTextContents();
  assert.equal(state.codes.length, 10);
  // Shown once: a reload shows none.
  await page.reload();
  await page.getByText('Recovery codes are shown only once').waitFor();

  await page.goto(`${server.base}/`);
  await hydrated(page);
  await page.getByRole('heading', { name: 'Welcome, Maya Okafor' }).waitFor();
  assert.equal((await page.locator('#my-roles li').allTextContents())[0], 'Administrator');
  // The user menu is interactive: hydration runs under the strict CSP.
  const menu = page.locator('#user-menu');
  assert.equal(await menu.isHidden(), true);
  await page.getByRole('button', { name: 'Maya Okafor' }).click();
  await menu.waitFor({ state: 'visible' });
  assert.equal(await page.getByRole('button', { name: 'Maya Okafor' }).getAttribute('aria-expanded'), 'true');
  await page.getByRole('button', { name: 'Maya Okafor' }).click();
  await signOut(page);
  assert.deepEqual(page.problems.filter((p) => /Content Security Policy|Refused/.test(p)), []);
  await page.context().close();
});

test('sign in with password and code; a replayed code is refused', async () => {
  const page = await newPage(browser);
  await signInWithPassword(page);
  await page.waitForURL(`${server.base}/mfa`);
  const code = await freshCode(state.key, state.used);
  await page.getByLabel('6-digit code').fill(code);
  await page.getByRole('button', { name: 'Verify' }).click();
  await page.waitForURL(`${server.base}/`);
  await page.getByRole('heading', { name: 'Welcome, Maya Okafor' }).waitFor();
  await signOut(page);

  // The same code again, within its 30 seconds.
  await signInWithPassword(page);
  await page.waitForURL(`${server.base}/mfa`);
  await page.getByLabel('6-digit code').fill(code);
  await page.getByRole('button', { name: 'Verify' }).click();
  await page.getByRole('alert').filter({ hasText: 'already used' }).waitFor();
  assert.equal(new URL(page.url()).pathname, '/mfa');
  await page.context().close();
});

test('sign in with a recovery code, and see the replay in own activity', async () => {
  const page = await newPage(browser);
  await signInWithPassword(page);
  await page.waitForURL(`${server.base}/mfa`);
  await page.getByRole('link', { name: 'Use a recovery code instead' }).click();
  await page.waitForURL(`${server.base}/mfa/recovery`);
  await hydrated(page);
  await page.getByRole('textbox', { name: 'Recovery code' }).fill(state.codes[0]);
  await page.getByRole('button', { name: 'Sign in' }).click();
  await page.waitForURL(`${server.base}/`);
  await page.locator('#codes-left').filter({ hasText: '9' }).waitFor();

  // Own pages are in the menu under the employee's name.
  await page.getByRole('button', { name: 'Maya Okafor' }).click();
  await page.getByRole('link', { name: 'Sign-in activity' }).click();
  await page.waitForURL(`${server.base}/activity`);
  const table = page.locator('#activity');
  await table.getByText('Reused authenticator code refused').first().waitFor();
  await table.getByText('Signed in with a recovery code').first().waitFor();
  await signOut(page);

  // The used recovery code does not work twice.
  await signInWithPassword(page);
  await page.waitForURL(`${server.base}/mfa`);
  await page.goto(`${server.base}/mfa/recovery`);
  await hydrated(page);
  await page.getByRole('textbox', { name: 'Recovery code' }).fill(state.codes[0]);
  await page.getByRole('button', { name: 'Sign in' }).click();
  await page.getByRole('alert').filter({ hasText: 'not valid or was already used' }).waitFor();
  await page.context().close();
});

test('repeated failures back off, then lock the account', async () => {
  const page = await newPage(browser);
  let failures = 0;
  let waited = false;
  let locked = false;
  // Earlier tests' failures from this address count too, so the backoff and
  // the lock may come before this test's own tenth failure.
  for (let i = 0; i < 25 && !locked; i++) {
    await signInWithPassword(page, 'not my password at all');
    const alert = page.getByRole('alert');
    await alert.waitFor();
    const text = await alert.textContent();
    const wait = text.match(/Wait (\d+) seconds/);
    if (/locked/.test(text)) {
      locked = true;
    } else if (wait) {
      waited = true;
      await new Promise((r) => setTimeout(r, (Number(wait[1]) + 1) * 1000));
    } else {
      assert.match(text, /email or password is not correct/);
      failures += 1;
    }
  }
  assert.ok(failures >= 1 && failures <= 10, `failures before the lock: ${failures}`);
  assert.ok(waited, 'failures made the next attempt wait');
  assert.ok(locked, 'repeated failures lock sign-in');
  // Now even the right password is refused.
  await signInWithPassword(page);
  await page.getByRole('alert').filter({ hasText: 'locked' }).waitFor();
  assert.equal(new URL(page.url()).pathname, '/signin');
  await page.context().close();
});
