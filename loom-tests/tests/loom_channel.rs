//! loom models of `atomkit::channel`: every interleaving (up to the preemption bound)
//! of small blocking scenarios. A lost wake-up leaves a thread asleep for good, which
//! loom reports as a deadlock (the wait layer's model parks on loom's own `Notify`).
//!
//! Run: `RUSTFLAGS="--cfg atomkit_loom --cfg crossbeam_loom" cargo nextest run --release -p atomkit-loom-tests --test loom_channel`
//! (or `cargo xtask loom`). `LOOM_MAX_PREEMPTIONS` overrides the bound set here.
//!
//! Under the model checkers the channel does not spin before sleeping, so every
//! blocking call that finds the channel empty (or full) goes straight to the
//! register / retry / sleep protocol of invariant 5 and races the other thread's
//! push, pop or close at every step. A timed wait gives up at a point loom chooses
//! (the wait layer's model), so both "woken in time" and "timed out" are explored.
#![cfg(atomkit_loom)]

use atomkit::channel::{
    bounded, RecvError, RecvTimeoutError, RecvUntilError, SendError, SendTimeoutError,
    SendUntilError, TryRecvError,
};
use atomkit::signal::{Cause, Signal};
use loom::sync::atomic::{AtomicUsize, Ordering};
use loom::sync::Arc;
use loom::thread;
use std::time::Duration;

const LONG: Duration = Duration::from_secs(3600);

fn model(f: impl Fn() + Sync + Send + 'static) {
    model_bound(3, f);
}

fn model_bound(bound: usize, f: impl Fn() + Sync + Send + 'static) {
    atomkit_loom_tests::loom_model(bound, f);
}

/// A receiver that finds the channel empty and goes to sleep is woken by a send.
#[test]
fn recv_sleeps_then_send_wakes() {
    model(|| {
        let (tx, rx) = bounded::<u64>(1);
        let r = thread::spawn(move || rx.recv());
        tx.send(7).unwrap();
        assert_eq!(r.join().unwrap(), Ok(7));
    });
}

/// A sender that finds the channel full and goes to sleep is woken by a receive.
#[test]
fn send_sleeps_on_full_then_recv_wakes() {
    model(|| {
        let (tx, rx) = bounded::<u64>(1);
        tx.send(1).unwrap();
        let s = thread::spawn(move || tx.send(2));
        assert_eq!(rx.recv(), Ok(1));
        assert_eq!(rx.recv(), Ok(2));
        assert_eq!(s.join().unwrap(), Ok(()));
    });
}

/// Close from the sender side wakes a receiver asleep on an empty channel.
#[test]
fn close_wakes_blocked_receiver() {
    model(|| {
        let (tx, rx) = bounded::<u64>(1);
        let r = thread::spawn(move || rx.recv());
        assert!(tx.close());
        assert_eq!(r.join().unwrap(), Err(RecvError));
    });
}

/// Close from the receiver side wakes a sender asleep on a full channel; the sender
/// gets its value back and the queued value is still received.
#[test]
fn close_wakes_blocked_sender() {
    model(|| {
        let (tx, rx) = bounded::<u64>(1);
        tx.send(1).unwrap();
        let s = thread::spawn(move || tx.send(2));
        assert!(rx.close());
        assert_eq!(s.join().unwrap(), Err(SendError(2)));
        assert_eq!(rx.recv(), Ok(1));
        assert_eq!(rx.recv(), Err(RecvError));
    });
}

/// Dropping the last sender wakes a sleeping receiver, after it has drained.
#[test]
fn drop_last_sender_wakes_receiver() {
    model(|| {
        let (tx, rx) = bounded::<u64>(2);
        let r = thread::spawn(move || {
            let a = rx.recv();
            let b = rx.recv();
            (a, b)
        });
        tx.send(3).unwrap();
        drop(tx);
        assert_eq!(r.join().unwrap(), (Ok(3), Err(RecvError)));
    });
}

/// A send racing a close, with a receiver draining: the value is received if and only
/// if the send returned Ok (invariant 4: never stranded by the close).
#[test]
fn close_racing_send_strands_nothing() {
    model(|| {
        let (tx, rx) = bounded::<u64>(1);
        let tx2 = tx.clone();
        let s = thread::spawn(move || tx2.send(5).is_ok());
        let r = thread::spawn(move || rx.recv().ok());
        tx.close();
        let sent = s.join().unwrap();
        let got = r.join().unwrap();
        assert_eq!(sent, got == Some(5), "sent {sent}, received {got:?}");
    });
}

