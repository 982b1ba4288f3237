//! loom and shuttle models of atomkit's primitives live in `tests/`; this crate only
//! holds what they share. Build it with `--cfg atomkit_loom --cfg crossbeam_loom` (the
//! `loom_*` models) or `--cfg atomkit_shuttle` (the `shuttle_*` tests): see
//! `docs/TESTING.md`.

/// Iterations for a shuttle test: `ATOMKIT_SHUTTLE_ITERS` if set (the long runs of
/// `cargo xtask shuttle --long`), else `default`.
pub fn shuttle_iters(default: usize) -> usize {
    std::env::var("ATOMKIT_SHUTTLE_ITERS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// Runs the loom model `f` at preemption bound `bound` (unless `LOOM_MAX_PREEMPTIONS`
/// sets one: `cargo xtask loom --long`), with room for 50,000 branches per execution,
/// and prints how many executions it explored.
#[cfg(atomkit_loom)]
pub fn loom_model(bound: usize, f: impl Fn() + Sync + Send + 'static) {
    use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};
    let mut b = loom::model::Builder::new();
    if b.preemption_bound.is_none() {
        b.preemption_bound = Some(bound);
    }
    b.max_branches = 50_000;
    let runs = std::sync::Arc::new(AtomicUsize::new(0));
    let r = runs.clone();
    b.check(move || {
        r.fetch_add(1, Relaxed);
        f()
    });
    eprintln!("{} executions", runs.load(Relaxed));
}
