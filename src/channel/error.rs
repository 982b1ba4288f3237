//! The channel's error types. Every error of a send hands the value back; none of
//! them needs `T: Debug` to print (the value is shown as `..`).

use crate::signal::Cause;
use core::fmt;

/// The channel was closed: [`Sender::send`](super::Sender::send) hands the value back.
///
/// # Examples
///
/// ```
/// use atomkit::channel::{bounded, SendError};
///
/// let (tx, rx) = bounded(1);
/// rx.close();
/// let err = tx.send(7).unwrap_err();
/// assert_eq!(err, SendError(7));
/// assert_eq!(err.into_inner(), 7);
/// ```
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct SendError<T>(pub T);

impl<T> SendError<T> {
    /// The value that was not sent.
    ///
    /// # Examples
    ///
    /// ```
    /// assert_eq!(atomkit::channel::SendError("job").into_inner(), "job");
    /// ```
    pub fn into_inner(self) -> T {
        self.0
    }
}

impl<T> fmt::Debug for SendError<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SendError(..)")
    }
}

impl<T> fmt::Display for SendError<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("sending on a closed channel")
    }
}

impl<T> std::error::Error for SendError<T> {}

/// Why [`Sender::try_send`](super::Sender::try_send) failed; hands the value back.
///
/// # Examples
///
/// ```
/// use atomkit::channel::{bounded, TrySendError};
///
/// let (tx, rx) = bounded(1);
/// tx.try_send(1).unwrap();
/// assert_eq!(tx.try_send(2), Err(TrySendError::Full(2)));
/// rx.close();
/// assert_eq!(tx.try_send(3), Err(TrySendError::Closed(3)));
/// ```
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub enum TrySendError<T> {
    /// The channel is full (for a rendezvous channel: no receiver is waiting).
    Full(T),
    /// The channel is closed.
    Closed(T),
}

impl<T> TrySendError<T> {
    /// The value that was not sent.
    ///
    /// # Examples
    ///
    /// ```
    /// use atomkit::channel::TrySendError;
    ///
    /// assert_eq!(TrySendError::Full(5).into_inner(), 5);
    /// ```
    pub fn into_inner(self) -> T {
        match self {
            TrySendError::Full(v) | TrySendError::Closed(v) => v,
        }
    }

    /// Whether the channel was full.
    ///
    /// # Examples
    ///
    /// ```
    /// assert!(atomkit::channel::TrySendError::Full(()).is_full());
    /// ```
    pub fn is_full(&self) -> bool {
        matches!(self, TrySendError::Full(_))
    }

    /// Whether the channel was closed.
    ///
    /// # Examples
    ///
    /// ```
    /// assert!(atomkit::channel::TrySendError::Closed(()).is_closed());
    /// ```
    pub fn is_closed(&self) -> bool {
        matches!(self, TrySendError::Closed(_))
    }
}

impl<T> From<SendError<T>> for TrySendError<T> {
    fn from(e: SendError<T>) -> Self {
        TrySendError::Closed(e.0)
    }
}

impl<T> fmt::Debug for TrySendError<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TrySendError::Full(_) => f.write_str("Full(..)"),
            TrySendError::Closed(_) => f.write_str("Closed(..)"),
        }
    }
}

impl<T> fmt::Display for TrySendError<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TrySendError::Full(_) => f.write_str("sending on a full channel"),
            TrySendError::Closed(_) => f.write_str("sending on a closed channel"),
        }
    }
}

impl<T> std::error::Error for TrySendError<T> {}

/// Why a timed send ([`send_timeout`](super::Sender::send_timeout),
/// [`send_deadline`](super::Sender::send_deadline)) failed; hands the value back.
///
/// # Examples
///
/// ```
/// use atomkit::channel::{bounded, SendTimeoutError};
/// use std::time::Duration;
///
/// let (tx, _rx) = bounded(1);
/// tx.send(1).unwrap();
/// let err = tx.send_timeout(2, Duration::from_millis(1)).unwrap_err();
/// assert_eq!(err, SendTimeoutError::Timeout(2));
/// assert_eq!(err.to_string(), "timed out waiting on send");
/// ```
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub enum SendTimeoutError<T> {
    /// The time ran out before there was room (or, on a rendezvous channel, before a
    /// receiver took the value).
    Timeout(T),
    /// The channel is closed.
    Closed(T),
}

