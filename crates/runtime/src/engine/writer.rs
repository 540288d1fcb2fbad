//! The store writer: group commit. A step's writes join a queue and the step waits until
//! they are durable; whoever commits takes everything queued into one transaction and
//! acknowledges each batch once it is committed.
//!
//! Who commits depends on what else is in flight. A step that is the only node running (a
//! chain) commits inline: its writes go straight from the step to the database. When other
//! nodes are in flight, a committer drains the queue, one transaction after another, until
//! it is empty. The scheduler drives every node of a run from one task, so a step committing
//! inline would only release the connection when the scheduler next polls it, after every
//! other completion that fell due with it; the committer instead keeps the database busy
//! while the scheduler handles those completions, and a wave of 1,000 steps is a few
//! pipelined commits rather than one big commit after all of them.
//!
//! On SQLite the run has a connection of its own through SQLite's C API
//! ([`RawConnection`]), and the committer is a thread of the run's, started at the first
//! wave and asleep between waves; a lone step's inline commit blocks its runtime worker for
//! the few microseconds SQLite takes (no hand-over to another thread, which costs more than
//! the commit), but never waits there for another connection's write lock: a commit that
//! finds the store locked goes back to the queue, and the committer thread waits for the
//! lock instead. The thread starts as a wave starts (its second node), and prepares the
//! statements a wave's commits need (the 32-row insert too) while the wave works; between
//! a wave's groups it waits awake for the next batch (see [`AWAKE_FOR`]). Commits do not
//! checkpoint SQLite's log: a task on one of the pool's connections does that every 2,000
//! rows and once the writer is dropped, when it also closes the run's connection, both off
//! the run's path.
//! On PostgreSQL the connection is taken from the pool and kept for the run, and the
//! committer is a task.
//!
//! A finished leaf among others in flight does not even wait: it submits its record
//! ([`Writer::submit`]) and hands the scheduler a [`Ticket`]; commits resolve tickets in
//! queue order ([`Resolved`]), and the scheduler reports the step done, and starts its
//! dependents, once its ticket is resolved. A wave's steps then cost the scheduler one poll
//! each instead of two (no wake-up per acknowledgement), and a commit acknowledges all of
//! its batches with one update.

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use tokio::sync::{oneshot, watch};

use crate::store::{RawConnection, Store, StoreConnection, StoreError, Write};

type Ack = oneshot::Sender<Result<(), String>>;

/// A batch handed to the writer without waiting for it: its place in the commit order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct Ticket(u64);

/// How far the commits have got: every batch up to `upto` (in queue order) is committed or
/// failed; `failed` lists the ranges of batches whose commit failed, with the error.
#[derive(Debug, Default)]
pub(crate) struct Resolved {
    upto: u64,
    failed: Vec<(u64, u64, String)>,
}

impl Resolved {
    /// The outcome of `ticket`'s commit, once it is known.
    pub(crate) fn outcome(&self, ticket: Ticket) -> Option<Result<(), String>> {
        if ticket.0 > self.upto {
            return None;
        }
        Some(
            match self
                .failed
                .iter()
                .find(|(first, last, _)| (*first..=*last).contains(&ticket.0))
            {
                Some((_, _, error)) => Err(error.clone()),
                None => Ok(()),
            },
        )
    }
}

/// At most about this many committed rows wait for the committer thread to drop their
/// writes (see [`Spent`]): a wide wave's records are not all kept to its end.
const SPENT_ROWS: usize = 1024;

/// Rows written between two checkpoints of SQLite's log (about 1,000 pages).
const CHECKPOINT_ROWS: usize = 2000;

/// How long SQLite's committer thread, having committed a group while nodes are in flight,
/// waits awake (yielding its core) for the next batch before it sleeps. A wave's steps end
/// a few microseconds apart, and a sleeping committer is woken by the scheduler's thread:
/// on a 2-vCPU machine that packs woken threads onto busy vCPUs, the woken committer was
/// queued behind the scheduler for up to 2.7 ms while the other vCPU stood idle (see
/// docs/benchmarks.md). Awake, it takes each batch as it comes, on its own core.
const AWAKE_FOR: Duration = Duration::from_millis(1);

/// The writer of one run (or nothing, for in-memory runs).
pub(crate) struct Writer {
    shared: Option<Arc<Shared>>,
    /// Nodes of the run in flight (see [`Writer::node_started`]).
    in_flight: Arc<AtomicUsize>,
}

struct Shared {
    run_id: String,
    /// Nodes of the run in flight (see [`Writer::node_started`]).
    in_flight: Arc<AtomicUsize>,
    /// Batches waiting for the next commit, numbered in queue order, each with whoever
    /// waits for it (none for a submitted batch: its ticket is resolved through `resolved`).
    queue: Mutex<Queue>,
    /// The commits' progress, for submitted batches.
    resolved: watch::Sender<Resolved>,
    committer: Committer,
}

/// Who commits, by backend.
enum Committer {
    /// SQLite: the run's own connection through SQLite's C API, used by a committer thread
    /// of the run's, or inline by a step that is alone.
    Thread(ThreadCommitter),
    /// PostgreSQL: a pooled connection, used by a committer task, or inline.
    Task(TaskCommitter),
}

