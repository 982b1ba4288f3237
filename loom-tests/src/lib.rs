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
