//! Turning worker results into a summary: throughput, percentiles, fairness, verification;
//! printed for humans, as JSON, or drawn as an SVG chart.

use std::io::Write;
use std::path::Path;
use std::time::Duration;

use hdrhistogram::Histogram;
use serde_json::json;

use super::workload::WorkerResult;
use super::{BenchArgs, System};

/// One timed run of W workers.
pub struct Run {
    pub elapsed: Duration,
    pub counter_delta: u64,
    pub counter_sum: u64,
    /// Ops acknowledged by workers since the sessions were prepared (counters started at 0).
    pub expected_sum: u64,
    pub corrupt: u64,
    pub leftover: u64,
    pub results: Vec<WorkerResult>,
}

/// Percentiles of a histogram, in microseconds.
#[derive(Debug, Clone, Copy, Default)]
pub struct Percentiles {
    pub p50: u64,
    pub p90: u64,
    pub p99: u64,
    pub p999: u64,
    pub max: u64,
}

impl Percentiles {
    fn of(h: &Histogram<u64>) -> Self {
        Percentiles {
            p50: h.value_at_quantile(0.50),
            p90: h.value_at_quantile(0.90),
            p99: h.value_at_quantile(0.99),
            p999: h.value_at_quantile(0.999),
            max: h.max(),
        }
    }
}

/// The rounds of one system at one worker count, summarised.
pub struct Summary {
    pub system: System,
    pub workers: usize,
    /// Median over rounds.
    pub ops_per_s: f64,
    pub op: Percentiles,
    pub wait: Percentiles,
    pub ops: u64,
    pub errors: u64,
    pub first_error: Option<String>,
    /// What the counters went up by in this step's rounds (to compare with `ops`).
    pub counter_delta: u64,
    /// All counters after the step, and the ops acknowledged since the sessions were prepared
    /// (they include the earlier steps of a `--ladder`).
    pub counter_sum: u64,
    pub expected_sum: u64,
    pub lost_updates: u64,
    pub corrupt: u64,
    pub leftover: u64,
    pub acquisitions: [u64; 4],
    /// Smallest and largest share of ops a worker got while all were running (fair: 1/W).
    pub min_share: f64,
    pub max_share: f64,
}

impl Summary {
    pub fn new(system: System, workers: usize, runs: &[Run]) -> Self {
        let mut op =
            Histogram::<u64>::new_with_bounds(1, 600_000_000, 3).expect("valid histogram bounds");
        let mut wait =
            Histogram::<u64>::new_with_bounds(1, 600_000_000, 3).expect("valid histogram bounds");
        let mut rates = Vec::new();
        let mut s = Summary {
            system,
            workers,
            ops_per_s: 0.0,
            op: Percentiles::default(),
            wait: Percentiles::default(),
            ops: 0,
            errors: 0,
            first_error: None,
            counter_delta: 0,
            counter_sum: 0,
            expected_sum: 0,
            lost_updates: 0,
            corrupt: 0,
            leftover: 0,
            acquisitions: [0; 4],
            min_share: 1.0,
            max_share: 0.0,
        };
        for run in runs {
            let ops: u64 = run.results.iter().map(|r| r.ops).sum();
            rates.push(ops as f64 / run.elapsed.as_secs_f64().max(1e-9));
            s.ops += ops;
            s.counter_delta += run.counter_delta;
            s.lost_updates += ops.saturating_sub(run.counter_delta);
            s.counter_sum = run.counter_sum;
            s.expected_sum = run.expected_sum;
            s.corrupt = s.corrupt.max(run.corrupt);
            s.leftover = s.leftover.max(run.leftover);
            for r in &run.results {
                s.errors += r.errors;
                if s.first_error.is_none() {
                    s.first_error.clone_from(&r.first_error);
                }
                for &(v, n) in &r.op_us {
                    let _ = op.record_n(v, n);
                }
                for &(v, n) in &r.wait_us {
                    let _ = wait.record_n(v, n);
                }
                s.acquisitions[0] += r.immediate;
                s.acquisitions[1] += r.local_queue;
                s.acquisitions[2] += r.event;
                s.acquisitions[3] += r.poll;
            }
            if let Some((lo, hi)) = shares(&run.results) {
                s.min_share = s.min_share.min(lo);
                s.max_share = s.max_share.max(hi);
            }
        }
        rates.sort_by(f64::total_cmp);
        s.ops_per_s = rates.get(rates.len() / 2).copied().unwrap_or(0.0);
        s.op = Percentiles::of(&op);
        s.wait = Percentiles::of(&wait);
        s
    }

