//! The company's OpenID provider, as discovered at start: its client, and
//! the checks of its ID tokens.

use crate::domain::sso;
use crate::server::platform::config::Oidc;
use openidconnect::{
    core::{CoreClient, CoreIdToken, CoreIdTokenClaims, CoreProviderMetadata},
    ClientId, ClientSecret, EndpointMaybeSet, EndpointNotSet, EndpointSet, IssuerUrl, Nonce, RedirectUrl,
};
use secrecy::ExposeSecret;

pub(super) type Client =
    CoreClient<EndpointSet, EndpointNotSet, EndpointNotSet, EndpointNotSet, EndpointMaybeSet, EndpointMaybeSet>;

/// The provider, as discovered at start.
pub struct Sso {
    pub(super) client: Client,
    pub(super) http: openidconnect::reqwest::Client,
    pub(super) end_session: Option<url::Url>,
    pub(super) trust_amr: Vec<String>,
    pub required: bool,
    pub breakglass: Option<String>,
}

/// Session key for the ID token, kept for RP-initiated logout.
pub const ID_TOKEN_KEY: &str = "sso_id_token";

/// Reads the provider's discovery document. Any failure is one line for
/// the operator; the client secret is never part of it.
pub async fn discover(cfg: &Oidc, public_url: &url::Url) -> Result<Sso, String> {
    let http = openidconnect::reqwest::ClientBuilder::new()
        .redirect(openidconnect::reqwest::redirect::Policy::none())
        .timeout(std::time::Duration::from_secs(10))
        .build()
        .map_err(|e| format!("cannot build an HTTP client: {e}"))?;
    let issuer =
        IssuerUrl::new(cfg.issuer.as_str().trim_end_matches('/').to_owned()).map_err(|e| format!("issuer URL: {e}"))?;
    let meta = CoreProviderMetadata::discover_async(issuer, &http).await.map_err(|e| {
        format!(
            "cannot read the OpenID provider's metadata at {}: {}",
            cfg.issuer,
            discovery_error(&e)
        )
    })?;
    for endpoint in [
        Some(meta.authorization_endpoint().url()),
        meta.token_endpoint().map(|t| t.url()),
    ]
    .into_iter()
    .flatten()
    {
        if !sso::url_allowed(endpoint.scheme(), endpoint.host_str().unwrap_or_default()) {
            return Err(format!("the provider's endpoint {endpoint} is not https"));
        }
    }
    if meta.token_endpoint().is_none() {
        return Err("the provider's metadata has no token_endpoint".into());
    }
    // end_session_endpoint is not part of the core metadata type.
    let raw: serde_json::Value = http
        .get(format!(
            "{}/.well-known/openid-configuration",
            cfg.issuer.as_str().trim_end_matches('/')
        ))
        .send()
        .await
        .map_err(|e| format!("cannot read the OpenID provider's metadata: {e}"))?
        .text()
        .await
        .ok()
        .and_then(|t| serde_json::from_str(&t).ok())
        .ok_or_else(|| "the OpenID provider's metadata is not JSON".to_owned())?;
    let end_session = raw["end_session_endpoint"]
        .as_str()
        .and_then(|s| url::Url::parse(s).ok());
    Sso::from_metadata(meta, cfg, public_url, end_session)
}

impl Sso {
    /// The client for discovered (or, in tests, constructed) metadata.
    pub fn from_metadata(
        meta: CoreProviderMetadata,
        cfg: &Oidc,
        public_url: &url::Url,
        end_session: Option<url::Url>,
    ) -> Result<Self, String> {
        let http = openidconnect::reqwest::ClientBuilder::new()
            .redirect(openidconnect::reqwest::redirect::Policy::none())
            .timeout(std::time::Duration::from_secs(10))
            .build()
            .map_err(|e| format!("cannot build an HTTP client: {e}"))?;
        let mut redirect = public_url.clone();
        redirect.set_path("/auth/oidc/callback");
        let client = CoreClient::from_provider_metadata(
            meta,
            ClientId::new(cfg.client_id.clone()),
            Some(ClientSecret::new(cfg.client_secret.expose_secret().to_owned())),
        )
        .set_redirect_uri(RedirectUrl::new(redirect.to_string()).map_err(|e| format!("redirect URL: {e}"))?);
        Ok(Sso {
            client,
            http,
            end_session,
            trust_amr: cfg.trust_amr.clone(),
            required: cfg.required,
            breakglass: cfg.breakglass.clone(),
        })
    }

    /// The ID token's checks: signature by one of the provider's keys,
    /// issuer, audience (this client), expiry and nonce. The error names
    /// the check that failed, never the token's contents.
    pub fn verify_id_token(&self, token: &CoreIdToken, nonce: &str) -> Result<CoreIdTokenClaims, &'static str> {
        token
            .claims(&self.client.id_token_verifier(), &Nonce::new(nonce.to_owned()))
            .cloned()
            .map_err(|e| id_token_problem(&e))
    }
}

fn discovery_error<E: std::error::Error>(e: &E) -> String {
    let mut s = e.to_string();
    let mut src = e.source();
    while let Some(inner) = src {
        s.push_str(": ");
        s.push_str(&inner.to_string());
        src = inner.source();
    }
    s
}

/// The check that failed, without any token content.
fn id_token_problem(e: &openidconnect::ClaimsVerificationError) -> &'static str {
    use openidconnect::ClaimsVerificationError as E;
    match e {
        E::Expired(_) => "expired",
        E::InvalidAudience(_) => "wrong audience",
        E::InvalidIssuer(_) => "wrong issuer",
        E::InvalidNonce(_) => "wrong nonce",
        E::SignatureVerification(_) => "bad signature",
        E::InvalidAuthTime(_) | E::InvalidAuthContext(_) => "authentication time or context",
        _ => "invalid claims",
    }
}
