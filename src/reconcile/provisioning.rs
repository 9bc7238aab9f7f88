//! Provisioning: once the S3 cluster answers healthy, the users of `spec.users` (each from a Secret
//! with `CONSOLE_ACCESS_KEY` and `CONSOLE_SECRET_KEY`, given the `consoleAdmin` policy, as the Go
//! operator does) and the buckets of `spec.buckets`. What was done is remembered per Tenant, so a
//! healthy Tenant costs the server nothing on later passes: a user again only when its Secret
//! changed (a rotated secret), a bucket only once per operator process (creating an existing one
//! is a no-op the server answers as such).

use super::context::Context;
use super::memory::ProvisionedRecord;
use super::observed::Provisioned;
use super::outcome::{AtStep, Step, StepError, log_admin_error};
use crate::api::tenant::Tenant;
use crate::s3admin::AdminClient;

/// The policy the Go operator gives every user it creates.
pub const USER_POLICY: &str = "consoleAdmin";

pub async fn provision(
    ctx: &Context,
    tenant: &Tenant,
    admin: &AdminClient,
    ldap: bool,
) -> Result<Provisioned, StepError> {
    let uid = tenant.metadata.uid.clone().unwrap_or_default();
    let mut done = ctx.memory.provisioned(&uid);
    let mut out = Provisioned {
        users: true,
        buckets: true,
        ..Provisioned::default()
    };
    for (i, user) in tenant.spec.users.iter().enumerate() {
        provision_user(
            ctx,
            tenant,
            admin,
            ldap,
            (i, &user.name),
            &mut done,
            &mut out,
        )
        .await?;
    }
    provision_buckets(tenant, admin, &mut done, &mut out).await;
    // Users no longer listed are forgotten, so listing one again provisions it again.
    done.users
        .retain(|name, _| tenant.spec.users.iter().any(|u| &u.name == name));
    ctx.memory.remember_provisioned(&uid, done);
    Ok(out)
}

impl Provisioned {
    /// Keeps the first problem only: the condition names one thing to fix.
    fn problem(&mut self, reason: &'static str, message: String) {
        if self.problem.is_none() {
            self.problem = Some((reason, message));
        }
    }

    fn user_problem(&mut self, reason: &'static str, message: String) {
        self.users = false;
        self.problem(reason, message);
    }
}

/// The user of `spec.users[i]` (Secret `name`), unless provisioned at the Secret's version.
async fn provision_user(
    ctx: &Context,
    tenant: &Tenant,
    admin: &AdminClient,
    ldap: bool,
    (i, name): (usize, &String),
    done: &mut ProvisionedRecord,
    out: &mut Provisioned,
) -> Result<(), StepError> {
    let ns = tenant.namespace();
    // Provisioned at the version the watch still reports: nothing to fetch.
    if ctx
        .caches
        .secret_version(ns, name)
        .is_some_and(|v| done.users.get(name) == Some(&v))
    {
        return Ok(());
    }
    let Some(secret) = ctx
        .caches
        .secret(&ctx.client, ns, name)
        .await
        .at(Step::Provisioning)?
    else {
        out.user_problem(
            "UserSecretMissing",
            format!("the user Secret {name:?} (spec.users[{i}]) does not exist"),
        );
        return Ok(());
    };
    let version = secret.metadata.resource_version.clone().unwrap_or_default();
    if done.users.get(name) == Some(&version) {
        return Ok(());
    }
    let field = |key: &str| {
        secret
            .data
            .as_ref()
            .and_then(|d| d.get(key))
            .map(|v| String::from_utf8_lossy(&v.0).trim().to_owned())
            .filter(|v| !v.is_empty())
    };
    let Some(access_key) = field("CONSOLE_ACCESS_KEY") else {
        out.user_problem(
            "UserSecretInvalid",
            format!("the user Secret {name:?} (spec.users[{i}]) has no CONSOLE_ACCESS_KEY"),
        );
        return Ok(());
    };
    let result = match (ldap, field("CONSOLE_SECRET_KEY")) {
        // LDAP users exist in the directory; they only get their policy here.
        (true, _) => admin.set_user_policy(USER_POLICY, &access_key).await,
        (false, Some(secret_key)) => match admin.add_user(&access_key, &secret_key).await {
            Ok(()) => admin.set_user_policy(USER_POLICY, &access_key).await,
            Err(e) => Err(e),
        },
        (false, None) => {
            out.user_problem(
                "UserSecretInvalid",
                format!("the user Secret {name:?} (spec.users[{i}]) has no CONSOLE_SECRET_KEY"),
            );
            return Ok(());
        }
    };
    match result {
        Ok(()) => {
            done.users.insert(name.clone(), version);
            out.done_now.push(format!("user from Secret {name:?}"));
        }
        Err(error) => {
            log_admin_error(tenant, "add user", &error);
            out.user_problem(
                "UserProvisioningFailed",
                format!("the user of Secret {name:?} could not be provisioned: {error}"),
            );
        }
    }
    Ok(())
}

/// Every bucket of `spec.buckets` not made yet by this process.
async fn provision_buckets(
    tenant: &Tenant,
    admin: &AdminClient,
    done: &mut ProvisionedRecord,
    out: &mut Provisioned,
) {
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
                out.problem(
                    "BucketProvisioningFailed",
                    format!("the bucket {name:?} could not be created: {error}"),
                );
            }
        }
    }
}
