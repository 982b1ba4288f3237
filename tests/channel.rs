//! Integration tests of `atomkit::channel`: API, close and drop semantics, timeouts,
//! Signal cancellation, rendezvous, and MPMC stress with payloads that count their
//! drops (nothing lost, nothing duplicated, nothing dropped twice), plus a
//! linearizability check of send / try_send / try_recv / close histories.

#[path = "support/chan_model.rs"]
mod chan_model;
#[path = "support/lincheck.rs"]
mod lincheck;

use atomkit::channel::{
    bounded, RecvError, RecvTimeoutError, RecvUntilError, SendError, SendTimeoutError,
    SendUntilError, TryRecvError, TrySendError,
};
use atomkit::signal::{Cause, Signal};
use chan_model::{ChanModel, Op, Ret};
use lincheck::{check, Recorder};
use std::collections::HashSet;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Barrier};
use std::thread;
use std::time::{Duration, Instant};

/// Scales a count down under Miri.
fn scaled(n: usize, miri: usize) -> usize {
    if cfg!(miri) {
        miri
    } else {
        n
    }
}

/// Counts creations and drops of [`Tracked`] values.
#[derive(Default)]
struct Counts {
    made: AtomicUsize,
    dropped: AtomicUsize,
}

impl Counts {
    fn live(&self) -> usize {
        self.made.load(Ordering::SeqCst) - self.dropped.load(Ordering::SeqCst)
    }
}

/// A payload that counts its drops; boxed so Miri tracks the allocation too. Dropping
/// one twice fails the test.
struct Tracked {
    id: u64,
    counts: Arc<Counts>,
    dropped: Box<bool>,
}

impl Tracked {
    fn new(id: u64, counts: &Arc<Counts>) -> Self {
        counts.made.fetch_add(1, Ordering::SeqCst);
        Tracked {
            id,
            counts: counts.clone(),
            dropped: Box::new(false),
        }
    }
}

impl Drop for Tracked {
    fn drop(&mut self) {
        assert!(!*self.dropped, "value {} dropped twice", self.id);
        *self.dropped = true;
        self.counts.dropped.fetch_add(1, Ordering::SeqCst);
    }
}

#[test]
fn fifo_and_try_ops() {
    let (tx, rx) = bounded(3);
    assert_eq!(tx.capacity(), 3);
    assert!(tx.is_empty() && rx.is_empty());
    tx.try_send(1).unwrap();
    tx.send(2).unwrap();
    tx.try_send(3).unwrap();
    assert!(tx.is_full());
    assert_eq!(tx.len(), 3);
    assert_eq!(tx.try_send(4), Err(TrySendError::Full(4)));
    assert_eq!(rx.try_recv(), Ok(1));
    assert_eq!(rx.recv(), Ok(2));
    assert_eq!(rx.try_recv(), Ok(3));
    assert_eq!(rx.try_recv(), Err(TryRecvError::Empty));
    assert!(!tx.is_closed());
}

#[test]
fn close_from_either_side_is_idempotent() {
    for side in 0..2 {
        for cap in [0, 1, 4] {
            let (tx, rx) = bounded::<u8>(cap);
            let first = if side == 0 { tx.close() } else { rx.close() };
            assert!(first);
            assert!(!tx.close());
            assert!(!rx.close());
            assert!(tx.is_closed() && rx.is_closed());
            assert_eq!(tx.send(1), Err(SendError(1)));
            assert_eq!(tx.try_send(2), Err(TrySendError::Closed(2)));
            assert_eq!(
                tx.send_timeout(3, Duration::from_secs(5)),
                Err(SendTimeoutError::Closed(3))
            );
            assert_eq!(
                tx.send_until(4, &Signal::new()),
                Err(SendUntilError::Closed(4))
            );
            assert_eq!(rx.recv(), Err(RecvError));
            assert_eq!(rx.try_recv(), Err(TryRecvError::Closed));
            assert_eq!(
                rx.recv_timeout(Duration::from_secs(5)),
                Err(RecvTimeoutError::Closed)
            );
            assert_eq!(rx.recv_until(&Signal::new()), Err(RecvUntilError::Closed));
        }
    }
}

