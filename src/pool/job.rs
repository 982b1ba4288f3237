//! Jobs, their one-allocation task cell, and the handle that waits for the result.

use super::WorkerStats;
use crate::signal::Signal;
use crate::sync::atomic::{AtomicU32, Ordering};
use crate::sync::time::{self, Duration, Instant};
use crate::sync::{Arc, UnsafeCell};
use crate::wait;
use core::fmt;
use core::marker::PhantomData;
use core::mem::{align_of, size_of, MaybeUninit};
use std::any::Any;
use std::panic::{catch_unwind, AssertUnwindSafe};

/// Drops `x`, catching a panic in its `Drop`, and drops that panic's payload under a
/// second catch. A payload whose own `Drop` panics again is leaked: dropping the
/// value `catch_unwind` returns outside any catch would let that second panic escape
/// (the pitfall of rust-lang/rust#86027), and this runs on worker threads and in
/// `shutdown`, which must not unwind.
pub(super) fn drop_quietly<T>(x: T) {
    if let Err(payload) = catch_unwind(AssertUnwindSafe(move || drop(x))) {
        if let Err(again) = catch_unwind(AssertUnwindSafe(move || drop(payload))) {
            core::mem::forget(again);
        }
    }
}

/// Work the pool can run: a closure `FnOnce() -> T`, or a closure
/// `FnOnce(&Signal) -> T` wrapped by [`with_signal`].
///
/// Every `FnOnce() -> T + Send + 'static` is a `Job` as it is. A job that wants to
/// stop early when the pool cancels ([`WorkerPool::shutdown`] past its deadline,
/// [`WorkerPool::shutdown_now`]) takes the pool's [`Signal`] through [`with_signal`].
/// Implement the trait yourself for a named job type.
///
/// [`WorkerPool::shutdown`]: super::WorkerPool::shutdown
/// [`WorkerPool::shutdown_now`]: super::WorkerPool::shutdown_now
///
/// # Examples
///
/// ```
/// use atomkit::pool::{Job, WorkerPool};
/// use atomkit::Signal;
///
/// struct Square(u64);
/// impl Job for Square {
///     type Output = u64;
///     fn run(self, _stop: &Signal) -> u64 {
///         self.0 * self.0
///     }
/// }
///
/// let pool = WorkerPool::builder().workers(1).build().unwrap();
/// assert_eq!(pool.submit(Square(7)).unwrap().join().unwrap(), 49);
/// ```
pub trait Job: Send + 'static {
    /// What the job returns; its handle's [`join`](JobHandle::join) hands it over.
    type Output: Send + 'static;

    /// Runs the job on a worker. `signal` is the pool's cancellation signal: it closes
    /// when the pool gives up waiting for running jobs.
    fn run(self, signal: &Signal) -> Self::Output;
}

impl<F, T> Job for F
where
    F: FnOnce() -> T + Send + 'static,
    T: Send + 'static,
{
    type Output = T;

    #[inline]
    fn run(self, _signal: &Signal) -> T {
        self()
    }
}

/// A job that takes the pool's cancellation [`Signal`]; made by [`with_signal`].
pub struct WithSignal<F>(F);

impl<F> WithSignal<F> {
    /// The closure inside.
    ///
    /// # Examples
    ///
    /// ```
    /// use atomkit::pool::with_signal;
    ///
    /// let job = with_signal(|_stop| 5);
    /// let f = job.into_inner();
    /// assert_eq!(f(&atomkit::Signal::new()), 5);
    /// ```
    pub fn into_inner(self) -> F {
        self.0
    }
}

impl<F> fmt::Debug for WithSignal<F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WithSignal").finish_non_exhaustive()
    }
}

