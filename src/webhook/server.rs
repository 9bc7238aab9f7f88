//! The HTTPS server: transport only (TLS, HTTP/1.1 keep-alive and HTTP/2, limits, deadlines,
//! metrics, graceful shutdown). What a review means is `review::answer`'s business.
//!
//! Slow or stuck clients cannot starve the others: the TLS handshake, a request's headers, its body
//! and its answer each have a deadline; an idle connection is closed after `idle_timeout`; at most
//! `max_connections` are open; and at most `max_concurrent_reviews` reviews are judged at once, the
//! rest wait (within their own deadline) with their body already read.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulConnection;
use serde_json::Value;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore, SemaphorePermit};
use tokio::time::Instant;
use tokio_rustls::TlsAcceptor;
use tokio_rustls::server::TlsStream;
use tower::ServiceExt;

use super::cluster::ApiCluster;
use super::conn::{Clock, InProgress, Timed, idle_for};
use super::review::{self, BadReview, ClusterView, NoCluster, Outcome, Webhook};
use super::tls::{ServingCert, server_config};
use crate::admission::DefaultsConfig;
use crate::metrics::{GaugeGuard, Metrics};

/// Bodies above this get 413 (the apiserver's own request limit is 3 MiB; reviews carry the object
/// and the old object, so 7 MiB leaves room for both).
pub const BODY_LIMIT: usize = 7 * 1024 * 1024;
/// The apiserver keeps idle connections for 90 s; close ours later than that, never sooner.
pub const IDLE_TIMEOUT: Duration = Duration::from_secs(120);
/// A client must send a request's headers within this once it has started, so a stuck client
/// cannot hold a connection.
pub const HEADER_TIMEOUT: Duration = Duration::from_secs(10);
/// Used when the request has no `?timeout=`; the apiserver's maximum is 30 s.
pub const DEFAULT_DEADLINE: Duration = Duration::from_secs(10);
const MAX_DEADLINE: Duration = Duration::from_secs(30);

/// Limits and timeouts of the server. `Default` is what `run` serves with.
#[derive(Clone, Debug)]
pub struct ServerOptions {
    pub body_limit: usize,
    /// An HTTP/1.1 connection idle this long between requests is closed.
    pub idle_timeout: Duration,
    /// From the first byte of a request to the end of its headers (HTTP/1.1).
    pub header_timeout: Duration,
    pub handshake_timeout: Duration,
    /// For requests without `?timeout=`.
    pub default_deadline: Duration,
    /// Accepting pauses while this many connections are open.
    pub max_connections: usize,
    /// Reviews judged at once; more wait for a turn within their deadline.
    pub max_concurrent_reviews: usize,
    /// Bytes of request bodies held at once (reserved from Content-Length before a body is read;
    /// a body of unknown length reserves `body_limit`). More wait within their deadline. Never
    /// less than `body_limit`.
    pub max_body_bytes_in_flight: usize,
    /// How long shutdown waits for in-flight requests.
    pub shutdown_grace: Duration,
    /// PEM CA bundle: when set, /mutate and /validate answer only callers that present a client
    /// certificate it signed (the apiserver, configured to). Probes and /metrics stay open.
    pub client_ca_pem: Option<Vec<u8>>,
}

impl Default for ServerOptions {
    fn default() -> Self {
        let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
        ServerOptions {
            body_limit: BODY_LIMIT,
            idle_timeout: IDLE_TIMEOUT,
            header_timeout: HEADER_TIMEOUT,
            handshake_timeout: Duration::from_secs(10),
            default_deadline: DEFAULT_DEADLINE,
            max_connections: 4096,
            // Judging is CPU work of well under a millisecond: a few per core keep every core
            // busy without holding hundreds of parsed objects in memory at once.
            max_concurrent_reviews: (4 * cores).max(8),
            // Bodies, parsed and judged, cost a few times their size: this keeps 16 concurrent
            // reviews of 3 MB within the chart's memory limit (benches/results/memory.md).
            max_body_bytes_in_flight: 32 * 1024 * 1024,
            shutdown_grace: Duration::from_secs(30),
            client_ca_pem: None,
        }
    }
}