#[test]
fn receivers_drain_after_close() {
    let (tx, rx) = bounded(4);
    for i in 0..4 {
        tx.send(i).unwrap();
    }
    tx.close();
    assert_eq!(rx.len(), 4);
    assert_eq!(rx.iter().collect::<Vec<_>>(), [0, 1, 2, 3]);
    assert_eq!(rx.recv(), Err(RecvError));
}

#[test]
fn dropping_last_sender_closes() {
    let (tx, rx) = bounded(2);
    let tx2 = tx.clone();
    tx.send(1).unwrap();
    drop(tx);
    assert!(!rx.is_closed());
    tx2.send(2).unwrap();
    drop(tx2);
    assert!(rx.is_closed());
    assert_eq!(rx.recv(), Ok(1));
    assert_eq!(rx.recv(), Ok(2));
    assert_eq!(rx.recv(), Err(RecvError));
}

#[test]
fn dropping_last_receiver_closes_and_drops_queued_values() {
    let counts = Arc::new(Counts::default());
    let (tx, rx) = bounded(4);
    for i in 0..3 {
        tx.send(Tracked::new(i, &counts)).unwrap();
    }
    let rx2 = rx.clone();
    drop(rx);
    assert_eq!(counts.live(), 3);
    drop(rx2);
    assert_eq!(
        counts.live(),
        0,
        "queued values dropped with the last receiver"
    );
    assert!(tx.is_closed());
    let back = tx.send(Tracked::new(9, &counts)).unwrap_err().into_inner();
    assert_eq!(back.id, 9);
    drop(back);
    assert_eq!(counts.live(), 0);
}

#[test]
fn values_left_in_a_dropped_channel_are_dropped_once() {
    let counts = Arc::new(Counts::default());
    {
        let (tx, rx) = bounded(8);
        for i in 0..5 {
            tx.send(Tracked::new(i, &counts)).unwrap();
        }
        drop(rx.recv().unwrap());
        // tx and rx drop here, tx last
        drop(rx);
        drop(tx);
    }
    assert_eq!(counts.live(), 0);
}

/// Zero-sized values through a buffered and a rendezvous channel, from another
/// thread, refused when full or closed, and left behind at drop: each is dropped
/// exactly once.
#[test]
fn zero_sized_values_are_each_dropped_once() {
    static DROPS: AtomicUsize = AtomicUsize::new(0);
    #[derive(Debug)]
    struct Unit;
    impl Drop for Unit {
        fn drop(&mut self) {
            DROPS.fetch_add(1, Ordering::Relaxed);
        }
    }
    let n = scaled(1_000, 20);
    for cap in [0, 1, 4] {
        let before = DROPS.load(Ordering::Relaxed);
        let (tx, rx) = bounded(cap);
        let sender = thread::spawn(move || {
            for _ in 0..n {
                tx.send(Unit).unwrap();
            }
            tx
        });
        for _ in 0..n {
            drop(rx.recv().unwrap());
        }
        let tx = sender.join().unwrap();
        assert_eq!(DROPS.load(Ordering::Relaxed) - before, n, "cap {cap}");
        let mut made = n;
        for _ in 0..cap {
            tx.try_send(Unit).unwrap();
            made += 1;
        }
        drop(tx.try_send(Unit).unwrap_err().into_inner());
        made += 1;
        rx.close();
        drop(tx.send(Unit).unwrap_err().into_inner());
        made += 1;
        drop((tx, rx));
        assert_eq!(DROPS.load(Ordering::Relaxed) - before, made, "cap {cap}");
    }
}

#[test]
fn blocked_receiver_is_woken_by_send_and_close() {
    let (tx, rx) = bounded::<u32>(1);
    let r = thread::spawn(move || {
        let a = rx.recv();
        let b = rx.recv();
        (a, b)
    });
    thread::sleep(Duration::from_millis(20));
    tx.send(7).unwrap();
    thread::sleep(Duration::from_millis(20));
    tx.close();
    assert_eq!(r.join().unwrap(), (Ok(7), Err(RecvError)));
}

