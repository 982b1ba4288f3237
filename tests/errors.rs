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
