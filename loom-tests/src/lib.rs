//! loom and shuttle models of atomkit's primitives live in `tests/`; this crate has
//! no code of its own. Build it only with `--cfg atomkit_loom --cfg crossbeam_loom`
//! (the `loom_*` models) or `--cfg atomkit_shuttle` (the `shuttle_*` tests): see
//! `docs/TESTING.md`.
