//! The suite's client of the webhook: TLS connections trusting --ca only (set up as the
//! reconciler's health checks set theirs up, `crate::certs::client`), HTTP/1.1 and HTTP/2 requests
//! on them, and raw bytes for what no HTTP client would send.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::client::conn::{http1, http2};
use hyper_util::rt::{TokioExecutor, TokioIo};
use rustls::{ClientConfig, RootCertStore, SupportedProtocolVersion};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;

use crate::certs::client::{add_pem, client_config};

#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct ConnError(pub String);

/// How long the endpoint may take to accept its first connection.
const STARTUP_WAIT: Duration = Duration::from_secs(10);

/// Both TLS versions, as the apiserver offers them.
pub static BOTH_VERSIONS: [&SupportedProtocolVersion; 2] =
    [&rustls::version::TLS13, &rustls::version::TLS12];

pub type Tls = tokio_rustls::client::TlsStream<TcpStream>;

/// The webhook server checked.
pub struct Target {
    host: String,
    port: u16,
    /// The name verified in the server's certificate (and sent as SNI).
    tls_name: String,
    /// The --ca file, for the configurations the TLS-version and HTTP/2 checks build.
    ca: Option<PathBuf>,
    /// The configuration of the HTTP/1.1 connections.
    tls: Arc<ClientConfig>,
}

impl Target {
    /// The server at `url` (https://host[:port]) whose certificate names `server_name` (the host
    /// when `None`) and is signed by the CA in the file `ca`.
    pub fn new(url: &str, server_name: Option<&str>, ca: Option<&Path>) -> Result<Target, String> {
        let url = url.trim_end_matches('/');
        let authority = url
            .strip_prefix("https://")
            .ok_or("the URL must start with https://")?;
        let (host, port) = match authority.rsplit_once(':') {
            Some((h, p)) => (
                h.trim_matches(['[', ']']).to_owned(),
                p.parse::<u16>().map_err(|_| "bad port")?,
            ),
            None => (authority.to_owned(), 443),
        };
        let tls = Arc::new(tls_config(ca, &BOTH_VERSIONS, &[b"http/1.1"])?);
        let tls_name = server_name.map_or_else(|| host.clone(), str::to_owned);
        Ok(Target {
            host,
            port,
            tls_name,
            ca: ca.map(Path::to_path_buf),
            tls,
        })
    }

    /// `host:port`, the Host header and the authority of HTTP/2 requests.
    pub fn authority(&self) -> String {
        format!("{}:{}", self.host, self.port)
    }

