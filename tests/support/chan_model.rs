//! The sequential specification of a channel for the linearizability checker: a FIFO
//! of capacity `cap` that can be closed; after close, sends fail and receives drain,
//! then report closed. Shared by `tests/channel.rs` and the shuttle models; include it
//! next to `lincheck` with `#[path = "support/chan_model.rs"] mod chan_model;`.

use crate::lincheck::Model;
use std::collections::VecDeque;

/// The model's state.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub(crate) struct ChanModel {
    cap: usize,
    items: VecDeque<u64>,
    closed: bool,
}

impl ChanModel {
    /// An open, empty channel of capacity `cap`.
    pub(crate) fn new(cap: usize) -> Self {
        ChanModel {
            cap,
            items: VecDeque::new(),
            closed: false,
        }
    }
}

/// An operation of a history.
#[derive(Clone, Debug)]
pub(crate) enum Op {
    Send(u64),
    TrySend(u64),
    TryRecv,
    Close,
}

/// What an operation returned.
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum Ret {
    Sent,
    Full,
    SendClosed,
    Got(u64),
    Empty,
    RecvClosed,
    Closed(bool),
}

impl Model for ChanModel {
    type Op = Op;
    type Ret = Ret;
    fn step(&mut self, op: &Op) -> Ret {
        match *op {
            Op::Send(v) | Op::TrySend(v) => {
                if self.closed {
                    Ret::SendClosed
                } else if self.items.len() == self.cap {
                    // Only try_send gets here in histories that never fill.
                    Ret::Full
                } else {
                    self.items.push_back(v);
                    Ret::Sent
                }
            }
            Op::TryRecv => match self.items.pop_front() {
                Some(v) => Ret::Got(v),
                None if self.closed => Ret::RecvClosed,
                None => Ret::Empty,
            },
            Op::Close => {
                let first = !self.closed;
                self.closed = true;
                Ret::Closed(first)
            }
        }
    }
}
