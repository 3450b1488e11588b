//! The `shardd` binary: the TechEmpower plaintext/json app on every core,
//! matched by hand or through the router (`--app`).

#![warn(clippy::undocumented_unsafe_blocks)]
#![deny(unsafe_op_in_unsafe_fn)]
#![warn(unreachable_pub)]

mod check;
mod cli;
mod logging;
mod notify;
mod open_files;
mod signals;
mod upgrade;

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering::SeqCst};
use std::sync::{Arc, Mutex};

use anyhow::{Context, Result};
use clap::Parser;
use shardd::apps::techempower::{techempower_router, TechEmpower, TechEmpowerDb};
use shardd::compression::CompressionSettings;
use shardd::database::{DatabaseHealth, DatabaseSettings};
use shardd::files::{StaticFiles, StaticSettings, WithStaticFiles};
use shardd::systemd::{take_listen_fds, ListenFd};
use shardd::{App, ShardInfo};
use shardd::{Config, Server, ServerControl, ServerHandle, TlsReloader};

use crate::cli::{AppChoice, Cli};
use crate::notify::Notifier;
use crate::open_files::raise_open_file_limit;
use crate::signals::{handle_signals, install as install_signal_handlers, Handlers};
use crate::upgrade::Upgrade;

/// What the process found at start-up, before any thread ran.
struct Inherited {
    /// Sockets passed with LISTEN_FDS (systemd, or the shardd we replace).
    sockets: Result<Vec<ListenFd>, shardd::Error>,
    notifier: Notifier,
    /// This binary's path now, so that an upgrade starts whatever is
    /// installed there later.
    exe: std::io::Result<PathBuf>,
}

fn main() -> ExitCode {
    // SAFETY: the first thing main does, while no other thread runs: the
    // environment may change, and descriptors 3.. are free to take.
    let inherited = unsafe {
        Inherited {
            sockets: take_listen_fds(),
            notifier: Notifier::from_env(),
            exe: std::env::current_exe(),
        }
    };
    let cli = Cli::parse();
    if cli.print_config {
        print!("{}", cli::CONFIG_TEMPLATE);
        return ExitCode::SUCCESS;
    }
    if cli.check {
        return match check::check(&cli) {
            Ok(summary) => {
                println!("{summary}");
                ExitCode::SUCCESS
            }
            Err(error) => {
                eprintln!("shardd: {error:#}");
                ExitCode::FAILURE
            }
        };
    }
    match run(cli, inherited) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("shardd: {error:#}");
            ExitCode::FAILURE
        }
    }
}

