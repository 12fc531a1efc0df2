//! Every task the collector runs, tracked, so none can die silently.
//!
//! Invariants:
//! - Every task is spawned through a [`TaskTree`] (async tasks) or [`blocking`] (work on the
//!   blocking pool); a thread of its own catches each unit of work's panic and reports it with
//!   [`report_panic`]. A panic in either is logged with the task's name and counted in
//!   `hcmon_collector_task_panics_total{task}`; [`blocking`] hands it back as [`Panicked`],
//!   never re-raises it.
//! - An [`Role::Essential`] task (one that owns state others rely on: the alerting loop, the
//!   servers) that panics, fails or returns before shutdown cancels the collector's shutdown
//!   token with the reason, so the process exits non-zero saying why instead of running on
//!   without it. Its state is on disk, so a restart (systemd's `Restart=on-failure`) resumes it.
//! - [`TaskTree::drain`] waits for every task up to a deadline, then aborts the rest and names
//!   them; only then may the store close.
//! - Every poll of a tree's task is timed in `hcmon_collector_task_poll_seconds{task}`: a long
//!   one is a synchronous section that held a runtime thread, and every connection's reads and
//!   acks queued on that thread waited for it.
//! - Tasks run on the runtime the tree was made on, wherever they are spawned from; a task
//!   given a thread of its own ([`TaskTree::spawn_on_own_thread`]) keeps its long sections off
//!   the runtime's threads.

use prometheus::{HistogramOpts, HistogramVec, IntCounterVec, Opts, Registry};
use std::any::Any;
use std::collections::BTreeMap;
use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, LazyLock, Mutex};
use std::task::Poll;
use std::time::{Duration, Instant};
use tokio::runtime::Handle;
use tokio::task::AbortHandle;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

/// Process-wide, as panics are: every collector in the process registers the same family.
static PANICS: LazyLock<IntCounterVec> = LazyLock::new(|| {
    IntCounterVec::new(
        Opts::new(
            "hcmon_collector_task_panics_total",
            "Panics of the collector's tasks (async and blocking), by task.",
        ),
        &["task"],
    )
    .expect("a valid metric definition")
});

/// Process-wide like [`PANICS`].
static POLLS: LazyLock<HistogramVec> = LazyLock::new(|| {
    HistogramVec::new(
        HistogramOpts::new(
            "hcmon_collector_task_poll_seconds",
            "How long each poll of the collector's async tasks held its thread, by task: a long poll of a task on the runtime's threads is a synchronous section the other tasks there waited for; a task on a thread of its own is labelled '<task> (own thread)' and holds only that thread.",
        )
        .buckets(vec![0.0001, 0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0]),
        &["task"],
    )
    .expect("a valid metric definition")
});

/// Exports the task panic counter and poll times through `registry`.
pub fn register(registry: &Registry) -> prometheus::Result<()> {
    registry.register(Box::new(PANICS.clone()))?;
    registry.register(Box::new(POLLS.clone()))
}

/// `work`, each of its polls timed into `hcmon_collector_task_poll_seconds{task=label}`.
fn timed<F: Future>(label: &str, work: F) -> impl Future<Output = F::Output> {
    let polls = POLLS.with_label_values(&[label]);
    let mut work = Box::pin(work);
    std::future::poll_fn(move |cx| {
        let started = Instant::now();
        let polled = work.as_mut().poll(cx);
        polls.observe(started.elapsed().as_secs_f64());
        match polled {
            Poll::Ready(output) => Poll::Ready(output),
            Poll::Pending => Poll::Pending,
        }
    })
}

/// Panics of `task` so far (in this process).
pub fn panics(task: &str) -> u64 {
    PANICS.with_label_values(&[task]).get()
}

/// A task's work panicked; the panic was logged and counted.
#[derive(Debug, Clone, thiserror::Error)]
#[error("the {task} task panicked: {message}")]
pub struct Panicked {
    pub task: &'static str,
    pub message: String,
}

fn panic_message(payload: &(dyn Any + Send)) -> String {
    payload
        .downcast_ref::<&str>()
        .map(|s| (*s).to_owned())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "a panic without a message".into())
}

