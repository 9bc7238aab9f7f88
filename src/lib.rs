//! hanzo-s3-operator: an admission-first Kubernetes operator for Hanzo S3 tenants.
//!
//! Data flows one way. A review or a file becomes a typed [`api::Tenant`]; [`admission`] defaults
//! and judges it with pure functions; the [`webhook`] and the [`cli`] turn the verdict into a
//! response or a report. The [`reconcile`] controller turns admitted Tenants into workloads.

pub mod admission;
pub mod api;
pub mod certs;
pub mod cli;
pub mod install;
pub mod manifest;
pub mod reconcile;
pub mod s3admin;
pub mod source_map;
pub mod webhook;