/// Makes a job from a closure that takes the pool's cancellation [`Signal`], for
/// cooperative stopping: the closure checks [`Signal::is_closed`] (one atomic load)
/// between steps, or passes the signal to a blocking call that gives up when it closes.
///
/// # Examples
///
/// ```
/// use atomkit::pool::{with_signal, WorkerPool};
/// use std::time::{Duration, Instant};
///
/// let pool = WorkerPool::builder().workers(1).build().unwrap();
/// let (started_tx, started) = std::sync::mpsc::channel();
/// let h = pool
///     .submit(with_signal(move |stop| {
///         started_tx.send(()).unwrap();
///         let mut steps = 0u64;
///         while !stop.is_closed() {
///             steps += 1; // one step of a long computation
///             std::thread::sleep(Duration::from_micros(100));
///         }
///         steps
///     }))
///     .unwrap();
/// started.recv().unwrap(); // the job is running
/// // It never ends by itself: shutdown waits 10 ms, then closes the signal.
/// let err = pool.shutdown(Instant::now() + Duration::from_millis(10)).unwrap_err();
/// // Still running when the report was taken, or already back from the signal
/// // (the report's counts are read one after the other: it may show both).
/// let r = err.report();
/// assert!(r.still_running == 1 || r.completed == 1);
/// let steps = h.join().unwrap(); // the job saw the signal and returned
/// println!("stopped after {steps} steps");
/// ```
pub fn with_signal<F, T>(f: F) -> WithSignal<F>
where
    F: FnOnce(&Signal) -> T + Send + 'static,
    T: Send + 'static,
{
    WithSignal(f)
}

impl<F, T> Job for WithSignal<F>
where
    F: FnOnce(&Signal) -> T + Send + 'static,
    T: Send + 'static,
{
    type Output = T;

    #[inline]
    fn run(self, signal: &Signal) -> T {
        (self.0)(signal)
    }
}

/// A job's panic, caught on the worker: the message (when the payload is a string)
/// and the payload itself.
pub struct Panic {
    message: Option<String>,
    /// Only ever reached by value (`into_payload`), never through `&self`: that is
    /// what makes `Panic: Sync` sound although the payload is only `Send`.
    payload: Box<dyn Any + Send + 'static>,
}

// SAFETY: `&Panic` gives access to `message` (a `String`, Sync) and never to
// `payload`, which is only moved out by value in `into_payload`; so sharing `&Panic`
// between threads never shares the payload, and `Send` of the payload suffices.
unsafe impl Sync for Panic {}

impl Panic {
    fn new(payload: Box<dyn Any + Send + 'static>) -> Self {
        let message = if let Some(s) = payload.downcast_ref::<&'static str>() {
            Some((*s).to_string())
        } else {
            payload.downcast_ref::<String>().cloned()
        };
        Panic { message, payload }
    }

    /// The panic message, if the payload was a string (as with `panic!("...")`).
    ///
    /// # Examples
    ///
    /// ```
    /// use atomkit::pool::{JobError, WorkerPool};
    ///
    /// let pool = WorkerPool::builder().workers(1).build().unwrap();
    /// let h = pool.submit(|| -> u8 { panic!("boom {}", 7) }).unwrap();
    /// match h.join() {
    ///     Err(JobError::Panicked(p)) => assert_eq!(p.message(), Some("boom 7")),
    ///     other => panic!("{other:?}"),
    /// }
    /// ```
    pub fn message(&self) -> Option<&str> {
        self.message.as_deref()
    }

    /// The payload, to inspect or to re-raise with [`std::panic::resume_unwind`].
    ///
    /// # Examples
    ///
    /// ```
    /// use atomkit::pool::{JobError, WorkerPool};
    ///
    /// let pool = WorkerPool::builder().workers(1).build().unwrap();
    /// let h = pool.submit(|| std::panic::panic_any(42u32)).unwrap();
    /// let JobError::Panicked(p) = h.join().unwrap_err() else { unreachable!() };
    /// assert_eq!(p.into_payload().downcast::<u32>().ok().map(|b| *b), Some(42));
    /// ```
    pub fn into_payload(self) -> Box<dyn Any + Send + 'static> {
        self.payload
    }
}

impl fmt::Debug for Panic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Panic")
            .field("message", &self.message)
            .finish_non_exhaustive()
    }
}