/// Logs and counts a panic caught by other means (e.g. `catch_unwind` on a thread of its own).
pub fn report_panic(task: &'static str, payload: &(dyn Any + Send)) -> Panicked {
    let message = panic_message(payload);
    PANICS.with_label_values(&[task]).inc();
    tracing::error!(task, error = %message, "task panicked");
    Panicked { task, message }
}

/// Runs `work` here, on the calling thread: a panic comes back as [`Panicked`] (logged and
/// counted), as from [`blocking`], for work that may run in either place.
pub fn inline<T>(task: &'static str, work: impl FnOnce() -> T) -> Result<T, Panicked> {
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(work))
        .map_err(|payload| report_panic(task, &*payload))
}

/// Runs `work` on the blocking pool. A panic comes back as [`Panicked`] (logged and counted),
/// so the caller decides what it means instead of unwinding through its own task.
pub async fn blocking<T, F>(task: &'static str, work: F) -> Result<T, Panicked>
where
    F: FnOnce() -> T + Send + 'static,
    T: Send + 'static,
{
    match tokio::task::spawn_blocking(work).await {
        Ok(value) => Ok(value),
        Err(error) if error.is_panic() => Err(report_panic(task, &*error.into_panic())),
        // The runtime is shutting down and dropped the work before it ran.
        Err(_) => Err(Panicked {
            task,
            message: "cancelled by the runtime's shutdown".into(),
        }),
    }
}

/// What a task's end means to the collector.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// Its end before shutdown (panic, error or return) stops the collector with the reason.
    Essential,
    /// A panic or error is logged and counted; the collector goes on without it.
    Helper,
}

/// The collector's tasks: spawned, watched, drained and aborted together.
#[derive(Clone)]
pub struct TaskTree {
    inner: Arc<Inner>,
}

struct Inner {
    /// The runtime the tree was made on: tasks spawned from a task on a thread of its own
    /// still run here.
    runtime: Handle,
    tracker: TaskTracker,
    shutdown: CancellationToken,
    /// Why an essential task stopped the collector (the first one).
    failure: Mutex<Option<String>>,
    /// Running tasks, to abort and name past the drain deadline.
    running: Mutex<BTreeMap<u64, (&'static str, AbortHandle)>>,
    /// Threads of [`TaskTree::spawn_on_own_thread`], joined by the drain.
    threads: Mutex<Vec<std::thread::JoinHandle<()>>>,
    next_id: AtomicU64,
}

impl TaskTree {
    /// Essential tasks that fail cancel `shutdown`. Call from within the runtime the tasks are
    /// to run on.
    pub fn new(shutdown: CancellationToken) -> Self {
        Self {
            inner: Arc::new(Inner {
                runtime: Handle::current(),
                tracker: TaskTracker::new(),
                shutdown,
                failure: Mutex::new(None),
                running: Mutex::new(BTreeMap::new()),
                threads: Mutex::new(Vec::new()),
                next_id: AtomicU64::new(0),
            }),
        }
    }

    /// The token that stops every task of the tree.
    pub fn shutdown(&self) -> &CancellationToken {
        &self.inner.shutdown
    }

