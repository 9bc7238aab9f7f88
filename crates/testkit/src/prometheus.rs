//! A real Prometheus (built from its Go module by crates/local-cluster/build.sh) for the tests,
//! driven by the scrape configuration a Prometheus operator would generate from ServiceMonitors:
//! the Prometheus operator itself and its images are not built here (a Go build of its own and two
//! images, minutes of CI for a translation the tests can make), so [`scrape_config`] translates the
//! fields our ServiceMonitors use the way it does (`serviceMonitor/<namespace>/<name>/<i>` jobs,
//! Kubernetes endpoints discovery, the selector and the port as `keep` rules, the `namespace`,
//! `service`, `pod` and `job` labels), with the Secrets they name written to files.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::support::{self, ChildGuard};

/// Where a ServiceMonitor's Secret key was written: `(namespace, secret, key) -> file`.
pub type SecretFiles<'a> = &'a dyn Fn(&str, &str, &str) -> PathBuf;

/// Prometheus' label name for a Kubernetes label (what the discovery's meta labels use).
fn label_name(label: &str) -> String {
    label
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
        .collect()
}

/// The scrape jobs of `monitors` (ServiceMonitors as JSON), discovering endpoints through the
/// apiserver of `kubeconfig`.
pub fn scrape_config(monitors: &[Value], kubeconfig: &Path, secrets: SecretFiles) -> Vec<Value> {
    let mut jobs = Vec::new();
    for monitor in monitors {
        let ns = monitor["metadata"]["namespace"]
            .as_str()
            .unwrap_or_default();
        let name = monitor["metadata"]["name"].as_str().unwrap_or_default();
        let spec = &monitor["spec"];
        let namespaces = spec["namespaceSelector"]["matchNames"]
            .as_array()
            .cloned()
            .unwrap_or_else(|| vec![json!(ns)]);
        let mut selector: Vec<Value> = Vec::new();
        for (key, value) in spec["selector"]["matchLabels"]
            .as_object()
            .into_iter()
            .flatten()
        {
            let label = label_name(key);
            selector.push(json!({
                "action": "keep",
                "source_labels": [
                    format!("__meta_kubernetes_service_label_{label}"),
                    format!("__meta_kubernetes_service_labelpresent_{label}"),
                ],
                "regex": format!("({});true", value.as_str().unwrap_or_default()),
            }));
        }
        for (i, endpoint) in spec["endpoints"]
            .as_array()
            .into_iter()
            .flatten()
            .enumerate()
        {
            let mut relabel = selector.clone();
            relabel.push(json!({
                "action": "keep",
                "source_labels": ["__meta_kubernetes_endpoint_port_name"],
                "regex": endpoint["port"],
            }));
            for (target, source) in [
                ("namespace", "__meta_kubernetes_namespace"),
                ("service", "__meta_kubernetes_service_name"),
                ("pod", "__meta_kubernetes_pod_name"),
                ("job", "__meta_kubernetes_service_name"),
            ] {
                relabel.push(json!({"source_labels": [source], "target_label": target}));
            }
            relabel.push(json!({"target_label": "endpoint", "replacement": endpoint["port"]}));
            for rule in endpoint["relabelings"].as_array().into_iter().flatten() {
                let mut config = json!({
                    "action": rule["action"].as_str().unwrap_or("replace").to_lowercase(),
                });
                for (from, to) in [
                    ("sourceLabels", "source_labels"),
                    ("targetLabel", "target_label"),
                    ("replacement", "replacement"),
                    ("regex", "regex"),
                    ("separator", "separator"),
                ] {
                    if !rule[from].is_null() {
                        config[to] = rule[from].clone();
                    }
                }
                relabel.push(config);
            }
            let mut job = json!({
                "job_name": format!("serviceMonitor/{ns}/{name}/{i}"),
                "honor_labels": endpoint["honorLabels"].as_bool().unwrap_or(false),
                "kubernetes_sd_configs": [{
                    "role": "endpoints",
                    "kubeconfig_file": kubeconfig,
                    "namespaces": {"names": namespaces},
                }],
                "scheme": endpoint["scheme"].as_str().unwrap_or("http"),
                "metrics_path": endpoint["path"].as_str().unwrap_or("/metrics"),
                "relabel_configs": relabel,
            });
            if let Some(interval) = endpoint["interval"].as_str() {
                job["scrape_interval"] = json!(interval);
            }
            let credentials = &endpoint["authorization"]["credentials"];
            if let (Some(secret), Some(key)) =
                (credentials["name"].as_str(), credentials["key"].as_str())
            {
                job["authorization"] = json!({
                    "type": endpoint["authorization"]["type"].as_str().unwrap_or("Bearer"),
                    "credentials_file": secrets(ns, secret, key),
                });
            }
            let tls = &endpoint["tlsConfig"];
            if tls.is_object() {
                let mut config = json!({});
                if let Some(server_name) = tls["serverName"].as_str() {
                    config["server_name"] = json!(server_name);
                }
                let ca = &tls["ca"]["secret"];
                if let (Some(secret), Some(key)) = (ca["name"].as_str(), ca["key"].as_str()) {
                    config["ca_file"] = json!(secrets(ns, secret, key));
                }
                job["tls_config"] = config;
            }
            jobs.push(job);
        }
    }
    jobs
}

