//! `webhook-config`: prints the webhook configurations the operator registers.

use std::path::PathBuf;

use clap::Args;

use super::{EXIT_OK, EXIT_UNREADABLE};
use crate::webhook::config::{self, Target};

/// Print the MutatingWebhookConfiguration and ValidatingWebhookConfiguration (YAML).
///
/// sideEffects None, admissionReviewVersions [v1], matchPolicy Equivalent, timeoutSeconds 5,
/// failurePolicy Fail for validation, Tenants only (CREATE and UPDATE), and a namespaceSelector that
/// exempts the operator's namespace and kube-system.
#[derive(Args, Debug)]
#[command(after_help = "Examples:\n  \
    hanzo-s3-operator webhook-config --namespace hanzo-s3-operator --service hanzo-s3-operator-webhook\n  \
    hanzo-s3-operator webhook-config --url https://127.0.0.1:8443 --ca-bundle-file /tmp/webhook-ca.pem")]
pub struct WebhookConfigArgs {
    /// The operator's namespace (the Service's, and exempt from the webhooks).
    #[arg(long, default_value = "hanzo-s3-operator")]
    pub namespace: String,
    /// The webhook Service's name (port 443).
    #[arg(long, default_value = "hanzo-s3-operator-webhook")]
    pub service: String,
    /// Reach the webhooks at this URL instead of the Service.
    #[arg(long, value_name = "URL")]
    pub url: Option<String>,
    /// PEM file with the CA bundle to trust (omit when cert-manager injects it).
    #[arg(long, value_name = "FILE")]
    pub ca_bundle_file: Option<PathBuf>,
    #[arg(long, default_value = "Fail", value_parser = ["Fail", "Ignore"])]
    pub mutation_failure_policy: String,
}

pub fn run(args: &WebhookConfigArgs) -> u8 {
    let bundle = match &args.ca_bundle_file {
        Some(path) => match std::fs::read_to_string(path) {
            Ok(pem) => Some(pem),
            Err(e) => {
                eprintln!("error: cannot read {}: {e}", path.display());
                return EXIT_UNREADABLE;
            }
        },
        None => None,
    };
    let options = config::Options {
        target: match &args.url {
            Some(url) => Target::Url(url.clone()),
            None => Target::Service {
                namespace: args.namespace.clone(),
                name: args.service.clone(),
            },
        },
        ca_bundle_pem: bundle,
        operator_namespace: args.namespace.clone(),
        mutation_failure_policy: args.mutation_failure_policy.clone(),
    };
    match config::yaml(&options) {
        Ok(yaml) => {
            print!("{yaml}");
            EXIT_OK
        }
        Err(e) => {
            eprintln!("error: {e}");
            EXIT_UNREADABLE
        }
    }
}
