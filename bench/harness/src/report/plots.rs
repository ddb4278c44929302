//! The report's SVG plots, drawn with plotters: latency against offered load, the
//! percentile bars at the common rate, throughput against offered load, and each
//! scenario's p99. A build keeps its colour in every plot.

use super::format;
use crate::model::{BuildResult, CompareReport, LoadReport};
use anyhow::Context as _;
use plotters::coord::Shift;
use plotters::coord::ranged1d::{AsRangedCoord, Ranged, ValueFormatter};
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};
use std::ops::Range;

/// Width and height of every plot, in pixels.
const SIZE: (u32, u32) = (1000, 560);

/// Room on the right of every plot for its legend, in pixels, so it never hides data.
const LEGEND_WIDTH: u32 = 250;

/// How a legend entry is drawn.
#[derive(Debug, Clone, Copy)]
enum Mark {
    /// A solid line of this width.
    Line(RGBColor, u32),
    /// A dashed line.
    Dashed(RGBColor),
    /// An open black circle.
    Ring,
    /// A filled square.
    Bar(RGBColor),
}

/// Split `root` into the plot (left) and its legend panel (right).
fn split<'a>(
    root: &DrawingArea<SVGBackend<'a>, Shift>,
) -> (DrawingArea<SVGBackend<'a>, Shift>, DrawingArea<SVGBackend<'a>, Shift>) {
    root.split_horizontally(SIZE.0 - LEGEND_WIDTH)
}

/// A chart drawn on an SVG area, with `x` and `y` as its axes.
type Chart<'a, 'b, X, Y> = ChartContext<
    'a,
    SVGBackend<'b>,
    Cartesian2d<<X as AsRangedCoord>::CoordDescType, <Y as AsRangedCoord>::CoordDescType>,
>;

/// A chart on `root` with the report's caption, margin and label areas.
fn chart<'a, 'b, X: AsRangedCoord, Y: AsRangedCoord>(
    root: &'a DrawingArea<SVGBackend<'b>, Shift>,
    caption: &str,
    x: X,
    y: Y,
) -> anyhow::Result<Chart<'a, 'b, X, Y>> {
    ChartBuilder::on(root)
        .caption(caption, ("sans-serif", 22))
        .margin(15)
        .x_label_area_size(45)
        .y_label_area_size(70)
        .build_cartesian_2d(x, y)
        .map_err(plot_err)
}

/// Draw the legend entries one under the other in their own panel.
fn draw_legend(area: &DrawingArea<SVGBackend<'_>, Shift>, entries: &[(String, Mark)]) -> anyhow::Result<()> {
    let font = TextStyle::from(("sans-serif", 15).into_font()).pos(Pos::new(HPos::Left, VPos::Center));
    for (i, (label, mark)) in entries.iter().enumerate() {
        let y = 60 + 24 * i32::try_from(i).unwrap_or(0);
        match *mark {
            Mark::Line(c, w) => area.draw(&PathElement::new(vec![(10, y), (40, y)], c.stroke_width(w))),
            Mark::Dashed(c) => {
                for x in [10, 22, 34] {
                    area.draw(&PathElement::new(vec![(x, y), (x + 7, y)], c.stroke_width(2))).map_err(plot_err)?;
                }
                Ok(())
            }
            Mark::Ring => area.draw(&Circle::new((25, y), 7, BLACK.stroke_width(2))),
            Mark::Bar(c) => area.draw(&Rectangle::new([(18, y - 7), (32, y + 7)], c.filled())),
        }
        .map_err(plot_err)?;
        area.draw(&Text::new(label.clone(), (48, y), font.clone())).map_err(plot_err)?;
    }
    Ok(())
}

/// One rendered plot.
#[derive(Debug, Clone)]
pub struct Plot {
    /// File name inside the report directory (`latency.svg`).
    pub file: &'static str,
    /// What the plot shows, for the caption.
    pub title: String,
    /// The SVG document.
    pub svg: String,
}