struct ThreadCommitter {
    /// The store file.
    path: PathBuf,
    /// The connection (opened at the first commit); whoever holds the lock commits the
    /// queue.
    held: Mutex<RawHeld>,
    /// Wakes the committer thread when it sleeps (with `Queue::thread`).
    wake: Condvar,
    /// The store, whose pool checkpoints the log (see [`ThreadCommitter::on_pool`]).
    store: Store,
    /// The runtime the writer was made on, where checkpoints run.
    runtime: Option<tokio::runtime::Handle>,
    /// Whether a checkpoint of the log is running.
    checkpointing: Arc<AtomicBool>,
    /// How long the thread waits awake for the next batch after a commit (see
    /// [`AWAKE_FOR`]).
    awake_for: Duration,
}

#[derive(Default)]
struct RawHeld {
    connection: Option<RawConnection>,
    /// Rows written since the last checkpoint.
    unchecked_rows: usize,
}

struct TaskCommitter {
    /// The connection; whoever holds the lock commits the queue.
    held: tokio::sync::Mutex<HeldConnection>,
    /// Whether a committer task is running (or about to).
    draining: AtomicBool,
}

#[derive(Default)]
struct Queue {
    batches: Vec<(Vec<Write>, Option<Ack>)>,
    /// The number of the last batch queued (the first is 1).
    last: u64,
    /// The committer thread's state (SQLite).
    thread: ThreadState,
}

#[derive(Default)]
struct ThreadState {
    started: bool,
    /// Waiting on `ThreadCommitter::wake` for batches.
    sleeping: bool,
    /// How many times it went to sleep.
    sleeps: u64,
    /// The writer is gone: the thread commits what is queued and stops.
    closed: bool,
}

/// Opens the run's connection to the store file at `path`, its commits' statements
/// prepared (see [`crate::store::WAVE`]): whoever opens it (the run's first write, or the
/// committer thread as a wave starts) readies it for the whole run.
fn open_for_run(path: &std::path::Path) -> Result<RawConnection, StoreError> {
    let mut connection = RawConnection::open(path)?;
    // What fails to prepare here fails again, and is reported, at the commit that needs it.
    let _ = connection.prepare(&crate::store::WAVE);
    Ok(connection)
}

/// An inline commit found the store's write lock held by another connection, and left its
/// group queued for the committer thread.
struct Locked;

/// The writes of a resolved group. Dropping them frees each record's strings, allocated on
/// the scheduler's thread: some 400 instructions a step row (counted with callgrind), which
/// the committer thread spends once the queue is empty rather than between a wave's commits.
struct Spent {
    /// How many rows the writes held.
    rows: usize,
    /// Held only to be dropped.
    _writes: Vec<(Vec<Write>, Option<Ack>)>,
}

/// A group taken from the queue: its batches and the numbers of the first and last.
struct Group {
    batches: Vec<(Vec<Write>, Option<Ack>)>,
    first: u64,
    last: u64,
}

impl Queue {
    /// Queues a batch and returns its number.
    fn push(&mut self, writes: Vec<Write>, ack: Option<Ack>) -> u64 {
        self.batches.push((writes, ack));
        self.last += 1;
        self.last
    }
}

impl Group {
    fn rows(&self) -> usize {
        self.batches.iter().map(|(batch, _)| batch.len()).sum()
    }

    /// The batches where they are: a wave's records are not copied into one list (a list
    /// of 1,000 step records is fresh memory the kernel zeroes page by page).
    fn slices(&self) -> Vec<&[Write]> {
        self.batches
            .iter()
            .map(|(batch, _)| batch.as_slice())
            .collect()
    }
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|e| e.into_inner())
}

impl Shared {
    /// Queues a batch and returns its number.
    fn enqueue(&self, writes: Vec<Write>, ack: Option<Ack>) -> u64 {
        lock(&self.queue).push(writes, ack)
    }

    /// Takes everything queued.
    fn take_queued(&self) -> Option<Group> {
        let mut queue = lock(&self.queue);
        if queue.batches.is_empty() {
            return None;
        }
        // The next group is likely as large as this one: room for it from the start, rather
        // than a list grown (and copied) step by step as the scheduler submits it.
        let room = queue.batches.len();
        let batches = std::mem::replace(&mut queue.batches, Vec::with_capacity(room));
        let last = queue.last;
        Some(Group {
            first: last + 1 - batches.len() as u64,
            last,
            batches,
        })
    }

    /// Resolves a committed (or failed) group: its tickets, then its waiting batches.
    /// Returns the group's batches, spent, for the caller to drop when it suits it.
    fn resolve(
        &self,
        mut group: Group,
        result: Result<(), String>,
    ) -> Vec<(Vec<Write>, Option<Ack>)> {
        self.resolved.send_modify(|resolved| {
            if let Err(error) = &result {
                resolved
                    .failed
                    .push((group.first, group.last, error.clone()));
            }
            resolved.upto = group.last;
        });
        for (_, ack) in &mut group.batches {
            if let Some(ack) = ack.take() {
                let _ = ack.send(result.clone());
            }
        }
        group.batches
    }

    fn queue_is_empty(&self) -> bool {
        lock(&self.queue).batches.is_empty()
    }

