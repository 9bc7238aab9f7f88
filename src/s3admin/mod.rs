//! A client for the S3 server's admin and bucket APIs: only the calls the operator makes (cluster
//! health, storage info, users and their policy, buckets, pool decommission). Requests are signed
//! with AWS Signature V4 (`sign`), admin bodies are encrypted as the server expects (`encrypt`).
//! No Kubernetes types here: the reconciler says where the server is and with which credentials.

mod encrypt;
mod sign;

use std::fmt;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::client::conn::http1::SendRequest;
use hyper_util::rt::TokioIo;
use serde::Deserialize;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;

pub use sign::DEFAULT_REGION;

/// Every call is bounded in time; the reconciler tries again on its next pass.
const CALL_TIMEOUT: Duration = Duration::from_secs(20);
/// Answers are small JSON or XML documents; anything bigger is not an answer we asked for.
const MAX_ANSWER: usize = 4 << 20;
const ADMIN: &str = "/minio/admin/v3";
pub const CLUSTER_HEALTH_PATH: &str = "/minio/health/cluster";

#[derive(Debug, thiserror::Error)]
pub enum AdminError {
    #[error("{host} ({addr}) cannot be reached: {reason}")]
    Connect {
        host: String,
        addr: SocketAddr,
        reason: String,
    },
    #[error("{host} ({addr}) did not answer within {}s", CALL_TIMEOUT.as_secs())]
    Timeout { host: String, addr: SocketAddr },
    /// The server's error, with its S3 error code where it sent one (`AccessDenied`, ...).
    #[error("{call} answered HTTP {status}{}: {message}", code.as_deref().map(|c| format!(" ({c})")).unwrap_or_default())]
    Server {
        call: String,
        status: u16,
        code: Option<String>,
        message: String,
    },
    #[error("{call}: unexpected answer: {reason}")]
    Answer { call: String, reason: String },
    #[error("signing the request: {0}")]
    Sign(String),
    #[error("encrypting the request body: {0}")]
    Encrypt(String),
}

/// An access key and its secret. The secret is never printed (Debug shows only the access key).
#[derive(Clone)]
pub struct Credentials {
    pub access_key: String,
    pub secret_key: String,
}

impl Credentials {
    /// No credentials: enough for the health endpoints, which take unsigned requests.
    pub fn anonymous() -> Credentials {
        Credentials {
            access_key: String::new(),
            secret_key: String::new(),
        }
    }
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Credentials")
            .field("access_key", &self.access_key)
            .field("secret_key", &"<redacted>")
            .finish()
    }
}

/// Where the server answers: the address to connect to, the host name it is asked for (and whose
/// certificate it must present when `tls` is set).
#[derive(Clone)]
pub struct Endpoint {
    pub addr: SocketAddr,
    pub host: String,
    pub tls: Option<Arc<rustls::ClientConfig>>,
}

impl Endpoint {
    /// The URL of `path_and_query` on this endpoint, its scheme by whether it speaks TLS.
    pub fn url(&self, path_and_query: &str) -> String {
        let scheme = if self.tls.is_some() { "https" } else { "http" };
        format!("{scheme}://{}{path_and_query}", self.host)
    }
}

impl fmt::Debug for Endpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Endpoint")
            .field("addr", &self.addr)
            .field("host", &self.host)
            .field("tls", &self.tls.is_some())
            .finish()
    }
}

/// The anonymous cluster health check: whether the cluster has write quorum, and the counts the
/// server reports alongside.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClusterHealth {
    pub healthy: bool,
    pub status: u16,
    pub write_quorum: Option<i32>,
    pub healing_drives: Option<i32>,
}

/// The parts of the admin `storageinfo` answer the operator reports.
#[derive(Clone, Debug, Default, Deserialize)]
pub struct StorageInfo {
    #[serde(rename = "Disks", default, deserialize_with = "nullable")]
    pub drives: Vec<Drive>,
    #[serde(rename = "Backend", default)]
    pub backend: Backend,
}

