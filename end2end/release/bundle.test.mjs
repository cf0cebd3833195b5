// The optimised browser bundle (cargo leptos build --release, wasm-opt from
// npm's binaryen, content-hashed names, precompressed): served by the test
// build's server, it hydrates in Chromium without a single page error, and
// it travels the way browsers expect (brotli, cached for a year, HTML never
// stored). `.ci/dev test` builds it and sets GATEHOUSE_RELEASE_SITE and
// LEPTOS_HASH_FILE_NAME; a broken optimiser fails here.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { startServer, launch, newPage, hydrated, freshCode, createFirstAdmin, enrolTotp } from '../helpers.mjs';

const SITE = process.env.GATEHOUSE_RELEASE_SITE;
const HASH_FILE = process.env.LEPTOS_HASH_FILE_NAME;
const EMAIL = 'maya.okafor@sunridge-solar.example';
const PASSWORD = 'violet harbour lantern 42';
let server, browser;

before(async () => {
  if (!SITE || !HASH_FILE) {
    throw new Error('set GATEHOUSE_RELEASE_SITE and LEPTOS_HASH_FILE_NAME (bash .ci/dev test does)');
  }
  server = await startServer({ env: { LEPTOS_SITE_ROOT: SITE, LEPTOS_HASH_FILE_NAME: HASH_FILE } });
  browser = await launch();
});

after(async () => {
  await browser?.close();
  await server?.stop();
});

/** Every /pkg answer and every page answer the browser received. */
function recordResponses(page) {
  const seen = [];
  page.on('response', async (r) => {
    const url = new URL(r.url());
    if (url.origin !== server.base) return;
    seen.push({ path: url.pathname, status: r.status(), headers: await r.allHeaders(), type: r.request().resourceType() });
  });
  return seen;
}

test('the optimised bundle hydrates: set up, enrol, sign in with TOTP, use the menu, with no page error', async () => {
  const hashes = Object.fromEntries(readFileSync(HASH_FILE, 'utf8').trim().split('\n').map((l) => l.split(':').map((s) => s.trim())));
  const page = await newPage(browser);
  const seen = recordResponses(page);
  const used = new Set();

  await createFirstAdmin(page, server, { name: 'Maya Okafor', email: EMAIL, password: PASSWORD });
  const key = await enrolTotp(page, server, used);

  // Sign out and in again with the password and a code from otplib.
  await page.goto(`${server.base}/`);
  await hydrated(page);
  await page.getByRole('button', { name: 'Maya Okafor' }).click();
  await page.getByRole('button', { name: 'Sign out', exact: true }).click();
  await page.waitForURL(`${server.base}/signin`);
  await hydrated(page);
  await page.getByLabel('Email').fill(EMAIL);
  await page.getByLabel('Password').fill(PASSWORD);
  await page.getByRole('button', { name: 'Continue' }).click();
  await page.waitForURL(`${server.base}/mfa`);
  await hydrated(page);
  await page.getByLabel('6-digit code').fill(await freshCode(key, used));
  await page.getByRole('button', { name: 'Verify' }).click();
  await page.waitForURL(`${server.base}/`);
  await hydrated(page);

  // Only a hydrated page opens the user menu: the click runs in the wasm.
  const menu = page.locator('#user-menu');
  assert.equal(await menu.isHidden(), true);
  await page.getByRole('button', { name: 'Maya Okafor' }).click();
  await menu.waitFor({ state: 'visible' });
  assert.equal(await page.getByRole('button', { name: 'Maya Okafor' }).getAttribute('aria-expanded'), 'true');
  assert.deepEqual(page.problems, []);
  assert.equal(seen.filter((r) => /^\/pkg\/split_/.test(r.path)).length, 0, 'a lazy screen loaded before it was opened');

  // A lazily loaded screen: its code arrives when it is opened, by a link
  // in the page (client-side) and by a full load (hydrated after its code
  // arrived); both stay interactive.
  await page.getByRole('link', { name: 'My access' }).click();
  await page.waitForURL(`${server.base}/access`);
  await page.getByRole('heading', { name: 'My access' }).waitFor();
  await page.goto(`${server.base}/activity`);
  await hydrated(page);
  await page.getByRole('heading', { name: 'Sign-in activity' }).waitFor();
  await page.getByRole('button', { name: 'Maya Okafor' }).click();
  await menu.waitFor({ state: 'visible' });
  // The database targets screen (lazy too) hydrates from a full load, and
  // its user menu still opens (a click handled by the wasm).
  await page.goto(`${server.base}/targets`);
  await hydrated(page);
  await page.getByRole('heading', { name: 'Database targets' }).waitFor();
  await page.getByLabel('CA certificate (optional)').waitFor();
  await page.getByRole('button', { name: 'Maya Okafor' }).click();
  await menu.waitFor({ state: 'visible' });
  const screens = seen.filter((r) => /^\/pkg\/split_.*\.wasm$/.test(r.path));
  assert.ok(screens.length >= 2, `lazy screens loaded: ${screens.map((s) => s.path).join(' ')}`);
  assert.deepEqual(page.problems, []);

  // The bundle it ran: the hashed names from hash.txt, sent with brotli.
  // The stylesheet, the loader of the lazy screens and the screens are
  // cached for a year; the main wasm and JavaScript get the loader's name
  // written into them after they were named, so they are revalidated
  // (platform::assets); the pages themselves are never stored.
  const wasm = seen.find((r) => r.path === `/pkg/gatehouse.${hashes.wasm}.wasm`);
  const js = seen.find((r) => r.path === `/pkg/gatehouse.${hashes.js}.js`);
  const css = seen.find((r) => r.path === `/pkg/gatehouse.${hashes.css}.css`);
  const loader = seen.find((r) => r.path === `/pkg/__wasm_split.${hashes.split}.js`);
  for (const [name, r, cache] of [
    ['wasm', wasm, 'no-cache'],
    ['js', js, 'no-cache'],
    ['css', css, 'public, max-age=31536000, immutable'],
    ['loader', loader, 'public, max-age=31536000, immutable'],
    ['screen', screens[0], 'public, max-age=31536000, immutable'],
  ]) {
    assert.ok(r, `${name} not loaded under its hashed name: ${seen.map((s) => s.path).join(' ')}`);
    assert.equal(r.status, 200, name);
    assert.equal(r.headers['content-encoding'], 'br', name);
    assert.equal(r.headers['cache-control'], cache, name);
  }
  const documents = seen.filter((r) => r.type === 'document');
  assert.ok(documents.length >= 2, `${documents.length} documents`);
  for (const d of documents) assert.equal(d.headers['cache-control'], 'no-store', d.path);
  await page.context().close();
});
