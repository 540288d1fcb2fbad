//! Sim Mode's clock: simulated latency that lasts what it says, to the tens of microseconds.
//!
//! Tokio's timer wheel has a 1 ms tick and wakes on the first tick at or after a deadline,
//! which lengthens every sleep by up to a millisecond (a tenth of a 10 ms step). So the bulk
//! of a simulated wait is a tokio sleep that ends a little early, and the last stretch waits
//! on [`PreciseTimer`]: one thread that sleeps until the earliest deadline it holds.
//!
//! A simulated call's latency counts from when the call was issued: the instant its node was
//! dispatched (see [`issued`]), or later if it had to wait for a concurrency permit or a rate
//! limit (see [`after_wait`]), so the engine's own bookkeeping overlaps the simulated wait as
//! it would overlap a real provider's.

use std::cell::Cell;
use std::collections::BinaryHeap;
use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Condvar, Mutex, OnceLock};
use std::task::Poll;
use std::time::Duration;

use tokio::sync::oneshot;
use tokio::time::Instant;

tokio::task_local! {
    /// When the call being made by the current node was issued (taken by its first wait).
    static ISSUED_AT: Cell<Option<Instant>>;
}

/// Runs a node's future with its call issued now: the first simulated latency inside it
/// counts from this instant.
pub(crate) fn issued<F: Future>(node: F) -> impl Future<Output = F::Output> {
    ISSUED_AT.scope(Cell::new(Some(Instant::now())), node)
}

/// Awaits `wait` (a permit, a rate limit); when it did not finish at once, the call counts
/// as issued when it finishes.
pub(crate) async fn after_wait<F: Future>(wait: F) -> F::Output {
    let mut wait = std::pin::pin!(wait);
    let mut waited = false;
    let output = std::future::poll_fn(|cx| match wait.as_mut().poll(cx) {
        Poll::Ready(output) => Poll::Ready(output),
        Poll::Pending => {
            waited = true;
            Poll::Pending
        }
    })
    .await;
    if waited {
        let _ = ISSUED_AT.try_with(|at| at.set(Some(Instant::now())));
    }
    output
}

/// Waits a simulated latency, counted from when the current call was issued (now, outside a
/// node). Later calls of the same node (a compute step's second tool call, a route's
/// specialist after its router) count from their own start.
pub async fn latency(latency: Duration) {
    sleep_until(call_deadline(latency)).await;
}

/// When a simulated call issued by the current node ends (taking the node's issue instant).
fn call_deadline(latency: Duration) -> Instant {
    let issued = ISSUED_AT
        .try_with(Cell::take)
        .ok()
        .flatten()
        .unwrap_or_else(Instant::now);
    issued + latency
}

/// Waits until `deadline` on tokio's clock, precisely (see the module's doc). Dropping the
/// future cancels the wait. Under tokio's paused clock the tokio part is skipped over and
/// only the last stretch (at most 2 ms) takes real time.
pub async fn sleep_until(deadline: Instant) {
    const TOKIO_TICK_MARGIN: Duration = Duration::from_millis(2);
    let now = Instant::now();
    if deadline <= now {
        return;
    }
    if deadline - now > TOKIO_TICK_MARGIN {
        tokio::time::sleep_until(deadline - TOKIO_TICK_MARGIN).await;
    }
    let remaining = deadline.saturating_duration_since(Instant::now());
    if remaining.is_zero() {
        return;
    }
    match PreciseTimer::global() {
        Some(timer) => {
            let (done, wait) = oneshot::channel();
            timer.add(std::time::Instant::now() + remaining, done);
            let _ = wait.await;
        }
        None => tokio::time::sleep_until(deadline).await,
    }
}

/// How long before a deadline the timer thread stops sleeping and spins.
const SPIN: Duration = Duration::from_micros(150);

/// One thread that fires oneshot channels at their deadlines.
struct PreciseTimer {
    queue: Mutex<BinaryHeap<TimerEntry>>,
    changed: Condvar,
}

struct TimerEntry {
    deadline: std::time::Instant,
    seq: u64,
    done: oneshot::Sender<()>,
}

impl PartialEq for TimerEntry {
    fn eq(&self, other: &Self) -> bool {
        (self.deadline, self.seq) == (other.deadline, other.seq)
    }
}

impl Eq for TimerEntry {}

impl PartialOrd for TimerEntry {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for TimerEntry {
    /// The earliest deadline is the greatest, so it sits on top of the (max-)heap.
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        (other.deadline, other.seq).cmp(&(self.deadline, self.seq))
    }
}