    /// Spawns `work` as `name`, watched as its `role` says.
    pub fn spawn<F>(&self, name: &'static str, role: Role, work: F)
    where
        F: Future<Output = anyhow::Result<()>> + Send + 'static,
    {
        let task = self.inner.runtime.spawn(timed(name, work));
        let id = self.inner.next_id.fetch_add(1, Ordering::Relaxed);
        lock(&self.inner.running).insert(id, (name, task.abort_handle()));
        let tree = self.clone();
        self.inner.tracker.spawn_on(
            async move {
                let ended = match task.await {
                    Ok(Ok(())) => None,
                    Ok(Err(error)) => {
                        tracing::error!(task = name, error = format!("{error:#}"), "task failed");
                        Some(format!("the {name} task failed: {error:#}"))
                    }
                    Err(error) if error.is_panic() => {
                        Some(report_panic(name, &*error.into_panic()).to_string())
                    }
                    // Aborted past the drain deadline.
                    Err(_) => None,
                };
                lock(&tree.inner.running).remove(&id);
                if role == Role::Essential && !tree.inner.shutdown.is_cancelled() {
                    let reason = ended.unwrap_or_else(|| format!("the {name} task stopped"));
                    tree.fail(reason);
                }
            },
            &self.inner.runtime,
        );
    }

    /// Spawns `work` as `name` on a thread of its own, with a single-threaded runtime, watched
    /// like [`TaskTree::spawn`]'s: for a loop whose synchronous sections (the alert book's
    /// O(alerts) passes) would otherwise hold one of the runtime's few threads, and every
    /// connection's reads and acks queued behind them. What it spawns runs on the tree's
    /// runtime. Aborted past the drain deadline (or dropped with the runtime), it stops at its
    /// next await, as any task would, and [`TaskTree::drain`] returns only after its thread
    /// ended, so nothing of it runs once the store closes.
    pub fn spawn_on_own_thread<F>(&self, name: &'static str, role: Role, work: F)
    where
        F: Future<Output = anyhow::Result<()>> + Send + 'static,
    {
        let (done, ended) = tokio::sync::oneshot::channel();
        let aborted = CancellationToken::new();
        let stop = aborted.clone();
        let started = std::thread::Builder::new()
            .name(name.to_owned())
            .spawn(move || {
                let runtime = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build();
                let label = format!("{name} (own thread)");
                let outcome = match runtime {
                    Ok(runtime) => std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                        runtime.block_on(async {
                            tokio::select! {
                                ended = timed(&label, work) => ended,
                                _ = stop.cancelled() => Ok(()),
                            }
                        })
                    })),
                    Err(error) => Ok(Err(anyhow::anyhow!("cannot start its runtime: {error}"))),
                };
                let _ = done.send(outcome);
            });
        let started = started.map(|thread| lock(&self.inner.threads).push(thread));
        self.spawn(name, role, async move {
            // Aborting this task (or dropping it with the runtime) stops the thread's work too.
            let _abort = aborted.drop_guard();
            if let Err(error) = started {
                anyhow::bail!("cannot start its thread: {error}");
            }
            match ended.await {
                Ok(Ok(ended)) => ended,
                // Raised again in this task, so the tree reports it as any task's panic.
                Ok(Err(panic)) => std::panic::resume_unwind(panic),
                Err(_) => anyhow::bail!("its thread ended without a word"),
            }
        });
    }

    /// Stops the collector because of `reason` (the first reason wins).
    pub fn fail(&self, reason: String) {
        tracing::error!(%reason, "stopping the collector");
        lock(&self.inner.failure).get_or_insert(reason);
        self.inner.shutdown.cancel();
    }

    /// Why an essential task stopped the collector, if one did.
    pub fn failure(&self) -> Option<String> {
        lock(&self.inner.failure).clone()
    }