pub struct AppState {
    pub defaults: DefaultsConfig,
    /// None in standalone mode: cluster checks are skipped.
    pub cluster: Option<ApiCluster>,
    pub metrics: Metrics,
    pub cert: Arc<ServingCert>,
}

/// What the handlers share: the application state and the transport's own.
struct Shared {
    app: Arc<AppState>,
    options: ServerOptions,
    reviews: Semaphore,
    /// KiB of request bodies held at once (see `max_body_bytes_in_flight`).
    body_budget: Semaphore,
    /// Set when shutdown starts: `/readyz` turns unready so no new traffic is routed here.
    draining: AtomicBool,
}

/// The routes, with the default options. `serve` wraps them in TLS and the connection limits.
pub fn router(state: Arc<AppState>) -> Router {
    routes(shared(state, ServerOptions::default()))
}

fn shared(app: Arc<AppState>, options: ServerOptions) -> Arc<Shared> {
    Arc::new(Shared {
        app,
        reviews: Semaphore::new(options.max_concurrent_reviews.max(1)),
        body_budget: Semaphore::new(budget_kib(
            options.max_body_bytes_in_flight.max(options.body_limit),
        )),
        options,
        draining: AtomicBool::new(false),
    })
}

fn routes(shared: Arc<Shared>) -> Router {
    Router::new()
        .route("/mutate", post(mutate))
        .route("/validate", post(validate))
        .route("/healthz", get(|| async { "ok" }))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .with_state(shared)
}

/// `?timeout=10s` as the apiserver sends it: a Go duration (`5s`, `1m30s`, `1.5s`, `500ms`), or
/// plain seconds. Anything else, zero or negative gives `default` (the server's own, kept as it is
/// even above 30 s); a timeout of more than 30 s is capped.
pub fn parse_timeout(raw: Option<&str>, default: Duration) -> Duration {
    parse_go_duration(raw.unwrap_or_default().trim())
        .filter(|d| !d.is_zero())
        .map_or(default, |d| d.min(MAX_DEADLINE))
}

fn parse_go_duration(text: &str) -> Option<Duration> {
    if text.is_empty() {
        return None;
    }
    if let Ok(seconds) = text.parse::<f64>() {
        return (seconds.is_finite() && seconds >= 0.0).then(|| Duration::from_secs_f64(seconds));
    }
    let mut rest = text;
    let mut total = 0.0f64;
    while !rest.is_empty() {
        let number_end = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        let value: f64 = rest[..number_end].parse().ok()?;
        rest = &rest[number_end..];
        let unit_end = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let scale = match &rest[..unit_end] {
            "ns" => 1e-9,
            "us" | "µs" => 1e-6,
            "ms" => 1e-3,
            "s" => 1.0,
            "m" => 60.0,
            "h" => 3600.0,
            _ => return None,
        };
        rest = &rest[unit_end..];
        total += value * scale;
    }
    (total.is_finite() && total <= 1e9).then(|| Duration::from_secs_f64(total))
}

/// The `timeout` parameter of a query string, without failing on anything else in it.
fn timeout_param(query: Option<&str>) -> Option<&str> {
    query?
        .split('&')
        .find_map(|pair| pair.strip_prefix("timeout="))
}

async fn mutate(state: State<Arc<Shared>>, request: Request) -> Response {
    handle(Webhook::Mutate, state, request).await
}

async fn validate(state: State<Arc<Shared>>, request: Request) -> Response {
    handle(Webhook::Validate, state, request).await
}

/// A [`ClusterView`] that gives up when the review's budget for cluster checks is spent: a check
/// that cannot finish in time is skipped with a warning instead of failing the whole review.
struct Budgeted<'a, C> {
    inner: &'a C,
    until: Instant,
}