/// The parts of the admin `info` answer the rollout reads: every server of the cluster as it sees
/// itself.
#[derive(Clone, Debug, Default, Deserialize)]
pub struct ServerInfo {
    #[serde(default, deserialize_with = "nullable")]
    pub servers: Vec<ServerProperties>,
}

#[derive(Clone, Debug, Default, Deserialize)]
pub struct ServerProperties {
    /// `online`, or `offline` for a server the one asked could not reach.
    #[serde(default)]
    pub state: String,
    #[serde(default)]
    pub endpoint: String,
    /// The server's `MINIO*` variables (values of credentials redacted by the server).
    #[serde(rename = "minio_env_vars", default, deserialize_with = "nullable")]
    pub variables: std::collections::BTreeMap<String, String>,
}

#[derive(Clone, Debug, Default, Deserialize)]
pub struct Drive {
    #[serde(default)]
    pub endpoint: String,
    /// `ok` when online; anything else (`offline`, `faulty`, `unformatted`, ...) is not.
    #[serde(default)]
    pub state: String,
    #[serde(default)]
    pub healing: bool,
    #[serde(rename = "pool_index", default)]
    pub pool_index: usize,
    #[serde(rename = "availspace", default)]
    pub available_space: u64,
    #[serde(rename = "usedspace", default)]
    pub used_space: u64,
}

impl Drive {
    pub fn online(&self) -> bool {
        self.state == "ok"
    }
}

#[derive(Clone, Debug, Default, Deserialize)]
pub struct Backend {
    #[serde(rename = "StandardSCData", default, deserialize_with = "nullable")]
    pub standard_sc_data: Vec<u64>,
    #[serde(rename = "StandardSCParities", default, deserialize_with = "nullable")]
    pub standard_sc_parities: Vec<u64>,
    #[serde(rename = "StandardSCParity", default)]
    pub standard_sc_parity: u64,
}

/// What the server says of one pool's decommission.
#[derive(Clone, Debug, Default, Deserialize, PartialEq, Eq)]
pub struct PoolStatus {
    #[serde(default)]
    pub id: usize,
    /// The pool as the servers' command line names it (`https://host{0...3}/export{0...1}`).
    #[serde(rename = "cmdline", default)]
    pub cmd_line: String,
    #[serde(rename = "decommissionInfo", default)]
    pub decommission: Option<DecommissionInfo>,
}

#[derive(Clone, Debug, Default, Deserialize, PartialEq, Eq)]
pub struct DecommissionInfo {
    /// The zero time (`0001-01-01T00:00:00Z`) until a decommission starts: the server reports
    /// sizes for every pool, drained or not.
    #[serde(rename = "startTime", default)]
    pub start_time: String,
    #[serde(rename = "totalSize", default)]
    pub total_size: i64,
    #[serde(rename = "currentSize", default)]
    pub current_size: i64,
    #[serde(default)]
    pub complete: bool,
    #[serde(default)]
    pub failed: bool,
    #[serde(default)]
    pub canceled: bool,
    #[serde(rename = "objectsDecommissioned", default)]
    pub objects_decommissioned: i64,
    #[serde(rename = "objectsDecommissionedFailed", default)]
    pub objects_failed: i64,
    #[serde(rename = "bytesDecommissioned", default)]
    pub bytes_decommissioned: i64,
}

impl DecommissionInfo {
    pub fn started(&self) -> bool {
        !self.start_time.is_empty() && !self.start_time.starts_with("0001-")
    }
}

/// Go encodes an empty slice as `null`.
fn nullable<'de, D, T>(deserializer: D) -> Result<T, D::Error>
where
    D: serde::Deserializer<'de>,
    T: Default + Deserialize<'de>,
{
    Ok(Option::<T>::deserialize(deserializer)?.unwrap_or_default())
}

