//! Secrets at rest: AES-256-GCM under the master key, random tokens, and
//! Argon2id password hashing.

use aes_gcm::{
    aead::{Aead, KeyInit, Payload},
    Aes256Gcm, Nonce,
};
use base64::{engine::general_purpose::STANDARD, Engine};
use rand::RngCore;
use secrecy::{ExposeSecret, SecretBox};
use std::path::Path;

/// The master key, with any earlier keys it replaced: secrets are sealed
/// and values signed under the current key only, and opened (or checked)
/// under any of them, so a key can be rotated without a moment in which
/// stored secrets cannot be read (docs/operations.md). Its Debug output
/// never shows a key.
pub struct MasterKey {
    current: SecretBox<[u8; 32]>,
    previous: Vec<SecretBox<[u8; 32]>>,
}

impl std::fmt::Debug for MasterKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "MasterKey([redacted], {} previous)", self.previous.len())
    }
}

#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("the key file {path} cannot be read or written: {source}")]
    Io { path: String, source: std::io::Error },
    #[error("the key file {path} must hold 32 bytes in base64")]
    Malformed { path: String },
    #[error("the key file {path} is readable by other users; run: chmod 600 {path}")]
    Permissions { path: String },
}

/// The key file in the data directory, the one it replaced at the last
/// rotation, and the one a rotation writes before it commits.
pub const KEY_FILE: &str = "master.key";
pub const PREVIOUS_KEY_FILE: &str = "master.key.previous";
pub const NEXT_KEY_FILE: &str = "master.key.next";

impl MasterKey {
    pub fn from_bytes(bytes: [u8; 32]) -> Self {
        Self {
            current: SecretBox::new(Box::new(bytes)),
            previous: Vec::new(),
        }
    }

    pub fn from_base64(b64: &str) -> Option<Self> {
        let bytes = STANDARD.decode(b64.trim().as_bytes()).ok()?;
        let arr: [u8; 32] = bytes.try_into().ok()?;
        Some(Self::from_bytes(arr))
    }

    /// A fresh random key.
    pub fn generate() -> Self {
        Self::from_bytes(random_bytes::<32>())
    }

    /// `self` as the current key, still opening what `older` (and the keys
    /// it replaced) sealed.
    pub fn replacing(mut self, older: MasterKey) -> Self {
        self.previous.push(older.current);
        self.previous.extend(older.previous);
        self
    }

    /// How many earlier keys this one still opens secrets for.
    pub fn previous_keys(&self) -> usize {
        self.previous.len()
    }

    /// The key as base64, for writing a key file.
    fn to_base64(&self) -> String {
        STANDARD.encode(self.current.expose_secret())
    }

    /// The installation's keys: `GATEHOUSE_MASTER_KEY` (and
    /// `GATEHOUSE_MASTER_KEY_PREVIOUS`) when set, otherwise the key files in
    /// the data directory, `master.key` created with mode 0600 on first
    /// start. A `master.key.next` left by an interrupted rotation is opened
    /// too, so nothing it sealed is lost.
    pub fn load(
        configured: Option<&secrecy::SecretString>,
        previous: Option<&secrecy::SecretString>,
        data_dir: &Path,
    ) -> Result<Self, KeyError> {
        use secrecy::ExposeSecret as _;
        let parse = |s: &secrecy::SecretString, name: &str| {
            Self::from_base64(s.expose_secret()).ok_or(KeyError::Malformed { path: name.to_owned() })
        };
        let mut key = match configured {
            Some(k) => parse(k, "GATEHOUSE_MASTER_KEY")?,
            None => {
                let mut key = Self::load_or_create(data_dir)?;
                for file in [PREVIOUS_KEY_FILE, NEXT_KEY_FILE] {
                    if let Some(other) = Self::read_file(&data_dir.join(file))? {
                        key.previous.push(other.current);
                    }
                }
                key
            }
        };
        if let Some(p) = previous {
            key.previous.push(parse(p, "GATEHOUSE_MASTER_KEY_PREVIOUS")?.current);
        }
        Ok(key)
    }

