//! Runs tests/python/test_safetensors_client.py: Python's `safetensors` (numpy backend) reads
//! the checkpoint `prospect` writes and finds the values `prospect inspect` reports.
//!
//! When `safetensors` or `numpy` is not importable the test skips with a `SKIPPED` line on
//! stderr, or fails when `PROSPECT_REQUIRE_EXTERNAL=1` (as `.ci/run` sets it): see
//! `prospect::testing`.

use std::path::Path;
use std::process::Command;

#[test]
fn python_safetensors_reads_the_checkpoint() {
    let script =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/python/test_safetensors_client.py");
    assert!(script.is_file(), "{} missing", script.display());
    let importable = Command::new("python3")
        .args(["-c", "import safetensors, numpy"])
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false);
    if !importable {
        prospect::testing::skip_or_fail(
            "python_client::python_safetensors_reads_the_checkpoint",
            "python3 cannot import the `safetensors` and `numpy` modules",
            "python3 -m pip install safetensors numpy",
        );
        return;
    }
    let out = Command::new("python3")
        .arg(&script)
        .env("PROSPECT_BIN", env!("CARGO_BIN_EXE_prospect"))
        .output()
        .expect("run python3");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "python client test failed:\n{stdout}\n{stderr}");
    assert!(stdout.contains("3 passed, 0 failed"), "{stdout}");
}