/// Why a job gave no value.
#[non_exhaustive]
pub enum JobError {
    /// The job panicked; the worker caught it and went on with the next job.
    Panicked(Panic),
    /// The job never ran: the pool shut down (past its deadline, or with
    /// [`shutdown_now`](super::WorkerPool::shutdown_now)) before a worker started it.
    Cancelled,
}

impl JobError {
    /// Whether the job panicked.
    ///
    /// # Examples
    ///
    /// ```
    /// let pool = atomkit::pool::WorkerPool::builder().workers(1).build().unwrap();
    /// assert!(pool.submit(|| panic!()).unwrap().join().unwrap_err().is_panicked());
    /// ```
    pub fn is_panicked(&self) -> bool {
        matches!(self, JobError::Panicked(_))
    }

    /// Whether the job was cancelled before it ran.
    ///
    /// # Examples
    ///
    /// ```
    /// assert!(atomkit::pool::JobError::Cancelled.is_cancelled());
    /// ```
    pub fn is_cancelled(&self) -> bool {
        matches!(self, JobError::Cancelled)
    }
}

impl fmt::Debug for JobError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            JobError::Panicked(p) => f.debug_tuple("Panicked").field(p).finish(),
            JobError::Cancelled => f.write_str("Cancelled"),
        }
    }
}

impl fmt::Display for JobError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            JobError::Panicked(p) => match p.message() {
                Some(m) => write!(f, "job panicked: {m}"),
                None => f.write_str("job panicked"),
            },
            JobError::Cancelled => f.write_str("job cancelled before it ran"),
        }
    }
}

impl std::error::Error for JobError {}

/// [`JobHandle::join_timeout`] / [`join_deadline`](JobHandle::join_deadline) failed.
pub enum JoinTimeoutError<T> {
    /// The job has not finished yet; here is the handle back, to wait again.
    Timeout(JobHandle<T>),
    /// The job finished without a value.
    Failed(JobError),
}

impl<T> JoinTimeoutError<T> {
    /// Whether the wait timed out (the job may still finish).
    ///
    /// # Examples
    ///
    /// ```
    /// use atomkit::pool::WorkerPool;
    /// use std::time::Duration;
    ///
    /// let pool = WorkerPool::builder().workers(1).build().unwrap();
    /// let (go, wait) = std::sync::mpsc::channel::<()>();
    /// let h = pool.submit(move || wait.recv().unwrap()).unwrap();
    /// let e = h.join_timeout(Duration::ZERO).unwrap_err();
    /// assert!(e.is_timeout());
    /// go.send(()).unwrap();
    /// e.into_handle().unwrap().join().unwrap();
    /// ```
    pub fn is_timeout(&self) -> bool {
        matches!(self, JoinTimeoutError::Timeout(_))
    }

    /// The handle handed back by a timeout, or `None` if the job failed.
    ///
    /// # Examples
    ///
    /// ```
    /// use atomkit::pool::WorkerPool;
    /// use std::time::Duration;
    ///
    /// let pool = WorkerPool::builder().workers(1).build().unwrap();
    /// let h = pool.submit(|| -> () { panic!() }).unwrap();
    /// let e = h.join_timeout(Duration::from_secs(10)).unwrap_err();
    /// assert!(e.into_handle().is_none());
    /// ```
    pub fn into_handle(self) -> Option<JobHandle<T>> {
        match self {
            JoinTimeoutError::Timeout(h) => Some(h),
            JoinTimeoutError::Failed(_) => None,
        }
    }
}

impl<T> fmt::Debug for JoinTimeoutError<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            JoinTimeoutError::Timeout(_) => f.write_str("Timeout(..)"),
            JoinTimeoutError::Failed(e) => f.debug_tuple("Failed").field(e).finish(),
        }
    }
}

impl<T> fmt::Display for JoinTimeoutError<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            JoinTimeoutError::Timeout(_) => f.write_str("timed out waiting for the job"),
            JoinTimeoutError::Failed(e) => fmt::Display::fmt(e, f),
        }
    }
}

