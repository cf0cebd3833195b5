//! The one outbound HTTP client, for webhooks (alerts, notifications) and
//! SIEM collectors (Splunk HEC).
//! Redirects are never followed: the host allow-list is checked once, at
//! start, against the configured URL. A failure is reported by its kind
//! only, never with the URL (it can carry a secret) or the reply.

use std::time::Duration;

/// How long a receiver has to answer.
const TIMEOUT: Duration = Duration::from_secs(5);

/// A client for one delivery run (a client is not shared between runs: its
/// pooled connections belong to the runtime that made them).
pub fn webhook_client() -> Result<reqwest::Client, String> {
    client(TIMEOUT)
}

/// The same client with another answer deadline (larger batches).
pub fn client(timeout: Duration) -> Result<reqwest::Client, String> {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(timeout)
        .build()
        .map_err(|_| "could not build the HTTP client".to_owned())
}

/// Posts a JSON body with `headers`; any 2xx answer is delivery.
pub async fn post_json(
    client: &reqwest::Client,
    url: &str,
    headers: &[(&'static str, String)],
    body: String,
) -> Result<(), String> {
    let mut request = client.post(url).header("content-type", "application/json");
    for (name, value) in headers {
        request = request.header(*name, value);
    }
    match request.body(body).send().await {
        Ok(resp) if resp.status().is_success() => Ok(()),
        Ok(resp) => Err(format!("status {}", resp.status())),
        Err(e) if e.is_timeout() => Err("timed out".into()),
        Err(_) => Err("could not connect or send".into()),
    }
}
