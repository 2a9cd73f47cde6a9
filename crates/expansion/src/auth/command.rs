//! `expansion keys create|list|revoke`: API keys in the keys file. A running
//! server sees every change within about a second, without a restart.

use std::path::{Path, PathBuf};

use clap::{Args, Subcommand};
use contracts::access::Role;

use super::keys::{KeysFile, NewToken, StoredKey, check_name, check_team};

#[derive(Debug, Subcommand)]
pub enum KeysCommand {
    /// Create a key and print its token, once: only its hash is stored.
    Create(CreateArgs),
    /// List keys: id, name, role, created, revoked (never a token).
    List(FileArgs),
    /// Revoke a key by id; servers refuse it from their next look at the file.
    Revoke(RevokeArgs),
}

#[derive(Debug, Clone, Args)]
pub struct FileArgs {
    /// The keys file. Default `<data-dir>/keys.json`.
    #[arg(long, env = "EXPANSION_KEYS_FILE")]
    pub keys_file: Option<PathBuf>,
    /// The server's data folder, where the keys file is by default.
    #[arg(long, env = "EXPANSION_DATA_DIR", default_value = "./data")]
    pub data_dir: PathBuf,
}

impl FileArgs {
    fn path(&self) -> PathBuf {
        super::keys_file(self.keys_file.as_deref(), &self.data_dir)
    }
}

#[derive(Debug, Clone, Args)]
pub struct CreateArgs {
    #[command(flatten)]
    pub file: FileArgs,
    /// Who uses the key; recorded as the principal of its calls (e.g.
    /// `carla.csm`, `salesforce-sync`).
    #[arg(long, value_parser = parse_name)]
    pub name: String,
    /// admin, revops, csm, ae, connector or viewer.
    #[arg(long, value_parser = Role::parse)]
    pub role: Role,
    /// The team this key leads: a csm or ae key reads its members' credit
    /// besides its own (e.g. `enterprise-sales`).
    #[arg(long, value_parser = parse_team)]
    pub manages: Option<String>,
    /// Replace the key in force under this name: the new key is made and the
    /// old one revoked, at once. Without it a name already in use is refused.
    #[arg(long)]
    pub rotate: bool,
    /// Mode of the keys file, in octal (e.g. `0644`); later writes keep it.
    /// New files are 0600, readable by their owner only; a container that
    /// runs as another user (the image's uid 10001) reads a file made on the
    /// host once it is `0644`, which is safe: the file holds hashes only.
    #[arg(long, value_parser = parse_mode)]
    pub file_mode: Option<u32>,
}

fn parse_mode(text: &str) -> Result<u32, String> {
    u32::from_str_radix(text.trim_start_matches("0o"), 8)
        .ok()
        .filter(|m| *m <= 0o777)
        .ok_or_else(|| format!("{text:?} is not a file mode in octal, like 0644"))
}

/// What `expansion keys create` makes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeySpec {
    pub name: String,
    pub role: Role,
    pub manages: Option<String>,
    pub rotate: bool,
}

impl KeySpec {
    pub fn new(name: &str, role: Role) -> Self {
        Self {
            name: name.to_owned(),
            role,
            manages: None,
            rotate: false,
        }
    }
}

/// What a create did: the new key's id and token, and the ids of the keys
/// it replaced (`--rotate`).
#[derive(Debug, Clone)]
pub struct Created {
    pub id: String,
    pub token: String,
    pub rotated: Vec<String>,
}

#[derive(Debug, Clone, Args)]
pub struct RevokeArgs {
    #[command(flatten)]
    pub file: FileArgs,
    /// The key's id, as `expansion keys list` shows it.
    pub id: String,
}

fn parse_name(text: &str) -> Result<String, String> {
    check_name(text).map(|()| text.to_owned())
}

fn parse_team(text: &str) -> Result<String, String> {
    check_team(text).map(|()| text.to_owned())
}

fn now() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

/// Adds a key; returns its id and token.
#[cfg(test)]
pub fn create(path: &Path, name: &str, role: Role) -> anyhow::Result<(String, String)> {
    let created = create_key(path, &KeySpec::new(name, role))?;
    Ok((created.id, created.token))
}

