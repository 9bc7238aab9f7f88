//! The operator CA in a Secret of the operator's namespace, read and written through the API (not
//! a mounted volume, which lags by a kubelet sync). Replicas race to create it; the loser reads the
//! winner's, so every replica serves certificates of one CA.
//!
//! Rotation happens in steps, each one write of the Secret (optimistic concurrency: a replica that
//! loses a race re-reads and re-plans), so that the apiserver trusts a CA before any certificate it
//! signed is served, and keeps trusting the old one until no replica serves its certificates:
//!
//! 1. **announce**: with a third of the CA's life left, a next CA is generated and stored beside
//!    the current one; the caBundle lists both, the current one still signs;
//! 2. **promote**: `announce_for` later the next CA becomes the current one and signs; the old one
//!    stays in the bundle as the previous CA;
//! 3. **forget**: `keep_previous_for` later the previous CA leaves the bundle (every replica has
//!    re-signed its serving certificate within one refresh period of the promotion).
//!
//! A rotation is due when a third of the CA's life is left, or when someone asks for one
//! (`hanzo-s3-operator rotate-ca`, [`announce_now`]). Tenants follow the same steps on their own
//! pace (`reconcile::configuration`): their servers read the CAs they trust only when they start,
//! so a tenant's certificate is signed by a promoted CA only once every server of it restarted
//! trusting it. The Secret counts the rotations and keeps the first CA's derivation seed, so keys
//! derived from it (the pod-template hashes) outlive the CA.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use k8s_openapi::ByteString;
use k8s_openapi::api::core::v1::Secret;
use kube::api::{Api, ObjectMeta, PostParams};

use super::{CA_VALIDITY, Ca, CertError, due_for_renewal_at};