    /// An endpoint just started (or a `kubectl port-forward` just backgrounded) may not accept
    /// connections yet: give it a moment before the first check counts.
    pub async fn wait_until_listening(&self) {
        let deadline = tokio::time::Instant::now() + STARTUP_WAIT;
        while TcpStream::connect((self.host.as_str(), self.port))
            .await
            .is_err()
            && tokio::time::Instant::now() < deadline
        {
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// A configuration trusting the --ca file, speaking `versions` and offering `alpn`.
    pub fn config(
        &self,
        versions: &[&'static SupportedProtocolVersion],
        alpn: &[&[u8]],
    ) -> Result<Arc<ClientConfig>, String> {
        tls_config(self.ca.as_deref(), versions, alpn).map(Arc::new)
    }

    pub async fn connect(&self, tls: Arc<ClientConfig>) -> Result<Tls, ConnError> {
        let tcp = TcpStream::connect((self.host.as_str(), self.port))
            .await
            .map_err(|e| ConnError(format!("connect: {e}")))?;
        let name = rustls::pki_types::ServerName::try_from(self.tls_name.clone())
            .map_err(|e| ConnError(e.to_string()))?;
        TlsConnector::from(tls)
            .connect(name, tcp)
            .await
            .map_err(|e| ConnError(format!("TLS: {e}")))
    }

    /// Sends `bytes` on a new connection and reads until the server closes it, or `wait` passes.
    pub async fn send_raw(&self, bytes: &[u8], wait: Duration) -> Result<RawAnswer, ConnError> {
        let mut tls = self.connect(self.tls.clone()).await?;
        tls.write_all(bytes)
            .await
            .map_err(|e| ConnError(format!("write: {e}")))?;
        tls.flush()
            .await
            .map_err(|e| ConnError(format!("write: {e}")))?;
        let started = Instant::now();
        let mut answer = Vec::new();
        let read = tokio::time::timeout(wait, tls.read_to_end(&mut answer)).await;
        let took = started.elapsed();
        let status = String::from_utf8_lossy(&answer)
            .lines()
            .next()
            .unwrap_or("connection closed")
            .to_owned();
        Ok(RawAnswer {
            status,
            took,
            closed: read.is_ok(),
        })
    }
}

/// What the server said to raw bytes.
pub struct RawAnswer {
    /// The answer's first line ("connection closed" when there was none).
    pub status: String,
    /// From the last byte sent until the server closed the connection (or the wait ended).
    pub took: Duration,
    /// Whether the server closed the connection within the wait.
    pub closed: bool,
}

/// A configuration trusting the certificates of the file `ca` only (none without one), speaking
/// `versions` and offering `alpn`.
fn tls_config(
    ca: Option<&Path>,
    versions: &[&'static SupportedProtocolVersion],
    alpn: &[&[u8]],
) -> Result<ClientConfig, String> {
    let mut roots = RootCertStore::empty();
    if let Some(path) = ca {
        let pem =
            std::fs::read(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
        add_pem(&mut roots, &pem).map_err(|e| in_file(&e, path))?;
    }
    client_config(roots, Some(versions), alpn).map_err(|e| e.to_string())
}

/// `add_pem` says what it could not read ("bad PEM: ...", "bad CA: ..."); the user is also told
/// in which file.
fn in_file(error: &str, path: &Path) -> String {
    match error.split_once(": ") {
        Some((what, why)) => format!("{what} in {}: {why}", path.display()),
        None => format!("{error} in {}", path.display()),
    }
}

/// An HTTP/1.1 connection, kept alive across requests.
pub struct Conn {
    sender: http1::SendRequest<Full<Bytes>>,
}

impl Conn {
    pub async fn open(target: &Target) -> Result<Conn, ConnError> {
        let tls = target.connect(target.tls.clone()).await?;
        let (sender, conn) = http1::handshake(TokioIo::new(tls))
            .await
            .map_err(|e| ConnError(e.to_string()))?;
        tokio::spawn(conn);
        Ok(Conn { sender })
    }

    pub async fn post(
        &mut self,
        host: &str,
        path: &str,
        body: Vec<u8>,
    ) -> Result<(u16, Vec<u8>), ConnError> {
        self.sender
            .ready()
            .await
            .map_err(|e| ConnError(format!("connection not reusable: {e}")))?;
        let req = hyper::Request::post(path)
            .header("host", host)
            .header("content-type", "application/json")
            .body(Full::new(Bytes::from(body)))
            .map_err(|e| ConnError(e.to_string()))?;
        let res = self
            .sender
            .send_request(req)
            .await
            .map_err(|e| ConnError(e.to_string()))?;
        read_response(res).await
    }
}

/// POSTs `body` to `uri` over HTTP/2 on `tls`, a connection that negotiated h2.
pub async fn post_h2(tls: Tls, uri: String, body: Vec<u8>) -> Result<(u16, Vec<u8>), ConnError> {
    let (mut sender, conn) = http2::handshake(TokioExecutor::new(), TokioIo::new(tls))
        .await
        .map_err(|e| ConnError(format!("HTTP/2 handshake: {e}")))?;
    tokio::spawn(conn);
    let req = hyper::Request::post(uri)
        .header("content-type", "application/json")
        .body(Full::new(Bytes::from(body)))
        .map_err(|e| ConnError(e.to_string()))?;
    let res = sender
        .send_request(req)
        .await
        .map_err(|e| ConnError(format!("HTTP/2 request: {e}")))?;
    read_response(res).await
}

async fn read_response(
    res: hyper::Response<hyper::body::Incoming>,
) -> Result<(u16, Vec<u8>), ConnError> {
    let status = res.status().as_u16();
    let body = res
        .into_body()
        .collect()
        .await
        .map_err(|e| ConnError(e.to_string()))?
        .to_bytes()
        .to_vec();
    Ok((status, body))
}
