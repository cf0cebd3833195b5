// The header in Chromium, for each role of the demo company: it fits one line
// in a 1280-pixel window, shows each role only the screens it may open, and
// its menus work from the keyboard (Enter opens, Tab walks the links, Escape
// closes and returns to the button, leaving the menu closes it).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startServer, launch, newPage, hydrated, freshCode } from './helpers.mjs';

let server, browser;

before(async () => {
  server = await startServer({ seed: true });
  browser = await launch();
});

after(async () => {
  await browser?.close();
  await server?.stop();
});

/** Each role's authenticator key and used time steps, once enrolled. */
const enrolled = new Map();

/** Signs a demo person in (enrolling TOTP with otplib the first time) in a 1280×800 window. */
async function signIn(role) {
  const person = server.people.find((p) => p.role === role);
  const page = await newPage(browser);
  await page.setViewportSize({ width: 1280, height: 800 });
  await page.goto(`${server.base}/signin`);
  await hydrated(page);
  await page.getByLabel('Email').fill(person.email);
  await page.getByLabel('Password').fill(person.password);
  await page.getByRole('button', { name: 'Continue' }).click();
  const known = enrolled.get(role);
  if (known) {
    await page.waitForURL(`${server.base}/mfa`);
    await hydrated(page);
    await page.getByLabel('6-digit code').fill(await freshCode(known.key, known.used));
    await page.getByRole('button', { name: 'Verify' }).click();
    await page.waitForURL(`${server.base}/`);
  } else {
    await page.waitForURL(`${server.base}/mfa/enrol`);
    await page.locator('#totp-key').waitFor();
    const key = (await page.locator('#totp-key').textContent()).replace(/\s+/g, '');
    const used = new Set();
    await page.getByLabel('6-digit code').fill(await freshCode(key, used));
    await page.getByRole('button', { name: 'Confirm and continue' }).click();
    await page.locator('#recovery-codes li').first().waitFor();
    enrolled.set(role, { key, used });
    await page.goto(`${server.base}/`);
  }
  await hydrated(page);
  return page;
}

/** The header's items (links and menu buttons) with their vertical positions. */
async function headerItems(page) {
  return page.locator('nav[aria-label="Main"]').evaluate((nav) =>
    [...nav.children].map((el) => {
      const r = el.getBoundingClientRect();
      return { text: el.innerText.split('\n')[0].trim(), top: Math.round(r.top), bottom: Math.round(r.bottom) };
    }),
  );
}

const SCREENS = {
  admin: { menus: ['Administration'], links: ['Overview of access', 'Employees', 'Roles', 'Service accounts'] },
  auditor: { menus: ['Audit'], links: ['Audit trail', 'Reports', 'Elevations and tickets'] },
  support: { menus: [], links: [] },
  engineer: { menus: [], links: [] },
};

test('the header fits one line at 1280 pixels and offers each role its screens', async () => {
  for (const [role, expected] of Object.entries(SCREENS)) {
    const page = await signIn(role);
    const items = await headerItems(page);
    assert.ok(items.length >= 4, `${role}: ${JSON.stringify(items)}`);
    // One line: every item sits beside the first (a wrapped item starts
    // below the first one's bottom).
    const first = items[0];
    for (const item of items) {
      assert.ok(item.top < first.bottom && item.bottom > first.top, `${role}: the header wraps: ${JSON.stringify(items)}`);
    }
    const header = await page.locator('header').boundingBox();
    assert.ok(header.height < 80, `${role}: header is ${header.height}px high`);
    for (const menu of ['Administration', 'Audit']) {
      const shown = await page.getByRole('button', { name: menu, exact: true }).count();
      assert.equal(shown, expected.menus.includes(menu) ? 1 : 0, `${role}: menu ${menu}`);
    }
    // The menu's links, once it is open.
    for (const menu of expected.menus) {
      await page.getByRole('button', { name: menu, exact: true }).click();
    }
    for (const name of expected.links) {
      assert.equal(await page.getByRole('link', { name, exact: true }).count(), 1, `${role}: ${name}`);
    }
    assert.deepEqual(page.problems, [], `${role}: page errors`);
    await page.context().close();
  }
});

test('the administration menu works from the keyboard', async () => {
  const page = await signIn('admin');
  const button = page.getByRole('button', { name: 'Administration', exact: true });
  const menu = page.locator('#admin-menu');
  assert.equal(await menu.isHidden(), true);
  assert.equal(await button.getAttribute('aria-expanded'), 'false');
  assert.equal(await button.getAttribute('aria-controls'), 'admin-menu');

  // Enter opens; Tab walks into the menu's links in order.
  await button.focus();
  await page.keyboard.press('Enter');
  await menu.waitFor({ state: 'visible' });
  assert.equal(await button.getAttribute('aria-expanded'), 'true');
  await page.keyboard.press('Tab');
  assert.equal(await page.evaluate(() => document.activeElement.textContent.trim()), 'Overview of access');
  await page.keyboard.press('Tab');
  assert.equal(await page.evaluate(() => document.activeElement.textContent.trim()), 'Employees');

  // Escape closes it and returns to the button.
  await page.keyboard.press('Escape');
  await menu.waitFor({ state: 'hidden' });
  assert.equal(await button.getAttribute('aria-expanded'), 'false');
  assert.equal(await page.evaluate(() => document.activeElement.id), 'admin-menu-button');

  // Space opens it too; tabbing past its last link closes it.
  await page.keyboard.press(' ');
  await menu.waitFor({ state: 'visible' });
  const links = await menu.getByRole('link').count();
  for (let i = 0; i <= links; i++) await page.keyboard.press('Tab');
  await menu.waitFor({ state: 'hidden' });

  // Following a link from the keyboard opens the screen and closes the menu.
  await button.focus();
  await page.keyboard.press('Enter');
  await menu.waitFor({ state: 'visible' });
  await page.keyboard.press('Tab');
  await page.keyboard.press('Tab');
  await page.keyboard.press('Enter');
  await page.waitForURL(`${server.base}/employees`);
  await menu.waitFor({ state: 'hidden' });
  assert.deepEqual(page.problems, []);
  await page.context().close();
});

test('a page loads the signed-in profile once, for the header and the page together', async () => {
  const page = await signIn('admin');
  const calls = [];
  page.on('request', (r) => {
    if (new URL(r.url()).pathname === '/api/me') calls.push(r.url());
  });
  // Client-side navigation: the frame asks for the profile, the page (the
  // requests screen shows approvers their queue) reuses it.
  await page.getByRole('link', { name: 'Requests', exact: true }).click();
  await page.waitForURL(`${server.base}/requests`);
  await page.locator('#queue, #queue-empty').first().waitFor();
  assert.equal(calls.length, 1, `profile requests: ${JSON.stringify(calls)}`);
  assert.deepEqual(page.problems, []);
  await page.context().close();
});
