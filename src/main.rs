//! The `shardd` binary: the TechEmpower plaintext/json app on every core.

use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Result;
use clap::Parser;
use shardd::cli::Cli;
use shardd::signals::stop_on_signals;
use shardd::socket::raise_open_file_limit;
use shardd::{Server, Shutdown, TechEmpower};

fn main() -> ExitCode {
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("info")).init();
    let cli = Cli::parse();
    match run(&cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("shardd: {error:#}");
            ExitCode::FAILURE
        }
    }
}

fn run(cli: &Cli) -> Result<()> {
    let config = cli.config()?;
    match raise_open_file_limit() {
        Ok((old, new)) if new > old => log::info!("open-file limit raised from {old} to {new}"),
        Ok((_, limit)) => log::info!("open-file limit is {limit}"),
        Err(error) => log::warn!("cannot raise the open-file limit: {error}"),
    }
    let server = Server::bind(config)?;
    let shutdown = Arc::new(Shutdown::new()?);
    stop_on_signals(shutdown.clone())?;
    server.run(|_shard| TechEmpower, shutdown)
}