    /// Waits up to `deadline` for every task to end, then aborts the rest; returns the names
    /// of the tasks it aborted.
    pub async fn drain(&self, deadline: Duration) -> Vec<&'static str> {
        self.inner.tracker.close();
        if tokio::time::timeout(deadline, self.inner.tracker.wait())
            .await
            .is_ok()
        {
            self.join_own_threads().await;
            return Vec::new();
        }
        let late: Vec<_> = lock(&self.inner.running).values().cloned().collect();
        for (_, handle) in &late {
            handle.abort();
        }
        self.inner.tracker.wait().await;
        self.join_own_threads().await;
        late.into_iter().map(|(name, _)| name).collect()
    }

    /// Waits for the threads of [`TaskTree::spawn_on_own_thread`] to end: their tasks have
    /// ended, so their work is stopping or stopped.
    async fn join_own_threads(&self) {
        let threads = std::mem::take(&mut *lock(&self.inner.threads));
        if threads.is_empty() {
            return;
        }
        // A panic was caught on the thread and reported by its task already.
        let _ = tokio::task::spawn_blocking(move || {
            for thread in threads {
                let _ = thread.join();
            }
        })
        .await;
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_blocking_panic_comes_back_as_an_error_and_is_counted() {
        let before = panics("test-blocking");
        let result = blocking("test-blocking", || -> u32 { panic!("boom") }).await;
        let error = result.unwrap_err();
        assert_eq!(error.task, "test-blocking");
        assert_eq!(error.message, "boom");
        assert_eq!(panics("test-blocking"), before + 1);
        assert_eq!(blocking("test-blocking", || 7).await.unwrap(), 7);
    }

    #[tokio::test]
    async fn an_essential_task_that_panics_stops_the_tree_with_the_reason() {
        let tree = TaskTree::new(CancellationToken::new());
        tree.spawn("test-helper", Role::Helper, async { panic!("helper") });
        tree.spawn("test-essential", Role::Essential, async {
            tokio::time::sleep(Duration::from_millis(20)).await;
            panic!("essential")
        });
        tree.shutdown().cancelled().await;
        let failure = tree.failure().unwrap();
        assert!(
            failure.contains("test-essential") && failure.contains("essential"),
            "{failure}"
        );
        assert!(tree.drain(Duration::from_secs(1)).await.is_empty());
    }

    #[tokio::test]
    async fn a_helper_that_fails_leaves_the_collector_running() {
        let tree = TaskTree::new(CancellationToken::new());
        tree.spawn("test-failing-helper", Role::Helper, async {
            anyhow::bail!("no luck")
        });
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert!(!tree.shutdown().is_cancelled());
        assert_eq!(tree.failure(), None);
    }

    #[tokio::test]
    async fn drain_aborts_what_misses_the_deadline_and_names_it() {
        let tree = TaskTree::new(CancellationToken::new());
        tree.spawn("test-quick", Role::Helper, async { Ok(()) });
        tree.spawn("test-stuck", Role::Helper, async {
            std::future::pending::<()>().await;
            Ok(())
        });
        tree.shutdown().cancel();
        let aborted = tree.drain(Duration::from_millis(50)).await;
        assert_eq!(aborted, vec!["test-stuck"]);
    }

    /// A task on a thread of its own holds none of the runtime's threads: the runtime's only
    /// thread goes on while it blocks. What it spawns runs on the runtime, and its panic stops
    /// the tree like any essential task's.
    #[tokio::test(flavor = "current_thread")]
    async fn a_task_on_its_own_thread_leaves_the_runtime_free_and_reports_its_panic() {
        let tree = TaskTree::new(CancellationToken::new());
        let (spawned_on, runtime_of_child) = tokio::sync::oneshot::channel();
        let child_tree = tree.clone();
        tree.spawn_on_own_thread("test-own-thread", Role::Essential, async move {
            child_tree.spawn("test-child", Role::Helper, async move {
                let _ = spawned_on.send(std::thread::current().id());
                Ok(())
            });
            // Holds its thread for one poll, as an O(alerts) pass would.
            std::thread::sleep(Duration::from_millis(200));
            tokio::task::yield_now().await;
            panic!("own thread")
        });
        // The runtime's thread runs the child while the task above still sleeps.
        let child_thread = runtime_of_child.await.unwrap();
        assert_eq!(child_thread, std::thread::current().id());
        assert!(!tree.shutdown().is_cancelled());
        tree.shutdown().cancelled().await;
        let failure = tree.failure().unwrap();
        assert!(
            failure.contains("test-own-thread") && failure.contains("own thread"),
            "{failure}"
        );
        assert!(tree.drain(Duration::from_secs(1)).await.is_empty());
        let polls = POLLS.with_label_values(&["test-own-thread (own thread)"]);
        assert!(polls.get_sample_sum() >= 0.2);
    }

    /// Past the drain deadline a task on its own thread is stopped at its await like any
    /// other, and the drain returns only once its thread has ended (the store closes after).
    #[tokio::test]
    async fn drain_stops_a_task_on_its_own_thread_and_waits_for_the_thread() {
        struct SlowDrop(Arc<std::sync::atomic::AtomicBool>);
        impl Drop for SlowDrop {
            fn drop(&mut self) {
                std::thread::sleep(Duration::from_millis(50));
                self.0.store(true, Ordering::SeqCst);
            }
        }
        let tree = TaskTree::new(CancellationToken::new());
        let dropped = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let held = SlowDrop(dropped.clone());
        tree.spawn_on_own_thread("test-own-stuck", Role::Helper, async move {
            let _held = held;
            std::future::pending::<()>().await;
            Ok(())
        });
        tree.shutdown().cancel();
        let aborted = tree.drain(Duration::from_millis(50)).await;
        assert_eq!(aborted, vec!["test-own-stuck"]);
        assert!(dropped.load(Ordering::SeqCst));
    }
}