impl<T> std::error::Error for JoinTimeoutError<T> {}

/// `Slot::state` bits.
const DONE: u32 = 1;
const WAITING: u32 = 1 << 1;

/// The result half of a task: typed by the output only, so a handle can reach it
/// without knowing the job's type.
pub(super) struct Slot<T> {
    /// `DONE | WAITING`; also the futex word the handle sleeps on. `WAITING` is set by
    /// the handle (CAS), `DONE` by the one thread that completes the task.
    state: AtomicU32,
    /// Written once, by the completer, before `DONE` (invariant 3 of the module);
    /// taken once, by the handle, after it sees `DONE`.
    value: UnsafeCell<Option<Result<T, JobError>>>,
}

impl<T> Slot<T> {
    /// Publishes the result. Called exactly once per task (invariant 2). `detached`:
    /// no handle exists any more (the caller holds the only reference), so nobody will
    /// look: the value is only stored, to be dropped with the task.
    fn complete(&self, result: Result<T, JobError>, detached: bool) {
        // SAFETY: only the thread that owns the task's queue entry completes it, once
        // (invariant 2), and the handle reads the value only after seeing `DONE`, which
        // is set below, after this write.
        self.value.with_mut(|p| unsafe { *p = Some(result) });
        if detached {
            return;
        }
        let word: *const AtomicU32 = &self.state;
        // Ordering: Release pairs with the Acquire loads in `JobHandle::wait_inner` and
        // `is_finished`: a handle that sees `DONE` sees the value written above. The RMW
        // also reads `WAITING` from the handle's CAS on the same word, so a handle that
        // went to sleep is always woken (either its CAS came first and we see it, or
        // its CAS fails / its futex compare sees `DONE`).
        let prev = self.state.fetch_or(DONE, Ordering::Release);
        if prev & WAITING != 0 {
            // The caller holds a reference to the task, so the word is alive; the wake
            // uses the address only anyway (wait-layer rule 3).
            wait::wake_one(word);
        }
    }
}

/// How a task ended, for the worker's counters.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Outcome {
    Completed,
    Panicked,
    Cancelled,
}

/// The whole per-job allocation: the job, its result slot and its submit time.
pub(super) struct Task<J: Job> {
    slot: Slot<J::Output>,
    /// Taken once, by the thread that owns the task's queue entry (invariant 2).
    job: UnsafeCell<Option<J>>,
    /// When the job was submitted, if the pool measures times.
    enqueued: Option<Instant>,
}

// SAFETY: the cells are reached only as the module's invariants 2 and 3 allow: `job` by
// the one owner of the queue entry (it moves `J` out: `J: Send` suffices), `value`
// written once before the `DONE` Release and taken once after the Acquire that sees it
// (it moves `Output` between threads: `Output: Send` suffices). Nothing in a task is
// ever shared by `&` reference with user code.
unsafe impl<J: Job> Sync for Task<J> {}
// SAFETY: as above; a task owns a `J` and an `Output`, both `Send`.
unsafe impl<J: Job> Send for Task<J> {}

/// The type-erased task the queue carries.
pub(super) trait Erased: Send + Sync {
    /// Runs the job, catching a panic, records it in `stats`, and publishes the
    /// result (only stores it if `detached`: the caller's reference is the last, so
    /// no handle can look). Only the owner of the queue entry calls it, once.
    fn run(&self, signal: &Signal, stats: &WorkerStats, detached: bool);
    /// Drops the job unrun and publishes `Cancelled`. Only the owner of the queue
    /// entry calls it, once, instead of `run`.
    fn cancel(&self);
    /// The task itself, to take the job back out of a rejected submit.
    fn as_any(&self) -> &dyn Any;
    /// The result slot, for the handle.
    fn slot(&self) -> &dyn Any;
}

