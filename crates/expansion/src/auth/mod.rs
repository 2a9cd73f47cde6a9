//! Who may call the server, and over what: API keys (`keys`), the layer that
//! checks every call against the method × role matrix (`layer`), the
//! `expansion keys` command (`command`), and [`Security`], what `serve` sets
//! up from its flags — the key ring and its reloading, the loopback rule,
//! the credentials this process presents to the services it calls, TLS.

pub mod command;
pub mod keys;
pub mod layer;

use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use clap::Args;
use contracts::access::Role;
use contracts::client::ClientOptions;

use self::keys::KeyRing;
use self::layer::AuthLayer;

/// How often a running server looks at the keys file for changes.
const RELOAD_EVERY: Duration = Duration::from_secs(1);
/// The name a process's certificate must carry for its calls to itself.
const SELF_TLS_NAME: &str = "localhost";

/// A flag value that must not show up in logs or `Debug` output.
#[derive(Clone)]
pub struct Secret(String);

impl From<String> for Secret {
    fn from(value: String) -> Self {
        Self(value)
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

impl Secret {
    pub fn expose(&self) -> &str {
        &self.0
    }
}

/// `serve`'s flags for keys, peer credentials and TLS.
#[derive(Debug, Clone, Args)]
pub struct ServeAuthArgs {
    /// API keys file (names, roles and hashes; see `expansion keys`).
    /// Default `<data-dir>/keys.json`. Re-read within a second of a change.
    #[arg(long, env = "EXPANSION_KEYS_FILE")]
    pub keys_file: Option<PathBuf>,
    /// API key this process presents to the services at --health-addr and
    /// --credit-addr (a connector key they accept).
    #[arg(long, env = "EXPANSION_PEER_API_KEY", hide_env_values = true)]
    pub peer_api_key: Option<Secret>,
    /// PEM certificate chain to serve TLS with (with --tls-key).
    #[arg(long, env = "EXPANSION_TLS_CERT", requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,
    /// PEM private key of --tls-cert.
    #[arg(long, env = "EXPANSION_TLS_KEY", requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,
    /// PEM CA certificate(s) trusted for `https://` service addresses, and
    /// for this process's calls to itself under --tls-cert.
    #[arg(long, env = "EXPANSION_TLS_CA")]
    pub tls_ca: Option<PathBuf>,
}

/// The flags of a command that calls a server (`expansion demo`).
#[derive(Debug, Clone, Args)]
pub struct ClientArgs {
    /// API key to call with, when the server has keys.
    #[arg(long, env = "EXPANSION_API_KEY", hide_env_values = true)]
    pub api_key: Option<Secret>,
    /// PEM CA certificate(s) trusted for an `https://` target.
    #[arg(long, env = "EXPANSION_TLS_CA")]
    pub tls_ca: Option<PathBuf>,
}

fn read(what: &str, path: &Path) -> anyhow::Result<Vec<u8>> {
    std::fs::read(path).with_context(|| format!("reading {what} {}", path.display()))
}

impl ClientArgs {
    pub fn options(&self) -> anyhow::Result<ClientOptions> {
        Ok(ClientOptions {
            api_key: self.api_key.as_ref().map(|k| k.expose().to_owned()),
            tls_ca_pem: self
                .tls_ca
                .as_deref()
                .map(|p| read("--tls-ca", p))
                .transpose()?,
            ..ClientOptions::default()
        })
    }
}

/// The keys file: the flag, else `<data-dir>/keys.json`.
pub fn keys_file(flag: Option<&Path>, data_dir: &Path) -> PathBuf {
    flag.map(Path::to_owned)
        .unwrap_or_else(|| data_dir.join("keys.json"))
}

/// Who in this process calls a service, each with its own in-memory
/// credential so the records say which part of the process wrote them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Caller {
    /// The health service's outbox (clawbacks to credit).
    Health,
    /// The pipeline's health gateway and outbox (subscriptions, credits).
    Pipeline,
    /// `serve --demo` loading the sample data.
    Demo,
}

impl Caller {
    fn principal(self) -> &'static str {
        match self {
            Caller::Health => "service:health",
            Caller::Pipeline => "service:pipeline",
            Caller::Demo => "service:demo",
        }
    }

    fn role(self) -> Role {
        match self {
            // Exactly the connector's calls: reads, subscriptions, credits, clawbacks.
            Caller::Health | Caller::Pipeline => Role::Connector,
            // The sample data includes a credit policy, which is admin only.
            Caller::Demo => Role::Admin,
        }
    }
}