#[test]
fn blocked_sender_is_woken_by_recv_and_close() {
    let (tx, rx) = bounded::<u32>(1);
    tx.send(1).unwrap();
    let s = {
        let tx = tx.clone();
        thread::spawn(move || {
            let a = tx.send(2);
            let b = tx.send(3);
            (a, b)
        })
    };
    thread::sleep(Duration::from_millis(20));
    assert_eq!(rx.recv(), Ok(1));
    // The sender fills the channel again with 2 (its position taken before the
    // close below, so that send succeeds), then blocks on 3. Waiting for the
    // channel to look full, not for a fixed time: under Miri, a sleep's time can
    // run out before the sender has been scheduled.
    let start = std::time::Instant::now();
    while !rx.is_full() {
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "the sender never sent 2 after the receive made room"
        );
        thread::yield_now();
    }
    thread::sleep(Duration::from_millis(20));
    rx.close();
    let (a, b) = s.join().unwrap();
    assert_eq!(a, Ok(()));
    assert_eq!(b, Err(SendError(3)));
    assert_eq!(rx.recv(), Ok(2));
    assert_eq!(rx.recv(), Err(RecvError));
}

#[test]
fn close_wakes_every_blocked_thread() {
    for cap in [0usize, 1] {
        let (tx, rx) = bounded::<u32>(cap);
        if cap == 1 {
            tx.send(0).unwrap();
        }
        let mut hs = Vec::new();
        for i in 0..3 {
            let tx = tx.clone();
            hs.push(thread::spawn(move || tx.send(i).is_err()));
        }
        let (tx2, rx2) = bounded::<u32>(cap);
        for _ in 0..3 {
            let rx2 = rx2.clone();
            hs.push(thread::spawn(move || rx2.recv().is_err()));
        }
        thread::sleep(Duration::from_millis(30));
        tx.close();
        tx2.close();
        for h in hs {
            assert!(h.join().unwrap(), "every blocked call fails after close");
        }
        drop(rx);
    }
}

#[test]
fn deadlines_in_the_past_return_at_once() {
    for cap in [0usize, 1] {
        let (tx, rx) = bounded::<u8>(cap);
        if cap == 1 {
            tx.send(0).unwrap();
        }
        let start = Instant::now();
        let past = Instant::now() - Duration::from_millis(1);
        assert_eq!(tx.send_deadline(1, past), Err(SendTimeoutError::Timeout(1)));
        assert_eq!(
            tx.send_timeout(2, Duration::ZERO),
            Err(SendTimeoutError::Timeout(2))
        );
        if cap == 1 {
            assert_eq!(rx.recv_deadline(past), Ok(0));
        }
        assert_eq!(rx.recv_deadline(past), Err(RecvTimeoutError::Timeout));
        assert_eq!(
            rx.recv_timeout(Duration::ZERO),
            Err(RecvTimeoutError::Timeout)
        );
        assert!(start.elapsed() < Duration::from_secs(1));
    }
}

#[test]
fn timeouts_expire_and_hand_values_back() {
    for cap in [0usize, 2] {
        let (tx, rx) = bounded::<u8>(cap);
        for i in 0..cap as u8 {
            tx.send(i).unwrap();
        }
        let t = Duration::from_millis(15);
        let start = Instant::now();
        assert_eq!(tx.send_timeout(9, t), Err(SendTimeoutError::Timeout(9)));
        assert!(start.elapsed() >= t);
        for i in 0..cap as u8 {
            assert_eq!(rx.recv_timeout(t), Ok(i));
        }
        let start = Instant::now();
        assert_eq!(rx.recv_timeout(t), Err(RecvTimeoutError::Timeout));
        assert!(start.elapsed() >= t);
        // A huge timeout is no timeout; the value arrives.
        let tx2 = tx.clone();
        let h = thread::spawn(move || tx2.send_timeout(5, Duration::MAX));
        assert_eq!(rx.recv_timeout(Duration::MAX), Ok(5));
        assert_eq!(h.join().unwrap(), Ok(()));
    }
}

#[test]
fn signal_cancels_blocked_send_and_recv() {
    for cap in [0usize, 1] {
        let (tx, rx) = bounded::<u32>(cap);
        if cap == 1 {
            tx.send(0).unwrap();
        }
        let stop = Signal::new();
        let s = {
            let (tx, stop) = (tx.clone(), stop.clone());
            thread::spawn(move || tx.send_until(42, &stop))
        };
        let (tx2, rx2) = bounded::<u32>(cap);
        let r = {
            let stop = stop.clone();
            thread::spawn(move || rx2.recv_until(&stop))
        };
        thread::sleep(Duration::from_millis(20));
        assert!(stop.close());
        assert_eq!(
            s.join().unwrap(),
            Err(SendUntilError::Cancelled(42, Cause::Closed))
        );
        assert_eq!(
            r.join().unwrap(),
            Err(RecvUntilError::Cancelled(Cause::Closed))
        );
        drop(tx2);
        // The channel is untouched: still open, still holding what it held.
        assert!(!tx.is_closed());
        if cap == 1 {
            assert_eq!(rx.try_recv(), Ok(0));
        }
    }
}

