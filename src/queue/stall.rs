//! Test-only suspension points inside [`ArrayQueue`](super::ArrayQueue)'s `push` and
//! `pop`, compiled in only under `--cfg atomkit_stall`.
//!
//! A test arms its thread with [`arm`]: the `step`-th suspension point that thread
//! reaches from then on parks it until the test calls [`Gate::release`]. Meanwhile
//! other threads keep pushing and popping; the stall test checks that they all
//! finish, which is what "lock-free" promises. In every other build [`point`] is an
//! empty inline function.

#[cfg(not(all(atomkit_stall, not(any(atomkit_loom, atomkit_shuttle)))))]
#[inline(always)]
pub(super) fn point(_label: &'static str) {}

#[cfg(all(atomkit_stall, not(any(atomkit_loom, atomkit_shuttle))))]
pub(super) use imp::point;

#[cfg(all(atomkit_stall, not(any(atomkit_loom, atomkit_shuttle))))]
pub use imp::{arm, disarm, Gate};

#[cfg(all(atomkit_stall, not(any(atomkit_loom, atomkit_shuttle))))]
mod imp {
    use crate::sync::atomic::{AtomicBool, Ordering};
    use crate::sync::{lock, thread, Arc, Mutex};
    use core::fmt;
    use std::cell::{Cell, RefCell};
    use std::time::Duration;

    /// Where an armed thread parks, and the switch that lets it go.
    pub struct Gate {
        parked: AtomicBool,
        released: AtomicBool,
        label: Mutex<Option<&'static str>>,
    }

    impl fmt::Debug for Gate {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.debug_struct("Gate").finish_non_exhaustive()
        }
    }

    impl Gate {
        /// A closed gate.
        pub fn new() -> Arc<Gate> {
            Arc::new(Gate {
                parked: AtomicBool::new(false),
                released: AtomicBool::new(false),
                label: Mutex::new(None),
            })
        }

        /// The label of the point where the armed thread is parked, if it is.
        pub fn parked_at(&self) -> Option<&'static str> {
            // Ordering: Acquire pairs with the Release store in `point`.
            if self.parked.load(Ordering::Acquire) {
                *lock(&self.label)
            } else {
                None
            }
        }

        /// Lets the parked thread (or the one that will park) go on.
        pub fn release(&self) {
            // Ordering: Release pairs with the Acquire load in `point`'s park loop.
            self.released.store(true, Ordering::Release);
        }
    }

    thread_local! {
        static PLAN: RefCell<Option<(u32, Arc<Gate>)>> = const { RefCell::new(None) };
        static HITS: Cell<u32> = const { Cell::new(0) };
    }

    /// Parks the calling thread at the `step`-th suspension point (counting from 1)
    /// it reaches from now on, until `gate` is released.
    pub fn arm(step: u32, gate: Arc<Gate>) {
        HITS.with(|h| h.set(0));
        PLAN.with(|p| *p.borrow_mut() = Some((step, gate)));
    }

    /// Disarms the calling thread; returns how many points it passed since `arm`.
    pub fn disarm() -> u32 {
        PLAN.with(|p| *p.borrow_mut() = None);
        HITS.with(|h| h.get())
    }

    /// A suspension point.
    pub(crate) fn point(label: &'static str) {
        let hit = HITS.with(|h| {
            h.set(h.get() + 1);
            h.get()
        });
        let gate = PLAN.with(|p| match &*p.borrow() {
            Some((step, gate)) if *step == hit => Some(gate.clone()),
            _ => None,
        });
        if let Some(gate) = gate {
            *lock(&gate.label) = Some(label);
            // Ordering: Release pairs with the Acquire load in `Gate::parked_at`.
            gate.parked.store(true, Ordering::Release);
            // Ordering: Acquire pairs with the Release store in `Gate::release`.
            while !gate.released.load(Ordering::Acquire) {
                thread::sleep(Duration::from_micros(200));
            }
        }
    }
}
