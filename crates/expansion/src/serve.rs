//! `expansion serve`: the gRPC server with reflection, health checking,
//! per-RPC tracing spans, limits and graceful shutdown.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use account_health::{AccountHealthServiceServer, HealthService};
use anyhow::Context;
use compensation_credit::{CompensationCreditServiceServer, CreditService};
use opportunity_pipeline::{OpportunityPipelineServiceServer, PipelineService};
use tokio::net::TcpListener;
use tonic::codegen::http;
use tonic::server::NamedService;
use tonic::transport::Server;
use tonic::transport::server::Router;

use contracts::client::Peer;

use crate::auth::{Caller, Security};
use crate::cli::{ServeArgs, ServiceName};
use crate::database;
use crate::metrics::{Metrics, RpcMetricsLayer};

const REFLECTION_SERVICE: &str = "grpc.reflection.v1.ServerReflection";
const HEALTH_SERVICE: &str = "grpc.health.v1.Health";

/// One span per RPC, carrying the method and the caller's request id (or a
/// fresh one), so every log line of a call can be found together.
fn rpc_span(request: &http::Request<()>) -> tracing::Span {
    let request_id = request
        .headers()
        .get("x-request-id")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
        .unwrap_or_else(|| uuid::Uuid::now_v7().to_string());
    tracing::info_span!("rpc", method = %request.uri().path(), request_id = %request_id)
}

/// A reflection builder that knows every descriptor but lists only the
/// services this process serves.
fn reflection<'a>(served: &[&'static str]) -> tonic_reflection::server::Builder<'a> {
    served.iter().fold(
        tonic_reflection::server::Builder::configure()
            .register_encoded_file_descriptor_set(contracts::FILE_DESCRIPTOR_SET)
            .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET),
        |builder, name| builder.with_service_name(*name),
    )
}

