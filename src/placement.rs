//! Where the shards run: the core each shard is pinned to, and the start-up
//! line that says so (short at any shard count: 1,000 shards on 2 cores is
//! one line of a few dozen characters, not a list of a thousand cores).

use core_affinity::CoreId;

use crate::bind_addr::BindAddr;
use crate::config::Config;

/// The core each shard is pinned to (`None` everywhere with `pin = false`).
/// With more shards than cores, shards go round-robin over the cores.
pub(crate) fn cores(config: &Config) -> Vec<Option<CoreId>> {
    let count = config.shard_count();
    let available = if config.pin {
        core_affinity::get_core_ids().unwrap_or_default()
    } else {
        Vec::new()
    };
    if config.pin && available.is_empty() {
        log::warn!("cannot read the CPU list: shards run unpinned");
    }
    if config.pin && count > available.len() && !available.is_empty() {
        log::warn!(
            "{count} shards on {} cores: up to {} shards share a core",
            available.len(),
            count.div_ceil(available.len())
        );
    }
    (0..count)
        .map(|i| (!available.is_empty()).then(|| available[i % available.len()]))
        .collect()
}

/// The start-up line: shards, cores, listener mode, and where it serves
/// (`listening`: the address and whether the socket was inherited; `None`
/// for a custom listener).
pub(crate) fn summary(
    config: &Config,
    cores: &[Option<CoreId>],
    listening: Option<(&BindAddr, bool)>,
    mode: &str,
) -> String {
    let pinning = match pinned_ids(cores) {
        Some(ids) => pinning(&ids),
        None => "unpinned".into(),
    };
    let place = match listening {
        None => "a custom listener".into(),
        Some((addr, inherited)) => {
            let place = match addr {
                BindAddr::Tcp(addr) if config.tls.is_some() => format!("https://{addr}"),
                BindAddr::Tcp(addr) => format!("http://{addr}"),
                unix => unix.to_string(),
            };
            match inherited {
                true => format!("{place} (inherited socket)"),
                false => place,
            }
        }
    };
    let protocols = match config.http2.enabled {
        true => "HTTP/1.1 and HTTP/2",
        false => "HTTP/1.1 only",
    };
    format!(
        "shardd: {} shards {pinning}, {protocols}, listener {mode}, serving on {place}",
        cores.len()
    )
}

/// The core ids, when every shard is pinned.
fn pinned_ids(cores: &[Option<CoreId>]) -> Option<Vec<usize>> {
    cores.iter().map(|core| core.map(|core| core.id)).collect()
}

/// "pinned to cores 0-3", or with more shards than cores "pinned
/// round-robin to cores 0-1 (up to 500 shards a core)".
fn pinning(ids: &[usize]) -> String {
    let mut distinct = ids.to_vec();
    distinct.sort_unstable();
    distinct.dedup();
    if distinct.len() == ids.len() {
        return format!("pinned to cores {}", ranges(ids));
    }
    format!(
        "pinned round-robin to cores {} (up to {} shards a core)",
        ranges(&distinct),
        ids.len().div_ceil(distinct.len())
    )
}

/// Runs of consecutive ids written as ranges, in order: [0, 1, 2, 5] is "0-2,5".
fn ranges(ids: &[usize]) -> String {
    let mut runs: Vec<(usize, usize)> = Vec::new();
    for &id in ids {
        match runs.last_mut() {
            Some((_, end)) if *end + 1 == id => *end = id,
            _ => runs.push((id, id)),
        }
    }
    let runs: Vec<String> = runs
        .iter()
        .map(|&(start, end)| match start == end {
            true => start.to_string(),
            false => format!("{start}-{end}"),
        })
        .collect();
    runs.join(",")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pinned(ids: &[usize]) -> Vec<Option<CoreId>> {
        ids.iter().map(|&id| Some(CoreId { id })).collect()
    }

    #[test]
    fn consecutive_cores_read_as_ranges() {
        assert_eq!(ranges(&[0, 1, 2, 3]), "0-3");
        assert_eq!(ranges(&[0, 1, 2, 5, 7, 8]), "0-2,5,7-8");
        assert_eq!(ranges(&[3]), "3");
    }

    #[test]
    fn a_thousand_shards_on_two_cores_make_a_short_line() {
        let cores = pinned(&(0..1000).map(|i| i % 2).collect::<Vec<_>>());
        let config = Config::default();
        let line = summary(&config, &cores, None, "handoff");
        assert_eq!(
            line,
            "shardd: 1000 shards pinned round-robin to cores 0-1 (up to 500 shards a core), \
             HTTP/1.1 and HTTP/2, listener handoff, serving on a custom listener"
        );
    }

    #[test]
    fn one_shard_a_core_names_the_cores() {
        let addr: BindAddr = "127.0.0.1:8080".parse().unwrap();
        let line = summary(
            &Config::default(),
            &pinned(&[0, 1]),
            Some((&addr, false)),
            "handoff",
        );
        assert_eq!(
            line,
            "shardd: 2 shards pinned to cores 0-1, HTTP/1.1 and HTTP/2, listener handoff, \
             serving on http://127.0.0.1:8080"
        );
    }

    #[test]
    fn unpinned_shards_say_so() {
        let mut config = Config::default();
        config.http2.enabled = false;
        let line = summary(&config, &[None, None], None, "reuseport");
        assert!(line.starts_with("shardd: 2 shards unpinned,"), "{line}");
        assert!(
            line.contains(", HTTP/1.1 only, listener reuseport,"),
            "{line}"
        );
    }
}
