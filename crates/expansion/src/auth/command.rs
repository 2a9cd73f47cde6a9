//! `expansion keys create|list|revoke`: API keys in the keys file. A running
//! server sees every change within about a second, without a restart.

use std::path::{Path, PathBuf};

use clap::{Args, Subcommand};
use contracts::access::Role;

use super::keys::{KeysFile, NewToken, StoredKey, check_name};

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

fn now() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

/// Adds a key; returns its id and token.
pub fn create(path: &Path, name: &str, role: Role) -> anyhow::Result<(String, String)> {
    check_name(name).map_err(anyhow::Error::msg)?;
    let token = NewToken::generate()?;
    KeysFile::update(path, |file| {
        file.keys.push(StoredKey {
            id: token.id.clone(),
            name: name.to_owned(),
            role: role.as_str().to_owned(),
            sha256: token.sha256_hex(),
            created_at: now(),
            revoked_at: None,
        });
        Ok(())
    })?;
    Ok((token.id, token.token))
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
    let rows: Vec<[String; 5]> = file
        .keys
        .iter()
        .map(|k| {
            [
                k.id.clone(),
                k.name.clone(),
                k.role.clone(),
                k.created_at.clone(),
                k.revoked_at.clone().unwrap_or_else(|| "-".into()),
            ]
        })
        .collect();
    let header = ["ID", "NAME", "ROLE", "CREATED", "REVOKED"].map(str::to_owned);
    let mut widths = header.clone().map(|h| h.len());
    for row in &rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let mut out = String::new();
    for row in std::iter::once(&header).chain(&rows) {
        let line: Vec<String> = row
            .iter()
            .zip(widths)
            .map(|(cell, w)| format!("{cell:<w$}"))
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
            let (id, token) = create(&path, &args.name, args.role)?;
            eprintln!(
                "created key {id} for {:?} with the role {} in {}; the token below is shown \
                 only this once:",
                args.name,
                args.role,
                path.display()
            );
            println!("{token}");
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
    fn an_empty_keys_file_lists_only_the_header() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(
            list(&dir.path().join("keys.json")).unwrap().trim(),
            "ID  NAME  ROLE  CREATED  REVOKED"
        );
    }
}