impl<T> SendTimeoutError<T> {
    /// The value that was not sent.
    ///
    /// # Examples
    ///
    /// ```
    /// use atomkit::channel::SendTimeoutError;
    ///
    /// assert_eq!(SendTimeoutError::Timeout('x').into_inner(), 'x');
    /// ```
    pub fn into_inner(self) -> T {
        match self {
            SendTimeoutError::Timeout(v) | SendTimeoutError::Closed(v) => v,
        }
    }

    /// Whether the time ran out.
    ///
    /// # Examples
    ///
    /// ```
    /// assert!(atomkit::channel::SendTimeoutError::Timeout(()).is_timeout());
    /// ```
    pub fn is_timeout(&self) -> bool {
        matches!(self, SendTimeoutError::Timeout(_))
    }

    /// Whether the channel was closed.
    ///
    /// # Examples
    ///
    /// ```
    /// assert!(atomkit::channel::SendTimeoutError::Closed(()).is_closed());
    /// ```
    pub fn is_closed(&self) -> bool {
        matches!(self, SendTimeoutError::Closed(_))
    }
}

impl<T> From<SendError<T>> for SendTimeoutError<T> {
    fn from(e: SendError<T>) -> Self {
        SendTimeoutError::Closed(e.0)
    }
}

impl<T> fmt::Debug for SendTimeoutError<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SendTimeoutError::Timeout(_) => f.write_str("Timeout(..)"),
            SendTimeoutError::Closed(_) => f.write_str("Closed(..)"),
        }
    }
}

impl<T> fmt::Display for SendTimeoutError<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SendTimeoutError::Timeout(_) => f.write_str("timed out waiting on send"),
            SendTimeoutError::Closed(_) => f.write_str("sending on a closed channel"),
        }
    }
}

impl<T> std::error::Error for SendTimeoutError<T> {}

/// Why a [`Signal`](crate::signal::Signal)-cancellable send
/// ([`send_until`](super::Sender::send_until)) failed; hands the value back.
///
/// # Examples
///
/// ```
/// use atomkit::channel::{bounded, SendUntilError};
/// use atomkit::signal::{Cause, Signal};
///
/// let (tx, _rx) = bounded(1);
/// tx.send(1).unwrap();
/// let stop = Signal::new();
/// stop.close();
/// let err = tx.send_until(2, &stop).unwrap_err();
/// assert_eq!(err, SendUntilError::Cancelled(2, Cause::Closed));
/// assert_eq!(err.to_string(), "send cancelled: signal closed");
/// ```
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub enum SendUntilError<T> {
    /// The signal closed (or its deadline passed) first; carries its cause.
    Cancelled(T, Cause),
    /// The channel is closed.
    Closed(T),
}

impl<T> SendUntilError<T> {
    /// The value that was not sent.
    ///
    /// # Examples
    ///
    /// ```
    /// use atomkit::channel::SendUntilError;
    ///
    /// assert_eq!(SendUntilError::Closed(3).into_inner(), 3);
    /// ```
    pub fn into_inner(self) -> T {
        match self {
            SendUntilError::Cancelled(v, _) | SendUntilError::Closed(v) => v,
        }
    }

    /// Whether the signal cancelled the send.
    ///
    /// # Examples
    ///
    /// ```
    /// use atomkit::channel::SendUntilError;
    /// use atomkit::signal::Cause;
    ///
    /// assert!(SendUntilError::Cancelled((), Cause::Closed).is_cancelled());
    /// ```
    pub fn is_cancelled(&self) -> bool {
        matches!(self, SendUntilError::Cancelled(..))
    }

