//! Criterion's results, read back for the report: `make bench` writes them, [`read`] turns
//! them into [`BenchFigure`]s.
//!
//! Criterion 0.8 keeps each benchmark's latest run under
//! `target/criterion/<group>/<function>/new/`: `benchmark.json` names it (`full_id`,
//! `group_id`, `function_id`, `value_str`) and `estimates.json` holds its statistics, the
//! mean with its confidence interval among them (nanoseconds per iteration). Directory
//! names are sanitised ids, so the id is taken from `benchmark.json`, never from the path.
//! The `base/` and `change/` folders beside `new/` (earlier runs) and the `report/` folders
//! are not results of the latest run and are skipped.

use crate::model::BenchFigure;
use anyhow::Context;
use serde::Deserialize;
use std::path::{Path, PathBuf};

/// `benchmark.json`: which benchmark a folder holds.
#[derive(Deserialize)]
struct BenchmarkJson {
    group_id: String,
    function_id: Option<String>,
    value_str: Option<String>,
    full_id: Option<String>,
}

impl BenchmarkJson {
    /// `group/function[/value]`, as criterion prints it.
    fn id(self) -> String {
        if let Some(full) = self.full_id {
            return full;
        }
        [Some(self.group_id), self.function_id, self.value_str].into_iter().flatten().collect::<Vec<_>>().join("/")
    }
}

/// `estimates.json`: only the mean is read.
#[derive(Deserialize)]
struct EstimatesJson {
    mean: Estimate,
}

#[derive(Deserialize)]
struct Estimate {
    point_estimate: f64,
    confidence_interval: Interval,
}

#[derive(Deserialize)]
struct Interval {
    lower_bound: f64,
    upper_bound: f64,
}

/// Every benchmark's latest figure under `dir` (criterion's output, `target/criterion`),
/// sorted by id. A missing `dir` means no benchmark has run yet: an empty list.
pub fn read(dir: &Path) -> anyhow::Result<Vec<BenchFigure>> {
    let mut found = Vec::new();
    if dir.exists() {
        collect_new_dirs(dir, &mut found)?;
    }
    let mut figures = found.iter().map(|new| figure(new)).collect::<anyhow::Result<Vec<_>>>()?;
    figures.sort_by(|a, b| a.id.cmp(&b.id));
    Ok(figures)
}

/// Every `new/` folder below `dir` that holds a `benchmark.json`.
fn collect_new_dirs(dir: &Path, found: &mut Vec<PathBuf>) -> anyhow::Result<()> {
    let entries = std::fs::read_dir(dir).with_context(|| format!("reading {}", dir.display()))?;
    for entry in entries {
        let entry = entry.with_context(|| format!("reading {}", dir.display()))?;
        let kind = entry.file_type().with_context(|| format!("reading {}", entry.path().display()))?;
        if !kind.is_dir() {
            continue;
        }
        let path = entry.path();
        match entry.file_name().to_str() {
            Some("new") if path.join("benchmark.json").is_file() => found.push(path),
            Some("base" | "change" | "report") => {}
            _ => collect_new_dirs(&path, found)?,
        }
    }
    Ok(())
}

/// The figure of one `new/` folder.
fn figure(new: &Path) -> anyhow::Result<BenchFigure> {
    let benchmark: BenchmarkJson = read_json(&new.join("benchmark.json"))?;
    let estimates: EstimatesJson = read_json(&new.join("estimates.json"))?;
    let mean = estimates.mean;
    Ok(BenchFigure {
        id: benchmark.id(),
        mean_ns: mean.point_estimate,
        lower_ns: mean.confidence_interval.lower_bound,
        upper_ns: mean.confidence_interval.upper_bound,
    })
}

