// Single sign-on in Chromium through a real OpenID provider (npm
// oidc-provider): a provisioned employee signs in and still enrols
// Gatehouse's TOTP; the provider's MFA is trusted only when the ID token's
// amr proves it; an unknown person and an offboarded employee are refused.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { startServer, startProvider, freePort, launch, newPage, hydrated, freshCode } from './helpers.mjs';

const SECRET = 'e2e-provider-client-secret-0123456789';
const JONAS = 'jonas.becker@sunridge-solar.example';
let server; let provider; let browser; let scimToken;
const used = new Set();

async function scim(method, path, body) {
  const r = await fetch(`${server.base}/scim/v2${path}`, {
    method,
    headers: { authorization: `Bearer ${scimToken}`, 'content-type': 'application/scim+json' },
    body: body ? JSON.stringify(body) : undefined,
  });
  return { status: r.status, body: r.status === 204 ? null : await r.json() };
}

before(async () => {
  const port = await freePort();
  provider = await startProvider(`http://127.0.0.1:${port}`, SECRET);
  server = await startServer({
    port,
    env: {
      GATEHOUSE_OIDC_ISSUER: provider.issuer,
      GATEHOUSE_OIDC_CLIENT_ID: 'gatehouse',
      GATEHOUSE_OIDC_CLIENT_SECRET: SECRET,
      // The provider's MFA counts when its ID token proves it.
      GATEHOUSE_OIDC_TRUST_AMR: 'mfa,otp,hwk',
    },
  });
  // The identity provider's SCIM token, made with the command line.
  const out = execFileSync(process.env.GATEHOUSE_BIN || 'target/debug/gatehouse', ['service-token', 'okta-scim', 'scim'], {
    env: { ...process.env, GATEHOUSE_DATA_DIR: server.dir, GATEHOUSE_DATABASE_URL: `sqlite://${server.dir}/gatehouse.db` },
  }).toString();
  scimToken = out.match(/ghs_\S+/)[0];
  browser = await launch();
});

after(async () => {
  await browser?.close();
  await server?.stop();
  provider?.stop();
});

async function ssoSignIn(page) {
  await page.goto(`${server.base}/signin`);
  await hydrated(page);
  await page.getByRole('link', { name: 'Sign in with your company account' }).click();
}

test('a provisioned employee signs in through the provider, enrols TOTP, and the provider MFA counts only when amr proves it', async () => {
  const created = await scim('POST', '/Users', {
    schemas: ['urn:ietf:params:scim:schemas:core:2.0:User', 'urn:ietf:params:scim:schemas:extension:enterprise:2.0:User'],
    userName: JONAS,
    name: { givenName: 'Jonas', familyName: 'Becker' },
    'urn:ietf:params:scim:schemas:extension:enterprise:2.0:User': { department: 'support' },
  });
  assert.equal(created.status, 201);
  await provider.nextLogin('okta-jonas', JONAS, { amr: 'pwd,otp' });
  const page = await newPage(browser);
  await ssoSignIn(page);
  // Back from the provider: Gatehouse's own authenticator comes next.
  await page.waitForURL(`${server.base}/mfa/enrol`);
  await hydrated(page);
  const key = (await page.locator('#totp-key').textContent()).replace(/\s+/g, '');
  await page.getByLabel('6-digit code').fill(await freshCode(key, used));
  await page.getByRole('button', { name: 'Confirm and continue' }).click();
  await page.waitForURL(`${server.base}/mfa/recovery-codes`);
  await page.goto(`${server.base}/`);
  await hydrated(page);
  await page.getByRole('heading', { name: 'Welcome, Jonas Becker' }).waitFor();
  await page.context().close();

  // Next time with a password only at the provider: Gatehouse's code too.
  await provider.nextLogin('okta-jonas', JONAS, { amr: 'pwd' });
  const again = await newPage(browser);
  await ssoSignIn(again);
  await again.waitForURL(`${server.base}/mfa`);
  await hydrated(again);
  await again.getByLabel('6-digit code').fill(await freshCode(key, used));
  await again.getByRole('button', { name: /Verify|Continue|Sign in/ }).click();
  await again.getByRole('heading', { name: 'Welcome, Jonas Becker' }).waitFor();
  await again.context().close();

  // With a second factor at the provider (amr otp), trusted by configuration:
  // straight in, no Gatehouse code at sign-in.
  await provider.nextLogin('okta-jonas', JONAS, { amr: 'pwd,otp' });
  const trusted = await newPage(browser);
  await ssoSignIn(trusted);
  await trusted.waitForURL(`${server.base}/`);
  await trusted.getByRole('heading', { name: 'Welcome, Jonas Becker' }).waitFor();
  await trusted.context().close();
});

test('an unknown person and an offboarded employee are refused', async () => {
  await provider.nextLogin('okta-stranger', 'stranger@elsewhere.example');
  const page = await newPage(browser);
  await ssoSignIn(page);
  await page.locator('#sso-error').waitFor();
  assert.match(await page.locator('#sso-error').textContent(), /not set up in Gatehouse/);

  const found = await scim('GET', `/Users?filter=${encodeURIComponent(`userName eq "${JONAS}"`)}`);
  const id = found.body.Resources[0].id;
  const off = await scim('PATCH', `/Users/${id}`, {
    schemas: ['urn:ietf:params:scim:api:messages:2.0:PatchOp'],
    Operations: [{ op: 'replace', path: 'active', value: false }],
  });
  assert.equal(off.status, 200);
  await page.context().close();
  // A new browser, so the provider asks who signs in (its session would remember the stranger).
  await provider.nextLogin('okta-jonas', JONAS);
  const later = await newPage(browser);
  await ssoSignIn(later);
  await later.locator('#sso-error').waitFor();
  assert.match(await later.locator('#sso-error').textContent(), /closed/);
  await later.context().close();
});