/// Colours for builds beyond the four known names.
const PALETTE: [RGBColor; 6] = [
    RGBColor(148, 103, 189),
    RGBColor(140, 86, 75),
    RGBColor(227, 119, 194),
    RGBColor(188, 189, 34),
    RGBColor(23, 190, 207),
    RGBColor(214, 39, 40),
];

/// The colour of a build, the same in every plot: fixed for the known names, else by position.
pub fn colour(name: &str, index: usize) -> RGBColor {
    match name {
        "monolith" => RGBColor(31, 119, 180),
        "micro-grpc" => RGBColor(255, 127, 14),
        "micro-http" => RGBColor(44, 160, 44),
        "baseline" => RGBColor(110, 110, 110),
        _ => PALETTE[index % PALETTE.len()],
    }
}

/// Every build of the report with its colour, the baseline last.
pub fn builds(report: &CompareReport) -> Vec<(&BuildResult, RGBColor)> {
    report.builds.iter().chain(report.baseline.iter()).enumerate().map(|(i, b)| (b, colour(&b.name, i))).collect()
}

/// The report of `scenario` among a build's runs at the common rate.
pub fn at_common<'a>(build: &'a BuildResult, scenario: &str) -> Option<&'a LoadReport> {
    build.at_common_rate.iter().find(|r| r.scenario == scenario)
}

/// All plots of the report.
pub fn all(report: &CompareReport) -> anyhow::Result<Vec<Plot>> {
    Ok(vec![
        Plot {
            file: "latency.svg",
            title: format!(
                "Latency vs offered load, {} scenario (open loop): p99 solid, p50 dashed; objective p99 ≤ {} ms; circles mark each build's saturation point",
                scenario_name(report),
                format::ms_f(report.objective_p99_ms)
            ),
            svg: latency(report).context("drawing the latency plot")?,
        },
        Plot {
            file: "percentiles.svg",
            title: format!(
                "Latency percentiles at the common rate ({} req/s), {} scenario",
                format::rate(report.common_rate_per_s),
                scenario_name(report)
            ),
            svg: percentiles(report).context("drawing the percentile bars")?,
        },
        Plot {
            file: "throughput.svg",
            title: format!("Throughput achieved vs offered load, {} scenario", scenario_name(report)),
            svg: throughput(report).context("drawing the throughput plot")?,
        },
        Plot {
            file: "scenarios.svg",
            title: format!(
                "p99 latency of each scenario at the common rate ({} req/s)",
                format::rate(report.common_rate_per_s)
            ),
            svg: scenarios(report).context("drawing the per-scenario plot")?,
        },
    ])
}

/// The saturation scenario's name, or a dash when the report names none.
fn scenario_name(report: &CompareReport) -> &str {
    if report.saturation_scenario.is_empty() { format::MISSING } else { &report.saturation_scenario }
}

/// ` (browse)`, or nothing when the report names no scenario.
fn scenario_suffix(report: &CompareReport) -> String {
    if report.saturation_scenario.is_empty() { String::new() } else { format!(" ({})", report.saturation_scenario) }
}

