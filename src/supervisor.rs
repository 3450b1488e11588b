//! Spawning shard threads, pinning them, and replacing any that die.
//!
//! A shard's thread can die only from a bug outside a handler (handler
//! panics become 500s). When one dies its `alive` flag drops, so the
//! acceptor stops routing to it at once, and the supervisor starts a
//! replacement on the same core with the same channel and stats: whatever
//! was queued for the dead shard is served by its replacement.

use std::io;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use core_affinity::CoreId;
use shardd_shards::runtime::{ShardCommand, ShardConfig, ShardSetup, ShardStats};
use shardd_shards::ShardInfo;

use crate::sched_policy;

/// Runs one shard to completion on the calling thread (type-erased so the
/// supervisor can restart it without knowing the listener or app types).
pub(crate) type ShardRunner = Arc<dyn Fn(ShardSetup) -> io::Result<()> + Send + Sync>;

/// A shard that dies sooner than this after starting is restarted after a pause.
const QUICK_DEATH: Duration = Duration::from_secs(1);
const RESTART_PAUSE: Duration = Duration::from_millis(100);

enum Event {
    Died { index: usize, lived: Duration },
    Stop,
}

/// Everything needed to start shard `index` (again, after its thread died).
struct ShardRecipe {
    core: Option<CoreId>,
    stats: Arc<ShardStats>,
    commands: flume::Receiver<ShardCommand>,
}

struct Shared {
    recipes: Vec<ShardRecipe>,
    /// Shard threads run as `SCHED_BATCH` (`Config::batch_scheduling`).
    batch_scheduling: bool,
    /// Changed by a configuration reload (`ServerHandle::set_limits`).
    config: Arc<Mutex<ShardConfig>>,
    main: ShardRunner,
    events: flume::Sender<Event>,
    threads: Mutex<Vec<Option<JoinHandle<()>>>>,
}

pub(crate) struct Supervisor {
    shared: Arc<Shared>,
    controls: Vec<flume::Sender<ShardCommand>>,
    thread: JoinHandle<()>,
}

impl Supervisor {
    /// Start one thread per entry of `cores` (None = not pinned).
    pub(crate) fn start(
        cores: Vec<Option<CoreId>>,
        stats: &[Arc<ShardStats>],
        config: ShardConfig,
        main: ShardRunner,
        batch_scheduling: bool,
    ) -> io::Result<Supervisor> {
        let (events, incoming) = flume::unbounded();
        let mut controls = Vec::new();
        let mut recipes = Vec::new();
        for (core, stats) in cores.into_iter().zip(stats) {
            let (control, commands) = flume::unbounded();
            controls.push(control);
            // Alive from the start, so the acceptor routes to a shard whose
            // thread is still starting (its channel holds the connections).
            stats.alive.store(true, Relaxed);
            recipes.push(ShardRecipe {
                core,
                stats: stats.clone(),
                commands,
            });
        }
        let count = recipes.len();
        let shared = Arc::new(Shared {
            recipes,
            batch_scheduling,
            config: Arc::new(Mutex::new(config)),
            main,
            events,
            threads: Mutex::new((0..count).map(|_| None).collect()),
        });
        for index in 0..count {
            let thread = spawn_shard(&shared, index, 0)?;
            shared.threads.lock().unwrap_or_else(|e| e.into_inner())[index] = Some(thread);
        }
        let watcher = shared.clone();
        let thread = std::thread::Builder::new()
            .name("supervisor".into())
            .spawn(move || supervise(watcher, incoming))?;
        Ok(Supervisor {
            shared,
            controls,
            thread,
        })
    }

    /// Channels to send commands to each shard (drain, fault injection).
    pub(crate) fn controls(&self) -> Vec<flume::Sender<ShardCommand>> {
        self.controls.clone()
    }

    /// What a shard started (or restarted) from now on is given.
    pub(crate) fn shard_config(&self) -> Arc<Mutex<ShardConfig>> {
        self.shared.config.clone()
    }

    /// Tell every shard to drain, stop restarting, and wait for all shard threads.
    pub(crate) fn drain_and_join(self) {
        for control in &self.controls {
            let _ = control.send(ShardCommand::Drain);
        }
        let _ = self.shared.events.send(Event::Stop);
        let _ = self.thread.join();
        let threads: Vec<_> = self
            .shared
            .threads
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .drain(..)
            .collect();
        for thread in threads.into_iter().flatten() {
            let _ = thread.join();
        }
    }
}

fn supervise(shared: Arc<Shared>, incoming: flume::Receiver<Event>) {
    let mut generations = vec![0u32; shared.recipes.len()];
    while let Ok(Event::Died { index, lived }) = incoming.recv() {
        let recipe = &shared.recipes[index];
        if lived < QUICK_DEATH {
            std::thread::sleep(RESTART_PAUSE);
        }
        generations[index] += 1;
        recipe.stats.restarts.fetch_add(1, Relaxed);
        log::warn!(
            "shard {index} died; starting generation {}",
            generations[index]
        );
        match spawn_shard(&shared, index, generations[index]) {
            Ok(thread) => {
                let old =
                    shared.threads.lock().unwrap_or_else(|e| e.into_inner())[index].replace(thread);
                if let Some(old) = old {
                    let _ = old.join();
                }
            }
            Err(error) => log::error!("cannot restart shard {index}: {error}"),
        }
    }
}

fn spawn_shard(shared: &Arc<Shared>, index: usize, generation: u32) -> io::Result<JoinHandle<()>> {
    let shared = shared.clone();
    std::thread::Builder::new()
        .name(format!("shard-{index}"))
        .spawn(move || {
            if shared.batch_scheduling {
                sched_policy::serve_in_batches();
            }
            let recipe = &shared.recipes[index];
            let pinned = recipe
                .core
                .filter(|core| core_affinity::set_for_current(*core));
            recipe.stats.alive.store(true, Relaxed);
            let watch = DeathWatch {
                shared: &shared,
                index,
                started: Instant::now(),
                clean: false,
            };
            let setup = ShardSetup {
                info: ShardInfo {
                    shard_id: index,
                    shard_count: shared.recipes.len(),
                    core: pinned.map(|core| core.id),
                    generation,
                },
                config: shared
                    .config
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .clone(),
                stats: recipe.stats.clone(),
                commands: recipe.commands.clone(),
            };
            match (shared.main)(setup) {
                Ok(()) => watch.finish(),
                Err(error) => log::error!("shard {index} failed: {error}"),
            }
        })
}

/// Reports a shard's death to the supervisor, however its thread ends
/// (an error return or a panic unwinding through it).
struct DeathWatch<'a> {
    shared: &'a Shared,
    index: usize,
    started: Instant,
    clean: bool,
}

impl DeathWatch<'_> {
    fn finish(mut self) {
        self.clean = true;
    }
}

impl Drop for DeathWatch<'_> {
    fn drop(&mut self) {
        if self.clean {
            return;
        }
        self.shared.recipes[self.index]
            .stats
            .alive
            .store(false, Relaxed);
        let _ = self.shared.events.send(Event::Died {
            index: self.index,
            lived: self.started.elapsed(),
        });
    }
}