/// What `serve` needs to know about keys, credentials and TLS.
pub struct Security {
    ring: Arc<KeyRing>,
    own_tokens: Vec<(Caller, String)>,
    peer_api_key: Option<String>,
    /// `EXPANSION_PEER_API_KEY=""` (a Compose file's `${VAR:-}` with the
    /// variable unset): no key, said as such when one is needed.
    peer_api_key_empty: bool,
    tls_ca: Option<Vec<u8>>,
    tls_identity: Option<(Vec<u8>, Vec<u8>)>,
}

impl Security {
    /// Loads the keys and TLS files and applies the loopback rule: with no
    /// API keys the server listens on loopback only.
    pub fn prepare(
        args: &ServeAuthArgs,
        data_dir: &Path,
        listen: SocketAddr,
    ) -> anyhow::Result<Self> {
        let path = keys_file(args.keys_file.as_deref(), data_dir);
        let beyond_loopback = !listen.ip().is_loopback();
        let mut ring = KeyRing::load(&path, beyond_loopback)?;
        if beyond_loopback && !ring.has_keys() {
            anyhow::bail!(
                "refusing to listen on {listen} without API keys: anyone who can reach it could \
                 read and change everything. Create a key first with \
                 `expansion keys create --name NAME --role admin` (keys file {}), \
                 or listen on loopback (127.0.0.1)",
                path.display()
            );
        }
        let mut own_tokens = Vec::new();
        for caller in [Caller::Health, Caller::Pipeline, Caller::Demo] {
            own_tokens.push((
                caller,
                ring.mint_internal(caller.principal(), caller.role())?,
            ));
        }
        let tls_identity = match (&args.tls_cert, &args.tls_key) {
            (Some(cert), Some(key)) => Some((read("--tls-cert", cert)?, read("--tls-key", key)?)),
            _ => None,
        };
        let tls_ca = args
            .tls_ca
            .as_deref()
            .map(|p| read("--tls-ca", p))
            .transpose()?;
        if ring.has_keys() {
            tracing::info!(file = %path.display(), "API keys required on every call");
        } else {
            tracing::info!(file = %path.display(), "no API keys: loopback only, every caller is `local`");
        }
        let peer_api_key = args
            .peer_api_key
            .as_ref()
            .map(|k| k.expose().trim().to_owned());
        let peer_api_key_empty = peer_api_key.as_deref() == Some("");
        Ok(Self {
            ring: Arc::new(ring),
            own_tokens,
            peer_api_key: peer_api_key.filter(|k| !k.is_empty()),
            peer_api_key_empty,
            tls_ca,
            tls_identity,
        })
    }

    /// The layer that checks every call.
    pub fn layer(&self) -> AuthLayer {
        AuthLayer::new(self.ring.clone())
    }