/// The admin client of one S3 cluster. Its calls share one kept-alive connection (a health pass
/// makes three or four: one TLS handshake instead of one each); clones share it too.
#[derive(Clone, Debug)]
pub struct AdminClient {
    endpoint: Endpoint,
    credentials: Credentials,
    region: String,
    connection: Connection,
}

/// The open connection, if any. Calls take turns on it (HTTP/1.1 has one request at a time).
#[derive(Clone, Default)]
struct Connection(Arc<tokio::sync::Mutex<Option<SendRequest<Full<Bytes>>>>>);

impl fmt::Debug for Connection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Connection")
    }
}

/// An S3 error document (`<Error><Code>..</Code><Message>..</Message></Error>`) or the admin API's
/// JSON error (`{"Code": .., "Message": ..}`).
fn error_of(body: &[u8]) -> (Option<String>, String) {
    if let Ok(json) = serde_json::from_slice::<serde_json::Value>(body) {
        let code = json["Code"].as_str().map(str::to_owned);
        let message = json["Message"].as_str().unwrap_or_default().to_owned();
        return (code, message);
    }
    let text = String::from_utf8_lossy(body);
    let element = |name: &str| {
        let open = format!("<{name}>");
        let close = format!("</{name}>");
        let start = text.find(&open)? + open.len();
        let end = text[start..].find(&close)? + start;
        Some(text[start..end].to_owned())
    };
    (
        element("Code"),
        element("Message").unwrap_or_else(|| text.chars().take(200).collect()),
    )
}