impl<J: Job> Erased for Task<J> {
    fn run(&self, signal: &Signal, stats: &WorkerStats, detached: bool) {
        let Some(job) = self.take_job() else {
            return;
        };
        let started = self.enqueued.map(|_| time::now());
        let (outcome, result) = match catch_unwind(AssertUnwindSafe(move || job.run(signal))) {
            Ok(v) => (Outcome::Completed, Ok(v)),
            Err(payload) => (
                Outcome::Panicked,
                Err(JobError::Panicked(Panic::new(payload))),
            ),
        };
        // Invariant 5: counted before the result is published.
        stats.record(outcome, self.enqueued, started);
        self.slot.complete(result, detached);
    }

    fn cancel(&self) {
        if let Some(job) = self.take_job() {
            // The job's own drop may panic; that must not take the caller down.
            drop_quietly(job);
        }
        self.slot.complete(Err(JobError::Cancelled), false);
    }

    fn as_any(&self) -> &dyn Any {
        self
    }

    fn slot(&self) -> &dyn Any {
        &self.slot
    }
}

impl<J: Job> Task<J> {
    fn take_job(&self) -> Option<J> {
        // SAFETY: invariant 2: the caller owns the task's queue entry (it popped it, or
        // its push was refused), and nobody else ever touches `job`.
        self.job.with_mut(|p| unsafe { (*p).take() })
    }
}

/// A queued task: one allocation, shared by the queue entry and the handle.
pub(super) type TaskRef = Arc<dyn Erased>;

/// Allocates the task for `job`, with no handle (a detached job: its result is
/// dropped by the worker).
pub(super) fn new_detached<J: Job>(job: J, timed: bool) -> TaskRef {
    erase(Task {
        slot: Slot {
            state: AtomicU32::new(0),
            value: UnsafeCell::new(None),
        },
        job: UnsafeCell::new(Some(job)),
        enqueued: if timed { Some(time::now()) } else { None },
    })
}

/// What the pool's queue carries.
pub(super) enum Queued {
    /// A task with a result slot: from `submit` (a handle shares it), or a detached job
    /// too big to store inline.
    Shared(TaskRef),
    /// A detached job (`execute`) stored in the queue entry itself: no allocation.
    Inline(Inline),
}

/// A detached job's queue entry for `job`: inline if it fits, else a task.
pub(super) fn detached<J: Job>(job: J, timed: bool) -> Queued {
    match Inline::new(job, timed) {
        Ok(inline) => Queued::Inline(inline),
        Err(job) => Queued::Shared(new_detached(job, timed)),
    }
}

impl Queued {
    /// Drops the job unrun (publishing `Cancelled` to a handle, if any). Never
    /// panics: a panicking `Drop` of the job or of the task is caught.
    pub(super) fn cancel(self) {
        match self {
            Queued::Shared(task) => {
                task.cancel();
                drop_quietly(task);
            }
            Queued::Inline(job) => {
                drop_quietly(job);
            }
        }
    }
}

/// Takes the job back out of a queue entry whose send was refused; the entry must be
/// the caller's own, never pushed, and made from a `J`.
pub(super) fn take_back<J: Job>(queued: Queued) -> J {
    match queued {
        Queued::Shared(task) => take_back_task(&task),
        Queued::Inline(inline) => inline.into_job(),
    }
}

/// Words of inline storage: a closure that captures up to this many words (an `Arc`
/// and a few integers, say) travels through the queue without an allocation.
const INLINE_WORDS: usize = 5;

/// A detached job stored in place: its bytes, and how to run or drop them.
pub(super) struct Inline {
    /// A `J` (the job type `vtable` was made for), moved in by `new`, moved out once
    /// by `run` or `into_job`, or dropped by `Drop`.
    data: MaybeUninit<[usize; INLINE_WORDS]>,
    vtable: &'static InlineVtable,
    /// When the job was submitted, if the pool measures times.
    enqueued: Option<Instant>,
    /// Opts out of the automatic `Send` and `Sync`, which the erased fields would
    /// grant whatever `J` is: `Send` is granted by hand below, `Sync` not at all.
    _not_auto: PhantomData<*mut ()>,
}

