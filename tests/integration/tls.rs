//! HTTPS served by the real binary: certificates from files (made here with
//! the openssl command), TLS 1.2 and newer only, Secure `__Host-` cookies,
//! a new certificate taken on SIGHUP (a broken one refused, the current
//! one kept), the plain-HTTP listener that only redirects, the container
//! health check over TLS, and a clean exit on SIGTERM.

use crate::helpers::{
    process::{free_port, Process},
    tempdir::Dir,
};
use std::{path::Path, process::Command, time::Duration};

fn openssl(args: &[&str]) {
    let out = Command::new("openssl").args(args).output().unwrap();
    assert!(
        out.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A certificate for localhost and 127.0.0.1 issued by a CA of its own:
/// (the CA's certificate, the server's certificate, its key).
pub(crate) fn certificate(dir: &Path, name: &str) -> (std::path::PathBuf, std::path::PathBuf, std::path::PathBuf) {
    let p = |ext: &str| dir.join(format!("{name}.{ext}"));
    let s = |ext: &str| p(ext).display().to_string();
    let ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes"];
    let ca_subject = format!("/CN=Test CA {name}");
    openssl(
        &[
            &["req", "-x509"][..],
            &ec,
            &[
                "-days",
                "2",
                "-subj",
                &ca_subject,
                "-keyout",
                &s("ca.key"),
                "-out",
                &s("ca.crt"),
            ],
        ]
        .concat(),
    );
    openssl(
        &[
            &["req"][..],
            &ec,
            &["-subj", "/CN=localhost", "-keyout", &s("key"), "-out", &s("csr")],
        ]
        .concat(),
    );
    std::fs::write(
        p("ext"),
        "subjectAltName=DNS:localhost,IP:127.0.0.1\nbasicConstraints=critical,CA:FALSE\nextendedKeyUsage=serverAuth\n",
    )
    .unwrap();
    openssl(&[
        "x509",
        "-req",
        "-in",
        &s("csr"),
        "-CA",
        &s("ca.crt"),
        "-CAkey",
        &s("ca.key"),
        "-CAcreateserial",
        "-days",
        "2",
        "-extfile",
        &s("ext"),
        "-out",
        &s("crt"),
    ]);
    (p("ca.crt"), p("crt"), p("key"))
}

/// A client that trusts only the CA `cert`.
fn trusting(cert: &Path) -> reqwest::Client {
    let pem = std::fs::read(cert).unwrap();
    reqwest::Client::builder()
        .tls_built_in_root_certs(false)
        .add_root_certificate(reqwest::Certificate::from_pem(&pem).unwrap())
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

/// What `openssl s_client` negotiates with the server at that version.
fn handshake(port: u16, version: &str) -> bool {
    let out = Command::new("openssl")
        .args([
            "s_client",
            "-connect",
            &format!("127.0.0.1:{port}"),
            version,
            "-cipher",
            "DEFAULT@SECLEVEL=0",
        ])
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap();
    let said = String::from_utf8_lossy(&out.stdout);
    out.status.success() && said.contains("Cipher is ") && !said.contains("Cipher is (NONE)")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn https_with_rotation_redirect_and_health() {
    let dir = Dir::new();
    let (ca_a, cert_a, key_a) = certificate(&dir.0, "first");
    let (ca_b, cert_b, key_b) = certificate(&dir.0, "second");
    let (cert, key) = (dir.0.join("server.crt"), dir.0.join("server.key"));
    std::fs::copy(&cert_a, &cert).unwrap();
    std::fs::copy(&key_a, &key).unwrap();
    let (port, redirect_port) = (free_port(), free_port());
    let p = Process {
        env: vec![
            ("GATEHOUSE_DATA_DIR".into(), dir.0.display().to_string()),
            (
                "GATEHOUSE_DATABASE_URL".into(),
                format!("sqlite://{}/g.db", dir.0.display()),
            ),
            ("GATEHOUSE_LISTEN".into(), format!("127.0.0.1:{port}")),
            (
                "GATEHOUSE_HTTP_REDIRECT_LISTEN".into(),
                format!("127.0.0.1:{redirect_port}"),
            ),
            ("GATEHOUSE_TLS_CERT_FILE".into(), cert.display().to_string()),
            ("GATEHOUSE_TLS_KEY_FILE".into(), key.display().to_string()),
        ],
    };
    let people = p.run(&["seed-demo"]);
    let person = people
        .lines()
        .find_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            (f.len() == 3 && f[0].contains('@')).then(|| (f[0].to_owned(), f[2].to_owned()))
        })
        .unwrap();
    let mut server = p.serve();
    let base = format!("https://127.0.0.1:{port}");

    let r = trusting(&ca_a).get(format!("{base}/signin")).send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert!(r.headers()["strict-transport-security"]
        .to_str()
        .unwrap()
        .contains("max-age="));
    // A password sign-in starts a session: its cookie is Secure and __Host-.
    let r = trusting(&ca_a)
        .post(format!("{base}/api/sign_in"))
        .form(&[("email", person.0.as_str()), ("password", person.1.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "{}", r.text().await.unwrap());
    let cookie = r.headers()["set-cookie"].to_str().unwrap().to_owned();
    assert!(cookie.starts_with("__Host-gatehouse="), "{cookie}");
    assert!(cookie.contains("; Secure"), "{cookie}");
    assert!(
        trusting(&ca_b).get(format!("{base}/healthz")).send().await.is_err(),
        "the other certificate"
    );
    assert!(handshake(port, "-tls1_2"), "TLS 1.2 must work");
    assert!(handshake(port, "-tls1_3"), "TLS 1.3 must work");
    assert!(!handshake(port, "-tls1_1"), "TLS 1.1 must be refused");
    // Plain HTTP to the TLS port gets no page.
    assert!(reqwest::get(format!("http://127.0.0.1:{port}/signin")).await.is_err());

    // The plain listener only redirects, keeping path and query.
    let r = trusting(&ca_a)
        .get(format!("http://127.0.0.1:{redirect_port}/audit?employee=7"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 308);
    assert_eq!(r.headers()["location"], format!("{base}/audit?employee=7"));

    let health = p.command(&["healthcheck"]).output().unwrap();
    assert!(health.status.success(), "{}", String::from_utf8_lossy(&health.stderr));

    // A renewed certificate, then SIGHUP: new connections get it.
    std::fs::copy(&cert_b, &cert).unwrap();
    std::fs::copy(&key_b, &key).unwrap();
    // SAFETY: signals the child this test started.
    unsafe { libc::kill(server.id() as i32, libc::SIGHUP) };
    let mut rotated = false;
    for _ in 0..50 {
        if trusting(&ca_b).get(format!("{base}/healthz")).send().await.is_ok() {
            rotated = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(rotated, "the second certificate was not taken on SIGHUP");
    assert!(trusting(&ca_a).get(format!("{base}/healthz")).send().await.is_err());

    // A broken file on SIGHUP: refused, the current certificate kept.
    std::fs::write(&cert, "not a certificate").unwrap();
    // SAFETY: as above.
    unsafe { libc::kill(server.id() as i32, libc::SIGHUP) };
    tokio::time::sleep(Duration::from_millis(500)).await;
    let r = trusting(&ca_b).get(format!("{base}/healthz")).send().await.unwrap();
    assert_eq!(r.status(), 200);

    // SAFETY: as above.
    unsafe { libc::kill(server.id() as i32, libc::SIGTERM) };
    assert_eq!(server.wait().unwrap().code(), Some(0));
    let health = p.command(&["healthcheck"]).output().unwrap();
    assert!(!health.status.success(), "a stopped server is not healthy");
}

#[test]
fn half_a_tls_pair_or_a_redirect_without_tls_stops_the_start() {
    let dir = Dir::new();
    let (_, cert, _) = certificate(&dir.0, "only");
    let base = |extra: &[(&str, String)]| {
        let p = Process {
            env: [
                ("GATEHOUSE_DATA_DIR", dir.0.display().to_string()),
                ("GATEHOUSE_DATABASE_URL", format!("sqlite://{}/g.db", dir.0.display())),
            ]
            .into_iter()
            .chain(extra.iter().cloned())
            .map(|(k, v)| (k.to_owned(), v))
            .collect(),
        };
        let out = p.command(&["serve"]).output().unwrap();
        (out.status.code(), String::from_utf8_lossy(&out.stderr).into_owned())
    };
    let (code, said) = base(&[("GATEHOUSE_TLS_CERT_FILE", cert.display().to_string())]);
    assert_eq!(code, Some(2), "{said}");
    assert!(said.contains("GATEHOUSE_TLS_KEY_FILE"), "{said}");
    let (code, said) = base(&[("GATEHOUSE_HTTP_REDIRECT_LISTEN", "127.0.0.1:1".into())]);
    assert_eq!(code, Some(2), "{said}");
    assert!(said.contains("GATEHOUSE_HTTP_REDIRECT_LISTEN"), "{said}");
}
