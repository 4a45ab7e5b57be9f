//! The one rule for tests that need something from outside the repository (a fetched data
//! set, a Python module): skip visibly, or fail when the environment requires everything.
//!
//! ```no_run
//! # fn load() -> Result<(), String> { Ok(()) }
//! if let Err(e) = load() {
//!     prospect::testing::skip_or_fail(
//!         "real_data::one_pc_epoch_on_mnist",
//!         &format!("MNIST is not fetched ({e})"),
//!         "bash scripts/fetch-data.sh mnist",
//!     );
//!     return;
//! }
//! ```

use std::io::Write;

/// Environment variable that turns every skip into a failure when it is `1` (`.ci/run`
/// exports it). Any other value, or none, means skip.
pub const REQUIRE_EXTERNAL_ENV: &str = "PROSPECT_REQUIRE_EXTERNAL";

/// What a test does when something it needs is missing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Missing {
    /// Print `SKIPPED <test>: <why>` to stderr and return.
    Skip,
    /// Panic with a message naming the test, what is missing and the command that provides it.
    Fail,
}

/// The decision for a value of [`REQUIRE_EXTERNAL_ENV`]: `Fail` exactly when it is `1`.
pub fn decide(require_external: Option<&str>) -> Missing {
    match require_external {
        Some("1") => Missing::Fail,
        _ => Missing::Skip,
    }
}

/// The decision for this process, from [`REQUIRE_EXTERNAL_ENV`].
pub fn decision() -> Missing {
    decide(std::env::var(REQUIRE_EXTERNAL_ENV).ok().as_deref())
}

/// Call when `test` cannot run because `why` (what is missing); `fix` is the command that
/// provides it. With `PROSPECT_REQUIRE_EXTERNAL=1` this panics; otherwise it writes
/// `SKIPPED <test>: <why>` to stderr, past the test runner's output capture, and returns, so
/// the caller returns next.
pub fn skip_or_fail(test: &str, why: &str, fix: &str) {
    // Not `eprintln!`: libtest captures the print macros of a passing test, but not writes
    // through the stderr handle itself.
    skip_or_fail_to(decision(), test, why, fix, &mut std::io::stderr());
}

/// Acts on `missing`, writing the skip line to `out`.
fn skip_or_fail_to(missing: Missing, test: &str, why: &str, fix: &str, out: &mut dyn Write) {
    match missing {
        Missing::Fail => panic!("{}", failure_message(test, why, fix)),
        Missing::Skip => {
            let _ = out.write_all(skip_line(test, why, fix).as_bytes());
            let _ = out.flush();
        }
    }
}

/// The panic message of a required test whose input is missing.
fn failure_message(test: &str, why: &str, fix: &str) -> String {
    format!(
        "{test} cannot run: {why}. {REQUIRE_EXTERNAL_ENV}=1 requires it; provide it with \
         `{fix}` (or unset {REQUIRE_EXTERNAL_ENV} to skip)"
    )
}

/// The stderr line of a skipped test.
fn skip_line(test: &str, why: &str, fix: &str) -> String {
    format!("SKIPPED {test}: {why} (to run it: `{fix}`)\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_value_1_requires_external_inputs() {
        assert_eq!(decide(Some("1")), Missing::Fail);
        for v in [None, Some(""), Some("0"), Some("true"), Some("yes"), Some(" 1")] {
            assert_eq!(decide(v), Missing::Skip, "{v:?}");
        }
    }

    #[test]
    fn the_process_decision_reads_the_variable() {
        // Read-only: compares with the variable as this process sees it, so it races no test.
        let want = decide(std::env::var(REQUIRE_EXTERNAL_ENV).ok().as_deref());
        assert_eq!(decision(), want);
    }

    #[test]
    fn a_required_test_fails_naming_the_test_what_is_missing_and_the_fix() {
        let r = std::panic::catch_unwind(|| {
            let mut out = Vec::new();
            skip_or_fail_to(Missing::Fail, "t::x", "MNIST is not fetched", "fetch it", &mut out)
        });
        let payload = r.expect_err("must panic");
        let msg = payload.downcast_ref::<String>().expect("a formatted message");
        for needle in ["t::x", "MNIST is not fetched", "`fetch it`", REQUIRE_EXTERNAL_ENV] {
            assert!(msg.contains(needle), "{msg} lacks {needle}");
        }
    }

    #[test]
    fn a_skipped_test_returns_after_one_skip_line() {
        let mut out = Vec::new();
        skip_or_fail_to(Missing::Skip, "t::x", "no data", "fetch it", &mut out);
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "SKIPPED t::x: no data (to run it: `fetch it`)\n"
        );
    }
}
