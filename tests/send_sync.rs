//! Compile-time checks that every public type is `Send`/`Sync` where it should be.

#![allow(dead_code)]

fn send<T: Send>() {}
fn sync<T: Sync>() {}
fn unpin<T: Unpin>() {}
fn static_<T: 'static>() {}

#[test]
fn signal_types() {
    use atomkit::signal::{Cause, Signal};
    send::<Signal>();
    sync::<Signal>();
    unpin::<Signal>();
    static_::<Signal>();
    send::<Cause>();
    sync::<Cause>();
}

#[test]
fn queue_types() {
    use atomkit::queue::{ArrayQueue, IntoIter};
    send::<ArrayQueue<u64>>();
    sync::<ArrayQueue<u64>>();
    unpin::<ArrayQueue<u64>>();
    static_::<ArrayQueue<u64>>();
    // `T: Send` is enough to share the queue: values move, never are shared.
    send::<ArrayQueue<std::cell::Cell<u8>>>();
    sync::<ArrayQueue<std::cell::Cell<u8>>>();
    send::<IntoIter<u64>>();
}

#[test]
fn semaphore_types() {
    use atomkit::semaphore::{OwnedPermit, Permit, Semaphore};
    send::<Semaphore>();
    sync::<Semaphore>();
    unpin::<Semaphore>();
    static_::<Semaphore>();
    send::<Permit<'static>>();
    sync::<Permit<'static>>();
    send::<OwnedPermit>();
    sync::<OwnedPermit>();
    static_::<OwnedPermit>();
}

#[test]
fn deque_types() {
    use atomkit::deque::{Injector, PushError, Steal, Stealer, Worker};
    // The owner's end moves between threads but is not shared.
    send::<Worker<u64>>();
    send::<Stealer<u64>>();
    sync::<Stealer<u64>>();
    send::<Injector<u64>>();
    sync::<Injector<u64>>();
    static_::<Worker<u64>>();
    // `T: Send` is enough: items move, never are shared.
    sync::<Stealer<std::cell::Cell<u8>>>();
    sync::<Injector<std::cell::Cell<u8>>>();
    send::<Steal<u64>>();
    send::<PushError<u64>>();
    sync::<PushError<u64>>();
}

#[test]
fn channel_types() {
    use atomkit::channel::{
        IntoIter, Iter, Receiver, RecvError, RecvTimeoutError, RecvUntilError, SendError,
        SendTimeoutError, SendUntilError, Sender, TryIter, TryRecvError, TrySendError,
    };
    send::<Sender<u64>>();
    sync::<Sender<u64>>();
    send::<Receiver<u64>>();
    sync::<Receiver<u64>>();
    unpin::<Sender<u64>>();
    unpin::<Receiver<u64>>();
    static_::<Sender<u64>>();
    static_::<Receiver<u64>>();
    // `T: Send` is enough to share the handles: values move, never are shared.
    sync::<Sender<std::cell::Cell<u8>>>();
    sync::<Receiver<std::cell::Cell<u8>>>();
    send::<IntoIter<u64>>();
    send::<Iter<'static, u64>>();
    send::<TryIter<'static, u64>>();
    send::<SendError<u64>>();
    sync::<SendError<u64>>();
    send::<TrySendError<u64>>();
    sync::<TrySendError<u64>>();
    send::<SendTimeoutError<u64>>();
    sync::<SendTimeoutError<u64>>();
    send::<SendUntilError<u64>>();
    sync::<SendUntilError<u64>>();
    send::<RecvError>();
    sync::<RecvError>();
    send::<TryRecvError>();
    send::<RecvTimeoutError>();
    send::<RecvUntilError>();
    sync::<RecvUntilError>();
}

#[test]
fn pool_types() {
    use atomkit::pool::{
        Backoff, Builder, JobHandle, Panic, PoolMetrics, ShutdownReport, Submitter, WithSignal,
        WorkerPool,
    };
    send::<WorkerPool>();
    sync::<WorkerPool>();
    static_::<WorkerPool>();
    send::<Submitter>();
    sync::<Submitter>();
    send::<Builder>();
    send::<Backoff>();
    // A handle moves its output out, never shares it: Send + Sync whatever `T` is.
    send::<JobHandle<std::cell::Cell<u8>>>();
    sync::<JobHandle<std::cell::Cell<u8>>>();
    send::<Panic>();
    sync::<Panic>();
    send::<PoolMetrics>();
    send::<ShutdownReport>();
    send::<WithSignal<fn(&atomkit::Signal) -> u8>>();
}
