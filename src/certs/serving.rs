//! A replica's serving certificate, kept current: signed in memory by the CA of the Secret,
//! re-signed when the CA rotates or a third of its life is left, and never signed by a CA before
//! that CA is in the caBundle the webhook configurations carry.

use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use super::store::{self, RotationPolicy, StoreError, StoredCa};
use super::{CertError, SERVING_VALIDITY, due_for_renewal};
use crate::webhook::config;
use crate::webhook::tls::{ServingCert, TlsError};

#[derive(Debug, thiserror::Error)]
pub enum RefreshError {
    #[error("operator CA: {0}")]
    Store(#[from] StoreError),
    #[error("cannot update the webhook configurations with the CA bundle: {0}")]
    Publish(kube::Error),
    #[error("cannot sign a serving certificate: {0}")]
    Sign(#[from] CertError),
    #[error("cannot serve the new certificate: {0}")]
    Serve(#[from] TlsError),
}

/// Where the CA bundle goes: the webhook configurations.
#[allow(async_fn_in_trait)]
pub trait BundlePublisher {
    async fn publish(&self, bundle_pem: &str) -> Result<(), kube::Error>;
    /// Whether it writes anything (the webhook configurations are then watched too).
    fn publishes(&self) -> bool {
        true
    }
}

/// The operator's own Mutating- and ValidatingWebhookConfiguration, by server-side apply.
pub struct WebhookConfigurations {
    pub client: kube::Client,
    /// `ca_bundle_pem` is replaced by each published bundle.
    pub options: config::Options,
    pub field_manager: String,
}

impl BundlePublisher for WebhookConfigurations {
    async fn publish(&self, bundle_pem: &str) -> Result<(), kube::Error> {
        let mut options = self.options.clone();
        options.ca_bundle_pem = Some(bundle_pem.to_owned());
        config::apply(&self.client, &options, &self.field_manager).await
    }
}

/// `None`: publish nothing.
impl<P: BundlePublisher> BundlePublisher for Option<P> {
    async fn publish(&self, bundle_pem: &str) -> Result<(), kube::Error> {
        match self {
            Some(p) => p.publish(bundle_pem).await,
            None => Ok(()),
        }
    }

    fn publishes(&self) -> bool {
        self.as_ref().is_some_and(P::publishes)
    }
}

pub struct ServingCertificates<P> {
    client: kube::Client,
    namespace: String,
    names: Vec<String>,
    policy: RotationPolicy,
    publisher: P,
    cert: Arc<ServingCert>,
    published: Option<String>,
    signed_by: Option<String>,
    /// Where each CA read goes for the reconciler (tenants' certificates and trust).
    tenants: Option<tokio::sync::watch::Sender<Arc<StoredCa>>>,
}

impl<P: BundlePublisher> ServingCertificates<P> {
    /// Certificates for `names`, signed by the CA in the Secret of `namespace`, served by `cert`.
    pub fn new(
        client: kube::Client,
        namespace: &str,
        names: Vec<String>,
        cert: Arc<ServingCert>,
        publisher: P,
    ) -> Self {
        ServingCertificates {
            client,
            namespace: namespace.to_owned(),
            names,
            policy: RotationPolicy::default(),
            publisher,
            cert,
            published: None,
            signed_by: None,
            tenants: None,
        }
    }

    /// Sends every CA read that differs from the last (its bundle, signer or trust mark) to
    /// `tenants`.
    pub fn with_tenants(mut self, tenants: tokio::sync::watch::Sender<Arc<StoredCa>>) -> Self {
        self.tenants = Some(tenants);
        self
    }

    pub fn with_policy(mut self, policy: RotationPolicy) -> Self {
        self.policy = policy;
        self
    }

    /// One round: read (and, when due, rotate) the CA; publish the bundle if it changed; then
    /// re-sign the serving certificate if the signing CA changed or its own renewal is due. When
    /// publishing fails nothing is re-signed: the served certificate stays one the published
    /// bundle trusts.
    pub async fn refresh(&mut self) -> Result<Arc<StoredCa>, RefreshError> {
        let stored = Arc::new(
            store::ensure_ca_with(self.client.clone(), &self.namespace, &self.policy).await?,
        );
        if self.published.as_deref() != Some(stored.bundle_pem.as_str()) {
            self.publisher
                .publish(&stored.bundle_pem)
                .await
                .map_err(RefreshError::Publish)?;
            tracing::info!(
                cas = stored.bundle_pem.matches("BEGIN CERTIFICATE").count(),
                "CA bundle published"
            );
            self.published = Some(stored.bundle_pem.clone());
        }
        let ca_changed = self.signed_by.as_deref() != Some(stored.ca.cert_pem());
        let renewal_due = self
            .cert
            .not_after()
            .is_none_or(|t| due_for_renewal(t, SERVING_VALIDITY));
        if ca_changed || renewal_due {
            let pair = stored.ca.sign_serving(&self.names)?;
            self.cert.set_pem(&pair.cert_pem, &pair.key_pem)?;
            self.signed_by = Some(stored.ca.cert_pem().to_owned());
            tracing::info!(
                names = ?self.names,
                valid_for_days = pair
                    .not_after
                    .duration_since(SystemTime::now())
                    .map_or(0, |d| d.as_secs() / 86400),
                "serving certificate signed"
            );
        }
        if let Some(tenants) = &self.tenants {
            tenants.send_if_modified(|held| {
                let changed = held.bundle_pem != stored.bundle_pem
                    || held.ca.cert_pem() != stored.ca.cert_pem()
                    || held.trust_mark != stored.trust_mark;
                if changed {
                    *held = stored.clone();
                }
                changed
            });
        }
        Ok(stored)
    }

    /// Refreshes every `period`, and at once when the CA Secret or a webhook configuration is
    /// changed or deleted by anyone (watched by name), until `stop` resolves; errors are logged
    /// and retried (within seconds after a change, else next round).
    pub async fn run(mut self, period: Duration, stop: impl Future<Output = ()>) {
        use futures::StreamExt;
        tokio::pin!(stop);
        let mut changes = self.changes();
        let mut retry = period;
        loop {
            let changed = tokio::select! {
                () = tokio::time::sleep(retry) => false,
                Some(()) = changes.next() => true,
                () = &mut stop => return,
            };
            if changed {
                // A burst of events is one refresh; what we write ourselves comes back as
                // events too, and then finds nothing to change.
                tokio::time::sleep(Duration::from_millis(300)).await;
                while futures::FutureExt::now_or_never(changes.next())
                    .flatten()
                    .is_some()
                {}
                // Someone may have deleted or edited a configuration: publish again.
                self.published = None;
            }
            retry = match self.refresh().await {
                // A rotation step due sooner than the next round is taken when it is due.
                Ok(stored) => stored
                    .next_step_at
                    .and_then(|at| at.duration_since(SystemTime::now()).ok())
                    .map_or(period, |due| period.min(due + Duration::from_secs(1))),
                Err(error) => {
                    let retry = Duration::from_secs(5).min(period);
                    tracing::warn!(%error, retry_in = ?retry, "certificate refresh failed");
                    retry
                }
            };
        }
    }

    /// A stream that yields whenever the CA Secret or (when this replica publishes them) one of
    /// the webhook configurations is created, changed or deleted.
    fn changes(&self) -> futures::stream::BoxStream<'static, ()> {
        use futures::StreamExt;
        use k8s_openapi::api::admissionregistration::v1::{
            MutatingWebhookConfiguration, ValidatingWebhookConfiguration,
        };
        use k8s_openapi::api::core::v1::Secret;
        use kube::api::Api;
        use kube::core::PartialObjectMeta;
        use kube::runtime::{WatchStreamExt, watcher};

        fn named(name: &str) -> watcher::Config {
            watcher::Config::default().fields(&format!("metadata.name={name}"))
        }
        fn events<K>(api: Api<K>, name: &str) -> futures::stream::BoxStream<'static, ()>
        where
            K: kube::Resource
                + Clone
                + std::fmt::Debug
                + serde::de::DeserializeOwned
                + Send
                + 'static,
            K::DynamicType: Default,
        {
            // Backed off: without it, a watch of an apiserver that is down is retried in a busy
            // loop (measured: hundreds of attempts a second during a restart).
            watcher(api, named(name))
                .default_backoff()
                .filter_map(|event| async move {
                    match event {
                        Ok(watcher::Event::Apply(_) | watcher::Event::Delete(_)) => Some(()),
                        _ => None,
                    }
                })
                .boxed()
        }
        let mut streams = vec![events(
            Api::<PartialObjectMeta<Secret>>::namespaced(self.client.clone(), &self.namespace),
            store::CA_SECRET,
        )];
        if self.publisher.publishes() {
            streams.push(events(
                Api::<PartialObjectMeta<MutatingWebhookConfiguration>>::all(self.client.clone()),
                config::MUTATING_CONFIGURATION,
            ));
            streams.push(events(
                Api::<PartialObjectMeta<ValidatingWebhookConfiguration>>::all(self.client.clone()),
                config::VALIDATING_CONFIGURATION,
            ));
        }
        futures::stream::select_all(streams).boxed()
    }
}
