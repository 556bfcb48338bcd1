//! The wasmd gas report: `wasmd_gas.json` and `wasmd_gas.svg` (measured gas and its floor
//! against M, per n).

use std::path::Path;

use plotters::style::RGBColor;
use serde::Serialize;

use super::gas::SubmitRow;
use super::query_gas::QueryGas;
use crate::DevError;
use crate::bench::plot::{Axes, COLORS, Series, draw};

/// Everything `relayer-dev bench-wasmd` measured.
#[derive(Debug, Clone, Serialize)]
pub struct WasmdGasReport {
    /// The chain application's version.
    pub wasmd_version: String,
    /// How the floor is computed.
    pub floor: &'static str,
    /// How the model is computed.
    pub model: &'static str,
    /// SubmitEpoch and its duplicate per n and M.
    pub submissions: Vec<SubmitRow>,
    /// Mixnodes per epoch of the query data set.
    pub query_mixnodes: u32,
    /// Epochs of the query data set.
    pub query_epochs: u32,
    /// The largest query answers.
    pub queries: Vec<QueryGas>,
}

/// The floor's definition, as reported.
pub const FLOOR: &str = "60000 instance load + 50000 ante + 10 per signed tx byte + 30 per stored byte (keys with wasmd's 33-byte contract prefix, and values; from the VM model's writes)";
/// The model's definition, as reported.
pub const MODEL: &str = "bench/results/contract_gas.json: cosmwasm-vm gas / 140000 + storage and tx-byte gas estimated from the message JSON";

/// Writes `wasmd_gas.json` and `wasmd_gas.svg` into `out`.
pub fn write(report: &WasmdGasReport, out: &Path) -> Result<(), DevError> {
    std::fs::create_dir_all(out)
        .map_err(|err| DevError::io(format!("creating {}", out.display()), err))?;
    let json = out.join("wasmd_gas.json");
    std::fs::write(&json, serde_json::to_string_pretty(report)? + "\n")
        .map_err(|err| DevError::io(format!("writing {}", json.display()), err))?;
    plot(report, &out.join("wasmd_gas.svg"))
}

/// `color` halfway to white.
fn lighter(color: RGBColor) -> RGBColor {
    let half = |channel: u8| channel / 2 + 128;
    RGBColor(half(color.0), half(color.1), half(color.2))
}

fn plot(report: &WasmdGasReport, path: &Path) -> Result<(), DevError> {
    let mut sizes: Vec<usize> = report.submissions.iter().map(|r| r.signers_n).collect();
    sizes.dedup();
    let mut series: Vec<Series> = Vec::new();
    for (i, &n) in sizes.iter().enumerate() {
        let rows = report.submissions.iter().filter(|r| r.signers_n == n);
        let color = COLORS[i % COLORS.len()];
        series.push((
            format!("SubmitEpoch n = {n}"),
            color,
            rows.clone()
                .map(|r| (r.mixnodes as f64, r.submit.gas_used as f64))
                .collect(),
        ));
        series.push((
            format!("floor n = {n}"),
            lighter(color),
            rows.map(|r| (r.mixnodes as f64, r.submit.floor as f64))
                .collect(),
        ));
    }
    let first = sizes.first().copied();
    series.push((
        "rejected duplicate".to_string(),
        COLORS[COLORS.len() - 1],
        report
            .submissions
            .iter()
            .filter(|r| Some(r.signers_n) == first)
            .map(|r| (r.mixnodes as f64, r.duplicate.gas_used as f64))
            .collect(),
    ));
    let axes = Axes {
        title: "Gas on wasmd (measured) and its floor",
        x_desc: "mixnodes per epoch (M)",
        y_desc: "gas",
    };
    draw(path, &axes, &series)
}
