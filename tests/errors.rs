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