pub const CA_SECRET: &str = "hanzo-s3-operator-ca";
const CA_COMMON_NAME: &str = "hanzo-s3-operator-ca";
const CERT_KEY: &str = "ca.crt";
const KEY_KEY: &str = "ca.key";
const NOT_AFTER_KEY: &str = "not-after";
const NEXT_CERT_KEY: &str = "next-ca.crt";
const NEXT_KEY_KEY: &str = "next-ca.key";
const NEXT_NOT_AFTER_KEY: &str = "next-not-after";
const NEXT_SINCE_KEY: &str = "next-since";
/// The CA that signed before the current one, trusted until `previous-until`.
const PREVIOUS_CERT_KEY: &str = "previous-ca.crt";
const PREVIOUS_UNTIL_KEY: &str = "previous-until";
/// How many CAs were announced since the first: tenants' pod templates carry the CA they trust
/// only once there was one.
const ROTATIONS_KEY: &str = "rotations";
/// The seed of derived keys (hex), written at the first rotation: the first CA's.
const SEED_KEY: &str = "derivation-seed";

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("Kubernetes API: {0}")]
    Kube(#[from] kube::Error),
    #[error(transparent)]
    Cert(#[from] CertError),
    #[error("Secret {0} is missing {1} or it is unreadable")]
    Incomplete(String, &'static str),
}

/// How long each rotation step waits.
#[derive(Clone, Debug)]
pub struct RotationPolicy {
    /// From announcing a next CA (in the bundle) to signing with it. Long enough for every
    /// apiserver to see the updated webhook configurations.
    pub announce_for: Duration,
    /// From promoting a CA to dropping the one it replaced from the bundle. Longer than the
    /// refresh period, so every replica has re-signed its serving certificate by then.
    pub keep_previous_for: Duration,
}

impl Default for RotationPolicy {
    fn default() -> Self {
        RotationPolicy {
            announce_for: Duration::from_secs(15 * 60),
            keep_previous_for: Duration::from_secs(24 * 3600),
        }
    }
}

/// The CA to sign with, and the bundle the webhook configurations must trust.
pub struct StoredCa {
    pub ca: Arc<Ca>,
    /// PEM of every CA to trust: the previous one (while kept), the current one, the next one
    /// (once announced).
    pub bundle_pem: String,
    /// Once a CA was ever rotated: the fingerprint of the newest CA of the bundle, which a
    /// server must have been started with to trust every CA that may sign. `None` before the
    /// first rotation, so that pod templates made before rotations existed stay as they were.
    pub trust_mark: Option<String>,
    /// When the next rotation step is due, if one is planned (promote, forget).
    pub next_step_at: Option<SystemTime>,
    /// The fingerprint of the CA that signs now (read once: every pass over a TLS tenant asks).
    signer: String,
    seed: Vec<u8>,
}

impl StoredCa {
    /// A CA that is never rotated (standalone, tests).
    pub fn single(ca: Arc<Ca>) -> StoredCa {
        StoredCa {
            bundle_pem: ca.cert_pem().to_owned(),
            seed: ca.derivation_seed(),
            signer: fingerprint(&ca),
            ca,
            trust_mark: None,
            next_step_at: None,
        }
    }

    /// The fingerprint of the CA that signs now.
    pub fn signer(&self) -> &str {
        &self.signer
    }

    /// A key for `purpose` that stays the same across rotations.
    pub fn derived_key(&self, purpose: &str) -> ring::hmac::Key {
        super::derived_key(&self.seed, purpose)
    }
}

fn fingerprint(ca: &Ca) -> String {
    super::fingerprint_of_pem(ca.cert_pem().as_bytes()).unwrap_or_default()
}

/// The stored CA as this replica last read it: the reconciler signs tenants' certificates with
/// it, and is woken when it changes.
#[derive(Clone)]
pub struct SharedCa(tokio::sync::watch::Receiver<Arc<StoredCa>>);

impl SharedCa {
    /// One that never changes.
    pub fn fixed(stored: StoredCa) -> SharedCa {
        SharedCa(tokio::sync::watch::channel(Arc::new(stored)).1)
    }

    /// One that changes with what is sent to the returned sender.
    pub fn channel(stored: Arc<StoredCa>) -> (tokio::sync::watch::Sender<Arc<StoredCa>>, SharedCa) {
        let (tx, rx) = tokio::sync::watch::channel(stored);
        (tx, SharedCa(rx))
    }

    pub fn current(&self) -> Arc<StoredCa> {
        self.0.borrow().clone()
    }

    /// Yields each time the stored CA changes (not for the value held at the start).
    pub fn changes(&self) -> impl futures::Stream<Item = ()> + Send + 'static {
        futures::stream::unfold(self.0.clone(), |mut rx| async move {
            rx.changed().await.ok()?;
            Some(((), rx))
        })
    }
}

/// One CA as stored: certificate, key (absent for the previous CA) and expiry.
#[derive(Clone, Debug, PartialEq, Eq)]
struct CaPem {
    cert: String,
    key: String,
    not_after: SystemTime,
}

/// The Secret's content, parsed.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
struct CaState {
    current: Option<CaPem>,
    /// The announced CA and since when.
    next: Option<(CaPem, SystemTime)>,
    /// The replaced CA's certificate and until when it stays trusted (None: no deadline known).
    previous: Option<(String, Option<SystemTime>)>,
    rotations: u64,
    /// Written at the first rotation; before it, the current CA's own.
    seed: Option<Vec<u8>>,
}

/// What one call does to the Secret.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Step {
    Keep,
    Create,
    Announce,
    Promote,
    ForgetPrevious,
}

fn plan(state: &CaState, now: SystemTime, policy: &RotationPolicy) -> Step {
    let Some(current) = &state.current else {
        return Step::Create;
    };
    if let Some((_, since)) = &state.next {
        return if now >= *since + policy.announce_for {
            Step::Promote
        } else {
            Step::Keep
        };
    }
    if let Some((_, Some(until))) = &state.previous
        && now >= *until
    {
        return Step::ForgetPrevious;
    }
    if due_for_renewal_at(current.not_after, CA_VALIDITY, now) {
        return Step::Announce;
    }
    Step::Keep
}

fn fresh_ca() -> Result<CaPem, CertError> {
    let ca = Ca::generate(CA_COMMON_NAME)?;
    Ok(CaPem {
        cert: ca.cert_pem().to_owned(),
        key: ca.key_pem().to_owned(),
        not_after: ca.not_after(),
    })
}