    /// Whether the channel was closed.
    ///
    /// # Examples
    ///
    /// ```
    /// assert!(atomkit::channel::SendUntilError::Closed(()).is_closed());
    /// ```
    pub fn is_closed(&self) -> bool {
        matches!(self, SendUntilError::Closed(_))
    }

    /// The signal's cause, if the signal cancelled the send.
    ///
    /// # Examples
    ///
    /// ```
    /// use atomkit::channel::SendUntilError;
    /// use atomkit::signal::Cause;
    ///
    /// let e = SendUntilError::Cancelled(0, Cause::DeadlineExceeded);
    /// assert_eq!(e.cause(), Some(Cause::DeadlineExceeded));
    /// ```
    pub fn cause(&self) -> Option<Cause> {
        match self {
            SendUntilError::Cancelled(_, c) => Some(*c),
            SendUntilError::Closed(_) => None,
        }
    }
}

impl<T> From<SendError<T>> for SendUntilError<T> {
    fn from(e: SendError<T>) -> Self {
        SendUntilError::Closed(e.0)
    }
}

impl<T> fmt::Debug for SendUntilError<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SendUntilError::Cancelled(_, c) => write!(f, "Cancelled(.., {c:?})"),
            SendUntilError::Closed(_) => f.write_str("Closed(..)"),
        }
    }
}

impl<T> fmt::Display for SendUntilError<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SendUntilError::Cancelled(_, c) => write!(f, "send cancelled: {c}"),
            SendUntilError::Closed(_) => f.write_str("sending on a closed channel"),
        }
    }
}

impl<T> std::error::Error for SendUntilError<T> {}

/// The channel is closed and drained: [`Receiver::recv`](super::Receiver::recv) will
/// never return another value.
///
/// # Examples
///
/// ```
/// use atomkit::channel::{bounded, RecvError};
///
/// let (tx, rx) = bounded::<u8>(1);
/// drop(tx);
/// assert_eq!(rx.recv(), Err(RecvError));
/// assert_eq!(RecvError.to_string(), "receiving on a closed channel");
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct RecvError;

impl fmt::Display for RecvError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("receiving on a closed channel")
    }
}

impl std::error::Error for RecvError {}

/// Why [`Receiver::try_recv`](super::Receiver::try_recv) failed.
///
/// # Examples
///
/// ```
/// use atomkit::channel::{bounded, TryRecvError};
///
/// let (tx, rx) = bounded::<u8>(1);
/// assert_eq!(rx.try_recv(), Err(TryRecvError::Empty));
/// tx.close();
/// assert_eq!(rx.try_recv(), Err(TryRecvError::Closed));
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum TryRecvError {
    /// Nothing to receive right now (for a rendezvous channel: no sender is waiting).
    Empty,
    /// The channel is closed and drained.
    Closed,
}

impl TryRecvError {
    /// Whether the channel was empty.
    ///
    /// # Examples
    ///
    /// ```
    /// assert!(atomkit::channel::TryRecvError::Empty.is_empty());
    /// ```
    pub fn is_empty(&self) -> bool {
        *self == TryRecvError::Empty
    }

    /// Whether the channel was closed and drained.
    ///
    /// # Examples
    ///
    /// ```
    /// assert!(atomkit::channel::TryRecvError::Closed.is_closed());
    /// ```
    pub fn is_closed(&self) -> bool {
        *self == TryRecvError::Closed
    }
}

impl From<RecvError> for TryRecvError {
    fn from(_: RecvError) -> Self {
        TryRecvError::Closed
    }
}

impl fmt::Display for TryRecvError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TryRecvError::Empty => f.write_str("receiving on an empty channel"),
            TryRecvError::Closed => f.write_str("receiving on a closed channel"),
        }
    }
}

impl std::error::Error for TryRecvError {}

/// Why a timed receive ([`recv_timeout`](super::Receiver::recv_timeout),
/// [`recv_deadline`](super::Receiver::recv_deadline)) failed.
///
/// # Examples
///
/// ```
/// use atomkit::channel::{bounded, RecvTimeoutError};
/// use std::time::Duration;
///
/// let (_tx, rx) = bounded::<u8>(1);
/// let err = rx.recv_timeout(Duration::from_millis(1)).unwrap_err();
/// assert_eq!(err, RecvTimeoutError::Timeout);
/// assert_eq!(err.to_string(), "timed out waiting on receive");
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum RecvTimeoutError {
    /// The time ran out before a value arrived.
    Timeout,
    /// The channel is closed and drained.
    Closed,
}

