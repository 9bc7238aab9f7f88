//! Provisioning: once the S3 cluster answers healthy, the users of `spec.users` (each from a Secret
//! with `CONSOLE_ACCESS_KEY` and `CONSOLE_SECRET_KEY`, given the `consoleAdmin` policy, as the Go
//! operator does) and the buckets of `spec.buckets`. What was done is remembered per Tenant, so a
//! healthy Tenant costs the server nothing on later passes: a user again only when its Secret
//! changed (a rotated secret), a bucket only once per operator process (creating an existing one
//! is a no-op the server answers as such).

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Mutex;

use super::controller::Context;
use super::health::log_admin_error;
use super::status::{AtStep, Step, StepError};
use crate::api::tenant::Tenant;
use crate::s3admin::AdminClient;

/// The policy the Go operator gives every user it creates.
pub const USER_POLICY: &str = "consoleAdmin";

/// What was provisioned for each Tenant (by uid).
#[derive(Default)]
pub struct Memory(Mutex<HashMap<String, Done>>);

impl Memory {
    /// A deleted Tenant's record goes with it.
    pub fn forget(&self, uid: &str) {
        if let Ok(mut done) = self.0.lock() {
            done.remove(uid);
        }
    }

    /// Keeps only the records of Tenants in `alive`.
    pub fn keep_only(&self, alive: &std::collections::HashSet<String>) {
        if let Ok(mut done) = self.0.lock() {
            done.retain(|uid, _| alive.contains(uid));
        }
    }
}

#[derive(Clone, Default)]
struct Done {
    /// User Secret name -> the resourceVersion provisioned.
    users: BTreeMap<String, String>,
    buckets: BTreeSet<String>,
}

/// The outcome: whether every user and bucket is in place, and the first thing that is not.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Provisioned {
    pub users: bool,
    pub buckets: bool,
    /// (reason, message) of what blocks provisioning; names the Secret or bucket.
    pub problem: Option<(&'static str, String)>,
    /// Users created or updated, and buckets created, on this pass (for one event).
    pub done_now: Vec<String>,
}

pub async fn provision(
    ctx: &Context,
    tenant: &Tenant,
    admin: &AdminClient,
    ldap: bool,
) -> Result<Provisioned, StepError> {
    let uid = tenant.metadata.uid.clone().unwrap_or_default();
    let mut done = ctx
        .provisioned
        .0
        .lock()
        .map(|m| m.get(&uid).cloned().unwrap_or_default())
        .unwrap_or_default();
    let mut out = Provisioned {
        users: true,
        buckets: true,
        ..Provisioned::default()
    };
    let problem = |out: &mut Provisioned, reason, message: String| {
        if out.problem.is_none() {
            out.problem = Some((reason, message));
        }
    };
    let ns = tenant.namespace();
    for (i, user) in tenant.spec.users.iter().enumerate() {
        let name = &user.name;
        // Provisioned at the version the watch still reports: nothing to fetch.
        if ctx
            .caches
            .secret_version(ns, name)
            .is_some_and(|v| done.users.get(name) == Some(&v))
        {
            continue;
        }
        let Some(secret) = ctx
            .caches
            .secret(&ctx.client, ns, name)
            .await
            .at(Step::Provisioning)?
        else {
            out.users = false;
            problem(
                &mut out,
                "UserSecretMissing",
                format!("the user Secret {name:?} (spec.users[{i}]) does not exist"),
            );
            continue;
        };
        let version = secret.metadata.resource_version.clone().unwrap_or_default();
        if done.users.get(name) == Some(&version) {
            continue;
        }
        let field = |key: &str| {
            secret
                .data
                .as_ref()
                .and_then(|d| d.get(key))
                .map(|v| String::from_utf8_lossy(&v.0).trim().to_owned())
                .filter(|v| !v.is_empty())
        };
        let (Some(access_key), secret_key) =
            (field("CONSOLE_ACCESS_KEY"), field("CONSOLE_SECRET_KEY"))
        else {
            out.users = false;
            problem(
                &mut out,
                "UserSecretInvalid",
                format!("the user Secret {name:?} (spec.users[{i}]) has no CONSOLE_ACCESS_KEY"),
            );
            continue;
        };
        let result = match (ldap, secret_key) {
            // LDAP users exist in the directory; they only get their policy here.
            (true, _) => admin.set_user_policy(USER_POLICY, &access_key).await,
            (false, Some(secret_key)) => match admin.add_user(&access_key, &secret_key).await {
                Ok(()) => admin.set_user_policy(USER_POLICY, &access_key).await,
                Err(e) => Err(e),
            },
            (false, None) => {
                out.users = false;
                problem(
                    &mut out,
                    "UserSecretInvalid",
                    format!("the user Secret {name:?} (spec.users[{i}]) has no CONSOLE_SECRET_KEY"),
                );
                continue;
            }
        };
        match result {
            Ok(()) => {
                done.users.insert(name.clone(), version);
                out.done_now.push(format!("user from Secret {name:?}"));
            }
            Err(error) => {
                log_admin_error(tenant, "add user", &error);
                out.users = false;
                problem(
                    &mut out,
                    "UserProvisioningFailed",
                    format!("the user of Secret {name:?} could not be provisioned: {error}"),
                );
            }
        }
    }
    for bucket in &tenant.spec.buckets {
        // Admission requires a name; a Tenant stored while the webhooks were off may lack one.
        let Some(name) = bucket.name.as_deref().filter(|n| !n.is_empty()) else {
            continue;
        };
        if done.buckets.contains(name) {
            continue;
        }
        let lock = bucket.object_lock.unwrap_or(false);
        match admin
            .make_bucket(name, bucket.region.as_deref(), lock)
            .await
        {
            Ok(created) => {
                done.buckets.insert(name.to_owned());
                if created {
                    out.done_now.push(format!("bucket {name:?}"));
                }
            }
            Err(error) => {
                log_admin_error(tenant, "create bucket", &error);
                out.buckets = false;
                problem(
                    &mut out,
                    "BucketProvisioningFailed",
                    format!("the bucket {name:?} could not be created: {error}"),
                );
            }
        }
    }
    if let Ok(mut memory) = ctx.provisioned.0.lock() {
        // Users no longer listed are forgotten, so listing one again provisions it again.
        done.users
            .retain(|name, _| tenant.spec.users.iter().any(|u| &u.name == name));
        memory.insert(uid, done);
    }
    Ok(out)
}
