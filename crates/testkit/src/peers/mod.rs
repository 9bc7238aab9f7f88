//! Other admission set-ups the benchmarks measure ours against (the controller-runtime peer is
//! in [`crate::bench`]: it is built from this repository's `peers/`).

pub mod kyverno;
