//! `crd`: prints the Tenant CustomResourceDefinition.

use clap::Args;

use super::{EXIT_OK, EXIT_UNREADABLE};

/// Print the tenants.minio.min.io CustomResourceDefinition (YAML) generated from the Rust types.
#[derive(Args, Debug)]
#[command(after_help = "Example:\n  hanzo-s3-operator crd | kubectl apply --server-side -f -")]
pub struct CrdArgs {}

pub fn run(_: &CrdArgs) -> u8 {
    match crate::api::crd::crd_yaml() {
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
