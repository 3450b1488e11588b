//! [`InlineFuture`]: room for a handler's future inside the router's own
//! future, so that calling a handler through `dyn` allocates nothing.
//!
//! Handlers of different types share one table, so their futures, each of
//! its own type, are erased. A `Box<dyn Future>` would cost an allocation
//! and a free per request (about 130 instructions of the 2,500 a plaintext
//! request takes). Instead the router's `async fn` pins an empty
//! `InlineFuture` and the handler writes its future there, with the
//! functions that poll and drop it beside it: written in place, the future
//! never moves (a move would copy the whole room). A future too big for the
//! room (one holding large state across an `.await`) is boxed, and the box
//! stored in place.

use std::future::Future;
use std::marker::{PhantomData, PhantomPinned};
use std::mem::{align_of, size_of, MaybeUninit};
use std::pin::Pin;
use std::task::{Context, Poll};

use crate::response::Response;

/// Bytes of room for a handler's future: enough for a ready [`Response`]
/// (176 bytes), the future of a route with parameters (they live in it,
/// with the request that borrows them: about 300 bytes), or a handler that
/// awaits a timer or a channel.
const ROOM: usize = 384;

/// The room, aligned like a pointer (the alignment of nearly every future).
type Room = MaybeUninit<[usize; ROOM / size_of::<usize>()]>;

/// A future that answers with a [`Response`], of a type known only when it
/// is [`set`](InlineFuture::set), stored without allocating when it fits in
/// [`ROOM`] bytes. Pin it empty, set it, await it.
// `erased` first: after `room`, the compiler zeroed the whole room to
// write `None` (a `memset` of 264 bytes per request).
#[repr(C)]
pub(crate) struct InlineFuture<'a> {
    /// How to poll and drop what `room` holds; `None` while empty.
    erased: Option<Erased>,
    /// Holds the future that was set (an `F` at offset 0, or a `Pin<Box<F>>`).
    room: Room,
    /// Holds what the future borrows for `'a`; like any future, neither
    /// `Send` nor `Unpin`.
    _future: PhantomData<dyn Future<Output = Response> + 'a>,
    _pinned: PhantomPinned,
}

/// The functions that poll and drop one type of future in the room.
#[derive(Clone, Copy)]
struct Erased {
    poll: unsafe fn(*mut (), &mut Context<'_>) -> Poll<Response>,
    drop: unsafe fn(*mut ()),
}

impl<'a> InlineFuture<'a> {
    /// An empty room: pin it, then [`set`](Self::set) it before polling it.
    #[inline]
    pub(crate) fn empty() -> Self {
        InlineFuture {
            erased: None,
            room: Room::uninit(),
            _future: PhantomData,
            _pinned: PhantomPinned,
        }
    }

    /// Store `future` (in place if it fits, else boxed), dropping what was
    /// stored before.
    #[inline]
    pub(crate) fn set<F: Future<Output = Response> + 'a>(self: Pin<&mut Self>, future: F) {
        if fits::<F>() {
            self.set_in_place(future);
        } else {
            #[cfg(test)]
            BOXED.with(|boxed| boxed.set(boxed.get() + 1));
            self.set_in_place(Box::pin(future));
        }
    }

    /// Store a future that is ready with `response`.
    pub(crate) fn set_ready(self: Pin<&mut Self>, response: Response) {
        self.set_in_place(std::future::ready(response));
    }

    #[inline]
    fn set_in_place<F: Future<Output = Response> + 'a>(self: Pin<&mut Self>, future: F) {
        assert!(fits::<F>());
        // SAFETY: nothing pinned is moved: what the room held is dropped in
        // place, and the new `F` is written where it stays until dropped.
        let this = unsafe { self.get_unchecked_mut() };
        this.clear();
        // SAFETY: the room is large and aligned enough for an `F` (asserted
        // above) and holds nothing now.
        unsafe { this.room.as_mut_ptr().cast::<F>().write(future) };
        this.erased = Some(Erased {
            poll: poll_as::<F>,
            drop: drop_as::<F>,
        });
    }

    /// Drop what the room holds, if anything.
    fn clear(&mut self) {
        if let Some(erased) = self.erased.take() {
            // SAFETY: the room holds the future `erased` was made for; it
            // is dropped once, since `erased` is gone.
            unsafe { (erased.drop)(self.room.as_mut_ptr().cast()) }
        }
    }
}

#[cfg(test)]
thread_local! {
    /// How many futures this thread boxed because they did not fit.
    pub(super) static BOXED: std::cell::Cell<u32> = const { std::cell::Cell::new(0) };
}