/// A send into a full channel racing a close and then a receive: the channel is full
/// until the receive, which comes after the close, so there is no point at which the
/// send could take effect, and it must fail (invariant 2: a send succeeds only if it
/// took its position before the close). The old closed flag beside the queue let it
/// check the flag before the close and push after the receive, and return `Ok`.
#[test]
fn send_into_full_channel_racing_close_then_recv_fails() {
    model(|| {
        let (tx, rx) = bounded::<u64>(1);
        tx.try_send(1).unwrap();
        // A second handle: the first stays here, so the sender thread's exit does
        // not close the channel.
        let tx2 = tx.clone();
        let s = thread::spawn(move || tx2.try_send(2));
        assert!(rx.close());
        assert_eq!(rx.try_recv(), Ok(1));
        let sent = s.join().unwrap();
        assert!(
            sent.is_err(),
            "a send into a full channel succeeded after its close"
        );
        assert_eq!(rx.try_recv(), Err(TryRecvError::Closed));
    });
}

/// Receives everything until the channel reports closed.
fn drain(rx: &atomkit::channel::Receiver<u64>) -> Vec<u64> {
    let mut got = Vec::new();
    loop {
        match rx.try_recv() {
            Ok(v) => got.push(v),
            Err(TryRecvError::Closed) => return got,
            Err(TryRecvError::Empty) => thread::yield_now(),
        }
    }
}

/// Two receivers drain while a send races the close: together they receive the
/// value exactly when the send returned `Ok` (the closed-queue pop settles every
/// position handed out, however the two share them).
#[test]
fn two_receivers_drain_while_a_send_races_the_close() {
    model_bound(3, || {
        let (tx, rx) = bounded::<u64>(2);
        tx.try_send(1).unwrap();
        let tx2 = tx.clone();
        let s = thread::spawn(move || tx2.try_send(2).is_ok());
        let rx2 = rx.clone();
        let r = thread::spawn(move || drain(&rx2));
        rx.close();
        let mut all = drain(&rx);
        let sent = s.join().unwrap();
        all.extend(r.join().unwrap());
        all.sort();
        assert_eq!(all, if sent { vec![1, 2] } else { vec![1] }, "sent {sent}");
        drop(tx);
    });
}

/// Once one receiver has reported the channel closed, a receive that starts after
/// that reports it closed too: never a value, never "empty". (It fails if `catchup`
/// drops the closed bit when it moves `tail`.)
#[test]
fn closed_is_final_for_receives_that_start_after_it() {
    use loom::sync::atomic::AtomicBool;
    model_bound(3, || {
        let (tx, rx) = bounded::<u64>(2);
        let tx2 = tx.clone();
        let s = thread::spawn(move || tx2.try_send(2).is_ok());
        let seen_closed = Arc::new(AtomicBool::new(false));
        let (rx2, seen) = (rx.clone(), seen_closed.clone());
        let r = thread::spawn(move || {
            let mut got = Vec::new();
            loop {
                let after = seen.load(Ordering::SeqCst);
                match rx2.try_recv() {
                    Ok(v) => {
                        assert!(!after, "{v} received after another receiver saw Closed");
                        got.push(v);
                    }
                    Err(TryRecvError::Closed) => return got,
                    Err(TryRecvError::Empty) => {
                        assert!(!after, "empty after another receiver saw Closed");
                        thread::yield_now();
                    }
                }
            }
        });
        tx.close();
        let mut all = drain(&rx);
        seen_closed.store(true, Ordering::SeqCst);
        let sent = s.join().unwrap();
        all.extend(r.join().unwrap());
        assert_eq!(all, if sent { vec![2] } else { vec![] }, "sent {sent}");
    });
}

/// Capacity 1 with two senders and one receiver: a pop in progress makes the queue
/// "full" for one sender while a push in progress makes it "empty" for the receiver.
/// Nobody sleeps through the end of the other's operation.
#[test]
fn cap1_full_and_empty_at_once() {
    model_bound(1, || {
        let (tx, rx) = bounded::<u64>(1);
        let tx2 = tx.clone();
        let s1 = thread::spawn(move || tx.send(1).unwrap());
        let s2 = thread::spawn(move || tx2.send(2).unwrap());
        let a = rx.recv().unwrap();
        let b = rx.recv().unwrap();
        assert_eq!(a + b, 3);
        s1.join().unwrap();
        s2.join().unwrap();
    });
}

