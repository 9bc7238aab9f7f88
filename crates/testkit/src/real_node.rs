//! Turns at the machine's one real node between the tests of one binary (the real-node tier).
//!
//! The harness allows one real node per machine and does not wait for it: a second one fails at
//! once ("another real node runs on this machine"). Tests that start a node of their own and stop
//! it before they end (`dev --real-node` in a child process) take a [`turn`]; a set-up that keeps
//! its node until the process exits (a `static` fixture) calls [`keep`] first, which waits until
//! no test has or waits for a turn. Tests start in the order of their names, so the tests that
//! take turns get the node before a later module keeps it.

use std::sync::{Condvar, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

struct State {
    /// A test or the kept set-up has the node.
    held: bool,
    /// The set-up has it until the process exits.
    kept: bool,
    /// Tests waiting for a turn.
    waiting: usize,
}

static STATE: Mutex<State> = Mutex::new(State {
    held: false,
    kept: false,
    waiting: 0,
});
static CHANGED: Condvar = Condvar::new();

fn state() -> MutexGuard<'static, State> {
    STATE.lock().unwrap_or_else(PoisonError::into_inner)
}

fn wait(guard: MutexGuard<'static, State>) -> MutexGuard<'static, State> {
    CHANGED.wait(guard).unwrap_or_else(PoisonError::into_inner)
}

/// The machine's real node is the holder's until this is dropped.
pub struct Turn(());

impl Drop for Turn {
    fn drop(&mut self) {
        state().held = false;
        CHANGED.notify_all();
    }
}

/// Waits for the machine's real node (a test of this binary may have it), for a test that starts
/// one of its own and stops it before it ends. Fails, rather than wait forever, once a set-up of
/// this binary keeps the node until the process exits.
pub fn turn() -> Turn {
    let mut s = state();
    s.waiting += 1;
    while s.held && !s.kept {
        s = wait(s);
    }
    s.waiting -= 1;
    let kept = s.kept;
    if !kept {
        s.held = true;
    }
    drop(s);
    CHANGED.notify_all();
    assert!(
        !kept,
        "the real node of this binary's shared set-up holds the machine until the process exits: \
         run this test alone (cargo test --test real_node <its name>)"
    );
    Turn(())
}

/// Takes the machine's real node for good, for a set-up that keeps its node until the process
/// exits: waits until no test has or waits for a turn, and stays so for a second (a test started
/// a moment ago gets in first).
pub fn keep() {
    let mut s = state();
    loop {
        while s.held || s.waiting > 0 {
            s = wait(s);
        }
        drop(s);
        std::thread::sleep(Duration::from_secs(1));
        s = state();
        if !s.held && s.waiting == 0 {
            break;
        }
    }
    s.held = true;
    s.kept = true;
}
