//! The servers under test as processes: start one on a free port and wait
//! until it listens, notice when it dies, stop it with SIGTERM and check
//! that shardd exits cleanly.

use std::fs::File;
use std::net::{Ipv4Addr, SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use crate::support;

/// The release `shardd` binary cargo built for the benches.
pub const SHARDD: &str = env!("CARGO_BIN_EXE_shardd");
/// How long a server may take to listen, and to exit after SIGTERM.
const START_TIMEOUT: Duration = Duration::from_secs(15);
const STOP_TIMEOUT: Duration = Duration::from_secs(15);

/// One server under test.
#[derive(Clone, Debug)]
pub struct Target {
    pub label: String,
    /// Program and arguments; `{port}` is replaced by the port.
    pub argv: Vec<String>,
}

pub struct RunningServer {
    pub target: Target,
    pub port: u16,
    pub child: Child,
    pub log: PathBuf,
    /// Set once the server died or failed to start; its cells are skipped.
    pub dead: Option<String>,
}

impl RunningServer {
    /// If the process has exited, mark it dead and say so.
    pub fn note_if_exited(&mut self) {
        if let Ok(Some(status)) = self.child.try_wait() {
            self.dead = Some(format!("exited during the run ({status})"));
            eprintln!(
                "load: {} {}; log {}",
                self.target.label,
                self.dead.as_deref().unwrap_or_default(),
                self.log.display()
            );
        }
    }
}

/// Start `target` on a free port, its output to `<out>/server-<label>.log`,
/// and wait until it accepts connections.
pub fn start_server(target: &Target, out: &Path) -> Result<RunningServer, String> {
    let port = support::free_port().map_err(|e| format!("no free port: {e}"))?;
    let argv: Vec<String> = target
        .argv
        .iter()
        .map(|a| a.replace("{port}", &port.to_string()))
        .collect();
    let log = out.join(format!("server-{}.log", target.label.replace('/', "_")));
    let log_file = File::create(&log).map_err(|e| format!("{}: {e}", log.display()))?;
    let log_err = log_file.try_clone().map_err(|e| e.to_string())?;
    let mut child = Command::new(&argv[0])
        .args(&argv[1..])
        .stdin(Stdio::null())
        .stdout(log_file)
        .stderr(log_err)
        .spawn()
        .map_err(|e| format!("{}: cannot start {}: {e}", target.label, argv[0]))?;
    wait_until_listening(&mut child, &target.label, port, &log)?;
    eprintln!(
        "load: started {} on port {port} (pid {}): {}",
        target.label,
        child.id(),
        argv.join(" ")
    );
    Ok(RunningServer {
        target: target.clone(),
        port,
        child,
        log,
        dead: None,
    })
}

/// Connect until one succeeds; an error (and the child killed) if it exits
/// first or does not listen within `START_TIMEOUT`.
fn wait_until_listening(
    child: &mut Child,
    label: &str,
    port: u16,
    log: &Path,
) -> Result<(), String> {
    let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
    let until = Instant::now() + START_TIMEOUT;
    loop {
        if let Ok(Some(status)) = child.try_wait() {
            return Err(format!(
                "{label} exited before listening ({status}); log {}:\n{}",
                log.display(),
                std::fs::read_to_string(log).unwrap_or_default()
            ));
        }
        if TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok() {
            return Ok(());
        }
        if Instant::now() > until {
            let _ = child.kill();
            let _ = child.wait();
            return Err(format!("{label} did not listen on {port}"));
        }
        thread::sleep(Duration::from_millis(50));
    }
}

/// SIGTERM, wait for the drain (up to 15 s), then SIGKILL.
pub fn stop_server(server: &mut RunningServer) -> Option<ExitStatus> {
    if let Ok(Some(status)) = server.child.try_wait() {
        return Some(status);
    }
    // SAFETY: plain kill(2) on our own child's pid.
    unsafe { libc::kill(server.child.id() as libc::pid_t, libc::SIGTERM) };
    let until = Instant::now() + STOP_TIMEOUT;
    while Instant::now() < until {
        if let Ok(Some(status)) = server.child.try_wait() {
            return Some(status);
        }
        thread::sleep(Duration::from_millis(20));
    }
    eprintln!(
        "load: {} did not exit 15 s after SIGTERM; killing it",
        server.target.label
    );
    let _ = server.child.kill();
    server.child.wait().ok()
}

/// Stop every server; false (and a message) if a shardd did not exit 0.
pub fn stop_all(servers: &mut [RunningServer]) -> bool {
    let mut all_clean = true;
    for server in servers {
        let status = stop_server(server);
        if server.target.argv[0] == SHARDD && !status.is_some_and(|s| s.success()) {
            eprintln!(
                "load: {} did not exit cleanly on SIGTERM ({status:?}); log {}",
                server.target.label,
                server.log.display()
            );
            all_clean = false;
        }
    }
    all_clean
}
