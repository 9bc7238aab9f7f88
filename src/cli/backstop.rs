//! `backstop`: prints the ValidatingAdmissionPolicy that enforces the CEL-expressible rules in the
//! apiserver itself.

use clap::Args;

use super::{EXIT_OK, EXIT_UNREADABLE};

/// Print the backstop ValidatingAdmissionPolicy and its binding (YAML): the Tenant rules the
/// apiserver enforces itself when the webhooks cannot answer, with the webhook's messages.
#[derive(Args, Debug)]
#[command(
    after_help = "Example:\n  hanzo-s3-operator backstop | kubectl apply --server-side -f -\n\n\
The same objects are in deploy/backstop/ (kustomize) and in the Helm chart (backstop.enabled).\n\
docs/operations.md lists the rules it covers."
)]
pub struct BackstopArgs {}

pub fn run(_: &BackstopArgs) -> u8 {
    match crate::admission::backstop::yaml() {
        Ok(yaml) => {
            print!("{yaml}");
            EXIT_OK
        }
        Err(e) => {
            eprintln!("error: cannot render the policy: {e}");
            EXIT_UNREADABLE
        }
    }
}