    /// Why this summary fails verification, if it does.
    pub fn problem(&self) -> Option<String> {
        let mut p = Vec::new();
        if self.counter_sum != self.expected_sum {
            p.push(format!(
                "counters add up to {}, but {} ops were acknowledged",
                self.counter_sum, self.expected_sum
            ));
        }
        if self.lost_updates > 0 {
            p.push(format!("{} lost updates", self.lost_updates));
        }
        if self.corrupt > 0 {
            p.push(format!("{} corrupt sessions", self.corrupt));
        }
        if self.leftover > 0 {
            p.push(format!("{} leftover temporary files", self.leftover));
        }
        if self.errors > 0 {
            p.push(format!(
                "{} failed ops (first: {})",
                self.errors,
                self.first_error.as_deref().unwrap_or("?")
            ));
        }
        (!p.is_empty()).then(|| p.join(", "))
    }
}

/// Each worker's share of the ops done up to the moment the first worker finished.
fn shares(results: &[WorkerResult]) -> Option<(f64, f64)> {
    if results.len() < 2 {
        return None;
    }
    let first_done = results
        .iter()
        .map(|r| r.progress.len())
        .min()?
        .checked_sub(1)?;
    let done: Vec<u64> = results
        .iter()
        .map(|r| r.progress.get(first_done).copied().unwrap_or(0))
        .collect();
    let total: u64 = done.iter().sum();
    if total == 0 {
        return None;
    }
    let lo = done.iter().copied().min()? as f64 / total as f64;
    let hi = done.iter().copied().max()? as f64 / total as f64;
    Some((lo, hi))
}

fn summary_json(s: &Summary) -> serde_json::Value {
    json!({
        "system": s.system.name(),
        "workers": s.workers,
        "ops_per_s": s.ops_per_s.round(),
        "p50_us": s.op.p50,
        "p90_us": s.op.p90,
        "p99_us": s.op.p99,
        "p999_us": s.op.p999,
        "max_us": s.op.max,
        "wait_p50_us": s.wait.p50,
        "wait_p99_us": s.wait.p99,
        "wait_max_us": s.wait.max,
        "lost_updates": s.lost_updates,
        "corrupt": s.corrupt,
        "errors": s.errors,
        "leftover_files": s.leftover,
        "counter_sum": s.counter_sum,
        "expected_sum": s.expected_sum,
        "acquired_immediately": s.acquisitions[0],
        "acquired_after_local_queue": s.acquisitions[1],
        "acquired_after_event": s.acquisitions[2],
        "acquired_at_poll": s.acquisitions[3],
        // Shares need at least two workers.
        "min_share": (s.workers > 1).then_some(s.min_share),
        "max_share": (s.workers > 1).then_some(s.max_share),
    })
}

/// The systems of one step.
struct Parts<'a> {
    /// The primary store (the first).
    store: &'a Summary,
    /// The other store, with `--backend both`.
    other: Option<&'a Summary>,
    /// The two floors, with `--baseline`.
    floor: Option<&'a Summary>,
    in_place: Option<&'a Summary>,
}

fn parts(step: &[Summary]) -> Parts<'_> {
    let is_floor = |s: &&Summary| matches!(s.system, System::Floor | System::InPlace);
    let stores: Vec<&Summary> = step.iter().filter(|s| !is_floor(s)).collect();
    let find = |system| step.iter().find(|s| s.system == system);
    Parts {
        store: stores[0],
        other: stores.get(1).copied(),
        floor: find(System::Floor),
        in_place: find(System::InPlace),
    }
}

fn ratio(a: &Summary, b: &Summary) -> f64 {
    a.ops_per_s / b.ops_per_s.max(1e-9)
}

