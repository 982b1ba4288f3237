//! Suspends a thread with a signal at an arbitrary instruction of its loop and checks
//! whether another thread can still finish a fixed job meanwhile: the lock-freedom
//! test of the queue and of the deque's Injector (Linux only). One test at a time
//! runs it: the signal handler and its flags are process-wide.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{mpsc, Arc, Mutex};
use std::thread;
use std::time::Duration;

static PARKED: AtomicBool = AtomicBool::new(false);
static RELEASE: AtomicBool = AtomicBool::new(false);
static SERIAL: Mutex<()> = Mutex::new(());
/// Set by the victim (through [`in_op`]) while it is inside an operation of the
/// structure under test; read by the handler when it parks the victim.
static IN_OP: AtomicBool = AtomicBool::new(false);
/// Whether the victim was inside an operation when it was last parked.
static PARKED_IN_OP: AtomicBool = AtomicBool::new(false);
/// Set while the victim is inside the allocator (when the test binary installs
/// [`MarkAllocations`]); read by the handler when it parks the victim.
static IN_ALLOC: AtomicBool = AtomicBool::new(false);
/// Whether the victim was inside the allocator when it was last parked.
static PARKED_IN_ALLOC: AtomicBool = AtomicBool::new(false);

thread_local! {
    static IS_VICTIM: Cell<bool> = const { Cell::new(false) };
}

/// The system allocator, marking the spans in which the victim thread is inside it.
/// A thread suspended inside `malloc` or `free` may hold one of the allocator's
/// locks, which blocks every thread that allocates (a deque copying its buffer, and
/// this harness itself): that is the allocator's lock, not the structure's, so
/// [`run`] lets such a suspension go at once and suspends the victim again at
/// another moment, and reports how often it did (`skipped_in_alloc`).
pub(crate) struct MarkAllocations;

impl MarkAllocations {
    fn mark<R>(f: impl FnOnce() -> R) -> R {
        // `try_with`: the allocator also runs while thread-locals are torn down.
        let victim = IS_VICTIM.try_with(Cell::get).unwrap_or(false);
        if !victim {
            return f();
        }
        IN_ALLOC.store(true, Ordering::SeqCst);
        let r = f();
        IN_ALLOC.store(false, Ordering::SeqCst);
        r
    }
}

// SAFETY: every call is forwarded unchanged to `System`.
unsafe impl GlobalAlloc for MarkAllocations {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: forwarded with the caller's guarantees.
        Self::mark(|| unsafe { System.alloc(layout) })
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: forwarded with the caller's guarantees.
        Self::mark(|| unsafe { System.dealloc(ptr, layout) })
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        // SAFETY: forwarded with the caller's guarantees.
        Self::mark(|| unsafe { System.alloc_zeroed(layout) })
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: forwarded with the caller's guarantees.
        Self::mark(|| unsafe { System.realloc(ptr, layout, new_size) })
    }
}

/// Runs one operation of the structure under test on the victim thread, marking it as
/// inside an operation meanwhile, so that a run can report how many suspensions hit
/// the structure's code rather than the loop around it.
pub(crate) fn in_op<R>(op: impl FnOnce() -> R) -> R {
    IN_OP.store(true, Ordering::SeqCst);
    let r = op();
    IN_OP.store(false, Ordering::SeqCst);
    r
}

extern "C" fn park_handler(_: libc::c_int) {
    // Only atomics and nanosleep here: both are async-signal-safe.
    PARKED_IN_OP.store(IN_OP.load(Ordering::SeqCst), Ordering::SeqCst);
    PARKED_IN_ALLOC.store(IN_ALLOC.load(Ordering::SeqCst), Ordering::SeqCst);
    PARKED.store(true, Ordering::SeqCst);
    while !RELEASE.load(Ordering::SeqCst) {
        let ts = libc::timespec {
            tv_sec: 0,
            tv_nsec: 100_000,
        };
        // SAFETY: `ts` is a valid timespec; a null remainder pointer is allowed.
        unsafe { libc::nanosleep(&ts, std::ptr::null_mut()) };
    }
    PARKED.store(false, Ordering::SeqCst);
}

fn install_handler() {
    // SAFETY: a zeroed sigaction is a valid starting point; we set the handler and
    // an empty mask, and `park_handler` is async-signal-safe.
    unsafe {
        let mut sa: libc::sigaction = std::mem::zeroed();
        sa.sa_sigaction = park_handler as *const () as usize;
        sa.sa_flags = libc::SA_RESTART;
        libc::sigemptyset(&mut sa.sa_mask);
        assert_eq!(libc::sigaction(libc::SIGUSR1, &sa, std::ptr::null_mut()), 0);
    }
}

/// Outcome of one run: trials in which the victim was parked (and how many of those
/// caught it inside an operation; suspensions inside the allocator, let go at once,
/// are counted apart, see [`MarkAllocations`]), how many of them left the other
/// thread unable to finish within the patience, and what both threads counted as
/// done (the victim's steps' and the jobs' return values, summed).
pub(crate) struct Outcome {
    pub(crate) parked: u32,
    pub(crate) parked_in_op: u32,
    pub(crate) skipped_in_alloc: u32,
    pub(crate) wedged: u32,
    pub(crate) moved: u64,
    /// The least that one job which finished in time counted as done.
    pub(crate) fewest: u64,
}

