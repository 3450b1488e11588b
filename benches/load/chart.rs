//! `load.svg`: bar charts of the rows, one panel per workload, server CPU
//! µs/request by mode on top and requests/s below (plotters).

use std::error::Error;
use std::path::Path;

use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

use crate::cell::Row;
use crate::workload::Workload;

/// A chart row: its caption and the figure it plots.
type Metric = (&'static str, fn(&Row) -> f64);

const METRICS: [Metric; 2] = [
    ("server CPU µs / request", |r| r.server_us_per_req()),
    ("requests / s (thousands)", |r| r.rps / 1e3),
];

/// One panel per workload: server CPU µs/request by mode (top row) and requests/s (bottom row).
pub fn write_svg(
    path: &Path,
    rows: &[Row],
    workloads: &[Workload],
    modes: &[String],
    subtitle: &str,
) -> Result<(), Box<dyn Error>> {
    let panel_w = (110 * modes.len() as u32 + 120).max(320);
    let size = ((panel_w * workloads.len() as u32).max(760), 700);
    let root = SVGBackend::new(path, size).into_drawing_area();
    root.fill(&WHITE)?;
    let (title, body) = root.split_vertically(50);
    title.draw(&Text::new(
        "shardd load benchmark: server CPU per request and throughput by mode",
        (10, 8),
        ("sans-serif", 18).into_font(),
    ))?;
    title.draw(&Text::new(
        subtitle.to_string(),
        (10, 30),
        ("sans-serif", 12).into_font().color(&RGBColor(90, 90, 90)),
    ))?;
    let panels = body.split_evenly((2, workloads.len()));
    for (m, metric) in METRICS.iter().enumerate() {
        for (w, &workload) in workloads.iter().enumerate() {
            let area = &panels[m * workloads.len() + w];
            draw_panel(area, metric, workload, rows, modes)?;
        }
    }
    root.present()?;
    Ok(())
}

/// One bar per mode: `metric` of the row for `workload` and that mode.
fn draw_panel(
    area: &DrawingArea<SVGBackend<'_>, Shift>,
    (metric, value_of): &Metric,
    workload: Workload,
    rows: &[Row],
    modes: &[String],
) -> Result<(), Box<dyn Error>> {
    let values = bar_values(*value_of, workload, rows, modes);
    let top = values.iter().map(|&(_, v)| v).fold(0.0, f64::max);
    let top = if top > 0.0 { top * 1.2 } else { 1.0 };
    let labels = modes.to_vec();
    let mut chart = ChartBuilder::on(area)
        .caption(format!("{}: {metric}", workload.name()), ("sans-serif", 14))
        .margin(10)
        .x_label_area_size(30)
        .y_label_area_size(50)
        .build_cartesian_2d(
            (0..modes.len().saturating_sub(1).max(1)).into_segmented(),
            0.0..top,
        )?;
    chart
        .configure_mesh()
        .disable_x_mesh()
        .light_line_style(TRANSPARENT)
        .x_labels(modes.len() + 1)
        .x_label_formatter(&|v| match v {
            SegmentValue::CenterOf(i) => labels.get(*i).cloned().unwrap_or_default(),
            _ => String::new(),
        })
        .y_label_formatter(&|v| format!("{v:.1}"))
        .draw()?;
    chart.draw_series(values.iter().map(|&(i, v)| {
        let mut bar = Rectangle::new(
            [
                (SegmentValue::Exact(i), 0.0),
                (SegmentValue::Exact(i + 1), v),
            ],
            Palette99::pick(i).filled(),
        );
        bar.set_margin(0, 0, 12, 12);
        bar
    }))?;
    chart.draw_series(values.iter().map(|&(i, v)| {
        Text::new(
            bar_label(v),
            (SegmentValue::CenterOf(i), v + top * 0.02),
            ("sans-serif", 12)
                .into_font()
                .into_text_style(area)
                .pos(Pos::new(HPos::Center, VPos::Bottom)),
        )
    }))?;
    Ok(())
}

/// (mode index, value) for the modes that have a finite value for `workload`.
fn bar_values(
    value_of: fn(&Row) -> f64,
    workload: Workload,
    rows: &[Row],
    modes: &[String],
) -> Vec<(usize, f64)> {
    modes
        .iter()
        .enumerate()
        .filter_map(|(i, mode)| {
            rows.iter()
                .find(|r| &r.mode == mode && r.workload == workload)
                .map(|r| (i, value_of(r)))
                .filter(|(_, v)| v.is_finite())
        })
        .collect()
}

/// The figure written above a bar.
fn bar_label(v: f64) -> String {
    if v >= 100.0 {
        format!("{v:.0}")
    } else {
        format!("{v:.2}")
    }
}