/// A Prometheus serving on 127.0.0.1, stopped on drop.
pub struct Prometheus {
    _child: ChildGuard,
    pub url: String,
}

impl Prometheus {
    /// Starts Prometheus with `jobs` and the rule files `rules`, scraping and evaluating every
    /// `interval`; data in `dir`. Fails with how to build it when the binary is missing.
    pub fn start(
        dir: &Path,
        jobs: Vec<Value>,
        rules: &[PathBuf],
        interval: Duration,
    ) -> Result<Prometheus, String> {
        let bin = hanzo_local_cluster::tool("prometheus");
        if !bin.is_file() {
            return Err(format!(
                "{} is missing: run crates/local-cluster/build.sh",
                bin.display()
            ));
        }
        let every = format!("{}s", interval.as_secs().max(1));
        let config = json!({
            "global": {"scrape_interval": every, "scrape_timeout": every, "evaluation_interval": every},
            "rule_files": rules,
            "scrape_configs": jobs,
        });
        let config_file = dir.join("prometheus.yml");
        std::fs::write(
            &config_file,
            serde_yaml_ng::to_string(&config).map_err(|e| e.to_string())?,
        )
        .map_err(|e| e.to_string())?;
        let port = support::free_port();
        let log = std::fs::File::create(dir.join("prometheus.log")).map_err(|e| e.to_string())?;
        let child = std::process::Command::new(&bin)
            .args([
                format!("--config.file={}", config_file.display()),
                format!("--storage.tsdb.path={}", dir.join("data").display()),
                format!("--web.listen-address=127.0.0.1:{port}"),
                "--log.level=warn".to_owned(),
            ])
            .stdout(log.try_clone().map_err(|e| e.to_string())?)
            .stderr(log)
            .spawn()
            .map_err(|e| format!("{}: {e}", bin.display()))?;
        let child = ChildGuard(child);
        let prometheus = Prometheus {
            _child: child,
            url: format!("http://127.0.0.1:{port}"),
        };
        let deadline = Instant::now() + Duration::from_secs(30);
        while get(&format!("{}/-/ready", prometheus.url), None).is_err() {
            if Instant::now() > deadline {
                return Err(format!(
                    "Prometheus did not get ready in 30 s: {}",
                    std::fs::read_to_string(dir.join("prometheus.log")).unwrap_or_default()
                ));
            }
            std::thread::sleep(Duration::from_millis(200));
        }
        Ok(prometheus)
    }

    /// `GET /api/v1/<path>`'s `data`, with one query parameter.
    pub fn api(&self, path: &str, query: Option<(&str, &str)>) -> Result<Value, String> {
        let body = get(&format!("{}/api/v1/{path}", self.url), query)?;
        let answer: Value = serde_json::from_str(&body).map_err(|e| format!("{e}: {body}"))?;
        if answer["status"] != "success" {
            return Err(format!("{path}: {answer}"));
        }
        Ok(answer["data"].clone())
    }

    /// The result vector of an instant query.
    pub fn query(&self, promql: &str) -> Result<Vec<Value>, String> {
        Ok(self.api("query", Some(("query", promql)))?["result"]
            .as_array()
            .cloned()
            .unwrap_or_default())
    }

    /// The scrape targets Prometheus has, active ones, as `/api/v1/targets` lists them.
    pub fn targets(&self) -> Result<Vec<Value>, String> {
        Ok(
            self.api("targets", Some(("state", "active")))?["activeTargets"]
                .as_array()
                .cloned()
                .unwrap_or_default(),
        )
    }

    /// The alerts firing or pending.
    pub fn alerts(&self) -> Result<Vec<Value>, String> {
        Ok(self.api("alerts", None)?["alerts"]
            .as_array()
            .cloned()
            .unwrap_or_default())
    }
}

fn get(url: &str, query: Option<(&str, &str)>) -> Result<String, String> {
    let mut request = ureq::get(url)
        .config()
        .timeout_global(Some(Duration::from_secs(10)))
        .build();
    if let Some((key, value)) = query {
        request = request.query(key, value);
    }
    request
        .call()
        .map_err(|e| format!("{url}: {e}"))?
        .body_mut()
        .read_to_string()
        .map_err(|e| format!("{url}: {e}"))
}