/// One JSON line: the primary store's figures, plus the other store's (`redis`) and the
/// floors' (`baseline`: temporary file + rename; `in_place`) with their ratios.
pub fn json_line(
    out: &mut impl Write,
    a: &BenchArgs,
    rounds: usize,
    step: &[Summary],
) -> std::io::Result<()> {
    let Parts {
        store,
        other,
        floor,
        in_place,
    } = parts(step);
    let mut v = summary_json(store);
    v["ops"] = json!(a.ops);
    v["sessions"] = json!(a.sessions);
    v["mode"] = json!(format!("{:?}", a.mode).to_lowercase());
    v["hold_us"] = json!(a.hold_us);
    v["payload"] = json!(a.payload);
    v["fsync"] = json!(a.fsync);
    v["threads"] = json!(a.threads);
    v["rename_check_ins"] = json!(a.rename_check_ins);
    v["rounds"] = json!(rounds);
    if let Some(f) = floor {
        v["baseline"] = summary_json(f);
        v["ratio"] = json!(ratio(store, f));
    }
    if let Some(f) = in_place {
        v["in_place"] = summary_json(f);
        v["in_place_ratio"] = json!(ratio(store, f));
    }
    if let Some(o) = other {
        v[o.system.name()] = summary_json(o);
        v[format!("{}_ratio", o.system.name())] = json!(ratio(o, store));
    }
    super::super::output::json_line(out, &v)
}

/// The run's settings, after the worker count: "processes x 2000 ops, hot: all on one session;
/// hold 0 us, payload 1024 B, fsync off, 3 round(s)".
fn settings(a: &BenchArgs, rounds: usize) -> String {
    let session_desc = match a.mode {
        super::Mode::Hot => "hot: all on one session".to_string(),
        m => format!(
            "{} over {} sessions",
            format!("{m:?}").to_lowercase(),
            a.sessions
        ),
    };
    format!(
        "{} x {} ops, {session_desc}; hold {} us, payload {} B, fsync {}, {rounds} round(s){}",
        if a.threads { "threads" } else { "processes" },
        a.ops,
        a.hold_us,
        a.payload,
        if a.fsync == 1 { "on" } else { "off" },
        if a.rename_check_ins {
            "; check-ins by rename"
        } else {
            ""
        },
    )
}

/// The report for people.
pub fn human(
    out: &mut impl Write,
    a: &BenchArgs,
    rounds: usize,
    step: &[Summary],
) -> std::io::Result<()> {
    let Parts {
        store,
        other,
        floor,
        in_place,
    } = parts(step);
    writeln!(out, "{} {}", store.workers, settings(a, rounds))?;
    writeln!(
        out,
        "  {:<11} {:>9}   {:>7} {:>7} {:>7} {:>7} {:>8}   (op latency, us)",
        "system", "ops/s", "p50", "p90", "p99", "p99.9", "max"
    )?;
    for s in step {
        writeln!(
            out,
            "  {:<11} {:>9.0}   {:>7} {:>7} {:>7} {:>7} {:>8}",
            s.system.name(),
            s.ops_per_s,
            s.op.p50,
            s.op.p90,
            s.op.p99,
            s.op.p999,
            s.op.max
        )?;
    }
    for f in [floor, in_place].into_iter().flatten() {
        for s in std::iter::once(store).chain(other) {
            let (name, detail) = if f.system == System::Floor {
                let waits = format!(
                    "wait p99 {} us vs {} us, max {} us vs {} us",
                    s.wait.p99, f.wait.p99, s.wait.max, f.wait.max
                );
                ("floor", waits)
            } else {
                (
                    "in-place floor",
                    "not crash-atomic: the physical floor".to_owned(),
                )
            };
            writeln!(
                out,
                "  throughput ratio {} / {name}: {:.2}   ({detail})",
                s.system.name(),
                ratio(s, f),
            )?;
        }
    }
    if let Some(o) = other {
        writeln!(
            out,
            "  throughput ratio {} / {}: {:.2}",
            o.system.name(),
            store.system.name(),
            ratio(o, store)
        )?;
    }
    for s in std::iter::once(store).chain(other) {
        let name = s.system.name();
        writeln!(
            out,
            "  {name} lock wait (us): p50 {}, p90 {}, p99 {}, p99.9 {}, max {}",
            s.wait.p50, s.wait.p90, s.wait.p99, s.wait.p999, s.wait.max
        )?;
        let [immediate, local, event, poll] = s.acquisitions;
        writeln!(
            out,
            "  {name} locks taken: at once {immediate}, after a thread of the same process {local}, \
             woken by a release event {event}, at a poll {poll}"
        )?;
        if s.workers > 1 {
            writeln!(
                out,
                "  {name} fairness: worker shares while all ran {:.3} to {:.3} (fair: {:.3})",
                s.min_share,
                s.max_share,
                1.0 / s.workers as f64
            )?;
        }
    }
    for s in step {
        // This step's own count; after earlier `--ladder` steps, also the running total that
        // verification compares (a lost or a phantom update anywhere shows there).
        let running = if s.counter_sum == s.counter_delta && s.expected_sum == s.ops {
            String::new()
        } else {
            format!(
                " ({} of {} since the first step)",
                s.counter_sum, s.expected_sum
            )
        };
        writeln!(
            out,
            "  verified {}: counters {} of {} expected{running}, {} lost, {} corrupt, {} failed ops, {} leftover files{}",
            s.system.name(),
            s.counter_delta,
            s.ops,
            s.lost_updates,
            s.corrupt,
            s.errors,
            s.leftover,
            if s.problem().is_none() {
                " - ok"
            } else {
                " - FAILED"
            }
        )?;
    }
    writeln!(out)
}