impl<C: ClusterView> ClusterView for Budgeted<'_, C> {
    async fn other_tenants(&self, namespace: &str, name: &str) -> Option<Vec<String>> {
        tokio::time::timeout_at(self.until, self.inner.other_tenants(namespace, name))
            .await
            .ok()
            .flatten()
    }
    async fn secret_exists(&self, namespace: &str, name: &str) -> Option<bool> {
        tokio::time::timeout_at(self.until, self.inner.secret_exists(namespace, name))
            .await
            .ok()
            .flatten()
    }
    fn admitted(&self, namespace: &str, name: &str) {
        self.inner.admitted(namespace, name);
    }
}

fn plain(status: StatusCode, message: impl Into<String>) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
        message.into() + "\n",
    )
        .into_response()
}

/// Whether the connection's peer presented a client certificate the client CA signed.
#[derive(Clone, Copy, Debug)]
struct Caller {
    certified: bool,
}

/// Why a request to /mutate or /validate got no AdmissionReview: each is one HTTP error, one
/// `verdict` of the request metrics and (but for an oversized body) one log line.
enum Unanswered {
    /// A client CA is configured and the caller presented no certificate it signed.
    Unauthenticated,
    /// No room for the body among those held at once within the deadline.
    NoRoomForBody {
        declared: Option<usize>,
    },
    TooLarge {
        limit: usize,
    },
    Unreadable(axum::Error),
    BodyTimeout,
    /// No turn to judge within the deadline.
    NoTurn,
    /// The body is not a review that can be answered.
    Malformed(BadReview),
    AnswerTimeout,
}

impl Unanswered {
    /// The `verdict` label of the request metrics.
    fn label(&self) -> &'static str {
        match self {
            Unanswered::Unauthenticated => "unauthenticated",
            Unanswered::NoRoomForBody { .. } | Unanswered::NoTurn => "overloaded",
            Unanswered::TooLarge { .. } => "too_large",
            Unanswered::Unreadable(_) | Unanswered::Malformed(_) => "bad_request",
            Unanswered::BodyTimeout | Unanswered::AnswerTimeout => "timeout",
        }
    }

    fn log(&self, webhook: Webhook, deadline: Duration) {
        let webhook = webhook.as_str();
        match self {
            Unanswered::Unauthenticated => {
                tracing::warn!(webhook, "a review without a client certificate was refused");
            }
            Unanswered::NoRoomForBody { declared } => tracing::warn!(
                webhook,
                ?deadline,
                bytes = *declared,
                "no room for the review's body within its deadline"
            ),
            Unanswered::TooLarge { .. } => {}
            Unanswered::Unreadable(error) => {
                tracing::debug!(webhook, %error, "cannot read the request body");
            }
            Unanswered::BodyTimeout => tracing::warn!(
                webhook,
                ?deadline,
                "request body not received within the deadline"
            ),
            Unanswered::NoTurn => tracing::warn!(
                webhook,
                ?deadline,
                "no turn to judge the review within its deadline"
            ),
            Unanswered::Malformed(bad) => {
                tracing::warn!(webhook, reason = %bad, "malformed admission review");
            }
            Unanswered::AnswerTimeout => {
                tracing::warn!(webhook, ?deadline, "admission review timed out");
            }
        }
    }

    fn response(self) -> Response {
        match self {
            Unanswered::Unauthenticated => plain(
                StatusCode::UNAUTHORIZED,
                "a client certificate signed by the configured client CA is required",
            ),
            Unanswered::NoRoomForBody { .. } => plain(
                StatusCode::SERVICE_UNAVAILABLE,
                "too many large reviews in progress; no room for this one within its deadline",
            ),
            Unanswered::TooLarge { limit } => plain(
                StatusCode::PAYLOAD_TOO_LARGE,
                format!("request body larger than {limit} bytes"),
            ),
            Unanswered::Unreadable(error) => plain(
                StatusCode::BAD_REQUEST,
                format!("cannot read the request body: {error}"),
            ),
            Unanswered::BodyTimeout => plain(
                StatusCode::REQUEST_TIMEOUT,
                "request body not received within the deadline",
            ),
            Unanswered::NoTurn => plain(
                StatusCode::SERVICE_UNAVAILABLE,
                "too many reviews in progress; no turn within the deadline",
            ),
            Unanswered::Malformed(bad) => plain(StatusCode::BAD_REQUEST, bad.to_string()),
            Unanswered::AnswerTimeout => plain(
                StatusCode::GATEWAY_TIMEOUT,
                "deadline exceeded while answering the review",
            ),
        }
    }
}