/// The state after `step` (None for Keep).
fn advance(
    state: &CaState,
    step: Step,
    now: SystemTime,
    policy: &RotationPolicy,
) -> Result<Option<CaState>, CertError> {
    Ok(match step {
        Step::Keep => None,
        Step::Create => Some(CaState {
            current: Some(fresh_ca()?),
            ..CaState::default()
        }),
        Step::Announce => Some(CaState {
            next: Some((fresh_ca()?, now)),
            rotations: state.rotations + 1,
            seed: match (&state.seed, &state.current) {
                (Some(seed), _) => Some(seed.clone()),
                (None, Some(c)) => Some(seed_of(c)?),
                (None, None) => None,
            },
            ..state.clone()
        }),
        Step::Promote => {
            let Some((next, _)) = state.next.clone() else {
                return Ok(None);
            };
            Some(CaState {
                previous: state
                    .current
                    .as_ref()
                    .map(|c| (c.cert.clone(), Some(now + policy.keep_previous_for))),
                current: Some(next),
                next: None,
                ..state.clone()
            })
        }
        Step::ForgetPrevious => Some(CaState {
            previous: None,
            ..state.clone()
        }),
    })
}

fn seed_of(ca: &CaPem) -> Result<Vec<u8>, CertError> {
    Ok(Ca::from_pem(&ca.cert, &ca.key, ca.not_after)?.derivation_seed())
}

fn unhex(text: &str) -> Option<Vec<u8>> {
    let text = text.trim();
    if !text.len().is_multiple_of(2) {
        return None;
    }
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(text.get(i..i + 2)?, 16).ok())
        .collect()
}

fn unix(t: SystemTime) -> String {
    t.duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
        .to_string()
}

fn field(secret: &Secret, key: &'static str) -> Option<String> {
    secret
        .data
        .as_ref()?
        .get(key)
        .map(|b| String::from_utf8_lossy(&b.0).into_owned())
        .filter(|s| !s.is_empty())
}

fn time_field(secret: &Secret, key: &'static str) -> Result<Option<SystemTime>, StoreError> {
    field(secret, key)
        .map(|s| {
            s.trim()
                .parse::<u64>()
                .map(|n| UNIX_EPOCH + Duration::from_secs(n))
                .map_err(|_| StoreError::Incomplete(CA_SECRET.into(), key))
        })
        .transpose()
}

fn parse(secret: &Secret) -> Result<CaState, StoreError> {
    let incomplete = |key| StoreError::Incomplete(CA_SECRET.into(), key);
    let current = CaPem {
        cert: field(secret, CERT_KEY).ok_or_else(|| incomplete(CERT_KEY))?,
        key: field(secret, KEY_KEY).ok_or_else(|| incomplete(KEY_KEY))?,
        not_after: time_field(secret, NOT_AFTER_KEY)?.ok_or_else(|| incomplete(NOT_AFTER_KEY))?,
    };
    // A half-written next CA (any part missing) is ignored: the next announce replaces it.
    let next = match (
        field(secret, NEXT_CERT_KEY),
        field(secret, NEXT_KEY_KEY),
        time_field(secret, NEXT_NOT_AFTER_KEY)?,
        time_field(secret, NEXT_SINCE_KEY)?,
    ) {
        (Some(cert), Some(key), Some(not_after), Some(since)) => Some((
            CaPem {
                cert,
                key,
                not_after,
            },
            since,
        )),
        _ => None,
    };
    let previous = field(secret, PREVIOUS_CERT_KEY)
        .map(|cert| Ok::<_, StoreError>((cert, time_field(secret, PREVIOUS_UNTIL_KEY)?)))
        .transpose()?;
    let rotations = match field(secret, ROTATIONS_KEY) {
        Some(n) => n.trim().parse().map_err(|_| incomplete(ROTATIONS_KEY))?,
        None => 0,
    };
    let seed = field(secret, SEED_KEY)
        .map(|h| unhex(&h).ok_or_else(|| incomplete(SEED_KEY)))
        .transpose()?;
    Ok(CaState {
        current: Some(current),
        next,
        previous,
        rotations,
        seed,
    })
}

fn data(state: &CaState) -> BTreeMap<String, ByteString> {
    let mut data = BTreeMap::new();
    let mut put = |key: &str, value: String| {
        data.insert(key.to_owned(), ByteString(value.into_bytes()));
    };
    if let Some(c) = &state.current {
        put(CERT_KEY, c.cert.clone());
        put(KEY_KEY, c.key.clone());
        put(NOT_AFTER_KEY, unix(c.not_after));
    }
    if let Some((n, since)) = &state.next {
        put(NEXT_CERT_KEY, n.cert.clone());
        put(NEXT_KEY_KEY, n.key.clone());
        put(NEXT_NOT_AFTER_KEY, unix(n.not_after));
        put(NEXT_SINCE_KEY, unix(*since));
    }
    if let Some((cert, until)) = &state.previous {
        put(PREVIOUS_CERT_KEY, cert.clone());
        if let Some(until) = until {
            put(PREVIOUS_UNTIL_KEY, unix(*until));
        }
    }
    if state.rotations > 0 {
        put(ROTATIONS_KEY, state.rotations.to_string());
    }
    if let Some(seed) = &state.seed {
        put(SEED_KEY, super::hex(seed));
    }
    data
}

