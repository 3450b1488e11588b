//! A cell is disturbed when the machine was busy with other work during its
//! window: its req/s and latencies then say more about that work than about
//! the server. The table and `load.svg` flag such cells.

/// Busy cores of the machine charged to neither the server nor the
/// generator ("other cores"), above which a cell is disturbed (the figure
/// `benches/README.md` gives).
pub const DISTURBED_OTHER_CORES: f64 = 0.1;

/// The flag written beside a disturbed cell's figures.
pub const FLAG: &str = "!";

/// Whether a cell whose window had `other_cores` busy elsewhere is disturbed.
/// An unknown figure (NaN) is not flagged: there is nothing to say.
pub fn is_disturbed(other_cores: f64) -> bool {
    other_cores > DISTURBED_OTHER_CORES
}

/// The table's `other cores` cell: the figure, flagged when disturbed.
pub fn other_cores_cell(other_cores: f64) -> String {
    if is_disturbed(other_cores) {
        format!("{other_cores:.2} {FLAG}")
    } else {
        format!("{other_cores:.2}")
    }
}

/// What the flag means, under the table and in the chart's legend.
pub fn legend() -> String {
    format!(
        "{FLAG} disturbed: more than {DISTURBED_OTHER_CORES} cores busy with other work during the window; rerun it"
    )
}