#[test]
fn signal_deadline_cancels() {
    let (_tx, rx) = bounded::<u8>(1);
    let ctx = Signal::with_timeout(Duration::from_millis(10));
    assert_eq!(
        rx.recv_until(&ctx),
        Err(RecvUntilError::Cancelled(Cause::DeadlineExceeded))
    );
}

#[test]
fn until_calls_succeed_when_no_wait_is_needed() {
    let (tx, rx) = bounded(1);
    let closed = Signal::new();
    closed.close();
    tx.send_until(1, &closed).unwrap();
    assert_eq!(rx.recv_until(&closed), Ok(1));
    let open = Signal::new();
    let h = {
        let tx = tx.clone();
        let open = open.clone();
        thread::spawn(move || tx.send_until(2, &open))
    };
    assert_eq!(rx.recv_until(&open), Ok(2));
    assert_eq!(h.join().unwrap(), Ok(()));
}

#[test]
fn rendezvous_try_ops_need_a_partner() {
    let (tx, rx) = bounded::<u32>(0);
    assert_eq!(tx.capacity(), 0);
    assert!(tx.is_empty() && tx.is_full());
    assert_eq!(tx.len(), 0);
    assert_eq!(tx.try_send(1), Err(TrySendError::Full(1)));
    assert_eq!(rx.try_recv(), Err(TryRecvError::Empty));
    // A blocked receiver makes try_send succeed, and gets exactly that value.
    let r = {
        let rx = rx.clone();
        thread::spawn(move || rx.recv())
    };
    let mut v = 2;
    loop {
        match tx.try_send(v) {
            Ok(()) => break,
            Err(TrySendError::Full(back)) => {
                v = back;
                thread::yield_now();
            }
            Err(e) => panic!("{e}"),
        }
    }
    assert_eq!(r.join().unwrap(), Ok(2));
    // A blocked sender makes try_recv succeed, and its send completes.
    let s = {
        let tx = tx.clone();
        thread::spawn(move || tx.send(3))
    };
    let got = loop {
        match rx.try_recv() {
            Ok(v) => break v,
            Err(TryRecvError::Empty) => thread::yield_now(),
            Err(e) => panic!("{e}"),
        }
    };
    assert_eq!(got, 3);
    assert_eq!(s.join().unwrap(), Ok(()));
}

#[test]
fn rendezvous_send_completes_only_when_taken() {
    let (tx, rx) = bounded::<u32>(0);
    let taken = Arc::new(AtomicUsize::new(0));
    let s = {
        let taken = taken.clone();
        thread::spawn(move || {
            tx.send(1).unwrap();
            // The receiver took it before our send returned.
            assert_eq!(taken.load(Ordering::SeqCst), 1);
        })
    };
    thread::sleep(Duration::from_millis(20));
    // Mark first, then take: the sender cannot have returned yet.
    taken.store(1, Ordering::SeqCst);
    assert_eq!(rx.recv(), Ok(1));
    s.join().unwrap();
}

