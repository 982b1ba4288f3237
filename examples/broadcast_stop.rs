//! Stopping many workers by closing one `Signal` — Go's `close(done)`.
//!
//! A root signal stands for the whole service; each worker gets a child, and each
//! worker's request gets a grandchild with its own timeout. Closing the root stops
//! everything at once; a slow request is cut off by its own deadline without
//! disturbing its worker.
//!
//! `cargo run --example broadcast_stop`

use atomkit::signal::{Cause, Signal};
use std::thread;
use std::time::Duration;

fn main() {
    let shutdown = Signal::new();
    let workers: Vec<_> = (0..4)
        .map(|id| {
            let done = shutdown.child();
            thread::spawn(move || {
                let mut served = 0u32;
                let mut timed_out = 0u32;
                let mut attempt = 0u32;
                while !done.is_closed() {
                    attempt += 1;
                    // Each request may take at most 5 ms, and stops early on shutdown.
                    let request = done.child_with_timeout(Duration::from_millis(5));
                    let work = Duration::from_millis(if attempt % 4 == 0 { 20 } else { 1 });
                    if request.wait_timeout(work) {
                        if request.cause() == Some(Cause::DeadlineExceeded) {
                            timed_out += 1;
                        }
                    } else {
                        served += 1;
                    }
                }
                println!("worker {id}: served {served}, cut off by their deadline {timed_out}");
                (served, timed_out)
            })
        })
        .collect();

    thread::sleep(Duration::from_millis(100));
    println!("closing the root signal");
    assert!(shutdown.close());
    let total: u32 = workers.into_iter().map(|w| w.join().unwrap().0).sum();
    println!("all workers stopped; {total} requests served");
}
