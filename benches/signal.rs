//! Criterion deep-dive benches for `Signal` (the ratio table comes from `benches/h2h`).
//!
//! `cargo bench --bench signal`
#![allow(missing_docs)]

use atomkit::signal::Signal;
use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion};
use std::hint::black_box;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// The three ways to ask "closed yet?", behind one trait so every scenario runs each.
trait Flag {
    const NAME: &'static str;
    fn new_flag() -> Self;
    fn close(&self);
    fn is_closed(&self) -> bool;
}

impl Flag for Signal {
    const NAME: &'static str = "atomkit";
    fn new_flag() -> Self {
        Signal::new()
    }
    fn close(&self) {
        Signal::close(self);
    }
    fn is_closed(&self) -> bool {
        Signal::is_closed(self)
    }
}

impl Flag for CancellationToken {
    const NAME: &'static str = "tokio-util";
    fn new_flag() -> Self {
        CancellationToken::new()
    }
    fn close(&self) {
        self.cancel();
    }
    fn is_closed(&self) -> bool {
        self.is_cancelled()
    }
}

impl Flag for AtomicBool {
    const NAME: &'static str = "AtomicBool";
    fn new_flag() -> Self {
        AtomicBool::new(false)
    }
    fn close(&self) {
        self.store(true, Ordering::Release);
    }
    fn is_closed(&self) -> bool {
        self.load(Ordering::Acquire)
    }
}

fn is_closed_of<F: Flag>(c: &mut Criterion, closed: bool) {
    let f = F::new_flag();
    if closed {
        f.close();
    }
    let group = if closed {
        "is_closed/closed"
    } else {
        "is_closed/open"
    };
    c.bench_with_input(BenchmarkId::new(group, F::NAME), &f, |b, f| {
        b.iter(|| black_box(f).is_closed())
    });
}

fn is_closed(c: &mut Criterion) {
    for closed in [false, true] {
        is_closed_of::<Signal>(c, closed);
        is_closed_of::<CancellationToken>(c, closed);
        is_closed_of::<AtomicBool>(c, closed);
    }
}

fn new_child_drop(c: &mut Criterion) {
    let root = Signal::new();
    c.bench_function("child+drop/atomkit", |b| {
        b.iter(|| drop(black_box(root.child())))
    });
    let tok = CancellationToken::new();
    c.bench_function("child+drop/tokio-util", |b| {
        b.iter(|| drop(black_box(tok.child_token())))
    });
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .sample_size(20)
        .warm_up_time(Duration::from_millis(300))
        .measurement_time(Duration::from_secs(1));
    targets = is_closed, new_child_drop
}
criterion_main!(benches);
