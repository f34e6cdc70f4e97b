//! The `fishapp` binary's library half: configuration, wiring and the roles it runs. Kept as a
//! library so that black-box tests can start the real application in-process on a random port.

pub mod app;
pub mod cli;
pub mod config;
pub mod shutdown;
pub mod telemetry;
pub mod worker;
