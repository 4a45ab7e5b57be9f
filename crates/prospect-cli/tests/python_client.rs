//! Runs tests/python/test_safetensors_client.py: Python's `safetensors` (numpy backend) reads
//! the checkpoint `prospect` writes and finds the values `prospect inspect` reports.
//!
//! Skipped with a note when `safetensors` or `numpy` is not importable, except under CI
//! (`CI` set) or with `PROSPECT_REQUIRE_PYTHON=1`, where that is a failure.

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
        let required = std::env::var_os("CI").is_some_and(|v| !v.is_empty() && v != "false")
            || std::env::var_os("PROSPECT_REQUIRE_PYTHON").is_some_and(|v| v == "1");
        let msg = "python3 with the `safetensors` and `numpy` modules is needed for the \
                   checkpoint client test: python3 -m pip install safetensors numpy";
        assert!(!required, "{msg}");
        eprintln!("note: skipping: {msg}");
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