/// Bucket names go into the path as they are: S3's naming rules (checked at admission) allow only
/// lower-case letters, digits, dots and hyphens. Query values are percent-encoded here.
fn query_value(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for b in value.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

impl AdminClient {
    pub fn new(endpoint: Endpoint, credentials: Credentials) -> AdminClient {
        AdminClient {
            endpoint,
            credentials,
            region: DEFAULT_REGION.to_owned(),
            connection: Connection::default(),
        }
    }

    pub fn credentials(&self) -> &Credentials {
        &self.credentials
    }

    pub fn endpoint(&self) -> &Endpoint {
        &self.endpoint
    }

    /// The anonymous cluster health check (no credentials needed): 200 with write quorum.
    pub async fn cluster_health(&self) -> Result<ClusterHealth, AdminError> {
        let answer = self
            .send(
                http::Method::GET,
                CLUSTER_HEALTH_PATH,
                Vec::new(),
                false,
                &[],
            )
            .await?;
        let header = |name: &str| {
            answer
                .headers
                .get(name)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.parse().ok())
        };
        Ok(ClusterHealth {
            healthy: answer.status == 200,
            status: answer.status,
            write_quorum: header("x-minio-write-quorum"),
            healing_drives: header("x-minio-healing-drives"),
        })
    }

    /// Whether the cluster keeps write quorum without this server's drives, and heals no drive:
    /// the server's own answer to "may I be taken down now" (`?maintenance=true`: 200 yes, 412
    /// no), which the rollout asks before it restarts it.
    pub async fn can_spare(&self) -> Result<bool, AdminError> {
        let path = format!("{CLUSTER_HEALTH_PATH}?maintenance=true");
        let answer = self
            .send(http::Method::GET, &path, Vec::new(), false, &[])
            .await?;
        Ok(answer.status == 200)
    }

    /// Whether the S3 API takes signed requests (ListBuckets answers 200). Write quorum comes
    /// before that: until the server has loaded its users and policies, S3 requests get 503
    /// `XMinioServerNotInitialized`.
    pub async fn takes_requests(&self) -> Result<(), AdminError> {
        self.expect_ok("list buckets", http::Method::GET, "/", Vec::new())
            .await
    }

    /// Every drive of every pool, with its state and space.
    pub async fn storage_info(&self) -> Result<StorageInfo, AdminError> {
        self.admin_json(http::Method::GET, "/storageinfo", "").await
    }

    /// Creates the user, or sets its secret if it exists (the call is the same).
    pub async fn add_user(&self, access_key: &str, secret_key: &str) -> Result<(), AdminError> {
        let body = serde_json::to_vec(&serde_json::json!({
            "secretKey": secret_key,
            "status": "enabled",
        }))
        .map_err(|e| AdminError::Encrypt(e.to_string()))?;
        let sealed = encrypt::encrypt(&self.credentials.secret_key, &body)?;
        let path = format!("{ADMIN}/add-user?accessKey={}", query_value(access_key));
        self.expect_ok("add-user", http::Method::PUT, &path, sealed)
            .await
    }

    /// Creates the policy `name` (or replaces what it says) from its JSON document.
    pub async fn add_canned_policy(&self, name: &str, document: &str) -> Result<(), AdminError> {
        let path = format!("{ADMIN}/add-canned-policy?name={}", query_value(name));
        self.expect_ok(
            "add-canned-policy",
            http::Method::PUT,
            &path,
            document.as_bytes().to_vec(),
        )
        .await
    }

    /// Attaches `policy` to the user `access_key`, replacing the policies it had.
    pub async fn set_user_policy(&self, policy: &str, access_key: &str) -> Result<(), AdminError> {
        let path = format!(
            "{ADMIN}/set-user-or-group-policy?isGroup=false&policyName={}&userOrGroup={}",
            query_value(policy),
            query_value(access_key)
        );
        self.expect_ok(
            "set-user-or-group-policy",
            http::Method::PUT,
            &path,
            Vec::new(),
        )
        .await
    }

    /// Creates a bucket; `Ok(false)` when it exists already (ours from an earlier pass, or not).
    pub async fn make_bucket(
        &self,
        name: &str,
        region: Option<&str>,
        object_lock: bool,
    ) -> Result<bool, AdminError> {
        let body = match region.filter(|r| !r.is_empty() && *r != DEFAULT_REGION) {
            Some(r) => format!(
                "<CreateBucketConfiguration xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\"><LocationConstraint>{r}</LocationConstraint></CreateBucketConfiguration>"
            )
            .into_bytes(),
            None => Vec::new(),
        };
        let headers: &[(&str, &str)] = if object_lock {
            &[("x-amz-bucket-object-lock-enabled", "true")]
        } else {
            &[]
        };
        let answer = self
            .send(http::Method::PUT, &format!("/{name}"), body, true, headers)
            .await?;
        if answer.status == 200 {
            return Ok(true);
        }
        let (code, message) = error_of(&answer.body);
        match code.as_deref() {
            Some("BucketAlreadyOwnedByYou" | "BucketAlreadyExists") => Ok(false),
            _ => Err(AdminError::Server {
                call: format!("create bucket {name:?}"),
                status: answer.status,
                code,
                message,
            }),
        }
    }

    /// Whether the bucket exists.
    pub async fn bucket_exists(&self, name: &str) -> Result<bool, AdminError> {
        let answer = self
            .send(
                http::Method::HEAD,
                &format!("/{name}"),
                Vec::new(),
                true,
                &[],
            )
            .await?;
        match answer.status {
            200 => Ok(true),
            404 => Ok(false),
            status => Err(AdminError::Server {
                call: format!("head bucket {name:?}"),
                status,
                code: None,
                message: String::new(),
            }),
        }
    }

    /// Every server of the cluster: whether it is online, and the variables it started with.
    pub async fn server_info(&self) -> Result<ServerInfo, AdminError> {
        self.admin_json(http::Method::GET, "/info", "").await
    }

    /// Restarts every server of the cluster in place, together (each executes itself again a
    /// quarter second after the answer: the server's own procedure for a change its peers must
    /// share, which re-reads the configuration file and the certificates).
    pub async fn restart_servers(&self) -> Result<(), AdminError> {
        let path = format!("{ADMIN}/service?action=restart&type=2");
        self.expect_ok("service restart", http::Method::POST, &path, Vec::new())
            .await
    }

    /// Every pool with its decommission state.
    pub async fn pools(&self) -> Result<Vec<PoolStatus>, AdminError> {
        self.admin_json(http::Method::GET, "/pools/list", "").await
    }

    /// Starts draining the pool named by its command line (as [`PoolStatus::cmd_line`]).
    pub async fn start_decommission(&self, cmd_line: &str) -> Result<(), AdminError> {
        let path = format!("{ADMIN}/pools/decommission?pool={}", query_value(cmd_line));
        self.expect_ok("pools/decommission", http::Method::POST, &path, Vec::new())
            .await
    }

    async fn admin_json<T: for<'de> Deserialize<'de>>(
        &self,
        method: http::Method,
        call: &str,
        query: &str,
    ) -> Result<T, AdminError> {
        let path = format!("{ADMIN}{call}{query}");
        let answer = self.send(method, &path, Vec::new(), true, &[]).await?;
        if answer.status != 200 {
            let (code, message) = error_of(&answer.body);
            return Err(AdminError::Server {
                call: call.trim_start_matches('/').to_owned(),
                status: answer.status,
                code,
                message,
            });
        }
        serde_json::from_slice(&answer.body).map_err(|e| AdminError::Answer {
            call: call.trim_start_matches('/').to_owned(),
            reason: e.to_string(),
        })
    }

    async fn expect_ok(
        &self,
        call: &str,
        method: http::Method,
        path: &str,
        body: Vec<u8>,
    ) -> Result<(), AdminError> {
        let answer = self.send(method, path, body, true, &[]).await?;
        if answer.status == 200 {
            return Ok(());
        }
        let (code, message) = error_of(&answer.body);
        Err(AdminError::Server {
            call: call.to_owned(),
            status: answer.status,
            code,
            message,
        })
    }

    /// One request on a fresh connection, signed unless `signed` is false, bounded in time.
    async fn send(
        &self,
        method: http::Method,
        path_and_query: &str,
        body: Vec<u8>,
        signed: bool,
        headers: &[(&str, &str)],
    ) -> Result<Answer, AdminError> {
        let endpoint = &self.endpoint;
        let mut builder = http::Request::builder()
            .method(method)
            .uri(endpoint.url(path_and_query))
            .header(http::header::HOST, endpoint.host.as_str());
        for (name, value) in headers {
            builder = builder.header(*name, *value);
        }
        let mut request = builder
            .body(body)
            .map_err(|e| AdminError::Sign(e.to_string()))?;
        if signed {
            sign::sign_request(&mut request, &self.credentials, &self.region)?;
        }
        // Signed for the absolute URI; sent in origin form, as HTTP/1.1 servers expect.
        let origin = request
            .uri()
            .path_and_query()
            .map(|p| p.as_str().to_owned())
            .unwrap_or_else(|| "/".to_owned());
        *request.uri_mut() = origin
            .parse()
            .map_err(|e: http::uri::InvalidUri| AdminError::Sign(e.to_string()))?;
        let request = request.map(|b| Full::new(Bytes::from(b)));
        match tokio::time::timeout(CALL_TIMEOUT, self.exchange(request)).await {
            Ok(result) => result,
            Err(_) => Err(AdminError::Timeout {
                host: endpoint.host.clone(),
                addr: endpoint.addr,
            }),
        }
    }
}

