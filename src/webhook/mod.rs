//! The admission webhook server: AdmissionReview v1 over HTTPS (axum + rustls).
//!
//! `review` answers one review (the contract) with a `decision` (what was concluded, and the one
//! place it is rendered), `server` carries reviews (TLS, HTTP, limits, metrics), `tls` holds the
//! swappable serving certificate, `conn` the read deadlines of a connection, `cluster` the API
//! reads the validating webhook needs, `config` the webhook configurations registered with the
//! apiserver.

pub mod cluster;
pub mod config;
pub mod conn;
pub mod decision;
pub mod review;
pub mod server;
pub mod tls;
