//! API keys: the token format, the keys file (hashes only) and the live key
//! ring the server checks every call against.
//!
//! A token is `exp_<id>_<secret>`: 8 random bytes of id and 32 of secret,
//! hex. The file stores the id (so a call is matched by id, not by scanning
//! every key), the name, the role and the SHA-256 of the whole token; the
//! token itself is printed once, when it is created, and stored nowhere. A
//! secret of 256 random bits needs no slow password hash: there is nothing
//! to guess from its hash.

use std::collections::HashMap;
use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::RwLock;
use std::time::SystemTime;

use anyhow::Context;
use contracts::Principal;
use contracts::access::Role;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

const PREFIX: &str = "exp_";
const ID_BYTES: usize = 8;
const SECRET_BYTES: usize = 32;
const MAX_NAME_LEN: usize = 64;

fn is_hex(text: &str, len: usize) -> bool {
    text.len() == len && text.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

fn random_hex(len: usize) -> anyhow::Result<String> {
    let mut bytes = vec![0u8; len];
    getrandom::fill(&mut bytes).map_err(|e| anyhow::anyhow!("no randomness: {e}"))?;
    Ok(hex::encode(bytes))
}

fn sha256(token: &str) -> [u8; 32] {
    Sha256::digest(token.as_bytes()).into()
}

/// Equal in time independent of where the inputs differ.
fn constant_time_eq(a: &[u8; 32], b: &[u8; 32]) -> bool {
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

fn parse_hash(text: &str) -> Option<[u8; 32]> {
    if !is_hex(text, 64) {
        return None;
    }
    let mut out = [0u8; 32];
    for (i, byte) in out.iter_mut().enumerate() {
        *byte = u8::from_str_radix(text.get(2 * i..2 * i + 2)?, 16).ok()?;
    }
    Some(out)
}

/// A freshly made token and its id.
pub struct NewToken {
    pub id: String,
    pub token: String,
}

impl NewToken {
    pub fn generate() -> anyhow::Result<Self> {
        let id = random_hex(ID_BYTES)?;
        let secret = random_hex(SECRET_BYTES)?;
        Ok(Self {
            token: format!("{PREFIX}{id}_{secret}"),
            id,
        })
    }

    pub fn sha256_hex(&self) -> String {
        hex::encode(sha256(&self.token))
    }
}

/// The key id of a well-formed token.
pub fn token_id(token: &str) -> Option<&str> {
    let (id, secret) = token.strip_prefix(PREFIX)?.split_once('_')?;
    (is_hex(id, 2 * ID_BYTES) && is_hex(secret, 2 * SECRET_BYTES)).then_some(id)
}

/// A key's name: what is recorded as the principal of its calls.
pub fn check_name(name: &str) -> Result<(), String> {
    if name.is_empty() || name.len() > MAX_NAME_LEN {
        return Err(format!("a key name has 1 to {MAX_NAME_LEN} characters"));
    }
    if !name
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-' | '@'))
    {
        return Err(format!(
            "{name:?}: a key name has letters, digits, '.', '_', '-' and '@' only"
        ));
    }
    if name == contracts::principal::LOCAL_PRINCIPAL {
        return Err("\"local\" is the caller of a server without keys".into());
    }
    Ok(())
}

/// The team a key leads (`--manages`): 1 to 128 bytes of printable text, as
/// the credit service's team names.
pub fn check_team(team: &str) -> Result<(), String> {
    if team.is_empty() || team.len() > 128 {
        return Err("a team name has 1 to 128 bytes".into());
    }
    if team.chars().any(char::is_control) {
        return Err(format!("{team:?}: a team name has no control characters"));
    }
    Ok(())
}

/// One key as the keys file stores it.
///
/// A file written before keys could lead a team has no `manages`: those keys
/// load as they are and manage nothing, so they read only what their name's
/// own rows are (or everything, for revops, admin and connector).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoredKey {
    pub id: String,
    /// The person (or system) the key is bound to; unique among the keys not
    /// revoked.
    pub name: String,
    pub role: String,
    /// The team whose credit a csm or ae key may read besides its own.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub manages: Option<String>,
    /// SHA-256 of the whole token, hex.
    pub sha256: String,
    /// RFC 3339, UTC.
    pub created_at: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revoked_at: Option<String>,
}

/// The keys file: `{"keys": [...]}`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeysFile {
    pub keys: Vec<StoredKey>,
}

