//! One HTTP/1.1 POST per delivery, to an address [`crate::target`] checked.
//! `https://` is verified against the web's root certificates
//! (`webpki-roots`, Mozilla's list) with the URL's host as the name.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;

use crate::target::{self, Target};

/// Bytes of a failed answer's body kept for the delivery log.
const ERROR_BODY: usize = 200;

trait Io: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Io for T {}

/// Sends webhook requests.
#[derive(Clone)]
pub struct Sender {
    tls: Arc<rustls::ClientConfig>,
    allow_private: bool,
    timeout: Duration,
}

impl std::fmt::Debug for Sender {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sender")
            .field("allow_private", &self.allow_private)
            .field("timeout", &self.timeout)
            .finish()
    }
}

impl Sender {
    pub fn new(allow_private: bool, timeout: Duration) -> Result<Self, String> {
        let mut roots = rustls::RootCertStore::empty();
        roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
        let mut tls = rustls::ClientConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?
        .with_root_certificates(roots)
        .with_no_client_auth();
        tls.alpn_protocols = vec![b"http/1.1".to_vec()];
        Ok(Self {
            tls: Arc::new(tls),
            allow_private,
            timeout,
        })
    }

    pub fn allow_private(&self) -> bool {
        self.allow_private
    }

    /// POSTs `body`; `Ok` on a 2xx answer, otherwise why not.
    pub async fn post(
        &self,
        target: &Target,
        headers: &[(&'static str, String)],
        body: Bytes,
    ) -> Result<u16, String> {
        match tokio::time::timeout(self.timeout, self.post_once(target, headers, body)).await {
            Ok(result) => result,
            Err(_) => Err(format!("no answer within {} ms", self.timeout.as_millis())),
        }
    }

    async fn post_once(
        &self,
        target: &Target,
        headers: &[(&'static str, String)],
        body: Bytes,
    ) -> Result<u16, String> {
        let addrs = target::resolve(target, self.allow_private).await?;
        let tcp = connect(&addrs).await?;
        let _ = tcp.set_nodelay(true);
        let io: Box<dyn Io> = if target.https {
            let name = rustls::pki_types::ServerName::try_from(target.host.clone())
                .map_err(|e| format!("{} is not a TLS server name: {e}", target.host))?;
            let tls = tokio_rustls::TlsConnector::from(self.tls.clone())
                .connect(name, tcp)
                .await
                .map_err(|e| format!("TLS with {} failed: {e}", target.host))?;
            Box::new(tls)
        } else {
            Box::new(tcp)
        };
        let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(io))
            .await
            .map_err(|e| format!("HTTP handshake failed: {e}"))?;
        let connection = tokio::spawn(connection);
        let mut request = hyper::Request::post(target.path_and_query.as_str())
            .header(hyper::header::HOST, target.authority.as_str())
            .header(hyper::header::CONTENT_TYPE, "application/json")
            .header(
                hyper::header::USER_AGENT,
                concat!("expansion-webhooks/", env!("CARGO_PKG_VERSION")),
            );
        for (name, value) in headers {
            request = request.header(*name, value.as_str());
        }
        let request = request
            .body(Full::new(body))
            .map_err(|e| format!("building the request: {e}"))?;
        let response = sender
            .send_request(request)
            .await
            .map_err(|e| format!("sending failed: {e}"))?;
        let status = response.status();
        if status.is_success() {
            connection.abort();
            return Ok(status.as_u16());
        }
        let mut text = String::new();
        let mut body = response.into_body();
        while text.len() < ERROR_BODY {
            match body.frame().await {
                Some(Ok(frame)) => {
                    if let Some(data) = frame.data_ref() {
                        text.push_str(&String::from_utf8_lossy(data));
                    }
                }
                _ => break,
            }
        }
        connection.abort();
        let text: String = text
            .chars()
            .filter(|c| !c.is_control())
            .take(ERROR_BODY)
            .collect();
        Err(format!("HTTP {}: {}", status.as_u16(), text.trim()))
    }
}

async fn connect(addrs: &[SocketAddr]) -> Result<TcpStream, String> {
    let mut last = String::from("no address");
    for addr in addrs {
        match TcpStream::connect(addr).await {
            Ok(stream) => return Ok(stream),
            Err(e) => last = format!("connecting to {addr}: {e}"),
        }
    }
    Err(last)
}
