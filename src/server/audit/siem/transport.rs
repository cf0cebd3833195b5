//! How records reach each kind of sink, and what counts as received:
//! syslog (RFC 5424 over TCP with RFC 6587 octet counting, or RFC 5425 TLS)
//! has no acknowledgement (`Sent::Written`, confirmed by the stream's
//! `Window`); a file is received once synced (`Sent::Unsynced`, then
//! `Conn::sync`, which the stream calls as often as it stores its cursor);
//! an HEC batch once answered 2xx (`Sent::Received`). Errors say what failed, never a token, a reply body
//! or a path (they are shown on /admin).

use crate::server::platform::config::siem::Target;
use crate::server::platform::outbound;
use secrecy::ExposeSecret;
use serde_json::Value;
use std::fmt::Write as _;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;

const CONNECT: Duration = Duration::from_secs(5);
const SEND: Duration = Duration::from_secs(10);

pub enum Sent {
    /// Written to a syslog connection: received once it stayed open.
    Written,
    /// Written to the file: received once synced.
    Unsynced,
    Received,
}

/// One record, serialised once for every sink, with what syslog's header
/// and HEC's envelope need.
pub struct Item {
    pub seq: i64,
    pub hash: String,
    pub at: i64,
    pub class_uid: u64,
    pub failed: bool,
    /// The OCSF record as JSON.
    pub json: String,
}

trait Stream: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Stream for T {}

/// A sink's open connection or file, kept between batches.
#[derive(Default)]
pub struct Conn {
    stream: Option<Box<dyn Stream>>,
    file: Option<tokio::fs::File>,
    http: Option<reqwest::Client>,
}

impl Conn {
    /// Drops the connection after a failure; the next batch reconnects.
    pub fn reset(&mut self) {
        *self = Conn::default();
    }

    /// Whether the syslog connection is still open: a closed or reset
    /// connection shows as end of file or an error on a read that would
    /// otherwise wait (receivers never send).
    pub fn open(&mut self) -> bool {
        use futures::FutureExt;
        let Some(s) = self.stream.as_mut() else { return false };
        let mut buf = [0u8; 256];
        match s.read(&mut buf).now_or_never() {
            None => true,
            Some(Ok(n)) => n > 0,
            Some(Err(_)) => false,
        }
    }

    pub async fn send(&mut self, target: &Target, host: &str, items: &[Arc<Item>]) -> Result<Sent, String> {
        match target {
            Target::Syslog { host: to, port, tls } => {
                if self.stream.is_none() {
                    self.stream = Some(connect(to, *port, tls.as_ref()).await?);
                }
                let mut out = Vec::with_capacity(items.len() * 1024);
                for item in items {
                    frame(&mut out, item, host);
                }
                let s = self.stream.as_mut().expect("connected above");
                tokio::time::timeout(SEND, async {
                    s.write_all(&out).await?;
                    s.flush().await
                })
                .await
                .map_err(|_| "syslog receiver did not take the batch within 10 s".to_owned())?
                .map_err(|e| format!("syslog write failed: {}", e.kind()))?;
                Ok(Sent::Written)
            }
            Target::File {
                path,
                rotate_bytes,
                keep,
            } => {
                let mut out = Vec::with_capacity(items.len() * 1024);
                for item in items {
                    out.extend_from_slice(item.json.as_bytes());
                    out.push(b'\n');
                }
                self.append(path, *rotate_bytes, *keep, &out)
                    .await
                    .map_err(|e| format!("cannot write the file: {}", e.kind()))?;
                Ok(Sent::Unsynced)
            }
            Target::Hec { url, token } => {
                if self.http.is_none() {
                    self.http = Some(outbound::client(SEND)?);
                }
                let host = Value::from(host).to_string();
                let mut body = String::with_capacity(items.len() * 1200);
                for item in items {
                    // {"time", "host", "source", "sourcetype", "event"}: the
                    // record is already JSON, so the envelope is written around it.
                    let _ = writeln!(
                        body,
                        "{{\"time\":{},\"host\":{host},\"source\":\"gatehouse\",\"sourcetype\":\"ocsf:{}\",\"event\":{}}}",
                        item.at as f64 / 1000.0,
                        item.class_uid,
                        item.json
                    );
                }
                let client = self.http.as_ref().expect("built above");
                let auth = [("authorization", format!("Splunk {}", token.expose_secret()))];
                outbound::post_json(client, url.as_str(), &auth, body)
                    .await
                    .map_err(|e| format!("HEC: {e}"))?;
                Ok(Sent::Received)
            }
        }
    }

    /// Puts what was written to the file on disk.
    pub async fn sync(&mut self) -> Result<(), String> {
        let Some(f) = self.file.as_mut() else { return Ok(()) };
        f.sync_data()
            .await
            .map_err(|e| format!("cannot write the file: {}", e.kind()))
    }

    /// Appends `bytes`, rotating first when the file would pass
    /// `rotate_bytes` (the file rotated away is synced first).
    async fn append(&mut self, path: &Path, rotate_bytes: u64, keep: u32, bytes: &[u8]) -> std::io::Result<()> {
        let size = tokio::fs::metadata(path).await.map(|m| m.len()).unwrap_or(0);
        if size > 0 && size + bytes.len() as u64 > rotate_bytes {
            if let Some(f) = self.file.take() {
                f.sync_data().await?;
            }
            rotate(path, keep).await?;
        }
        if self.file.is_none() {
            let mut open = tokio::fs::OpenOptions::new();
            open.create(true).append(true);
            #[cfg(unix)]
            open.mode(0o640);
            self.file = Some(open.open(path).await?);
        }
        let f = self.file.as_mut().expect("opened above");
        f.write_all(bytes).await?;
        // tokio's File hands writes to a blocking thread: wait for it.
        f.flush().await
    }
}

