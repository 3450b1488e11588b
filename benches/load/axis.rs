//! The value axis of `load.svg`: round, distinct ticks with as many
//! decimals as their step needs (0.0, 0.1, 0.2 …, or 0.00, 0.05, 0.10 …),
//! chosen here and handed to plotters as they are.

/// At most this many intervals between ticks (at least 2.4: a step of 2 × 10ⁿ
/// may give way to 5 × 10ⁿ).
const TARGET_INTERVALS: f64 = 6.0;

/// Ticks from 0 up to the first at or above the largest value.
#[derive(Clone, Debug, PartialEq)]
pub struct Axis {
    /// 0, step, 2 × step, …; the last one is the axis's top.
    pub ticks: Vec<f64>,
    /// Decimals a tick's label needs for consecutive ticks to read differently.
    pub decimals: usize,
}

impl Axis {
    /// An axis for values from 0 to `largest`: a step of 1, 2 or 5 × 10ⁿ.
    /// A largest value that is not positive and finite gives 0 to 1.
    pub fn up_to(largest: f64) -> Axis {
        let largest = if largest.is_finite() && largest > 0.0 {
            largest
        } else {
            1.0
        };
        let rough = largest / TARGET_INTERVALS;
        let magnitude = 10f64.powf(rough.log10().floor());
        let step = [1.0, 2.0, 5.0, 10.0]
            .iter()
            .map(|m| m * magnitude)
            .find(|&step| step >= rough)
            .unwrap_or(10.0 * magnitude);
        // A hair below the next tick counts as reaching it (float error in largest / step).
        let intervals = ((largest / step) - 1e-9).ceil().max(1.0) as usize;
        Axis {
            // i × step, not a running sum, so no error builds up.
            ticks: (0..=intervals).map(|i| i as f64 * step).collect(),
            decimals: (-step.log10().floor()).max(0.0) as usize,
        }
    }

    /// The top of the axis (its last tick).
    pub fn top(&self) -> f64 {
        self.ticks.last().copied().unwrap_or(1.0)
    }

    /// A tick's label.
    pub fn label(&self, value: f64) -> String {
        format!("{value:.*}", self.decimals)
    }
}
