//! The latency histogram: log-linear, 32 sub-buckets per power of two of
//! nanoseconds (≤ 3 % error), mergeable across generator threads.

const SUB_BITS: u32 = 5;
const SUB: u64 = 1 << SUB_BITS;
const BUCKETS: usize = (64 - SUB_BITS as usize) * SUB as usize + SUB as usize;

#[derive(Clone)]
pub struct Histogram {
    counts: Vec<u64>,
    total: u64,
    max: u64,
}

impl Histogram {
    pub fn new() -> Self {
        Histogram {
            counts: vec![0; BUCKETS],
            total: 0,
            max: 0,
        }
    }

    fn index(ns: u64) -> usize {
        if ns < SUB {
            return ns as usize;
        }
        let exp = 63 - ns.leading_zeros();
        let shift = exp - SUB_BITS;
        let sub = (ns >> shift) & (SUB - 1);
        (exp - SUB_BITS + 1) as usize * SUB as usize + sub as usize
    }

    /// The middle of a bucket's range, in ns.
    fn value(index: usize) -> u64 {
        if index < SUB as usize {
            return index as u64;
        }
        let exp = (index / SUB as usize) as u32 + SUB_BITS - 1;
        let sub = (index % SUB as usize) as u64;
        let shift = exp - SUB_BITS;
        ((SUB + sub) << shift) + ((1u64 << shift) >> 1)
    }

    /// `n` samples of `ns` nanoseconds.
    pub fn record_n(&mut self, ns: u64, n: u64) {
        self.counts[Self::index(ns)] += n;
        self.total += n;
        self.max = self.max.max(ns);
    }

    pub fn merge(&mut self, other: &Histogram) {
        for (a, b) in self.counts.iter_mut().zip(&other.counts) {
            *a += b;
        }
        self.total += other.total;
        self.max = self.max.max(other.max);
    }

    /// The `q` quantile (0..=1) in µs; 0 when empty.
    pub fn quantile_us(&self, q: f64) -> f64 {
        if self.total == 0 {
            return 0.0;
        }
        let rank = ((q * self.total as f64).ceil() as u64).clamp(1, self.total);
        let mut seen = 0;
        for (i, &c) in self.counts.iter().enumerate() {
            seen += c;
            if seen >= rank {
                return Self::value(i).min(self.max) as f64 / 1e3;
            }
        }
        self.max as f64 / 1e3
    }

    /// The largest sample in µs; 0 when empty.
    pub fn max_us(&self) -> f64 {
        self.max as f64 / 1e3
    }
}