/// Rendezvous senders and receivers that time out all the time: every value is either
/// received (and its send returned Ok) or handed back to its sender, exactly once.
#[test]
fn rendezvous_timeouts_never_half_deliver() {
    let counts = Arc::new(Counts::default());
    let n = scaled(2_000, 40) as u64;
    let (tx, rx) = bounded::<Tracked>(0);
    let sent_ok = Arc::new(AtomicUsize::new(0));
    let mut hs = Vec::new();
    for p in 0..2u64 {
        let (tx, counts, sent_ok) = (tx.clone(), counts.clone(), sent_ok.clone());
        hs.push(thread::spawn(move || {
            let mut back = 0;
            for i in 0..n {
                let v = Tracked::new(p << 32 | i, &counts);
                match tx.send_timeout(v, Duration::from_micros(50)) {
                    Ok(()) => {
                        sent_ok.fetch_add(1, Ordering::SeqCst);
                    }
                    Err(SendTimeoutError::Timeout(v)) => {
                        assert_eq!(v.id, p << 32 | i, "our own value comes back");
                        back += 1;
                    }
                    Err(e) => panic!("{e}"),
                }
            }
            back
        }));
    }
    drop(tx);
    let received = Arc::new(AtomicUsize::new(0));
    let mut rs = Vec::new();
    for _ in 0..2 {
        let (rx, received) = (rx.clone(), received.clone());
        rs.push(thread::spawn(move || loop {
            match rx.recv_timeout(Duration::from_micros(30)) {
                Ok(_v) => {
                    received.fetch_add(1, Ordering::SeqCst);
                }
                Err(RecvTimeoutError::Timeout) => {}
                Err(RecvTimeoutError::Closed) => break,
            }
        }));
    }
    let back: u64 = hs.into_iter().map(|h| h.join().unwrap()).sum();
    for r in rs {
        r.join().unwrap();
    }
    let ok = sent_ok.load(Ordering::SeqCst);
    assert_eq!(ok, received.load(Ordering::SeqCst));
    assert_eq!(ok as u64 + back, 2 * n);
    drop(rx);
    assert_eq!(counts.live(), 0);
}

/// `producers` threads send `per` values each through a channel of capacity `cap`,
/// `consumers` threads receive until closed: every value arrives exactly once, in
/// each producer's order, and every payload is dropped exactly once.
fn mpmc(producers: u64, consumers: usize, cap: usize, per: u64) {
    let counts = Arc::new(Counts::default());
    let (tx, rx) = bounded::<Tracked>(cap);
    let mut hs = Vec::new();
    for p in 0..producers {
        let (tx, counts) = (tx.clone(), counts.clone());
        hs.push(thread::spawn(move || {
            for i in 0..per {
                tx.send(Tracked::new(p << 32 | i, &counts)).unwrap();
            }
        }));
    }
    drop(tx);
    let rs: Vec<_> = (0..consumers)
        .map(|_| {
            let rx = rx.clone();
            thread::spawn(move || {
                let mut got = Vec::new();
                for v in &rx {
                    got.push(v.id);
                }
                got
            })
        })
        .collect();
    drop(rx);
    for h in hs {
        h.join().unwrap();
    }
    let mut all = HashSet::new();
    for r in rs {
        let got = r.join().unwrap();
        // Per producer, one consumer sees values in send order.
        let mut last = vec![None; producers as usize];
        for id in &got {
            let p = (id >> 32) as usize;
            let i = id & 0xffff_ffff;
            assert!(
                last[p].is_none_or(|l| l < i),
                "reordered within producer {p}"
            );
            last[p] = Some(i);
            assert!(all.insert(*id), "value {id:#x} received twice");
        }
    }
    assert_eq!(all.len() as u64, producers * per, "values lost");
    assert_eq!(counts.live(), 0);
    assert_eq!(counts.made.load(Ordering::SeqCst) as u64, producers * per);
}

#[test]
fn mpmc_1p1c() {
    for cap in [0, 1, 16] {
        mpmc(1, 1, cap, scaled(20_000, 50) as u64);
    }
}

#[test]
fn mpmc_4p4c() {
    for cap in [0, 1, 16] {
        mpmc(4, 4, cap, scaled(5_000, 10) as u64);
    }
}

#[test]
fn mpmc_8p8c() {
    for cap in [1, 16, 1024] {
        mpmc(8, 8, cap, scaled(2_500, 5) as u64);
    }
    mpmc(8, 8, 0, scaled(500, 5) as u64);
}