    /// Has whoever commits take the queue on: the committer thread (started at the first
    /// need, woken when it sleeps) or a committer task.
    fn start_committing(self: &Arc<Shared>) {
        match &self.committer {
            Committer::Thread(thread) => self.wake_thread(thread, lock(&self.queue)),
            Committer::Task(task) => {
                // A plain load first: while a committer runs (most of a wave), no write to
                // the flag's cache line, which the committer also uses.
                if !task.draining.load(Ordering::SeqCst)
                    && task
                        .draining
                        .compare_exchange(false, true, Ordering::SeqCst, Ordering::SeqCst)
                        .is_ok()
                {
                    tokio::spawn(Arc::clone(self).drain());
                }
            }
        }
    }

    /// SQLite: has the committer thread take the queue on (`queue` is this writer's,
    /// locked): wakes it if it sleeps, starts it if it has not started, and commits here if
    /// no thread can start.
    fn wake_thread(self: &Arc<Shared>, thread: &ThreadCommitter, mut queue: MutexGuard<'_, Queue>) {
        if queue.thread.sleeping {
            queue.thread.sleeping = false;
            thread.wake.notify_one();
        } else if !queue.thread.started && !self.spawn_committer(&mut queue) {
            drop(queue);
            let spent = self.commit_raw(&mut lock(&thread.held), true);
            drop(spent);
        }
    }

    /// Starts the committer thread (SQLite; `queue` is this writer's, locked); false if no
    /// thread could start.
    fn spawn_committer(self: &Arc<Shared>, queue: &mut MutexGuard<'_, Queue>) -> bool {
        let shared = Arc::clone(self);
        let spawned = std::thread::Builder::new()
            .name("galaxy-store-writer".into())
            .spawn(move || shared.commit_thread())
            .is_ok();
        queue.thread.started = spawned;
        spawned
    }

    /// SQLite: commits everything queued in one transaction on the run's connection and
    /// resolves it, returning the spent writes. Blocks the calling thread while SQLite works,
    /// and while another connection holds the store's write lock, up to the busy timeout
    /// (`wait`), or not at all: then the group goes back to the head of the queue,
    /// unresolved, and this says so ([`Locked`]).
    fn commit_raw(&self, held: &mut RawHeld, wait: bool) -> Result<Option<Spent>, Locked> {
        let Committer::Thread(thread) = &self.committer else {
            return Ok(None);
        };
        let Some(group) = self.take_queued() else {
            return Ok(None);
        };
        let rows = group.rows();
        let result = if rows == 0 {
            Ok(())
        } else {
            let connection = match held.connection.take() {
                Some(connection) => Ok(connection),
                // Readied for the whole run at once: the run's first write (its `run_started`
                // event, as the run is recorded) prepares what its steps' commits write, so
                // that neither its first step nor its first wave does (see
                // [`ThreadCommitter::prepare`]).
                None => open_for_run(&thread.path),
            };
            connection.and_then(|mut connection| {
                if !wait {
                    connection.set_busy_timeout(0);
                }
                let result = connection.apply_batches(&self.run_id, &group.slices());
                if !wait {
                    connection.set_busy_timeout(crate::store::BUSY_TIMEOUT_MS);
                }
                // A connection whose commit failed is let go; the next takes a fresh one.
                // One that found the store locked did nothing wrong.
                if result.is_ok() || matches!(result, Err(StoreError::Locked(_))) {
                    held.connection = Some(connection);
                }
                result
            })
        };
        if !wait && matches!(result, Err(StoreError::Locked(_))) {
            self.requeue(group);
            return Err(Locked);
        }
        held.unchecked_rows += rows;
        let spent = Spent {
            rows,
            _writes: self.resolve(group, result.map_err(|e| e.to_string())),
        };
        if held.unchecked_rows >= CHECKPOINT_ROWS {
            thread.checkpoint(held);
        }
        Ok(Some(spent))
    }

    /// Puts a group taken but not committed back at the head of the queue, before whatever
    /// was queued since (its tickets keep their numbers).
    fn requeue(&self, group: Group) {
        let mut queue = lock(&self.queue);
        queue.batches.splice(0..0, group.batches);
    }

    /// The committer thread (SQLite): commits whatever is queued, sleeps when nothing is,
    /// and stops once the writer is gone and the queue is empty.
    fn commit_thread(self: Arc<Shared>) {
        let Committer::Thread(thread) = &self.committer else {
            return;
        };
        thread.prepare();
        // Writes committed while more were queued, dropped once the queue is empty (or
        // once they hold `SPENT_ROWS`), with the number of rows they hold.
        let mut spent: Vec<Spent> = Vec::new();
        let mut spent_rows = 0;
        let mut queue = lock(&self.queue);
        loop {
            if !queue.batches.is_empty() {
                drop(queue);
                if let Ok(Some(group)) = self.commit_raw(&mut lock(&thread.held), true) {
                    spent_rows += group.rows;
                    spent.push(group);
                }
                if spent_rows >= SPENT_ROWS || self.queue_is_empty() {
                    spent.clear();
                    spent_rows = 0;
                }
                queue = self.await_batch(thread.awake_for);
            } else if queue.thread.closed {
                queue.thread.started = false;
                return;
            } else {
                queue.thread.sleeps += 1;
                queue.thread.sleeping = true;
                queue = thread.wake.wait(queue).unwrap_or_else(|e| e.into_inner());
                queue.thread.sleeping = false;
            }
        }
    }