/// Adds a key bound to one person. A name is the principal recorded on
/// writes and the person whose rows a csm or ae key reads, so it is unique
/// among the keys in force: a second key under a name in use is refused,
/// unless it is a rotation, which revokes the old key in the same write.
pub fn create_key(path: &Path, spec: &KeySpec) -> anyhow::Result<Created> {
    check_name(&spec.name).map_err(anyhow::Error::msg)?;
    if let Some(team) = &spec.manages {
        check_team(team).map_err(anyhow::Error::msg)?;
    }
    let token = NewToken::generate()?;
    let rotated = KeysFile::update(path, |file| {
        let at = now();
        let in_force: Vec<&mut StoredKey> = file
            .keys
            .iter_mut()
            .filter(|k| k.name == spec.name && k.revoked_at.is_none())
            .collect();
        if !in_force.is_empty() && !spec.rotate {
            anyhow::bail!(
                "a key named {:?} is in force ({}); a name belongs to one person: pass \
                 --rotate to replace it, or choose another name",
                spec.name,
                in_force
                    .iter()
                    .map(|k| k.id.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            );
        }
        let mut rotated = Vec::new();
        for key in in_force {
            key.revoked_at = Some(at.clone());
            rotated.push(key.id.clone());
        }
        file.keys.push(StoredKey {
            id: token.id.clone(),
            name: spec.name.clone(),
            role: spec.role.as_str().to_owned(),
            manages: spec.manages.clone(),
            sha256: token.sha256_hex(),
            created_at: at,
            revoked_at: None,
        });
        Ok(rotated)
    })?;
    Ok(Created {
        id: token.id,
        token: token.token,
        rotated,
    })
}

/// Marks a key revoked (kept in the file, so the list shows when).
pub fn revoke(path: &Path, id: &str) -> anyhow::Result<bool> {
    KeysFile::update(path, |file| {
        let key = file
            .keys
            .iter_mut()
            .find(|k| k.id == id)
            .ok_or_else(|| anyhow::anyhow!("no key {id:?} in {}", path.display()))?;
        if key.revoked_at.is_some() {
            return Ok(false);
        }
        key.revoked_at = Some(now());
        Ok(true)
    })
}

/// The keys as a table.
pub fn list(path: &Path) -> anyhow::Result<String> {
    let file = KeysFile::load(path)?;
    // The MANAGES column only once some key leads a team.
    let teams = file.keys.iter().any(|k| k.manages.is_some());
    let rows: Vec<Vec<String>> = file
        .keys
        .iter()
        .map(|k| {
            let mut row = vec![
                k.id.clone(),
                k.name.clone(),
                k.role.clone(),
                k.created_at.clone(),
                k.revoked_at.clone().unwrap_or_else(|| "-".into()),
            ];
            if teams {
                row.push(k.manages.clone().unwrap_or_else(|| "-".into()));
            }
            row
        })
        .collect();
    let mut header: Vec<String> = ["ID", "NAME", "ROLE", "CREATED", "REVOKED"]
        .map(str::to_owned)
        .to_vec();
    if teams {
        header.push("MANAGES".to_owned());
    }
    let mut widths: Vec<usize> = header.iter().map(String::len).collect();
    for row in &rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let mut out = String::new();
    for row in std::iter::once(&header).chain(&rows) {
        let line: Vec<String> = row
            .iter()
            .zip(&widths)
            .map(|(cell, &w)| format!("{cell:<w$}"))
            .collect();
        out.push_str(line.join("  ").trim_end());
        out.push('\n');
    }
    Ok(out)
}

pub fn run(command: KeysCommand) -> anyhow::Result<()> {
    match command {
        KeysCommand::Create(args) => {
            let path = args.file.path();
            let spec = KeySpec {
                manages: args.manages.clone(),
                rotate: args.rotate,
                ..KeySpec::new(&args.name, args.role)
            };
            let created = create_key(&path, &spec)?;
            if let Some(mode) = args.file_mode {
                #[cfg(unix)]
                super::keys::set_file_mode(&path, mode)?;
                #[cfg(not(unix))]
                anyhow::bail!("--file-mode {mode:o}: file modes are a Unix thing");
            }
            let team = args
                .manages
                .as_deref()
                .map(|t| format!(", managing {t:?},"))
                .unwrap_or_default();
            eprintln!(
                "created key {} for {:?} with the role {}{team} in {}; the token below is \
                 shown only this once:",
                created.id,
                args.name,
                args.role,
                path.display()
            );
            for old in &created.rotated {
                eprintln!(
                    "revoked key {old}, which it replaces; running servers refuse it within a second"
                );
            }
            println!("{}", created.token);
        }
        KeysCommand::List(file) => print!("{}", list(&file.path())?),
        KeysCommand::Revoke(args) => {
            let path = args.file.path();
            if revoke(&path, &args.id)? {
                eprintln!(
                    "revoked key {}; running servers refuse it within a second",
                    args.id
                );
            } else {
                eprintln!("key {} was already revoked", args.id);
            }
        }
    }
    Ok(())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn create_list_revoke() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("nested").join("keys.json");
        let (id, token) = create(&path, "carla.csm", Role::Csm).unwrap();
        let (other, _) = create(&path, "sync", Role::Connector).unwrap();
        assert!(token.starts_with(&format!("exp_{id}_")));
        let table = list(&path).unwrap();
        let lines: Vec<&str> = table.lines().collect();
        assert_eq!(lines.len(), 3);
        assert!(lines[0].starts_with("ID"));
        assert!(
            lines[1].contains(&id) && lines[1].contains("carla.csm") && lines[1].contains("csm")
        );
        assert!(lines[1].ends_with('-'), "{}", lines[1]);
        assert!(!table.contains(&token[21..]), "list shows a secret");

        assert!(revoke(&path, &id).unwrap());
        assert!(!revoke(&path, &id).unwrap());
        assert!(revoke(&path, "0000000000000000").is_err());
        let table = list(&path).unwrap();
        let revoked = table.lines().find(|l| l.contains(&id)).unwrap();
        assert!(!revoked.ends_with('-'), "{revoked}");
        let active = table.lines().find(|l| l.contains(&other)).unwrap();
        assert!(active.ends_with('-'));
        assert!(create(&path, "local", Role::Admin).is_err());
    }

    #[test]
    fn a_name_is_one_persons_and_rotation_replaces_its_key() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("keys.json");
        let spec = KeySpec {
            manages: Some("enterprise-sales".into()),
            ..KeySpec::new("ana.ae", Role::Ae)
        };
        let first = create_key(&path, &spec).unwrap();
        let err = create_key(&path, &KeySpec::new("ana.ae", Role::Ae))
            .unwrap_err()
            .to_string();
        assert!(err.contains("--rotate"), "{err}");
        let second = create_key(
            &path,
            &KeySpec {
                rotate: true,
                ..spec.clone()
            },
        )
        .unwrap();
        assert_eq!(second.rotated, vec![first.id.clone()]);
        let file = KeysFile::load(&path).unwrap();
        assert_eq!(file.active(), 1);
        let old = file.keys.iter().find(|k| k.id == first.id).unwrap();
        assert!(old.revoked_at.is_some());
        let new = file.keys.iter().find(|k| k.id == second.id).unwrap();
        assert_eq!(new.manages.as_deref(), Some("enterprise-sales"));
        let table = list(&path).unwrap();
        assert!(
            table.lines().next().unwrap().ends_with("MANAGES"),
            "{table}"
        );
        assert!(table.contains("enterprise-sales"));
        // A revoked name may be given to a new key of the same person.
        revoke(&path, &second.id).unwrap();
        assert!(create_key(&path, &KeySpec::new("ana.ae", Role::Ae)).is_ok());
        assert!(
            create_key(
                &path,
                &KeySpec {
                    manages: Some(String::new()),
                    ..KeySpec::new("bo.ae", Role::Ae)
                }
            )
            .is_err()
        );
    }

    #[test]
    fn an_empty_keys_file_lists_only_the_header() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(
            list(&dir.path().join("keys.json")).unwrap().trim(),
            "ID  NAME  ROLE  CREATED  REVOKED"
        );
    }
}