    /// A key file, refused when other users may read it; `None` when absent.
    pub fn read_file(path: &Path) -> Result<Option<Self>, KeyError> {
        use std::os::unix::fs::PermissionsExt;
        let shown = path.display().to_string();
        match std::fs::read_to_string(path) {
            Ok(text) => {
                let io = |source| KeyError::Io {
                    path: shown.clone(),
                    source,
                };
                let mode = std::fs::metadata(path).map_err(io)?.permissions().mode();
                if mode & 0o077 != 0 {
                    return Err(KeyError::Permissions { path: shown });
                }
                Self::from_base64(&text)
                    .map(Some)
                    .ok_or(KeyError::Malformed { path: shown })
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(source) => Err(KeyError::Io { path: shown, source }),
        }
    }

    /// Writes the current key to a new file with mode 0600, on disk before
    /// this returns; an existing file is never overwritten.
    pub fn write_new_file(&self, path: &Path) -> Result<(), KeyError> {
        use std::io::Write;
        use std::os::unix::fs::OpenOptionsExt;
        let io = |source| KeyError::Io {
            path: path.display().to_string(),
            source,
        };
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(path)
            .map_err(io)?;
        f.write_all(self.to_base64().as_bytes()).map_err(io)?;
        f.sync_all().map_err(io)
    }

    /// Loads `master.key` from the data directory, creating it with mode
    /// 0600 on first start.
    pub fn load_or_create(data_dir: &Path) -> Result<Self, KeyError> {
        let path = data_dir.join(KEY_FILE);
        std::fs::create_dir_all(data_dir).map_err(|source| KeyError::Io {
            path: data_dir.display().to_string(),
            source,
        })?;
        if let Some(key) = Self::read_file(&path)? {
            return Ok(key);
        }
        let key = Self::generate();
        key.write_new_file(&path)?;
        Ok(key)
    }

    /// Encrypts under the current key with a fresh random nonce; `context`
    /// is bound as associated data (for example "totp:42"), so a ciphertext
    /// cannot be moved to another row. Output: base64(nonce || ciphertext).
    pub fn seal(&self, context: &str, plaintext: &[u8]) -> String {
        let cipher = Aes256Gcm::new(self.current.expose_secret().into());
        let mut nonce = [0u8; 12];
        rand::rngs::OsRng.fill_bytes(&mut nonce);
        let ct = cipher
            .encrypt(
                Nonce::from_slice(&nonce),
                Payload {
                    msg: plaintext,
                    aad: context.as_bytes(),
                },
            )
            .expect("AES-GCM encryption cannot fail for in-memory buffers");
        let mut out = nonce.to_vec();
        out.extend_from_slice(&ct);
        STANDARD.encode(out)
    }

    fn mac(key: &[u8; 32], purpose: &str, data: &[u8]) -> String {
        use hmac::{Hmac, Mac};
        let mut derive = <Hmac<sha2::Sha256> as Mac>::new_from_slice(key).expect("HMAC takes any key length");
        derive.update(purpose.as_bytes());
        let key = derive.finalize().into_bytes();
        let mut mac = <Hmac<sha2::Sha256> as Mac>::new_from_slice(&key).expect("HMAC takes any key length");
        mac.update(data);
        hex::encode(mac.finalize().into_bytes())
    }

    /// HMAC-SHA256 under a key derived from the current key for `purpose`
    /// (for example "device-cookie"), hex: signs values handed to browsers.
    pub fn sign(&self, purpose: &str, data: &[u8]) -> String {
        Self::mac(self.current.expose_secret(), purpose, data)
    }

    /// Whether `mac` is `sign(purpose, data)` under the current key or one it
    /// replaced (a browser's cookie outlives a rotation).
    pub fn signed(&self, purpose: &str, data: &[u8], mac: &str) -> bool {
        std::iter::once(&self.current)
            .chain(&self.previous)
            .any(|k| constant_time_eq(Self::mac(k.expose_secret(), purpose, data).as_bytes(), mac.as_bytes()))
    }

    /// Decrypts what `seal` produced under the current key or one it
    /// replaced; `None` when no key opens it for this context.
    pub fn open(&self, context: &str, sealed: &str) -> Option<Vec<u8>> {
        let raw = STANDARD.decode(sealed.as_bytes()).ok()?;
        if raw.len() < 12 + 16 {
            return None;
        }
        let (nonce, ct) = raw.split_at(12);
        std::iter::once(&self.current).chain(&self.previous).find_map(|k| {
            Aes256Gcm::new(k.expose_secret().into())
                .decrypt(
                    Nonce::from_slice(nonce),
                    Payload {
                        msg: ct,
                        aad: context.as_bytes(),
                    },
                )
                .ok()
        })
    }
}

/// Why the secrets could not all be sealed again under a new master key.
#[derive(Debug, thiserror::Error)]
pub enum ResealError {
    /// A stored secret, named by table, column and row (never its value),
    /// that neither the current nor a previous key opens.
    #[error("{0} opens with none of the configured master keys")]
    Unopenable(String),
    #[error(transparent)]
    Db(#[from] sqlx::Error),
}

/// A URL-safe random token of `bytes` random bytes.
pub fn random_token(bytes: usize) -> String {
    let mut buf = vec![0u8; bytes];
    rand::rngs::OsRng.fill_bytes(&mut buf);
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(buf)
}

pub fn random_bytes<const N: usize>() -> [u8; N] {
    let mut buf = [0u8; N];
    rand::rngs::OsRng.fill_bytes(&mut buf);
    buf
}

/// Compares two secrets (or their hashes) in time independent of where
/// they differ.
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    use subtle::ConstantTimeEq;
    a.len() == b.len() && bool::from(a.ct_eq(b))
}

pub fn sha256_hex(data: &[u8]) -> String {
    use sha2::{Digest, Sha256};
    hex::encode(Sha256::digest(data))
}

pub mod password {
    //! Argon2id at OWASP's recommended minimum: m = 19 MiB, t = 2, p = 1.
    use argon2::{
        password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString},
        Algorithm, Argon2, Params, Version,
    };
    use std::sync::LazyLock;

