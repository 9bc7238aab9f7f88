//! The HTTPS server: transport only (TLS, HTTP/1.1 keep-alive and HTTP/2, limits, deadlines,
//! metrics, graceful shutdown). What a review means is `review::answer`'s business.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, Query, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use serde::Deserialize;
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;
use tower::ServiceExt;

use super::cluster::ApiCluster;
use super::metrics::Metrics;
use super::review::{self, NoCluster, Webhook};
use super::tls::{ServingCert, server_config};
use crate::admission::DefaultsConfig;

/// Bodies above this get 413 (the apiserver's own request limit is 3 MiB; reviews carry the object
/// and the old object, so 7 MiB leaves room for both).
pub const BODY_LIMIT: usize = 7 * 1024 * 1024;
/// The apiserver keeps idle connections for 90 s; close ours later than that, never sooner.
pub const IDLE_TIMEOUT: Duration = Duration::from_secs(120);
/// A client must send its request headers within this, so a stuck client cannot hold a task.
pub const HEADER_TIMEOUT: Duration = Duration::from_secs(10);
/// Used when the request has no `?timeout=`; the apiserver's maximum is 30 s.
pub const DEFAULT_DEADLINE: Duration = Duration::from_secs(10);
const MAX_DEADLINE: Duration = Duration::from_secs(30);
/// TLS handshakes that take longer are dropped.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

pub struct AppState {
    pub defaults: DefaultsConfig,
    /// None in standalone mode: cluster checks are skipped.
    pub cluster: Option<ApiCluster>,
    pub metrics: Metrics,
    pub cert: Arc<ServingCert>,
}

pub fn router(state: Arc<AppState>) -> Router {
    Router::new()
        .route("/mutate", post(mutate))
        .route("/validate", post(validate))
        .route("/healthz", get(|| async { "ok" }))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .layer(DefaultBodyLimit::max(BODY_LIMIT))
        .with_state(state)
}

#[derive(Deserialize)]
struct Params {
    timeout: Option<String>,
}

/// `?timeout=10s` as the apiserver sends it (a Go duration; plain seconds accepted too).
pub fn parse_timeout(raw: Option<&str>) -> Duration {
    let Some(raw) = raw else {
        return DEFAULT_DEADLINE;
    };
    let (number, unit) = raw.trim().split_at(
        raw.trim()
            .find(|c: char| c.is_alphabetic())
            .unwrap_or(raw.trim().len()),
    );
    let Ok(value) = number.parse::<f64>() else {
        return DEFAULT_DEADLINE;
    };
    let seconds = match unit {
        "" | "s" => value,
        "ms" => value / 1000.0,
        "m" => value * 60.0,
        _ => return DEFAULT_DEADLINE,
    };
    if !seconds.is_finite() || seconds <= 0.0 {
        return DEFAULT_DEADLINE;
    }
    Duration::from_secs_f64(seconds).min(MAX_DEADLINE)
}

async fn mutate(state: State<Arc<AppState>>, params: Query<Params>, body: Bytes) -> Response {
    handle(Webhook::Mutate, state, params, body).await
}

async fn validate(state: State<Arc<AppState>>, params: Query<Params>, body: Bytes) -> Response {
    handle(Webhook::Validate, state, params, body).await
}

