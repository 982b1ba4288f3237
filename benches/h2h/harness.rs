//! The head-to-head harness: contenders of one scenario run round-robin in one process,
//! and the report is the median of per-round ratios, next to a placement probe.
//!
//! On a small, shared machine the two cores drift between near and far placements, which
//! moves multi-thread timings by several times between runs. Running atomkit and every
//! peer in turn, round after round, and taking the ratio within each round cancels most
//! of that drift; the probe (a cross-core ping-pong) records what the placement was.

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// How big a run is: `quick` scales every workload down.
#[derive(Clone, Copy, Debug)]
pub struct Scale {
    /// Divisor applied to full-size counts.
    pub divisor: u64,
}

impl Scale {
    /// A count of `full` items at full size, scaled down in quick mode (never below 1).
    pub fn n(&self, full: u64) -> u64 {
        (full / self.divisor).max(1)
    }
}

/// One implementation of a scenario's workload.
pub struct Contender {
    /// The peer's name ("atomkit" first in every scenario).
    pub name: &'static str,
    run: Box<dyn FnMut() -> Duration>,
}

impl Contender {
    /// `run` performs the whole workload once and returns how long it took.
    pub fn new(name: &'static str, run: impl FnMut() -> Duration + 'static) -> Self {
        Contender {
            name,
            run: Box::new(run),
        }
    }
}

/// One workload, run by every contender.
pub struct Scenario {
    /// The primitive family, e.g. "signal".
    pub group: &'static str,
    /// The workload, e.g. "close→wake, 8 waiters".
    pub name: String,
    /// What one run does, for the ns/op column (e.g. 2_000_000 items); 1 if not per-op.
    pub ops: u64,
    /// atomkit first, then its peers.
    pub contenders: Vec<Contender>,
}

impl Scenario {
    /// A scenario whose contenders each do `ops` operations per run.
    pub fn new(
        group: &'static str,
        name: impl Into<String>,
        ops: u64,
        contenders: Vec<Contender>,
    ) -> Self {
        Scenario {
            group,
            name: name.into(),
            ops,
            contenders,
        }
    }
}

/// Spins until `flag` reads `want`, yielding now and then so that an overloaded machine
/// (more runnable threads than cores) still lets the partner run.
fn await_value(flag: &AtomicU32, want: u32) {
    let mut spins = 0u32;
    while flag.load(Ordering::Acquire) != want {
        spins += 1;
        if spins % 1024 == 0 {
            std::thread::yield_now();
        } else {
            std::hint::spin_loop();
        }
    }
}

/// A cross-core ping-pong round trip, in ns (the mean over up to 2,000 trips, cut off
/// after 0.5 s): tells how far apart the two cores the scheduler gave us are.
pub fn placement_probe() -> f64 {
    let flag = Arc::new(AtomicU32::new(0));
    let f2 = flag.clone();
    const TRIPS: u32 = 2_000;
    let t = std::thread::spawn(move || {
        for i in 0..TRIPS {
            await_value(&f2, 2 * i + 1);
            f2.store(2 * i + 2, Ordering::Release);
        }
    });
    let start = Instant::now();
    let deadline = start + Duration::from_millis(500);
    // Trips completed within the time budget; the rest are finished untimed below.
    let mut done = TRIPS;
    for i in 0..TRIPS {
        flag.store(2 * i + 1, Ordering::Release);
        await_value(&flag, 2 * i + 2);
        if Instant::now() > deadline {
            done = i + 1;
            break;
        }
    }
    let elapsed = start.elapsed();
    // The partner goes through every trip: finish the ones we skipped.
    for i in done..TRIPS {
        flag.store(2 * i + 1, Ordering::Release);
        await_value(&flag, 2 * i + 2);
    }
    t.join().unwrap();
    elapsed.as_nanos() as f64 / done.max(1) as f64
}

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    let n = v.len();
    if n == 0 {
        return f64::NAN;
    }
    if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    }
}

/// One row of the report.
pub struct Row {
    pub group: &'static str,
    pub scenario: String,
    pub peer: &'static str,
    /// Median time per op of this contender, ns.
    pub ns_per_op: f64,
    /// Median over rounds of peer_time / atomkit_time (> 1: atomkit faster). 1 for atomkit.
    pub ratio: f64,
    /// Smallest and largest per-round ratio.
    pub ratio_range: (f64, f64),
    /// Median placement probe over the rounds, ns.
    pub probe_ns: f64,
}

/// Runs each scenario round-robin for `rounds` rounds (after one warm-up round).
pub fn run(scenarios: Vec<Scenario>, rounds: usize, mut progress: impl FnMut(&str)) -> Vec<Row> {
    let mut rows = Vec::new();
    for mut sc in scenarios {
        progress(&format!("{} / {}", sc.group, sc.name));
        let k = sc.contenders.len();
        let mut times: Vec<Vec<f64>> = vec![Vec::new(); k];
        let mut probes = Vec::new();
        for c in sc.contenders.iter_mut() {
            let _ = (c.run)(); // warm-up
        }
        for round in 0..rounds {
            probes.push(placement_probe());
            // Rotate the starting contender so no one always runs first.
            for j in 0..k {
                let i = (round + j) % k;
                let d = (sc.contenders[i].run)();
                times[i].push(d.as_nanos() as f64);
            }
        }
        let probe = median(&mut probes.clone());
        for i in 0..k {
            let mut ratios: Vec<f64> = (0..rounds).map(|r| times[i][r] / times[0][r]).collect();
            let lo = ratios.iter().cloned().fold(f64::INFINITY, f64::min);
            let hi = ratios.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
            let ratio = median(&mut ratios);
            let ns = median(&mut times[i].clone()) / sc.ops.max(1) as f64;
            rows.push(Row {
                group: sc.group,
                scenario: sc.name.clone(),
                peer: sc.contenders[i].name,
                ns_per_op: ns,
                ratio,
                ratio_range: (lo, hi),
                probe_ns: probe,
            });
        }
    }
    rows
}

/// The report as a Markdown table.
pub fn markdown(rows: &[Row]) -> String {
    let mut out = String::from(
        "| group | scenario | contender | median ns/op | peer / atomkit (median) | range over rounds | probe ns |\n|---|---|---|---:|---:|---|---:|\n",
    );
    for r in rows {
        let ratio = if r.peer == "atomkit" {
            "1.00 (base)".to_string()
        } else {
            format!("{:.2}x", r.ratio)
        };
        out.push_str(&format!(
            "| {} | {} | {} | {:.1} | {} | {:.2}–{:.2} | {:.0} |\n",
            r.group,
            r.scenario,
            r.peer,
            r.ns_per_op,
            ratio,
            r.ratio_range.0,
            r.ratio_range.1,
            r.probe_ns
        ));
    }
    out
}