fn render(draw: impl FnOnce(&DrawingArea<SVGBackend<'_>, Shift>) -> anyhow::Result<()>) -> anyhow::Result<String> {
    let mut buf = String::new();
    {
        let root = SVGBackend::with_string(&mut buf, SIZE).into_drawing_area();
        root.fill(&WHITE).map_err(|e| anyhow::anyhow!("{e}"))?;
        draw(&root)?;
        root.present().map_err(|e| anyhow::anyhow!("{e}"))?;
    }
    Ok(buf)
}

/// A plotters error as anyhow (its error type borrows nothing but is not `Sync` for every
/// backend, so it goes through its message).
fn plot_err<E: std::fmt::Display>(e: E) -> anyhow::Error {
    anyhow::anyhow!("{e}")
}

fn not_measured(root: &DrawingArea<SVGBackend<'_>, Shift>, caption: &str) -> anyhow::Result<()> {
    root.draw(&Text::new(caption.to_string(), (20, 20), ("sans-serif", 22).into_font())).map_err(plot_err)?;
    root.draw(&Text::new(
        "not measured".to_string(),
        (i32::try_from(SIZE.0 / 2).unwrap_or(0) - 70, i32::try_from(SIZE.1 / 2).unwrap_or(0)),
        ("sans-serif", 26).into_font().color(&RGBColor(120, 120, 120)),
    ))
    .map_err(plot_err)?;
    Ok(())
}

/// A range that has room: never empty, never inverted.
fn padded(lo: f64, hi: f64) -> Range<f64> {
    if !(lo.is_finite() && hi.is_finite()) || hi <= lo {
        let base = if lo.is_finite() { lo } else { 0.0 };
        return base..base + 1.0;
    }
    lo..hi
}

struct LatencySeries {
    name: String,
    colour: RGBColor,
    /// (offered req/s, p50 ms, p99 ms)
    points: Vec<(f64, f64, f64)>,
    /// (offered req/s, p99 ms)
    saturation: Option<(f64, f64)>,
}

fn latency(report: &CompareReport) -> anyhow::Result<String> {
    let caption = format!("Latency vs offered load{}", scenario_suffix(report));
    let series: Vec<LatencySeries> = builds(report)
        .into_iter()
        .map(|(b, colour)| LatencySeries {
            name: b.name.clone(),
            colour,
            points: b
                .steps
                .iter()
                .filter(|s| s.rate_per_s.is_finite())
                .map(|s| (s.rate_per_s, s.report.latency.p50_us as f64 / 1e3, s.report.latency.p99_us as f64 / 1e3))
                .collect(),
            saturation: b
                .saturation
                .filter(|s| s.rate_per_s.is_finite())
                .map(|s| (s.rate_per_s, s.p99_us as f64 / 1e3)),
        })
        .collect();
    let points = series.iter().flat_map(|s| s.points.iter());
    let max_x = points.clone().map(|p| p.0).fold(0.0_f64, f64::max);
    if series.iter().all(|s| s.points.is_empty()) {
        return render(|root| not_measured(root, &caption));
    }
    let objective = format::finite(report.objective_p99_ms).filter(|o| *o > 0.0);
    let values = points.flat_map(|p| [p.1, p.2]).chain(objective);
    let min_y = values.clone().filter(|v| *v > 0.0).fold(f64::INFINITY, f64::min);
    let max_y = values.fold(0.0_f64, f64::max);
    let x = padded(0.0, max_x * 1.05);
    let log = min_y.is_finite() && max_y / min_y > 20.0;
    render(|root| {
        if log {
            draw_latency(root, &caption, x, (min_y / 1.5..max_y * 1.5).log_scale(), &series, objective, true)
        } else {
            draw_latency(root, &caption, x, padded(0.0, max_y * 1.15), &series, objective, false)
        }
    })
}

fn draw_latency<Y>(
    root: &DrawingArea<SVGBackend<'_>, Shift>,
    caption: &str,
    x: Range<f64>,
    y: Y,
    series: &[LatencySeries],
    objective: Option<f64>,
    log: bool,
) -> anyhow::Result<()>
where
    Y: AsRangedCoord<Value = f64>,
    Y::CoordDescType: Ranged<ValueType = f64> + ValueFormatter<f64>,
{
    let x_end = x.end;
    let (root, side) = split(root);
    let mut legend = Vec::new();
    let mut chart = chart(&root, caption, x, y)?;
    chart
        .configure_mesh()
        .x_desc("offered load (req/s)")
        .y_desc(if log { "latency (ms, log scale)" } else { "latency (ms)" })
        .y_label_formatter(&|v| format::ms_f(*v))
        .x_label_formatter(&|v| format::rate(*v))
        .label_style(("sans-serif", 15))
        .axis_desc_style(("sans-serif", 16))
        .light_line_style(RGBColor(235, 235, 235))
        .draw()
        .map_err(plot_err)?;
    if let Some(o) = objective {
        chart.draw_series(LineSeries::new(vec![(0.0, o), (x_end, o)], RED.stroke_width(2))).map_err(plot_err)?;
        legend.push((format!("objective p99 ≤ {} ms", format::ms_f(o)), Mark::Line(RED, 2)));
    }
    let mut saturation_marked = false;
    for s in series {
        if s.points.is_empty() {
            continue;
        }
        let c = s.colour;
        chart.draw_series(LineSeries::new(s.points.iter().map(|p| (p.0, p.2)), c.stroke_width(3))).map_err(plot_err)?;
        legend.push((format!("{} p99", s.name), Mark::Line(c, 3)));
        chart.draw_series(s.points.iter().map(|p| Circle::new((p.0, p.2), 3, c.filled()))).map_err(plot_err)?;
        chart
            .draw_series(DashedLineSeries::new(
                s.points.iter().map(|p| (p.0, p.1)).collect::<Vec<_>>(),
                6,
                5,
                c.stroke_width(2),
            ))
            .map_err(plot_err)?;
        legend.push((format!("{} p50", s.name), Mark::Dashed(c)));
        if let Some(sat) = s.saturation {
            chart.draw_series(std::iter::once(Circle::new(sat, 9, BLACK.stroke_width(2)))).map_err(plot_err)?;
            saturation_marked = true;
        }
    }
    if saturation_marked {
        legend.push(("saturation point".to_string(), Mark::Ring));
    }
    draw_legend(&side, &legend)
}

/// Grouped bars: one group per category, one bar per build, values in ms.
fn grouped_bars(
    caption: &str,
    y_desc: &str,
    categories: &[String],
    bars: &[(String, RGBColor, Vec<Option<f64>>)],
) -> anyhow::Result<String> {
    let max_y =
        bars.iter().flat_map(|b| b.2.iter().flatten()).copied().filter(|v| v.is_finite()).fold(0.0_f64, f64::max);
    if categories.is_empty() || bars.is_empty() || max_y <= 0.0 {
        return render(|root| not_measured(root, caption));
    }
    let n = categories.len();
    let k = bars.len();
    let width = 0.8 / k as f64;
    render(|root| {
        let (root, side) = split(root);
        let mut legend = Vec::new();
        let mut chart = chart(&root, caption, -0.5..(n as f64 - 0.5), 0.0..max_y * 1.18)?;
        let label = |v: &f64| {
            let i = v.round();
            if (v - i).abs() < 1e-6 && i >= 0.0 {
                categories.get(i as usize).cloned().unwrap_or_default()
            } else {
                String::new()
            }
        };
        chart
            .configure_mesh()
            .disable_x_mesh()
            .x_labels(n + 1)
            .x_label_formatter(&label)
            .y_label_formatter(&|v| format::ms_f(*v))
            .y_desc(y_desc)
            .label_style(("sans-serif", 15))
            .axis_desc_style(("sans-serif", 16))
            .light_line_style(RGBColor(235, 235, 235))
            .draw()
            .map_err(plot_err)?;
        for (j, (name, c, values)) in bars.iter().enumerate() {
            let c = *c;
            let rects: Vec<_> = values
                .iter()
                .enumerate()
                .filter_map(|(i, v)| v.filter(|v| v.is_finite()).map(|v| (i, v)))
                .map(|(i, v)| {
                    let x0 = i as f64 - 0.4 + j as f64 * width;
                    Rectangle::new([(x0 + 0.01, 0.0), (x0 + width - 0.01, v)], c.filled())
                })
                .collect();
            chart.draw_series(rects).map_err(plot_err)?;
            legend.push((name.clone(), Mark::Bar(c)));
            let texts: Vec<_> = values
                .iter()
                .enumerate()
                .filter_map(|(i, v)| v.filter(|v| v.is_finite()).map(|v| (i, v)))
                .map(|(i, v)| {
                    let x = i as f64 - 0.4 + (j as f64 + 0.5) * width;
                    Text::new(
                        format::ms_f(v),
                        (x, v),
                        TextStyle::from(("sans-serif", 12).into_font()).pos(Pos::new(HPos::Center, VPos::Bottom)),
                    )
                })
                .collect();
            chart.draw_series(texts).map_err(plot_err)?;
        }
        draw_legend(&side, &legend)
    })
}

fn percentiles(report: &CompareReport) -> anyhow::Result<String> {
    let categories: Vec<String> = ["p50", "p90", "p99", "p99.9"].iter().map(|s| s.to_string()).collect();
    let bars: Vec<_> = builds(report)
        .into_iter()
        .filter_map(|(b, c)| {
            let r = at_common(b, &report.saturation_scenario)?;
            let l = r.latency;
            let values = [l.p50_us, l.p90_us, l.p99_us, l.p999_us].iter().map(|us| Some(*us as f64 / 1e3)).collect();
            Some((b.name.clone(), c, values))
        })
        .collect();
    grouped_bars(
        &format!("Latency percentiles at {} req/s{}", format::rate(report.common_rate_per_s), scenario_suffix(report)),
        "latency (ms)",
        &categories,
        &bars,
    )
}

fn scenarios(report: &CompareReport) -> anyhow::Result<String> {
    let all = builds(report);
    let mut categories: Vec<String> = Vec::new();
    for (b, _) in &all {
        for r in &b.at_common_rate {
            if !categories.contains(&r.scenario) {
                categories.push(r.scenario.clone());
            }
        }
    }
    let bars: Vec<_> = all
        .into_iter()
        .filter(|(b, _)| !b.at_common_rate.is_empty())
        .map(|(b, c)| {
            let values = categories.iter().map(|s| at_common(b, s).map(|r| r.latency.p99_us as f64 / 1e3)).collect();
            (b.name.clone(), c, values)
        })
        .collect();
    grouped_bars(
        &format!("p99 per scenario at {} req/s", format::rate(report.common_rate_per_s)),
        "p99 latency (ms)",
        &categories,
        &bars,
    )
}

fn throughput(report: &CompareReport) -> anyhow::Result<String> {
    let caption = format!("Throughput vs offered load{}", scenario_suffix(report));
    let all = builds(report);
    let max = all
        .iter()
        .flat_map(|(b, _)| b.steps.iter().flat_map(|s| [s.rate_per_s, s.report.throughput_per_s]))
        .filter(|v| v.is_finite())
        .fold(0.0_f64, f64::max);
    if all.iter().all(|(b, _)| b.steps.is_empty()) || max <= 0.0 {
        return render(|root| not_measured(root, &caption));
    }
    let top = max * 1.08;
    render(|root| {
        let (root, side) = split(root);
        let mut legend = Vec::new();
        let mut chart = chart(&root, &caption, 0.0..top, 0.0..top)?;
        chart
            .configure_mesh()
            .x_desc("offered load (req/s)")
            .y_desc("throughput achieved (req/s)")
            .x_label_formatter(&|v| format::rate(*v))
            .y_label_formatter(&|v| format::rate(*v))
            .label_style(("sans-serif", 15))
            .axis_desc_style(("sans-serif", 16))
            .light_line_style(RGBColor(235, 235, 235))
            .draw()
            .map_err(plot_err)?;
        let grey = RGBColor(150, 150, 150);
        chart
            .draw_series(DashedLineSeries::new(vec![(0.0, 0.0), (top, top)], 8, 6, grey.stroke_width(1)))
            .map_err(plot_err)?;
        legend.push(("achieved = offered".to_string(), Mark::Dashed(grey)));
        for (b, c) in &all {
            let c = *c;
            let points: Vec<(f64, f64)> = b
                .steps
                .iter()
                .map(|s| (s.rate_per_s, s.report.throughput_per_s))
                .filter(|p| p.0.is_finite() && p.1.is_finite())
                .collect();
            if points.is_empty() {
                continue;
            }
            chart.draw_series(LineSeries::new(points.clone(), c.stroke_width(3))).map_err(plot_err)?;
            legend.push((b.name.clone(), Mark::Line(c, 3)));
            chart.draw_series(points.iter().map(|p| Circle::new(*p, 3, c.filled()))).map_err(plot_err)?;
        }
        draw_legend(&side, &legend)
    })
}
