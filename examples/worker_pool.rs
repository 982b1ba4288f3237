//! The seeds' worker pool: a fixed set of workers on a bounded queue, backpressure
//! when the queue is full, retry with exponential backoff and jitter, panics turned
//! into results, and a graceful shutdown within a deadline.
//!
//! `cargo run --example worker_pool`

use atomkit::pool::{with_signal, Backoff, JobError, SubmitError, WorkerPool};
use std::time::{Duration, Instant};

/// A "request": most succeed after a little work, some panic (a bug in a handler).
fn handle(id: u32) -> u32 {
    std::thread::sleep(Duration::from_micros(200));
    if id % 50 == 49 {
        panic!("request {id}: malformed input");
    }
    id * 2
}

fn main() {
    let pool = WorkerPool::builder()
        .workers(4)
        .queue_capacity(16)
        .thread_name("handler")
        .build()
        .expect("4 workers, capacity 16");

    // 1. Backpressure without blocking: try first; if full, retry with backoff, and
    //    shed the request if the queue stays full.
    let mut handles = Vec::new();
    let mut shed = 0;
    for id in 0..400u32 {
        match pool.try_submit(move || handle(id)) {
            Ok(h) => handles.push((id, h)),
            Err(SubmitError::Full(job)) => {
                let backoff = Backoff::new(Duration::from_micros(100))
                    .cap(Duration::from_millis(5))
                    .jitter(0.5)
                    .max_attempts(6);
                match pool.submit_with_retry(job, backoff) {
                    Ok(h) => handles.push((id, h)),
                    Err(_) => shed += 1, // still full: drop the request (load shedding)
                }
            }
            Err(SubmitError::ShutDown(_)) => unreachable!("not shutting down yet"),
        }
    }

    // 2. Results, panics included: a panic is the job's result, the worker goes on.
    let (mut ok, mut panicked) = (0, 0);
    for (id, h) in handles {
        match h.join() {
            Ok(v) => {
                assert_eq!(v, id * 2);
                ok += 1;
            }
            Err(JobError::Panicked(p)) => {
                println!("job {id} panicked: {}", p.message().unwrap_or("?"));
                panicked += 1;
            }
            Err(e) => println!("job {id}: {e}"),
        }
    }
    println!("{ok} ok, {panicked} panicked, {shed} shed");

    // 3. A long job that checks the pool's cancellation signal between steps.
    let long = pool
        .submit(with_signal(|stop| {
            let mut steps = 0u32;
            while !stop.is_closed() && steps < 1_000 {
                std::thread::sleep(Duration::from_millis(1));
                steps += 1;
            }
            steps
        }))
        .unwrap();

    let m = pool.metrics();
    println!(
        "metrics: completed {}, panicked {}, rejected {}, mean wait {:?}, mean run {:?}",
        m.completed,
        m.panicked,
        m.rejected,
        m.total_wait / (m.completed + m.panicked).max(1) as u32,
        m.total_run / (m.completed + m.panicked).max(1) as u32,
    );

    // 4. Graceful shutdown with a deadline: the long job does not finish in 20 ms, so
    //    the pool closes its signal and reports it as still running.
    match pool.shutdown(Instant::now() + Duration::from_millis(20)) {
        Ok(r) => println!("shut down cleanly: {r:?}"),
        Err(e) => println!("{e}: {:?}", e.report()),
    }
    println!("the long job stopped after {} steps", long.join().unwrap());
}
