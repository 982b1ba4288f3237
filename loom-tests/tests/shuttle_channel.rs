//! shuttle tests of `atomkit::channel`: more threads and operations than loom can
//! explore, under random and PCT schedules: linearizability of send / try_send /
//! try_recv / close histories against a sequential FIFO-with-close, and MPMC
//! transfers with close, timeouts, Signal cancellation and rendezvous, where every
//! value must be accounted for exactly once. shuttle runs every atomic as SeqCst, so
//! these find logic races and lost wake-ups (a thread asleep for good is a reported
//! deadlock), not weak-memory bugs (the loom models do that).
//!
//! Run: `RUSTFLAGS="--cfg atomkit_shuttle" cargo test --release -p atomkit-loom-tests --test shuttle_channel`
//! (or `cargo xtask shuttle`).
#![cfg(atomkit_shuttle)]

#[path = "../../tests/support/chan_model.rs"]
mod chan_model;
#[path = "../../tests/support/lincheck.rs"]
mod lincheck;

use atomkit::channel::{
    bounded, RecvTimeoutError, RecvUntilError, SendTimeoutError, Sender, TryRecvError, TrySendError,
};
use atomkit::signal::Signal;
use atomkit_loom_tests::shuttle_iters;
use chan_model::{ChanModel, Op, Ret};
use lincheck::{check, Recorder};
use shuttle::sync::atomic::{AtomicUsize, Ordering::SeqCst};
use shuttle::sync::Arc;
use shuttle::thread;
use std::time::Duration;

const LONG: Duration = Duration::from_secs(3600);

fn both(iters: usize, f: impl Fn() + Send + Sync + 'static) {
    let f = std::sync::Arc::new(f);
    let g = f.clone();
    shuttle::check_random(move || g(), shuttle_iters(iters));
    shuttle::check_pct(move || f(), shuttle_iters(iters), 3);
}

