//! The channel against crossbeam-channel, flume, kanal and std's `sync_channel`:
//! 2,000,000 u64 through capacity 1024 and 16 with 1p1c, 2p2c, 4p4c and 8p8c
//! (4p4c and 8p8c oversubscribe a 2-core machine), all with blocking `send`/`recv`
//! (each peer's own waiting); the uncontended `try_send`+`try_recv` pair; a
//! rendezvous (capacity 0) 1p1c. std's receiver is single-consumer: it runs the
//! 1-consumer scenarios as is, and the multi-consumer ones behind a `Mutex`
//! ("std-mpsc+mutex"), which serializes its consumers.

use crate::harness::{Contender, Scale, Scenario};
use std::hint::black_box;
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

/// The operations the workloads need, so every peer runs the same code.
pub trait BenchChan: 'static {
    type S: Clone + Send + 'static;
    type R: Send + 'static;
    fn new(cap: usize) -> (Self::S, Self::R);
    /// `k` receivers for `k` consumer threads.
    fn split(r: Self::R, k: usize) -> Vec<Self::R>;
    fn send(s: &Self::S, v: u64);
    fn recv(r: &Self::R) -> u64;
    fn try_send(s: &Self::S, v: u64) -> bool;
    fn try_recv(r: &Self::R) -> Option<u64>;
}

fn clones<R: Clone>(r: R, k: usize) -> Vec<R> {
    let mut v = vec![r.clone(); k - 1];
    v.push(r);
    v
}

/// A peer whose channel has the common shape: `bounded(cap)`, cloneable receivers,
/// `send`/`recv` returning `Result`, `try_send`/`try_recv` returning `Result`.
macro_rules! common_chan {
    ($name:ident, $krate:ident) => {
        pub struct $name;
        impl BenchChan for $name {
            type S = $krate::Sender<u64>;
            type R = $krate::Receiver<u64>;
            fn new(cap: usize) -> (Self::S, Self::R) {
                $krate::bounded(cap)
            }
            fn split(r: Self::R, k: usize) -> Vec<Self::R> {
                clones(r, k)
            }
            fn send(s: &Self::S, v: u64) {
                s.send(v).unwrap();
            }
            fn recv(r: &Self::R) -> u64 {
                r.recv().unwrap()
            }
            fn try_send(s: &Self::S, v: u64) -> bool {
                s.try_send(v).is_ok()
            }
            fn try_recv(r: &Self::R) -> Option<u64> {
                r.try_recv().ok()
            }
        }
    };
}

use atomkit::channel as atomkit_channel;
common_chan!(Atomkit, atomkit_channel);
common_chan!(Crossbeam, crossbeam_channel);
common_chan!(Flume, flume);

pub struct Kanal;
impl BenchChan for Kanal {
    type S = kanal::Sender<u64>;
    type R = kanal::Receiver<u64>;
    fn new(cap: usize) -> (Self::S, Self::R) {
        kanal::bounded(cap)
    }
    fn split(r: Self::R, k: usize) -> Vec<Self::R> {
        clones(r, k)
    }
    fn send(s: &Self::S, v: u64) {
        s.send(v).unwrap();
    }
    fn recv(r: &Self::R) -> u64 {
        r.recv().unwrap()
    }
    fn try_send(s: &Self::S, v: u64) -> bool {
        s.try_send(v).unwrap()
    }
    fn try_recv(r: &Self::R) -> Option<u64> {
        r.try_recv().unwrap()
    }
}

/// std's `sync_channel` with its single consumer (1-consumer scenarios only).
pub struct StdMpsc;
impl BenchChan for StdMpsc {
    type S = std::sync::mpsc::SyncSender<u64>;
    type R = std::sync::mpsc::Receiver<u64>;
    fn new(cap: usize) -> (Self::S, Self::R) {
        std::sync::mpsc::sync_channel(cap)
    }
    fn split(r: Self::R, k: usize) -> Vec<Self::R> {
        assert_eq!(k, 1, "std's Receiver has a single consumer");
        vec![r]
    }
    fn send(s: &Self::S, v: u64) {
        s.send(v).unwrap();
    }
    fn recv(r: &Self::R) -> u64 {
        r.recv().unwrap()
    }
    fn try_send(s: &Self::S, v: u64) -> bool {
        s.try_send(v).is_ok()
    }
    fn try_recv(r: &Self::R) -> Option<u64> {
        r.try_recv().ok()
    }
}

