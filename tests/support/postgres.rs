//! A real, throw-away Postgres cluster for one test: `initdb` in a temporary
//! directory, a free loopback port, the TechEmpower schema and data
//! (`config/techempower-postgres.sql`) loaded, stopped and removed on drop.
//!
//! It runs Debian's `postgresql` (the server binaries in
//! `/usr/lib/postgresql/<version>/bin`, which are not on `PATH`;
//! `$POSTGRES_BINDIR` picks another directory). Postgres refuses to run as
//! root, so a test running as root (CI) runs the server and `psql` as the
//! `postgres` user the package creates, in a directory it owns. Without
//! Postgres the test fails naming the package; it never skips.

use std::io::{Read, Write};
use std::net::{Ipv4Addr, TcpListener};
use std::os::unix::fs::chown;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use super::process::wait_timeout;

/// The role, password and database every TechEmpower entry uses.
pub const USER: &str = "benchmarkdbuser";
pub const PASSWORD: &str = "benchmarkdbpass";
pub const DATABASE: &str = "hello_world";

/// The longest any `pg_ctl` or `psql` run may take before the test fails.
const COMMAND_TIMEOUT: Duration = Duration::from_secs(60);

/// A Postgres cluster of this test; stopped (immediately) and deleted on drop.
pub struct TempPostgres {
    bin_dir: PathBuf,
    /// Holds `data/` (the cluster), the Unix socket and `postgres.log`.
    dir: PathBuf,
    port: u16,
    /// The `postgres` user's uid and gid when this test runs as root.
    run_as: Option<(u32, u32)>,
}

impl TempPostgres {
    /// Initializes and starts a cluster on a free 127.0.0.1 port, with role
    /// `benchmarkdbuser` (password `benchmarkdbpass`) owning database
    /// `hello_world`, which holds the TechEmpower tables. Panics with what
    /// went wrong (and the server's log) if it cannot.
    pub fn start() -> TempPostgres {
        let bin_dir = server_bin_dir();
        let run_as = if running_as_root() {
            Some(postgres_user())
        } else {
            None
        };
        let dir = unique_temp_dir();
        std::fs::create_dir(&dir).unwrap_or_else(|e| panic!("create {}: {e}", dir.display()));
        if let Some((uid, gid)) = run_as {
            chown(&dir, Some(uid), Some(gid)).expect("chown the cluster directory to postgres");
        }
        let mut postgres = TempPostgres {
            bin_dir,
            dir,
            port: 0,
            run_as,
        };
        postgres.init_cluster();
        postgres.start_on_free_port();
        postgres.create_benchmark_database();
        postgres
    }

    /// `postgres://benchmarkdbuser:benchmarkdbpass@127.0.0.1:PORT/hello_world`:
    /// password authentication over TCP, as a server under test connects.
    pub fn url(&self) -> String {
        format!(
            "postgres://{USER}:{PASSWORD}@127.0.0.1:{}/{DATABASE}",
            self.port
        )
    }

    /// The TCP port the server listens on (on 127.0.0.1).
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Stops the server (`pg_ctl stop -m fast`: open connections are closed)
    /// and returns once it is down; the data stays for [`start_again`](Self::start_again).
    pub fn stop(&self) {
        self.pg_ctl(&["stop", "-m", "fast"]);
    }

    /// Starts the stopped server again, same data, same port.
    pub fn start_again(&self) {
        self.pg_ctl(&["start"]);
    }

    /// Runs `query` (one or more statements) as the superuser in
    /// `hello_world` over the Unix socket and returns the rows unaligned,
    /// `|`-separated, one per line (`psql -At`). Panics if it fails.
    pub fn sql(&self, query: &str) -> String {
        self.try_sql(query)
            .unwrap_or_else(|error| panic!("SQL failed: {query}\n{error}"))
    }