fn secret_for(namespace: &str, state: &CaState, resource_version: Option<String>) -> Secret {
    Secret {
        metadata: ObjectMeta {
            name: Some(CA_SECRET.to_owned()),
            namespace: Some(namespace.to_owned()),
            resource_version,
            labels: Some(
                [(
                    "app.kubernetes.io/name".to_owned(),
                    "hanzo-s3-operator".to_owned(),
                )]
                .into(),
            ),
            ..ObjectMeta::default()
        },
        type_: Some("Opaque".to_owned()),
        data: Some(data(state)),
        ..Secret::default()
    }
}

fn bundle(state: &CaState) -> String {
    let mut pem = String::new();
    let mut push = |cert: &str| {
        if !pem.contains(cert) {
            pem.push_str(cert);
            if !cert.ends_with('\n') {
                pem.push('\n');
            }
        }
    };
    if let Some((cert, _)) = &state.previous {
        push(cert);
    }
    if let Some(c) = &state.current {
        push(&c.cert);
    }
    if let Some((n, _)) = &state.next {
        push(&n.cert);
    }
    pem
}

/// When the step after `state` is due by time (promote, forget), if one is.
fn next_step_at(state: &CaState, policy: &RotationPolicy) -> Option<SystemTime> {
    if let Some((_, since)) = &state.next {
        return Some(*since + policy.announce_for);
    }
    state.previous.as_ref().and_then(|(_, until)| *until)
}

fn stored(state: &CaState, policy: &RotationPolicy) -> Result<StoredCa, StoreError> {
    let current = state
        .current
        .as_ref()
        .ok_or_else(|| StoreError::Incomplete(CA_SECRET.into(), CERT_KEY))?;
    let ca = Ca::from_pem(&current.cert, &current.key, current.not_after)?;
    let newest = state.next.as_ref().map_or(current, |(n, _)| n);
    Ok(StoredCa {
        seed: state.seed.clone().unwrap_or_else(|| ca.derivation_seed()),
        signer: fingerprint(&ca),
        ca: Arc::new(ca),
        bundle_pem: bundle(state),
        trust_mark: (state.rotations > 0)
            .then(|| super::fingerprint_of_pem(newest.cert.as_bytes()))
            .flatten(),
        next_step_at: next_step_at(state, policy),
    })
}

/// [`ensure_ca_with`] the default rotation policy.
pub async fn ensure_ca(client: kube::Client, namespace: &str) -> Result<StoredCa, StoreError> {
    ensure_ca_with(client, namespace, &RotationPolicy::default()).await
}

/// The CA from the Secret: created when absent, and moved one rotation step forward when one is
/// due (see the module documentation). Safe to call from every replica at once.
pub async fn ensure_ca_with(
    client: kube::Client,
    namespace: &str,
    policy: &RotationPolicy,
) -> Result<StoredCa, StoreError> {
    update(client, namespace, policy, plan).await
}

/// What [`announce_now`] did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Announced {
    /// A next CA is now in the bundle.
    Now,
    /// One already was, since then.
    Already(SystemTime),
}

/// Starts a rotation now, whatever the CA's age (a key thought exposed, a test): a next CA is
/// stored beside the current one. The running operators take the remaining steps on their
/// schedule. Creates the CA if there is none.
pub async fn announce_now(
    client: kube::Client,
    namespace: &str,
) -> Result<(StoredCa, Announced), StoreError> {
    let secrets: Api<Secret> = Api::namespaced(client.clone(), namespace);
    let before = match secrets.get_opt(CA_SECRET).await? {
        Some(secret) => parse(&secret)?,
        None => CaState::default(),
    };
    if let Some((_, since)) = before.next {
        let stored = stored(&before, &RotationPolicy::default())?;
        return Ok((stored, Announced::Already(since)));
    }
    let announce = |state: &CaState, _: SystemTime, _: &RotationPolicy| match state {
        CaState { current: None, .. } => Step::Create,
        CaState { next: None, .. } => Step::Announce,
        // Announced meanwhile by someone else: that rotation goes on, on the operators' schedule.
        _ => Step::Keep,
    };
    let mut stored = update(
        client.clone(),
        namespace,
        &RotationPolicy::default(),
        announce,
    )
    .await?;
    if before.current.is_none() {
        // Created just now: announce beside it.
        stored = update(client, namespace, &RotationPolicy::default(), announce).await?;
    }
    Ok((stored, Announced::Now))
}

