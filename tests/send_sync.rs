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
