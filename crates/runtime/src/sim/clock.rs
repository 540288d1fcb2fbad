//! Sim Mode's clock: simulated latency that lasts what it says, to the tens of microseconds.
//!
//! Tokio's timer wheel has a 1 ms tick and wakes on the first tick at or after a deadline,
//! which lengthens every sleep by up to a millisecond (a tenth of a 10 ms step). So a
//! simulated wait is on [`PreciseTimer`]: one thread that sleeps until the earliest deadline
//! it holds. The whole wait is there, not a tokio sleep for the bulk and the timer for the
//! last stretch: with two timers, each of a wide wave's calls was woken and polled twice, and
//! the first wake-ups of 1,000 calls fell due just before the calls ended, on the thread that
//! then had to finish them. The waits are real time, also under tokio's paused clock. Waits
//! that fall due within [`COALESCE`] of each other (a wave's) are fired together, the first
//! of them up to that much late (see `Deadlines::take_due`); a scheduler with nothing left
//! to do fires the waits already due itself rather than park until the timer's thread gets
//! a core (see [`fire_due`]).
//!
//! A simulated call's latency counts from when the call was issued: the instant its node was
//! dispatched (see [`issued`]), or later if it had to wait for a concurrency permit or a rate
//! limit (see [`after_wait`]), so the engine's own bookkeeping overlaps the simulated wait as
//! it would overlap a real provider's.

use std::cell::Cell;
use std::collections::{BinaryHeap, VecDeque};
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
/// node; later calls of the same node, such as a route's specialist after its router, count
/// from their own start), under a `timeout` counted from now, as a timeout around the call
/// would count it: true when the call ends in time, false when the timeout cuts it off
/// first. A simulated call's end is known when it starts, so there is nothing to race: one
/// wait, until whichever comes first, and no timer for the timeout.
pub async fn latency_within(latency: Duration, timeout: Duration) -> bool {
    let end = call_deadline(latency);
    match Instant::now().checked_add(timeout) {
        Some(limit) if limit < end => {
            sleep_until(limit).await;
            false
        }
        _ => {
            sleep_until(end).await;
            true
        }
    }
}

/// When a simulated call issued by the current node ends (taking the node's issue instant).
fn call_deadline(latency: Duration) -> Instant {
    let issued = ISSUED_AT
        .try_with(Cell::take)
        .ok()
        .flatten()
        .unwrap_or_else(Instant::now);
    // A latency too long for the clock ends in a century, which is never for a run.
    issued
        .checked_add(latency)
        .unwrap_or_else(|| issued + Duration::from_secs(100 * 365 * 24 * 3600))
}

/// Waits until `deadline` on tokio's clock, precisely (see the module's doc). Dropping the
/// future cancels the wait.
pub async fn sleep_until(deadline: Instant) {
    let remaining = deadline.saturating_duration_since(Instant::now());
    if remaining.is_zero() {
        return;
    }
    let timer = PreciseTimer::global();
    match (timer, std::time::Instant::now().checked_add(remaining)) {
        (Some(timer), Some(at)) => {
            let (done, wait) = oneshot::channel();
            timer.add(at, done);
            let _ = wait.await;
        }
        // No timer thread, or a deadline beyond what the clock can hold. Boxed: tokio's
        // sleep is large, and would make every simulated call's future so.
        _ => Box::pin(tokio::time::sleep_until(deadline)).await,
    }
}

/// Fires, on the calling thread, every simulated wait already due (those the timer thread
/// holds back for a batch too), if the timer is free at once; true if any fired. A
/// scheduler about to wait for its steps calls it: on two vCPUs the timer thread is not
/// always running when waits fall due, and the scheduler, awake anyway, need not wait for
/// it to be. Waits are fired once, by whichever thread takes them.
pub(crate) fn fire_due() -> bool {
    PreciseTimer::global_if_started().is_some_and(|timer| fire_due_in(&timer.queue))
}

/// Fires the waits of `queue` due now (and those held back), if `queue` is free at once.
fn fire_due_in(queue: &Mutex<Deadlines>) -> bool {
    let Ok(mut queue) = queue.try_lock() else {
        return false;
    };
    queue.take_due(std::time::Instant::now());
    fire_held(queue)
}

