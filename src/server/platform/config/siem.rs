//! Where the audit trail is streamed (`GATEHOUSE_SIEM_SINKS`): a
//! comma-separated list of `name=url`, each name 1 to 32 of `a-z0-9_-`:
//!
//! - `syslog+tcp://host:port`: RFC 5424 messages framed by octet counting
//!   (RFC 6587);
//! - `syslog+tls://host:port[?ca=/path/ca.pem]`: the same over TLS (RFC
//!   5425), the server's certificate checked against `ca` or the web's roots;
//! - `file:///path/audit.jsonl[?rotate_bytes=N&keep=K]`: JSON lines, the file
//!   renamed to `.1` (older ones shifted, `keep` kept) once it would pass
//!   `rotate_bytes` (default 100 MiB, 5 kept);
//! - `hec+https://host[:port]/services/collector/event` (`hec+http` only to a
//!   loopback address): Splunk's HTTP Event Collector, with the token in
//!   `GATEHOUSE_SIEM_<NAME>_TOKEN` (the name upper-cased, `-` as `_`).
//!
//! Problems name the sink, never a token.

use super::ConfigError;
use secrecy::SecretString;
use std::path::PathBuf;

pub const VARIABLE: &str = "GATEHOUSE_SIEM_SINKS";

#[derive(Debug, Clone)]
pub struct Sink {
    pub name: String,
    pub target: Target,
}

#[derive(Debug, Clone)]
pub enum Target {
    Syslog {
        host: String,
        port: u16,
        /// `Some` over TLS: the CA file, or `None` for the web's roots.
        tls: Option<Option<PathBuf>>,
    },
    File {
        path: PathBuf,
        rotate_bytes: u64,
        keep: u32,
    },
    Hec {
        url: url::Url,
        token: SecretString,
    },
}

impl Target {
    /// The kind, for /admin and metrics.
    pub fn kind(&self) -> &'static str {
        match self {
            Target::Syslog { tls: None, .. } => "syslog+tcp",
            Target::Syslog { tls: Some(_), .. } => "syslog+tls",
            Target::File { .. } => "file",
            Target::Hec { .. } => "hec",
        }
    }
}

/// The sinks in `raw` (none when unset); `get` reads HEC tokens.
pub fn sinks(raw: Option<&str>, get: &dyn Fn(&str) -> Option<String>) -> Result<Vec<Sink>, ConfigError> {
    let bad = |problem: String| ConfigError {
        variable: VARIABLE,
        problem,
    };
    let mut out: Vec<Sink> = Vec::new();
    for item in raw
        .unwrap_or_default()
        .split(',')
        .map(str::trim)
        .filter(|i| !i.is_empty())
    {
        let (name, url) = item
            .split_once('=')
            .ok_or_else(|| bad(format!("{item:?} must be name=url")))?;
        let name = name.trim().to_owned();
        if name.is_empty()
            || name.len() > 32
            || !name
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-')
        {
            return Err(bad(format!("sink name {name:?} must be 1 to 32 of a-z, 0-9, _ and -")));
        }
        if out.iter().any(|s| s.name == name) {
            return Err(bad(format!("sink {name:?} is named twice")));
        }
        let target = target(&name, url.trim(), get).map_err(|p| bad(format!("sink {name:?}: {p}")))?;
        out.push(Sink { name, target });
    }
    Ok(out)
}

