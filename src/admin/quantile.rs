//! A latency quantile from the request-duration histogram: the counts of
//! two readings subtracted give the requests of the span between them, and
//! the quantile is interpolated linearly inside the bucket it falls in, as
//! Prometheus' `histogram_quantile` does, so the page and a dashboard agree.

use shardd_shards::DURATION_BOUNDS;

/// The `q` quantile (0 to 1), in seconds, of the requests counted in `now`
/// and not yet in `then` (cumulative counts per bound of
/// [`DURATION_BOUNDS`], then the total). `None` without such requests.
/// Above the last bound the answer is that bound: the histogram knows no more.
pub(super) fn quantile_seconds(q: f64, now: &[u64], then: &[u64]) -> Option<f64> {
    let in_span = |i: usize| {
        let then = then.get(i).copied().unwrap_or(0);
        now.get(i).copied().unwrap_or(0).saturating_sub(then)
    };
    let total = in_span(DURATION_BOUNDS.len());
    if total == 0 {
        return None;
    }
    let rank = q * total as f64;
    let mut below = 0;
    let mut lower = 0.0;
    for (i, &upper) in DURATION_BOUNDS.iter().enumerate() {
        let upto = in_span(i);
        if upto as f64 >= rank {
            let in_bucket = (upto - below) as f64;
            let into = if in_bucket > 0.0 {
                (rank - below as f64) / in_bucket
            } else {
                1.0
            };
            return Some(lower + (upper - lower) * into);
        }
        below = upto;
        lower = upper;
    }
    Some(lower)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Cumulative counts with `n` requests of each of `buckets` (by index).
    fn cumulative(requests: &[(usize, u64)]) -> Vec<u64> {
        let mut running = 0;
        (0..=DURATION_BOUNDS.len())
            .map(|i| {
                running += requests
                    .iter()
                    .filter(|(b, _)| *b == i)
                    .map(|(_, n)| n)
                    .sum::<u64>();
                running
            })
            .collect()
    }

    #[test]
    fn interpolates_inside_the_bucket_of_the_rank() {
        // 100 requests in (0.1 ms, 0.25 ms]: the 99th is 99 % of the way in.
        let now = cumulative(&[(1, 100)]);
        let p99 = quantile_seconds(0.99, &now, &cumulative(&[])).unwrap();
        assert!((p99 - (0.000_1 + 0.000_15 * 0.99)).abs() < 1e-12, "{p99}");
        // 98 fast and 2 between 10 and 25 ms: the 99th is a slow one.
        let now = cumulative(&[(0, 98), (7, 2)]);
        let p99 = quantile_seconds(0.99, &now, &cumulative(&[])).unwrap();
        assert!((p99 - 0.0175).abs() < 1e-12, "{p99}");
    }

    #[test]
    fn only_the_requests_of_the_span_count() {
        // Slow requests long ago, fast ones since: the span's p99 is fast.
        let then = cumulative(&[(10, 1_000)]);
        let now = cumulative(&[(10, 1_000), (0, 500)]);
        let p99 = quantile_seconds(0.99, &now, &then).unwrap();
        assert!(p99 <= 0.000_1, "{p99}");
        assert_eq!(quantile_seconds(0.99, &then, &then), None);
        assert_eq!(quantile_seconds(0.99, &[], &[]), None);
    }

    #[test]
    fn beyond_the_last_bound_says_the_last_bound() {
        let now = cumulative(&[(DURATION_BOUNDS.len(), 10)]);
        assert_eq!(quantile_seconds(0.99, &now, &[]), Some(5.0));
    }
}