/// Fires the waits `queue` holds back, once it is unlocked; true if there were any.
fn fire_held(mut queue: std::sync::MutexGuard<'_, Deadlines>) -> bool {
    let due = std::mem::take(&mut queue.held);
    drop(queue);
    let fired = !due.is_empty();
    for entry in due {
        let _ = entry.done.send(());
    }
    fired
}

/// The process's timer (see [`PreciseTimer::global`]).
static TIMER: OnceLock<Option<&'static PreciseTimer>> = OnceLock::new();

/// How long before a deadline the timer thread stops sleeping and spins.
const SPIN: Duration = Duration::from_micros(150);

/// How late a due wait may be fired, to go with others due just after it: 50 us, against
/// the 1 ms of tokio's timer wheel.
const COALESCE: Duration = Duration::from_micros(50);

/// One thread that fires oneshot channels at their deadlines.
struct PreciseTimer {
    queue: Mutex<Deadlines>,
    changed: Condvar,
}

/// The waits a timer holds, earliest first. Most come in the order they fall due (a wave's
/// calls of one latency, dispatched one after the other): those queue in a list, added and
/// taken in constant time; one that falls due before the list's last goes to a heap. Taking
/// 1,000 due waits off a heap of 1,000 was most of the timer thread's work in a wide wave
/// (380,000 of its 480,000 instructions, callgrind), on a core the wave's steps need.
#[derive(Default)]
struct Deadlines {
    in_order: VecDeque<TimerEntry>,
    others: BinaryHeap<TimerEntry>,
    /// Waits due and taken, held back to go with others (see [`Deadlines::take_due`]).
    held: Vec<TimerEntry>,
}

impl Deadlines {
    fn push(&mut self, entry: TimerEntry) {
        match self.in_order.back() {
            // Due before the list's last (the earliest deadline orders greatest).
            Some(last) if entry > *last => self.others.push(entry),
            _ => self.in_order.push_back(entry),
        }
    }

    /// The earliest wait, and whether it heads the list (else the heap). (The ordering
    /// puts the earliest deadline greatest: see `TimerEntry`'s `Ord`.)
    fn first(&self) -> Option<(&TimerEntry, bool)> {
        match (self.in_order.front(), self.others.peek()) {
            (Some(listed), Some(heaped)) if heaped > listed => Some((heaped, false)),
            (Some(listed), _) => Some((listed, true)),
            (None, heaped) => heaped.map(|heaped| (heaped, false)),
        }
    }

    /// The earliest deadline.
    fn earliest(&self) -> Option<std::time::Instant> {
        self.first().map(|(entry, _)| entry.deadline)
    }

    /// Moves the waits due at `now` into `held` (which may hold some taken before), and
    /// says whether the timer thread is to fire `held` now. A wave's waits fall due a
    /// microsecond or so apart: fired one at a time, each would find the waiting thread
    /// parked again, and wake it (a futex call and, on a VM, an interrupt to the other
    /// vCPU). So `held` waits while another wait falls due within [`COALESCE`] of its
    /// first, until that much after the first: a wave's waits go in batches with one wake
    /// each, at most `COALESCE` late, and a lone wait goes at its deadline. (A thread that
    /// is awake anyway fires them at once: see [`fire_due`].)
    fn take_due(&mut self, now: std::time::Instant) -> bool {
        while let Some(entry) = self.pop_due(now) {
            self.held.push(entry);
        }
        let Some(first) = self.held.first().map(|entry| entry.deadline) else {
            return false;
        };
        let until = first + COALESCE;
        now >= until || self.earliest().is_none_or(|next| next > until)
    }