fn target(name: &str, raw: &str, get: &dyn Fn(&str) -> Option<String>) -> Result<Target, String> {
    let url = url::Url::parse(raw).map_err(|_| "is not a URL".to_owned())?;
    let query = |key: &str| url.query_pairs().find(|(k, _)| k == key).map(|(_, v)| v.into_owned());
    let number = |key: &str, default: u64| -> Result<u64, String> {
        query(key).map_or(Ok(default), |v| {
            v.parse::<u64>()
                .ok()
                .filter(|n| *n > 0)
                .ok_or(format!("{key} must be a positive number"))
        })
    };
    match url.scheme() {
        "syslog+tcp" | "syslog+tls" => {
            let host = url.host_str().filter(|h| !h.is_empty()).ok_or("needs a host")?;
            let port = url.port().ok_or("needs a port")?;
            let tls = (url.scheme() == "syslog+tls").then(|| query("ca").map(PathBuf::from));
            if let Some(Some(ca)) = &tls {
                if !ca.is_file() {
                    return Err(format!("ca {} is not a readable file", ca.display()));
                }
            }
            Ok(Target::Syslog {
                host: host.trim_matches(['[', ']']).to_owned(),
                port,
                tls,
            })
        }
        "file" => {
            let path = url.to_file_path().map_err(|()| "needs an absolute path".to_owned())?;
            Ok(Target::File {
                path,
                rotate_bytes: number("rotate_bytes", 100 << 20)?,
                keep: number("keep", 5)?.min(1000) as u32,
            })
        }
        "hec+https" | "hec+http" => {
            let scheme = url.scheme().trim_start_matches("hec+");
            if !crate::domain::sso::url_allowed(scheme, &super::checks::bare_host(&url)) {
                return Err("must be hec+https (hec+http only to a loopback address)".into());
            }
            let variable = format!("GATEHOUSE_SIEM_{}_TOKEN", name.to_ascii_uppercase().replace('-', "_"));
            let token = get(&variable)
                .map(|t| t.trim().to_owned())
                .filter(|t| !t.is_empty())
                .ok_or(format!("needs its token in {variable}"))?;
            let mut http = url::Url::parse(&raw.replacen("hec+", "", 1)).map_err(|_| "is not a URL".to_owned())?;
            http.set_fragment(None);
            Ok(Target::Hec {
                url: http,
                token: SecretString::from(token),
            })
        }
        other => Err(format!(
            "scheme {other:?} is not one of syslog+tcp, syslog+tls, file, hec+https"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(raw: &str) -> Result<Vec<Sink>, String> {
        sinks(Some(raw), &|k| {
            (k == "GATEHOUSE_SIEM_SPLUNK_1_TOKEN").then(|| "s3cret".into())
        })
        .map_err(|e| e.problem)
    }

    #[test]
    fn each_kind_of_sink_is_read_with_its_settings() {
        let s = parse(concat!(
            "soc=syslog+tcp://10.0.0.5:6514, vault=syslog+tls://logs.example.com:6514?ca=/etc/hostname,",
            "disk=file:///var/log/gh.jsonl?rotate_bytes=1000&keep=3,",
            "splunk-1=hec+https://splunk.example.com:8088/services/collector/event"
        ))
        .unwrap();
        assert_eq!(s.len(), 4);
        assert!(matches!(&s[0].target, Target::Syslog { host, port: 6514, tls: None } if host == "10.0.0.5"));
        assert!(
            matches!(&s[1].target, Target::Syslog { tls: Some(Some(ca)), .. } if ca == &PathBuf::from("/etc/hostname"))
        );
        assert!(
            matches!(&s[2].target, Target::File { rotate_bytes: 1000, keep: 3, path } if path == &PathBuf::from("/var/log/gh.jsonl"))
        );
        match &s[3].target {
            Target::Hec { url, token } => {
                assert_eq!(url.as_str(), "https://splunk.example.com:8088/services/collector/event");
                use secrecy::ExposeSecret;
                assert_eq!(token.expose_secret(), "s3cret");
            }
            other => panic!("{other:?}"),
        }
        assert!(parse("").unwrap().is_empty());
    }

    #[test]
    fn bad_sinks_are_refused_with_the_reason_and_never_the_token() {
        assert!(parse("soc").unwrap_err().contains("name=url"));
        assert!(parse("SOC=syslog+tcp://h:1").unwrap_err().contains("a-z"));
        assert!(parse("a=syslog+tcp://h:1,a=syslog+tcp://h:2")
            .unwrap_err()
            .contains("twice"));
        assert!(parse("a=syslog+tcp://h").unwrap_err().contains("port"));
        assert!(parse("a=syslog+tls://h:1?ca=/nonexistent/ca.pem")
            .unwrap_err()
            .contains("ca"));
        assert!(parse("a=ftp://h:1").unwrap_err().contains("scheme"));
        assert!(parse("a=file:///x?keep=0").unwrap_err().contains("keep"));
        assert!(parse("other=hec+https://h/services/collector/event")
            .unwrap_err()
            .contains("GATEHOUSE_SIEM_OTHER_TOKEN"));
        assert!(parse("splunk-1=hec+http://splunk.example.com/x")
            .unwrap_err()
            .contains("loopback"));
        let all = ["a=ftp://h", "splunk-1=hec+http://splunk.example.com/x"].map(|r| parse(r).unwrap_err());
        assert!(all.iter().all(|p| !p.contains("s3cret")));
    }
}
