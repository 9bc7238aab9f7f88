//! The S3 load instrument (`s3client load`, built with the real node): workers that write, read
//! and list checksummed objects through a tenant's Service, with minio-go's standard retries,
//! while a test changes the tenant. [`S3Load::stop`] ends it, reads every acknowledged object back
//! and hands over the [`LoadReport`] to assert on: requests failed after retries, by kind, the
//! longest failing stretch, and objects lost.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tokio::io::AsyncReadExt;
use tokio::process::{Child, Command};

/// Where the load goes: a tenant's S3 Service, by its DNS name (the certificate's) at its
/// ClusterIP (reachable from the host through kube-proxy's rules).
pub struct Target<'a> {
    /// `s3client`, from the real node's build (`RealNode::s3client`).
    pub s3client: PathBuf,
    /// `minio.<ns>.svc.cluster.local:443`.
    pub endpoint: String,
    pub cluster_ip: String,
    /// The CA the servers' certificate chains to; `None` for plain HTTP.
    pub ca_file: Option<&'a Path>,
    pub access_key: &'a str,
    pub secret_key: &'a str,
    pub bucket: &'a str,
}

/// What the load saw (s3client's JSON report): over the whole run, or over one of its
/// [`phases`](LoadReport::phases) (which carry the counts alone, no latencies).
#[derive(Clone, Debug, Default, Deserialize, Serialize)]
#[serde(default)]
pub struct LoadReport {
    pub workers: usize,
    pub seconds: f64,
    pub requests: usize,
    pub puts: usize,
    pub gets: usize,
    pub lists: usize,
    /// Requests that failed after the retries, by operation.
    pub failed: BTreeMap<String, usize>,
    pub failed_by_kind: BTreeMap<String, usize>,
    /// Attempts that failed, before retries.
    pub raw_errors: usize,
    pub raw_errors_by_kind: BTreeMap<String, usize>,
    pub longest_failing_ms: u64,
    pub longest_raw_failing_ms: u64,
    pub acknowledged: usize,
    pub verified: usize,
    pub lost: usize,
    pub corrupt: usize,
    pub unreadable: usize,
    pub first_failure: Option<String>,
    pub first_loss: Option<String>,
    pub latency_p50_ms: f64,
    pub latency_p99_ms: f64,
    pub latency_max_ms: f64,
    pub failure_timeline: Vec<String>,
    /// The run cut at each [`S3Load::mark`]: phase 0 before the first mark, phase `i` from the
    /// `i`th. A request, a failed attempt and an acknowledged object count in the phase their
    /// request started in, so a failure belongs to the last change made before it.
    pub phases: Vec<LoadReport>,
}

impl LoadReport {
    /// Requests that failed after the retries.
    pub fn failed_after_retries(&self) -> usize {
        self.failed.values().sum()
    }

    /// Acknowledged objects not read back as written.
    pub fn objects_lost(&self) -> usize {
        self.lost + self.corrupt + self.unreadable
    }

    /// One line for a results table or a failure message.
    pub fn summary(&self) -> String {
        format!(
            "{} requests in {:.0} s: {} failed after retries {:?}, {} attempts failed before retries {:?}, longest failing stretch {} ms (before retries {} ms); {} acknowledged, {} verified, {} lost{}{}",
            self.requests,
            self.seconds,
            self.failed_after_retries(),
            self.failed_by_kind,
            self.raw_errors,
            self.raw_errors_by_kind,
            self.longest_failing_ms,
            self.longest_raw_failing_ms,
            self.acknowledged,
            self.verified,
            self.objects_lost(),
            match self.objects_lost() {
                0 => String::new(),
                _ => format!(
                    " ({} NoSuchKey, {} other bytes, {} unreadable at the end; first: {})",
                    self.lost,
                    self.corrupt,
                    self.unreadable,
                    self.first_loss.as_deref().unwrap_or("?")
                ),
            },
            self.first_failure
                .as_deref()
                .map(|f| format!("; first failure: {f}"))
                .unwrap_or_default()
        )
    }