    /// [`sql`](Self::sql), with the failure (psql's error message) returned
    /// instead of panicking, for statements that are expected to fail.
    pub fn try_sql(&self, query: &str) -> Result<String, String> {
        let mut psql = self.superuser_psql();
        let output = run_with_input(&mut psql, query, COMMAND_TIMEOUT);
        if output.status.success() {
            let rows = String::from_utf8_lossy(&output.stdout);
            Ok(rows.trim_end_matches('\n').to_owned())
        } else {
            Err(String::from_utf8_lossy(&output.stderr).into_owned())
        }
    }

    /// Holds `LOCK TABLE world IN ACCESS EXCLUSIVE MODE` in an open
    /// transaction until the returned guard drops, so every query of
    /// `world` waits: a slow database, for overload tests. Returns once
    /// Postgres shows the lock granted.
    pub fn lock_world(&self) -> WorldLock<'_> {
        let mut holder = self
            .superuser_psql()
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("start psql to lock world: {e}"));
        // stdin stays open: psql waits for more input and the transaction stays open.
        let mut input = holder.stdin.take().unwrap();
        input
            .write_all(b"BEGIN;\nLOCK TABLE world IN ACCESS EXCLUSIVE MODE;\n")
            .expect("send LOCK TABLE to psql");
        let lock = WorldLock {
            postgres: self,
            holder,
            _input: input,
        };
        let until = Instant::now() + Duration::from_secs(10);
        while !lock.granted() {
            assert!(
                Instant::now() < until,
                "the lock on world was not granted within 10 s"
            );
            std::thread::sleep(Duration::from_millis(10));
        }
        lock
    }

    /// The CPU time (user + system) the server has used so far: the
    /// postmaster, every live process under it (backends, background
    /// workers), and the backends that have exited (counted in the
    /// postmaster's reaped-children time). Read from `/proc`.
    pub fn cpu_time(&self) -> Duration {
        let postmaster = self.postmaster_pid().expect("the server is not running");
        let stat = ProcStat::read(postmaster).expect("read the postmaster's /proc stat");
        let mut ticks = stat.own_ticks + stat.reaped_children_ticks;
        for entry in std::fs::read_dir("/proc").unwrap().flatten() {
            let Some(pid) = entry.file_name().to_str().and_then(|n| n.parse().ok()) else {
                continue;
            };
            // A process that exited meanwhile is in the reaped time already (or soon).
            if let Some(child) = ProcStat::read(pid).filter(|s| s.parent == postmaster) {
                ticks += child.own_ticks;
            }
        }
        // SAFETY: sysconf only reads a configuration value.
        let ticks_per_second = unsafe { libc::sysconf(libc::_SC_CLK_TCK) } as u64;
        Duration::from_micros(ticks * 1_000_000 / ticks_per_second)
    }

    /// The postmaster's pid while the server runs (first line of `postmaster.pid`).
    pub fn postmaster_pid(&self) -> Option<u32> {
        let text = std::fs::read_to_string(self.data_dir().join("postmaster.pid")).ok()?;
        text.lines().next()?.trim().parse().ok()
    }

    /// The directory holding the cluster, its socket and its log.
    pub fn directory(&self) -> &Path {
        &self.dir
    }

    /// The server's log so far, for failure messages.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.log_path()).unwrap_or_default()
    }

    fn data_dir(&self) -> PathBuf {
        self.dir.join("data")
    }

    fn log_path(&self) -> PathBuf {
        self.dir.join("postgres.log")
    }

    fn init_cluster(&self) {
        let mut initdb = self.server_command("initdb");
        initdb
            .arg("--pgdata")
            .arg(self.data_dir())
            .args(["--username=postgres", "--encoding=UTF8", "--no-locale"])
            .args(["--auth-local=trust", "--auth-host=scram-sha-256"])
            // A throw-away cluster: nothing needs to reach the disk.
            .arg("--no-sync");
        let output = run_with_input(&mut initdb, "", COMMAND_TIMEOUT);
        assert!(
            output.status.success(),
            "initdb failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
    }

    /// Picks a free port and starts there; another port if something took
    /// it between the pick and the server's bind.
    fn start_on_free_port(&mut self) {
        for _attempt in 0..5 {
            self.port = free_port();
            self.write_settings();
            let output = self.try_pg_ctl(&["start"]);
            if output.status.success() {
                return;
            }
            if !self.log().contains("could not bind") {
                panic!(
                    "pg_ctl start failed: {}\n{}\nserver log:\n{}",
                    String::from_utf8_lossy(&output.stdout),
                    String::from_utf8_lossy(&output.stderr),
                    self.log()
                );
            }
        }
        panic!(
            "no free port for Postgres after 5 tries; log:\n{}",
            self.log()
        );
    }

    /// `postgresql.auto.conf` (rewritten on each start attempt): loopback
    /// only, the socket in our directory, and no durability (a test cluster).
    fn write_settings(&self) {
        let settings = format!(
            "listen_addresses = '127.0.0.1'\n\
             port = {port}\n\
             unix_socket_directories = '{socket_dir}'\n\
             fsync = off\n\
             synchronous_commit = off\n\
             full_page_writes = off\n\
             max_connections = 200\n\
             shared_buffers = 32MB\n",
            port = self.port,
            socket_dir = self.dir.display(),
        );
        let path = self.data_dir().join("postgresql.auto.conf");
        std::fs::write(&path, settings).unwrap_or_else(|e| panic!("write {}: {e}", path.display()));
    }

    fn create_benchmark_database(&self) {
        self.sql_in(
            "postgres",
            "postgres",
            &format!(
                "CREATE ROLE {USER} LOGIN PASSWORD '{PASSWORD}';\n\
                 CREATE DATABASE {DATABASE} OWNER {USER};\n"
            ),
        );
        let schema_path =
            Path::new(env!("CARGO_MANIFEST_DIR")).join("config/techempower-postgres.sql");
        let schema = std::fs::read_to_string(&schema_path)
            .unwrap_or_else(|e| panic!("read {}: {e}", schema_path.display()));
        // Loaded as the benchmark's user, so it owns the tables. Piped in,
        // as the postgres user may not be allowed to read the checkout.
        self.sql_in(USER, DATABASE, &schema);
    }

    /// Runs `script` as `user` in `database` over the Unix socket; panics if it fails.
    fn sql_in(&self, user: &str, database: &str, script: &str) {
        let mut psql = self.psql_as(user, database);
        let output = run_with_input(&mut psql, script, COMMAND_TIMEOUT);
        assert!(
            output.status.success(),
            "psql as {user} in {database} failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
    }

    fn superuser_psql(&self) -> Command {
        self.psql_as("postgres", DATABASE)
    }

    /// `psql` over the Unix socket: no password (local is `trust`), input from stdin.
    fn psql_as(&self, user: &str, database: &str) -> Command {
        let mut psql = self.server_command("psql");
        psql.arg("--host")
            .arg(&self.dir)
            .args(["--port", &self.port.to_string()])
            .args(["--username", user, "--dbname", database])
            // No ~/.psqlrc, unaligned rows without headers or command tags, stop at the first error.
            .args(["--no-psqlrc", "--no-align", "--tuples-only", "--quiet"])
            .args(["--set", "ON_ERROR_STOP=1", "--file", "-"]);
        psql
    }

    fn pg_ctl(&self, args: &[&str]) {
        let output = self.try_pg_ctl(args);
        assert!(
            output.status.success(),
            "pg_ctl {args:?} failed: {}\nserver log:\n{}",
            String::from_utf8_lossy(&output.stderr),
            self.log()
        );
    }

    /// `pg_ctl ARGS` on our cluster, waiting (`-w`) for it to finish.
    fn try_pg_ctl(&self, args: &[&str]) -> Output {
        let mut pg_ctl = self.server_command("pg_ctl");
        pg_ctl
            .args(args)
            .arg("--pgdata")
            .arg(self.data_dir())
            .arg("--log")
            .arg(self.log_path())
            .args(["--wait", "--timeout=30"]);
        run_with_input(&mut pg_ctl, "", COMMAND_TIMEOUT)
    }

    /// A program of the Postgres installation, run as `postgres` when we are root.
    fn server_command(&self, program: &str) -> Command {
        let path = self.bin_dir.join(program);
        let mut command = Command::new(&path);
        // The postgres user may not be allowed into our working directory.
        command
            .current_dir(&self.dir)
            .env("PGCONNECT_TIMEOUT", "10");
        if let Some((uid, gid)) = self.run_as {
            command.uid(uid).gid(gid).env("HOME", &self.dir);
        }
        command
    }
}

impl Drop for TempPostgres {
    fn drop(&mut self) {
        let postmaster = self.postmaster_pid();
        if postmaster.is_some() {
            let _ = self.try_pg_ctl(&["stop", "-m", "immediate"]);
        }
        if let Some(pid) = postmaster {
            // pg_ctl returns once postmaster.pid is gone, a moment before the process is.
            let until = Instant::now() + Duration::from_secs(5);
            while process_alive(pid) && Instant::now() < until {
                std::thread::sleep(Duration::from_millis(5));
            }
            // If pg_ctl could not stop it, do not leave it running.
            if process_alive(pid) {
                // SAFETY: kill(2) has no memory-safety preconditions; the pid is
                // the postmaster this cluster started.
                unsafe { libc::kill(pid as libc::pid_t, libc::SIGKILL) };
            }
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// A transaction holding an exclusive lock on `world`; rolled back (its
/// `psql` killed) on drop, which returns once the lock is gone.
pub struct WorldLock<'a> {
    postgres: &'a TempPostgres,
    holder: Child,
    /// Kept open: psql ends (and the lock with it) when its input closes.
    _input: std::process::ChildStdin,
}

impl WorldLock<'_> {
    /// Whether Postgres shows the exclusive lock on `world` granted.
    fn granted(&self) -> bool {
        self.postgres
            .try_sql(
                "SELECT count(*) FROM pg_locks JOIN pg_class ON pg_class.oid = pg_locks.relation \
                 WHERE pg_class.relname = 'world' AND pg_locks.mode = 'AccessExclusiveLock' \
                 AND pg_locks.granted",
            )
            .is_ok_and(|count| count == "1")
    }
}

impl Drop for WorldLock<'_> {
    fn drop(&mut self) {
        let _ = self.holder.kill();
        let _ = self.holder.wait();
        // The backend rolls back when it sees its client gone; wait for it
        // (unless the server is down, which released it too).
        let until = Instant::now() + Duration::from_secs(10);
        while self.postgres.postmaster_pid().is_some() && self.granted() && Instant::now() < until {
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}

/// The Postgres server's program directory: `$POSTGRES_BINDIR`, else the
/// newest `/usr/lib/postgresql/<version>/bin` (Debian), else `pg_config --bindir`.
pub fn server_bin_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("POSTGRES_BINDIR") {
        let dir = PathBuf::from(dir);
        assert!(
            dir.join("initdb").is_file(),
            "POSTGRES_BINDIR={} has no initdb: point it at the directory holding \
             initdb, pg_ctl and psql",
            dir.display()
        );
        return dir;
    }
    let newest_debian = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|entry| {
            let version: u32 = entry.file_name().to_str()?.parse().ok()?;
            let bin = entry.path().join("bin");
            bin.join("initdb").is_file().then_some((version, bin))
        })
        .max_by_key(|(version, _)| *version)
        .map(|(_, bin)| bin);
    let from_pg_config = || {
        let output = Command::new("pg_config").arg("--bindir").output().ok()?;
        let dir = PathBuf::from(String::from_utf8(output.stdout).ok()?.trim());
        dir.join("initdb").is_file().then_some(dir)
    };
    newest_debian.or_else(from_pg_config).unwrap_or_else(|| {
        panic!(
            "the Postgres server is not installed (no /usr/lib/postgresql/<version>/bin/initdb), \
             and these tests need it: `apt-get install -y postgresql` (scripts/test does), \
             or set POSTGRES_BINDIR to the directory holding initdb, pg_ctl and psql"
        )
    })
}

fn running_as_root() -> bool {
    // SAFETY: geteuid has no preconditions and cannot fail.
    unsafe { libc::geteuid() == 0 }
}

/// The uid and gid of the `postgres` user Debian's package creates.
fn postgres_user() -> (u32, u32) {
    let passwd = std::fs::read_to_string("/etc/passwd").unwrap_or_default();
    passwd
        .lines()
        .map(|line| line.split(':').collect::<Vec<_>>())
        .find(|fields| fields.first() == Some(&"postgres") && fields.len() > 3)
        .and_then(|fields| Some((fields[2].parse().ok()?, fields[3].parse().ok()?)))
        .unwrap_or_else(|| {
            panic!(
                "running as root, and Postgres refuses root, but there is no `postgres` user \
                 to run it as: `apt-get install -y postgresql` creates it, or run the tests \
                 as another user"
            )
        })
}

/// A new directory name in the temp dir, unique to this process and cluster.
fn unique_temp_dir() -> PathBuf {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    let number = NEXT.fetch_add(1, Ordering::Relaxed);
    std::env::temp_dir().join(format!("shardd-pg-{}-{number}", std::process::id()))
}

/// A loopback port nothing listens on right now.
fn free_port() -> u16 {
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).expect("bind a free port");
    listener.local_addr().unwrap().port()
}