fn run(cli: Cli, inherited: Inherited) -> Result<()> {
    let config = cli.config()?;
    logging::init(config.log.format);
    match raise_open_file_limit() {
        Ok((old, new)) if new > old => log::info!("open-file limit raised from {old} to {new}"),
        Ok((_, limit)) => log::info!("open-file limit is {limit}"),
        Err(error) => log::warn!("cannot raise the open-file limit: {error}"),
    }
    let sockets = inherited.sockets?;
    let signals = install_signal_handlers()?;
    let server = if sockets.is_empty() {
        Server::bind(config.clone())?
    } else {
        Server::from_listen_fds(config.clone(), sockets)?
    };
    // Opened once here so a bad directory stops the start with its name.
    for mount in &config.static_files {
        StaticFiles::open(mount.clone()).with_context(|| {
            format!(
                "cannot serve {} under {}",
                mount.dir.display(),
                mount.prefix
            )
        })?;
    }
    let (mounts, compression) = (config.static_files.clone(), config.compression.clone());
    for mount in &mounts {
        log::info!(
            "serving files under {} from {}{}",
            mount.prefix,
            mount.dir.display(),
            if mount.dotfiles {
                ", dotfiles included"
            } else {
                ""
            }
        );
    }
    if compression.enabled {
        log::info!(
            "compressing responses of at least {} bytes (zstd, br, gzip)",
            compression.min_size
        );
    }
    let database = config.database.clone();
    let database_health = database
        .is_configured()
        .then(|| DatabaseHealth::new(config.shard_count()));
    let server = match (cli.app, &database_health) {
        (AppChoice::Techempower, Some(health)) => {
            log::info!(
                "database: {}, {} connections per shard",
                database.describe(),
                database.connections_per_shard
            );
            let server = server.with_dependency(health.clone());
            let (database, health) = (database.clone(), health.clone());
            let app = move |shard: &ShardInfo| start_database_app(&database, shard, &health);
            serve_wrapped(server, app, mounts, compression)?
        }
        (AppChoice::Techempower, None) => {
            serve_wrapped(server, |_| TechEmpower, mounts, compression)?
        }
        (AppChoice::Router, _) => {
            serve_wrapped(server, |_| techempower_router(), mounts, compression)?
        }
    };
    let process = Arc::new(Process {
        cli,
        config: Mutex::new(config),
        control: server.control(),
        notifier: inherited.notifier,
        exe: inherited.exe.ok(),
        upgrading: AtomicBool::new(false),
        handed_over: AtomicBool::new(false),
        tls: server.tls_reloader(),
    });
    let (on_drain, on_reload, on_upgrade) = (process.clone(), process.clone(), process.clone());
    let trigger = server.drain_trigger();
    handle_signals(
        signals,
        Handlers {
            drain: Box::new(move || {
                if !on_drain.handed_over.load(SeqCst) {
                    on_drain.notifier.stopping();
                }
                trigger.drain();
            }),
            reload: Box::new(move || on_reload.reload()),
            upgrade: Box::new(move || Process::start_upgrade(&on_upgrade)),
        },
    )?;
    if let Some(health) = &database_health {
        let connected = wait_for_the_database(health, database.connect_timeout());
        if !connected && process.notifier.takes_over() {
            // The shardd this one would replace has its database (or had
            // it when it started): better it keeps serving than this one
            // serves nothing but 503s. What this one accepted meanwhile
            // is answered before it exits.
            log::error!(
                "database: not every shard connected within {:?}; not taking over, \
                 the running shardd keeps serving",
                database.connect_timeout()
            );
            // As after a handover: the Unix socket file and the admin
            // port stay with the running shardd, and the shared listening
            // socket is not shut down.
            server.control().drain_after_upgrade();
            server.wait();
            anyhow::bail!("the upgrade was refused: the database is not reachable");
        }
    }
    process.notifier.ready();
    server.wait();
    Ok(())
}

/// Serve `app` on every shard, behind the static-file mounts and the
/// compression the config asks for. Each wraps the app only when asked
/// for, so a server without them pays nothing for them.
fn serve_wrapped<A: App>(
    server: Server,
    app: impl Fn(&ShardInfo) -> A + Send + Sync + 'static,
    mounts: Vec<StaticSettings>,
    compression: CompressionSettings,
) -> Result<ServerHandle, shardd::Error> {
    match (mounts.is_empty(), compression.enabled) {
        (true, false) => server.serve(app),
        (false, false) => {
            server.serve(move |shard| WithStaticFiles::new(open_mounts(&mounts), app(shard)))
        }
        (true, true) => server.serve(move |shard| app(shard).compressed(compression.clone())),
        (false, true) => server.serve(move |shard| {
            WithStaticFiles::new(open_mounts(&mounts), app(shard)).compressed(compression.clone())
        }),
    }
}