impl KeysFile {
    /// The file at `path`; none there is no keys.
    pub fn load(path: &Path) -> anyhow::Result<Self> {
        match fs::read(path) {
            Ok(bytes) => {
                Self::parse(&bytes).with_context(|| format!("keys file {}", path.display()))
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Self::default()),
            Err(e) => Err(e).with_context(|| format!("reading keys file {}", path.display())),
        }
    }

    fn parse(bytes: &[u8]) -> anyhow::Result<Self> {
        let file: KeysFile = serde_json::from_slice(bytes).context("not a keys file")?;
        file.entries()?;
        Ok(file)
    }

    /// The keys as the ring checks them, by id; every row must be well formed.
    fn entries(&self) -> anyhow::Result<HashMap<String, Entry>> {
        let mut out = HashMap::new();
        for key in &self.keys {
            anyhow::ensure!(
                is_hex(&key.id, 2 * ID_BYTES),
                "key id {:?} is malformed",
                key.id
            );
            check_name(&key.name).map_err(|e| anyhow::anyhow!("key {}: {e}", key.id))?;
            let role =
                Role::parse(&key.role).map_err(|e| anyhow::anyhow!("key {}: {e}", key.id))?;
            let hash = parse_hash(&key.sha256)
                .with_context(|| format!("key {}: sha256 is not 64 hex digits", key.id))?;
            if let Some(team) = &key.manages {
                check_team(team).map_err(|e| anyhow::anyhow!("key {}: {e}", key.id))?;
            }
            let entry = Entry {
                principal: Principal::new(key.name.clone(), role).managing(key.manages.clone()),
                hash,
                revoked: key.revoked_at.is_some(),
            };
            anyhow::ensure!(
                out.insert(key.id.clone(), entry).is_none(),
                "key id {} appears twice",
                key.id
            );
        }
        Ok(out)
    }

    /// Keys not revoked.
    pub fn active(&self) -> usize {
        self.keys.iter().filter(|k| k.revoked_at.is_none()).count()
    }

    /// Writes the file whole: a temporary file beside it (with the mode of
    /// the file it replaces, 0600 for a new one), synced, then renamed over
    /// it, so a reader sees the old file or the new one, never half of one.
    fn save(&self, path: &Path) -> anyhow::Result<()> {
        let dir = parent(path);
        let tmp = dir.join(format!(
            ".{}.{}.tmp",
            path.file_name().and_then(|n| n.to_str()).unwrap_or("keys"),
            std::process::id()
        ));
        let mut bytes = serde_json::to_vec_pretty(self)?;
        bytes.push(b'\n');
        let mut options = OpenOptions::new();
        options.write(true).create(true).truncate(true);
        #[cfg(unix)]
        let mode = {
            use std::os::unix::fs::PermissionsExt;
            fs::metadata(path).map_or(0o600, |m| m.permissions().mode() & 0o777)
        };
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, mode);
        let mut file = options
            .open(&tmp)
            .with_context(|| format!("creating {}", tmp.display()))?;
        // Exactly that mode, whatever the umask says.
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            file.set_permissions(fs::Permissions::from_mode(mode))?;
        }
        file.write_all(&bytes)?;
        file.sync_all()?;
        drop(file);
        fs::rename(&tmp, path).with_context(|| format!("replacing {}", path.display()))?;
        // The rename itself survives a crash once the folder is synced.
        if let Ok(dir) = File::open(&dir) {
            let _ = dir.sync_all();
        }
        Ok(())
    }

    /// Reads, changes and writes the file under an exclusive lock, so two
    /// `expansion keys` commands at once do not lose each other's change.
    pub fn update<T>(
        path: &Path,
        change: impl FnOnce(&mut KeysFile) -> anyhow::Result<T>,
    ) -> anyhow::Result<T> {
        let dir = parent(path);
        fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
        let lock_path = path.with_extension("lock");
        let lock = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(false)
            .open(&lock_path)
            .with_context(|| format!("opening {}", lock_path.display()))?;
        lock.lock()
            .with_context(|| format!("locking {}", lock_path.display()))?;
        let mut file = Self::load(path)?;
        let out = change(&mut file)?;
        file.save(path)?;
        Ok(out)
    }
}