    /// The committer thread after a commit: while nodes are in flight and the queue stays
    /// empty, waits for a batch awake, yielding its core, for up to `awake_for` (see
    /// [`AWAKE_FOR`]). Returns the queue locked.
    fn await_batch(&self, awake_for: Duration) -> MutexGuard<'_, Queue> {
        let since = Instant::now();
        let mut queue = lock(&self.queue);
        while queue.batches.is_empty()
            && !queue.thread.closed
            && self.in_flight.load(Ordering::SeqCst) > 0
            && since.elapsed() < awake_for
        {
            drop(queue);
            std::thread::yield_now();
            queue = lock(&self.queue);
        }
        queue
    }

    /// PostgreSQL: takes the queue and commits it in one transaction, resolving it.
    async fn commit_queued(&self, held: &mut HeldConnection) {
        let Some(group) = self.take_queued() else {
            return;
        };
        let result = held.apply(&self.run_id, &group.slices()).await;
        drop(self.resolve(group, result));
    }

    /// The committer task (PostgreSQL): commits until the queue is empty, then stops (a
    /// later write starts another).
    async fn drain(self: Arc<Shared>) {
        let Committer::Task(task) = &self.committer else {
            return;
        };
        loop {
            {
                let mut held = task.held.lock().await;
                while !self.queue_is_empty() {
                    self.commit_queued(&mut held).await;
                }
            }
            task.draining.store(false, Ordering::SeqCst);
            // A batch queued after the last look but before the flag dropped found the
            // flag set and started no committer: take it on.
            if self.queue_is_empty()
                || task
                    .draining
                    .compare_exchange(false, true, Ordering::SeqCst, Ordering::SeqCst)
                    .is_err()
            {
                return;
            }
        }
    }
}

impl ThreadCommitter {
    /// Readies the connection for the run's commits (the committer thread does so as it
    /// starts, while the wave that started it works): opens it if no step has yet, and
    /// prepares what a wave's commits write. Whatever fails here fails again, and is
    /// reported, at the commit that needs it.
    fn prepare(&self) {
        let mut held = lock(&self.held);
        if held.connection.is_none() {
            held.connection = open_for_run(&self.path).ok();
        }
    }

    /// Lets the connection go once the writer is: closing it (some 50-100 µs) and
    /// checkpointing the log rows written since the last checkpoint happen on a pool task
    /// ([`ThreadCommitter::on_pool`]), so that closing the store waits for both and the
    /// run's caller does not; failing that, here.
    fn retire(&self) {
        let (connection, rows) = {
            let mut held = lock(&self.held);
            (
                held.connection.take(),
                std::mem::take(&mut held.unchecked_rows),
            )
        };
        let Some(connection) = connection else {
            return;
        };
        let checkpoint = rows > 0 && !self.checkpointing.swap(true, Ordering::SeqCst);
        if let Err(Some(mut connection)) = self.on_pool(Some(connection), checkpoint)
            && checkpoint
        {
            let _ = connection.checkpoint();
            self.checkpointing.store(false, Ordering::SeqCst);
        }
    }

    /// Has SQLite's log copied into the database, counting the rows anew: off the steps'
    /// path on a pool task, one checkpoint at a time. With no pool connection free, the
    /// next commit tries again; a writer made outside a runtime checkpoints here, on its
    /// own connection.
    fn checkpoint(&self, held: &mut RawHeld) {
        if self.checkpointing.swap(true, Ordering::SeqCst) {
            held.unchecked_rows = 0;
            return;
        }
        match self.on_pool(None, true) {
            Ok(()) => held.unchecked_rows = 0,
            Err(_) if self.runtime.is_some() => self.checkpointing.store(false, Ordering::SeqCst),
            Err(_) => {
                if let Some(connection) = &mut held.connection {
                    let _ = connection.checkpoint();
                }
                held.unchecked_rows = 0;
                self.checkpointing.store(false, Ordering::SeqCst);
            }
        }
    }

    /// Off the steps' path: a task on the writer's runtime, holding one of the pool's
    /// connections taken now (so closing the store waits for the task), closes `retired`
    /// and, if `checkpoint`, checkpoints the log on that connection and clears
    /// `checkpointing`. Gives `retired` back, and does nothing, when there is no runtime or
    /// no pool connection is free at once.
    fn on_pool(
        &self,
        retired: Option<RawConnection>,
        checkpoint: bool,
    ) -> Result<(), Option<RawConnection>> {
        let Some(runtime) = &self.runtime else {
            return Err(retired);
        };
        let Some(mut pooled) = self.store.try_sqlite_connection() else {
            return Err(retired);
        };
        let checkpointing = Arc::clone(&self.checkpointing);
        runtime.spawn(async move {
            drop(retired);
            if checkpoint {
                let _ = crate::store::checkpoint_on(&mut pooled).await;
                checkpointing.store(false, Ordering::SeqCst);
            }
        });
        Ok(())
    }
}

/// PostgreSQL: the run's connection, taken at the first write and kept.
struct HeldConnection {
    store: Store,
    connection: Option<StoreConnection>,
}

impl HeldConnection {
    /// Commits `batches` in one transaction (a failed connection is let go, the next group
    /// takes a fresh one).
    async fn apply(&mut self, run_id: &str, batches: &[&[Write]]) -> Result<(), String> {
        if batches.iter().all(|batch| batch.is_empty()) {
            return Ok(());
        }
        if self.connection.is_none() {
            self.connection = Some(self.store.connection().await.map_err(|e| e.to_string())?);
        }
        let Some(connection) = &mut self.connection else {
            return Err("the store writer has no connection".into());
        };
        let result = connection.apply_batches(run_id, batches).await;
        if result.is_err() {
            self.connection = None;
        }
        result.map_err(|e| e.to_string())
    }
}