/// One request to /mutate or /validate, as its metric and log lines see it.
struct Call<'a> {
    webhook: Webhook,
    metrics: &'a Metrics,
    started: Instant,
    deadline: Duration,
}

impl Call<'_> {
    fn observe(&self, verdict: &'static str) {
        self.metrics.observe(
            self.webhook.as_str(),
            verdict,
            self.started.elapsed().as_secs_f64(),
        );
    }

    fn unanswered(&self, why: Unanswered) -> Response {
        self.observe(why.label());
        why.log(self.webhook, self.deadline);
        why.response()
    }

    fn answered(&self, review: Value, outcome: &Outcome) -> Response {
        let decision = &outcome.decision;
        self.observe(decision.label());
        tracing::info!(
            webhook = self.webhook.as_str(),
            uid = %outcome.uid,
            operation = %outcome.operation,
            namespace = %outcome.namespace,
            name = %outcome.name,
            dry_run = outcome.dry_run,
            verdict = decision.label(),
            violations = decision.violations(),
            micros = self.started.elapsed().as_micros() as u64,
            "admission review answered"
        );
        axum::Json(review).into_response()
    }
}

async fn handle(webhook: Webhook, State(shared): State<Arc<Shared>>, request: Request) -> Response {
    let started = Instant::now();
    let call = Call {
        webhook,
        metrics: &shared.app.metrics,
        started,
        deadline: parse_timeout(
            timeout_param(request.uri().query()),
            shared.options.default_deadline,
        ),
    };
    if !authorized(&shared.options, &request) {
        return call.unanswered(Unanswered::Unauthenticated);
    }
    let _in_flight = GaugeGuard::new(&shared.app.metrics.in_flight);
    carry(&call, &shared, request)
        .await
        .unwrap_or_else(|why| call.unanswered(why))
}

/// Without a client CA anyone may ask; with one, only a caller whose certificate it signed.
fn authorized(options: &ServerOptions, request: &Request) -> bool {
    options.client_ca_pem.is_none()
        || request
            .extensions()
            .get::<Caller>()
            .is_some_and(|c| c.certified)
}

/// Reads the body and judges it, each step within the review's deadline. The body's room and the
/// turn to judge are held until the answer is encoded.
async fn carry(call: &Call<'_>, shared: &Shared, request: Request) -> Result<Response, Unanswered> {
    let until = call.started + call.deadline;
    let limit = shared.options.body_limit;
    let _room = room_for_body(shared, declared_length(&request), until).await?;
    let body = read_within(request.into_body(), limit, until).await?;
    // A turn to judge; waiting for it counts against the deadline.
    let Ok(Ok(_turn)) = tokio::time::timeout_at(until, shared.reviews.acquire()).await else {
        return Err(Unanswered::NoTurn);
    };
    // Cluster checks get three quarters of what is left, so a slow API still leaves time to
    // answer (with a warning that the check was skipped) before the apiserver gives up.
    let left = until.saturating_duration_since(Instant::now());
    let cluster_until = Instant::now() + left * 3 / 4;
    let judging = judge(call.webhook, &shared.app, &body, cluster_until);
    match tokio::time::timeout_at(until, judging).await {
        Ok(Ok((review, outcome))) => Ok(call.answered(review, &outcome)),
        Ok(Err(bad)) => Err(Unanswered::Malformed(bad)),
        Err(_) => Err(Unanswered::AnswerTimeout),
    }
}

