//! Signals, on a thread of their own: SIGINT/SIGTERM start a drain (a
//! second one exits at once), SIGHUP reloads, SIGUSR2 upgrades.

use anyhow::{Context, Result};
use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM, SIGUSR2};
use signal_hook::iterator::Signals;

/// What each signal does.
pub(crate) struct Handlers {
    /// SIGINT, SIGTERM (the first one).
    pub drain: Box<dyn FnMut() + Send>,
    /// SIGHUP.
    pub reload: Box<dyn FnMut() + Send>,
    /// SIGUSR2.
    pub upgrade: Box<dyn FnMut() + Send>,
}

/// Catch the signals from now on; they wait, queued, until
/// [`handle_signals`] acts on them. Called before the server starts, so a
/// signal sent as soon as it says it serves is never the default action
/// (which would kill the process instead of draining it).
pub(crate) fn install() -> Result<Signals> {
    Signals::new([SIGINT, SIGTERM, SIGHUP, SIGUSR2]).context("cannot install signal handlers")
}

/// Act on the signals `install` caught, on a thread of their own.
pub(crate) fn handle_signals(mut signals: Signals, mut handlers: Handlers) -> Result<()> {
    std::thread::Builder::new()
        .name("signals".into())
        .spawn(move || {
            let mut received = 0;
            for signal in signals.forever() {
                match signal {
                    SIGHUP => (handlers.reload)(),
                    SIGUSR2 => (handlers.upgrade)(),
                    _ => {
                        received += 1;
                        if received == 1 {
                            log::info!("signal {signal}: draining (send it again to exit at once)");
                            (handlers.drain)();
                        } else {
                            log::warn!(
                                "signal {signal} again: exiting without waiting for the drain"
                            );
                            std::process::exit(1);
                        }
                    }
                }
            }
        })
        .context("cannot start the signal thread")?;
    Ok(())
}
