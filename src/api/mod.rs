//! The Tenant API (`minio.min.io/v2`): types, status, names of generated objects, and the CRD.
//! Plain data and pure functions: nothing here does I/O.

pub mod crd;
pub mod defaults_schema;
mod lenient;
pub mod names;
pub mod quantity;
pub mod status;
pub mod tenant;

pub use status::{PoolStatus, TenantStatus};
pub use tenant::{Pool, Tenant, TenantSpec};
