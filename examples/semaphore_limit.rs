//! Limiting concurrent access with a semaphore: 12 threads share a "database" that
//! accepts at most 3 connections at once. Each waits at most 30 ms for a connection
//! (a timed acquire) and gives up otherwise, as a request with a deadline would.
//!
//! `cargo run --example semaphore_limit`

use atomkit::semaphore::Semaphore;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::Duration;

const CONNECTIONS: usize = 3;

fn main() {
    let pool = Arc::new(Semaphore::new(CONNECTIONS));
    let in_use = Arc::new(AtomicUsize::new(0));
    let peak = Arc::new(AtomicUsize::new(0));
    let clients: Vec<_> = (0..12)
        .map(|id| {
            let (pool, in_use, peak) = (pool.clone(), in_use.clone(), peak.clone());
            thread::spawn(
                move || match pool.acquire_timeout(Duration::from_millis(30)) {
                    Ok(_permit) => {
                        let now = in_use.fetch_add(1, Ordering::SeqCst) + 1;
                        peak.fetch_max(now, Ordering::SeqCst);
                        thread::sleep(Duration::from_millis(10)); // the query
                        in_use.fetch_sub(1, Ordering::SeqCst);
                        println!("client {id:2}: served");
                        true
                    } // `_permit` drops here: the connection goes back
                    Err(e) => {
                        println!("client {id:2}: gave up ({e})");
                        false
                    }
                },
            )
        })
        .collect();
    let served = clients
        .into_iter()
        .map(|c| c.join().unwrap())
        .filter(|&s| s)
        .count();
    let peak = peak.load(Ordering::SeqCst);
    assert!(peak <= CONNECTIONS);
    assert_eq!(pool.available_permits(), CONNECTIONS);
    println!("{served} of 12 served, at most {peak} connections at once");
}
