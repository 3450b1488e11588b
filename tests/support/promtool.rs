//! Prometheus' own `promtool`, which checks `/metrics` in the tests as a
//! scraper would read it.

use std::io::Write;
use std::process::{Command, Stdio};

/// `promtool` (`PROMTOOL=path`, or on the `PATH`); the test fails without it.
pub fn promtool() -> String {
    let candidate = std::env::var("PROMTOOL").unwrap_or_else(|_| "promtool".into());
    let found = Command::new(&candidate)
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|status| status.success());
    assert!(
        found,
        "promtool is not installed: install Debian's prometheus package (scripts/test does) or set PROMTOOL=path"
    );
    candidate
}

/// `promtool check metrics` on `text`: no complaint.
pub fn assert_promtool_accepts(text: &str) {
    let mut check = Command::new(promtool())
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run promtool");
    check
        .stdin
        .take()
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
    let output = check.wait_with_output().unwrap();
    let said = String::from_utf8_lossy(&output.stdout).to_string()
        + &String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success() && said.trim().is_empty(),
        "promtool check metrics: {said}\n{text}"
    );
}
