//! Headless Chromium for the tests that need a real browser.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};
use std::time::Duration;

use super::process::wait_timeout;

/// Longest Chromium may take, real time (it starts slowly on a busy box).
const BROWSER_TIMEOUT: Duration = Duration::from_secs(90);

fn next_run() -> usize {
    static RUNS: AtomicUsize = AtomicUsize::new(0);
    RUNS.fetch_add(1, SeqCst)
}

/// The Chromium to run: `CHROMIUM`, or `chromium` on the `PATH`; panics
/// with how to install it if there is none (a test never skips).
pub fn chromium_binary() -> PathBuf {
    if let Some(path) = std::env::var_os("CHROMIUM") {
        return PathBuf::from(path);
    }
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .flat_map(|dir| [dir.join("chromium"), dir.join("chromium-browser")])
        .find(|candidate| candidate.is_file())
        .unwrap_or_else(|| {
            panic!(
                "Chromium is not installed, and this test needs a real browser: \
                 `apt-get install -y chromium` (scripts/test does), or set CHROMIUM=/path/to/chromium"
            )
        })
}

/// The DOM of `url` after its scripts ran for `virtual_time_ms` of virtual
/// time (no real waiting), from headless Chromium.
pub fn dump_dom(chromium: &Path, url: &str, virtual_time_ms: u32) -> String {
    let scratch = std::env::temp_dir().join(format!(
        "shardd-browser-{}-{}",
        std::process::id(),
        next_run()
    ));
    fs::create_dir_all(&scratch).unwrap();
    let dom_file = scratch.join("dom.html");
    let log_file = scratch.join("chromium.log");
    let mut child = Command::new(chromium)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--dump-dom",
        ])
        .arg(format!("--virtual-time-budget={virtual_time_ms}"))
        .arg(format!(
            "--user-data-dir={}",
            scratch.join("profile").display()
        ))
        .arg(url)
        .stdin(Stdio::null())
        .stdout(fs::File::create(&dom_file).unwrap())
        .stderr(fs::File::create(&log_file).unwrap())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {}: {e}", chromium.display()));
    let status = wait_timeout(&mut child, BROWSER_TIMEOUT);
    if status.is_none() {
        let _ = child.kill();
        let _ = child.wait();
    }
    let dom = fs::read_to_string(&dom_file).unwrap_or_default();
    let log = fs::read_to_string(&log_file).unwrap_or_default();
    let _ = fs::remove_dir_all(&scratch);
    assert!(
        status.is_some_and(|s| s.success()) && dom.contains("</html>"),
        "chromium failed ({status:?}) on {url}:\n{log}\n{dom}"
    );
    dom
}
