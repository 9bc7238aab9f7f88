//! A test run alone in a process of its own, for a test that reads process-wide state other
//! modules of its tier binary change (e.g. `hanzo_s3_operator::reconcile::passes()`, which counts
//! the passes of every reconciler in the process).

use std::process::Command;

/// Set, in the process started for it, to the path of the test that runs there alone.
const ALONE: &str = "HANZO_TESTKIT_ALONE";

/// Whether the calling test runs its body here. In the process started for it: true. Anywhere
/// else: starts this test binary again with only this test selected (`module` is the caller's
/// `module_path!()`, `test` its function's name), prints what it printed, asserts that it ran and
/// passed, and returns false (the caller returns at once).
pub fn alone(module: &str, test: &str) -> bool {
    // module_path!() starts with the test binary's crate name, which test paths leave out.
    let module = module.split_once("::").map_or("", |(_, rest)| rest);
    let path = if module.is_empty() {
        test.to_owned()
    } else {
        format!("{module}::{test}")
    };
    if std::env::var(ALONE).is_ok_and(|p| p == path) {
        return true;
    }
    let exe = std::env::current_exe().expect("the test binary's path");
    let out = Command::new(&exe)
        .args([path.as_str(), "--exact", "--nocapture", "--test-threads=1"])
        .env(ALONE, &path)
        .output()
        .unwrap_or_else(|e| panic!("cannot start {} again: {e}", exe.display()));
    let stdout = String::from_utf8_lossy(&out.stdout);
    print!("{stdout}");
    eprint!("{}", String::from_utf8_lossy(&out.stderr));
    assert!(
        out.status.success(),
        "{path}, run alone in a process of its own, failed ({}): its output is above",
        out.status
    );
    assert!(
        stdout.contains("test result: ok. 1 passed"),
        "{path} did not run in the process started for it (its output is above)"
    );
    false
}
