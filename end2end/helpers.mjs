// Shared helpers for the end-to-end tests: start the real server binary on
// a free port with a fresh SQLite database, and drive Debian's Chromium.
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium } from 'playwright-core';
import otplib from 'otplib';

export const { authenticator } = otplib;

export const CHROMIUM_ARGS = [
  '--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
  '--disable-background-networking', '--disable-component-update', '--disable-sync',
];

export async function freePort() {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address();
      srv.close(() => resolve(port));
    });
    srv.on('error', reject);
  });
}

/**
 * Starts `target/debug/gatehouse serve`; resolves once it prints its setup
 * URL. With `seed`, first fills the database with the demo company
 * (`gatehouse seed-demo`) and returns its people as `people`
 * ([{ email, role, password }]).
 */
export async function startServer({ port: chosen, env = {}, seed = false, localhost = false } = {}) {
  const dir = mkdtempSync(join(tmpdir(), 'gatehouse-e2e-'));
  const port = chosen || await freePort();
  // Passkeys need a domain name: browsers refuse WebAuthn on IP addresses.
  const host = localhost ? 'localhost' : '127.0.0.1';
  const bin = process.env.GATEHOUSE_BIN || 'target/debug/gatehouse';
  const serverEnv = {
    ...process.env,
    GATEHOUSE_DATA_DIR: dir,
    GATEHOUSE_DATABASE_URL: `sqlite://${dir}/gatehouse.db`,
    GATEHOUSE_LISTEN: `127.0.0.1:${port}`,
    LEPTOS_SITE_ROOT: 'target/site',
    RUST_LOG: 'warn',
    ...(localhost ? { GATEHOUSE_PUBLIC_URL: `http://localhost:${port}` } : {}),
    ...env,
  };
  let people = [];
  if (seed) {
    const r = spawnSync(bin, ['seed-demo'], { env: serverEnv, encoding: 'utf8' });
    if (r.status !== 0) throw new Error(`seed-demo failed: ${r.stderr}`);
    people = [...r.stdout.matchAll(/^(\S+@\S+)\s+(\S+)\s+(\S+)$/gm)].map((m) => ({ email: m[1], role: m[2], password: m[3] }));
  }
  const child = spawn(bin, ['serve'], { env: serverEnv, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let log = '';
  child.stderr.on('data', (d) => { log += d; });
  const setupUrl = await new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`server did not start:\n${out}\n${log}`)), 30000);
    child.stdout.on('data', (d) => {
      out += d;
      const m = out.match(/(http:\/\/\S+\/setup\?token=\S+)/);
      if ((m || seed) && out.includes('Gatehouse is running')) { clearTimeout(timer); resolve(m?.[1]); }
    });
    child.on('exit', (code) => reject(new Error(`server exited with ${code}:\n${out}\n${log}`)));
  });
  return {
    base: `http://${host}:${port}`,
    dir,
    setupUrl,
    people,
    logs: () => log,
    async stop() {
      child.kill('SIGINT');
      await new Promise((r) => child.once('exit', r));
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

export async function launch() {
  return chromium.launch({ executablePath: process.env.CHROMIUM || '/usr/bin/chromium', args: CHROMIUM_ARGS });
}

/** A page that records console errors, CSP violations among them. */
export async function newPage(browser) {
  const context = await browser.newContext();
  const page = await context.newPage();
  page.problems = [];
  page.on('console', (m) => { if (m.type() === 'error') page.problems.push(m.text()); });
  page.on('pageerror', (e) => page.problems.push(String(e)));
  return page;
}

/** Waits until the app has hydrated (the wasm bundle is running). */
export async function hydrated(page) {
  await page.waitForFunction(() => document.documentElement.dataset.hydrated === 'true', null, { timeout: 20000 });
}

/**
 * Fills the one-time setup page for the first administrator and submits
 * it; the browser then goes to the enrolment page.
 */
export async function createFirstAdmin(page, server, { name, email, password }) {
  await page.goto(server.setupUrl);
  await hydrated(page);
  await page.getByLabel('Your name').fill(name);
  await page.getByLabel('Work email').fill(email);
  await page.getByLabel('Password', { exact: true }).fill(password);
  await page.getByLabel('Repeat the password').fill(password);
  await page.getByRole('button', { name: 'Create administrator' }).click();
}

/**
 * Enrols TOTP on the enrolment page with a code from otplib (marking its
 * time step in `used`) and waits for the recovery codes; returns the key.
 */
export async function enrolTotp(page, server, used) {
  await page.waitForURL(`${server.base}/mfa/enrol`);
  await page.locator('#totp-key').waitFor();
  const key = (await page.locator('#totp-key').textContent()).replace(/\s+/g, '');
  await page.getByLabel('6-digit code').fill(await freshCode(key, used));
  await page.getByRole('button', { name: 'Confirm and continue' }).click();
  await page.waitForURL(`${server.base}/mfa/recovery-codes`);
  await page.locator('#recovery-codes li').first().waitFor();
  return key;
}

/**
 * Signs a demo person (of `role`) in for the first time in a new page,
 * enrolling TOTP with otplib; returns the person with `key`, `used` (time
 * steps spent) and `page`.
 */
export async function enrolDemoPerson(server, browser, role) {
  const person = { ...server.people.find((p) => p.role === role), used: new Set() };
  const page = await newPage(browser);
  await page.goto(`${server.base}/signin`);
  await hydrated(page);
  await page.getByLabel('Email').fill(person.email);
  await page.getByLabel('Password').fill(person.password);
  await page.getByRole('button', { name: 'Continue' }).click();
  await page.waitForURL(`${server.base}/mfa/enrol`);
  await page.locator('#totp-key').waitFor();
  person.key = (await page.locator('#totp-key').textContent()).replace(/\s+/g, '');
  await page.getByLabel('6-digit code').fill(await freshCode(person.key, person.used));
  await page.getByRole('button', { name: 'Confirm and continue' }).click();
  await page.locator('#recovery-codes li').first().waitFor();
  person.page = page;
  return person;
}

/**
 * Gives `page` a virtual authenticator (Chromium's DevTools WebAuthn
 * domain): a platform authenticator with resident keys and user
 * verification that answers without a prompt. Returns the DevTools
 * session and the authenticator's id.
 */
export async function virtualAuthenticator(page, { isUserVerified = true } = {}) {
  const cdp = await page.context().newCDPSession(page);
  await cdp.send('WebAuthn.enable');
  const { authenticatorId } = await cdp.send('WebAuthn.addVirtualAuthenticator', {
    options: {
      protocol: 'ctap2', transport: 'internal', hasResidentKey: true, hasUserVerification: true,
      isUserVerified, automaticPresenceSimulation: true,
    },
  });
  return { cdp, authenticatorId };
}

/** The current TOTP code, waiting for a fresh time step if `notStep` is the current one. */
export async function freshCode(key, usedSteps) {
  for (;;) {
    const step = Math.floor(Date.now() / 30000);
    if (!usedSteps.has(step) && (Date.now() % 30000) < 27000) {
      usedSteps.add(step);
      return authenticator.generate(key);
    }
    await new Promise((r) => setTimeout(r, 500));
  }
}

/** Starts the real OpenID provider (end2end/oidc/provider.mjs) for a Gatehouse on `base`. */
export async function startProvider(base, clientSecret) {
  const child = spawn(process.execPath, ['end2end/oidc/provider.mjs'], {
    env: { ...process.env, REDIRECT_URIS: `${base}/auth/oidc/callback`, CLIENT_SECRET: clientSecret },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const issuer = await new Promise((resolve, reject) => {
    let out = '';
    child.stdout.on('data', (d) => {
      out += d;
      const m = out.match(/ISSUER (\S+)/);
      if (m) resolve(m[1]);
    });
    child.on('exit', (code) => reject(new Error(`provider exited with ${code}`)));
  });
  return {
    issuer,
    async nextLogin(sub, email, { verified = true, amr } = {}) {
      const u = new URL('/test/next-login', issuer);
      u.searchParams.set('sub', sub);
      u.searchParams.set('email', email);
      u.searchParams.set('verified', String(verified));
      if (amr) u.searchParams.set('amr', amr);
      const r = await fetch(u);
      if (r.status !== 204) throw new Error(`next-login: ${r.status}`);
    },
    stop() { child.kill(); },
  };
}