/// Reads the Secret and writes the step `planner` picks, re-reading after a conflict.
async fn update(
    client: kube::Client,
    namespace: &str,
    policy: &RotationPolicy,
    planner: impl Fn(&CaState, SystemTime, &RotationPolicy) -> Step,
) -> Result<StoredCa, StoreError> {
    let secrets: Api<Secret> = Api::namespaced(client, namespace);
    for _ in 0..5 {
        let existing = secrets.get_opt(CA_SECRET).await?;
        let state = match &existing {
            Some(secret) => parse(secret)?,
            None => CaState::default(),
        };
        let now = SystemTime::now();
        let step = planner(&state, now, policy);
        let Some(next) = advance(&state, step, now, policy)? else {
            return stored(&state, policy);
        };
        let written = match &existing {
            None => {
                secrets
                    .create(&PostParams::default(), &secret_for(namespace, &next, None))
                    .await
            }
            // The resourceVersion makes this a compare-and-swap: a concurrent writer wins, we
            // re-read and re-plan.
            Some(secret) => {
                let rv = secret.metadata.resource_version.clone();
                secrets
                    .replace(
                        CA_SECRET,
                        &PostParams::default(),
                        &secret_for(namespace, &next, rv),
                    )
                    .await
            }
        };
        match written {
            Ok(_) => {
                tracing::info!(namespace, secret = CA_SECRET, step = ?step, rotations = next.rotations, "operator CA updated");
                return stored(&next, policy);
            }
            Err(kube::Error::Api(e)) if e.code == 409 => continue,
            Err(e) => return Err(e.into()),
        }
    }
    // Five conflicts in a row: someone else keeps writing it; use what is there.
    let secret = secrets.get(CA_SECRET).await?;
    stored(&parse(&secret)?, policy)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy() -> RotationPolicy {
        RotationPolicy {
            announce_for: Duration::from_secs(600),
            keep_previous_for: Duration::from_secs(3600),
        }
    }

    fn ca_pem(valid_for: Duration, now: SystemTime) -> CaPem {
        let mut c = fresh_ca().unwrap();
        c.not_after = now + valid_for;
        c
    }

    #[test]
    fn a_ca_is_rotated_in_three_steps_and_always_trusted_before_it_signs() {
        let policy = policy();
        let t0 = SystemTime::now() + Duration::from_secs(1);
        let old = ca_pem(CA_VALIDITY / 4, t0);
        let mut state = CaState {
            current: Some(old.clone()),
            ..CaState::default()
        };
        assert_eq!(plan(&state, t0, &policy), Step::Announce);
        state = advance(&state, Step::Announce, t0, &policy)
            .unwrap()
            .unwrap();
        let (next, _) = state.next.clone().unwrap();
        assert_eq!(state.current.as_ref(), Some(&old), "the old CA still signs");
        assert_eq!(bundle(&state), format!("{}{}", old.cert, next.cert));

        let t1 = t0 + Duration::from_secs(599);
        assert_eq!(plan(&state, t1, &policy), Step::Keep);
        let t2 = t0 + Duration::from_secs(600);
        assert_eq!(plan(&state, t2, &policy), Step::Promote);
        state = advance(&state, Step::Promote, t2, &policy)
            .unwrap()
            .unwrap();
        assert_eq!(
            state.current.as_ref(),
            Some(&next),
            "the announced CA signs"
        );
        assert_eq!(bundle(&state), format!("{}{}", old.cert, next.cert));

        let t3 = t2 + Duration::from_secs(3599);
        assert_eq!(plan(&state, t3, &policy), Step::Keep);
        let t4 = t2 + Duration::from_secs(3600);
        assert_eq!(plan(&state, t4, &policy), Step::ForgetPrevious);
        state = advance(&state, Step::ForgetPrevious, t4, &policy)
            .unwrap()
            .unwrap();
        assert_eq!(bundle(&state), next.cert);
        assert_eq!(plan(&state, t4, &policy), Step::Keep, "a fresh CA stays");
    }

    #[test]
    fn derived_keys_and_the_trust_mark_follow_a_rotation() {
        let policy = policy();
        let t0 = SystemTime::now();
        let first = CaState {
            current: Some(ca_pem(CA_VALIDITY, t0)),
            ..CaState::default()
        };
        let tag = |s: &StoredCa| {
            ring::hmac::sign(&s.derived_key("p"), b"x")
                .as_ref()
                .to_vec()
        };
        let before = stored(&first, &policy).unwrap();
        let announced = advance(&first, Step::Announce, t0, &policy)
            .unwrap()
            .unwrap();
        let (next, _) = announced.next.clone().unwrap();
        let during = stored(&announced, &policy).unwrap();
        assert_eq!(
            during.trust_mark,
            crate::certs::fingerprint_of_pem(next.cert.as_bytes()),
            "servers must start trusting the announced CA"
        );
        assert_eq!(during.signer(), before.signer(), "the first CA still signs");
        assert_eq!(during.next_step_at, Some(t0 + policy.announce_for));
        let promoted = advance(&announced, Step::Promote, t0, &policy)
            .unwrap()
            .unwrap();
        // Through the Secret, as another replica reads it.
        let read = parse(&secret_for("ops", &promoted, None)).unwrap();
        let after = stored(&read, &policy).unwrap();
        assert_ne!(after.signer(), before.signer());
        assert_eq!(
            after.trust_mark, during.trust_mark,
            "promoting restarts nothing"
        );
        assert_eq!(
            tag(&after),
            tag(&before),
            "derived keys outlive the first CA"
        );
        let forgotten = advance(&read, Step::ForgetPrevious, t0, &policy)
            .unwrap()
            .unwrap();
        assert_eq!(
            stored(&forgotten, &policy).unwrap().trust_mark,
            during.trust_mark,
            "forgetting restarts nothing"
        );
    }

    #[test]
    fn no_secret_means_create_and_a_fresh_ca_is_kept() {
        let now = SystemTime::now();
        assert_eq!(plan(&CaState::default(), now, &policy()), Step::Create);
        let state = advance(&CaState::default(), Step::Create, now, &policy())
            .unwrap()
            .unwrap();
        assert_eq!(plan(&state, now, &policy()), Step::Keep);
        let stored = stored(&state, &policy()).unwrap();
        assert_eq!(stored.trust_mark, None, "no mark before the first rotation");
        assert_eq!(
            stored.bundle_pem,
            stored.ca.cert_pem(),
            "a tenant's ca.crt written before rotations existed reads as the bundle"
        );
        assert_eq!(stored.next_step_at, None);
    }

    #[test]
    fn the_secret_round_trips_every_step() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_900_000_000);
        let state = CaState {
            current: Some(ca_pem(CA_VALIDITY, now)),
            next: Some((ca_pem(CA_VALIDITY, now), now)),
            previous: Some(("-----BEGIN CERTIFICATE-----\nold\n".into(), Some(now))),
            rotations: 3,
            seed: Some(vec![0, 1, 254, 255]),
        };
        let secret = secret_for("ops", &state, Some("7".into()));
        assert_eq!(secret.metadata.resource_version.as_deref(), Some("7"));
        assert_eq!(parse(&secret).unwrap(), state);
        // A previous CA stored without a deadline (by an older operator) is kept.
        let mut legacy = state.clone();
        legacy.previous = Some(("x".into(), None));
        legacy.next = None;
        let parsed = parse(&secret_for("ops", &legacy, None)).unwrap();
        assert_eq!(parsed, legacy);
        assert_eq!(plan(&parsed, now, &policy()), Step::Keep);
    }

    #[test]
    fn an_incomplete_secret_is_an_error_that_names_the_key() {
        let mut secret = secret_for(
            "ops",
            &CaState {
                current: Some(ca_pem(CA_VALIDITY, SystemTime::now())),
                ..CaState::default()
            },
            None,
        );
        secret.data.as_mut().unwrap().remove(KEY_KEY);
        let err = parse(&secret).unwrap_err().to_string();
        assert_eq!(
            err,
            "Secret hanzo-s3-operator-ca is missing ca.key or it is unreadable"
        );
    }
}