/// `threads` threads run `ops` operations each on a channel that never fills; thread
/// 0 sends, the last thread closes once midway, the others mix try_send and try_recv.
fn linearizable(threads: u64, ops: u64) {
    let cap = 16;
    let (tx, rx) = bounded::<u64>(cap);
    let rec = std::sync::Arc::new(Recorder::<Op, Ret>::default());
    let hs: Vec<_> = (0..threads)
        .map(|t| {
            let (tx, rx, rec) = (tx.clone(), rx.clone(), rec.clone());
            thread::spawn(move || {
                for i in 0..ops {
                    let v = t * 100 + i;
                    let th = t as usize;
                    if t == threads - 1 && i == ops / 2 {
                        rec.record(th, Op::Close, || Ret::Closed(tx.close()));
                    } else if t == 0 && i % 2 == 0 {
                        rec.record(th, Op::Send(v), || match tx.send(v) {
                            Ok(()) => Ret::Sent,
                            Err(_) => Ret::SendClosed,
                        });
                    } else if (t + i) % 2 == 0 {
                        rec.record(th, Op::TrySend(v), || match tx.try_send(v) {
                            Ok(()) => Ret::Sent,
                            Err(TrySendError::Full(_)) => Ret::Full,
                            Err(TrySendError::Closed(_)) => Ret::SendClosed,
                        });
                    } else {
                        rec.record(th, Op::TryRecv, || match rx.try_recv() {
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
    let init = ChanModel::new(cap);
    if let Err(e) = check(init, &rec.history()) {
        panic!("{e}");
    }
}

#[test]
fn three_threads_linearizable() {
    both(8_000, || linearizable(3, 4));
}

#[test]
fn four_threads_linearizable() {
    both(4_000, || linearizable(4, 3));
}

/// `producers` blocking senders and `consumers` blocking receivers on a channel of
/// capacity `cap`; a closer closes it at a random point. Every send that returned Ok
/// is received exactly once; every refused send got its own value back.
fn mpmc_close(producers: u64, consumers: usize, cap: usize, per: u64) {
    let (tx, rx) = bounded::<u64>(cap);
    let ps: Vec<_> = (0..producers)
        .map(|p| {
            let tx = tx.clone();
            thread::spawn(move || {
                let mut ok = Vec::new();
                for i in 0..per {
                    let v = p << 16 | i;
                    match tx.send(v) {
                        Ok(()) => ok.push(v),
                        Err(e) => {
                            assert_eq!(e.into_inner(), v);
                            break;
                        }
                    }
                }
                ok
            })
        })
        .collect();
    let cs: Vec<_> = (0..consumers)
        .map(|_| {
            let rx = rx.clone();
            thread::spawn(move || rx.iter().collect::<Vec<u64>>())
        })
        .collect();
    drop(rx);
    let closer = thread::spawn(move || {
        thread::yield_now();
        tx.close();
    });
    let mut sent: Vec<u64> = ps.into_iter().flat_map(|p| p.join().unwrap()).collect();
    closer.join().unwrap();
    let mut got = Vec::new();
    for c in cs {
        let mine = c.join().unwrap();
        for p in 0..producers {
            let from_p: Vec<u64> = mine.iter().copied().filter(|v| v >> 16 == p).collect();
            assert!(
                from_p.windows(2).all(|w| w[0] < w[1]),
                "reordered: {from_p:?}"
            );
        }
        got.extend(mine);
    }
    sent.sort_unstable();
    got.sort_unstable();
    assert_eq!(sent, got, "sent Ok vs received");
}

#[test]
fn mpmc_close_cap1() {
    both(8_000, || mpmc_close(2, 2, 1, 3));
}

#[test]
fn mpmc_close_cap2_three_producers() {
    both(5_000, || mpmc_close(3, 2, 2, 2));
}

#[test]
fn mpmc_close_rendezvous() {
    both(5_000, || mpmc_close(2, 2, 0, 2));
}

/// Timed senders and receivers at capacity `cap` (timeouts fire at points the
/// scheduler picks): every value is received exactly once or handed back to its
/// sender, and a value handed back was never received.
fn timeouts(cap: usize) {
    let (tx, rx) = bounded::<u64>(cap);
    let received = Arc::new(AtomicUsize::new(0));
    let ps: Vec<_> = (0..2u64)
        .map(|p| {
            let tx = tx.clone();
            thread::spawn(move || {
                let mut back = 0;
                for i in 0..2 {
                    let v = p << 16 | i;
                    match tx.send_timeout(v, LONG) {
                        Ok(()) => {}
                        Err(SendTimeoutError::Timeout(w)) => {
                            assert_eq!(w, v);
                            back += 1;
                        }
                        Err(e) => panic!("{e}"),
                    }
                }
                back
            })
        })
        .collect();
    drop(tx);
    let cs: Vec<_> = (0..2)
        .map(|_| {
            let (rx, received) = (rx.clone(), received.clone());
            thread::spawn(move || loop {
                match rx.recv_timeout(LONG) {
                    Ok(_) => {
                        received.fetch_add(1, SeqCst);
                    }
                    Err(RecvTimeoutError::Timeout) => {}
                    Err(RecvTimeoutError::Closed) => break,
                }
            })
        })
        .collect();
    let back: usize = ps.into_iter().map(|p| p.join().unwrap()).sum();
    for c in cs {
        c.join().unwrap();
    }
    assert_eq!(back + received.load(SeqCst), 4);
    assert_eq!(rx.try_recv(), Err(TryRecvError::Closed));
}

#[test]
fn timeouts_cap1() {
    both(8_000, || timeouts(1));
}

#[test]
fn timeouts_rendezvous() {
    both(8_000, || timeouts(0));
}

/// A receiver cancellable by a Signal races a send and the signal's close: it gets
/// the value or is cancelled, and a value it did not get is still in the channel.
fn signal_cancel(cap: usize) {
    let (tx, rx) = bounded::<u64>(cap);
    let stop = Signal::new();
    let r = {
        let (rx, stop) = (rx.clone(), stop.clone());
        thread::spawn(move || rx.recv_until(&stop))
    };
    let s = {
        let (tx, stop) = (tx.clone(), stop.clone());
        thread::spawn(move || tx.send_until(1, &stop).is_ok())
    };
    stop.close();
    let got = r.join().unwrap();
    let sent = s.join().unwrap();
    match got {
        Ok(v) => {
            assert!(sent);
            assert_eq!(v, 1);
        }
        Err(RecvUntilError::Cancelled(_)) => {
            let left = rx.try_recv();
            if sent {
                assert_eq!(left, Ok(1), "sent but neither received nor queued");
            } else {
                assert!(left.is_err());
            }
        }
        Err(e) => panic!("{e}"),
    }
    drop(tx);
}

#[test]
fn signal_cancel_cap1() {
    both(8_000, || signal_cancel(1));
}

#[test]
fn signal_cancel_rendezvous() {
    both(8_000, || signal_cancel(0));
}

/// A payload that counts its drops in a table shared by one execution: a value
/// dropped twice fails at once, one never dropped fails the final check.
struct Counted {
    id: usize,
    drops: std::sync::Arc<Vec<std::sync::atomic::AtomicUsize>>,
}

impl Drop for Counted {
    fn drop(&mut self) {
        let before = self.drops[self.id].fetch_add(1, SeqCst);
        assert_eq!(before, 0, "value {} dropped twice", self.id);
    }
}

fn drop_table(n: usize) -> std::sync::Arc<Vec<std::sync::atomic::AtomicUsize>> {
    std::sync::Arc::new(
        (0..n)
            .map(|_| std::sync::atomic::AtomicUsize::new(0))
            .collect(),
    )
}

/// How a sender of the drop-counted tests sends.
#[derive(Clone, Copy)]
enum SendBy {
    Blocking,
    Timed,
    Cancellable,
}

/// Spawns one sender per entry of `how`: sender `id` sends value `id` that way (the
/// cancellable one until `stop` closes). Each joins to whether its send succeeded;
/// a send that failed must have handed back its own value.
fn spawn_senders(
    tx: &Sender<Counted>,
    stop: &Signal,
    drops: &std::sync::Arc<Vec<std::sync::atomic::AtomicUsize>>,
    how: &[SendBy],
) -> Vec<thread::JoinHandle<bool>> {
    how.iter()
        .enumerate()
        .map(|(id, &by)| {
            let (tx, stop) = (tx.clone(), stop.clone());
            let v = Counted {
                id,
                drops: drops.clone(),
            };
            thread::spawn(move || {
                let back = match by {
                    SendBy::Blocking => tx.send(v).err().map(|e| e.into_inner()),
                    SendBy::Timed => tx.send_timeout(v, LONG).err().map(|e| e.into_inner()),
                    SendBy::Cancellable => tx.send_until(v, &stop).err().map(|e| e.into_inner()),
                };
                match back {
                    Some(v) => {
                        assert_eq!(v.id, id, "a sender got back another's value");
                        false
                    }
                    None => true,
                }
            })
        })
        .collect()
}

fn assert_each_dropped_once(drops: &[std::sync::atomic::AtomicUsize]) {
    for (id, d) in drops.iter().enumerate() {
        assert_eq!(
            d.load(SeqCst),
            1,
            "value {id} dropped {} times",
            d.load(SeqCst)
        );
    }
}

/// Rendezvous: a timed sender and a cancellable sender race a cancellable receiver
/// and a timed one while the signal closes. A send reports Ok exactly when a
/// receiver got its value; a send that gives up gets its own value back; every
/// value is dropped once.
#[test]
fn rendezvous_give_up_races_take() {
    both(6_000, || {
        let drops = drop_table(2);
        let (tx, rx) = bounded::<Counted>(0);
        let stop = Signal::new();
        let got = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let senders = spawn_senders(&tx, &stop, &drops, &[SendBy::Timed, SendBy::Cancellable]);
        drop(tx);
        let cancellable = {
            let (rx, stop, got) = (rx.clone(), stop.clone(), got.clone());
            thread::spawn(move || {
                if let Ok(v) = rx.recv_until(&stop) {
                    got.lock().unwrap().push(v.id);
                }
            })
        };
        let timed = {
            let got = got.clone();
            thread::spawn(move || loop {
                match rx.recv_timeout(LONG) {
                    Ok(v) => got.lock().unwrap().push(v.id),
                    Err(RecvTimeoutError::Timeout) => {}
                    Err(RecvTimeoutError::Closed) => break,
                }
            })
        };
        stop.close();
        let ok: Vec<bool> = senders.into_iter().map(|s| s.join().unwrap()).collect();
        cancellable.join().unwrap();
        timed.join().unwrap();
        let got = got.lock().unwrap();
        for (id, ok) in ok.iter().enumerate() {
            assert_eq!(
                *ok,
                got.contains(&id),
                "send {id} returned Ok: {ok}, received: {got:?}"
            );
        }
        assert_each_dropped_once(&drops);
    });
}

/// Rendezvous: three senders (plain, timed, cancellable) park while the only
/// receiver takes at most one value and then drops (closing the channel). Each
/// sender either completed (its value was taken) or got its own value back; the
/// channel drops nothing a sender also got back.
#[test]
fn rendezvous_last_receiver_drop_hands_back_parked_values() {
    both(6_000, || {
        let drops = drop_table(3);
        let (tx, rx) = bounded::<Counted>(0);
        let stop = Signal::new();
        let taken = std::sync::Arc::new(std::sync::Mutex::new(None));
        let senders = spawn_senders(
            &tx,
            &stop,
            &drops,
            &[SendBy::Blocking, SendBy::Timed, SendBy::Cancellable],
        );
        let receiver = {
            let taken = taken.clone();
            thread::spawn(move || {
                thread::yield_now();
                if let Ok(v) = rx.try_recv() {
                    *taken.lock().unwrap() = Some(v.id);
                }
                // The last receiver goes: every parked sender must wake.
                drop(rx);
            })
        };
        receiver.join().unwrap();
        let ok: Vec<bool> = senders.into_iter().map(|s| s.join().unwrap()).collect();
        let taken = *taken.lock().unwrap();
        for (id, ok) in ok.iter().enumerate() {
            assert_eq!(
                *ok,
                taken == Some(id),
                "send {id}: Ok {ok}, taken {taken:?}"
            );
        }
        assert!(tx
            .send(Counted {
                id: 0,
                drops: drop_table(1)
            })
            .is_err());
        assert_each_dropped_once(&drops);
    });
}

/// Buffered: two cancellable receivers race two senders (one cancellable) and the
/// signal's close. A receive that is cancelled leaves the value in the channel:
/// every value sent Ok is received exactly once, by them or by the final drain.
#[test]
fn buffered_cancel_races_arrival_loses_nothing() {
    both(6_000, || {
        let drops = drop_table(2);
        let (tx, rx) = bounded::<Counted>(1);
        let stop = Signal::new();
        let got = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let senders = spawn_senders(&tx, &stop, &drops, &[SendBy::Blocking, SendBy::Cancellable]);
        let receivers: Vec<_> = (0..2)
            .map(|_| {
                let (rx, stop, got) = (rx.clone(), stop.clone(), got.clone());
                thread::spawn(move || {
                    while let Ok(v) = rx.recv_until(&stop) {
                        got.lock().unwrap().push(v.id);
                    }
                })
            })
            .collect();
        stop.close();
        for r in receivers {
            r.join().unwrap();
        }
        // The receivers are gone; room is freed only by this drain now.
        let mut ok = Vec::new();
        let drain = {
            let got = got.clone();
            thread::spawn(move || {
                while let Ok(v) = rx.recv() {
                    got.lock().unwrap().push(v.id);
                }
            })
        };
        for s in senders {
            ok.push(s.join().unwrap());
        }
        drop(tx);
        drain.join().unwrap();
        let got = got.lock().unwrap();
        for (id, ok) in ok.iter().enumerate() {
            let n = got.iter().filter(|&&g| g == id).count();
            assert_eq!(n, usize::from(*ok), "send {id}: Ok {ok}, received {got:?}");
        }
        assert_each_dropped_once(&drops);
    });
}
