//! Where HAProxy is: the tests that run behind it fail, naming how to
//! install it, when it is missing; they never skip.

use std::path::PathBuf;

/// The HAProxy binary: `$HAPROXY`, else `haproxy` on `PATH` or in an sbin
/// directory; panics (the test fails) if there is none.
pub fn haproxy_binary() -> PathBuf {
    if let Some(path) = std::env::var_os("HAPROXY") {
        return path.into();
    }
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(["/usr/sbin", "/usr/local/sbin"].map(PathBuf::from))
        .map(|dir| dir.join("haproxy"))
        .find(|candidate| candidate.is_file())
        .unwrap_or_else(|| {
            panic!(
                "HAProxy is not installed, and these tests need it: \
                 `apt-get install -y haproxy` (scripts/test does), or set HAPROXY=/path/to/haproxy"
            )
        })
}
