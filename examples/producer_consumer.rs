//! Producer / consumer: a bounded channel of work, several consumers, and a results
//! channel back to the producer. Closing the work channel is how the producer says
//! "no more"; the consumers drain it and exit, which closes the results channel.
//!
//! `cargo run --example producer_consumer`

use atomkit::channel::bounded;
use std::thread;

fn main() {
    let (work_tx, work_rx) = bounded::<u64>(32);
    let (result_tx, result_rx) = bounded::<(usize, u64, u64)>(32);

    let consumers: Vec<_> = (0..3)
        .map(|id| {
            let (work_rx, result_tx) = (work_rx.clone(), result_tx.clone());
            thread::spawn(move || {
                // `iter` ends when the channel is closed and drained.
                for n in work_rx.iter() {
                    let collatz_steps = {
                        let (mut x, mut steps) = (n, 0u64);
                        while x > 1 {
                            x = if x % 2 == 0 { x / 2 } else { 3 * x + 1 };
                            steps += 1;
                        }
                        steps
                    };
                    result_tx.send((id, n, collatz_steps)).unwrap();
                }
            })
        })
        .collect();
    // Only the consumers hold senders of results now: when they all exit, the results
    // channel closes and the loop below ends.
    drop(result_tx);
    drop(work_rx);

    let producer = thread::spawn(move || {
        for n in 1..=1_000u64 {
            work_tx.send(n).unwrap(); // blocks while 32 items wait: backpressure
        }
        // Dropping the last sender closes the channel.
    });

    let mut per_consumer = [0usize; 3];
    let mut longest = (0u64, 0u64);
    for (id, n, steps) in result_rx.iter() {
        per_consumer[id] += 1;
        if steps > longest.1 {
            longest = (n, steps);
        }
    }
    producer.join().unwrap();
    for c in consumers {
        c.join().unwrap();
    }
    assert_eq!(per_consumer.iter().sum::<usize>(), 1_000);
    println!("results per consumer: {per_consumer:?}");
    println!(
        "longest Collatz chain below 1000: {} ({} steps)",
        longest.0, longest.1
    );
}
