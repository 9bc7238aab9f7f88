//! The defaults that an OpenAPI `default:` can express. They are written into the CRD and applied by
//! `admission::defaults` alike (a test checks the two agree), so that a Tenant stored while the
//! mutating webhook was off is the same object, and GitOps diffs stay empty.
//!
//! Not here, because a schema cannot compute them: the server image (from `TENANT_S3_IMAGE` at the
//! operator's start), pool names (`ss-<index>`), the service account (`<tenant>-sa`), the
//! certificate common name (from name and namespace) and the KES image.

use serde_json::{Value, json};

pub const DEFAULT_POD_MANAGEMENT_POLICY: &str = "Parallel";
pub const DEFAULT_IMAGE_PULL_POLICY: &str = "IfNotPresent";
pub const DEFAULT_MOUNT_PATH: &str = "/export";
pub const DEFAULT_REQUEST_AUTO_CERT: bool = true;
pub const DEFAULT_KES_REPLICAS: i32 = 2;
pub const DEFAULT_KES_KEY_NAME: &str = "my-minio-key";

/// A default's JSON value, made on demand (a `Value` cannot be a constant).
pub type DefaultValue = fn() -> Value;

/// `(path from the object root, value)`, in the CRD's `properties` nesting.
pub const SCHEMA_DEFAULTS: &[(&str, DefaultValue)] = &[
    ("spec.podManagementPolicy", || {
        json!(DEFAULT_POD_MANAGEMENT_POLICY)
    }),
    ("spec.imagePullPolicy", || json!(DEFAULT_IMAGE_PULL_POLICY)),
    ("spec.mountPath", || json!(DEFAULT_MOUNT_PATH)),
    ("spec.requestAutoCert", || json!(DEFAULT_REQUEST_AUTO_CERT)),
    ("spec.kes.replicas", || json!(DEFAULT_KES_REPLICAS)),
    ("spec.kes.imagePullPolicy", || {
        json!(DEFAULT_IMAGE_PULL_POLICY)
    }),
    ("spec.kes.keyName", || json!(DEFAULT_KES_KEY_NAME)),
];
