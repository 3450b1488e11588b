//! SIGINT/SIGTERM start a drain; a second signal exits at once.
//! SIGHUP reloads the TLS certificate and key (when serving TLS).

use anyhow::{Context, Result};
use shardd::{DrainTrigger, TlsReloader};
use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM};
use signal_hook::iterator::Signals;

/// Watch for SIGINT and SIGTERM on a thread of their own.
pub fn drain_on_signals(trigger: DrainTrigger) -> Result<()> {
    let mut signals = Signals::new([SIGINT, SIGTERM]).context("cannot install signal handlers")?;
    std::thread::Builder::new()
        .name("signals".into())
        .spawn(move || {
            let mut received = 0;
            for signal in signals.forever() {
                received += 1;
                if received == 1 {
                    log::info!("signal {signal}: draining (send it again to exit at once)");
                    trigger.drain();
                } else {
                    log::warn!("signal {signal} again: exiting without waiting for the drain");
                    std::process::exit(1);
                }
            }
        })
        .context("cannot start the signal thread")?;
    Ok(())
}

/// Reload the TLS certificate and key on SIGHUP, on a thread of its own.
/// A bad new file is logged and the certificate in force is kept.
pub fn reload_tls_on_sighup(reloader: TlsReloader) -> Result<()> {
    let mut signals = Signals::new([SIGHUP]).context("cannot install the SIGHUP handler")?;
    std::thread::Builder::new()
        .name("tls-reload".into())
        .spawn(move || {
            for _ in signals.forever() {
                match reloader.reload() {
                    Ok(()) => log::info!("SIGHUP: TLS certificate and key reloaded"),
                    Err(error) => {
                        log::error!("SIGHUP: {error}; keeping the certificate in force")
                    }
                }
            }
        })
        .context("cannot start the TLS reload thread")?;
    Ok(())
}
