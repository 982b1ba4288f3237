//! Every error type is `std::error::Error + Send + Sync + 'static`, so it fits in
//! `Box<dyn Error + Send + Sync>` and crosses threads.

use std::error::Error;

fn is_error<E: Error + Send + Sync + 'static>() {}

#[test]
fn signal_cause() {
    is_error::<atomkit::signal::Cause>();
    let boxed: Box<dyn Error + Send + Sync> = Box::new(atomkit::signal::Cause::DeadlineExceeded);
    assert_eq!(boxed.to_string(), "deadline exceeded");
}

#[test]
fn semaphore_errors() {
    use atomkit::semaphore::{
        AcquireError, AcquireTimeoutError, AcquireUntilError, TryAcquireError,
    };
    is_error::<AcquireError>();
    is_error::<TryAcquireError>();
    is_error::<AcquireTimeoutError>();
    is_error::<AcquireUntilError>();
    let boxed: Box<dyn Error + Send + Sync> = Box::new(AcquireTimeoutError::Timeout);
    assert_eq!(boxed.to_string(), "timed out waiting for a permit");
}

#[test]
fn deque_push_error() {
    use atomkit::deque::PushError;
    is_error::<PushError<u64>>();
    let boxed: Box<dyn Error + Send + Sync> = Box::new(PushError(1u64));
    assert_eq!(boxed.to_string(), "deque is full");
}

#[test]
fn channel_errors() {
    use atomkit::channel::{
        RecvError, RecvTimeoutError, RecvUntilError, SendError, SendTimeoutError, SendUntilError,
        TryRecvError, TrySendError,
    };
    use atomkit::signal::Cause;
    is_error::<SendError<u64>>();
    is_error::<TrySendError<u64>>();
    is_error::<SendTimeoutError<u64>>();
    is_error::<SendUntilError<u64>>();
    is_error::<RecvError>();
    is_error::<TryRecvError>();
    is_error::<RecvTimeoutError>();
    is_error::<RecvUntilError>();
    // The value-carrying errors need neither `T: Debug` nor `T: Display` to be errors.
    struct Opaque;
    is_error::<SendError<Opaque>>();
    is_error::<TrySendError<Opaque>>();
    let boxed: Box<dyn Error + Send + Sync> = Box::new(TrySendError::Full(1u64));
    assert_eq!(boxed.to_string(), "sending on a full channel");
    let boxed: Box<dyn Error + Send + Sync> =
        Box::new(SendUntilError::Cancelled(1u64, Cause::Closed));
    assert_eq!(boxed.to_string(), "send cancelled: signal closed");
    // Copy and Eq where the payload allows, and the value comes back.
    let e = SendTimeoutError::Timeout(3u8);
    let f = e;
    assert_eq!(e, f);
    assert_eq!(f.into_inner(), 3);
    assert!(TryRecvError::Empty.is_empty());
    assert_eq!(RecvTimeoutError::Closed, RecvTimeoutError::from(RecvError));
}

#[test]
fn pool_errors() {
    use atomkit::pool::{
        BuildError, JobError, JoinTimeoutError, ShutDownError, ShutdownTimedOut, SubmitError,
        SubmitTimeoutError, SubmitUntilError,
    };
    type J = fn() -> u8;
    is_error::<BuildError>();
    is_error::<JobError>();
    is_error::<JoinTimeoutError<u8>>();
    is_error::<ShutdownTimedOut>();
    is_error::<SubmitError<J>>();
    is_error::<ShutDownError<J>>();
    is_error::<SubmitTimeoutError<J>>();
    is_error::<SubmitUntilError<J>>();
    let boxed: Box<dyn Error + Send + Sync> = Box::new(SubmitError::Full((|| 1) as J));
    assert_eq!(boxed.to_string(), "job queue is full");
    assert_eq!(format!("{boxed:?}"), "Full(..)");
    let boxed: Box<dyn Error + Send + Sync> = Box::new(JobError::Cancelled);
    assert_eq!(boxed.to_string(), "job cancelled before it ran");
}
