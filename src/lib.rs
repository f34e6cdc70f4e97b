//! The `fishapp` binary's library half: configuration, wiring and the roles it runs. Kept as a
//! library so that black-box tests can start the real application in-process on a random port.

pub mod app;
pub mod cli;
pub mod config;
pub mod shutdown;
pub mod telemetry;
pub mod worker;

/// mimalloc instead of glibc's malloc, for every binary that links this crate (the server, the
/// tests, the benchmarks): request handling allocates many small, short-lived objects across
/// threads, where glibc spent a third of the listing's CPU (docs/benchmarks.md).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;
