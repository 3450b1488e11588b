//! The `/metrics` families of static files and response compression
//! (the shards' `files` and `compression` counters).

use shardd_shards::{CompressionCounters, FileOutcome};

use super::metrics::Exposition;
use super::scrape::Scrape;

/// Static files and response compression, per shard (zero when the app
/// serves no files or compresses nothing).
///
/// | Family | Type | Labels |
/// |---|---|---|
/// | `shardd_static_responses_total` | counter | `shard`, `outcome`: `served` (200, 206), `not_modified` (304), `not_found` (404; behind `--static` the app answers instead), `forbidden` (403), `other` (301 to a directory's `/`, 400, 405, 412, 416) |
/// | `shardd_static_open_file_cache_hits_total` | counter | `shard` |
/// | `shardd_static_open_file_cache_misses_total` | counter | `shard` |
/// | `shardd_compressed_responses_total` | counter | `shard`, `encoding`: `gzip`, `br`, `zstd` |
/// | `shardd_compression_input_bytes_total` | counter | `shard` |
/// | `shardd_compression_output_bytes_total` | counter | `shard` |
pub(super) fn content(out: &mut Exposition, scrape: &Scrape) {
    let shards = &scrape.stats.shards;
    let name = "shardd_static_responses_total";
    out.family(
        name,
        "counter",
        "Static-file answers, by outcome: served (200, 206), not_modified (304), not_found (404, then the app answers behind --static), forbidden (403), other.",
    );
    for (index, shard) in shards.iter().enumerate() {
        for (outcome, count) in FileOutcome::NAMES.iter().zip(shard.files.responses) {
            out.sample(name, &[("shard", &index), ("outcome", outcome)], count);
        }
    }
    type Figure = fn(&shardd_shards::ShardStatsSnapshot) -> u64;
    let simple: [(&str, &str, Figure); 4] = [
        (
            "shardd_static_open_file_cache_hits_total",
            "Static-file lookups answered from the shard's open-file cache (no open, no fstat).",
            |s| s.files.cache_hits,
        ),
        (
            "shardd_static_open_file_cache_misses_total",
            "Static-file lookups that opened the file: first seen, expired, or evicted.",
            |s| s.files.cache_misses,
        ),
        (
            "shardd_compression_input_bytes_total",
            "Bytes of response bodies fed to the compressors.",
            |s| s.compression.input_bytes,
        ),
        (
            "shardd_compression_output_bytes_total",
            "Bytes the compressors produced from them.",
            |s| s.compression.output_bytes,
        ),
    ];
    for (name, help, figure) in simple {
        out.family(name, "counter", help);
        for (index, shard) in shards.iter().enumerate() {
            out.sample(name, &[("shard", &index)], figure(shard));
        }
    }
    let name = "shardd_compressed_responses_total";
    out.family(
        name,
        "counter",
        "Responses sent compressed, by encoding: gzip, br, zstd.",
    );
    for (index, shard) in shards.iter().enumerate() {
        for (encoding, count) in CompressionCounters::ENCODINGS
            .iter()
            .zip(shard.compression.responses)
        {
            out.sample(name, &[("shard", &index), ("encoding", encoding)], count);
        }
    }
}
