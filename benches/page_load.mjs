// Bytes a browser transfers for a signed-in page (issue 18): the first load
// with an empty cache, then a reload, measured in Chromium from the
// network's encoded byte counts (what crossed the wire, compressed). Serves
// the given site with the given server binary, signs in a demo auditor
// (enrolment through .ci/fuzz-session.mjs), loads /audit.
//
//   node benches/page_load.mjs [SITE_ROOT] [HASH_FILE] [BINARY]
//   (defaults: target/site-release, target/release/hash.txt, target/debug/gatehouse)
import { execFileSync } from 'node:child_process';
import { startServer, launch } from '../end2end/helpers.mjs';

const [site = 'target/site-release', hashFile = 'target/release/hash.txt', bin = 'target/debug/gatehouse'] =
  process.argv.slice(2);
process.env.GATEHOUSE_BIN = bin;
const server = await startServer({
  seed: true,
  env: { LEPTOS_SITE_ROOT: site, LEPTOS_HASH_FILE_NAME: `${process.cwd()}/${hashFile}` },
});
const auditor = server.people.find((p) => p.role === 'auditor');
const cookie = execFileSync('node', ['.ci/fuzz-session.mjs', server.base, auditor.email, auditor.password], {
  encoding: 'utf8',
}).trim();
const browser = await launch();
const context = await browser.newContext();
const [name, value] = cookie.split(';')[0].split('=');
await context.addCookies([{ name, value, url: server.base }]);
const page = await context.newPage();
const cdp = await context.newCDPSession(page);
await cdp.send('Network.enable');
let bytes = 0;
const files = new Map();
cdp.on('Network.responseReceived', (e) => {
  if (!e.response.url.startsWith('data:')) files.set(e.requestId, e.response.url.replace(server.base, ''));
});
cdp.on('Network.loadingFinished', (e) => {
  if (!files.has(e.requestId)) return;
  bytes += e.encodedDataLength;
  files.set(e.requestId, `${files.get(e.requestId)} ${e.encodedDataLength}`);
});

async function load(how) {
  bytes = 0;
  files.clear();
  if (how === 'first') await page.goto(`${server.base}/audit`, { waitUntil: 'networkidle' });
  else await page.reload({ waitUntil: 'networkidle' });
  await page.waitForFunction(() => document.documentElement.dataset.hydrated === 'true');
  console.log(`${how} load of /audit: ${bytes} bytes over the network`);
  for (const f of files.values()) console.log(`  ${f}`);
}
await load('first');
await load('repeat');
await browser.close();
await server.stop();
