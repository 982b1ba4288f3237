//! Single-threaded op sequences on a `channel::bounded` channel, compared with a
//! `VecDeque` model of the same capacity plus a closed flag: try_send, try_recv,
//! timed calls with a deadline already past, close from either side, len and the
//! other snapshots, handle clones and drops. Every op names the handle it goes
//! through (an index modulo the live handles of that side), so sends, receives and
//! closes go through clones, the original handle can go first, and the last sender
//! or receiver can be any of them. Each value has its own id and is recorded in a
//! ledger when dropped: after every op the values alive must be exactly the model's
//! (so the last receiver's drop must drop the queued values then and there), and at
//! the end every value must have been dropped exactly once.
#![no_main]

use arbitrary::Arbitrary;
use atomkit::channel::{bounded, RecvTimeoutError, SendTimeoutError, TryRecvError, TrySendError};
use libfuzzer_sys::fuzz_target;
use std::cell::RefCell;
use std::collections::VecDeque;
use std::rc::Rc;
use std::time::Instant;

/// The `u8` of each op picks a handle: index modulo the live handles of its side
/// (for `Len`, of senders then receivers). An op with no live handle is skipped.
#[derive(Arbitrary, Debug)]
enum Op {
    TrySend(u8),
    SendDeadlinePast(u8),
    TryRecv(u8),
    RecvDeadlinePast(u8),
    CloseTx(u8),
    CloseRx(u8),
    Len(u8),
    CloneTx(u8),
    DropTx(u8),
    CloneRx(u8),
    DropRx(u8),
}

#[derive(Arbitrary, Debug)]
struct Input {
    cap: u8,
    ops: Vec<Op>,
}

#[path = "../common/ledger.rs"]
mod ledger;
use ledger::{check, Ledger, Tracked};

/// The handle `i` names among `live` handles, if there is any.
fn pick(live: usize, i: u8) -> Option<usize> {
    (live > 0).then(|| i as usize % live)
}

fuzz_target!(|input: Input| {
    let cap = input.cap as usize % 9; // 0 is a rendezvous channel
    let ledger = Rc::new(RefCell::new(Ledger::default()));
    let (tx, rx) = bounded::<Tracked>(cap);
    let mut txs = vec![tx];
    let mut rxs = vec![rx];
    // The ids of the values queued, oldest first (always empty for a rendezvous: a
    // single thread never has a partner blocked on the other side).
    let mut m: VecDeque<usize> = VecDeque::new();
    let mut closed = false;
    for op in input.ops {
        match op {
            Op::TrySend(i) | Op::SendDeadlinePast(i) => {
                let Some(i) = pick(txs.len(), i) else {
                    continue;
                };
                let tx = &txs[i];
                let v = Tracked::new(&ledger);
                let vid = v.id;
                let (full, back) = if matches!(op, Op::SendDeadlinePast(_)) {
                    match tx.send_deadline(v, Instant::now()) {
                        Ok(()) => (false, None),
                        Err(SendTimeoutError::Timeout(b)) => (true, Some(b)),
                        Err(SendTimeoutError::Closed(b)) => (false, Some(b)),
                    }
                } else {
                    match tx.try_send(v) {
                        Ok(()) => (false, None),
                        Err(TrySendError::Full(b)) => (true, Some(b)),
                        Err(TrySendError::Closed(b)) => (false, Some(b)),
                    }
                };
                let back = back.map(|b| b.id);
                if closed {
                    assert!(!full && back == Some(vid), "closed: must refuse");
                } else if m.len() == cap {
                    // Full; a rendezvous has no receiver blocked here, so it is too.
                    assert!(full && back == Some(vid), "full: must refuse");
                } else {
                    assert_eq!(back, None, "room: must send");
                    m.push_back(vid);
                }
            }
            Op::TryRecv(i) | Op::RecvDeadlinePast(i) => {
                let Some(i) = pick(rxs.len(), i) else {
                    continue;
                };
                let rx = &rxs[i];
                let got = if matches!(op, Op::RecvDeadlinePast(_)) {
                    rx.recv_deadline(Instant::now()).map_err(|e| match e {
                        RecvTimeoutError::Timeout => TryRecvError::Empty,
                        RecvTimeoutError::Closed => TryRecvError::Closed,
                    })
                } else {
                    rx.try_recv()
                };
                // A closed channel still hands out what was queued before `Closed`.
                match m.pop_front() {
                    Some(id) => assert_eq!(got.ok().map(|t| t.id), Some(id)),
                    None if closed => assert!(matches!(got, Err(TryRecvError::Closed))),
                    None => assert!(matches!(got, Err(TryRecvError::Empty))),
                }
            }
            Op::CloseTx(i) => {
                let Some(i) = pick(txs.len(), i) else {
                    continue;
                };
                assert_eq!(txs[i].close(), !closed);
                closed = true;
            }
            Op::CloseRx(i) => {
                let Some(i) = pick(rxs.len(), i) else {
                    continue;
                };
                assert_eq!(rxs[i].close(), !closed);
                closed = true;
            }
            Op::Len(i) => {
                let Some(i) = pick(txs.len() + rxs.len(), i) else {
                    continue;
                };
                let (len, empty, full, c, is_closed) = match txs.get(i) {
                    Some(tx) => (
                        tx.len(),
                        tx.is_empty(),
                        tx.is_full(),
                        tx.capacity(),
                        tx.is_closed(),
                    ),
                    None => {
                        let rx = &rxs[i - txs.len()];
                        (
                            rx.len(),
                            rx.is_empty(),
                            rx.is_full(),
                            rx.capacity(),
                            rx.is_closed(),
                        )
                    }
                };
                assert_eq!(len, m.len());
                assert_eq!(empty, m.is_empty());
                assert_eq!(full, m.len() == cap);
                assert_eq!(c, cap);
                assert_eq!(is_closed, closed);
            }
            Op::CloneTx(i) => {
                let Some(i) = pick(txs.len(), i) else {
                    continue;
                };
                let tx = txs[i].clone();
                assert!(tx.same_channel(&txs[i]));
                txs.push(tx);
            }
            Op::CloneRx(i) => {
                let Some(i) = pick(rxs.len(), i) else {
                    continue;
                };
                let rx = rxs[i].clone();
                assert!(rx.same_channel(&rxs[i]));
                rxs.push(rx);
            }
            Op::DropTx(i) => {
                let Some(i) = pick(txs.len(), i) else {
                    continue;
                };
                drop(txs.remove(i));
                if txs.is_empty() {
                    closed = true; // the last sender closes; receivers then drain
                }
            }
            Op::DropRx(i) => {
                let Some(i) = pick(rxs.len(), i) else {
                    continue;
                };
                drop(rxs.remove(i));
                if rxs.is_empty() {
                    // The last receiver closes and drops the queued values right away,
                    // not when the senders go: `check` below holds it to that.
                    closed = true;
                    m.clear();
                }
            }
        }
        check(&ledger, &m);
    }
    drop(txs);
    drop(rxs);
    // Nothing is left alive: every value was dropped, and (by `Tracked::drop`) once.
    check(&ledger, &VecDeque::new());
});
