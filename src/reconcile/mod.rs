//! The slim reconciler: admitted Tenants become Services, Secrets, a ServiceAccount and one
//! StatefulSet per pool. `desired` is pure (Tenant in, objects out); `controller` applies them by
//! server-side apply and reports status, conditions and events.

pub mod controller;
pub mod desired;
pub mod leader;

pub use controller::{run, run_in};