impl Writer {
    /// The writer for `run_id`; without a store, writes are dropped.
    pub(crate) fn new(store: Option<Store>, run_id: String) -> Writer {
        Writer::build(store, run_id, AWAKE_FOR)
    }

    /// The writer for `run_id`, its SQLite committer waiting awake for `awake_for` after
    /// each commit.
    fn build(store: Option<Store>, run_id: String, awake_for: Duration) -> Writer {
        let in_flight = Arc::new(AtomicUsize::new(0));
        Writer {
            shared: store.map(|store| {
                let committer = match store.sqlite_file() {
                    Some(path) => Committer::Thread(ThreadCommitter {
                        path,
                        held: Mutex::new(RawHeld::default()),
                        wake: Condvar::new(),
                        store,
                        runtime: tokio::runtime::Handle::try_current().ok(),
                        checkpointing: Arc::new(AtomicBool::new(false)),
                        awake_for,
                    }),
                    None => Committer::Task(TaskCommitter {
                        held: tokio::sync::Mutex::new(HeldConnection {
                            store,
                            connection: None,
                        }),
                        draining: AtomicBool::new(false),
                    }),
                };
                Arc::new(Shared {
                    run_id,
                    in_flight: Arc::clone(&in_flight),
                    queue: Mutex::new(Queue::default()),
                    resolved: watch::Sender::new(Resolved::default()),
                    committer,
                })
            }),
            in_flight,
        }
    }

    /// Counts a node as in flight until the returned guard is dropped.
    /// The second node in flight starts SQLite's committer thread, so that it is ready
    /// (started, its statements prepared) before the wave's first step is done.
    pub(crate) fn node_started(&self) -> InFlight {
        if self.in_flight.fetch_add(1, Ordering::SeqCst) == 1
            && let Some(shared) = &self.shared
            && matches!(shared.committer, Committer::Thread(_))
        {
            let mut queue = lock(&shared.queue);
            if !queue.thread.started {
                // Without a thread, the first shared commit tries again, and commits inline
                // if it cannot.
                shared.spawn_committer(&mut queue);
            }
        }
        InFlight(Arc::clone(&self.in_flight))
    }

    /// Writes a batch and waits until it is committed.
    pub(crate) async fn write(&self, writes: Vec<Write>) -> Result<(), StoreError> {
        let Some(shared) = &self.shared else {
            return Ok(());
        };
        let (ack, mut done) = oneshot::channel();
        shared.enqueue(writes, Some(ack));
        if self.in_flight.load(Ordering::SeqCst) > 1 {
            // Other nodes may finish meanwhile: the committer commits for all of them.
            shared.start_committing();
        } else {
            match &shared.committer {
                Committer::Thread(thread) => match thread.held.try_lock() {
                    // Alone: the step commits on its own thread, with no hand-over, unless
                    // another connection holds the store's write lock: the runtime's worker
                    // does not wait for it, the committer thread does.
                    Ok(mut held) => {
                        let spent = shared.commit_raw(&mut held, false);
                        drop(held);
                        match spent {
                            Ok(spent) => drop(spent),
                            Err(Locked) => shared.start_committing(),
                        }
                    }
                    // The committer thread is committing: it takes this batch next.
                    Err(_) => shared.start_committing(),
                },
                Committer::Task(task) => {
                    let mut held = task.held.lock().await;
                    // A commit before ours may have taken our batch with its group.
                    if let Ok(result) = done.try_recv() {
                        return result.map_err(StoreError::Commit);
                    }
                    // Boxed: a commit's future is large, and would make every node's future so.
                    Box::pin(shared.commit_queued(&mut held)).await;
                }
            }
        }
        match done.await {
            Ok(result) => result.map_err(StoreError::Commit),
            Err(_) => Err(StoreError::Commit(
                "the store writer stopped before committing".into(),
            )),
        }
    }

    /// Whether there is a store: without one, writes are dropped, and nothing needs a step's
    /// record built.
    pub(crate) fn has_store(&self) -> bool {
        self.shared.is_some()
    }

    /// Whether a batch handed over now would join others' commits: there is a store and
    /// other nodes are in flight. Then [`Writer::submit`] spares the step waiting for its
    /// own acknowledgement; alone, a step commits inline through [`Writer::write`].
    pub(crate) fn shared_commits(&self) -> bool {
        self.shared.is_some() && self.in_flight.load(Ordering::SeqCst) > 1
    }

    /// Queues a batch for the committer and returns at once. The batch is durable once
    /// [`Writer::resolved`] says its ticket is; whoever reports the step done waits for
    /// that. Without a store there is nothing to wait for (`None`).
    pub(crate) fn submit(&self, writes: Vec<Write>) -> Option<Ticket> {
        let shared = self.shared.as_ref()?;
        if let Committer::Thread(thread) = &shared.committer {
            // One lock of the queue (which the committer thread also takes) for both the
            // batch and the wake-up.
            let mut queue = lock(&shared.queue);
            let ticket = Ticket(queue.push(writes, None));
            shared.wake_thread(thread, queue);
            return Some(ticket);
        }
        let ticket = Ticket(shared.enqueue(writes, None));
        shared.start_committing();
        Some(ticket)
    }