    /// The results tables' cells, in their order: requests | failed after retries, by kind |
    /// attempts failed before retries, by kind | longest failing stretch after / before retries |
    /// objects lost of those acknowledged.
    pub fn table_cells(&self) -> String {
        format!(
            "{} | {} {:?} | {} {:?} | {} ms / {} ms | {} of {}",
            self.requests,
            self.failed_after_retries(),
            self.failed_by_kind,
            self.raw_errors,
            self.raw_errors_by_kind,
            self.longest_failing_ms,
            self.longest_raw_failing_ms,
            self.objects_lost(),
            self.acknowledged
        )
    }

    /// Fails the test with the whole report unless nothing was lost, no read answered other bytes
    /// than were written, and the load really ran (`min_requests`).
    pub fn assert_nothing_lost(&self, what: &str, min_requests: usize) {
        assert!(
            self.requests >= min_requests && self.verified > 0,
            "{what}: the load hardly ran: {}",
            self.summary()
        );
        assert_eq!(
            (
                self.objects_lost(),
                self.failed_by_kind.get("checksum mismatch")
            ),
            (0, None),
            "{what}: objects were lost or read wrong: {}\n{:#?}",
            self.summary(),
            self.failure_timeline
        );
    }

    /// Fails the test with the whole report unless nothing failed after retries and nothing was
    /// lost, and the load really ran (`min_requests`).
    pub fn assert_nothing_failed_or_lost(&self, what: &str, min_requests: usize) {
        assert!(
            self.requests >= min_requests && self.verified > 0,
            "{what}: the load hardly ran: {}",
            self.summary()
        );
        assert_eq!(
            (self.failed_after_retries(), self.objects_lost()),
            (0, 0),
            "{what}: requests failed or objects were lost: {}\n{:#?}",
            self.summary(),
            self.failure_timeline
        );
    }
}

/// The load, running.
pub struct S3Load {
    child: Child,
}

impl S3Load {
    /// Starts `workers` workers on `target` (the bucket is made if it is not there).
    pub fn start(target: &Target, workers: usize) -> std::io::Result<S3Load> {
        let mut command = Command::new(&target.s3client);
        command
            .env("S3_ACCESS_KEY", target.access_key)
            .env("S3_SECRET_KEY", target.secret_key)
            .args(["--endpoint", &target.endpoint])
            .args(["--resolve-to", &target.cluster_ip])
            .args(["--workers", &workers.to_string()])
            // Bounded, as every load loop here is: far longer than any test runs it.
            .args(["--duration", "45m"])
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .kill_on_drop(true);
        if let Some(ca) = target.ca_file {
            command.arg("--ca").arg(ca);
        }
        command.args(["load", target.bucket]);
        Ok(S3Load {
            child: command.spawn()?,
        })
    }

    /// Starts the load's next phase (SIGUSR1): what follows counts apart from what came before.
    pub fn mark(&self) -> std::io::Result<()> {
        let pid = self
            .child
            .id()
            .ok_or_else(|| std::io::Error::other("the load has ended"))?;
        let status = std::process::Command::new("kill")
            .args(["-USR1", &pid.to_string()])
            .status()?;
        match status.success() {
            true => Ok(()),
            false => Err(std::io::Error::other(format!("kill -USR1 {pid}: {status}"))),
        }
    }

    /// Stops the workers (SIGTERM), waits while every acknowledged object is read back, and
    /// returns the report.
    pub async fn stop(mut self, verify_within: Duration) -> Result<LoadReport, String> {
        if let Some(pid) = self.child.id() {
            // SAFETY-free: kill(2) with a pid we own.
            let _ = std::process::Command::new("kill")
                .args(["-TERM", &pid.to_string()])
                .status();
        }
        let mut stdout = self.child.stdout.take().ok_or("no stdout")?;
        let mut out = String::new();
        let read = async {
            stdout.read_to_string(&mut out).await?;
            self.child.wait().await
        };
        match tokio::time::timeout(verify_within, read).await {
            Err(_) => Err(format!(
                "the load did not finish verifying within {} s",
                verify_within.as_secs()
            )),
            Ok(Err(e)) => Err(e.to_string()),
            Ok(Ok(status)) if !status.success() => Err(format!("s3client load: {status}: {out}")),
            Ok(Ok(_)) => serde_json::from_str(out.trim()).map_err(|e| format!("{e}: {out}")),
        }
    }
}