/// The body's Content-Length, if it declares a readable one.
fn declared_length(request: &Request) -> Option<usize> {
    request
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok()?.parse::<usize>().ok())
}

/// Room for this body among those held at once, before a byte of it is read: what it declares, or
/// the limit when it declares nothing.
async fn room_for_body(
    shared: &Shared,
    declared: Option<usize>,
    until: Instant,
) -> Result<SemaphorePermit<'_>, Unanswered> {
    let limit = shared.options.body_limit;
    let reserve =
        u32::try_from(budget_kib(declared.unwrap_or(limit).min(limit))).unwrap_or(u32::MAX);
    match tokio::time::timeout_at(until, shared.body_budget.acquire_many(reserve)).await {
        Ok(Ok(room)) => Ok(room),
        Ok(Err(_)) | Err(_) => Err(Unanswered::NoRoomForBody { declared }),
    }
}

async fn read_within(body: Body, limit: usize, until: Instant) -> Result<Bytes, Unanswered> {
    match tokio::time::timeout_at(until, read_body(body, limit)).await {
        Ok(Ok(body)) => Ok(body),
        Ok(Err(BodyError::TooLarge)) => Err(Unanswered::TooLarge { limit }),
        Ok(Err(BodyError::Read(error))) => Err(Unanswered::Unreadable(error)),
        Err(_) => Err(Unanswered::BodyTimeout),
    }
}

/// The answer to a review body; the cluster, when there is one, is asked until `cluster_until`.
async fn judge(
    webhook: Webhook,
    app: &AppState,
    body: &[u8],
    cluster_until: Instant,
) -> Result<(Value, Outcome), BadReview> {
    match &app.cluster {
        Some(cluster) => {
            let budgeted = Budgeted {
                inner: cluster,
                until: cluster_until,
            };
            review::answer(webhook, body, &app.defaults, &budgeted).await
        }
        None => review::answer(webhook, body, &app.defaults, &NoCluster).await,
    }
}

/// Bytes as KiB permits, rounded up.
fn budget_kib(bytes: usize) -> usize {
    bytes.div_ceil(1024).max(1)
}

enum BodyError {
    TooLarge,
    Read(axum::Error),
}

/// Bodies this much above the limit are still read (and thrown away) so the client, busy writing
/// them, gets to read its 413; beyond it the connection is closed instead.
const DRAIN_LIMIT: u64 = 32 * 1024 * 1024;

/// The body, up to `limit` bytes. A larger one is drained without being kept, so that the client
/// can finish writing it and read the 413 instead of a reset connection.
async fn read_body(mut body: Body, limit: usize) -> Result<Bytes, BodyError> {
    use http_body_util::BodyExt;
    let declared = axum::body::HttpBody::size_hint(&body).exact();
    if declared.is_some_and(|n| n > DRAIN_LIMIT) {
        return Err(BodyError::TooLarge);
    }
    let mut kept = bytes::BytesMut::with_capacity(
        declared.map_or(0, |n| usize::try_from(n).unwrap_or(0).min(limit)),
    );
    let mut seen: u64 = 0;
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(BodyError::Read)?;
        let Ok(data) = frame.into_data() else {
            continue;
        };
        seen += data.len() as u64;
        if seen > DRAIN_LIMIT {
            return Err(BodyError::TooLarge);
        }
        if seen <= limit as u64 {
            kept.extend_from_slice(&data);
        }
    }
    if seen > limit as u64 {
        return Err(BodyError::TooLarge);
    }
    Ok(kept.freeze())
}