    /// Re-reads the keys file when it changes (a revoked key stops working
    /// within about a second); ends with the process.
    pub fn spawn_reload(&self) -> tokio::task::JoinHandle<()> {
        let ring = self.ring.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(RELOAD_EVERY);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tick.tick().await;
                let ring = ring.clone();
                // A stat per second, and a small read when the file changed.
                if let Err(err) = tokio::task::spawn_blocking(move || ring.refresh()).await {
                    tracing::error!(%err, "reloading the keys file failed");
                }
            }
        })
    }

    /// The listener's TLS, when --tls-cert is given.
    /// The listener's TLS, offering HTTP/2 and HTTP/1.1 by ALPN: HTTP/JSON
    /// and gRPC-Web callers may speak HTTP/1.1 (tonic's own TLS offers
    /// HTTP/2 only, which refuses them at the handshake).
    pub fn server_tls(&self) -> anyhow::Result<Option<Arc<rustls::ServerConfig>>> {
        use rustls::pki_types::pem::PemObject;
        use rustls::pki_types::{CertificateDer, PrivateKeyDer};
        let Some((cert, key)) = &self.tls_identity else {
            return Ok(None);
        };
        let chain = CertificateDer::pem_slice_iter(cert)
            .collect::<Result<Vec<_>, _>>()
            .map_err(|err| anyhow::anyhow!("--tls-cert: not a PEM certificate chain: {err:?}"))?;
        let key = PrivateKeyDer::from_pem_slice(key)
            .map_err(|err| anyhow::anyhow!("--tls-key: not a PEM private key: {err:?}"))?;
        let mut config = rustls::ServerConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .context("TLS protocol versions")?
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .context("TLS with --tls-cert and --tls-key")?;
        config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
        Ok(Some(Arc::new(config)))
    }

    /// The scheme clients use for this server.
    pub fn scheme(&self) -> &'static str {
        if self.tls_identity.is_some() {
            "https"
        } else {
            "http"
        }
    }

    fn own_token(&self, caller: Caller) -> Option<String> {
        self.own_tokens
            .iter()
            .find(|(c, _)| *c == caller)
            .map(|(_, token)| token.clone())
    }

    /// How `caller` reaches this very process at `own` (its bound address,
    /// loopback for a wildcard): with its in-memory credential, and under
    /// TLS checking the certificate for the name `localhost` against --tls-ca.
    pub fn to_self(&self, own: &str, caller: Caller) -> anyhow::Result<(String, ClientOptions)> {
        let mut options = ClientOptions {
            api_key: self.own_token(caller),
            ..ClientOptions::default()
        };
        if self.tls_identity.is_some() {
            let ca = self.tls_ca.clone().context(
                "with --tls-cert this process calls itself over TLS: give --tls-ca, the CA \
                 certificate that issued --tls-cert (which must name `localhost`)",
            )?;
            options.tls_ca_pem = Some(ca);
            options.tls_domain = Some(SELF_TLS_NAME.to_owned());
        }
        Ok((format!("{}://{own}", self.scheme()), options))
    }

    /// How this process reaches the `service` at an address it was given:
    /// with --peer-api-key, which it must have when it has keys itself (its
    /// peers are then expected to have them too).
    pub fn to_peer(&self, address: &str, service: &str) -> anyhow::Result<ClientOptions> {
        if self.ring.has_keys() && self.peer_api_key.is_none() {
            let empty = if self.peer_api_key_empty {
                " (it is set, but empty)"
            } else {
                ""
            };
            anyhow::bail!(
                "this server has API keys and calls the {service} service at {address}: give \
                 --peer-api-key (EXPANSION_PEER_API_KEY){empty}, a connector key that service accepts"
            );
        }
        Ok(ClientOptions {
            api_key: self.peer_api_key.clone(),
            tls_ca_pem: self.tls_ca.clone(),
            ..ClientOptions::default()
        })
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn args(dir: &Path) -> ServeAuthArgs {
        ServeAuthArgs {
            keys_file: Some(dir.join("keys.json")),
            peer_api_key: None,
            tls_cert: None,
            tls_key: None,
            tls_ca: None,
        }
    }

    #[test]
    fn without_keys_only_loopback_is_allowed() {
        let dir = tempfile::tempdir().unwrap();
        let a = args(dir.path());
        assert!(Security::prepare(&a, dir.path(), "127.0.0.1:0".parse().unwrap()).is_ok());
        assert!(Security::prepare(&a, dir.path(), "[::1]:0".parse().unwrap()).is_ok());
        let err = Security::prepare(&a, dir.path(), "0.0.0.0:50051".parse().unwrap())
            .err()
            .unwrap()
            .to_string();
        assert!(err.contains("expansion keys create"), "{err}");
        command::create(&dir.path().join("keys.json"), "root", Role::Admin).unwrap();
        assert!(Security::prepare(&a, dir.path(), "0.0.0.0:50051".parse().unwrap()).is_ok());
    }

    #[test]
    fn with_keys_a_peer_needs_a_key_and_the_process_itself_does_not() {
        let dir = tempfile::tempdir().unwrap();
        command::create(&dir.path().join("keys.json"), "root", Role::Admin).unwrap();
        let mut a = args(dir.path());
        let security = Security::prepare(&a, dir.path(), "127.0.0.1:0".parse().unwrap()).unwrap();
        let err = security
            .to_peer("credit:50051", "credit")
            .unwrap_err()
            .to_string();
        assert!(err.contains("--peer-api-key"), "{err}");
        let (url, own) = security.to_self("127.0.0.1:9", Caller::Pipeline).unwrap();
        assert_eq!(url, "http://127.0.0.1:9");
        assert!(own.api_key.is_some());
        // An empty key (a Compose `${VAR:-}` left unset) is no key.
        a.peer_api_key = Some(Secret::from("  ".to_owned()));
        let security = Security::prepare(&a, dir.path(), "127.0.0.1:0".parse().unwrap()).unwrap();
        let err = security
            .to_peer("credit:50051", "credit")
            .unwrap_err()
            .to_string();
        assert!(err.contains("set, but empty"), "{err}");
        a.peer_api_key = Some(Secret::from("exp_x".to_owned()));
        let security = Security::prepare(&a, dir.path(), "127.0.0.1:0".parse().unwrap()).unwrap();
        assert_eq!(
            security
                .to_peer("credit:50051", "credit")
                .unwrap()
                .api_key
                .as_deref(),
            Some("exp_x")
        );
    }

    #[test]
    fn secrets_stay_out_of_debug_output() {
        let a = ServeAuthArgs {
            peer_api_key: Some(Secret::from("exp_abc_topsecret".to_owned())),
            ..args(Path::new("."))
        };
        assert!(!format!("{a:?}").contains("topsecret"));
    }
}