    pub const MEMORY_KIB: u32 = 19 * 1024;
    pub const ITERATIONS: u32 = 2;
    pub const PARALLELISM: u32 = 1;

    fn hasher() -> Argon2<'static> {
        let params = Params::new(MEMORY_KIB, ITERATIONS, PARALLELISM, None).expect("valid Argon2 parameters");
        Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
    }

    pub fn hash(password: &str) -> String {
        let salt = SaltString::generate(&mut rand::rngs::OsRng);
        hasher()
            .hash_password(password.as_bytes(), &salt)
            .expect("Argon2 hashing of a bounded password cannot fail")
            .to_string()
    }

    pub fn verify(password: &str, stored: &str) -> bool {
        match PasswordHash::new(stored) {
            Ok(parsed) => hasher().verify_password(password.as_bytes(), &parsed).is_ok(),
            Err(_) => false,
        }
    }

    /// A hash to check against when the account does not exist, so unknown
    /// emails take as long as known ones.
    static DUMMY: LazyLock<String> = LazyLock::new(|| hash("gatehouse timing equaliser"));

    pub fn verify_dummy(password: &str) {
        let _ = verify(password, &DUMMY);
    }

    /// Password hashing for the server, bounded: at most `slots` Argon2
    /// computations run at once (each holds 19 MiB and a core for tens of
    /// milliseconds, off the async workers); others queue up to `wait`, then
    /// are refused (`Busy`: 503 with Retry-After), so a flood of sign-ins
    /// cannot take every core or unbounded memory. Unknown accounts are
    /// verified against a dummy hash through the same queue, so they cost
    /// the same time as known ones.
    pub struct Hasher {
        slots: tokio::sync::Semaphore,
        wait: std::time::Duration,
        computed: std::sync::atomic::AtomicU64,
    }

    /// No hashing slot came free in time.
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    pub struct Busy;

    impl Hasher {
        pub fn new(slots: usize, wait: std::time::Duration) -> Self {
            Self {
                slots: tokio::sync::Semaphore::new(slots.max(1)),
                wait,
                computed: Default::default(),
            }
        }

        /// One slot per core but one (at least one), leaving a core for
        /// page requests; a request waits at most 5 seconds for a slot.
        pub fn for_this_machine() -> Self {
            let cores = std::thread::available_parallelism().map(usize::from).unwrap_or(2);
            Self::new(cores.saturating_sub(1), std::time::Duration::from_secs(5))
        }

        async fn run<T: Send + 'static>(&self, f: impl FnOnce() -> T + Send + 'static) -> Result<T, Busy> {
            let _slot = tokio::time::timeout(self.wait, self.slots.acquire())
                .await
                .map_err(|_| Busy)?
                .map_err(|_| Busy)?;
            self.computed.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            Ok(tokio::task::spawn_blocking(f).await.expect("hashing task"))
        }

        pub async fn hash(&self, password: String) -> Result<String, Busy> {
            self.run(move || hash(&password)).await
        }

        /// Checks `password` against `stored`, or against a dummy hash when
        /// there is none (an unknown account), at the same cost.
        pub async fn verify(&self, password: String, stored: Option<String>) -> Result<bool, Busy> {
            self.run(move || match stored {
                Some(s) => verify(&password, &s),
                None => {
                    verify_dummy(&password);
                    false
                }
            })
            .await
        }

        /// Argon2 computations started so far (hashes and checks).
        pub fn computed(&self) -> u64 {
            self.computed.load(std::sync::atomic::Ordering::Relaxed)
        }
    }

    #[cfg(test)]
    mod tests {
        use super::*;

        #[tokio::test]
        async fn hashing_is_bounded_and_refused_when_no_slot_comes_free() {
            let h = Hasher::new(1, std::time::Duration::from_millis(50));
            let hashed = h.hash("correct horse battery".into()).await.unwrap();
            assert_eq!(h.verify("correct horse battery".into(), Some(hashed)).await, Ok(true));
            assert_eq!(
                h.verify("anything".into(), None).await,
                Ok(false),
                "unknown: checked, refused"
            );
            assert_eq!(h.computed(), 3);
            // Every slot taken: the next one waits, then is refused unstarted.
            let taken = h.slots.acquire().await.unwrap();
            assert_eq!(h.hash("another password".into()).await, Err(Busy));
            assert_eq!(h.computed(), 3);
            drop(taken);
            assert!(h.hash("another password".into()).await.is_ok());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seal_and_open_round_trip_with_context() {
        let k = MasterKey::from_bytes([7; 32]);
        let sealed = k.seal("totp:1", b"secret");
        assert_eq!(k.open("totp:1", &sealed).as_deref(), Some(&b"secret"[..]));
        assert_eq!(k.open("totp:2", &sealed), None, "context is bound");
        assert_eq!(
            MasterKey::from_bytes([8; 32]).open("totp:1", &sealed),
            None,
            "wrong key fails"
        );
        assert_ne!(k.seal("totp:1", b"secret"), sealed, "fresh nonce each time");
        assert!(!format!("{k:?}").contains('7'));
    }

    #[test]
    fn a_rotated_key_seals_under_the_new_key_and_still_opens_the_old() {
        let old = MasterKey::from_bytes([1; 32]);
        let sealed_before = old.seal("totp:1", b"secret");
        let signed_before = old.sign("device-cookie", b"7.n");
        let ring = MasterKey::from_bytes([2; 32]).replacing(MasterKey::from_bytes([1; 32]));
        assert_eq!(ring.previous_keys(), 1);
        assert_eq!(ring.open("totp:1", &sealed_before).as_deref(), Some(&b"secret"[..]));
        assert!(ring.signed("device-cookie", b"7.n", &signed_before));
        assert!(
            !ring.signed("device-cookie", b"8.n", &signed_before),
            "the data is bound"
        );
        let sealed_after = ring.seal("totp:1", b"secret");
        assert_eq!(old.open("totp:1", &sealed_after), None, "new seals use the new key");
        assert_eq!(
            MasterKey::from_bytes([2; 32]).open("totp:1", &sealed_after).as_deref(),
            Some(&b"secret"[..])
        );
        assert_ne!(
            ring.sign("device-cookie", b"7.n"),
            signed_before,
            "new values are signed with the new key"
        );
        assert_eq!(format!("{ring:?}"), "MasterKey([redacted], 1 previous)");
    }

    #[test]
    fn the_data_directory_opens_what_an_interrupted_rotation_sealed() {
        let dir = std::env::temp_dir().join(format!("gh-key-{}", random_token(6)));
        let current = MasterKey::load(None, None, &dir).unwrap();
        let next = MasterKey::generate();
        next.write_new_file(&dir.join(NEXT_KEY_FILE)).unwrap();
        let sealed = next.seal("x", b"y");
        let reloaded = MasterKey::load(None, None, &dir).unwrap();
        assert_eq!(reloaded.open("x", &sealed).as_deref(), Some(&b"y"[..]));
        assert_eq!(reloaded.open("x", &current.seal("x", b"z")).as_deref(), Some(&b"z"[..]));
        assert!(
            next.write_new_file(&dir.join(NEXT_KEY_FILE)).is_err(),
            "a key file is never overwritten"
        );
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn key_file_is_created_with_mode_0600_and_reloaded() {
        use std::os::unix::fs::PermissionsExt;
        let dir = std::env::temp_dir().join(format!("gh-key-{}", random_token(6)));
        let k1 = MasterKey::load_or_create(&dir).unwrap();
        let mode = std::fs::metadata(dir.join("master.key")).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        let k2 = MasterKey::load_or_create(&dir).unwrap();
        let sealed = k1.seal("x", b"y");
        assert_eq!(k2.open("x", &sealed).as_deref(), Some(&b"y"[..]));
        std::fs::set_permissions(dir.join("master.key"), std::fs::Permissions::from_mode(0o644)).unwrap();
        assert!(matches!(
            MasterKey::load_or_create(&dir),
            Err(KeyError::Permissions { .. })
        ));
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn argon2id_parameters_meet_owasp_minimum() {
        let h = password::hash("correct horse battery staple");
        assert!(h.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"), "{h}");
        assert!(password::verify("correct horse battery staple", &h));
        assert!(!password::verify("correct horse battery stapler", &h));
        assert!(!password::verify("x", "not a hash"));
    }
}
