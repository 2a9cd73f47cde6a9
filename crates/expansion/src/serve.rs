//! `expansion serve`: the gRPC server with reflection, health checking,
//! per-RPC tracing spans, limits and graceful shutdown.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use account_health::{AccountHealthServiceServer, HealthService};
use anyhow::Context;
use compensation_credit::{CompensationCreditServiceServer, CreditService};
use opportunity_pipeline::{
    GrpcHealthGateway, HealthGateway, NoHealthService, OpportunityPipelineServiceServer,
    PipelineService,
};
use tokio::net::TcpListener;
use tonic::codegen::http;
use tonic::server::NamedService;
use tonic::transport::Server;
use tonic::transport::server::Router;

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
) -> anyhow::Result<Option<(String, contracts::client::ClientOptions)>> {
    match flag {
        Some(address) => Ok(Some((
            address.to_owned(),
            security.to_peer(address, service)?,
        ))),
        None if served_here => Ok(Some(security.to_self(&own_address(local), caller)?)),
        None => Ok(None),
    }
}

/// A lazy channel to a peer service, if this deployment knows where it is.
fn peer_channel(
    target: Option<(String, contracts::client::ClientOptions)>,
    timeout: Duration,
) -> anyhow::Result<Option<contracts::client::AuthChannel>> {
    target
        .map(|(address, options)| {
            contracts::client::lazy(&address, &options.with_timeout(timeout))
                .map_err(anyhow::Error::msg)
        })
        .transpose()
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

pub async fn run(args: ServeArgs) -> anyhow::Result<()> {
    let services = args.storage.services();
    let pipeline_config = args.pipeline.config()?;
    if args.demo
        && let Some(keys_file) = &args.auth.keys_file
    {
        // The demo's people get keys of their own, shown once, so a rep can be
        // seen reading only their own pay.
        for (name, role, token) in crate::demo::people_keys(keys_file)? {
            println!("demo key for {name} ({}): {token}", role.as_str());
        }
    }
    let security = Security::prepare(&args.auth, &args.storage.data_dir, args.listen)?;
    preflight(&args, &services, &security)?;
    // Bound first: the pipeline's default health address is this very port.
    let listener = TcpListener::bind(args.listen)
        .await
        .with_context(|| format!("binding {}", args.listen))?;
    let local = listener.local_addr()?;
    let (health_reporter, health_service) = tonic_health::server::health_reporter();
    let mut served_names: Vec<&'static str> = vec![HEALTH_SERVICE, REFLECTION_SERVICE];

    let limit = args.max_message_bytes;
    let metrics = args.metrics_listen.map(|_| Arc::new(Metrics::new()));
    let mut http_served = served_names.clone();
    http_served.extend(services.iter().map(|service| service_full_name(*service)));
    let http_routes = crate::web::Routes::new(&http_served)?;
    let builder = Server::builder()
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
        .layer(RpcMetricsLayer::new(metrics.clone(), args.request_timeout));
    let tls = security.server_tls()?;
    // Every call is counted (refusals too), then passes the API key check.
    let mut builder = builder
        .layer(security.layer())
        // Just outside the services: tonic's refusal of a message over
        // --max-message-bytes becomes RESOURCE_EXHAUSTED with an ErrorInfo.
        .layer(crate::limits::MessageLimitLayer);
    let mut router: Option<Router<_>> = None;

    for service in &services {
        let db = database::open(&args.storage, *service).await?;
        router = Some(match service {
            ServiceName::Health => {
                let outbox_db = db.clone();
                let health = HealthService::new(db).with_webhook_policy(args.webhooks.policy());
                let _webhooks = health.webhooks().spawn().map_err(anyhow::Error::msg)?;
                if let Some(metrics) = &metrics {
                    let hooks = health.webhooks();
                    metrics.watch_outbox(
                        "health_webhooks",
                        hooks.outbox().clone(),
                        hooks.db().pool().clone(),
                    );
                }
                // Ends with the process: it only recomputes derived scores.
                let _worker = health.spawn_background();
                let credit = peer_channel(
                    peer_target(
                        args.credit_addr.as_deref(),
                        services.contains(&ServiceName::Credit),
                        local,
                        &security,
                        Caller::Health,
                        "credit",
                    )?,
                    args.health_timeout,
                )?;
                let outbox =
                    account_health::outbox::outbox(health.write_gate(), health.event_log());
                if let Some(metrics) = &metrics {
                    metrics.watch_outbox("health", outbox.clone(), outbox_db.clone());
                    metrics.watch_ingestion(health.ingested());
                }
                let _outbox = outbox.spawn(
                    outbox_db,
                    Arc::new(account_health::outbox::HealthCourier::new(credit)),
                );
                let svc = AccountHealthServiceServer::new(health)
                    .max_decoding_message_size(limit)
                    .max_encoding_message_size(limit);
                health_reporter
                    .set_serving::<AccountHealthServiceServer<HealthService>>()
                    .await;
                served_names
                    .push(<AccountHealthServiceServer<HealthService> as NamedService>::NAME);
                match router.take() {
                    Some(r) => r.add_service(svc),
                    None => builder.add_service(svc),
                }
            }
            ServiceName::Pipeline => {
                let health_target = peer_target(
                    args.health_addr.as_deref(),
                    services.contains(&ServiceName::Health),
                    local,
                    &security,
                    Caller::Pipeline,
                    "health",
                )?;
                let health: Arc<dyn HealthGateway> = match health_target.clone() {
                    Some((addr, options)) => {
                        tracing::info!(health = %addr, "pipeline asks the health service at");
                        Arc::new(
                            GrpcHealthGateway::new(&addr, args.health_timeout, &options)
                                .map_err(anyhow::Error::msg)?,
                        )
                    }
                    None => {
                        tracing::warn!(
                            "no --health-addr: pipeline calls that need the health service answer UNAVAILABLE"
                        );
                        Arc::new(NoHealthService)
                    }
                };
                let credit = peer_channel(
                    peer_target(
                        args.credit_addr.as_deref(),
                        services.contains(&ServiceName::Credit),
                        local,
                        &security,
                        Caller::Pipeline,
                        "credit",
                    )?,
                    args.health_timeout,
                )?;
                // Who accepts a handoff is asked of the credit service's people directory.
                let people: Arc<dyn opportunity_pipeline::PeopleDirectory> = match &credit {
                    Some(channel) => Arc::new(opportunity_pipeline::GrpcPeopleDirectory::new(
                        channel.clone(),
                        args.health_timeout,
                    )),
                    None => Arc::new(opportunity_pipeline::NoPeopleDirectory),
                };
                // Won deals reach health (the subscription) and credit (the credits).
                let courier = opportunity_pipeline::outbox::PipelineCourier::new(
                    peer_channel(health_target, args.health_timeout)?,
                    credit,
                );
                let outbox_db = db.clone();
                let pipeline = PipelineService::new(db, health, pipeline_config.clone())
                    .with_people(people)
                    .with_webhook_policy(args.webhooks.policy());
                let _webhooks = pipeline.webhooks().spawn().map_err(anyhow::Error::msg)?;
                if let Some(metrics) = &metrics {
                    let hooks = pipeline.webhooks();
                    metrics.watch_outbox(
                        "pipeline_webhooks",
                        hooks.outbox().clone(),
                        hooks.db().pool().clone(),
                    );
                }
                let outbox = opportunity_pipeline::outbox::outbox(
                    pipeline.write_gate(),
                    pipeline.event_log(),
                );
                if let Some(metrics) = &metrics {
                    metrics.watch_outbox("pipeline", outbox.clone(), outbox_db.clone());
                }
                let _outbox = outbox.spawn(outbox_db, Arc::new(courier));
                let svc = OpportunityPipelineServiceServer::new(pipeline)
                    .max_decoding_message_size(limit)
                    .max_encoding_message_size(limit);
                health_reporter
                    .set_serving::<OpportunityPipelineServiceServer<PipelineService>>()
                    .await;
                served_names.push(
                    <OpportunityPipelineServiceServer<PipelineService> as NamedService>::NAME,
                );
                match router.take() {
                    Some(r) => r.add_service(svc),
                    None => builder.add_service(svc),
                }
            }
            ServiceName::Credit => {
                let credit = CreditService::new(db).with_webhook_policy(args.webhooks.policy());
                let _webhooks = credit.webhooks().spawn().map_err(anyhow::Error::msg)?;
                if let Some(metrics) = &metrics {
                    let hooks = credit.webhooks();
                    metrics.watch_outbox(
                        "credit_webhooks",
                        hooks.outbox().clone(),
                        hooks.db().pool().clone(),
                    );
                }
                let svc = CompensationCreditServiceServer::new(credit)
                    .max_decoding_message_size(limit)
                    .max_encoding_message_size(limit);
                health_reporter
                    .set_serving::<CompensationCreditServiceServer<CreditService>>()
                    .await;
                served_names
                    .push(<CompensationCreditServiceServer<CreditService> as NamedService>::NAME);
                match router.take() {
                    Some(r) => r.add_service(svc),
                    None => builder.add_service(svc),
                }
            }
        });
    }
    let router = router.context("no service selected")?;
    // v1 for current clients, v1alpha for older grpcurl releases still in use.
    let reflection_v1 = reflection(&served_names)
        .build_v1()
        .context("building gRPC reflection")?;
    let reflection_v1alpha = reflection(&served_names)
        .build_v1alpha()
        .context("building gRPC reflection")?;
    let router = router
        .add_service(health_service)
        .add_service(reflection_v1)
        .add_service(reflection_v1alpha);

    let _reload = security.spawn_reload();
    let names: Vec<&str> = services.iter().map(|s| s.as_str()).collect();
    if let (Some(addr), Some(metrics)) = (args.metrics_listen, &metrics) {
        let bound = crate::metrics::serve(addr, metrics.clone()).await?;
        tracing::info!(address = %bound, "serving /metrics");
        println!("metrics on {bound}");
    }
    tracing::info!(address = %local, services = ?names, "listening");
    // One plain line on stdout for scripts and tests that started us on port 0.
    println!("listening on {local}");
    if !args.no_console {
        let scheme = if tls.is_some() { "https" } else { "http" };
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

    let grace = args.shutdown_grace;
    let reporter = health_reporter.clone();
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
    // TCP_NODELAY on every accepted connection: without it a small response
    // written after another waits for the peer's delayed ACK (~40 ms).
    let mut server: std::pin::Pin<
        Box<dyn std::future::Future<Output = Result<(), tonic::transport::Error>> + Send>,
    > = match tls {
        Some(config) => {
            Box::pin(router.serve_with_incoming_shutdown(tls_incoming(listener, config), shutdown))
        }
        None => Box::pin(router.serve_with_incoming_shutdown(
            tonic::transport::server::TcpIncoming::from(listener).with_nodelay(Some(true)),
            shutdown,
        )),
    };
    tokio::select! {
        result = &mut server => result.context("serving")?,
        Ok(()) = signalled_rx => {
            match tokio::time::timeout(grace, &mut server).await {
                Ok(result) => result.context("serving")?,
                Err(_) => tracing::warn!("shutdown grace expired with calls still in flight"),
            }
        }
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
                .map(|(address, _)| address)
        };
        assert_eq!(
            target(Some("health:50051"), true).as_deref(),
            Some("health:50051")
        );
        assert_eq!(target(None, true).as_deref(), Some("http://127.0.0.1:4321"));
        assert_eq!(target(None, false), None);
    }
}
