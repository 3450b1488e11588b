//! Helpers shared by the bench executables: the open-file limit, a free
//! loopback port, and the `target/` directory they were built into.
//!
//! A bench in `benches/` includes it with `mod support;`, one in its own
//! folder (`benches/load/`) with `#[path = "../support/mod.rs"] mod support;`.

#![allow(dead_code)] // each bench uses a different subset

use std::io;
use std::net::{Ipv4Addr, TcpListener};
use std::path::PathBuf;

/// Raise the soft open-file limit to the hard limit, so thousands of
/// connections fit. Best effort: on failure the limit stays as it was.
pub fn raise_open_file_limit() {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit/setrlimit read and write the struct we own.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) == 0 && limit.rlim_cur < limit.rlim_max
        {
            limit.rlim_cur = limit.rlim_max;
            libc::setrlimit(libc::RLIMIT_NOFILE, &limit);
        }
    }
}

/// A port on 127.0.0.1 that nobody listens on right now (the kernel's pick).
pub fn free_port() -> io::Result<u16> {
    Ok(TcpListener::bind((Ipv4Addr::LOCALHOST, 0))?
        .local_addr()?
        .port())
}

/// `target/`, found from the running bench executable
/// (`target/<profile>/deps/<bench>-…`); `target` if that fails.
pub fn target_dir() -> PathBuf {
    std::env::current_exe()
        .ok()
        .and_then(|exe| Some(exe.parent()?.parent()?.parent()?.to_path_buf()))
        .unwrap_or_else(|| PathBuf::from("target"))
}