async fn handle(
    webhook: Webhook,
    State(state): State<Arc<AppState>>,
    Query(params): Query<Params>,
    body: Bytes,
) -> Response {
    let started = Instant::now();
    state.metrics.in_flight.inc();
    let deadline = parse_timeout(params.timeout.as_deref());
    let answer = async {
        match &state.cluster {
            Some(cluster) => review::answer(webhook, &body, &state.defaults, cluster).await,
            None => review::answer(webhook, &body, &state.defaults, &NoCluster).await,
        }
    };
    let result = tokio::time::timeout(deadline, answer).await;
    state.metrics.in_flight.dec();
    let seconds = started.elapsed().as_secs_f64();
    match result {
        Ok(Ok((review, outcome))) => {
            state
                .metrics
                .observe(webhook.as_str(), outcome.verdict, seconds);
            tracing::info!(
                webhook = webhook.as_str(),
                uid = %outcome.uid,
                operation = %outcome.operation,
                namespace = %outcome.namespace,
                name = %outcome.name,
                dry_run = outcome.dry_run,
                verdict = outcome.verdict,
                violations = outcome.violations,
                micros = started.elapsed().as_micros() as u64,
                "admission review answered"
            );
            axum::Json(review).into_response()
        }
        Ok(Err(bad)) => {
            state
                .metrics
                .observe(webhook.as_str(), "bad_request", seconds);
            tracing::warn!(webhook = webhook.as_str(), reason = %bad, "malformed admission review");
            (StatusCode::BAD_REQUEST, bad.to_string()).into_response()
        }
        Err(_) => {
            state.metrics.observe(webhook.as_str(), "timeout", seconds);
            tracing::warn!(
                webhook = webhook.as_str(),
                ?deadline,
                "admission review timed out"
            );
            (
                StatusCode::GATEWAY_TIMEOUT,
                "deadline exceeded while answering the review",
            )
                .into_response()
        }
    }
}

async fn readyz(State(state): State<Arc<AppState>>) -> Response {
    if state.cert.is_loaded() {
        "ok".into_response()
    } else {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            "no serving certificate loaded yet",
        )
            .into_response()
    }
}

async fn metrics(State(state): State<Arc<AppState>>) -> Response {
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        state.metrics.render(),
    )
        .into_response()
}

#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("TLS configuration: {0}")]
    Tls(#[from] super::tls::TlsError),
}

pub async fn bind(addr: SocketAddr) -> Result<TcpListener, ServeError> {
    TcpListener::bind(addr)
        .await
        .map_err(|source| ServeError::Bind { addr, source })
}

/// Serves until `shutdown` resolves, then stops accepting and waits for in-flight connections
/// (each finishes its current request; idle keep-alive connections are closed).
pub async fn serve(
    listener: TcpListener,
    state: Arc<AppState>,
    shutdown: impl Future<Output = ()>,
) -> Result<(), ServeError> {
    let acceptor = TlsAcceptor::from(Arc::new(server_config(state.cert.clone())?));
    let app = router(state);
    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .keep_alive(true)
        .timer(TokioTimer::new())
        .header_read_timeout(IDLE_TIMEOUT.max(HEADER_TIMEOUT));
    builder
        .http2()
        .timer(TokioTimer::new())
        .keep_alive_interval(Some(Duration::from_secs(30)));
    let builder = Arc::new(builder);
    tokio::pin!(shutdown);
    loop {
        let (tcp, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(conn) => conn,
                Err(error) => {
                    // Out of file descriptors and the like: back off instead of spinning.
                    tracing::warn!(%error, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let _ = tcp.set_nodelay(true);
        let (acceptor, app, builder) = (acceptor.clone(), app.clone(), builder.clone());
        let watcher = graceful.watcher();
        tokio::spawn(async move {
            let tls = match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(tcp)).await {
                Ok(Ok(tls)) => tls,
                Ok(Err(error)) => {
                    tracing::debug!(%peer, %error, "TLS handshake failed");
                    return;
                }
                Err(_) => return,
            };
            let service = hyper::service::service_fn(move |req| app.clone().oneshot(req));
            let conn = builder.serve_connection(TokioIo::new(tls), service);
            if let Err(error) = watcher.watch(conn.into_owned()).await {
                tracing::debug!(%peer, %error, "connection ended with an error");
            }
        });
    }
    drop(listener);
    tracing::info!("webhook server stopping: finishing in-flight requests");
    tokio::select! {
        () = graceful.shutdown() => {}
        () = tokio::time::sleep(Duration::from_secs(30)) => tracing::warn!("in-flight requests still running after 30s; stopping anyway"),
    }
    Ok(())
}