/// Senders and receivers race a close: every send that returned Ok is received, every
/// send refused hands its value back, nothing is dropped twice.
#[test]
fn close_races_sends_and_receives() {
    for round in 0..scaled(40, 2) {
        for cap in [0usize, 1, 4] {
            let counts = Arc::new(Counts::default());
            let (tx, rx) = bounded::<Tracked>(cap);
            let start = Arc::new(Barrier::new(6));
            let ok = Arc::new(AtomicUsize::new(0));
            let mut ps = Vec::new();
            for p in 0..3u64 {
                let (tx, counts, start, ok) =
                    (tx.clone(), counts.clone(), start.clone(), ok.clone());
                ps.push(thread::spawn(move || {
                    start.wait();
                    for i in 0.. {
                        let v = Tracked::new(p << 32 | i, &counts);
                        let r = if i % 2 == 0 {
                            tx.send(v).map_err(|e| e.into_inner())
                        } else {
                            tx.try_send(v).map_err(|e| e.into_inner())
                        };
                        match r {
                            Ok(()) => {
                                ok.fetch_add(1, Ordering::SeqCst);
                            }
                            Err(v) => {
                                assert_eq!(v.id, p << 32 | i);
                                if tx.is_closed() {
                                    break;
                                }
                            }
                        }
                    }
                }));
            }
            let got = Arc::new(AtomicUsize::new(0));
            let mut rs = Vec::new();
            for _ in 0..2 {
                let (rx, start, got) = (rx.clone(), start.clone(), got.clone());
                rs.push(thread::spawn(move || {
                    start.wait();
                    while let Ok(v) = rx.recv() {
                        drop(v);
                        got.fetch_add(1, Ordering::SeqCst);
                    }
                }));
            }
            start.wait();
            thread::sleep(Duration::from_micros(200 + 50 * round as u64));
            if round % 2 == 0 {
                assert!(tx.close());
            } else {
                assert!(rx.close());
            }
            for p in ps {
                p.join().unwrap();
            }
            for r in rs {
                r.join().unwrap();
            }
            assert_eq!(
                ok.load(Ordering::SeqCst),
                got.load(Ordering::SeqCst),
                "cap {cap}: a send returned Ok but its value was never received"
            );
            drop((tx, rx));
            assert_eq!(counts.live(), 0);
        }
    }
}

/// The last receiver is dropped while senders push: every value is dropped exactly
/// once (by a receiver, by the drop, or handed back to its sender).
#[test]
fn last_receiver_drop_races_senders() {
    for _ in 0..scaled(40, 2) {
        for cap in [0usize, 1, 8] {
            let counts = Arc::new(Counts::default());
            let (tx, rx) = bounded::<Tracked>(cap);
            let mut ps = Vec::new();
            for p in 0..2u64 {
                let (tx, counts) = (tx.clone(), counts.clone());
                ps.push(thread::spawn(move || {
                    for i in 0.. {
                        if tx.send(Tracked::new(p << 32 | i, &counts)).is_err() {
                            break;
                        }
                    }
                }));
            }
            for _ in 0..5 {
                drop(rx.recv_timeout(Duration::from_millis(1)));
            }
            drop(rx);
            for p in ps {
                p.join().unwrap();
            }
            // Only `tx` remains; nothing is left queued.
            assert_eq!(counts.live(), 0, "cap {cap}");
            drop(tx);
        }
    }
}

#[test]
fn iterators() {
    let (tx, rx) = bounded(8);
    for i in 0..5 {
        tx.send(i).unwrap();
    }
    assert_eq!(rx.try_iter().take(2).collect::<Vec<_>>(), [0, 1]);
    let h = thread::spawn(move || {
        thread::sleep(Duration::from_millis(10));
        tx.send(5).unwrap();
    });
    let mut seen = Vec::new();
    for v in &rx {
        seen.push(v);
        if v == 5 {
            break;
        }
    }
    assert_eq!(seen, [2, 3, 4, 5]);
    h.join().unwrap();
    // tx is gone: the owning iterator ends.
    assert_eq!(rx.into_iter().count(), 0);
}

#[test]
fn capacity_one_ping_pong() {
    let n = scaled(20_000, 100) as u64;
    let (tx, rx) = bounded::<u64>(1);
    let (tx2, rx2) = bounded::<u64>(1);
    let h = thread::spawn(move || {
        for v in &rx {
            tx2.send(v + 1).unwrap();
        }
    });
    for i in 0..n {
        tx.send(i).unwrap();
        assert_eq!(rx2.recv(), Ok(i + 1));
    }
    drop(tx);
    h.join().unwrap();
}

#[test]
#[should_panic(expected = "channel capacity overflow")]
fn too_large_capacity_panics() {
    let _ = bounded::<u8>(usize::MAX);
}