impl Outcome {
    /// Prints the outcome for `name` and checks that every one of `trials`
    /// suspensions happened, at least half of them inside an operation (a victim
    /// parked between operations proves nothing), none left the other thread unable
    /// to finish, and every job got at least `least` done while the victim was
    /// suspended (finishing by giving up, with nothing done, is not progress).
    pub(crate) fn assert_never_wedged(&self, name: &str, trials: u32, least: u64) {
        eprintln!(
            "{name}: victim suspended {} times ({} inside an operation; {} more inside \
             the allocator, let go), other thread wedged {} times, {} done, at least {} \
             per job",
            self.parked,
            self.parked_in_op,
            self.skipped_in_alloc,
            self.wedged,
            self.moved,
            self.fewest
        );
        assert_eq!(self.parked, trials);
        assert!(
            self.parked_in_op * 2 >= trials,
            "only {} of {trials} suspensions caught the victim inside an operation",
            self.parked_in_op
        );
        assert_eq!(self.wedged, 0, "a suspended thread blocked another one");
        assert!(
            self.fewest >= least,
            "a job got only {} done while the victim was suspended",
            self.fewest
        );
    }

    /// Prints the outcome for `name` and checks that at least one suspension left
    /// the other thread waiting for the victim.
    pub(crate) fn assert_wedged(&self, name: &str) {
        eprintln!(
            "{name}: victim suspended {} times ({} inside an operation), other thread \
             wedged {} times",
            self.parked, self.parked_in_op, self.wedged
        );
        assert!(
            self.wedged >= 1,
            "expected {name} to wedge at least once in {} suspensions",
            self.parked
        );
    }
}

/// Runs `step` in a loop on a victim thread; `trials` times, suspends the victim at a
/// random moment and runs `job` on a fresh thread, waiting `patience` for it to
/// finish before resuming the victim. Stops early after `stop_after_wedges` jobs
/// that did not finish in time.
pub(crate) fn run(
    step: impl Fn() -> u64 + Send + Sync + 'static,
    job: impl Fn() -> u64 + Send + Sync + 'static,
    trials: u32,
    patience: Duration,
    stop_after_wedges: u32,
) -> Outcome {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    install_handler();
    let stop = Arc::new(AtomicBool::new(false));
    let tid = Arc::new(AtomicU64::new(0));
    let victim = {
        let (stop, tid) = (stop.clone(), tid.clone());
        thread::spawn(move || {
            IS_VICTIM.with(|v| v.set(true));
            // SAFETY: pthread_self has no preconditions.
            tid.store(unsafe { libc::pthread_self() } as u64, Ordering::SeqCst);
            let mut moved = 0u64;
            while !stop.load(Ordering::Relaxed) {
                moved += step();
            }
            moved
        })
    };
    while tid.load(Ordering::SeqCst) == 0 {
        thread::yield_now();
    }
    let job = Arc::new(job);
    let mut out = Outcome {
        parked: 0,
        parked_in_op: 0,
        skipped_in_alloc: 0,
        wedged: 0,
        moved: 0,
        fewest: u64::MAX,
    };
    let mut x = 0x2545_F491_4F6C_DD1Du64;
    for _ in 0..trials {
        // Suspend the victim at a random moment outside the allocator. Nothing in
        // this loop allocates: the victim may hold the allocator's lock meanwhile.
        loop {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            thread::sleep(Duration::from_micros(x % 300));
            RELEASE.store(false, Ordering::SeqCst);
            // SAFETY: the victim thread is alive (joined only below) and SIGUSR1 has
            // our handler installed.
            let rc = unsafe {
                libc::pthread_kill(tid.load(Ordering::SeqCst) as libc::pthread_t, libc::SIGUSR1)
            };
            assert_eq!(rc, 0);
            let mut waited = 0;
            while !PARKED.load(Ordering::SeqCst) && waited < 2_000 {
                thread::sleep(Duration::from_micros(500));
                waited += 1;
            }
            assert!(PARKED.load(Ordering::SeqCst), "victim did not park");
            if !PARKED_IN_ALLOC.load(Ordering::SeqCst) {
                break;
            }
            RELEASE.store(true, Ordering::SeqCst);
            while PARKED.load(Ordering::SeqCst) {
                thread::yield_now();
            }
            out.skipped_in_alloc += 1;
            assert!(
                out.skipped_in_alloc <= 10 * trials,
                "the victim is nearly always inside the allocator"
            );
        }
        out.parked += 1;
        out.parked_in_op += u32::from(PARKED_IN_OP.load(Ordering::SeqCst));
        let (tx, rx) = mpsc::channel();
        let worker = {
            let job = job.clone();
            thread::spawn(move || {
                let moved = job();
                let _ = tx.send(());
                moved
            })
        };
        let finished = rx.recv_timeout(patience).is_ok();
        RELEASE.store(true, Ordering::SeqCst);
        let done = worker.join().unwrap();
        out.moved += done;
        if finished {
            out.fewest = out.fewest.min(done);
        }
        while PARKED.load(Ordering::SeqCst) {
            thread::yield_now();
        }
        if !finished {
            out.wedged += 1;
            if out.wedged >= stop_after_wedges {
                break;
            }
        }
    }
    stop.store(true, Ordering::Relaxed);
    out.moved += victim.join().unwrap();
    out
}
