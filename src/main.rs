//! The `shardd` binary: the TechEmpower plaintext/json app on every core.

mod cli;
mod logging;
mod open_files;
mod signals;

use std::process::ExitCode;

use anyhow::Result;
use clap::Parser;
use shardd::{Server, TechEmpower};

use crate::cli::Cli;
use crate::open_files::raise_open_file_limit;
use crate::signals::drain_on_signals;

fn main() -> ExitCode {
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
    logging::init(config.log.format);
    match raise_open_file_limit() {
        Ok((old, new)) if new > old => log::info!("open-file limit raised from {old} to {new}"),
        Ok((_, limit)) => log::info!("open-file limit is {limit}"),
        Err(error) => log::warn!("cannot raise the open-file limit: {error}"),
    }
    let server = Server::bind(config)?.serve(|_shard| TechEmpower)?;
    drain_on_signals(server.drain_trigger())?;
    server.wait();
    Ok(())
}