// SAFETY: `Inline` owns a `J: Job`, which is `Send`, and nothing else but plain data
// (a `&'static` vtable of plain functions and an `Option<Instant>`). It is not `Sync`:
// `J` need not be, and nothing needs to share an `Inline` by reference.
unsafe impl Send for Inline {}

/// What an `Inline` needs to know of its job type.
struct InlineVtable {
    /// Moves the job out of the storage and runs it (see `run_inline`).
    run: unsafe fn(*mut u8, &Signal, &WorkerStats, Option<Instant>),
    /// Drops the job in place.
    drop: unsafe fn(*mut u8),
    /// The job's type, to check `into_job`.
    id: fn() -> core::any::TypeId,
}

/// The vtable of job type `J`.
struct VtableOf<J>(PhantomData<J>);

impl<J: Job> VtableOf<J> {
    const VTABLE: InlineVtable = InlineVtable {
        run: run_inline::<J>,
        drop: drop_inline::<J>,
        id: core::any::TypeId::of::<J>,
    };
}

impl Inline {
    /// Stores `job` in place, or hands it back if it does not fit.
    fn new<J: Job>(job: J, timed: bool) -> Result<Inline, J> {
        if size_of::<J>() > size_of::<[usize; INLINE_WORDS]>()
            || align_of::<J>() > align_of::<usize>()
        {
            return Err(job);
        }
        let mut data = MaybeUninit::<[usize; INLINE_WORDS]>::uninit();
        // SAFETY: the storage is big enough and aligned enough for a `J` (checked
        // above), and uninitialised: writing does not overwrite a value.
        unsafe { data.as_mut_ptr().cast::<J>().write(job) };
        Ok(Inline {
            data,
            vtable: &VtableOf::<J>::VTABLE,
            enqueued: if timed { Some(time::now()) } else { None },
            _not_auto: PhantomData,
        })
    }

    /// Runs the job on a worker: see `run_inline`.
    pub(super) fn run(self, signal: &Signal, stats: &WorkerStats) {
        let mut me = core::mem::ManuallyDrop::new(self);
        let (run, enqueued) = (me.vtable.run, me.enqueued);
        // SAFETY: the storage holds the vtable's job type, moved out here once; `me`
        // is never dropped, so it is not dropped again.
        unsafe { run(me.data.as_mut_ptr().cast::<u8>(), signal, stats, enqueued) };
    }

    /// Takes the job back out.
    ///
    /// # Panics
    ///
    /// If `J` is not the type the entry was made with (a bug in the pool).
    fn into_job<J: Job>(self) -> J {
        assert!(
            (self.vtable.id)() == core::any::TypeId::of::<J>(),
            "an inline job is taken back as the type it was made with"
        );
        let mut me = core::mem::ManuallyDrop::new(self);
        // SAFETY: the storage holds a `J` (checked above), moved out here once; `me`
        // is never dropped, so it is not dropped again.
        unsafe { me.data.as_mut_ptr().cast::<J>().read() }
    }
}

impl Drop for Inline {
    fn drop(&mut self) {
        // SAFETY: the storage still holds the vtable's job type (`run` and `into_job`
        // do not drop the `Inline`), dropped here once.
        unsafe { (self.vtable.drop)(self.data.as_mut_ptr().cast::<u8>()) };
    }
}

/// Moves the `J` out of `p`, runs it, catching a panic, records the outcome in
/// `stats`, and drops the result (or panic payload) without letting its `Drop`'s
/// panic escape: the same as a detached task's `run` followed by its drop.
///
/// # Safety
///
/// `p` holds a `J`, which nobody reads or drops afterwards.
unsafe fn run_inline<J: Job>(
    p: *mut u8,
    signal: &Signal,
    stats: &WorkerStats,
    enqueued: Option<Instant>,
) {
    // SAFETY: the caller's contract.
    let job = unsafe { p.cast::<J>().read() };
    let started = enqueued.map(|_| time::now());
    match catch_unwind(AssertUnwindSafe(move || job.run(signal))) {
        Ok(v) => {
            stats.record(Outcome::Completed, enqueued, started);
            drop_quietly(v);
        }
        Err(payload) => {
            stats.record(Outcome::Panicked, enqueued, started);
            drop_quietly(payload);
        }
    }
}

