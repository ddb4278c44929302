//! The comparison report: `archlab compare`'s [`CompareReport`] rendered as Markdown, one
//! self-contained HTML page with inline SVG plots, the raw JSON, and the plots as files.
//!
//! # Layout
//!
//! [`sections`] turns the report into [`doc::Block`]s (headings, tables, plots) once;
//! [`doc`] renders those blocks as Markdown and as HTML, so both files show the same
//! figures. [`plots`] draws the SVGs, [`format`] spells numbers and "not measured" one way.
//! Missing data (a build never stepped, a cost never measured) renders as "—", never a panic,
//! and no division reaches the output as NaN or infinity.

#![warn(missing_docs)]

pub mod doc;
pub mod format;
pub mod plots;
pub mod sections;

#[cfg(test)]
mod tests;

use crate::model::CompareReport;
use anyhow::Context as _;
use serde::Serialize;
use std::path::{Path, PathBuf};

pub use sections::headline_ratios;

/// The headline ratios of one microservices build against the monolith: above 1.0 means the
/// microservices build has more of it (throughput, latency or CPU).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Ratios {
    /// The build compared with the monolith: every build of the report but the monolith
    /// (`micro-grpc`, `micro-http`); the baseline is not one of them.
    pub build: String,
    /// Throughput, micro / monolith: the median of the round-by-round ratios of the headline
    /// floods (the most each build answers, measured taking turns), or, in a report from
    /// before there were floods, the ratio of the throughputs at the saturation points.
    pub throughput: Option<f64>,
    /// p50 of the saturation scenario at the common rate, micro / monolith.
    pub p50_at_common_rate: Option<f64>,
    /// p90 of the saturation scenario at the common rate, micro / monolith: the tail short
    /// of the few stalls that decide a p99 on a busy machine.
    pub p90_at_common_rate: Option<f64>,
    /// p99 of the saturation scenario at the common rate, micro / monolith.
    pub p99_at_common_rate: Option<f64>,
    /// CPU-seconds per 1,000 requests, the build's processes plus PostgreSQL plus RabbitMQ,
    /// micro / monolith.
    pub cpu_s_per_1k: Option<f64>,
}

impl Ratios {
    /// The ratios' column names, in table order.
    pub const NAMES: [&'static str; 5] =
        ["throughput", "p50 at common rate", "p90 at common rate", "p99 at common rate", "CPU-s per 1k requests"];

    /// Each ratio with its column name, in table order.
    pub fn named(&self) -> [(&'static str, Option<f64>); 5] {
        let [throughput, p50, p90, p99, cpu] = Self::NAMES;
        [
            (throughput, self.throughput),
            (p50, self.p50_at_common_rate),
            (p90, self.p90_at_common_rate),
            (p99, self.p99_at_common_rate),
            (cpu, self.cpu_s_per_1k),
        ]
    }
}

/// Write report.md, report.html (self-contained: SVG inline, CSS inline, no external URL),
/// report.json (the input, pretty) and the plots as separate .svg files (latency.svg,
/// percentiles.svg, ...) into `dir` (created if missing). Returns the paths written.
pub fn write(report: &CompareReport, dir: &Path) -> anyhow::Result<Vec<PathBuf>> {
    std::fs::create_dir_all(dir).with_context(|| format!("creating the report directory {}", dir.display()))?;
    let plots = plots::all(report)?;
    let blocks = sections::blocks(report, &plots);
    let mut files: Vec<(PathBuf, String)> = vec![
        (dir.join("report.md"), doc::markdown(&blocks)),
        (dir.join("report.html"), doc::html(&sections::title(report), &blocks)),
        (
            dir.join("report.json"),
            serde_json::to_string_pretty(report).context("serialising the report as JSON")? + "\n",
        ),
    ];
    files.extend(plots.into_iter().map(|p| (dir.join(p.file), p.svg)));
    let mut written = Vec::with_capacity(files.len());
    for (path, content) in files {
        std::fs::write(&path, content).with_context(|| format!("writing {}", path.display()))?;
        written.push(path);
    }
    Ok(written)
}

/// The headline table alone (Markdown), for the README.
pub fn headline_markdown(report: &CompareReport) -> String {
    doc::markdown(&sections::headline(report))
}

/// Several runs of the same profile side by side: each run's ratios, their spread
/// ((max-min)/mean), and whether every ratio spreads at most `tolerance` (0.10) across runs.
/// Markdown.
pub fn reproducibility_markdown(reports: &[CompareReport], tolerance: f64) -> String {
    doc::markdown(&sections::reproducibility(reports, tolerance))
}