/// Dropping the last receiver while a send is in flight: the value is dropped exactly
/// once (by the drain, or handed back to the sender), never leaked.
#[test]
fn last_receiver_drop_racing_send() {
    struct Counted(Arc<AtomicUsize>);
    impl Drop for Counted {
        fn drop(&mut self) {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }
    model(|| {
        let drops = Arc::new(AtomicUsize::new(0));
        let (tx, rx) = bounded::<Counted>(1);
        let d = drops.clone();
        let s = thread::spawn(move || {
            let r = tx.send(Counted(d));
            (r.is_ok(), tx)
        });
        drop(rx);
        let (_, tx) = s.join().unwrap();
        assert_eq!(drops.load(Ordering::SeqCst), 1);
        assert!(tx.is_closed());
    });
}

/// A timed receive racing a send: it gets the value or times out, and a value it did
/// not get is still in the channel.
#[test]
fn recv_timeout_racing_send() {
    model(|| {
        let (tx, rx) = bounded::<u64>(1);
        let rx2 = rx.clone();
        let r = thread::spawn(move || rx2.recv_timeout(LONG));
        tx.send(9).unwrap();
        match r.join().unwrap() {
            Ok(v) => {
                assert_eq!(v, 9);
                assert_eq!(rx.try_recv(), Err(TryRecvError::Empty));
            }
            Err(RecvTimeoutError::Timeout) => assert_eq!(rx.try_recv(), Ok(9)),
            Err(e) => panic!("{e}"),
        }
    });
}

/// A timed send on a full channel racing a receive: it sends or times out with its
/// value back, never both.
#[test]
fn send_timeout_racing_recv() {
    model(|| {
        let (tx, rx) = bounded::<u64>(1);
        tx.send(1).unwrap();
        let s = thread::spawn(move || tx.send_timeout(2, LONG));
        assert_eq!(rx.recv(), Ok(1));
        match s.join().unwrap() {
            Ok(()) => assert_eq!(rx.try_recv(), Ok(2)),
            Err(SendTimeoutError::Timeout(v)) => {
                assert_eq!(v, 2);
                assert_eq!(rx.try_recv(), Err(TryRecvError::Closed));
            }
            Err(e) => panic!("{e}"),
        }
    });
}

/// Rendezvous: a send completes only by a receive, both directions of arrival.
#[test]
fn rendezvous_send_recv() {
    model(|| {
        let (tx, rx) = bounded::<u64>(0);
        let s = thread::spawn(move || tx.send(4));
        assert_eq!(rx.recv(), Ok(4));
        assert_eq!(s.join().unwrap(), Ok(()));
    });
}

/// Rendezvous with both sides timed: either the value passed (send Ok and receive
/// Ok) or it did not (the sender has it back, the receiver timed out). Never
/// half-delivered.
#[test]
fn rendezvous_timeouts() {
    model(|| {
        let (tx, rx) = bounded::<u64>(0);
        let s = thread::spawn(move || tx.send_timeout(6, LONG));
        let got = rx.recv_timeout(LONG);
        let sent = s.join().unwrap();
        match (sent, got) {
            (Ok(()), Ok(6)) => {}
            (Err(SendTimeoutError::Timeout(6)), Err(RecvTimeoutError::Timeout)) => {}
            other => panic!("half-delivered: {other:?}"),
        }
    });
}

/// Rendezvous close wakes a blocked sender, which gets its value back.
#[test]
fn rendezvous_close_wakes_sender() {
    model(|| {
        let (tx, rx) = bounded::<u64>(0);
        let s = thread::spawn(move || tx.send(8));
        rx.close();
        assert_eq!(s.join().unwrap(), Err(SendError(8)));
        assert_eq!(rx.recv(), Err(RecvError));
    });
}

/// Two receivers asleep, two sends: each send that finds a registered sleeper bumps
/// the receivers' futex word and wakes one; neither receiver is left behind.
#[test]
fn two_receivers_two_sends() {
    model_bound(1, || {
        let (tx, rx) = bounded::<u64>(2);
        let rs: Vec<_> = (0..2)
            .map(|_| {
                let rx = rx.clone();
                thread::spawn(move || rx.recv().unwrap())
            })
            .collect();
        tx.send(1).unwrap();
        tx.send(2).unwrap();
        let got: u64 = rs.into_iter().map(|r| r.join().unwrap()).sum();
        assert_eq!(got, 3);
    });
}

/// A receiver asleep on an empty channel with a signal (no deadline anywhere) is
/// woken by the signal's close itself: the model has no timer, so a close that did
/// not reach the sleep would leave it asleep for good, a deadlock loom reports.
#[test]
fn signal_close_wakes_blocked_recv_until() {
    model(|| {
        let (_tx, rx) = bounded::<u64>(1);
        let stop = Signal::new();
        let r = {
            let stop = stop.clone();
            thread::spawn(move || rx.recv_until(&stop))
        };
        stop.close();
        assert_eq!(
            r.join().unwrap(),
            Err(RecvUntilError::Cancelled(Cause::Closed))
        );
    });
}

/// The same for a sender asleep on a full channel: it gets its value back, and the
/// queued value stays.
#[test]
fn signal_close_wakes_blocked_send_until() {
    model(|| {
        let (tx, rx) = bounded::<u64>(1);
        tx.send(1).unwrap();
        let stop = Signal::new();
        let s = {
            let stop = stop.clone();
            thread::spawn(move || tx.send_until(2, &stop))
        };
        stop.close();
        assert_eq!(
            s.join().unwrap(),
            Err(SendUntilError::Cancelled(2, Cause::Closed))
        );
        assert_eq!(rx.recv(), Ok(1));
    });
}

/// A rendezvous sender blocked with a signal is woken by the signal's close.
#[test]
fn signal_close_wakes_rendezvous_send_until() {
    model(|| {
        let (tx, _rx) = bounded::<u64>(0);
        let stop = Signal::new();
        let s = {
            let stop = stop.clone();
            thread::spawn(move || tx.send_until(5, &stop))
        };
        stop.close();
        assert_eq!(
            s.join().unwrap(),
            Err(SendUntilError::Cancelled(5, Cause::Closed))
        );
    });
}

/// Dropping the last sender wakes two receivers asleep on an empty channel. At
/// preemption bound 2 this once never finished: the wait model handed every
/// spurious wake-up of loom's `Notify` back to its caller, and each sleep has a
/// fresh `Notify`, so with the dropping thread preempted the two receivers could
/// take turns waking spuriously without end, and loom gave up on the model (over
/// its branch limit). The model now hands back one spurious wake-up per thread and
/// execution, and this model runs at bound 3 in CI (it also passes at 4).
#[test]
fn two_receivers_asleep_when_the_last_sender_drops() {
    model_bound(3, || {
        let (tx, rx) = bounded::<u64>(1);
        let rx2 = rx.clone();
        let r1 = thread::spawn(move || rx.recv());
        let r2 = thread::spawn(move || rx2.recv());
        drop(tx);
        assert_eq!(r1.join().unwrap(), Err(RecvError));
        assert_eq!(r2.join().unwrap(), Err(RecvError));
    });
}

/// Invariant 7 for receivers: one value, a receiver cancellable by a signal and a
/// plain one, both asleep; the send's single wake-up may reach the cancellable one
/// just as its signal closes. It must try again before it gives up, so that the
/// value it was woken for is received by one of them: a receiver that gave up on
/// the wake-up would leave the plain one asleep with the value queued (a deadlock
/// here). No earlier model caught a receiver that looked at its signal first. The
/// yields let each receiver reach its sleep without spending a preemption: at
/// bound 1 loom did not reach the schedule without them.
#[test]
fn a_cancelled_receiver_does_not_strand_the_value_it_was_woken_for() {
    model_bound(1, || {
        let (tx, rx) = bounded::<u64>(1);
        let stop = Signal::new();
        let r1 = {
            let (rx, stop) = (rx.clone(), stop.clone());
            thread::spawn(move || rx.recv_until(&stop))
        };
        thread::yield_now();
        let r2 = thread::spawn(move || rx.recv());
        thread::yield_now();
        tx.send(1).unwrap();
        stop.close();
        match r1.join().unwrap() {
            Ok(v) => {
                assert_eq!(v, 1);
                drop(tx);
                assert_eq!(r2.join().unwrap(), Err(RecvError));
            }
            Err(RecvUntilError::Cancelled(Cause::Closed)) => {
                assert_eq!(r2.join().unwrap(), Ok(1));
            }
            Err(e) => panic!("{e}"),
        }
    });
}

/// Invariant 7 for senders: a full channel, a sender cancellable by a signal and a
/// plain one, both asleep; one receive frees the one slot and its wake-up may reach
/// the cancellable sender just as its signal closes. It must try again before it
/// gives up, or the plain sender sleeps on with the slot free (a deadlock here).
/// The yields are there for the same reason as above.
#[test]
fn a_cancelled_sender_does_not_strand_the_room_it_was_woken_for() {
    model_bound(1, || {
        let (tx, rx) = bounded::<u64>(1);
        tx.send(0).unwrap();
        let stop = Signal::new();
        let s1 = {
            let (tx, stop) = (tx.clone(), stop.clone());
            thread::spawn(move || tx.send_until(1, &stop))
        };
        thread::yield_now();
        let s2 = thread::spawn(move || tx.send(2));
        thread::yield_now();
        assert_eq!(rx.recv(), Ok(0));
        stop.close();
        match s1.join().unwrap() {
            Ok(()) => {
                let a = rx.recv().unwrap();
                let b = rx.recv().unwrap();
                assert_eq!(a + b, 3);
            }
            Err(SendUntilError::Cancelled(1, Cause::Closed)) => assert_eq!(rx.recv(), Ok(2)),
            Err(e) => panic!("{e}"),
        }
        assert_eq!(s2.join().unwrap(), Ok(()));
    });
}