/// Drops the `J` in `p`.
///
/// # Safety
///
/// `p` holds a `J`, which nobody reads or drops afterwards.
unsafe fn drop_inline<J: Job>(p: *mut u8) {
    // SAFETY: the caller's contract.
    unsafe { p.cast::<J>().drop_in_place() };
}

/// Allocates the task for `job` and its handle.
pub(super) fn new_task<J: Job>(job: J, timed: bool) -> (Queued, JobHandle<J::Output>) {
    let task = new_detached(job, timed);
    let handle = JobHandle {
        task: task.clone(),
        _output: PhantomData,
    };
    (Queued::Shared(task), handle)
}

#[cfg(not(atomkit_loom))]
fn erase<J: Job>(task: Task<J>) -> TaskRef {
    Arc::new(task)
}

/// loom's `Arc` cannot coerce to a trait object; it converts from std's.
#[cfg(atomkit_loom)]
fn erase<J: Job>(task: Task<J>) -> TaskRef {
    let std: std::sync::Arc<dyn Erased> = std::sync::Arc::new(task);
    Arc::from_std(std)
}

/// Takes the job back out of a task whose submit was refused. `task` must be the
/// caller's own, never pushed (invariant 2), and made by `new_task::<J>`.
fn take_back_task<J: Job>(task: &TaskRef) -> J {
    let task = task
        .as_any()
        .downcast_ref::<Task<J>>()
        .expect("a task holds the job type it was made with");
    task.take_job().expect("a refused task still holds its job")
}

/// The handle to a submitted job: wait for its result with [`join`](Self::join).
///
/// Dropping the handle detaches the job: it still runs, and its result is dropped
/// by the worker, or by the thread dropping the handle if the job had already
/// finished (a panic in the result's `Drop` on a worker is caught; on your thread it
/// is yours, as with any value you drop).
///
/// # Examples
///
/// ```
/// use atomkit::pool::WorkerPool;
///
/// let pool = WorkerPool::builder().workers(2).build().unwrap();
/// let h = pool.submit(|| 6 * 7).unwrap();
/// assert_eq!(h.join().unwrap(), 42);
/// ```
pub struct JobHandle<T> {
    task: TaskRef,
    /// The handle moves a `T` out (needs `T: Send`, which every job output is) and
    /// never shares one, so it is `Send + Sync` whatever `T` is.
    _output: PhantomData<fn() -> T>,
}

