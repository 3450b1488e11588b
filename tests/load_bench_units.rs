//! The load bench's pure parts, tested: `benches/load` is built with
//! `harness = false` (its `main` is the bench), so `#[test]`s in it would
//! never run; this target includes the modules that need no server.

#[path = "../benches/load/axis.rs"]
mod axis;
#[path = "../benches/load/disturbed.rs"]
mod disturbed;

use axis::Axis;
use disturbed::{is_disturbed, legend, other_cores_cell, DISTURBED_OTHER_CORES, FLAG};

fn labels(largest: f64) -> Vec<String> {
    let axis = Axis::up_to(largest);
    axis.ticks.iter().map(|&v| axis.label(v)).collect()
}

#[test]
fn small_values_get_distinct_labels_with_enough_decimals() {
    // The chart that read 0.0, 0.1, 0.1, 0.2, 0.2 …
    assert_eq!(
        labels(0.55),
        ["0.0", "0.1", "0.2", "0.3", "0.4", "0.5", "0.6"]
    );
    assert_eq!(labels(0.2), ["0.00", "0.05", "0.10", "0.15", "0.20"]);
    assert_eq!(labels(7.3), ["0", "2", "4", "6", "8"]);
    assert_eq!(labels(1.0), ["0.0", "0.2", "0.4", "0.6", "0.8", "1.0"]);
    assert_eq!(labels(640.0), ["0", "200", "400", "600", "800"]);
}

#[test]
fn every_axis_is_round_distinct_and_covers_the_largest_value() {
    let mut largest = 0.000_37;
    while largest < 5e6 {
        let axis = Axis::up_to(largest);
        let step = axis.ticks[1];
        let mantissa = step / 10f64.powf(step.log10().floor());
        assert!(
            [1.0, 2.0, 5.0].iter().any(|m| (mantissa - m).abs() < 1e-9),
            "{largest}: step {step}"
        );
        assert!(axis.top() >= largest, "{largest}: {axis:?}");
        assert!(axis.top() < largest + step + 1e-12, "{largest}: {axis:?}");
        assert!((2..=11).contains(&axis.ticks.len()), "{largest}: {axis:?}");
        let labels: Vec<String> = axis.ticks.iter().map(|&v| axis.label(v)).collect();
        for (tick, label) in axis.ticks.iter().zip(&labels) {
            let read: f64 = label.parse().unwrap();
            assert!((read - tick).abs() < step / 100.0, "{largest}: {labels:?}");
        }
        let mut distinct = labels.clone();
        distinct.dedup();
        assert_eq!(distinct, labels, "{largest}");
        largest *= 1.37;
    }
}

#[test]
fn no_positive_value_still_gives_an_axis() {
    for largest in [0.0, -1.0, f64::NAN, f64::INFINITY] {
        assert_eq!(labels(largest), ["0.0", "0.2", "0.4", "0.6", "0.8", "1.0"]);
    }
}

#[test]
fn cells_above_the_threshold_are_flagged() {
    // The figures of one run on a busy box: all disturbed.
    for other in [0.29, 0.5, 1.17] {
        assert!(is_disturbed(other), "{other}");
        assert_eq!(other_cores_cell(other), format!("{other:.2} !"));
    }
    for other in [0.0, 0.04, DISTURBED_OTHER_CORES, f64::NAN] {
        assert!(!is_disturbed(other), "{other}");
        assert!(!other_cores_cell(other).contains(FLAG), "{other}");
    }
    assert!(legend().contains("0.1 cores"), "{}", legend());
}
