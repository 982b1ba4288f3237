//! The drop ledger shared by the queue, channel and deque fuzz targets: payloads that
//! record their drops by id, and the check that the values alive are exactly those a
//! model holds.

use std::cell::RefCell;
use std::collections::VecDeque;
use std::rc::Rc;

/// Every value made, by id: whether it has been dropped.
#[derive(Default)]
pub struct Ledger {
    dropped: Vec<bool>,
    drops: usize,
}

/// The payload. Its drop is recorded in the shared ledger rather than in the value
/// itself, so that a bitwise duplicate (a slot read twice) is caught on its second
/// drop too. None of `ArrayQueue`, `bounded`, `Worker` and `Injector` puts a `Send`
/// bound on `T`, so the `Rc` needs no `unsafe impl Send`.
pub struct Tracked {
    pub id: usize,
    ledger: Rc<RefCell<Ledger>>,
}

impl Tracked {
    pub fn new(ledger: &Rc<RefCell<Ledger>>) -> Tracked {
        let mut l = ledger.borrow_mut();
        l.dropped.push(false);
        Tracked {
            id: l.dropped.len() - 1,
            ledger: ledger.clone(),
        }
    }
}

impl Drop for Tracked {
    fn drop(&mut self) {
        let mut l = self.ledger.borrow_mut();
        assert!(!l.dropped[self.id], "value {} dropped twice", self.id);
        l.dropped[self.id] = true;
        l.drops += 1;
    }
}

/// The values alive are exactly those the model holds: made = in the model + dropped,
/// and none of the model's has been dropped.
pub fn check(ledger: &Rc<RefCell<Ledger>>, m: &VecDeque<usize>) {
    let l = ledger.borrow();
    assert_eq!(
        l.dropped.len(),
        m.len() + l.drops,
        "made != alive in the model + dropped"
    );
    for &id in m {
        assert!(!l.dropped[id], "value {id} dropped while still queued");
    }
}
