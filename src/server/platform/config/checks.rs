//! Checks several settings share: booleans, and webhook URLs against their
//! host allow-list.

use super::ConfigError;

/// `true` or `false`, or `default` when unset.
pub(super) fn boolean(variable: &'static str, value: Option<String>, default: bool) -> Result<bool, ConfigError> {
    match value.as_deref() {
        None => Ok(default),
        Some("true") => Ok(true),
        Some("false") => Ok(false),
        Some(other) => Err(ConfigError {
            variable,
            problem: format!("must be true or false, got {other:?}"),
        }),
    }
}

/// The URL's host as compared with allow-lists: lower case, an IPv6
/// address without its brackets.
pub(super) fn bare_host(url: &url::Url) -> String {
    url.host_str()
        .unwrap_or_default()
        .trim_matches(['[', ']'])
        .to_ascii_lowercase()
}

/// A webhook URL from `variable`: https (http only for loopback addresses)
/// to a host listed in `hosts_variable` (comma-separated). Problems never
/// echo the URL, which may carry the webhook's secret.
pub(super) fn allow_listed_url(
    raw: &str,
    variable: &'static str,
    hosts_variable: &'static str,
    var: &impl Fn(&'static str) -> Option<String>,
) -> Result<url::Url, ConfigError> {
    let bad = |problem: String| ConfigError { variable, problem };
    let url = url::Url::parse(raw).map_err(|_| bad("must be a URL".into()))?;
    let host = bare_host(&url);
    if !crate::domain::sso::url_allowed(url.scheme(), &host) {
        return Err(bad("must be https (http only for loopback addresses)".into()));
    }
    let allowed = var(hosts_variable).unwrap_or_default();
    if !allowed
        .split(',')
        .map(|h| h.trim().to_ascii_lowercase())
        .any(|h| !h.is_empty() && h == host)
    {
        return Err(bad(format!("host {host:?} is not in {hosts_variable}")));
    }
    Ok(url)
}