struct Answer {
    status: u16,
    headers: http::HeaderMap,
    body: Bytes,
}

impl AdminClient {
    /// Sends `request` on the kept connection, or on a new one when there is none or the server
    /// closed it. When a kept connection turns out closed under a request that is safe to repeat
    /// (GET, HEAD: as Go's client does), the request goes once more on a new one; other requests
    /// may have reached the server, so their error is reported and the next pass decides.
    async fn exchange(&self, request: http::Request<Full<Bytes>>) -> Result<Answer, AdminError> {
        let mut slot = self.connection.0.lock().await;
        let kept = match slot.take() {
            Some(mut sender) => sender.ready().await.ok().map(|()| sender),
            None => None,
        };
        let replayable = matches!(*request.method(), http::Method::GET | http::Method::HEAD);
        let again = (kept.is_some() && replayable).then(|| copy(&request));
        let mut sender = match kept {
            Some(sender) => sender,
            None => self.connect().await?,
        };
        let response = match (sender.send_request(request).await, again) {
            (Err(e), Some(again))
                if e.is_canceled() || e.is_closed() || e.is_incomplete_message() =>
            {
                sender = self.connect().await?;
                sender.send_request(again).await
            }
            (response, _) => response,
        }
        .map_err(|e| self.unreachable(e.to_string()))?;
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        let body = Limited::new(response.into_body(), MAX_ANSWER)
            .collect()
            .await
            .map_err(|e| self.unreachable(format!("reading the answer: {e}")))?
            .to_bytes();
        // Kept only after a whole answer: then it is free for the next request.
        *slot = Some(sender);
        Ok(Answer {
            status,
            headers,
            body,
        })
    }

