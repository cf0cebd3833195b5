// Database access in the browser, against the real MariaDB: an
// administrator registers a target and gives `support-pii` SELECT on the
// contacts table; a support employee's elevation is approved; the employee
// reveals a database password on "My access" and the test signs in with it
// over the MySQL protocol (Debian's mysql client).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { startServer, launch, hydrated, freshCode, enrolDemoPerson } from './helpers.mjs';

const TAG = randomBytes(4).toString('hex');
const SCHEMA = `ghe2e_${TAG}`;
const CONNECTOR = `ghe2econn_${TAG}`;
const CONNECTOR_PW = `connector-${TAG}-pw`;
const PREFIX = `ge${TAG.slice(0, 6)}_`;
let server, browser;

/** Runs SQL on the local MariaDB (as root, or as `user`). */
function mysql(sql, { user = 'root', password, database } = {}) {
  const args = ['-h127.0.0.1', '-P3306', `-u${user}`, '-N', '-B', '-e', sql];
  if (password) args.splice(3, 0, `-p${password}`);
  if (database) args.push(database);
  return spawnSync('mysql', args, { encoding: 'utf8' });
}

function root(sql) {
  const r = mysql(sql);
  assert.equal(r.status, 0, r.stderr);
  return r.stdout;
}

before(async () => {
  root(`CREATE DATABASE ${SCHEMA};
    CREATE TABLE ${SCHEMA}.customer_contacts (id INT PRIMARY KEY, email TEXT);
    INSERT INTO ${SCHEMA}.customer_contacts VALUES (1042, 'ada@example.com');
    CREATE USER '${CONNECTOR}'@'%' IDENTIFIED BY '${CONNECTOR_PW}';
    GRANT CREATE USER, PROCESS, CONNECTION ADMIN ON *.* TO '${CONNECTOR}'@'%';
    GRANT SELECT, UPDATE ON mysql.* TO '${CONNECTOR}'@'%';
    GRANT SELECT, INSERT, UPDATE, DELETE ON ${SCHEMA}.* TO '${CONNECTOR}'@'%' WITH GRANT OPTION;`);
  server = await startServer({
    seed: true,
    env: { GATEHOUSE_DB_TARGET_ALLOWED_HOSTS: '127.0.0.1', GATEHOUSE_DB_ACCOUNT_PREFIX: PREFIX },
  });
  browser = await launch();
});

after(async () => {
  await browser?.close();
  await server?.stop();
  const ours = root(`SELECT CONCAT(User, '|', Host) FROM mysql.user WHERE LEFT(User, ${PREFIX.length}) = '${PREFIX}'`);
  for (const line of ours.split('\n').filter(Boolean)) {
    const [user, host] = line.split('|');
    root(host ? `DROP USER '${user}'@'${host}'` : `DROP ROLE \`${user}\``);
  }
  root(`DROP USER IF EXISTS '${CONNECTOR}'@'%'; DROP DATABASE IF EXISTS ${SCHEMA};`);
});

function signIn(role) {
  return enrolDemoPerson(server, browser, role);
}

test('an administrator registers a target and maps a role; an approved elevation gives the employee a working database password', async () => {
  const admin = await signIn('admin');
  const support = await signIn('support');

  const page = admin.page;
  await page.goto(`${server.base}/targets`);
  await hydrated(page);
  await page.getByLabel('Name', { exact: true }).fill('production');
  await page.getByLabel('Host').fill('127.0.0.1');
  await page.getByLabel('Connector user name').fill(CONNECTOR);
  await page.getByLabel('Connector password').fill(CONNECTOR_PW);
  await page.locator('#register-code').fill(await freshCode(admin.key, admin.used));
  await page.getByRole('button', { name: 'Register target' }).click();
  const card = page.locator('section[data-target="production"]');
  await card.or(page.locator('.form-error')).first().waitFor();
  assert.equal(await page.locator('.form-error').count(), 0, await page.locator('.form-error').first().textContent().catch(() => ''));
  await card.getByRole('button', { name: 'Test connection' }).click();
  await page.locator('[data-testid="connection-report"]').waitFor();
  assert.match(await page.locator('[data-testid="connection-report"]').textContent(), /holds every privilege/);

  const form = card.getByRole('form', { name: 'Add a privilege' });
  await form.getByLabel('Role').selectOption('support-pii');
  await form.getByLabel('Privilege').selectOption('SELECT');
  await form.getByLabel('Schema').fill(SCHEMA);
  await form.getByLabel('Table (optional)').fill('customer_contacts');
  await form.getByRole('button', { name: 'Add privilege' }).click();
  await card.locator('tr[data-mapping]').waitFor();
  assert.match(await card.locator('tr[data-mapping]').textContent(), new RegExp(`${PREFIX}support_pii`));

  // The support employee asks; the administrator approves with a code.
  const sp = support.page;
  await sp.goto(`${server.base}/requests`);
  await hydrated(sp);
  await sp.locator('#req-role').selectOption('support-pii');
  await sp.locator('#req-duration').fill('30m');
  await sp.locator('#req-ticket').fill('SUP-1042');
  await sp.locator('#req-why').fill('customer 1042 asks to correct the delivery address');
  await sp.getByRole('button', { name: 'Send request' }).click();
  await sp.locator('#my-requests li[data-state="pending"]').waitFor();
  await page.goto(`${server.base}/requests`);
  await hydrated(page);
  const item = page.locator('#queue li[data-state="pending"]');
  await item.waitFor();
  await item.locator('input[name="code"]').fill(await freshCode(admin.key, admin.used));
  await item.locator('button.approve').click();
  await page.locator('#queue li[data-state="approved"]').waitFor();

  // The account opens within a second or two; the employee gets a password.
  let account;
  for (let i = 0; ; i++) {
    await sp.goto(`${server.base}/access`);
    await hydrated(sp);
    account = sp.locator('li[data-db-account]');
    if (await account.count() > 0 && /open/.test(await account.textContent())) break;
    assert.ok(i < 20, `the database account opens within 10 seconds: ${await sp.locator('main').textContent()} ${server.logs().slice(-2000)}`);
    await new Promise((r) => setTimeout(r, 500));
  }
  const name = await account.getAttribute('data-db-account');
  assert.equal(name.slice(0, PREFIX.length), PREFIX);
  await account.getByLabel('Your authenticator code').fill(await freshCode(support.key, support.used));
  await account.getByRole('button', { name: 'New password' }).click();
  const password = await sp.locator('#db-password').inputValue();
  assert.ok(password.length >= 24);

  const ok = mysql('SELECT email FROM customer_contacts WHERE id = 1042', { user: name, password, database: SCHEMA });
  assert.equal(ok.status, 0, ok.stderr);
  assert.equal(ok.stdout.trim(), 'ada@example.com');
  const refused = mysql("UPDATE customer_contacts SET email = 'x@example.com'", { user: name, password, database: SCHEMA });
  assert.notEqual(refused.status, 0);
  assert.match(refused.stderr, /UPDATE command denied/);
  assert.deepEqual(page.problems.concat(sp.problems), []);
});
