//! `load.svg`: bar charts of the rows, one panel per workload, server CPU
//! µs/request by mode on top and requests/s below (plotters). A disturbed
//! cell's bar is faded with a red outline and its figure flagged in red,
//! explained under the title.

use std::error::Error;
use std::path::Path;

use std::ops::Range;

use plotters::coord::ranged1d::{DefaultFormatting, KeyPointHint};
use plotters::coord::types::RangedCoordf64;
use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

use crate::axis::Axis;
use crate::cell::Row;
use crate::disturbed;
use crate::workload::Workload;

/// The outline and figure of a disturbed cell.
const DISTURBED_COLOR: RGBColor = RGBColor(207, 34, 46);

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
    let (title, body) = root.split_vertically(66);
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
    if rows
        .iter()
        .any(|r| disturbed::is_disturbed(r.other_cores()))
    {
        title.draw(&Text::new(
            format!("faded bar, red outline, {}", disturbed::legend()),
            (10, 48),
            ("sans-serif", 12).into_font().color(&DISTURBED_COLOR),
        ))?;
    }
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
    let largest = values.iter().map(|bar| bar.value).fold(0.0, f64::max);
    // Room above the tallest bar for its figure.
    let axis = Axis::up_to(largest * 1.15);
    let top = axis.top();
    let labels = modes.to_vec();
    let mut chart = ChartBuilder::on(area)
        .caption(format!("{}: {metric}", workload.name()), ("sans-serif", 14))
        .margin(10)
        .x_label_area_size(30)
        .y_label_area_size(50)
        .build_cartesian_2d(
            (0..modes.len().saturating_sub(1).max(1)).into_segmented(),
            Ticked::from(&axis),
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
        .y_label_formatter(&|&v| axis.label(v))
        .draw()?;
    let bar = |bar: &Bar, style: ShapeStyle| {
        let mut rectangle = Rectangle::new(
            [
                (SegmentValue::Exact(bar.mode), 0.0),
                (SegmentValue::Exact(bar.mode + 1), bar.value),
            ],
            style,
        );
        rectangle.set_margin(0, 0, 12, 12);
        rectangle
    };
    // A disturbed cell's bar is faded (its figure is not to be trusted) and outlined.
    chart.draw_series(values.iter().map(|b| {
        let color = Palette99::pick(b.mode);
        bar(
            b,
            if b.disturbed {
                color.mix(0.3).filled()
            } else {
                color.filled()
            },
        )
    }))?;
    chart.draw_series(
        values
            .iter()
            .filter(|b| b.disturbed)
            .map(|b| bar(b, DISTURBED_COLOR.stroke_width(2))),
    )?;
    chart.draw_series(values.iter().map(|b| {
        let (text, color) = if b.disturbed {
            (
                format!("{} {}", bar_label(b.value), disturbed::FLAG),
                DISTURBED_COLOR,
            )
        } else {
            (bar_label(b.value), BLACK)
        };
        Text::new(
            text,
            (SegmentValue::CenterOf(b.mode), b.value + top * 0.02),
            ("sans-serif", 12)
                .into_font()
                .color(&color)
                .pos(Pos::new(HPos::Center, VPos::Bottom)),
        )
    }))?;
    Ok(())
}

/// One bar: a mode's figure for the panel's workload.
struct Bar {
    /// Index in the modes.
    mode: usize,
    value: f64,
    disturbed: bool,
}

/// The bars of the modes that have a finite value for `workload`.
fn bar_values(
    value_of: fn(&Row) -> f64,
    workload: Workload,
    rows: &[Row],
    modes: &[String],
) -> Vec<Bar> {
    modes
        .iter()
        .enumerate()
        .filter_map(|(mode, name)| {
            rows.iter()
                .find(|r| &r.mode == name && r.workload == workload)
                .map(|r| Bar {
                    mode,
                    value: value_of(r),
                    disturbed: disturbed::is_disturbed(r.other_cores()),
                })
                .filter(|bar| bar.value.is_finite())
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

/// A value axis with the ticks of an [`Axis`], not plotters' own choice
/// (which came finer than one decimal could tell apart).
struct Ticked {
    linear: RangedCoordf64,
    ticks: Vec<f64>,
}

impl From<&Axis> for Ticked {
    fn from(axis: &Axis) -> Ticked {
        Ticked {
            linear: (0.0..axis.top()).into(),
            ticks: axis.ticks.clone(),
        }
    }
}

impl Ranged for Ticked {
    type FormatOption = DefaultFormatting;
    type ValueType = f64;

    fn map(&self, value: &f64, limit: (i32, i32)) -> i32 {
        self.linear.map(value, limit)
    }

    fn key_points<Hint: KeyPointHint>(&self, _hint: Hint) -> Vec<f64> {
        self.ticks.clone()
    }

    fn range(&self) -> Range<f64> {
        self.linear.range()
    }
}
