//! The number of rows `/queries`, `/updates` and `/cached-queries` ask for.

/// Most rows one request may ask for, as the benchmark's rules set it.
pub(super) const MAX_COUNT: usize = 500;

/// The `q` (or `queries`, or `count`) parameter of `query`: missing or not
/// a number counts as 1, and the rest is clamped to 1..=500, as the rules say.
pub(super) fn query_count(query: Option<&str>) -> usize {
    let value = query.unwrap_or("").split('&').find_map(|pair| {
        let (name, value) = pair.split_once('=')?;
        matches!(name, "q" | "queries" | "count").then_some(value)
    });
    match value.and_then(|value| value.parse::<i64>().ok()) {
        Some(n) => n.clamp(1, MAX_COUNT as i64) as usize,
        None => 1,
    }
}

#[cfg(test)]
mod tests {
    use super::query_count;

    #[test]
    fn counts_are_clamped_as_the_rules_say() {
        for (query, expected) in [
            (None, 1),
            (Some(""), 1),
            (Some("q=foo"), 1),
            (Some("q=0"), 1),
            (Some("q=-3"), 1),
            (Some("q=20"), 20),
            (Some("queries=7"), 7),
            (Some("count=9"), 9),
            (Some("x=1&q=501"), 500),
            (Some("q=99999999999999999999"), 1),
        ] {
            assert_eq!(query_count(query), expected, "{query:?}");
        }
    }
}
