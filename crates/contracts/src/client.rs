//! How a client reaches an Expansion server — one service calling another,
//! `expansion demo`, tests: an address (`host:port` or a URL), an optional
//! API key sent as `authorization: Bearer …` on every call, and for
//! `https://` addresses the CA certificate to trust.

use std::fmt;
use std::time::Duration;

use tonic::metadata::{Ascii, MetadataValue};
use tonic::service::Interceptor;
use tonic::service::interceptor::InterceptedService;
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Endpoint};
use tonic::{Request, Status};

/// The metadata key that carries the API key.
pub const AUTHORIZATION: &str = "authorization";

/// A channel whose every call carries the client's API key, if it has one.
pub type AuthChannel = InterceptedService<Channel, Bearer>;

/// Adds `authorization: Bearer <key>` to every call (nothing without a key).
#[derive(Clone, Default)]
pub struct Bearer(Option<MetadataValue<Ascii>>);

impl fmt::Debug for Bearer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(if self.0.is_some() {
            "Bearer(<redacted>)"
        } else {
            "Bearer(none)"
        })
    }
}

impl Bearer {
    pub fn new(api_key: Option<&str>) -> Result<Self, String> {
        api_key
            .map(|key| {
                let mut value: MetadataValue<Ascii> = format!("Bearer {}", key.trim())
                    .parse()
                    .map_err(|_| "the API key has characters a header cannot carry".to_owned())?;
                // Never put the key in HPACK's shared table.
                value.set_sensitive(true);
                Ok(value)
            })
            .transpose()
            .map(Bearer)
    }
}

impl Interceptor for Bearer {
    fn call(&mut self, mut request: Request<()>) -> Result<Request<()>, Status> {
        if let Some(value) = &self.0 {
            request.metadata_mut().insert(AUTHORIZATION, value.clone());
        }
        Ok(request)
    }
}

/// What a client needs besides the address.
#[derive(Clone, Default)]
pub struct ClientOptions {
    /// Sent as `authorization: Bearer …`.
    pub api_key: Option<String>,
    /// PEM of the CA certificate(s) that `https://` servers are checked against.
    pub tls_ca_pem: Option<Vec<u8>>,
    /// The name the server's certificate must carry, when it differs from the
    /// address's host (a process calling itself over loopback).
    pub tls_domain: Option<String>,
    /// Connect timeout and deadline of each call.
    pub timeout: Option<Duration>,
}

impl fmt::Debug for ClientOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClientOptions")
            .field("api_key", &self.api_key.as_ref().map(|_| "<redacted>"))
            .field("tls_ca_pem", &self.tls_ca_pem.as_ref().map(Vec::len))
            .field("tls_domain", &self.tls_domain)
            .field("timeout", &self.timeout)
            .finish()
    }
}

impl ClientOptions {
    pub fn with_api_key(mut self, api_key: Option<String>) -> Self {
        self.api_key = api_key;
        self
    }

    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = Some(timeout);
        self
    }
}

/// A peer service: where it is and how to call it.
#[derive(Clone, Debug)]
pub struct Peer {
    pub address: String,
    pub options: ClientOptions,
}

impl Peer {
    /// A lazy channel to the peer whose calls time out after `timeout`.
    pub fn channel(&self, timeout: Duration) -> Result<AuthChannel, String> {
        lazy(&self.address, &self.options.clone().with_timeout(timeout))
    }
}

/// `http://` unless the address names its scheme.
pub fn url(address: &str) -> String {
    if address.contains("://") {
        address.to_owned()
    } else {
        format!("http://{address}")
    }
}

/// The endpoint of `address` with the options' TLS and timeouts.
pub fn endpoint(address: &str, options: &ClientOptions) -> Result<Endpoint, String> {
    let url = url(address);
    let mut endpoint = Endpoint::from_shared(url.clone())
        .map_err(|e| format!("{address:?} is not a valid address: {e}"))?;
    if url.starts_with("https://") {
        let ca = options.tls_ca_pem.as_ref().ok_or_else(|| {
            format!("{address} is https: give the CA certificate to trust (--tls-ca)")
        })?;
        let mut tls = ClientTlsConfig::new().ca_certificate(Certificate::from_pem(ca));
        if let Some(domain) = &options.tls_domain {
            tls = tls.domain_name(domain.clone());
        }
        endpoint = endpoint
            .tls_config(tls)
            .map_err(|e| format!("TLS for {address}: {e}"))?;
    }
    if let Some(timeout) = options.timeout {
        endpoint = endpoint.connect_timeout(timeout).timeout(timeout);
    }
    Ok(endpoint)
}

/// A channel that connects on first use, so a process starts while the
/// service it calls is still starting.
pub fn lazy(address: &str, options: &ClientOptions) -> Result<AuthChannel, String> {
    let bearer = Bearer::new(options.api_key.as_deref())?;
    let channel = endpoint(address, options)?.connect_lazy();
    Ok(InterceptedService::new(channel, bearer))
}

/// A channel connected now: a wrong address fails here, not on the first call.
pub async fn connect(address: &str, options: &ClientOptions) -> Result<AuthChannel, String> {
    let bearer = Bearer::new(options.api_key.as_deref())?;
    let channel = endpoint(address, options)?
        .connect()
        .await
        .map_err(|e| format!("connecting {address}: {e}"))?;
    Ok(InterceptedService::new(channel, bearer))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn the_key_rides_on_every_call_and_never_in_debug_output() {
        let mut bearer = Bearer::new(Some("exp_0011_secret")).unwrap();
        let request = bearer.call(Request::new(())).unwrap();
        assert_eq!(
            request.metadata().get(AUTHORIZATION).unwrap(),
            "Bearer exp_0011_secret"
        );
        assert!(!format!("{bearer:?}").contains("secret"));
        let options = ClientOptions::default().with_api_key(Some("exp_0011_secret".into()));
        assert!(!format!("{options:?}").contains("secret"));
        let mut none = Bearer::new(None).unwrap();
        let request = none.call(Request::new(())).unwrap();
        assert!(request.metadata().get(AUTHORIZATION).is_none());
        assert!(Bearer::new(Some("exp_a\nb")).is_err());
    }

    #[test]
    fn https_needs_a_ca() {
        assert_eq!(url("127.0.0.1:1"), "http://127.0.0.1:1");
        assert_eq!(url("https://h:1"), "https://h:1");
        let err = endpoint("https://h:1", &ClientOptions::default()).unwrap_err();
        assert!(err.contains("--tls-ca"), "{err}");
        assert!(endpoint("h:1", &ClientOptions::default()).is_ok());
        assert!(endpoint("not an address", &ClientOptions::default()).is_err());
    }
}
