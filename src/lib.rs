//! hanzo-s3-operator: an admission-first Kubernetes operator for Hanzo S3 tenants.
//!
//! Data flows one way. A review or a file becomes a typed [`api::Tenant`]; [`admission`] defaults
//! and judges it with pure functions; the webhook and the CLI turn the verdict into a response or a
//! report.

pub mod admission;
pub mod api;
pub mod cli;
pub mod manifest;
