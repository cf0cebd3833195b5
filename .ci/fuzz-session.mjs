// Signs in one employee of the demo company the way a browser does (the
// password, then authenticator enrolment with a code from otplib, the
// independent TOTP implementation the tests use) and prints the session
// cookie, for the API fuzzer's browser-session routes.
//
//   node .ci/fuzz-session.mjs BASE_URL EMAIL PASSWORD
import otplib from 'otplib';

const [base, email, password] = process.argv.slice(2);
let cookie = '';

async function call(name, form) {
  const r = await fetch(`${base}/api/${name}`, {
    method: 'POST',
    headers: { accept: 'application/json', 'content-type': 'application/x-www-form-urlencoded', cookie },
    body: new URLSearchParams(form),
    redirect: 'manual',
  });
  for (const c of r.headers.getSetCookie()) {
    const pair = c.split(';')[0];
    if (pair.split('=')[0].endsWith('gatehouse')) cookie = pair;
  }
  if (r.status >= 400) throw new Error(`${name}: HTTP ${r.status}: ${(await r.text()).slice(0, 200)}`);
  return r.text();
}

await call('sign_in', { email, password });
const { key } = JSON.parse(await call('enrolment', {}));
await call('confirm_enrolment', { code: otplib.authenticator.generate(key.replace(/\s+/g, '')) });
if (!cookie) throw new Error('no session cookie');
console.log(cookie);