    async fn connect(&self) -> Result<SendRequest<Full<Bytes>>, AdminError> {
        let endpoint = &self.endpoint;
        let tcp = TcpStream::connect(endpoint.addr)
            .await
            .map_err(|e| self.unreachable(e.to_string()))?;
        let sender = match &endpoint.tls {
            None => handshake(tcp).await,
            Some(config) => {
                let name = rustls::pki_types::ServerName::try_from(endpoint.host.clone())
                    .map_err(|e| self.unreachable(e.to_string()))?;
                let stream = tokio_rustls::TlsConnector::from(config.clone())
                    .connect(name, tcp)
                    .await
                    .map_err(|e| self.unreachable(format!("TLS: {e}")))?;
                handshake(stream).await
            }
        };
        sender.map_err(|e| self.unreachable(e))
    }

    fn unreachable(&self, reason: String) -> AdminError {
        AdminError::Connect {
            host: self.endpoint.host.clone(),
            addr: self.endpoint.addr,
            reason,
        }
    }
}

async fn handshake<S>(stream: S) -> Result<SendRequest<Full<Bytes>>, String>
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let (sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .map_err(|e| e.to_string())?;
    tokio::spawn(connection);
    Ok(sender)
}

/// The same request again (`http::Request` is not `Clone`; a `Full` body is).
fn copy(request: &http::Request<Full<Bytes>>) -> http::Request<Full<Bytes>> {
    let mut copy = http::Request::new(request.body().clone());
    *copy.method_mut() = request.method().clone();
    *copy.uri_mut() = request.uri().clone();
    *copy.version_mut() = request.version();
    *copy.headers_mut() = request.headers().clone();
    copy
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_are_read_from_s3_xml_and_admin_json() {
        assert_eq!(
            error_of(b"<?xml version=\"1.0\"?><Error><Code>AccessDenied</Code><Message>Access Denied.</Message></Error>"),
            (Some("AccessDenied".to_owned()), "Access Denied.".to_owned())
        );
        assert_eq!(
            error_of(br#"{"Code":"XMinioAdminNoSuchUser","Message":"The specified user does not exist."}"#),
            (
                Some("XMinioAdminNoSuchUser".to_owned()),
                "The specified user does not exist.".to_owned()
            )
        );
    }

    #[test]
    fn credentials_never_print_their_secret() {
        let c = Credentials {
            access_key: "admin".into(),
            secret_key: "s3cr3t-value".into(),
        };
        assert!(!format!("{c:?}").contains("s3cr3t-value"));
    }

    #[test]
    fn query_values_are_percent_encoded() {
        assert_eq!(query_value("a b/c+d"), "a%20b%2Fc%2Bd");
        assert_eq!(query_value("user-1_x.y~"), "user-1_x.y~");
    }
}