impl RecvTimeoutError {
    /// Whether the time ran out.
    ///
    /// # Examples
    ///
    /// ```
    /// assert!(atomkit::channel::RecvTimeoutError::Timeout.is_timeout());
    /// ```
    pub fn is_timeout(&self) -> bool {
        *self == RecvTimeoutError::Timeout
    }

    /// Whether the channel was closed and drained.
    ///
    /// # Examples
    ///
    /// ```
    /// assert!(atomkit::channel::RecvTimeoutError::Closed.is_closed());
    /// ```
    pub fn is_closed(&self) -> bool {
        *self == RecvTimeoutError::Closed
    }
}

impl From<RecvError> for RecvTimeoutError {
    fn from(_: RecvError) -> Self {
        RecvTimeoutError::Closed
    }
}

impl fmt::Display for RecvTimeoutError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RecvTimeoutError::Timeout => f.write_str("timed out waiting on receive"),
            RecvTimeoutError::Closed => f.write_str("receiving on a closed channel"),
        }
    }
}

impl std::error::Error for RecvTimeoutError {}

/// Why a [`Signal`](crate::signal::Signal)-cancellable receive
/// ([`recv_until`](super::Receiver::recv_until)) failed.
///
/// # Examples
///
/// ```
/// use atomkit::channel::{bounded, RecvUntilError};
/// use atomkit::signal::{Cause, Signal};
///
/// let (_tx, rx) = bounded::<u8>(1);
/// let stop = Signal::new();
/// stop.close();
/// let err = rx.recv_until(&stop).unwrap_err();
/// assert_eq!(err, RecvUntilError::Cancelled(Cause::Closed));
/// assert_eq!(err.to_string(), "receive cancelled: signal closed");
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum RecvUntilError {
    /// The signal closed (or its deadline passed) first; carries its cause.
    Cancelled(Cause),
    /// The channel is closed and drained.
    Closed,
}

impl RecvUntilError {
    /// Whether the signal cancelled the receive.
    ///
    /// # Examples
    ///
    /// ```
    /// use atomkit::channel::RecvUntilError;
    /// use atomkit::signal::Cause;
    ///
    /// assert!(RecvUntilError::Cancelled(Cause::Closed).is_cancelled());
    /// ```
    pub fn is_cancelled(&self) -> bool {
        matches!(self, RecvUntilError::Cancelled(_))
    }

    /// Whether the channel was closed and drained.
    ///
    /// # Examples
    ///
    /// ```
    /// assert!(atomkit::channel::RecvUntilError::Closed.is_closed());
    /// ```
    pub fn is_closed(&self) -> bool {
        *self == RecvUntilError::Closed
    }

    /// The signal's cause, if the signal cancelled the receive.
    ///
    /// # Examples
    ///
    /// ```
    /// use atomkit::channel::RecvUntilError;
    /// use atomkit::signal::Cause;
    ///
    /// let e = RecvUntilError::Cancelled(Cause::DeadlineExceeded);
    /// assert_eq!(e.cause(), Some(Cause::DeadlineExceeded));
    /// ```
    pub fn cause(&self) -> Option<Cause> {
        match self {
            RecvUntilError::Cancelled(c) => Some(*c),
            RecvUntilError::Closed => None,
        }
    }
}

impl From<RecvError> for RecvUntilError {
    fn from(_: RecvError) -> Self {
        RecvUntilError::Closed
    }
}

impl fmt::Display for RecvUntilError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RecvUntilError::Cancelled(c) => write!(f, "receive cancelled: {c}"),
            RecvUntilError::Closed => f.write_str("receiving on a closed channel"),
        }
    }
}

impl std::error::Error for RecvUntilError {}
