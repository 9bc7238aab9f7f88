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

use std::collections::BTreeMap;
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
    pub ca: Ca,
    /// PEM of every CA to trust: the previous one (while kept), the current one, the next one
    /// (once announced).
    pub bundle_pem: String,
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
            })
        }
        Step::ForgetPrevious => Some(CaState {
            previous: None,
            ..state.clone()
        }),
    })
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
    Ok(CaState {
        current: Some(current),
        next,
        previous,
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

fn stored(state: &CaState) -> Result<StoredCa, StoreError> {
    let current = state
        .current
        .as_ref()
        .ok_or_else(|| StoreError::Incomplete(CA_SECRET.into(), CERT_KEY))?;
    Ok(StoredCa {
        ca: Ca::from_pem(&current.cert, &current.key, current.not_after)?,
        bundle_pem: bundle(state),
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
    let secrets: Api<Secret> = Api::namespaced(client, namespace);
    for _ in 0..5 {
        let existing = secrets.get_opt(CA_SECRET).await?;
        let state = match &existing {
            Some(secret) => parse(secret)?,
            None => CaState::default(),
        };
        let now = SystemTime::now();
        let step = plan(&state, now, policy);
        let Some(next) = advance(&state, step, now, policy)? else {
            return stored(&state);
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
                tracing::info!(namespace, secret = CA_SECRET, step = ?step, "operator CA updated");
                return stored(&next);
            }
            Err(kube::Error::Api(e)) if e.code == 409 => continue,
            Err(e) => return Err(e.into()),
        }
    }
    // Five conflicts in a row: someone else keeps writing it; use what is there.
    let secret = secrets.get(CA_SECRET).await?;
    stored(&parse(&secret)?)
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
    fn no_secret_means_create_and_a_fresh_ca_is_kept() {
        let now = SystemTime::now();
        assert_eq!(plan(&CaState::default(), now, &policy()), Step::Create);
        let state = advance(&CaState::default(), Step::Create, now, &policy())
            .unwrap()
            .unwrap();
        assert_eq!(plan(&state, now, &policy()), Step::Keep);
        assert!(stored(&state).is_ok());
    }

    #[test]
    fn the_secret_round_trips_every_step() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_900_000_000);
        let state = CaState {
            current: Some(ca_pem(CA_VALIDITY, now)),
            next: Some((ca_pem(CA_VALIDITY, now), now)),
            previous: Some(("-----BEGIN CERTIFICATE-----\nold\n".into(), Some(now))),
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