/// On every target: on a 32-bit one, a capacity above 2^30 (under the old maximum of
/// 2^31) overflowed the size of the queue's rings instead.
#[test]
fn every_capacity_past_the_maximum_panics_clearly() {
    // The queue's two rings: `2 * cap.next_power_of_two()` 8-byte entries each.
    let rings_fit = |cap: usize| {
        cap.checked_next_power_of_two()
            .and_then(|n| n.checked_mul(16))
            .is_some_and(|bytes| bytes <= isize::MAX as usize)
    };
    for cap in [atomkit::queue::MAX_CAPACITY + 1, (1 << 30) + 1] {
        if cap <= atomkit::queue::MAX_CAPACITY && rings_fit(cap) {
            continue; // on a 64-bit target: a real, enormous channel
        }
        let payload = std::panic::catch_unwind(|| drop(bounded::<u8>(cap))).unwrap_err();
        let msg = match payload.downcast::<String>() {
            Ok(s) => *s,
            Err(p) => p
                .downcast::<&str>()
                .map(|s| s.to_string())
                .unwrap_or_default(),
        };
        assert!(
            msg.starts_with("channel capacity overflow"),
            "capacity {cap}: {msg}"
        );
    }
}

#[test]
fn debug_is_opaque() {
    struct NoDebug;
    let (tx, rx) = bounded::<NoDebug>(3);
    assert_eq!(format!("{tx:?}"), "Sender { capacity: 3, .. }");
    assert_eq!(format!("{rx:?}"), "Receiver { capacity: 3, .. }");
    assert_eq!(format!("{:?}", TrySendError::Full(NoDebug)), "Full(..)");
    assert_eq!(format!("{:?}", SendError(NoDebug)), "SendError(..)");
    assert_eq!(
        format!("{:?}", SendUntilError::Cancelled(NoDebug, Cause::Closed)),
        "Cancelled(.., Closed)"
    );
    assert_eq!(format!("{:?}", rx.iter()), "Iter { .. }");
    assert_eq!(format!("{:?}", rx.try_iter()), "TryIter { .. }");
}

// ---- linearizability ----

/// Small histories of 3 threads racing send / try_send / try_recv / close on a channel
/// that never fills (the queue's "full" is only promised linearizable when it does
/// not fill); each history must linearize.
#[test]
fn lincheck_send_recv_close() {
    let rounds = scaled(300, 3);
    for round in 0..rounds {
        let cap = 32;
        let (tx, rx) = bounded::<u64>(cap);
        let rec = Arc::new(Recorder::<Op, Ret>::default());
        let start = Arc::new(Barrier::new(3));
        let hs: Vec<_> = (0..3u64)
            .map(|t| {
                let (tx, rx, rec, start) = (tx.clone(), rx.clone(), rec.clone(), start.clone());
                thread::spawn(move || {
                    start.wait();
                    for i in 0..6u64 {
                        let v = t * 100 + i;
                        let pick = (t + i + round as u64) % 7;
                        if pick == 6 && t == 2 {
                            rec.record(t as usize, Op::Close, || Ret::Closed(tx.close()));
                        } else if t == 0 || pick % 3 == 0 {
                            if i % 2 == 0 {
                                rec.record(t as usize, Op::Send(v), || match tx.send(v) {
                                    Ok(()) => Ret::Sent,
                                    Err(_) => Ret::SendClosed,
                                });
                            } else {
                                rec.record(t as usize, Op::TrySend(v), || match tx.try_send(v) {
                                    Ok(()) => Ret::Sent,
                                    Err(TrySendError::Full(_)) => Ret::Full,
                                    Err(TrySendError::Closed(_)) => Ret::SendClosed,
                                });
                            }
                        } else {
                            rec.record(t as usize, Op::TryRecv, || match rx.try_recv() {
                                Ok(v) => Ret::Got(v),
                                Err(TryRecvError::Empty) => Ret::Empty,
                                Err(TryRecvError::Closed) => Ret::RecvClosed,
                            });
                        }
                    }
                })
            })
            .collect();
        for h in hs {
            h.join().unwrap();
        }
        // Drain what is left, so a value lost or duplicated late (or around the
        // close) shows: receive until empty or closed.
        loop {
            let r = rec.record(0, Op::TryRecv, || match rx.try_recv() {
                Ok(v) => Ret::Got(v),
                Err(TryRecvError::Empty) => Ret::Empty,
                Err(TryRecvError::Closed) => Ret::RecvClosed,
            });
            if !matches!(r, Ret::Got(_)) {
                break;
            }
        }
        let init = ChanModel::new(cap);
        if let Err(msg) = check(init, &rec.history()) {
            panic!("round {round}: {msg}");
        }
    }
}
