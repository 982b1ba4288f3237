//! Per-user request counting with a periodic dumper: the pattern of a Go service's
//! `UserCounters` (a mutex'd map of counters) plus its `CounterDumper` goroutine on a
//! ticker, stopped by `close(done)`.
//!
//! Worker threads count requests per user; a dumper wakes every `PERIOD`, takes the
//! counts since its last dump with `snapshot_and_reset` (exact: no request is lost or
//! counted twice between two dumps) and prints the table. Closing the `Signal` stops
//! the workers and the dumper, which prints a final dump on its way out.
//!
//! Run: `cargo run --release --example user_counters`

use atomkit::counter_map::CounterMap;
use atomkit::signal::Signal;
use std::sync::Arc;
use std::thread;
use std::time::Duration;

const PERIOD: Duration = Duration::from_millis(100);
const USERS: [&str; 6] = ["alice", "bob", "carol", "dave", "erin", "frank"];

fn print_table(title: &str, counts: &std::collections::HashMap<String, u64>) -> u64 {
    let mut rows: Vec<_> = counts.iter().filter(|(_, &n)| n > 0).collect();
    rows.sort_by(|a, b| b.1.cmp(a.1).then(a.0.cmp(b.0)));
    println!("{title}");
    let mut total = 0;
    for (user, n) in rows {
        println!("  {user:<8} {n:>10}");
        total += n;
    }
    println!("  {:<8} {total:>10}", "total");
    total
}

fn main() {
    let counters: Arc<CounterMap<String>> = Arc::new(CounterMap::new());
    let done = Signal::new();

    // Request handlers: each counts its requests per user, skewed towards "alice".
    let workers: Vec<_> = (0..4u64)
        .map(|w| {
            let counters = Arc::clone(&counters);
            let done = done.child();
            thread::spawn(move || {
                let mut served = 0u64;
                let mut x = 0x9E37_79B9_7F4A_7C15u64 ^ w;
                while !done.is_closed() {
                    x ^= x << 13;
                    x ^= x >> 7;
                    x ^= x << 17;
                    let r = (x % 100) as usize;
                    let user = if r < 50 {
                        USERS[0]
                    } else {
                        USERS[r % USERS.len()]
                    };
                    counters.inc(user); // &str: no allocation once the user is known
                    served += 1;
                    if served % 1024 == 0 {
                        thread::yield_now();
                    }
                }
                served
            })
        })
        .collect();

    // The dumper: every PERIOD, print the counts since the previous dump.
    let dumper = {
        let counters = Arc::clone(&counters);
        let done = done.child();
        thread::spawn(move || {
            let mut reported = 0u64;
            let mut tick = 0;
            // `wait_timeout` returns true once the signal is closed.
            while !done.wait_timeout(PERIOD) {
                tick += 1;
                reported += print_table(&format!("dump {tick}"), &counters.snapshot_and_reset());
            }
            reported += print_table("final dump", &counters.snapshot_and_reset());
            reported
        })
    };

    thread::sleep(PERIOD * 5 + PERIOD / 2);
    done.close();
    let served: u64 = workers.into_iter().map(|w| w.join().unwrap()).sum();
    let reported = dumper.join().unwrap();
    // The final dump ran after the workers saw the close, but a worker may still have
    // been counting; take what is left.
    let left: u64 = counters.snapshot_and_reset().values().sum();
    println!("served {served}, reported {}", reported + left);
    assert_eq!(
        served,
        reported + left,
        "every request reported exactly once"
    );
}