    /// The commits' progress (see [`Resolved::outcome`]); `None` without a store.
    pub(crate) fn resolved(&self) -> Option<watch::Receiver<Resolved>> {
        self.shared
            .as_ref()
            .map(|shared| shared.resolved.subscribe())
    }

    /// Commits what is queued. (On SQLite the connection goes, and the log is checkpointed,
    /// once the writer is dropped: see [`ThreadCommitter::retire`].)
    pub(crate) async fn close(&self) {
        let _ = self.write(Vec::new()).await;
    }
}

impl Drop for Writer {
    /// SQLite: lets the committer thread stop once it has committed what is queued, and
    /// the connection go.
    fn drop(&mut self) {
        if let Some(shared) = &self.shared
            && let Committer::Thread(thread) = &shared.committer
        {
            {
                let mut queue = lock(&shared.queue);
                queue.thread.closed = true;
                if queue.thread.sleeping {
                    queue.thread.sleeping = false;
                    thread.wake.notify_one();
                }
            }
            // Once the queue is empty (as after `close`), nothing needs the connection; a
            // thread still committing what a dropped run left queued opens another.
            thread.retire();
        }
    }
}

/// A node in flight; dropping it counts the node as finished.
pub(crate) struct InFlight(Arc<AtomicUsize>);

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::StepRecord;

    /// A fresh SQLite store in a temporary folder named after `name`, holding a run `run`.
    async fn sqlite_store(name: &str) -> (Store, std::path::PathBuf) {
        let dir = std::env::temp_dir().join(format!("galaxy-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let store = Store::open_sqlite_file(&dir.join("w.db"))
            .await
            .expect("store");
        add_run(&store, "run").await;
        (store, dir)
    }

    /// Records a run `id` in `store`: step rows belong to a run.
    async fn add_run(store: &Store, id: &str) {
        store
            .create_run(&crate::store::RunRecord {
                id: id.into(),
                pack_name: "p".into(),
                pack_path: "p.gx".into(),
                source: String::new(),
                plan_json: "{}".into(),
                plan_hash: "h".into(),
                inputs_json: "{}".into(),
                options_json: "{}".into(),
                status: "running".into(),
                outcome: None,
                error: None,
                result_json: None,
                created_at: 1,
                updated_at: 1,
            })
            .await
            .expect("a run");
    }

    async fn close(store: Store, dir: std::path::PathBuf) {
        store.close().await;
        let _ = std::fs::remove_dir_all(&dir);
    }

    /// The committer of a writer on SQLite.
    fn thread_of(shared: &Shared) -> &ThreadCommitter {
        match &shared.committer {
            Committer::Thread(thread) => thread,
            Committer::Task(_) => panic!("SQLite commits on a thread"),
        }
    }

    fn step(key: &str) -> Write {
        Write::Step(
            StepRecord {
                key: key.into(),
                node: key.into(),
                status: "succeeded".into(),
                attempts: 1,
                started_at: 1,
                ended_at: 2,
                output_json: Some("1".into()),
                input_tokens: 0,
                output_tokens: 0,
                cost: 0.0,
                error: None,
                model: None,
                detail_json: None,
            },
            Vec::new(),
        )
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn every_write_is_readable_once_acknowledged_alone_or_in_a_group() {
        let (store, dir) = sqlite_store("writer").await;
        let writer = Writer::new(Some(store.clone()), "run".into());
        // A lone write, then 300 at once (one leader commits what the others queued), then
        // enough rows for a checkpoint of the log, and a write after it.
        writer.write(vec![step("alone")]).await.expect("alone");
        assert_eq!(store.steps("run").await.expect("steps").len(), 1);
        let writes = (0..300).map(|i| writer.write(vec![step(&format!("w{i}"))]));
        for result in futures_util::future::join_all(writes).await {
            result.expect("acknowledged");
        }
        assert_eq!(store.steps("run").await.expect("steps").len(), 301);
        let big: Vec<Write> = (0..CHECKPOINT_ROWS)
            .map(|i| step(&format!("b{i}")))
            .collect();
        writer.write(big).await.expect("big");
        writer
            .write(vec![step("after")])
            .await
            .expect("after a checkpoint");
        writer.close().await;
        assert_eq!(
            store.steps("run").await.expect("steps").len(),
            302 + CHECKPOINT_ROWS
        );
        close(store, dir).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_group_keeps_each_row_and_a_key_written_twice_ends_as_its_later_row() {
        let (store, dir) = sqlite_store("group").await;
        let writer = Writer::new(Some(store.clone()), "run".into());
        // 70 rows out of key order (two multi-row statements and the rest one by one), then
        // `s5` again with another output: every row lands, and the later `s5` is the one
        // read back.
        let mut writes: Vec<Write> = (0..70)
            .map(|i| step(&format!("s{}", (i * 37) % 70)))
            .collect();
        let Write::Step(mut again, _) = step("s5") else {
            unreachable!("a step")
        };
        again.output_json = Some("\"later\"".into());
        writes.push(Write::Step(again, Vec::new()));
        writer.write(writes).await.expect("committed");
        writer.close().await;
        let steps = store.steps("run").await.expect("steps");
        assert_eq!(steps.len(), 70);
        let mut keys: Vec<&str> = steps.iter().map(|s| s.key.as_str()).collect();
        keys.sort_unstable();
        keys.dedup();
        assert_eq!(keys.len(), 70, "every key once");
        for step in &steps {
            assert_eq!(step.node, step.key, "each row holds its own values");
            let expected = if step.key == "s5" { "\"later\"" } else { "1" };
            assert_eq!(step.output_json.as_deref(), Some(expected), "{}", step.key);
        }
        drop(writer);
        close(store, dir).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_first_write_readies_the_connection_for_the_run() {
        let (store, dir) = sqlite_store("first").await;
        let writer = Writer::new(Some(store.clone()), "run".into());
        let shared = Arc::clone(writer.shared.as_ref().expect("a store"));
        let thread = thread_of(&shared);
        // As a run's `run_started` event is: alone, committed inline.
        writer.write(vec![step("s1")]).await.expect("committed");
        {
            let held = lock(&thread.held);
            let connection = held.connection.as_ref().expect("kept for the run");
            assert!(
                connection.prepared_all(&crate::store::WAVE),
                "the run's statements are prepared at its first write"
            );
        }
        assert!(!lock(&shared.queue).thread.started, "no thread for it");
        writer.close().await;
        drop(writer);
        close(store, dir).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_submitted_batch_resolves_once_committed_and_a_failed_commit_says_so() {
        let (store, dir) = sqlite_store("submit").await;
        let writer = Writer::new(Some(store.clone()), "run".into());
        let _nodes: Vec<InFlight> = (0..2).map(|_| writer.node_started()).collect();
        assert!(writer.shared_commits());
        let mut resolved = writer.resolved().expect("a store");
        // Batches of 1 to 40 rows, committed by the run's committer thread, then one that
        // fails.
        let tickets: Vec<(Ticket, Vec<String>)> = (1..=40)
            .map(|n| {
                let keys: Vec<String> = (0..n).map(|i| format!("b{n}-{i}")).collect();
                let ticket = writer
                    .submit(keys.iter().map(|k| step(k)).collect())
                    .expect("a store");
                (ticket, keys)
            })
            .collect();
        assert!(tickets.windows(2).all(|w| w[0].0 < w[1].0));
        for (ticket, keys) in &tickets {
            loop {
                let outcome = resolved.borrow_and_update().outcome(*ticket);
                if let Some(outcome) = outcome {
                    outcome.expect("committed");
                    break;
                }
                resolved.changed().await.expect("the writer lives");
            }
            // Durable once resolved: readable through another connection.
            let steps = store.steps("run").await.expect("steps");
            for key in keys {
                assert!(steps.iter().any(|s| &s.key == key), "{key} not durable");
            }
        }
        // A batch that fails (one commit of its own here: batches queued together share
        // their commit, and its failure).
        let mut bad = step("bad");
        if let Write::Step(record, _) = &mut bad {
            record.cost = f64::NAN;
        }
        let bad_ticket = writer
            .submit(
                (0..9)
                    .map(|i| step(&format!("ok{i}")))
                    .chain([bad])
                    .collect(),
            )
            .expect("a store");
        assert!(tickets[39].0 < bad_ticket);
        let failed = loop {
            let outcome = resolved.borrow_and_update().outcome(bad_ticket);
            if let Some(outcome) = outcome {
                break outcome;
            }
            resolved.changed().await.expect("the writer lives");
        };
        assert!(failed.is_err(), "a NaN cost fails its commit");
        let steps = store.steps("run").await.expect("steps");
        assert_eq!(
            steps.len(),
            (1..=40).sum::<usize>(),
            "nothing of the failed batch"
        );
        writer.close().await;
        // Once the writer goes, its committer thread stops and lets the connection go.
        let shared = Arc::downgrade(writer.shared.as_ref().expect("a store"));
        drop(writer);
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while shared.upgrade().is_some() {
            assert!(
                std::time::Instant::now() < deadline,
                "the committer thread outlived its writer"
            );
            tokio::time::sleep(std::time::Duration::from_millis(5)).await;
        }
        close(store, dir).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_wave_readies_the_committer_before_its_first_step_is_done() {
        let (store, dir) = sqlite_store("ready").await;
        let writer = Writer::new(Some(store.clone()), "run".into());
        let shared = Arc::clone(writer.shared.as_ref().expect("a store"));
        let thread = thread_of(&shared);
        let first = writer.node_started();
        assert!(
            !lock(&shared.queue).thread.started,
            "one node commits inline"
        );
        let second = writer.node_started();
        assert!(lock(&shared.queue).thread.started);
        // The thread opens the connection and prepares what a wave's commits write (the
        // multi-row insert too), with nothing queued yet.
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        loop {
            if let Ok(held) = thread.held.try_lock()
                && let Some(connection) = &held.connection
            {
                assert!(
                    connection.prepared_all(&crate::store::WAVE),
                    "a wave's statements are prepared before its first commit"
                );
                break;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "the committer never readied its connection"
            );
            tokio::time::sleep(std::time::Duration::from_millis(5)).await;
        }
        let ticket = writer.submit(vec![step("s1")]).expect("a store");
        let mut resolved = writer.resolved().expect("a store");
        while resolved.borrow_and_update().outcome(ticket).is_none() {
            resolved.changed().await.expect("the writer lives");
        }
        drop((first, second));
        writer.close().await;
        assert_eq!(store.steps("run").await.expect("steps").len(), 1);
        drop(writer);
        close(store, dir).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn between_batches_of_a_wave_the_committer_waits_awake() {
        let (store, dir) = sqlite_store("awake").await;
        let mut sleeps = Vec::new();
        for (run, awake_for) in [
            ("awake", Duration::from_secs(30)),
            ("asleep", Duration::ZERO),
        ] {
            add_run(&store, run).await;
            let writer = Writer::build(Some(store.clone()), run.into(), awake_for);
            let shared = Arc::clone(writer.shared.as_ref().expect("a store"));
            let in_flight = (writer.node_started(), writer.node_started());
            let mut resolved = writer.resolved().expect("a store");
            // Batches 2 ms apart, each committed before the next: far apart for a commit,
            // close for a wave's steps.
            for i in 0..20 {
                let ticket = writer
                    .submit(vec![step(&format!("s{i}"))])
                    .expect("a store");
                while resolved.borrow_and_update().outcome(ticket).is_none() {
                    resolved.changed().await.expect("the writer lives");
                }
                tokio::time::sleep(Duration::from_millis(2)).await;
            }
            sleeps.push(lock(&shared.queue).thread.sleeps);
            drop(in_flight);
            writer.close().await;
            assert_eq!(store.steps(run).await.expect("steps").len(), 20);
        }
        // Awake, the thread slept only before the first batch; asleep, between most.
        assert!(sleeps[0] <= 2, "slept {} times while awake", sleeps[0]);
        assert!(sleeps[1] >= 10, "slept only {} times", sleeps[1]);
        close(store, dir).await;
    }

    /// A lone step commits on the runtime's own thread, but does not wait there for a
    /// write lock another connection holds: on a runtime of one thread, a timer still fires
    /// while the write waits, and the write lands once the lock is let go.
    #[tokio::test(flavor = "current_thread")]
    async fn a_lone_commit_that_finds_the_store_locked_waits_off_the_runtime() {
        let (store, dir) = sqlite_store("locked").await;
        let writer = Writer::new(Some(store.clone()), "run".into());
        writer.write(vec![step("before")]).await.expect("before");
        let Store::Sqlite(pool) = &store else {
            panic!("a SQLite store")
        };
        let mut other = pool.acquire().await.expect("another connection");
        sqlx::query("BEGIN IMMEDIATE")
            .execute(&mut *other)
            .await
            .expect("the write lock");
        let started = std::time::Instant::now();
        {
            let mut write = std::pin::pin!(writer.write(vec![step("during")]));
            assert!(
                tokio::time::timeout(Duration::from_millis(300), &mut write)
                    .await
                    .is_err(),
                "the write should still wait for the lock"
            );
            assert!(
                started.elapsed() < Duration::from_secs(5),
                "the runtime's thread was held for {:?}",
                started.elapsed()
            );
            sqlx::query("ROLLBACK")
                .execute(&mut *other)
                .await
                .expect("the lock let go");
            drop(other);
            write.await.expect("committed once the lock is free");
        }
        let keys: Vec<String> = store
            .steps("run")
            .await
            .expect("steps")
            .into_iter()
            .map(|s| s.key)
            .collect();
        assert_eq!(keys.len(), 2);
        assert!(keys.contains(&"during".to_string()), "{keys:?}");
        drop(writer);
        close(store, dir).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_dropped_writer_lets_its_connection_go_before_the_store_closes() {
        let (store, dir) = sqlite_store("retire").await;
        let writer = Writer::new(Some(store.clone()), "run".into());
        writer.write(vec![step("s1")]).await.expect("committed");
        writer.close().await;
        drop(writer);
        // Closing the store waits for the task that closes the writer's connection, so the
        // pool's last connection is the database's last: SQLite then checkpoints its log
        // into the file and deletes it. Were the writer's connection still open, the log
        // would stay.
        store.close().await;
        assert!(
            !dir.join("w.db-wal").exists(),
            "the log outlived every connection"
        );
        let reopened = Store::open_sqlite_file(&dir.join("w.db"))
            .await
            .expect("reopens");
        assert_eq!(reopened.steps("run").await.expect("steps").len(), 1);
        reopened.close().await;
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn with_other_nodes_in_flight_the_committer_commits_every_batch_before_its_ack() {
        let (store, dir) = sqlite_store("drain").await;
        let writer = Writer::new(Some(store.clone()), "run".into());
        let nodes: Vec<InFlight> = (0..3).map(|_| writer.node_started()).collect();
        assert_eq!(writer.in_flight.load(Ordering::SeqCst), 3);
        // Waves of concurrent writes, each step checking its own row is readable as soon as
        // it is acknowledged (durable before it is reported done).
        for wave in 0..3 {
            let writes = (0..200).map(|i| {
                let writer = &writer;
                let store = &store;
                async move {
                    let key = format!("w{wave}-{i}");
                    writer.write(vec![step(&key)]).await.expect("acknowledged");
                    let steps = store.steps("run").await.expect("steps");
                    assert!(steps.iter().any(|s| s.key == key), "{key} not durable");
                }
            });
            futures_util::future::join_all(writes).await;
        }
        assert_eq!(store.steps("run").await.expect("steps").len(), 600);
        drop(nodes);
        assert_eq!(writer.in_flight.load(Ordering::SeqCst), 0);
        // Alone again: the write commits inline.
        writer.write(vec![step("alone")]).await.expect("alone");
        writer.close().await;
        assert_eq!(store.steps("run").await.expect("steps").len(), 601);
        close(store, dir).await;
    }
}
