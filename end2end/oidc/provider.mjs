// A real OpenID provider (npm oidc-provider) for the SSO tests. Started by
// the integration and end-to-end tests; prints "ISSUER <url>" once it
// listens on a free loopback port.
//
// Environment: REDIRECT_URIS (comma-separated, required), CLIENT_SECRET
// (required). The test decides who signs in next, and with which
// authentication methods, through GET /test/next-login?sub=&email=&verified=&amr=
// (the provider's own login screen is replaced by that choice).
import http from 'node:http';
import Provider from 'oidc-provider';

const redirectUris = (process.env.REDIRECT_URIS || '').split(',').filter(Boolean);
const secret = process.env.CLIENT_SECRET;
if (!redirectUris.length || !secret) {
  console.error('REDIRECT_URIS and CLIENT_SECRET are required');
  process.exit(2);
}

const accounts = new Map();
let nextLogin = null;

const server = http.createServer();
await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
const issuer = `http://127.0.0.1:${server.address().port}`;

const provider = new Provider(issuer, {
  clients: [
    {
      client_id: 'gatehouse',
      client_secret: secret,
      redirect_uris: redirectUris,
      post_logout_redirect_uris: redirectUris.map((u) => new URL('/signin', u).toString()),
      response_types: ['code'],
      grant_types: ['authorization_code'],
    },
    // Another application of the same provider, for audience tests.
    {
      client_id: 'other-app',
      client_secret: `${secret}-other`,
      redirect_uris: redirectUris,
      response_types: ['code'],
      grant_types: ['authorization_code'],
    },
  ],
  pkce: { required: () => true, methods: ['S256'] },
  // amr and auth_time in every ID token, as the common providers do.
  claims: { acr: null, sid: null, openid: ['sub', 'amr', 'auth_time'], email: ['email', 'email_verified'], profile: ['name'] },
  features: { devInteractions: { enabled: false }, rpInitiatedLogout: { enabled: true } },
  interactions: { url: (ctx, interaction) => `/interaction/${interaction.uid}` },
  // ID token claims even when an access token is issued too.
  conformIdTokenClaims: false,
  async findAccount(ctx, sub) {
    const a = accounts.get(sub);
    if (!a) return undefined;
    return { accountId: sub, async claims() { return { sub, email: a.email, email_verified: a.verified, name: a.name }; } };
  },
  cookies: { keys: ['gatehouse-test-provider-cookie-key'] },
});
provider.proxy = false;

const callback = provider.callback();
server.on('request', async (req, res) => {
  const url = new URL(req.url, issuer);
  try {
    if (url.pathname === '/test/next-login') {
      const sub = url.searchParams.get('sub');
      accounts.set(sub, {
        email: url.searchParams.get('email'),
        verified: url.searchParams.get('verified') !== 'false',
        name: url.searchParams.get('name') || 'Test Person',
      });
      const amr = url.searchParams.get('amr');
      nextLogin = { sub, amr: amr ? amr.split(',') : undefined };
      res.writeHead(204).end();
      return;
    }
    if (url.pathname.startsWith('/interaction/')) {
      const details = await provider.interactionDetails(req, res);
      if (details.prompt.name === 'login') {
        if (!nextLogin) {
          res.writeHead(400, { 'content-type': 'text/plain' }).end('no next login set');
          return;
        }
        const login = { accountId: nextLogin.sub, amr: nextLogin.amr, remember: false };
        await provider.interactionFinished(req, res, { login }, { mergeWithLastSubmission: false });
        return;
      }
      const grant = new provider.Grant({ accountId: details.session.accountId, clientId: details.params.client_id });
      grant.addOIDCScope(details.params.scope);
      const grantId = await grant.save();
      await provider.interactionFinished(req, res, { consent: { grantId } }, { mergeWithLastSubmission: true });
      return;
    }
    callback(req, res);
  } catch (e) {
    console.error(e);
    res.writeHead(500).end(String(e.message));
  }
});

console.log(`ISSUER ${issuer}`);
