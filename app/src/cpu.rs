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
