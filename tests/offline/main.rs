//! The offline tier: the library and the CLI, with no server, no cluster, no Go and no root.
//! `cargo test --test offline` (what each module checks is in its own doc). `ci_formats` fetches
//! third-party format checkers (npm, PyPI, Maven Central) into a cache on first use;
//! `completion` needs zsh and fish (scripts/setup.sh).
//!
//! Each module is a former test binary (`tests/<name>.rs`); none changes process-wide state
//! (environment, working directory, global counters) that another reads.

mod admission_rules;
mod architecture;
mod ci_formats;
mod cli;
mod completion;
mod crd;
mod defaults;
mod go_examples;
mod limits;
mod properties;
mod reconcile_desired;
mod webhook_fixtures;