async fn readyz(State(shared): State<Arc<Shared>>) -> Response {
    if shared.draining.load(Ordering::Relaxed) {
        plain(StatusCode::SERVICE_UNAVAILABLE, "shutting down")
    } else if shared.app.cluster.as_ref().is_some_and(|c| !c.synced()) {
        plain(
            StatusCode::SERVICE_UNAVAILABLE,
            "admission caches (Tenant and Secret metadata) not synced yet",
        )
    } else if shared.app.cert.is_loaded() {
        plain(StatusCode::OK, "ok")
    } else {
        plain(
            StatusCode::SERVICE_UNAVAILABLE,
            "no serving certificate loaded yet",
        )
    }
}

async fn metrics(State(shared): State<Arc<Shared>>) -> Response {
    let metrics = &shared.app.metrics;
    if let Some(not_after) = shared.app.cert.not_after() {
        metrics.set_certificate_expiry(not_after);
    }
    (
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        metrics.render(),
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

/// [`serve_with`] the default options.
pub async fn serve(
    listener: TcpListener,
    state: Arc<AppState>,
    shutdown: impl Future<Output = ()>,
) -> Result<(), ServeError> {
    serve_with(listener, state, ServerOptions::default(), shutdown).await
}

/// Serves until `shutdown` resolves, then stops accepting, turns `/readyz` unready, asks every
/// connection to close gracefully (HTTP/1.1: after its current request; HTTP/2: GOAWAY, streams in
/// progress finish), and waits up to `shutdown_grace` for them.
pub async fn serve_with(
    listener: TcpListener,
    state: Arc<AppState>,
    options: ServerOptions,
    shutdown: impl Future<Output = ()>,
) -> Result<(), ServeError> {
    let acceptor = TlsAcceptor::from(Arc::new(server_config(
        state.cert.clone(),
        options.client_ca_pem.as_deref(),
    )?));
    load_schema().await;
    let shared = shared(state, options);
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let serving = Arc::new(Serving {
        acceptor,
        app: routes(shared.clone()),
        http1: http1_builder(),
        http2: http2_builder(),
        stop: stop_rx,
        shared: shared.clone(),
    });
    let max_connections = shared
        .options
        .max_connections
        .clamp(1, Semaphore::MAX_PERMITS);
    let connections = Arc::new(Semaphore::new(max_connections));
    accept_until(&listener, &connections, &serving, shutdown).await;
    drop(listener);
    shared.draining.store(true, Ordering::Relaxed);
    let _ = stop_tx.send(true);
    tracing::info!("webhook server stopping: finishing in-flight requests");
    // Every connection task holds a permit until it ends.
    let all = u32::try_from(max_connections).unwrap_or(u32::MAX);
    let grace = shared.options.shutdown_grace;
    if tokio::time::timeout(grace, connections.acquire_many(all))
        .await
        .is_err()
    {
        tracing::warn!(
            grace = ?grace,
            "connections still open after the grace period; stopping anyway"
        );
    }
    Ok(())
}

/// Reads the Tenant schema now: the first review would otherwise pay for reading it.
async fn load_schema() {
    if !tokio::task::spawn_blocking(crate::admission::shape::load)
        .await
        .unwrap_or(false)
    {
        tracing::warn!(
            "the Tenant schema could not be read; lists in place of objects are left to the apiserver"
        );
    }
}

fn http1_builder() -> hyper::server::conn::http1::Builder {
    let mut http1 = hyper::server::conn::http1::Builder::new();
    // Read deadlines of HTTP/1.1 are `conn::Timed`'s (idle and header timeouts apart).
    http1.keep_alive(true).header_read_timeout(None);
    http1
}

fn http2_builder() -> hyper::server::conn::http2::Builder<TokioExecutor> {
    let mut http2 = hyper::server::conn::http2::Builder::new(TokioExecutor::new());
    http2
        .timer(TokioTimer::new())
        // Pings find peers that vanished without closing.
        .keep_alive_interval(Some(Duration::from_secs(30)))
        .keep_alive_timeout(Duration::from_secs(20))
        .max_concurrent_streams(256);
    http2
}

/// What every connection's task serves with.
struct Serving {
    acceptor: TlsAcceptor,
    app: Router,
    http1: hyper::server::conn::http1::Builder,
    http2: hyper::server::conn::http2::Builder<TokioExecutor>,
    /// Turns true when the server stops.
    stop: tokio::sync::watch::Receiver<bool>,
    shared: Arc<Shared>,
}

/// Accepts connections until `shutdown` resolves, each served by a task of its own.
async fn accept_until(
    listener: &TcpListener,
    connections: &Arc<Semaphore>,
    serving: &Arc<Serving>,
    shutdown: impl Future<Output = ()>,
) {
    tokio::pin!(shutdown);
    loop {
        // At the connection limit, wait for one to close before accepting more.
        let permit = tokio::select! {
            permit = connections.clone().acquire_owned() => match permit {
                Ok(p) => p,
                Err(_) => break,
            },
            () = &mut shutdown => break,
        };
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
        if let Err(error) = tcp.set_nodelay(true) {
            tracing::debug!(%peer, %error, "cannot set TCP_NODELAY");
        }
        tokio::spawn(serving.clone().connection(tcp, peer, permit));
    }
}

impl Serving {
    /// Serves one connection to its end: TLS, then HTTP/2 or HTTP/1.1 as ALPN chose. The permit
    /// counts it among the open connections until then.
    async fn connection(
        self: Arc<Self>,
        tcp: TcpStream,
        peer: SocketAddr,
        permit: OwnedSemaphorePermit,
    ) {
        let _permit = permit;
        let _open = GaugeGuard::new(&self.shared.app.metrics.connections);
        let Some(tls) = self.handshake(tcp, peer).await else {
            return;
        };
        let h2 = tls.get_ref().1.alpn_protocol() == Some(b"h2");
        let caller = caller_of(&tls);
        let clock = Clock::new();
        let service = {
            let (clock, app) = (clock.clone(), self.app.clone());
            hyper::service::service_fn(move |mut req: hyper::Request<hyper::body::Incoming>| {
                req.extensions_mut().insert(caller);
                let in_progress = InProgress::start(&clock);
                let answer = app.clone().oneshot(req);
                async move {
                    let response = answer.await;
                    drop(in_progress);
                    response
                }
            })
        };
        let options = &self.shared.options;
        let result = if h2 {
            let conn = self.http2.serve_connection(TokioIo::new(tls), service);
            drive(conn, &clock, Some(options.idle_timeout), self.stop.clone()).await
        } else {
            let io = Timed::new(
                tls,
                clock.clone(),
                options.idle_timeout,
                options.header_timeout,
            );
            let conn = self.http1.serve_connection(TokioIo::new(io), service);
            drive(conn, &clock, None, self.stop.clone()).await
        };
        if let Err(error) = result {
            tracing::debug!(%peer, %error, "connection ended with an error");
        }
    }

    /// The TLS session, or `None` (logged) when the handshake fails or takes too long.
    async fn handshake(&self, tcp: TcpStream, peer: SocketAddr) -> Option<TlsStream<TcpStream>> {
        let timeout = self.shared.options.handshake_timeout;
        match tokio::time::timeout(timeout, self.acceptor.accept(tcp)).await {
            Ok(Ok(tls)) => Some(tls),
            Ok(Err(error)) => {
                tracing::debug!(%peer, %error, "TLS handshake failed");
                None
            }
            Err(_) => {
                tracing::debug!(%peer, "TLS handshake timed out");
                None
            }
        }
    }
}

fn caller_of(tls: &TlsStream<TcpStream>) -> Caller {
    // rustls verified it against the client CA if one was sent (none configured: none asked for).
    Caller {
        certified: tls
            .get_ref()
            .1
            .peer_certificates()
            .is_some_and(|c| !c.is_empty()),
    }
}

/// Runs one connection to its end; closes it gracefully when the server stops or, with
/// `idle_close`, when no request has been in progress for that long (HTTP/2's idle timeout).
async fn drive<C, E>(
    conn: C,
    clock: &Clock,
    idle_close: Option<Duration>,
    mut stop: tokio::sync::watch::Receiver<bool>,
) -> Result<(), E>
where
    C: GracefulConnection<Error = E>,
{
    tokio::pin!(conn);
    let close = async {
        let idle = async {
            match idle_close {
                Some(idle) => idle_for(clock, idle).await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            _ = stop.wait_for(|stopping| *stopping) => {}
            () = idle => {}
        }
    };
    tokio::select! {
        result = conn.as_mut() => return result,
        () = close => {}
    }
    conn.as_mut().graceful_shutdown();
    conn.await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timeouts_are_read_as_go_durations() {
        let s = Duration::from_secs;
        let parse = |raw| parse_timeout(raw, DEFAULT_DEADLINE);
        assert_eq!(parse(Some("5s")), s(5));
        assert_eq!(parse(Some("30s")), s(30));
        assert_eq!(parse(Some("1m0s")), s(30), "capped at 30 s");
        assert_eq!(parse(Some("1.5s")), Duration::from_millis(1500));
        assert_eq!(parse(Some("500ms")), Duration::from_millis(500));
        assert_eq!(parse(Some("7")), s(7));
        assert_eq!(parse(Some("0s")), DEFAULT_DEADLINE);
        assert_eq!(parse(Some("-3s")), DEFAULT_DEADLINE);
        assert_eq!(parse(Some("soon")), DEFAULT_DEADLINE);
        assert_eq!(parse(Some("5x")), DEFAULT_DEADLINE);
        assert_eq!(parse(Some("inf")), DEFAULT_DEADLINE);
        assert_eq!(parse(Some("NaN")), DEFAULT_DEADLINE);
        assert_eq!(parse(Some("")), DEFAULT_DEADLINE);
        assert_eq!(parse(None), DEFAULT_DEADLINE);
    }

    #[test]
    fn without_a_usable_timeout_the_servers_own_default_applies_uncapped() {
        let s = Duration::from_secs;
        assert_eq!(parse_timeout(Some("soon"), s(3)), s(3));
        assert_eq!(parse_timeout(None, s(45)), s(45));
        assert_eq!(parse_timeout(Some("5s"), s(45)), s(5));
    }

    /// A cluster that never answers in time.
    struct StuckCluster;

    impl ClusterView for StuckCluster {
        async fn other_tenants(&self, _: &str, _: &str) -> Option<Vec<String>> {
            tokio::time::sleep(Duration::from_secs(3600)).await;
            Some(vec!["never".into()])
        }
        async fn secret_exists(&self, _: &str, _: &str) -> Option<bool> {
            tokio::time::sleep(Duration::from_secs(3600)).await;
            Some(false)
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_stuck_cluster_check_is_skipped_with_a_warning_within_the_budget() {
        let body = std::fs::read(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/webhooks/fixtures/create-valid.request.json"
        ))
        .unwrap();
        let started = Instant::now();
        let budgeted = Budgeted {
            inner: &StuckCluster,
            until: started + Duration::from_millis(300),
        };
        let (review, outcome) = review::answer(
            Webhook::Validate,
            &body,
            &DefaultsConfig::default(),
            &budgeted,
        )
        .await
        .unwrap();
        assert!(started.elapsed() < Duration::from_secs(1));
        assert_eq!(outcome.decision.label(), "allowed");
        assert!(
            review["response"]["warnings"]
                .to_string()
                .contains("could not check for another Tenant"),
            "{review}"
        );
    }

    #[test]
    fn the_timeout_parameter_is_found_among_others() {
        assert_eq!(timeout_param(Some("timeout=5s")), Some("5s"));
        assert_eq!(timeout_param(Some("a=b&timeout=2s&c")), Some("2s"));
        assert_eq!(timeout_param(Some("xtimeout=2s")), None);
        assert_eq!(timeout_param(None), None);
    }
}