async fn shutdown_signal() {
    let ctrl_c = async {
        if let Err(err) = tokio::signal::ctrl_c().await {
            tracing::error!(%err, "cannot listen for Ctrl-C");
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(err) => {
                tracing::error!(%err, "cannot listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = terminate => {},
    }
}

/// How long a client may take over its TLS handshake.
const TLS_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// TLS connections off the listener, TCP_NODELAY set, each handshake on its
/// own task so a slow or broken client holds up no other.
fn tls_incoming(
    listener: TcpListener,
    config: Arc<rustls::ServerConfig>,
) -> tokio_stream::wrappers::ReceiverStream<
    std::io::Result<tokio_rustls::server::TlsStream<tokio::net::TcpStream>>,
> {
    let acceptor = tokio_rustls::TlsAcceptor::from(config);
    let (tx, rx) = tokio::sync::mpsc::channel(64);
    tokio::spawn(async move {
        while !tx.is_closed() {
            let (stream, peer) = match listener.accept().await {
                Ok(accepted) => accepted,
                Err(err) => {
                    // Out of file descriptors and the like: wait, not spin.
                    tracing::warn!(%err, "accepting a connection failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            };
            if let Err(err) = stream.set_nodelay(true) {
                tracing::debug!(%peer, %err, "TCP_NODELAY");
            }
            let (acceptor, tx) = (acceptor.clone(), tx.clone());
            tokio::spawn(async move {
                match tokio::time::timeout(TLS_HANDSHAKE_TIMEOUT, acceptor.accept(stream)).await {
                    Ok(Ok(tls)) => {
                        let _ = tx.send(Ok(tls)).await;
                    }
                    Ok(Err(err)) => tracing::debug!(%peer, %err, "TLS handshake failed"),
                    Err(_) => tracing::debug!(%peer, "TLS handshake timed out"),
                }
            });
        }
    });
    tokio_stream::wrappers::ReceiverStream::new(rx)
}

/// The gRPC name of a service this binary serves.
fn service_full_name(service: ServiceName) -> &'static str {
    match service {
        ServiceName::Health => <AccountHealthServiceServer<HealthService> as NamedService>::NAME,
        ServiceName::Pipeline => {
            <OpportunityPipelineServiceServer<PipelineService> as NamedService>::NAME
        }
        ServiceName::Credit => {
            <CompensationCreditServiceServer<CreditService> as NamedService>::NAME
        }
    }
}

/// This process as its own peer: its bound address, so `--listen …:0`
/// works; a wildcard listen address is reached over loopback.
fn own_address(local: SocketAddr) -> String {
    let ip = match local.ip() {
        IpAddr::V4(ip) if ip.is_unspecified() => IpAddr::V4(Ipv4Addr::LOCALHOST),
        IpAddr::V6(ip) if ip.is_unspecified() => IpAddr::V6(std::net::Ipv6Addr::LOCALHOST),
        ip => ip,
    };
    SocketAddr::new(ip, local.port()).to_string()
}

/// Where and how `caller` finds the `service`: the flag's address with the
/// peer API key, else this process when it serves that one too, with its own
/// in-memory credential; `None` when this deployment does not know.
fn peer_target(
    flag: Option<&str>,
    served_here: bool,
    local: SocketAddr,
    security: &Security,
    caller: Caller,
    service: &str,
) -> anyhow::Result<Option<Peer>> {
    let (address, options) = match flag {
        Some(address) => (address.to_owned(), security.to_peer(address, service)?),
        None if served_here => security.to_self(&own_address(local), caller)?,
        None => return Ok(None),
    };
    Ok(Some(Peer { address, options }))
}

/// Flag combinations that cannot work, refused before anything binds a port
/// or touches a database: `--demo` without all three services, a peer
/// address without the key to call it, a call to itself under TLS without
/// the CA to check it.
fn preflight(
    args: &ServeArgs,
    services: &[ServiceName],
    security: &Security,
) -> anyhow::Result<()> {
    if args.demo && services.len() < ServiceName::ALL.len() {
        let only: Vec<&str> = services.iter().map(|s| s.as_str()).collect();
        anyhow::bail!(
            "--demo loads the sample data into all three services, and this process serves only \
             {}: drop --service to serve all three, or start without --demo and run \
             `expansion demo --target ADDR` against a server of all three",
            only.join(", ")
        );
    }
    let serves = |service| services.contains(&service);
    // The address does not matter here: only whether a credential exists.
    let placeholder = "localhost:0";
    let mut calls: Vec<(Option<&str>, ServiceName, Caller, &str)> = Vec::new();
    if serves(ServiceName::Health) {
        calls.push((
            args.credit_addr.as_deref(),
            ServiceName::Credit,
            Caller::Health,
            "credit",
        ));
    }
    if serves(ServiceName::Pipeline) {
        calls.push((
            args.health_addr.as_deref(),
            ServiceName::Health,
            Caller::Pipeline,
            "health",
        ));
        calls.push((
            args.credit_addr.as_deref(),
            ServiceName::Credit,
            Caller::Pipeline,
            "credit",
        ));
    }
    for (flag, peer, caller, name) in calls {
        match flag {
            Some(address) => {
                security.to_peer(address, name)?;
            }
            None if serves(peer) => {
                security.to_self(placeholder, caller)?;
            }
            None => {}
        }
    }
    if args.demo {
        security.to_self(placeholder, Caller::Demo)?;
    }
    Ok(())
}

/// What wiring a service needs: the flags, this process's address and
/// credentials, the metrics, the health reporter; it keeps the background
/// tasks the services start.
struct Wiring<'a> {
    args: &'a ServeArgs,
    services: &'a [ServiceName],
    local: SocketAddr,
    security: &'a Security,
    metrics: Option<Arc<Metrics>>,
    reporter: tonic_health::server::HealthReporter,
    served_names: Vec<&'static str>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl Wiring<'_> {
    /// Where `caller` reaches `service` (`--{service}-addr`, else this process).
    fn peer(&self, service: ServiceName, caller: Caller) -> anyhow::Result<Option<Peer>> {
        let flag = match service {
            ServiceName::Health => self.args.health_addr.as_deref(),
            ServiceName::Credit => self.args.credit_addr.as_deref(),
            ServiceName::Pipeline => None,
        };
        let served_here = self.services.contains(&service);
        peer_target(
            flag,
            served_here,
            self.local,
            self.security,
            caller,
            service.as_str(),
        )
    }

    /// Keeps a started service's tasks, shows its outboxes to the metrics,
    /// and hands back its tonic server (`wrap`), marked serving.
    async fn keep<S, T: NamedService>(
        &mut self,
        started: storage::Started<S>,
        wrap: impl FnOnce(S) -> T,
    ) -> T {
        self.tasks.extend(started.tasks);
        if let Some(metrics) = &self.metrics {
            for watched in started.outboxes {
                metrics.watch_outbox(watched.name, watched.outbox, watched.db);
            }
        }
        self.reporter.set_serving::<T>().await;
        self.served_names.push(T::NAME);
        wrap(started.service)
    }

    async fn health(
        &mut self,
        db: sea_orm::DatabaseConnection,
    ) -> anyhow::Result<AccountHealthServiceServer<HealthService>> {
        let peers = account_health::start::Peers {
            credit: self.peer(ServiceName::Credit, Caller::Health)?,
            timeout: self.args.peer_timeout,
        };
        let started = account_health::start::start(
            db,
            self.args.webhooks.policy(),
            peers,
            self.args.health_read_cache,
        )
        .map_err(anyhow::Error::msg)?;
        if let Some(metrics) = &self.metrics {
            metrics.watch_ingestion(started.service.ingested());
        }
        let limit = self.args.max_message_bytes;
        Ok(self
            .keep(started, |service| {
                AccountHealthServiceServer::new(service)
                    .max_decoding_message_size(limit)
                    .max_encoding_message_size(limit)
            })
            .await)
    }

    async fn pipeline(
        &mut self,
        db: sea_orm::DatabaseConnection,
        config: opportunity_pipeline::PipelineConfig,
    ) -> anyhow::Result<OpportunityPipelineServiceServer<PipelineService>> {
        let peers = opportunity_pipeline::start::Peers {
            health: self.peer(ServiceName::Health, Caller::Pipeline)?,
            credit: self.peer(ServiceName::Credit, Caller::Pipeline)?,
            timeout: self.args.peer_timeout,
        };
        let started =
            opportunity_pipeline::start::start(db, config, self.args.webhooks.policy(), peers)
                .map_err(anyhow::Error::msg)?;
        let limit = self.args.max_message_bytes;
        Ok(self
            .keep(started, |service| {
                OpportunityPipelineServiceServer::new(service)
                    .max_decoding_message_size(limit)
                    .max_encoding_message_size(limit)
            })
            .await)
    }

    async fn credit(
        &mut self,
        db: sea_orm::DatabaseConnection,
    ) -> anyhow::Result<CompensationCreditServiceServer<CreditService>> {
        let started = compensation_credit::start::start(db, self.args.webhooks.policy())
            .map_err(anyhow::Error::msg)?;
        let limit = self.args.max_message_bytes;
        Ok(self
            .keep(started, |service| {
                CompensationCreditServiceServer::new(service)
                    .max_decoding_message_size(limit)
                    .max_encoding_message_size(limit)
            })
            .await)
    }

    /// Opens each selected service's database, starts the service and routes it (the
    /// first one starts the router, the others join it), then routes the health
    /// checks and the reflection of what is served.
    async fn route<L: Clone, H: tonic_health::pb::health_server::Health>(
        &mut self,
        builder: &mut Server<L>,
        pipeline_config: opportunity_pipeline::PipelineConfig,
        health_service: tonic_health::pb::health_server::HealthServer<H>,
    ) -> anyhow::Result<Router<L>> {
        let mut router: Option<Router<L>> = None;
        macro_rules! add {
            ($svc:expr) => {
                match router.take() {
                    Some(r) => r.add_service($svc),
                    None => builder.add_service($svc),
                }
            };
        }
        database::warn_if_sqlite_is_shared(&self.args.storage, self.services);
        for service in self.services {
            let mut db = database::open(&self.args.storage, *service).await?;
            if let Some(metrics) = &self.metrics {
                metrics.count_statements(&mut db, service.as_str());
            }
            router = Some(match service {
                ServiceName::Health => add!(self.health(db).await?),
                ServiceName::Pipeline => add!(self.pipeline(db, pipeline_config.clone()).await?),
                ServiceName::Credit => add!(self.credit(db).await?),
            });
        }
        let router = router.context("no service selected")?;
        // v1 for current clients, v1alpha for older grpcurl releases still in use.
        let reflection_v1 = reflection(&self.served_names)
            .build_v1()
            .context("building gRPC reflection")?;
        let reflection_v1alpha = reflection(&self.served_names)
            .build_v1alpha()
            .context("building gRPC reflection")?;
        Ok(router
            .add_service(health_service)
            .add_service(reflection_v1)
            .add_service(reflection_v1alpha))
    }
}

/// The HTTP/JSON routes: every unary method of the health checks, the reflection
/// and the services served.
fn http_routes(services: &[ServiceName]) -> anyhow::Result<crate::web::Routes> {
    let mut http_served = vec![HEALTH_SERVICE, REFLECTION_SERVICE];
    http_served.extend(services.iter().map(|service| service_full_name(*service)));
    crate::web::Routes::new(&http_served)
}

/// `--metrics-listen`: `/metrics` served on its own port, said on stdout.
async fn serve_metrics(args: &ServeArgs, metrics: Option<&Arc<Metrics>>) -> anyhow::Result<()> {
    if let (Some(addr), Some(metrics)) = (args.metrics_listen, metrics) {
        let bound = crate::metrics::serve(addr, metrics.clone()).await?;
        tracing::info!(address = %bound, "serving /metrics");
        println!("metrics on {bound}");
    }
    Ok(())
}

/// `serve --demo --keys-file F`: the demo's people get keys of their own,
/// shown once, so a rep can be seen reading only their own pay.
fn demo_keys(args: &ServeArgs) -> anyhow::Result<()> {
    if let (true, Some(keys_file)) = (args.demo, &args.auth.keys_file) {
        for (name, role, token) in crate::demo::people_keys(keys_file)? {
            println!("demo key for {name} ({}): {token}", role.as_str());
        }
    }
    Ok(())
}

/// The lines scripts and people read on stdout once the server listens, and
/// the demo's load in the background.
fn announce(
    args: &ServeArgs,
    security: &Security,
    local: SocketAddr,
    tls: bool,
) -> anyhow::Result<()> {
    let names: Vec<&str> = args.storage.services().iter().map(|s| s.as_str()).collect();
    tracing::info!(address = %local, services = ?names, "listening");
    // One plain line on stdout for scripts and tests that started us on port 0.
    println!("listening on {local}");
    if !args.no_console {
        let scheme = if tls { "https" } else { "http" };
        let path = crate::web::console::CONSOLE_PATH;
        println!("web console on {scheme}://{}{path}", own_address(local));
    }
    if args.demo {
        let (target, options) = security.to_self(&own_address(local), Caller::Demo)?;
        tokio::spawn(async move {
            match crate::demo::load(&target, &options).await {
                Ok(summary) => tracing::info!("{summary}"),
                Err(err) => tracing::error!(error = %err, "loading the demo data failed"),
            }
        });
    }
    Ok(())
}

type ServerFuture = std::pin::Pin<
    Box<dyn std::future::Future<Output = Result<(), tonic::transport::Error>> + Send>,
>;

/// Serves until SIGTERM or Ctrl-C, then refuses new calls (health checks
/// say NOT_SERVING) and gives the calls in flight `grace` to finish.
async fn until_stopped(
    serve: impl FnOnce(std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send>>) -> ServerFuture,
    reporter: tonic_health::server::HealthReporter,
    grace: Duration,
) -> anyhow::Result<()> {
    let (signalled_tx, signalled_rx) = tokio::sync::oneshot::channel::<()>();
    let shutdown = async move {
        shutdown_signal().await;
        tracing::info!(grace = ?grace, "shutting down: refusing new calls, finishing in-flight ones");
        reporter
            .set_not_serving::<AccountHealthServiceServer<HealthService>>()
            .await;
        reporter
            .set_not_serving::<OpportunityPipelineServiceServer<PipelineService>>()
            .await;
        reporter
            .set_not_serving::<CompensationCreditServiceServer<CreditService>>()
            .await;
        let _ = signalled_tx.send(());
    };
    let mut server = serve(Box::pin(shutdown));
    tokio::select! {
        result = &mut server => result.context("serving")?,
        Ok(()) = signalled_rx => {
            match tokio::time::timeout(grace, &mut server).await {
                Ok(result) => result.context("serving")?,
                Err(_) => tracing::warn!("shutdown grace expired with calls still in flight"),
            }
        }
    }
    Ok(())
}

pub async fn run(args: ServeArgs) -> anyhow::Result<()> {
    let services = args.storage.services();
    let pipeline_config = args.pipeline.config()?;
    demo_keys(&args)?;
    let security = Security::prepare(&args.auth, &args.storage.data_dir, args.listen)?;
    preflight(&args, &services, &security)?;
    // Bound first: the pipeline's default health address is this very port.
    let listener = TcpListener::bind(args.listen)
        .await
        .with_context(|| format!("binding {}", args.listen))?;
    let local = listener.local_addr()?;
    let (reporter, health_service) = tonic_health::server::health_reporter();
    let metrics = args.metrics_listen.map(|_| Arc::new(Metrics::new()));
    let http_routes = http_routes(&services)?;
    let limit = args.max_message_bytes;
    let mut builder = Server::builder()
        .timeout(args.request_timeout)
        .concurrency_limit_per_connection(args.concurrency_per_connection)
        .http2_keepalive_interval(Some(Duration::from_secs(30)))
        // HTTP/1.1 beside HTTP/2, for HTTP/JSON and gRPC-Web callers.
        .accept_http1(true)
        .trace_fn(rpc_span)
        // Browsers on other origins: preflights answered before anything else.
        .layer(crate::web::cors::layer(&args.cors_origins)?)
        // The web console's own files (`/console/`); its API calls go below.
        .layer(crate::web::console::ConsoleLayer::new(!args.no_console))
        // HTTP/JSON (Connect unary) and gRPC-Web become gRPC calls here, so
        // every layer below serves them as it serves gRPC.
        .layer(crate::web::ConnectLayer::new(
            http_routes,
            security.layer(),
            limit,
            args.request_timeout,
        ))
        .layer(tonic_web::GrpcWebLayer::new())
        // Every call is counted (refusals too), then passes the API key check.
        .layer(RpcMetricsLayer::new(metrics.clone(), args.request_timeout))
        .layer(security.layer())
        // Just outside the services: tonic's refusal of a message over
        // --max-message-bytes becomes RESOURCE_EXHAUSTED with an ErrorInfo.
        .layer(crate::limits::MessageLimitLayer);
    let tls = security.server_tls()?;

    let mut wiring = Wiring {
        args: &args,
        services: &services,
        local,
        security: &security,
        metrics: metrics.clone(),
        reporter: reporter.clone(),
        served_names: vec![HEALTH_SERVICE, REFLECTION_SERVICE],
        tasks: Vec::new(),
    };
    let router = wiring
        .route(&mut builder, pipeline_config, health_service)
        .await?;
    let mut tasks = std::mem::take(&mut wiring.tasks);
    tasks.push(security.spawn_reload());
    serve_metrics(&args, metrics.as_ref()).await?;
    announce(&args, &security, local, tls.is_some())?;
    // TCP_NODELAY on every accepted connection: without it a small response
    // written after another waits for the peer's delayed ACK (~40 ms).
    let serve = |shutdown| -> ServerFuture {
        match tls {
            Some(config) => Box::pin(
                router.serve_with_incoming_shutdown(tls_incoming(listener, config), shutdown),
            ),
            None => Box::pin(router.serve_with_incoming_shutdown(
                tonic::transport::server::TcpIncoming::from(listener).with_nodelay(Some(true)),
                shutdown,
            )),
        }
    };
    until_stopped(serve, reporter, args.shutdown_grace).await?;
    for task in tasks {
        task.abort();
    }
    tracing::info!("stopped");
    Ok(())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn this_process_is_reached_over_loopback_when_listening_everywhere() {
        let local: SocketAddr = "0.0.0.0:4321".parse().unwrap();
        assert_eq!(own_address(local), "127.0.0.1:4321");
        let v6: SocketAddr = "[::]:9".parse().unwrap();
        assert_eq!(own_address(v6), "[::1]:9");
        let exact: SocketAddr = "[::1]:9".parse().unwrap();
        assert_eq!(own_address(exact), "[::1]:9");
    }

    #[test]
    fn a_peer_is_the_flag_else_this_process_else_unknown() {
        let dir = tempfile::tempdir().unwrap();
        let args = crate::auth::ServeAuthArgs {
            keys_file: Some(dir.path().join("keys.json")),
            peer_api_key: None,
            tls_cert: None,
            tls_key: None,
            tls_ca: None,
        };
        let local: SocketAddr = "127.0.0.1:4321".parse().unwrap();
        let security = Security::prepare(&args, dir.path(), local).unwrap();
        let target = |flag, here| {
            peer_target(flag, here, local, &security, Caller::Pipeline, "health")
                .unwrap()
                .map(|peer| peer.address)
        };
        assert_eq!(
            target(Some("health:50051"), true).as_deref(),
            Some("health:50051")
        );
        assert_eq!(target(None, true).as_deref(), Some("http://127.0.0.1:4321"));
        assert_eq!(target(None, false), None);
    }
}
