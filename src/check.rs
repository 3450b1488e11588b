//! `shardd --check`: validate the settings without serving, like `nginx -t`.
//!
//! The config file is read and parsed, the flags applied and every value
//! validated; then each address is bound (and let go again), so a port in
//! use shows now rather than at start. The result is one line: a summary,
//! or the problem. With `[tls]`, the certificate and key are loaded too.

use std::net::TcpListener;

use anyhow::{Context, Result};
use shardd::apps::techempower::TechEmpowerDb;
use shardd::Server;

use crate::cli::Cli;

/// Check the settings `cli` gives; the one-line summary, or what is wrong.
pub(crate) fn check(cli: &Cli) -> Result<String> {
    let config = cli.config()?;
    let shards = config.shard_count();
    let listener = format!("{:?}", config.listener).to_lowercase();
    let admin = config.admin;
    // Each static directory opens as a shard would open it, so a missing
    // one fails the check rather than the start.
    for mount in &config.static_files {
        shardd::files::StaticFiles::open(mount.clone()).with_context(|| {
            format!(
                "cannot serve {} under {}",
                mount.dir.display(),
                mount.prefix
            )
        })?;
    }
    // The database is asked too, with the statements the TechEmpower app
    // prepares: a wrong password or host, or a missing table, fails the
    // check, where the server would start and answer 503s.
    let database = if config.database.is_configured() {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        runtime
            .block_on(shardd::database::probe(
                &config.database,
                TechEmpowerDb::STATEMENTS,
            ))
            .map_err(|error| {
                anyhow::anyhow!(
                    "cannot connect to the database {}: {error}",
                    config.database.describe()
                )
            })?;
        format!(", database {} (connected)", config.database.describe())
    } else {
        String::new()
    };
    // The mounts, and which of them serve dotfiles (.env, .git/): worth
    // seeing before a start.
    let mounts: String = config
        .static_files
        .iter()
        .map(|mount| {
            let dotfiles = if mount.dotfiles { " with dotfiles" } else { "" };
            format!(
                ", files under {} from {}{dotfiles}",
                mount.prefix,
                mount.dir.display()
            )
        })
        .collect();
    let protocols = match config.http2.enabled {
        true => "HTTP/1.1 and HTTP/2",
        false => "HTTP/1.1 only",
    };
    // Bind the main address(es) and keep them while the admin address is
    // tried, so the two cannot be the same.
    let server = Server::bind(config)?;
    let addr = server
        .local_addr()
        .map_or_else(|| "-".into(), |addr| addr.to_string());
    let admin = match admin {
        Some(admin_addr) => {
            let bound = TcpListener::bind(admin_addr)
                .with_context(|| format!("cannot bind the admin address {admin_addr}"))?;
            format!(", admin on {}", bound.local_addr()?)
        }
        None => String::new(),
    };
    drop(server);
    let source = match &cli.config {
        Some(path) => format!("config {}", path.display()),
        None => "no config file".into(),
    };
    let shards = match shards {
        1 => "1 shard".to_owned(),
        n => format!("{n} shards"),
    };
    Ok(format!(
        "shardd: settings ok ({source}): {shards}, listener {listener} on {addr}{admin}, {protocols}{mounts}{database}"
    ))
}