impl<T: Send + 'static> JobHandle<T> {
    fn slot(&self) -> &Slot<T> {
        self.task
            .slot()
            .downcast_ref::<Slot<T>>()
            .expect("a handle's type matches its task's output")
    }

    /// Whether the job has finished (ran, panicked or was cancelled): `join` would
    /// return at once.
    ///
    /// # Examples
    ///
    /// ```
    /// let pool = atomkit::pool::WorkerPool::builder().workers(1).build().unwrap();
    /// let h = pool.submit(|| 1).unwrap();
    /// while !h.is_finished() {
    ///     std::thread::yield_now();
    /// }
    /// assert_eq!(h.join().unwrap(), 1);
    /// ```
    pub fn is_finished(&self) -> bool {
        // Ordering: Acquire pairs with the Release `fetch_or` in `Slot::complete`.
        self.slot().state.load(Ordering::Acquire) & DONE != 0
    }

    /// Waits for the job and returns its value.
    ///
    /// # Errors
    ///
    /// [`JobError::Panicked`] if the job panicked, [`JobError::Cancelled`] if the pool
    /// shut down before the job started.
    ///
    /// # Examples
    ///
    /// ```
    /// let pool = atomkit::pool::WorkerPool::builder().workers(1).build().unwrap();
    /// assert_eq!(pool.submit(|| "done").unwrap().join().unwrap(), "done");
    /// ```
    pub fn join(self) -> Result<T, JobError> {
        match self.wait_inner(None) {
            Some(r) => r,
            None => unreachable!("an untimed wait returns only when the job is done"),
        }
    }

    /// Waits at most `timeout` for the job.
    ///
    /// # Errors
    ///
    /// [`JoinTimeoutError::Timeout`] (with the handle back) if the job is not done in
    /// time; [`JoinTimeoutError::Failed`] if it panicked or was cancelled.
    ///
    /// # Examples
    ///
    /// ```
    /// use atomkit::pool::WorkerPool;
    /// use std::time::Duration;
    ///
    /// let pool = WorkerPool::builder().workers(1).build().unwrap();
    /// let h = pool.submit(|| 3).unwrap();
    /// assert_eq!(h.join_timeout(Duration::from_secs(10)).unwrap(), 3);
    /// ```
    pub fn join_timeout(self, timeout: Duration) -> Result<T, JoinTimeoutError<T>> {
        match time::now().checked_add(timeout) {
            Some(d) => self.join_deadline(d),
            None => self.join().map_err(JoinTimeoutError::Failed),
        }
    }

    /// Waits for the job until `deadline`. A deadline in the past only checks.
    ///
    /// # Errors
    ///
    /// As for [`join_timeout`](Self::join_timeout).
    ///
    /// # Examples
    ///
    /// ```
    /// use atomkit::pool::WorkerPool;
    /// use std::time::{Duration, Instant};
    ///
    /// let pool = WorkerPool::builder().workers(1).build().unwrap();
    /// let h = pool.submit(|| 3).unwrap();
    /// assert_eq!(h.join_deadline(Instant::now() + Duration::from_secs(10)).unwrap(), 3);
    /// ```
    pub fn join_deadline(self, deadline: Instant) -> Result<T, JoinTimeoutError<T>> {
        match self.wait_inner(Some(deadline)) {
            Some(Ok(v)) => Ok(v),
            Some(Err(e)) => Err(JoinTimeoutError::Failed(e)),
            None => Err(JoinTimeoutError::Timeout(self)),
        }
    }

    /// Waits until the job is done (then takes its result) or `deadline` passes
    /// (then returns `None`).
    fn wait_inner(&self, deadline: Option<Instant>) -> Option<Result<T, JobError>> {
        let slot = self.slot();
        let mut spins = 0u32;
        loop {
            // Ordering: Acquire pairs with the Release `fetch_or` in `Slot::complete`,
            // so the value written before `DONE` is visible below.
            let s = slot.state.load(Ordering::Acquire);
            if s & DONE != 0 {
                // SAFETY: `DONE` is set, so the completer wrote the value and never
                // touches the cell again (invariant 3); this handle is the only one
                // and takes the value at most once (`join*` consume the handle, and a
                // timeout hands it back without taking).
                let v = slot.value.with_mut(|p| unsafe { (*p).take() });
                return Some(v.expect("a done task holds its result until joined"));
            }
            if deadline.is_some_and(|d| time::now() >= d) {
                return None;
            }
            // A short job is often done within a few microseconds: spin a little first.
            if spins < 32 && !cfg!(any(atomkit_loom, atomkit_shuttle)) {
                spins += 1;
                crate::sync::spin_loop();
                continue;
            }
            if s & WAITING == 0 {
                // Ordering: Relaxed; this CAS and the completer's `fetch_or` are RMWs
                // of one word, so whichever comes second sees the other. On failure we
                // reload with Acquire at the top of the loop.
                if slot
                    .state
                    .compare_exchange(s, s | WAITING, Ordering::Relaxed, Ordering::Relaxed)
                    .is_err()
                {
                    continue;
                }
            }
            // Sleeps only while the word still reads "not done, waiting".
            wait::wait_maybe_until(&slot.state, WAITING, deadline);
        }
    }
}

impl<T> fmt::Debug for JobHandle<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("JobHandle").finish_non_exhaustive()
    }
}
