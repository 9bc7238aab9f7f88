//! The fault tier: real `hanzo-s3-operator run` processes on a control plane of each test's own,
//! which the tests break (the apiserver and etcd restarted, the leader killed, a replica killed
//! under 1,000 creates, the CA Secret and the webhook configurations deleted, the operator cut off
//! from the apiserver). Needs Go, not root. `cargo test --test faults`.
//!
//! A binary of its own, not a module of the control-plane tier: the operators here renew their
//! Lease every few hundred milliseconds and time their recovery, and beside that tier's control
//! planes they were starved of the machine's 2 cores.

mod faults;
