//! Temporal Schedules the worker keeps: created at start-up when missing, left alone when they
//! exist (an operator may have paused or changed one in the Web UI).

use std::time::Duration;
use temporalio_client::Client;
use temporalio_client::schedules::{
    CreateScheduleOptions, ScheduleAction, ScheduleError, ScheduleSpec,
};
use temporalio_client::tonic::Code;

/// Creates the schedule `schedule_id` running `action` every `every`, unless it exists.
pub async fn ensure_schedule(
    client: &Client,
    schedule_id: &str,
    action: ScheduleAction,
    every: Duration,
) -> Result<(), ScheduleError> {
    let options = CreateScheduleOptions::builder()
        .action(action)
        .spec(ScheduleSpec::from_interval(every))
        .build();
    match client.create_schedule(schedule_id, options).await {
        Ok(_) => {
            tracing::info!(schedule_id, ?every, "created a schedule");
            Ok(())
        }
        Err(ScheduleError::Rpc(status)) if status.code() == Code::AlreadyExists => Ok(()),
        Err(e) => Err(e),
    }
}
