//! `shutdown_signal()`: a future that completes on SIGINT or SIGTERM, for
//! library users (the `shardd` binary has its own handlers, `signals.rs`).
//!
//! One watcher thread per process, started by the first call: nothing is
//! installed before that, so a program's own handlers stay as they are
//! until it asks for ours. Each signal completes every future still
//! waiting; a signal that finds none waiting (the second Ctrl-C, while the
//! server drains) ends the process at once, so a stuck drain can always be
//! interrupted. signal-hook rather than tokio's `signal`: the future then
//! needs no runtime of any kind to be created or polled, and the handlers
//! are in place from the call on (not from the first poll).

use std::future::Future;
use std::io;
use std::sync::Mutex;

use signal_hook::consts::{SIGINT, SIGTERM};
use signal_hook::iterator::Signals;

/// The exit code of a process ended by a second signal: 128 + the signal
/// number (130 for SIGINT, 143 for SIGTERM), what a shell reports for a
/// process that the signal killed.
fn exit_code(signal: i32) -> i32 {
    128 + signal
}

/// `None` until the watcher thread runs; then who waits for the next signal.
static WAITING: Mutex<Option<Vec<flume::Sender<()>>>> = Mutex::new(None);

/// A future that completes on the first SIGINT or SIGTERM that arrives
/// after this call: what [`ServerHandle::wait_for_shutdown`] waits for, and
/// what to pass to [`ServerHandle::serve_until`] with more to wait for.
///
/// It needs no async runtime (any executor can poll it). The handlers are
/// installed by the first call, not before: until then a program's own
/// SIGINT/SIGTERM handlers are untouched (and they are still called
/// afterwards: signal-hook chains to them).
///
/// Once the future has completed (or been dropped), a SIGINT or SIGTERM
/// that finds no `shutdown_signal()` future waiting ends the process at
/// once, with exit code 130 (SIGINT) or 143 (SIGTERM): pressing Ctrl-C a
/// second time interrupts a drain that takes too long. Destructors do not
/// run then (a Unix socket file is left behind).
///
/// The signal is logged (`log`, level info). If the handlers cannot be
/// installed (no thread can be started), that is logged as an error and the
/// future never completes; the signals keep their default action, which
/// ends the process. [`ServerHandle::wait_for_shutdown`] returns that error
/// instead.
///
/// ```no_run
/// use std::time::Duration;
/// use shardd::{app_fn, Config, Response, Server};
///
/// let handle = Server::bind(Config::default())?.serve(|_shard| app_fn(|_req| Response::text("hi\n")))?;
/// // Stop on Ctrl-C, or after an hour, whichever comes first.
/// handle.serve_until(async {
///     let hour = tokio::time::sleep(Duration::from_secs(3600));
///     tokio::select! {
///         () = shardd::shutdown_signal() => {}
///         () = hour => {}
///     }
/// })?;
/// # Ok::<(), shardd::Error>(())
/// ```
///
/// [`ServerHandle::wait_for_shutdown`]: crate::ServerHandle::wait_for_shutdown
/// [`ServerHandle::serve_until`]: crate::ServerHandle::serve_until
pub fn shutdown_signal() -> impl Future<Output = ()> + Send + 'static {
    let waiting = listen();
    async move {
        match waiting {
            Ok(signal) => signal.await,
            Err(error) => {
                log::error!("{error}: Ctrl-C will not drain the server");
                std::future::pending().await
            }
        }
    }
}

/// [`shutdown_signal`], or why the handlers cannot be installed.
pub(crate) fn listen() -> io::Result<impl Future<Output = ()> + Send + 'static> {
    let (wake, woken) = flume::bounded(1);
    let mut guard = WAITING.lock().unwrap_or_else(|e| e.into_inner());
    if guard.is_none() {
        start_watcher().map_err(|error| {
            io::Error::new(
                error.kind(),
                format!("cannot catch SIGINT and SIGTERM: {error}"),
            )
        })?;
    }
    let waiting = guard.get_or_insert_with(Vec::new);
    // Futures dropped unfinished wait no more.
    waiting.retain(|wake| !wake.is_disconnected());
    waiting.push(wake);
    drop(guard);
    Ok(async move {
        // Disconnected only if the watcher thread died: wait forever then,
        // as with handlers that could not be installed.
        if woken.recv_async().await.is_err() {
            std::future::pending::<()>().await;
        }
    })
}

/// Catch SIGINT and SIGTERM from now on, and act on them on a thread.
fn start_watcher() -> io::Result<()> {
    let mut signals = Signals::new([SIGINT, SIGTERM])?;
    let handle = signals.handle();
    let started = std::thread::Builder::new()
        .name("shutdown-signal".into())
        .spawn(move || {
            for signal in signals.forever() {
                on_signal(signal);
            }
        });
    if let Err(error) = started {
        // Unregister: without a thread to act on them, caught signals would be lost.
        handle.close();
        return Err(error);
    }
    Ok(())
}

/// Complete every future still waiting, or, with none, end the process.
fn on_signal(signal: i32) {
    let name = if signal == SIGINT {
        "SIGINT"
    } else {
        "SIGTERM"
    };
    let waiting = {
        let mut waiting = WAITING.lock().unwrap_or_else(|e| e.into_inner());
        std::mem::take(waiting.get_or_insert_with(Vec::new))
    };
    let mut woken = 0;
    for wake in waiting {
        // Fails only if the future was dropped: nobody waits there any more.
        woken += usize::from(wake.try_send(()).is_ok());
    }
    if woken == 0 {
        let code = exit_code(signal);
        log::warn!("{name} while shutting down: exiting at once (code {code}) without waiting for the drain");
        std::process::exit(code);
    }
    log::info!("{name}: shutting down (send SIGINT or SIGTERM again to exit at once)");
}