impl PreciseTimer {
    /// The process's timer thread, started on first use (`None` if no thread can start:
    /// then waits fall back to tokio's timer).
    fn global() -> Option<&'static PreciseTimer> {
        static TIMER: OnceLock<Option<&'static PreciseTimer>> = OnceLock::new();
        *TIMER.get_or_init(|| {
            let timer: &'static PreciseTimer = Box::leak(Box::new(PreciseTimer {
                queue: Mutex::new(BinaryHeap::new()),
                changed: Condvar::new(),
            }));
            std::thread::Builder::new()
                .name("galaxy-sim-timer".into())
                .spawn(move || timer.fire_forever())
                .ok()
                .map(|_| timer)
        })
    }

    fn add(&self, deadline: std::time::Instant, done: oneshot::Sender<()>) {
        static SEQ: AtomicU64 = AtomicU64::new(0);
        let seq = SEQ.fetch_add(1, Ordering::Relaxed);
        let mut queue = self.queue.lock().unwrap_or_else(|e| e.into_inner());
        let earliest = queue.peek().is_none_or(|top| deadline < top.deadline);
        queue.push(TimerEntry {
            deadline,
            seq,
            done,
        });
        drop(queue);
        if earliest {
            self.changed.notify_one();
        }
    }

    fn fire_forever(&self) {
        let mut due = Vec::new();
        let mut queue = self.queue.lock().unwrap_or_else(|e| e.into_inner());
        loop {
            let now = std::time::Instant::now();
            while queue.peek().is_some_and(|top| top.deadline <= now) {
                due.extend(queue.pop());
            }
            if !due.is_empty() {
                drop(queue);
                for entry in due.drain(..) {
                    let _ = entry.done.send(());
                }
                queue = self.queue.lock().unwrap_or_else(|e| e.into_inner());
                continue;
            }
            queue = match queue.peek().map(|top| top.deadline - now) {
                None => self.changed.wait(queue).unwrap_or_else(|e| e.into_inner()),
                // The kernel wakes a sleeping thread some 50-100 us late (timer slack, then
                // scheduling): sleep until shortly before the deadline, then spin to it.
                Some(wait) if wait > SPIN => {
                    self.changed
                        .wait_timeout(queue, wait - SPIN)
                        .unwrap_or_else(|e| e.into_inner())
                        .0
                }
                Some(_) => {
                    drop(queue);
                    std::thread::yield_now();
                    self.queue.lock().unwrap_or_else(|e| e.into_inner())
                }
            };
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_wait_lasts_at_least_its_latency() {
        for ms in [0, 1, 3, 25] {
            let start = Instant::now();
            latency(Duration::from_millis(ms)).await;
            assert!(start.elapsed() >= Duration::from_millis(ms), "{ms} ms");
        }
    }

    #[tokio::test]
    async fn latency_counts_from_dispatch_then_from_each_later_call() {
        let before = Instant::now();
        let (first, second, after_first) = issued(async {
            tokio::time::sleep(Duration::from_millis(5)).await;
            let after_first = Instant::now();
            let first = call_deadline(Duration::from_millis(50));
            let second = call_deadline(Duration::from_millis(50));
            (first, second, after_first)
        })
        .await;
        // The first call counts from the node's dispatch, before its 5 ms of bookkeeping.
        assert!(first >= before + Duration::from_millis(50));
        assert!(first < after_first + Duration::from_millis(50));
        // The second counts from its own start.
        assert!(second >= after_first + Duration::from_millis(50));
    }

    #[tokio::test]
    async fn a_call_that_waited_for_a_permit_counts_from_the_permit() {
        let semaphore = tokio::sync::Semaphore::new(1);
        let held = semaphore.acquire().await.expect("open");
        let start = Instant::now();
        let deadline = issued(async {
            let waiting = after_wait(semaphore.acquire());
            let release = async {
                tokio::time::sleep(Duration::from_millis(5)).await;
                drop(held);
            };
            let (_permit, ()) = tokio::join!(waiting, release);
            call_deadline(Duration::from_millis(50))
        })
        .await;
        // Counted from the permit (at least 5 ms after dispatch), not from dispatch.
        assert!(deadline >= start + Duration::from_millis(55));
    }

    #[tokio::test]
    async fn outside_a_node_latency_counts_from_now() {
        let before = Instant::now();
        let deadline = call_deadline(Duration::from_millis(10));
        assert!(deadline >= before + Duration::from_millis(10));
    }
}
