//! Sizing of the CPU-bound pools (password hashing, image processing).

/// Permits for a CPU-bound pool: `configured`, or when 0, one core fewer than the machine has
/// (at least 1) — the core left over keeps serving everything else while the pool is saturated
/// (docs/benchmarks.md shows what that buys under a login flood).
pub(crate) fn cpu_permits(configured: usize) -> usize {
    match configured {
        0 => std::thread::available_parallelism()
            .map_or(1, usize::from)
            .saturating_sub(1)
            .max(1),
        n => n,
    }
}

/// Threads of their own for CPU-bound work, at a lower scheduling priority (`nice`) than the
/// rest of the process, behind a semaphore with one permit per thread.
///
/// Why not tokio's blocking pool: on a machine with few cores, a hash running there competes as
/// an equal with the runtime's threads, and a cheap request that becomes ready waits for the
/// kernel's next time slice (milliseconds). At nice 10 the kernel weighs these threads about a
/// tenth of the runtime's, so whenever both want a core the runtime gets it at once, and the
/// pool still has every cycle nobody else wants. The blocking pool's threads are shared with
/// other work, so lowering their priority there would stick to unrelated tasks (and a thread
/// cannot raise its priority back without privileges).
pub(crate) struct CpuPool {
    permits: std::sync::Arc<tokio::sync::Semaphore>,
    jobs: std::sync::mpsc::SyncSender<Job>,
}

type Job = Box<dyn FnOnce() + Send>;

/// The pool's work did not finish: it panicked, or the pool is gone.
#[derive(Debug, thiserror::Error)]
#[error("the work was cancelled")]
pub(crate) struct Cancelled;

impl CpuPool {
    /// `threads` threads named `<name>-<n>`, each at `nice` (0: the process's own priority). A
    /// priority the system refuses is logged once per thread, and the thread runs as it is.
    pub(crate) fn new(name: &str, threads: usize, nice: i32) -> std::io::Result<Self> {
        let threads = threads.max(1);
        // Never full: a job is sent only with one of `threads` permits held.
        let (jobs, queue) = std::sync::mpsc::sync_channel::<Job>(threads);
        let queue = std::sync::Arc::new(std::sync::Mutex::new(queue));
        for n in 0..threads {
            let queue = queue.clone();
            std::thread::Builder::new()
                .name(format!("{name}-{n}"))
                .spawn(move || {
                    lower_priority(nice);
                    loop {
                        let job = {
                            let queue = queue.lock().unwrap_or_else(|p| p.into_inner());
                            queue.recv()
                        };
                        match job {
                            // A panic ends the job (its caller hears `Cancelled`), not the thread.
                            Ok(job) => {
                                std::panic::catch_unwind(std::panic::AssertUnwindSafe(job)).ok();
                            }
                            // The pool was dropped.
                            Err(_) => return,
                        }
                    }
                })?;
        }
        Ok(Self {
            permits: std::sync::Arc::new(tokio::sync::Semaphore::new(threads)),
            jobs,
        })
    }

    /// Runs `work` on the pool once a thread is free. The permit goes with the work: a caller
    /// that is cancelled while it runs (the client went away) does not free the thread for
    /// another job before this one is done.
    pub(crate) async fn run<T: Send + 'static>(
        &self,
        work: impl FnOnce() -> T + Send + 'static,
    ) -> Result<T, Cancelled> {
        let permit = self
            .permits
            .clone()
            .acquire_owned()
            .await
            .map_err(|_| Cancelled)?;
        let (done, answer) = tokio::sync::oneshot::channel();
        let job: Job = Box::new(move || {
            let result = work();
            drop(permit);
            done.send(result).ok();
        });
        self.jobs.send(job).map_err(|_| Cancelled)?;
        answer.await.map_err(|_| Cancelled)
    }
}

#[cfg(unix)]
fn lower_priority(nice: i32) {
    if nice == 0 {
        return;
    }
    // PRIO_PROCESS with no pid: on Linux, the calling thread alone.
    if let Err(e) = rustix::process::setpriority_process(None, nice) {
        tracing::warn!(error = %e, nice, "a CPU pool thread keeps its priority");
    }
}

#[cfg(not(unix))]
fn lower_priority(_nice: i32) {}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_pool_runs_work_on_its_own_threads_and_survives_a_panic() {
        let pool = CpuPool::new("test-pool", 2, 10).expect("threads");
        let name = pool
            .run(|| std::thread::current().name().map(str::to_owned))
            .await
            .expect("done");
        assert!(name.is_some_and(|n| n.starts_with("test-pool-")));
        #[allow(clippy::panic)]
        let failed = pool.run(|| panic!("in a job")).await;
        assert!(failed.is_err());
        let sum = pool.run(|| 2 + 2).await.expect("the pool goes on");
        assert_eq!(sum, 4);
        #[cfg(target_os = "linux")]
        {
            let nice = pool
                .run(|| rustix::process::getpriority_process(None).ok())
                .await
                .expect("done");
            assert_eq!(nice, Some(10), "the pool's threads run at nice 10");
        }
    }
}
