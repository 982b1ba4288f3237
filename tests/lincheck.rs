//! The linearizability checker's own tests (the checker lives in `support/` so every
//! primitive's tests and shuttle models can include it).

#[path = "support/lincheck.rs"]
mod lincheck;
