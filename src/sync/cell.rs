//! `UnsafeCell` with loom's closure API (`with` / `with_mut`) in every build, so that
//! code written once is checked by loom's cell-access tracking under `atomkit_loom`.

/// A cell for data whose exclusive or shared access is guaranteed by the caller's
/// synchronization protocol.
#[cfg(not(atomkit_loom))]
#[derive(Debug)]
pub(crate) struct UnsafeCell<T: ?Sized>(core::cell::UnsafeCell<T>);

#[cfg(not(atomkit_loom))]
#[allow(dead_code)]
impl<T> UnsafeCell<T> {
    /// Wraps `value`.
    pub(crate) const fn new(value: T) -> Self {
        Self(core::cell::UnsafeCell::new(value))
    }

    /// Unwraps the value.
    pub(crate) fn into_inner(self) -> T {
        self.0.into_inner()
    }
}

#[cfg(not(atomkit_loom))]
#[allow(dead_code)]
impl<T: ?Sized> UnsafeCell<T> {
    /// Runs `f` with a shared raw pointer to the contents.
    #[inline(always)]
    pub(crate) fn with<R>(&self, f: impl FnOnce(*const T) -> R) -> R {
        f(self.0.get())
    }

    /// Runs `f` with a mutable raw pointer to the contents.
    #[inline(always)]
    pub(crate) fn with_mut<R>(&self, f: impl FnOnce(*mut T) -> R) -> R {
        f(self.0.get())
    }
}

#[cfg(atomkit_loom)]
pub(crate) use loom::cell::UnsafeCell;