/// Sets the keys file's mode (`keys create --file-mode`): later writes keep it.
#[cfg(unix)]
pub fn set_file_mode(path: &Path, mode: u32) -> anyhow::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    fs::set_permissions(path, fs::Permissions::from_mode(mode))
        .with_context(|| format!("setting the mode of {}", path.display()))
}

fn parent(path: &Path) -> PathBuf {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_owned(),
        _ => PathBuf::from("."),
    }
}

/// A key as the ring checks it.
#[derive(Debug, Clone)]
struct Entry {
    principal: Principal,
    hash: [u8; 32],
    revoked: bool,
}

/// What identifies one version of the keys file: a rename (every write)
/// changes the inode, an edit in place the time or the length.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Stamp {
    modified: Option<SystemTime>,
    len: u64,
    inode: u64,
}

fn stamp(path: &Path) -> std::io::Result<Option<Stamp>> {
    match fs::metadata(path) {
        Ok(meta) => {
            #[cfg(unix)]
            let inode = std::os::unix::fs::MetadataExt::ino(&meta);
            #[cfg(not(unix))]
            let inode = 0;
            Ok(Some(Stamp {
                modified: meta.modified().ok(),
                len: meta.len(),
                inode,
            }))
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e),
    }
}

#[derive(Debug, Default)]
struct Snapshot {
    stamp: Option<Stamp>,
    keys: HashMap<String, Entry>,
}

/// Why a call's credential was not accepted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// No `authorization` metadata.
    Missing,
    /// Not `Bearer exp_…` in the token format.
    Malformed,
    /// No key with that id and secret.
    Unknown,
    /// A key that was revoked.
    Revoked,
    /// The server must have keys (it listens beyond loopback) and has none.
    NoKeys,
}

/// The keys a server accepts: those of the keys file, re-read when it
/// changes, plus credentials this process minted for its own calls (kept in
/// memory only).
#[derive(Debug)]
pub struct KeyRing {
    path: PathBuf,
    /// Listening beyond loopback: no keys means no calls, never an open server.
    must_have_keys: bool,
    snapshot: RwLock<Snapshot>,
    internal: HashMap<String, Entry>,
}

impl KeyRing {
    /// Loads the keys file; a file that is there but unreadable or malformed
    /// is an error (the server must not start on keys it cannot read).
    pub fn load(path: &Path, must_have_keys: bool) -> anyhow::Result<Self> {
        let stamp = stamp(path).with_context(|| format!("keys file {}", path.display()))?;
        let file = KeysFile::load(path)?;
        Ok(Self {
            path: path.to_owned(),
            must_have_keys,
            snapshot: RwLock::new(Snapshot {
                stamp,
                keys: file.entries()?,
            }),
            internal: HashMap::new(),
        })
    }

    /// Whether the keys file holds any key (revoked ones count: a file whose
    /// every key is revoked still means "keys required").
    pub fn has_keys(&self) -> bool {
        self.snapshot
            .read()
            .map(|s| !s.keys.is_empty())
            .unwrap_or(true)
    }

    /// Mints a credential for this process's own calls; it lives in memory
    /// only and dies with the process.
    pub fn mint_internal(&mut self, name: &str, role: Role) -> anyhow::Result<String> {
        let token = NewToken::generate()?;
        self.internal.insert(
            token.id.clone(),
            Entry {
                principal: Principal::new(name, role),
                hash: sha256(&token.token),
                revoked: false,
            },
        );
        Ok(token.token)
    }

    /// Re-reads the keys file if it changed since the last look. A file
    /// that became unreadable or malformed keeps the keys in force (and is
    /// reported), so a bad edit locks no one out and opens nothing up.
    pub fn refresh(&self) {
        let current = match stamp(&self.path) {
            Ok(s) => s,
            Err(err) => {
                tracing::error!(file = %self.path.display(), %err, "cannot look at the keys file; keeping the keys in force");
                return;
            }
        };
        let unchanged = self
            .snapshot
            .read()
            .map(|s| s.stamp == current)
            .unwrap_or(false);
        if unchanged {
            return;
        }
        let loaded = KeysFile::load(&self.path).and_then(|f| Ok((f.entries()?, f.active())));
        match loaded {
            Ok((keys, active)) => {
                tracing::info!(file = %self.path.display(), keys = keys.len(), active, "API keys reloaded");
                if let Ok(mut s) = self.snapshot.write() {
                    *s = Snapshot {
                        stamp: current,
                        keys,
                    };
                }
            }
            Err(err) => {
                tracing::error!(file = %self.path.display(), err = %format!("{err:#}"), "the keys file is unreadable; keeping the keys in force");
                // Reported once per change of the file.
                if let Ok(mut s) = self.snapshot.write() {
                    s.stamp = current;
                }
            }
        }
    }

