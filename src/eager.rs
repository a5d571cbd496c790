//! Runs a future as far as it goes without waiting, for the Worker's fetch entry. Most requests
//! finish without awaiting anything (`/healthz`, a remembered access token, a proxied request
//! up to the origin's `fetch`, whose promise the runtime awaits itself); handing each to the
//! async executor would cost a promise, a task and a microtask per request (README
//! "Performance", docs/budgets.md). What does wait goes on in the executor as a [`Resumed`].
//!
//! A future polled once here may keep the first waker it was given and never look at a later
//! one (the `worker` crate's timer does): that first waker is a relay, which passes every wake
//! to the task polling the future by then. A wake before any task polls it is dropped safely:
//! a task's first poll looks at the future anyway.

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll, Wake, Waker};

/// A future after its first poll.
pub enum Started<F: Future> {
    /// It finished without waiting.
    Done(F::Output),
    /// It waits for something: poll the rest in an executor.
    Waiting(Resumed<F>),
}

/// Polls `fut` once, with a relaying waker (see the module's doc).
pub fn start<F: Future>(fut: F) -> Started<F> {
    let relay = Arc::new(Relay::default());
    let waker = Waker::from(relay.clone());
    let mut fut = Box::pin(fut);
    match fut.as_mut().poll(&mut Context::from_waker(&waker)) {
        Poll::Ready(out) => Started::Done(out),
        Poll::Pending => Started::Waiting(Resumed { fut, relay, waker }),
    }
}

/// Passes wakes on to the waker of the task that polled last (none before the first poll).
#[derive(Default)]
struct Relay {
    task: Mutex<Option<Waker>>,
}

impl Relay {
    fn set_task(&self, waker: &Waker) {
        let mut task = self.task.lock().unwrap_or_else(PoisonError::into_inner);
        if !task.as_ref().is_some_and(|w| w.will_wake(waker)) {
            *task = Some(waker.clone());
        }
    }
}

impl Wake for Relay {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        let task = self.task.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(waker) = task.as_ref() {
            waker.wake_by_ref();
        }
    }
}

/// The rest of a future [`start`] began: every poll goes on with the relay as its waker.
pub struct Resumed<F: Future> {
    fut: Pin<Box<F>>,
    relay: Arc<Relay>,
    waker: Waker,
}

impl<F: Future> Future for Resumed<F> {
    type Output = F::Output;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        let this = &mut *self;
        this.relay.set_task(cx.waker());
        this.fut
            .as_mut()
            .poll(&mut Context::from_waker(&this.waker))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::{Cell, RefCell};
    use std::rc::Rc;
    use std::sync::atomic::{AtomicUsize, Ordering};

    /// A leaf future like the `worker` crate's timer: it keeps the first waker it sees.
    struct FirstWakerOnly {
        fired: Rc<Cell<bool>>,
        kept: Rc<RefCell<Option<Waker>>>,
    }

    impl Future for FirstWakerOnly {
        type Output = &'static str;
        fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<&'static str> {
            if self.fired.get() {
                return Poll::Ready("fired");
            }
            self.kept
                .borrow_mut()
                .get_or_insert_with(|| cx.waker().clone());
            Poll::Pending
        }
    }

    #[derive(Default)]
    struct CountingWaker(AtomicUsize);
    impl Wake for CountingWaker {
        fn wake(self: Arc<Self>) {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }

    /// A task's waker that counts its wakes.
    fn task() -> (Arc<CountingWaker>, Waker) {
        let count = Arc::new(CountingWaker::default());
        let waker = Waker::from(count.clone());
        (count, waker)
    }

    /// A leaf that waits, started: its rest, and `fire` (done, then its kept waker woken).
    fn started_leaf() -> (Resumed<impl Future<Output = &'static str>>, impl Fn()) {
        let fired = Rc::new(Cell::new(false));
        let kept = Rc::new(RefCell::new(None::<Waker>));
        let leaf = FirstWakerOnly {
            fired: fired.clone(),
            kept: kept.clone(),
        };
        let Started::Waiting(rest) = start(leaf) else {
            panic!("the leaf waits");
        };
        let fire = move || {
            fired.set(true);
            kept.borrow()
                .as_ref()
                .expect("a waker was kept")
                .wake_by_ref();
        };
        (rest, fire)
    }

    #[test]
    fn a_future_that_does_not_wait_is_done_at_once() {
        match start(async { 7 }) {
            Started::Done(v) => assert_eq!(v, 7),
            Started::Waiting(_) => panic!("nothing to wait for"),
        }
    }

    #[test]
    fn the_first_waker_wakes_the_task_that_polls_later() {
        let (mut rest, fire) = started_leaf();
        // The executor's task polls the rest once (it waits on), then the leaf fires and
        // wakes the only waker it kept: the one from `start`, before any task existed.
        let (count, waker) = task();
        let mut cx = Context::from_waker(&waker);
        assert!(Pin::new(&mut rest).poll(&mut cx).is_pending());
        fire();
        assert_eq!(count.0.load(Ordering::SeqCst), 1, "the task was woken");
        assert_eq!(Pin::new(&mut rest).poll(&mut cx), Poll::Ready("fired"));
    }

    #[test]
    fn a_wake_before_any_task_is_dropped_and_later_ones_reach_the_task() {
        let (mut rest, fire) = started_leaf();
        fire(); // no task yet: nothing to wake, nothing lost (the poll below looks anyway)
        let (count, waker) = task();
        let mut cx = Context::from_waker(&waker);
        assert_eq!(Pin::new(&mut rest).poll(&mut cx), Poll::Ready("fired"));
        // A second leaf: an early wake, then the task polls, then the real wake reaches it.
        let (mut rest, fire) = started_leaf();
        let early = rest.relay.clone();
        Waker::from(early).wake_by_ref(); // before any task: dropped
        assert!(Pin::new(&mut rest).poll(&mut cx).is_pending());
        fire();
        assert_eq!(count.0.load(Ordering::SeqCst), 1, "the task was woken once");
    }

    #[test]
    fn a_later_task_waker_replaces_an_earlier_one() {
        let (mut rest, fire) = started_leaf();
        let (first, second) = (task(), task());
        for (_, w) in [&first, &second] {
            assert!(Pin::new(&mut rest)
                .poll(&mut Context::from_waker(w))
                .is_pending());
        }
        fire();
        assert_eq!(first.0 .0.load(Ordering::SeqCst), 0);
        assert_eq!(second.0 .0.load(Ordering::SeqCst), 1);
    }
}