    /// Takes the earliest wait if it is due at `now`.
    fn pop_due(&mut self, now: std::time::Instant) -> Option<TimerEntry> {
        let (entry, listed) = self.first()?;
        if entry.deadline > now {
            None
        } else if listed {
            self.in_order.pop_front()
        } else {
            self.others.pop()
        }
    }
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
        *TIMER.get_or_init(|| {
            let timer: &'static PreciseTimer = Box::leak(Box::new(PreciseTimer {
                queue: Mutex::new(Deadlines::default()),
                changed: Condvar::new(),
            }));
            std::thread::Builder::new()
                .name("galaxy-sim-timer".into())
                .spawn(move || timer.fire_forever())
                .ok()
                .map(|_| timer)
        })
    }

    /// The process's timer thread if it has started (no wait was ever made otherwise).
    fn global_if_started() -> Option<&'static PreciseTimer> {
        TIMER.get().copied().flatten()
    }

    fn add(&self, deadline: std::time::Instant, done: oneshot::Sender<()>) {
        static SEQ: AtomicU64 = AtomicU64::new(0);
        let seq = SEQ.fetch_add(1, Ordering::Relaxed);
        let mut queue = self.queue.lock().unwrap_or_else(|e| e.into_inner());
        let earliest = queue.earliest().is_none_or(|top| deadline < top);
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
        let mut queue = self.queue.lock().unwrap_or_else(|e| e.into_inner());
        loop {
            let now = std::time::Instant::now();
            if queue.take_due(now) {
                fire_held(queue);
                queue = self.queue.lock().unwrap_or_else(|e| e.into_inner());
                continue;
            }
            // Waits taken and held back for a batch: spin until it is complete.
            let next = if queue.held.is_empty() {
                queue.earliest().map(|top| top - now)
            } else {
                Some(Duration::ZERO)
            };
            queue = match next {
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

    #[test]
    fn waits_due_close_together_fire_together_and_a_lone_one_on_time() {
        let start = std::time::Instant::now();
        let at = |us: u64| start + Duration::from_micros(us);
        let mut deadlines = Deadlines::default();
        // A wave: eleven waits 1 us apart from 1,000 us; then one alone at 5,000 us.
        for (seq, us) in (1_000..=1_010).chain([5_000]).enumerate() {
            let (done, _) = oneshot::channel();
            deadlines.push(TimerEntry {
                deadline: at(us),
                seq: seq as u64,
                done,
            });
        }
        assert!(!deadlines.take_due(at(999)), "nothing due yet");
        assert!(deadlines.held.is_empty());
        // The first is due, but the others follow within COALESCE: it waits for them.
        assert!(!deadlines.take_due(at(1_000)));
        assert_eq!(deadlines.held.len(), 1);
        assert!(!deadlines.take_due(at(1_005)));
        assert_eq!(deadlines.held.len(), 6);
        // All eleven taken, and the next is far: the batch goes, 10 us after its first.
        assert!(deadlines.take_due(at(1_010)));
        assert_eq!(deadlines.held.len(), 11);
        deadlines.held.clear();
        // The lone wait goes at its deadline.
        assert!(!deadlines.take_due(at(4_999)));
        assert!(deadlines.take_due(at(5_000)));
        assert_eq!(deadlines.held.len(), 1);
        deadlines.held.clear();
        // Waits that keep coming hold the first back COALESCE at most.
        for (seq, us) in (10_000..10_200).enumerate() {
            let (done, _) = oneshot::channel();
            deadlines.push(TimerEntry {
                deadline: at(us),
                seq: 100 + seq as u64,
                done,
            });
        }
        let coalesce = COALESCE.as_micros() as u64;
        assert!(!deadlines.take_due(at(10_000 + coalesce - 1)));
        assert!(deadlines.take_due(at(10_000 + coalesce)));
        assert_eq!(deadlines.held.len() as u64, coalesce + 1);
    }

    #[test]
    fn a_scheduler_fires_the_waits_already_due_and_no_other() {
        let now = std::time::Instant::now();
        let queue = Mutex::new(Deadlines::default());
        let mut receivers = Vec::new();
        // One held back for a batch, two due, one a minute off.
        for (seq, deadline) in [
            now - Duration::from_millis(2),
            now - Duration::from_millis(1),
            now + Duration::from_secs(60),
        ]
        .into_iter()
        .enumerate()
        {
            let (done, wait) = oneshot::channel();
            receivers.push(wait);
            lock_test(&queue).push(TimerEntry {
                deadline,
                seq: seq as u64,
                done,
            });
        }
        let (done, held) = oneshot::channel();
        lock_test(&queue).held.push(TimerEntry {
            deadline: now - Duration::from_millis(3),
            seq: 9,
            done,
        });
        receivers.push(held);
        assert!(fire_due_in(&queue));
        let fired: Vec<bool> = receivers.iter_mut().map(|r| r.try_recv().is_ok()).collect();
        assert_eq!(fired, [true, true, false, true]);
        assert!(lock_test(&queue).held.is_empty());
        // Nothing more is due: nothing fires, and the far wait stays.
        assert!(!fire_due_in(&queue));
        assert_eq!(
            lock_test(&queue).earliest(),
            Some(now + Duration::from_secs(60))
        );
        // A queue the timer thread holds is left to it.
        let held_by_timer = lock_test(&queue);
        assert!(!fire_due_in(&queue));
        drop(held_by_timer);
    }

    fn lock_test(queue: &Mutex<Deadlines>) -> std::sync::MutexGuard<'_, Deadlines> {
        queue.lock().expect("the test's queue")
    }

    #[test]
    fn waits_fall_due_in_deadline_order_whatever_order_they_came_in() {
        let start = std::time::Instant::now();
        let at = |ms: u64| start + Duration::from_millis(ms);
        let mut deadlines = Deadlines::default();
        // In order, then earlier ones, a tie (which keeps its arrival order), later ones.
        let arrivals = [10, 20, 20, 30, 5, 25, 15, 30, 40, 1, 50, 45];
        for (seq, ms) in arrivals.iter().enumerate() {
            let (done, _) = oneshot::channel();
            deadlines.push(TimerEntry {
                deadline: at(*ms),
                seq: seq as u64,
                done,
            });
        }
        assert_eq!(deadlines.earliest(), Some(at(1)));
        // Nothing is due before its deadline.
        assert!(deadlines.pop_due(at(0)).is_none());
        let mut fired = Vec::new();
        for now in [at(20), at(100)] {
            while let Some(entry) = deadlines.pop_due(now) {
                assert!(entry.deadline <= now);
                fired.push((entry.deadline, entry.seq));
            }
            if now == at(20) {
                assert_eq!(deadlines.earliest(), Some(at(25)));
            }
        }
        assert_eq!(deadlines.earliest(), None);
        let mut expected: Vec<_> = arrivals
            .iter()
            .enumerate()
            .map(|(seq, ms)| (at(*ms), seq as u64))
            .collect();
        expected.sort();
        assert_eq!(fired, expected);
    }

    #[tokio::test]
    async fn a_wait_lasts_at_least_its_latency() {
        for ms in [0, 1, 3, 25] {
            let start = Instant::now();
            assert!(latency_within(Duration::from_millis(ms), Duration::MAX).await);
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
    async fn a_timeout_cuts_a_simulated_call_off_or_lets_it_end() {
        let start = Instant::now();
        assert!(latency_within(Duration::from_millis(5), Duration::from_millis(50)).await);
        let ended = start.elapsed();
        assert!(ended >= Duration::from_millis(5), "{ended:?}");
        assert!(ended < Duration::from_millis(50), "{ended:?}");

        let start = Instant::now();
        assert!(!latency_within(Duration::from_millis(50), Duration::from_millis(5)).await);
        let cut = start.elapsed();
        assert!(cut >= Duration::from_millis(5), "{cut:?}");
        assert!(cut < Duration::from_millis(50), "{cut:?}");

        // A timeout too long for the clock never cuts a call off.
        assert!(latency_within(Duration::from_millis(1), Duration::MAX).await);
        // The latency counts from dispatch, the timeout from the call: a call whose node
        // spent its latency before calling ends at once, in time.
        let start = Instant::now();
        let in_time = issued(async {
            tokio::time::sleep(Duration::from_millis(20)).await;
            latency_within(Duration::from_millis(10), Duration::from_millis(1)).await
        })
        .await;
        assert!(in_time);
        assert!(start.elapsed() < Duration::from_millis(40));
    }

    #[tokio::test]
    async fn outside_a_node_latency_counts_from_now() {
        let before = Instant::now();
        let deadline = call_deadline(Duration::from_millis(10));
        assert!(deadline >= before + Duration::from_millis(10));
    }
}