fn read_json<T: serde::de::DeserializeOwned>(path: &Path) -> anyhow::Result<T> {
    let text = std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    serde_json::from_str(&text).with_context(|| format!("parsing {}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;

    /// A fresh, empty directory under the system's temporary directory.
    fn scratch() -> PathBuf {
        let dir = std::env::temp_dir().join(format!("archlab-criterion-{}", rand::random::<u64>()));
        fs::create_dir_all(&dir).expect("create a scratch directory");
        dir
    }

    /// Write one benchmark the way criterion 0.8 lays it out, with `mean` and its interval.
    fn bench(root: &Path, folder: &str, run: &str, group: &str, function: &str, mean: [f64; 3]) {
        let dir = root.join(folder).join(run);
        fs::create_dir_all(&dir).expect("create the benchmark's folder");
        let benchmark = serde_json::json!({
            "group_id": group, "function_id": function, "value_str": null, "throughput": null,
            "full_id": format!("{group}/{function}"), "directory_name": folder, "title": format!("{group}/{function}"),
        });
        let estimate = |point: f64, lower: f64, upper: f64| {
            serde_json::json!({
                "confidence_interval": {"confidence_level": 0.95, "lower_bound": lower, "upper_bound": upper},
                "point_estimate": point, "standard_error": 1.0,
            })
        };
        let [point, lower, upper] = mean;
        let estimates = serde_json::json!({
            "mean": estimate(point, lower, upper),
            "median": estimate(point + 1000.0, lower, upper),
            "median_abs_dev": estimate(1.0, 0.5, 1.5),
            "slope": estimate(point + 2000.0, lower, upper),
            "std_dev": estimate(3.0, 2.0, 4.0),
        });
        fs::write(dir.join("benchmark.json"), benchmark.to_string()).expect("write benchmark.json");
        fs::write(dir.join("estimates.json"), estimates.to_string()).expect("write estimates.json");
    }

    #[test]
    fn reads_the_latest_mean_of_every_benchmark_sorted_by_id() {
        let root = scratch();
        bench(&root, "hop/grpc", "new", "hop", "grpc", [52_000.0, 51_000.0, 53_500.0]);
        bench(&root, "floor/tonic_echo", "new", "floor", "tonic_echo", [40_000.0, 39_000.0, 41_000.0]);
        // An earlier run and criterion's report folder are not figures.
        bench(&root, "hop/grpc", "base", "hop", "grpc", [99.0, 98.0, 100.0]);
        bench(&root, "hop/report", "new", "hop", "report", [1.0, 1.0, 1.0]);
        // The id comes from benchmark.json, not from the (sanitised) folder name.
        bench(&root, "purchase/micro_services_", "new", "purchase", "micro services?", [3.0e6, 2.9e6, 3.1e6]);

        let figures = read(&root).expect("read the fixture");
        let _ = fs::remove_dir_all(&root);

        let ids: Vec<&str> = figures.iter().map(|f| f.id.as_str()).collect();
        assert_eq!(ids, ["floor/tonic_echo", "hop/grpc", "purchase/micro services?"]);
        assert_eq!(
            figures[1],
            BenchFigure { id: "hop/grpc".into(), mean_ns: 52_000.0, lower_ns: 51_000.0, upper_ns: 53_500.0 }
        );
    }

    #[test]
    fn no_criterion_directory_is_no_figures() {
        let missing = std::env::temp_dir().join(format!("archlab-criterion-missing-{}", rand::random::<u64>()));
        assert_eq!(read(&missing).expect("a missing directory is not an error"), Vec::new());
    }

    #[test]
    fn a_corrupt_estimates_file_is_an_error_naming_it() {
        let root = scratch();
        bench(&root, "hop/grpc", "new", "hop", "grpc", [1.0, 1.0, 1.0]);
        fs::write(root.join("hop/grpc/new/estimates.json"), "{").expect("corrupt it");
        let error = read(&root).expect_err("a corrupt file is an error");
        let _ = fs::remove_dir_all(&root);
        assert!(format!("{error:#}").contains("estimates.json"), "{error:#}");
    }
}
