//! `rotate-ca`: start a rotation of the operator CA now, instead of when a third of its life is
//! left (a key thought exposed, a drill, a test).

use std::path::PathBuf;
use std::time::SystemTime;

use clap::Args;

use super::run::{RunError, client_of};
use super::{EXIT_OK, EXIT_UNREADABLE};
use crate::certs::store::{self, Announced, CA_SECRET};

/// Start a rotation of the operator CA now.
///
/// A next CA is stored beside the current one in the CA Secret. The running operator takes the
/// rest of the rotation: every bundle trusts both CAs at once (webhook configurations, each TLS
/// tenant's ca.crt), each TLS tenant's servers restart one at a time to trust the next CA (they
/// read their CAs only when they start), the next CA signs after --ca-announce-for (default 15m),
/// each tenant's certificate moves to it once all its servers trust it, and the replaced CA leaves
/// the bundles after --ca-keep-previous-for (default 24h). Clients of the tenants should trust the
/// bundle in ca.crt of the tenant's TLS Secret, and read it again when it changes.
#[derive(Args, Debug)]
#[command(after_help = "Examples:\n  \
    hanzo-s3-operator rotate-ca\n  \
    hanzo-s3-operator rotate-ca --namespace hanzo-s3-operator --kubeconfig ~/.kube/config")]
pub struct RotateCaArgs {
    /// Kubeconfig to use instead of the in-cluster service account (or $KUBECONFIG).
    #[arg(long, value_name = "FILE")]
    pub kubeconfig: Option<PathBuf>,
    /// The operator's namespace, which holds the CA Secret.
    #[arg(long, env = "POD_NAMESPACE", default_value = "hanzo-s3-operator")]
    pub namespace: String,
}

#[derive(Debug, thiserror::Error)]
enum RotateError {
    #[error(transparent)]
    Client(#[from] RunError),
    #[error("Secret {namespace}/{CA_SECRET}: {source}")]
    Store {
        namespace: String,
        source: store::StoreError,
    },
}

pub fn run(args: &RotateCaArgs) -> u8 {
    let command = async {
        let client = client_of(args.kubeconfig.as_deref()).await?;
        store::announce_now(client, &args.namespace)
            .await
            .map_err(|source| RotateError::Store {
                namespace: args.namespace.clone(),
                source,
            })
    };
    let (stored, announced) = match super::block_on(command, EXIT_UNREADABLE) {
        Ok(done) => done,
        Err(code) => return code,
    };
    let next = stored.trust_mark.as_deref().unwrap_or("?");
    match announced {
        Announced::Now => println!(
            "announced a next operator CA ({next}) in Secret {}/{CA_SECRET}; the operator promotes it after --ca-announce-for, once each TLS tenant's servers restarted trusting it",
            args.namespace
        ),
        Announced::Already(since) => println!(
            "a rotation is already under way: the next CA ({next}) was announced {} s ago",
            SystemTime::now()
                .duration_since(since)
                .map_or(0, |d| d.as_secs())
        ),
    }
    EXIT_OK
}
