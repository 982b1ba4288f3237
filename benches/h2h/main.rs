//! `cargo xtask bench`: atomkit against its peers, round-robin in one process, printing a
//! table of median per-round ratios (peer time / atomkit time; above 1 means atomkit is
//! faster).
//!
//! Run directly: `cargo bench --bench h2h -- [--full] [--rounds N] [--filter TEXT] [--out FILE]`.

// Bench modules share items with `pub` across this binary only.
#![allow(unreachable_pub)]

mod channel;
mod counter_map;
mod deque;
mod harness;
mod pool;
mod queue;
mod semaphore;
mod signal;

use harness::Scale;

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let full = args.iter().any(|a| a == "--full");
    let mut rounds = if full { 11 } else { 7 };
    let mut filter: Option<String> = None;
    let mut out: Option<String> = None;
    let mut it = args.iter();
    while let Some(a) = it.next() {
        match a.as_str() {
            "--rounds" => rounds = it.next().and_then(|v| v.parse().ok()).expect("--rounds N"),
            "--filter" => filter = it.next().cloned(),
            "--out" => out = it.next().cloned(),
            _ => {}
        }
    }
    let scale = Scale {
        divisor: if full { 1 } else { 10 },
    };
    let mut scenarios = Vec::new();
    scenarios.extend(counter_map::scenarios(scale));
    scenarios.extend(signal::scenarios(scale));
    scenarios.extend(deque::scenarios(scale));
    scenarios.extend(queue::scenarios(scale));
    scenarios.extend(semaphore::scenarios(scale));
    scenarios.extend(pool::scenarios(scale));
    scenarios.extend(channel::scenarios(scale));
    if let Some(f) = &filter {
        scenarios.retain(|s| s.group.contains(f.as_str()) || s.name.contains(f.as_str()));
    }
    eprintln!(
        "h2h: {} scenarios, {} rounds each, {} mode, {} cores",
        scenarios.len(),
        rounds,
        if full { "full" } else { "quick" },
        std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1)
    );
    let rows = harness::run(scenarios, rounds, |s| eprintln!("  running {s}"));
    let table = harness::markdown(&rows);
    println!("{table}");
    if let Some(path) = out {
        std::fs::write(&path, &table).expect("write --out file");
        eprintln!("h2h: table written to {path}");
    }
}
