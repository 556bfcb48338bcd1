//! SVG plots of a [`BenchReport`]: latency vs n, and messages and verifications per epoch vs n
//! beside n^2.

use std::path::Path;

use crate::DevError;
use plotters::prelude::*;
use relayer_protocol::SubmitPolicy;

use super::{BenchReport, CaseResult};

/// The measured cases of `policy` on a chain with blocks `block_ms` apart (0: instant).
fn cases(report: &BenchReport, policy: SubmitPolicy, block_ms: u64) -> Vec<&CaseResult> {
    report
        .cases
        .iter()
        .filter(|case| case.policy == policy && case.block_ms == block_ms)
        .filter(|case| case.error.is_none())
        .collect()
}

fn cases_of_any_policy(report: &BenchReport) -> Vec<&CaseResult> {
    report
        .cases
        .iter()
        .filter(|case| case.error.is_none() && case.block_ms == 0)
        .collect()
}

/// A named line: label, colour, points.
pub(crate) type Series = (String, RGBColor, Vec<(f64, f64)>);

/// Axis descriptions of a plot.
pub(crate) struct Axes<'a> {
    /// The title above the plot.
    pub title: &'a str,
    /// The x axis.
    pub x_desc: &'a str,
    /// The y axis.
    pub y_desc: &'a str,
}

/// Draws `series` on log-log axes into `path`.
pub(crate) fn draw(path: &Path, axes: &Axes<'_>, series: &[Series]) -> Result<(), DevError> {
    let points = series.iter().flat_map(|(_, _, points)| points.iter());
    let (mut x_min, mut x_max, mut y_min, mut y_max) = (f64::MAX, 4.0f64, f64::MAX, 1.0f64);
    for &(x, y) in points {
        x_min = x_min.min(x);
        x_max = x_max.max(x);
        y_min = y_min.min(y);
        y_max = y_max.max(y);
    }
    let x_min = (x_min.min(x_max) * 0.75).max(0.1);
    let y_min = (y_min.min(y_max) / 2.0).max(0.1);
    let root = SVGBackend::new(path, (820, 520)).into_drawing_area();
    let error = |err: &dyn std::fmt::Display| DevError::Plot {
        path: path.display().to_string(),
        reason: err.to_string(),
    };
    root.fill(&WHITE).map_err(|e| error(&e))?;
    let mut chart = ChartBuilder::on(&root)
        .caption(axes.title, ("sans-serif", 22))
        .margin(16)
        .x_label_area_size(44)
        .y_label_area_size(72)
        .build_cartesian_2d(
            (x_min..x_max * 1.3).log_scale(),
            (y_min..y_max * 2.0).log_scale(),
        )
        .map_err(|e| error(&e))?;
    chart
        .configure_mesh()
        .x_desc(axes.x_desc)
        .y_desc(axes.y_desc)
        .draw()
        .map_err(|e| error(&e))?;
    for (label, color, points) in series {
        let color = *color;
        chart
            .draw_series(LineSeries::new(points.clone(), color.stroke_width(2)))
            .map_err(|e| error(&e))?
            .label(label.as_str())
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 18, y)], color));
        chart
            .draw_series(
                points
                    .iter()
                    .map(|&point| Circle::new(point, 3, color.filled())),
            )
            .map_err(|e| error(&e))?;
    }
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::UpperLeft)
        .background_style(WHITE.mix(0.9))
        .border_style(BLACK)
        .draw()
        .map_err(|e| error(&e))?;
    root.present().map_err(|e| error(&e))?;
    Ok(())
}

const NODES: &str = "nodes (n)";

/// The palette, in order of use.
pub(crate) const COLORS: [RGBColor; 6] = [
    RGBColor(31, 119, 180),
    RGBColor(255, 127, 14),
    RGBColor(44, 160, 44),
    RGBColor(214, 39, 40),
    RGBColor(148, 103, 189),
    RGBColor(140, 86, 75),
];

/// Latency from epoch end to acceptance (p50, p95) vs n, per policy with instant blocks, and
/// the staggered p50 with each block interval measured.
pub fn latency(report: &BenchReport, path: &Path) -> Result<(), DevError> {
    let mut series = Vec::new();
    for (i, policy) in [SubmitPolicy::Staggered, SubmitPolicy::Race]
        .into_iter()
        .enumerate()
    {
        let cases = cases(report, policy, 0);
        if cases.is_empty() {
            continue;
        }
        let name: &str = policy.into();
        let p50 = cases
            .iter()
            .map(|c| (c.nodes as f64, c.accepted_ms.p50.max(1) as f64));
        let p95 = cases
            .iter()
            .map(|c| (c.nodes as f64, c.accepted_ms.p95.max(1) as f64));
        series.push((format!("{name} p50"), COLORS[2 * i], p50.collect()));
        series.push((format!("{name} p95"), COLORS[2 * i + 1], p95.collect()));
    }
    let mut intervals: Vec<u64> = report.cases.iter().map(|c| c.block_ms).collect();
    intervals.sort_unstable();
    intervals.dedup();
    for (block_ms, color) in intervals
        .into_iter()
        .filter(|&ms| ms > 0)
        .zip(COLORS[4..].iter())
    {
        let points = cases(report, SubmitPolicy::Staggered, block_ms)
            .iter()
            .map(|c| (c.nodes as f64, c.accepted_ms.p50.max(1) as f64))
            .collect();
        let label = format!("staggered p50, blocks {block_ms} ms apart");
        series.push((label, *color, points));
    }
    let axes = Axes {
        title: "Epoch end -> contract accepts",
        x_desc: NODES,
        y_desc: "ms",
    };
    draw(path, &axes, &series)
}

/// Messages and signature verifications per epoch (network-wide) vs n, with n^2.
pub fn work(report: &BenchReport, path: &Path) -> Result<(), DevError> {
    let cases = cases(report, SubmitPolicy::Staggered, 0);
    let cases = if cases.is_empty() {
        cases_of_any_policy(report)
    } else {
        cases
    };
    let series = vec![
        (
            "messages / epoch".to_string(),
            COLORS[0],
            cases
                .iter()
                .map(|c| (c.nodes as f64, c.per_epoch.messages.max(1.0)))
                .collect(),
        ),
        (
            "signature verifications / epoch".to_string(),
            COLORS[1],
            cases
                .iter()
                .map(|c| (c.nodes as f64, c.per_epoch.signature_verifications.max(1.0)))
                .collect(),
        ),
        (
            "n^2".to_string(),
            COLORS[3],
            cases
                .iter()
                .map(|c| (c.nodes as f64, c.n_squared as f64))
                .collect(),
        ),
    ];
    let axes = Axes {
        title: "Network-wide work per epoch",
        x_desc: NODES,
        y_desc: "count",
    };
    draw(path, &axes, &series)
}