    /// Who presents `authorization` (the raw metadata value): `Ok(None)`
    /// when the server has no keys and listens on loopback only (every
    /// caller is local).
    pub fn identify(&self, authorization: Option<&[u8]>) -> Result<Option<Principal>, Refusal> {
        let Ok(snapshot) = self.snapshot.read() else {
            return Err(Refusal::NoKeys);
        };
        if snapshot.keys.is_empty() {
            return if self.must_have_keys {
                Err(Refusal::NoKeys)
            } else {
                Ok(None)
            };
        }
        let value = authorization.ok_or(Refusal::Missing)?;
        let text = std::str::from_utf8(value).map_err(|_| Refusal::Malformed)?;
        let (scheme, token) = text.trim().split_once(' ').ok_or(Refusal::Malformed)?;
        if !scheme.eq_ignore_ascii_case("bearer") {
            return Err(Refusal::Malformed);
        }
        let token = token.trim();
        let id = token_id(token).ok_or(Refusal::Malformed)?;
        let entry = snapshot
            .keys
            .get(id)
            .or_else(|| self.internal.get(id))
            .ok_or(Refusal::Unknown)?;
        if !constant_time_eq(&entry.hash, &sha256(token)) {
            return Err(Refusal::Unknown);
        }
        if entry.revoked {
            return Err(Refusal::Revoked);
        }
        Ok(Some(entry.principal.clone()))
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn add_key(path: &Path, name: &str, role: Role) -> NewToken {
        let token = NewToken::generate().unwrap();
        KeysFile::update(path, |file| {
            file.keys.push(StoredKey {
                id: token.id.clone(),
                name: name.into(),
                role: role.as_str().into(),
                sha256: token.sha256_hex(),
                created_at: "2026-01-01T00:00:00Z".into(),
                revoked_at: None,
                manages: None,
            });
            Ok(())
        })
        .unwrap();
        token
    }

    fn bearer(token: &str) -> Vec<u8> {
        format!("Bearer {token}").into_bytes()
    }

    #[test]
    fn tokens_carry_their_id_and_only_their_hash_is_stored() {
        let a = NewToken::generate().unwrap();
        let b = NewToken::generate().unwrap();
        assert_ne!(a.token, b.token);
        assert_eq!(token_id(&a.token), Some(a.id.as_str()));
        assert_eq!(a.token.len(), 4 + 16 + 1 + 64);
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("keys.json");
        let token = add_key(&path, "alex.ae", Role::Ae);
        let text = fs::read_to_string(&path).unwrap();
        assert!(!text.contains(&token.token[20..]), "the secret is stored");
        assert!(text.contains(&token.sha256_hex()));
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = fs::metadata(&path).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode, 0o600);
            // A mode set for a container's user survives the next write.
            set_file_mode(&path, 0o644).unwrap();
            add_key(&path, "ben.ae", Role::Ae);
            let mode = fs::metadata(&path).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode, 0o644);
        }
    }

    #[test]
    fn malformed_tokens_are_refused_before_any_lookup() {
        for bad in [
            "",
            "exp_",
            "exp_0123456789abcdef",
            "exp_0123456789abcdef_short",
            "key_0123456789abcdef_0000000000000000000000000000000000000000000000000000000000000000",
            "exp_0123456789ABCDEF_0000000000000000000000000000000000000000000000000000000000000000",
        ] {
            assert_eq!(token_id(bad), None, "{bad}");
        }
    }

    #[test]
    fn names_are_plain_and_local_is_reserved() {
        assert!(check_name("carla.csm").is_ok());
        assert!(check_name("crm-connector@eu_1").is_ok());
        assert!(check_name("").is_err());
        assert!(check_name("local").is_err());
        assert!(check_name("a b").is_err());
        assert!(check_name("service:pipeline").is_err());
        assert!(check_name(&"x".repeat(65)).is_err());
    }

    #[test]
    fn the_ring_knows_keys_refuses_others_and_sees_revocation() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("keys.json");
        let viewer = add_key(&path, "vera", Role::Viewer);
        let ring = KeyRing::load(&path, false).unwrap();
        assert_eq!(
            ring.identify(Some(&bearer(&viewer.token))).unwrap(),
            Some(Principal::new("vera", Role::Viewer))
        );
        // The scheme is case-insensitive.
        let lower = format!("bearer {}", viewer.token).into_bytes();
        assert!(ring.identify(Some(&lower)).is_ok());
        assert_eq!(ring.identify(None), Err(Refusal::Missing));
        assert_eq!(
            ring.identify(Some(viewer.token.as_bytes())),
            Err(Refusal::Malformed)
        );
        // The right id with another secret.
        let forged = format!("exp_{}_{}", viewer.id, "0".repeat(64));
        assert_eq!(ring.identify(Some(&bearer(&forged))), Err(Refusal::Unknown));
        let stranger = NewToken::generate().unwrap();
        assert_eq!(
            ring.identify(Some(&bearer(&stranger.token))),
            Err(Refusal::Unknown)
        );

        KeysFile::update(&path, |f| {
            f.keys[0].revoked_at = Some("2026-01-02T00:00:00Z".into());
            Ok(())
        })
        .unwrap();
        ring.refresh();
        assert_eq!(
            ring.identify(Some(&bearer(&viewer.token))),
            Err(Refusal::Revoked)
        );
    }

    #[test]
    fn without_keys_loopback_is_open_and_anything_else_is_shut() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("keys.json");
        let open = KeyRing::load(&path, false).unwrap();
        assert!(!open.has_keys());
        assert_eq!(open.identify(None), Ok(None));
        let shut = KeyRing::load(&path, true).unwrap();
        assert_eq!(shut.identify(None), Err(Refusal::NoKeys));
    }

    #[test]
    fn internal_credentials_work_beside_the_file_and_survive_reloads() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("keys.json");
        add_key(&path, "root", Role::Admin);
        let mut ring = KeyRing::load(&path, false).unwrap();
        let own = ring
            .mint_internal("service:pipeline", Role::Connector)
            .unwrap();
        add_key(&path, "second", Role::Viewer);
        ring.refresh();
        assert_eq!(
            ring.identify(Some(&bearer(&own))).unwrap(),
            Some(Principal::new("service:pipeline", Role::Connector))
        );
    }

    #[test]
    fn a_file_from_before_teams_loads_and_its_keys_manage_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("keys.json");
        let token = NewToken::generate().unwrap();
        let old = format!(
            r#"{{"keys": [{{"id": "{}", "name": "ana.ae", "role": "ae", "sha256": "{}",
                "created_at": "2026-01-01T00:00:00Z"}}]}}"#,
            token.id,
            token.sha256_hex()
        );
        fs::write(&path, old).unwrap();
        let ring = KeyRing::load(&path, false).unwrap();
        let principal = ring.identify(Some(&bearer(&token.token))).unwrap().unwrap();
        assert_eq!(principal, Principal::new("ana.ae", Role::Ae));
        assert_eq!(principal.manages, None);
        // A key that leads a team carries it into its principal.
        KeysFile::update(&path, |f| {
            f.keys[0].manages = Some("enterprise-sales".into());
            Ok(())
        })
        .unwrap();
        ring.refresh();
        let principal = ring.identify(Some(&bearer(&token.token))).unwrap().unwrap();
        assert_eq!(principal.manages.as_deref(), Some("enterprise-sales"));
        assert_eq!(principal.person(), "ana.ae");
    }

    #[test]
    fn a_broken_file_keeps_the_keys_in_force() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("keys.json");
        let admin = add_key(&path, "root", Role::Admin);
        let ring = KeyRing::load(&path, false).unwrap();
        fs::write(&path, "{ not json").unwrap();
        ring.refresh();
        assert!(ring.identify(Some(&bearer(&admin.token))).is_ok());
        assert!(KeyRing::load(&path, false).is_err());
    }

    #[test]
    fn a_malformed_row_is_an_error_not_a_skipped_key() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("keys.json");
        let token = add_key(&path, "root", Role::Admin);
        let text = fs::read_to_string(&path)
            .unwrap()
            .replace("admin", "superuser");
        fs::write(&path, text).unwrap();
        let err = format!("{:#}", KeyRing::load(&path, false).unwrap_err());
        assert!(err.contains("unknown role \"superuser\""), "{err}");
        let _ = token;
    }
}