/// Runs `command` with `input` on its stdin and its output captured; kills
/// it and panics if it has not finished within `timeout`.
fn run_with_input(command: &mut Command, input: &str, timeout: Duration) -> Output {
    let program = format!("{command:?}");
    let mut child = command
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("start {program}: {e}"));
    // Written and read on threads, so a large input or output cannot block us.
    let mut stdin = child.stdin.take().unwrap();
    let input = input.to_owned();
    let writer = std::thread::spawn(move || {
        let _ = stdin.write_all(input.as_bytes());
    });
    let readers = [
        read_all(child.stdout.take().unwrap()),
        read_all(child.stderr.take().unwrap()),
    ];
    let Some(status) = wait_timeout(&mut child, timeout) else {
        let _ = child.kill();
        let _ = child.wait();
        panic!("{program} did not finish within {timeout:?}");
    };
    let _ = writer.join();
    let [stdout, stderr] = readers.map(|reader| reader.join().unwrap());
    Output {
        status,
        stdout,
        stderr,
    }
}

fn read_all(mut pipe: impl Read + Send + 'static) -> std::thread::JoinHandle<Vec<u8>> {
    std::thread::spawn(move || {
        let mut bytes = Vec::new();
        let _ = pipe.read_to_end(&mut bytes);
        bytes
    })
}

/// Whether process `pid` exists and has not exited (a zombie has).
pub fn process_alive(pid: u32) -> bool {
    ProcStat::read(pid).is_some_and(|stat| !matches!(stat.state, 'Z' | 'X'))
}

/// What the tests read from `/proc/PID/stat`.
struct ProcStat {
    /// R, S, D, ..., Z (exited, not yet reaped).
    state: char,
    parent: u32,
    /// utime + stime, in clock ticks.
    own_ticks: u64,
    /// cutime + cstime: children that exited and were waited for.
    reaped_children_ticks: u64,
}

impl ProcStat {
    /// `None` if the process does not exist (any more).
    fn read(pid: u32) -> Option<ProcStat> {
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
        // After "pid (comm) ": state is field 3, ppid 4, utime 14, stime 15,
        // cutime 16, cstime 17.
        let fields: Vec<&str> = stat[stat.rfind(')')? + 2..].split(' ').collect();
        let number = |field: usize| fields.get(field - 3)?.parse::<u64>().ok();
        Some(ProcStat {
            state: fields.first()?.chars().next()?,
            parent: number(4)? as u32,
            own_ticks: number(14)? + number(15)?,
            reaped_children_ticks: number(16)? + number(17)?,
        })
    }
}