/// `path.{keep-1}` → `path.{keep}` … `path` → `path.1`; the oldest beyond
/// `keep` is removed.
async fn rotate(path: &Path, keep: u32) -> std::io::Result<()> {
    let nth = |n: u32| {
        let mut p = path.as_os_str().to_owned();
        p.push(format!(".{n}"));
        std::path::PathBuf::from(p)
    };
    let _ = tokio::fs::remove_file(nth(keep)).await;
    for n in (1..keep).rev() {
        if tokio::fs::try_exists(nth(n)).await.unwrap_or(false) {
            tokio::fs::rename(nth(n), nth(n + 1)).await?;
        }
    }
    tokio::fs::rename(path, nth(1)).await
}

async fn connect(host: &str, port: u16, tls: Option<&Option<std::path::PathBuf>>) -> Result<Box<dyn Stream>, String> {
    let tcp = tokio::time::timeout(CONNECT, TcpStream::connect((host, port)))
        .await
        .map_err(|_| format!("syslog receiver {host}:{port} did not accept within 5 s"))?
        .map_err(|e| format!("cannot connect to syslog receiver {host}:{port}: {}", e.kind()))?;
    let _ = tcp.set_nodelay(true);
    let Some(ca) = tls else { return Ok(Box::new(tcp)) };
    let config = client_config(ca.as_deref())?;
    let name = rustls::pki_types::ServerName::try_from(host.to_owned())
        .map_err(|_| format!("{host} is not a valid TLS server name"))?;
    let stream = tokio::time::timeout(CONNECT, tokio_rustls::TlsConnector::from(config).connect(name, tcp))
        .await
        .map_err(|_| format!("TLS handshake with {host}:{port} took over 5 s"))?
        .map_err(|e| format!("TLS handshake with {host}:{port} failed: {e}"))?;
    Ok(Box::new(stream))
}

fn client_config(ca: Option<&Path>) -> Result<Arc<rustls::ClientConfig>, String> {
    use rustls::pki_types::{pem::PemObject, CertificateDer};
    let mut roots = rustls::RootCertStore::empty();
    match ca {
        Some(ca) => {
            for cert in CertificateDer::pem_file_iter(ca).map_err(|_| "cannot read the CA file".to_owned())? {
                let cert = cert.map_err(|_| "the CA file is not PEM certificates".to_owned())?;
                roots
                    .add(cert)
                    .map_err(|_| "the CA file holds a certificate that is not a usable CA".to_owned())?;
            }
        }
        None => roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned()),
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
        .map_err(|_| "TLS versions unavailable".to_owned())?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(Arc::new(config))
}

/// One RFC 5424 message, framed by octet counting (RFC 6587 3.4.1):
/// `LEN SP <PRI>1 TIMESTAMP HOST gatehouse - CLASS [gatehouse@32473 seq hash] BOM JSON`.
/// Facility 13 (log audit); severity notice (5), warning (4) when refused
/// or failed. 32473 is the enterprise number RFC 5612 sets aside for
/// examples: Gatehouse has none of its own.
pub fn frame(out: &mut Vec<u8>, item: &Item, host: &str) {
    let pri = 13 * 8 + if item.failed { 4 } else { 5 };
    let host: String = host.chars().filter(|c| c.is_ascii_graphic()).take(255).collect();
    let host = if host.is_empty() { "-".to_owned() } else { host };
    let mut msg = format!(
        "<{pri}>1 {} {host} gatehouse - {} [gatehouse@32473 seq=\"{}\" hash=\"{}\"] \u{feff}",
        timestamp(item.at),
        item.class_uid,
        item.seq,
        item.hash
    )
    .into_bytes();
    msg.extend_from_slice(item.json.as_bytes());
    out.extend_from_slice(format!("{} ", msg.len()).as_bytes());
    out.extend_from_slice(&msg);
}

/// RFC 3339 in UTC with milliseconds, as RFC 5424 wants.
fn timestamp(ms: i64) -> String {
    let t = time::OffsetDateTime::from_unix_timestamp_nanos(ms as i128 * 1_000_000)
        .unwrap_or(time::OffsetDateTime::UNIX_EPOCH);
    let f = time::macros::format_description!("[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:3]Z");
    t.format(&f).unwrap_or_else(|_| "-".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_syslog_frame_counts_its_octets_and_carries_seq_and_hash() {
        let item = Item {
            seq: 7,
            hash: "ab".repeat(32),
            at: 1_700_000_000_123,
            class_uid: 3002,
            failed: true,
            json: r#"{"é":1}"#.to_owned(),
        };
        let mut out = Vec::new();
        frame(&mut out, &item, "gate house.example");
        let text = String::from_utf8(out).unwrap();
        let (len, msg) = text.split_once(' ').unwrap();
        assert_eq!(len.parse::<usize>().unwrap(), msg.len());
        assert!(msg.starts_with(
            "<108>1 2023-11-14T22:13:20.123Z gatehouse.example gatehouse - 3002 [gatehouse@32473 seq=\"7\" hash=\""
        ));
        assert!(msg.ends_with("\"] \u{feff}{\"é\":1}"));
    }
}