const fn fits<F>() -> bool {
    size_of::<F>() <= size_of::<Room>() && align_of::<F>() <= align_of::<Room>()
}

/// # Safety
/// `future` points to a live `F` that stays where it is until it is dropped.
unsafe fn poll_as<F: Future<Output = Response>>(
    future: *mut (),
    cx: &mut Context<'_>,
) -> Poll<Response> {
    // SAFETY: per this function's contract, the `F` is pinned.
    unsafe { Pin::new_unchecked(&mut *future.cast::<F>()) }.poll(cx)
}

/// # Safety
/// `future` points to a live `F`, never used again.
unsafe fn drop_as<F>(future: *mut ()) {
    // SAFETY: per this function's contract.
    unsafe { future.cast::<F>().drop_in_place() }
}

impl Future for InlineFuture<'_> {
    type Output = Response;

    #[inline]
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Response> {
        // SAFETY: the future in the room is neither moved nor handed out
        // unpinned; `self` is pinned (and `!Unpin`), so it stays where it is
        // until it is dropped.
        let this = unsafe { self.get_unchecked_mut() };
        let erased = this
            .erased
            .expect("an InlineFuture is set before it is polled");
        // SAFETY: the room holds the future `erased` was made for, pinned.
        unsafe { (erased.poll)(this.room.as_mut_ptr().cast(), cx) }
    }
}

impl Drop for InlineFuture<'_> {
    fn drop(&mut self) {
        self.clear();
    }
}

#[cfg(test)]
mod tests {
    use std::cell::Cell;
    use std::pin::pin;
    use std::rc::Rc;
    use std::task::Waker;

    use http::StatusCode;

    use super::*;

    /// Counts its drops.
    struct Dropped(Rc<Cell<u32>>);

    impl Drop for Dropped {
        fn drop(&mut self) {
            self.0.set(self.0.get() + 1);
        }
    }

    fn poll(future: Pin<&mut InlineFuture<'_>>) -> Poll<Response> {
        future.poll(&mut Context::from_waker(Waker::noop()))
    }

    fn status(poll: Poll<Response>) -> u16 {
        match poll {
            Poll::Ready(response) => response.status().as_u16(),
            Poll::Pending => panic!("pending"),
        }
    }

    #[test]
    fn small_large_and_ready_futures_run_and_drop_once() {
        let drops = Rc::new(Cell::new(0));
        let guard = Dropped(drops.clone());
        let big = [7u8; 4 * ROOM];
        let mut future = pin!(InlineFuture::empty());
        future.as_mut().set(async move {
            let _guard = guard;
            Response::new(StatusCode::OK)
        });
        assert_eq!(status(poll(future.as_mut())), 200);
        assert_eq!(drops.get(), 1);
        future.as_mut().set(async move {
            std::future::ready(()).await;
            Response::new(StatusCode::from_u16(200 + u16::from(big[ROOM])).unwrap())
        });
        assert_eq!(status(poll(future.as_mut())), 207);
        assert_eq!(BOXED.with(|boxed| boxed.get()), 1);
        future.as_mut().set_ready(Response::new(StatusCode::GONE));
        assert_eq!(status(poll(future.as_mut())), 410);
    }

    #[test]
    fn a_pending_future_keeps_its_place_and_drops_unfinished() {
        let drops = Rc::new(Cell::new(0));
        let guard = Dropped(drops.clone());
        let (tx, rx) = tokio::sync::oneshot::channel::<u16>();
        {
            let mut future = pin!(InlineFuture::empty());
            future.as_mut().set(async move {
                let _guard = guard;
                let status = rx.await.unwrap_or(500);
                Response::new(StatusCode::from_u16(status).unwrap())
            });
            assert!(poll(future.as_mut()).is_pending());
            drop(tx);
            assert_eq!(status(poll(future.as_mut())), 500);
        }
        assert_eq!(drops.get(), 1);

        let guard = Dropped(drops.clone());
        let mut future = Box::pin(InlineFuture::empty());
        future.as_mut().set(async move {
            let _guard = guard;
            std::future::pending::<()>().await;
            Response::new(StatusCode::OK)
        });
        assert!(poll(future.as_mut()).is_pending());
        drop(future);
        assert_eq!(drops.get(), 2, "dropped while pending");
        drop(Box::pin(InlineFuture::empty()));
        assert_eq!(drops.get(), 2, "an empty future drops nothing");
    }
}
