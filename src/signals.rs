//! SIGINT/SIGTERM start a drain; a second signal exits at once.

use anyhow::{Context, Result};
use shardd::DrainTrigger;
use signal_hook::consts::{SIGINT, SIGTERM};
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