/// Wait until every shard has a database connection, at most `longest`,
/// before saying ready (to systemd, or to the process an upgrade
/// replaces). A database that is down does not stop a start: the server
/// serves, database requests get 503 until it is up (an upgrade is
/// refused instead, see `run`).
/// `true` once every shard is connected, `false` if not within `longest`.
fn wait_for_the_database(health: &DatabaseHealth, longest: std::time::Duration) -> bool {
    let until = std::time::Instant::now() + longest;
    while !health.is_ready() {
        if std::time::Instant::now() >= until {
            log::warn!(
                "database: not every shard connected within {longest:?}; serving, \
                 database requests get 503 until they do"
            );
            return false;
        }
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    log::info!("database: every shard connected");
    true
}

/// The TechEmpower app with its database tests, on `shard`'s own pool.
fn start_database_app(
    settings: &DatabaseSettings,
    shard: &ShardInfo,
    health: &Arc<DatabaseHealth>,
) -> TechEmpowerDb {
    // `Config::validate` checked the settings before any shard started.
    TechEmpowerDb::start(settings, shard, health).expect("database settings validated at start")
}

/// Each shard's static directories (a directory gone since the start is
/// logged and left out, rather than failing the shard).
fn open_mounts(settings: &[StaticSettings]) -> Vec<StaticFiles> {
    settings
        .iter()
        .filter_map(|mount| match StaticFiles::open(mount.clone()) {
            Ok(files) => Some(files),
            Err(error) => {
                log::error!("cannot serve {}: {error}", mount.prefix);
                None
            }
        })
        .collect()
}

/// The running process, as the signal handlers see it.
struct Process {
    cli: Cli,
    /// The configuration in effect (what a reload compares with).
    config: Mutex<Config>,
    control: ServerControl,
    notifier: Notifier,
    exe: Option<PathBuf>,
    upgrading: AtomicBool,
    /// An upgrade succeeded: the new process serves, this one drains.
    handed_over: AtomicBool,
    /// Reloads the certificate and key, when serving TLS.
    tls: Option<TlsReloader>,
}

impl Process {
    /// SIGHUP: read the config file again (with the same flags on top) and
    /// apply what can change live; name what needs an upgrade.
    fn reload(&self) {
        // The certificate first: its files may change without the config's.
        if let Some(tls) = &self.tls {
            match tls.reload() {
                Ok(()) => log::info!("SIGHUP: TLS certificate and key reloaded"),
                Err(error) => {
                    log::error!("SIGHUP: {error}; keeping the certificate in force")
                }
            }
        }
        let new = match self.cli.config() {
            Ok(new) => new,
            Err(error) => {
                log::error!("SIGHUP: configuration not reloaded: {error:#}");
                return;
            }
        };
        let mut config = self.config.lock().unwrap_or_else(|e| e.into_inner());
        let mut applied = Vec::new();
        if new.limits != config.limits {
            match self.control.set_limits(new.limits.clone()) {
                Ok(()) => {
                    config.limits = new.limits.clone();
                    applied.push("limits");
                }
                Err(error) => log::error!("SIGHUP: limits not changed: {error}"),
            }
        }
        if new.upgrade_timeout_ms != config.upgrade_timeout_ms {
            config.upgrade_timeout_ms = new.upgrade_timeout_ms;
            applied.push("upgrade_timeout_ms");
        }
        let pending = config.changes_needing_restart(&new);
        match applied.is_empty() {
            true if self.cli.config.is_none() => {
                log::info!("SIGHUP: no config file (--config): nothing to reload")
            }
            true if pending.is_empty() => {
                log::info!("SIGHUP: configuration reloaded; nothing changed")
            }
            true => log::info!("SIGHUP: configuration reloaded; no change takes effect live"),
            false => log::info!(
                "SIGHUP: configuration reloaded; now in effect: {}",
                applied.join(", ")
            ),
        }
        if !pending.is_empty() {
            log::warn!(
                "SIGHUP: changed settings that need an upgrade (SIGUSR2) or a restart: {}",
                pending.join(", ")
            );
        }
    }

    /// SIGUSR2: upgrade on a thread of its own (signals keep being handled).
    fn start_upgrade(process: &Arc<Process>) {
        if process.handed_over.load(SeqCst) || process.control.is_draining() {
            log::warn!("SIGUSR2: this process is draining; no upgrade");
            return;
        }
        if process.upgrading.swap(true, SeqCst) {
            log::warn!("SIGUSR2: an upgrade is already under way");
            return;
        }
        let process = process.clone();
        let started = std::thread::Builder::new()
            .name("upgrade".into())
            .spawn(move || {
                process.upgrade();
                process.upgrading.store(false, SeqCst);
            });
        if let Err(error) = started {
            log::error!("SIGUSR2: cannot start the upgrade: {error}");
        }
    }

    fn upgrade(&self) {
        let Some(exe) = self.exe.clone() else {
            log::error!("upgrade failed: the path of this binary is unknown; still serving");
            return;
        };
        let upgrade = Upgrade {
            exe,
            args: std::env::args_os().skip(1).collect(),
            timeout: self
                .config
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .upgrade_timeout(),
        };
        match upgrade.run(&self.control, &self.notifier) {
            Ok(pid) => {
                log::info!("upgrade: new process {pid} is ready; draining this one");
                self.handed_over.store(true, SeqCst);
                self.notifier.main_pid(pid);
                self.control.drain_after_upgrade();
            }
            Err(error) => log::error!("upgrade failed: {error:#}; still serving"),
        }
    }
}
