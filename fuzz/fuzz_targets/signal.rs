//! A tree of signals driven by an op sequence, compared with a plain model: a parent
//! index per node and a closed flag, where closing marks the whole subtree.
#![no_main]

use arbitrary::Arbitrary;
use atomkit::signal::{Cause, Signal};
use libfuzzer_sys::fuzz_target;

#[derive(Arbitrary, Debug)]
enum Op {
    /// A child of node `n % len`.
    Child(u8),
    /// A second handle to node `n % len`.
    Clone(u8),
    /// Drop the handle of node `n % len` (the node stays in the model: its children
    /// keep their link semantics).
    Drop(u8),
    /// Close node `n % len`.
    Close(u8),
    /// Compare every live handle with the model.
    Check,
}

struct ModelNode {
    parent: Option<usize>,
    closed: bool,
}

fuzz_target!(|ops: Vec<Op>| {
    let mut model = vec![ModelNode {
        parent: None,
        closed: false,
    }];
    let mut handles: Vec<Vec<Signal>> = vec![vec![Signal::new()]];
    for op in ops.into_iter().take(256) {
        let len = model.len();
        match op {
            Op::Child(n) => {
                let p = n as usize % len;
                // A node whose handles are all gone cannot make children.
                let Some(h) = handles[p].first() else {
                    continue;
                };
                let c = h.child();
                model.push(ModelNode {
                    parent: Some(p),
                    closed: model[p].closed,
                });
                handles.push(vec![c]);
            }
            Op::Clone(n) => {
                let i = n as usize % len;
                if let Some(h) = handles[i].first() {
                    let c = h.clone();
                    assert!(c.same_as(h));
                    handles[i].push(c);
                }
            }
            Op::Drop(n) => {
                let i = n as usize % len;
                handles[i].pop();
            }
            Op::Close(n) => {
                let i = n as usize % len;
                let Some(h) = handles[i].first() else {
                    continue;
                };
                let was_open = !model[i].closed;
                assert_eq!(h.close(), was_open, "close reports true exactly once");
                if was_open {
                    // Close the subtree in the model; children come after parents.
                    model[i].closed = true;
                    for j in i + 1..model.len() {
                        if let Some(p) = model[j].parent {
                            if model[p].closed && p >= i && is_descendant(&model, j, i) {
                                model[j].closed = true;
                            }
                        }
                    }
                }
            }
            Op::Check => {
                for (i, hs) in handles.iter().enumerate() {
                    for h in hs {
                        assert_eq!(h.is_closed(), model[i].closed, "node {i}");
                        let want = model[i].closed.then_some(Cause::Closed);
                        assert_eq!(h.cause(), want, "node {i}");
                    }
                }
            }
        }
    }
});

fn is_descendant(model: &[ModelNode], mut j: usize, ancestor: usize) -> bool {
    while let Some(p) = model[j].parent {
        if p == ancestor {
            return true;
        }
        j = p;
    }
    false
}