/// std's `sync_channel` with its receiver behind a `Mutex`, for several consumers.
pub struct StdMutex;
impl BenchChan for StdMutex {
    type S = std::sync::mpsc::SyncSender<u64>;
    type R = Arc<Mutex<std::sync::mpsc::Receiver<u64>>>;
    fn new(cap: usize) -> (Self::S, Self::R) {
        let (s, r) = std::sync::mpsc::sync_channel(cap);
        (s, Arc::new(Mutex::new(r)))
    }
    fn split(r: Self::R, k: usize) -> Vec<Self::R> {
        clones(r, k)
    }
    fn send(s: &Self::S, v: u64) {
        s.send(v).unwrap();
    }
    fn recv(r: &Self::R) -> u64 {
        r.lock().unwrap().recv().unwrap()
    }
    fn try_send(s: &Self::S, v: u64) -> bool {
        s.try_send(v).is_ok()
    }
    fn try_recv(r: &Self::R) -> Option<u64> {
        r.lock().unwrap().try_recv().ok()
    }
}

/// `threads` producers send `n` values in total with blocking `send`, `threads`
/// consumers receive them with blocking `recv`. Wall time from the first spawn to the
/// last join; the channel is made before the clock starts.
pub fn transfer<C: BenchChan>(cap: usize, threads: u64, n: u64) -> Duration {
    let per = n / threads;
    let (s, r) = C::new(cap);
    let rs = C::split(r, threads as usize);
    let start = Instant::now();
    let mut hs = Vec::new();
    for p in 0..threads {
        let s = s.clone();
        hs.push(thread::spawn(move || {
            for i in 0..per {
                C::send(&s, p << 40 | i);
            }
            0u64
        }));
    }
    drop(s);
    for r in rs {
        hs.push(thread::spawn(move || {
            let mut sum = 0u64;
            for _ in 0..per {
                sum = sum.wrapping_add(C::recv(&r));
            }
            sum
        }));
    }
    let mut sum = 0u64;
    for h in hs {
        sum = sum.wrapping_add(h.join().unwrap());
    }
    black_box(sum);
    start.elapsed()
}

/// `n` try_send+try_recv pairs on one thread.
pub fn uncontended<C: BenchChan>(s: &C::S, r: &C::R, n: u64) -> Duration {
    let start = Instant::now();
    for i in 0..n {
        black_box(C::try_send(s, black_box(i)));
        black_box(C::try_recv(r));
    }
    start.elapsed()
}

fn transfer_contender<C: BenchChan>(
    name: &'static str,
    cap: usize,
    threads: u64,
    n: u64,
) -> Contender {
    Contender::new(name, move || transfer::<C>(cap, threads, n))
}

fn pair_contender<C: BenchChan>(name: &'static str, n: u64) -> Contender {
    let (s, r) = C::new(1024);
    Contender::new(name, move || uncontended::<C>(&s, &r, n))
}

pub fn scenarios(scale: Scale) -> Vec<Scenario> {
    let n = scale.n(2_000_000);
    let mut out = Vec::new();
    for cap in [1024usize, 16] {
        for threads in [1u64, 2, 4, 8] {
            let mut cs = vec![
                transfer_contender::<Atomkit>("atomkit", cap, threads, n),
                transfer_contender::<Crossbeam>("crossbeam-channel", cap, threads, n),
                transfer_contender::<Flume>("flume", cap, threads, n),
                transfer_contender::<Kanal>("kanal", cap, threads, n),
            ];
            if threads == 1 {
                cs.push(transfer_contender::<StdMpsc>("std-mpsc", cap, threads, n));
            } else {
                cs.push(transfer_contender::<StdMutex>(
                    "std-mpsc+mutex",
                    cap,
                    threads,
                    n,
                ));
            }
            out.push(Scenario::new(
                "channel",
                format!("{threads}p{threads}c cap {cap}"),
                n,
                cs,
            ));
        }
    }
    let pairs = scale.n(20_000_000);
    out.push(Scenario::new(
        "channel",
        "uncontended try_send+try_recv",
        pairs,
        vec![
            pair_contender::<Atomkit>("atomkit", pairs),
            pair_contender::<Crossbeam>("crossbeam-channel", pairs),
            pair_contender::<Flume>("flume", pairs),
            pair_contender::<Kanal>("kanal", pairs),
            pair_contender::<StdMpsc>("std-mpsc", pairs),
        ],
    ));
    let rv = scale.n(200_000);
    out.push(Scenario::new(
        "channel",
        "rendezvous 1p1c cap 0",
        rv,
        vec![
            transfer_contender::<Atomkit>("atomkit", 0, 1, rv),
            transfer_contender::<Crossbeam>("crossbeam-channel", 0, 1, rv),
            transfer_contender::<Flume>("flume", 0, 1, rv),
            transfer_contender::<Kanal>("kanal", 0, 1, rv),
            transfer_contender::<StdMpsc>("std-mpsc", 0, 1, rv),
        ],
    ));
    out
}