/// Throughput and p99 against workers, one line per system, under a title with the run's
/// settings.
pub fn plot(
    path: &Path,
    a: &BenchArgs,
    rounds: usize,
    steps: &[Vec<Summary>],
) -> Result<(), String> {
    use plotters::prelude::*;
    let root = SVGBackend::new(path, (900, 450)).into_drawing_area();
    root.fill(&WHITE).map_err(|e| e.to_string())?;
    let ladder: Vec<String> = a.ladder.iter().map(ToString::to_string).collect();
    let title = format!(
        "sessiondir bench --ladder {}: {}",
        ladder.join(","),
        settings(a, rounds)
    );
    let root = root
        .titled(&title, ("sans-serif", 14))
        .map_err(|e| e.to_string())?;
    let (left, right) = root.split_horizontally(450);
    chart(&left, "throughput (ops/s)", steps, |s| s.ops_per_s)?;
    chart(&right, "op latency p99 (us)", steps, |s| s.op.p99 as f64)?;
    root.present().map_err(|e| e.to_string())
}

/// One line chart of `metric` against workers: sessiondir in blue, Redis in green, the
/// rename floor in red, the in-place floor in magenta.
fn chart<DB: plotters::prelude::DrawingBackend>(
    area: &plotters::prelude::DrawingArea<DB, plotters::coord::Shift>,
    title: &str,
    steps: &[Vec<Summary>],
    metric: fn(&Summary) -> f64,
) -> Result<(), String> {
    use plotters::prelude::*;
    let max_w = steps.iter().flatten().map(|s| s.workers).max().unwrap_or(1) as f64;
    let y_max = steps.iter().flatten().map(metric).fold(1.0, f64::max) * 1.1;
    // Whole worker counts only: at most one tick per worker (plotters then steps by 1, 2, 5,
    // 10 ...), never a tick at 0.5 or 1.5.
    let x_ticks = (max_w as usize + 2).min(18);
    let mut chart = ChartBuilder::on(area)
        .caption(title, ("sans-serif", 18))
        .margin(12)
        .x_label_area_size(32)
        .y_label_area_size(60)
        .build_cartesian_2d(0.0..max_w + 1.0, 0.0..y_max)
        .map_err(|e| e.to_string())?;
    chart
        .configure_mesh()
        .x_labels(x_ticks)
        .x_label_formatter(&|w| format!("{w:.0}"))
        .x_desc("workers")
        .draw()
        .map_err(|e| e.to_string())?;
    for (system, color) in [
        (System::Store, BLUE),
        (System::Redis, GREEN),
        (System::Floor, RED),
        (System::InPlace, MAGENTA),
    ] {
        let points: Vec<(f64, f64)> = steps
            .iter()
            .flatten()
            .filter(|s| s.system == system)
            .map(|s| (s.workers as f64, metric(s)))
            .collect();
        if points.is_empty() {
            continue;
        }
        chart
            .draw_series(LineSeries::new(points.clone(), color.stroke_width(2)))
            .map_err(|e| e.to_string())?
            .label(system.name())
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 16, y)], color));
        chart
            .draw_series(
                points
                    .into_iter()
                    .map(|p| Circle::new(p, 3, color.filled())),
            )
            .map_err(|e| e.to_string())?;
    }
    chart
        .configure_series_labels()
        .border_style(BLACK)
        .draw()
        .map_err(|e| e.to_string())
}
