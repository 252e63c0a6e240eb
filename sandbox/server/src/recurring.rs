//! `/apis/v2beta1/recurringruns`: create, get, list, enable, disable, delete; and the
//! scheduler that starts their runs (cron with six fields, or a period in seconds), keeping to
//! `max_concurrency` and, with `no_catchup`, skipping the times missed while kfbox was down.

use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::{Path, State};
use axum::Json;
use chrono::{DateTime, SecondsFormat, Utc};
use kfbox_store::RecurringRunRow;
use serde_json::{json, Value};

use crate::error::{ApiError, ApiResult};
use crate::filter::{ListParams, Params};
use crate::model::{self, Empty, ListRecurringRuns, RecurringRun, RecurringRunRequest};
use crate::pipelines::spec_value;
use crate::request::{body, split_action};
use crate::runs::{start, RunRequest};
use crate::state::Server;

/// When a recurring run starts runs.
#[derive(Debug, Clone)]
enum Trigger {
    Cron(Box<cron::Schedule>),
    Periodic(chrono::Duration),
}

#[derive(Debug, Clone)]
struct Plan {
    trigger: Trigger,
    start: Option<DateTime<Utc>>,
    end: Option<DateTime<Utc>>,
    max_concurrency: i64,
    no_catchup: bool,
}

/// An unset time is absent or the epoch, as protobuf writes a zero timestamp.
fn optional_time(value: Option<&Value>, field: &str) -> ApiResult<Option<DateTime<Utc>>> {
    match value.and_then(Value::as_str) {
        None => Ok(None),
        Some(text) => {
            let time = DateTime::parse_from_rfc3339(text)
                .map_err(|e| ApiError::invalid(format!("{field} `{text}`: {e}")))?
                .with_timezone(&Utc);
            Ok((time.timestamp() > 0).then_some(time))
        }
    }
}

fn integer(value: Option<&Value>) -> Option<i64> {
    match value? {
        Value::Number(n) => n.as_i64(),
        Value::String(s) => s.parse().ok(),
        _ => None,
    }
}

fn plan(body: &Value) -> ApiResult<Plan> {
    let trigger = body.get("trigger").unwrap_or(&Value::Null);
    let (trigger, schedule) = if let Some(cron) =
        trigger.get("cron_schedule").filter(|v| !v.is_null())
    {
        let text = cron.get("cron").and_then(Value::as_str).unwrap_or_default();
        let fields = text.split_whitespace().count();
        if fields != 6 {
            return Err(ApiError::invalid(format!(
                "trigger.cron_schedule.cron `{text}`: expected six fields (second minute hour day-of-month month day-of-week), found {fields}{}",
                if fields == 5 { "; put a seconds field first, e.g. `0 */5 * * * *`" } else { "" }
            )));
        }
        let schedule = cron::Schedule::from_str(text)
            .map_err(|e| ApiError::invalid(format!("trigger.cron_schedule.cron `{text}`: {e}")))?;
        (Trigger::Cron(Box::new(schedule)), cron)
    } else if let Some(periodic) = trigger.get("periodic_schedule").filter(|v| !v.is_null()) {
        let seconds = integer(periodic.get("interval_second")).unwrap_or(0);
        if seconds < 1 {
            return Err(ApiError::invalid(
                "trigger.periodic_schedule.interval_second must be a whole number of seconds, at least 1",
            ));
        }
        (
            Trigger::Periodic(chrono::Duration::seconds(seconds)),
            periodic,
        )
    } else {
        return Err(ApiError::invalid(
            "trigger needs cron_schedule or periodic_schedule",
        ));
    };
    let max_concurrency = match integer(body.get("max_concurrency")) {
        None | Some(0) => 1,
        Some(n) if (1..=10).contains(&n) => n,
        Some(n) => {
            return Err(ApiError::invalid(format!(
                "max_concurrency {n}: must be between 1 and 10"
            )))
        }
    };
    Ok(Plan {
        trigger,
        start: optional_time(schedule.get("start_time"), "start_time")?,
        end: optional_time(schedule.get("end_time"), "end_time")?,
        max_concurrency,
        no_catchup: body
            .get("no_catchup")
            .and_then(Value::as_bool)
            .unwrap_or(false),
    })
}

impl Plan {
    /// The first schedule time strictly after `after`, if the schedule has one.
    fn next_after(&self, after: DateTime<Utc>) -> Option<DateTime<Utc>> {
        let after = match self.start {
            Some(start) if start > after => start - chrono::Duration::milliseconds(1),
            _ => after,
        };
        let next = match &self.trigger {
            Trigger::Cron(schedule) => schedule.after(&after).next()?,
            Trigger::Periodic(period) => after + *period,
        };
        match self.end {
            Some(end) if next > end => None,
            _ => Some(next),
        }
    }

    /// The schedule time to fire now, if one is due: the earliest missed one, or with
    /// `no_catchup` the latest.
    fn due(&self, last: DateTime<Utc>, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
        let mut due = self.next_after(last).filter(|t| *t <= now)?;
        if self.no_catchup {
            while let Some(later) = self.next_after(due).filter(|t| *t <= now) {
                due = later;
            }
        }
        Some(due)
    }
}

pub(crate) async fn create(
    State(server): State<Arc<Server>>,
    bytes: axum::body::Bytes,
) -> ApiResult<Json<RecurringRun>> {
    // Read as the document describes it, then kept in that shape.
    let request: RecurringRunRequest = body(&bytes, "RecurringRun")?;
    let mut request =
        serde_json::to_value(&request).map_err(|e| ApiError::internal(e.to_string()))?;
    let object = request
        .as_object_mut()
        .ok_or_else(|| ApiError::invalid("the request body is not a RecurringRun object"))?;
    let display_name = object
        .get("display_name")
        .and_then(Value::as_str)
        .filter(|n| !n.is_empty())
        .ok_or_else(|| ApiError::invalid("recurring_run.display_name is required"))?
        .to_owned();
    let plan = plan(&Value::Object(object.clone()))?;
    let run: RunRequest = serde_json::from_value(Value::Object(object.clone())).map_err(|e| {
        ApiError::invalid(format!("the request body is not a valid RecurringRun: {e}"))
    })?;
    if !run.pipeline_spec.is_null() {
        let (spec, _) = spec_value(
            run.pipeline_spec.clone(),
            &format!("recurring run `{display_name}`"),
        )?;
        object.insert(
            "pipeline_spec".into(),
            serde_json::from_str(&spec).unwrap_or_default(),
        );
    } else if let Some(version) = run
        .pipeline_version_reference
        .as_ref()
        .and_then(|r| r.pipeline_version_id.as_deref())
        .filter(|v| !v.is_empty())
    {
        server.store().pipeline_version(version)?;
    } else {
        return Err(ApiError::invalid(
            "a recurring run needs `pipeline_spec` or `pipeline_version_reference.pipeline_version_id`",
        ));
    }
    let experiment_id = server.experiment_or_default(run.experiment_id.as_deref())?;
    let mode = match object.get("mode").and_then(Value::as_str) {
        Some("DISABLE") => "DISABLE",
        _ => "ENABLE",
    };
    object.insert(
        "max_concurrency".into(),
        json!(plan.max_concurrency.to_string()),
    );
    object.insert("no_catchup".into(), json!(plan.no_catchup));
    // Protobuf's JSON writes 64-bit integers as strings; so does the API's answer.
    if let (Trigger::Periodic(period), Some(periodic)) = (
        &plan.trigger,
        object
            .get_mut("trigger")
            .and_then(|t| t.get_mut("periodic_schedule"))
            .and_then(Value::as_object_mut),
    ) {
        periodic.insert(
            "interval_second".into(),
            json!(period.num_seconds().to_string()),
        );
    }
    for server_side in [
        "recurring_run_id",
        "created_at",
        "updated_at",
        "status",
        "error",
    ] {
        object.remove(server_side);
    }
    let now = Utc::now().timestamp_millis();
    let row = RecurringRunRow {
        recurring_run_id: uuid::Uuid::new_v4().to_string(),
        display_name,
        experiment_id: Some(experiment_id),
        mode: mode.to_owned(),
        created_at: now,
        updated_at: now,
        last_fired_at: None,
        body: request.to_string(),
    };
    server.store().create_recurring_run(&row)?;
    Ok(Json(model::recurring_run(&row)))
}

pub(crate) async fn read(
    State(server): State<Arc<Server>>,
    Path(id): Path<String>,
) -> ApiResult<Json<RecurringRun>> {
    Ok(Json(model::recurring_run(
        &server.store().recurring_run(&id)?,
    )))
}

pub(crate) async fn list(
    State(server): State<Arc<Server>>,
    Params(params): Params<ListParams>,
) -> ApiResult<Json<ListRecurringRuns>> {
    let query = params.query_in_experiment()?;
    let page = server.store().list_recurring_runs(&query)?;
    // Upstream's JSON names this list in camelCase.
    Ok(Json(ListRecurringRuns::of(page, model::recurring_run)))
}

pub(crate) async fn action(
    State(server): State<Arc<Server>>,
    Path(id): Path<String>,
) -> ApiResult<Json<Empty>> {
    let (id, verb) = split_action(&id)?;
    match verb {
        "enable" => server.store().set_recurring_mode(id, true)?,
        "disable" => server.store().set_recurring_mode(id, false)?,
        other => {
            return Err(ApiError::not_found(format!(
                "recurring runs have no method `{other}` (enable, disable)"
            )))
        }
    }
    Ok(Json(Empty {}))
}

pub(crate) async fn delete(
    State(server): State<Arc<Server>>,
    Path(id): Path<String>,
) -> ApiResult<Json<Empty>> {
    server.store().delete_recurring_run(&id)?;
    Ok(Json(Empty {}))
}

/// Start the runs that are due, every half second, until the server stops; keep the store's
/// planner statistics fresh.
pub(crate) async fn schedule(server: Arc<Server>) {
    let mut tick = tokio::time::interval(Duration::from_millis(500));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut ticks: u64 = 0;
    loop {
        tick.tick().await;
        // The planner's statistics follow the store's growth: at start, then hourly.
        if ticks.is_multiple_of(7200) {
            if let Err(e) = server.store().optimize() {
                tracing::warn!("cannot refresh the store's statistics: {e}");
            }
        }
        ticks += 1;
        let due = match server.store().enabled_recurring_runs() {
            Ok(rows) => rows,
            Err(e) => {
                tracing::warn!("cannot read recurring runs: {e}");
                continue;
            }
        };
        for row in due {
            if let Err(e) = fire_if_due(&server, &row).await {
                tracing::warn!(
                    "recurring run `{}` ({}): {}",
                    row.display_name,
                    row.recurring_run_id,
                    e.message
                );
            }
        }
    }
}

pub(crate) async fn fire_if_due(server: &Arc<Server>, row: &RecurringRunRow) -> ApiResult<()> {
    let body: Value = serde_json::from_str(&row.body).unwrap_or_default();
    let plan = plan(&body)?;
    let last = DateTime::from_timestamp_millis(row.last_fired_at.unwrap_or(row.created_at))
        .unwrap_or_default();
    let Some(scheduled) = plan.due(last, Utc::now()) else {
        return Ok(());
    };
    if server.store().active_runs_of(&row.recurring_run_id)? >= plan.max_concurrency {
        return Ok(());
    }
    // Marked first: a run that cannot start must not be retried twice a second.
    server
        .store()
        .mark_recurring_fired(&row.recurring_run_id, scheduled.timestamp_millis())?;
    let mut request: RunRequest = serde_json::from_value(body).unwrap_or_default();
    request.display_name = Some(format!(
        "{} {}",
        row.display_name,
        scheduled.to_rfc3339_opts(SecondsFormat::Secs, true)
    ));
    request.experiment_id = row.experiment_id.clone();
    start(server, request, Some(row.recurring_run_id.clone())).await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(text: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(text)
            .unwrap()
            .with_timezone(&Utc)
    }

    #[test]
    fn cron_has_six_fields_and_fires_on_the_second() {
        let plan =
            plan(&json!({"trigger": {"cron_schedule": {"cron": "*/10 * * * * *"}}})).unwrap();
        let last = at("2026-01-01T00:00:03Z");
        assert_eq!(plan.due(last, at("2026-01-01T00:00:09Z")), None);
        assert_eq!(
            plan.due(last, at("2026-01-01T00:00:25Z")),
            Some(at("2026-01-01T00:00:10Z"))
        );
        let error = super::plan(&json!({"trigger": {"cron_schedule": {"cron": "*/5 * * * *"}}}))
            .unwrap_err();
        assert!(
            error.message.contains("put a seconds field first"),
            "{}",
            error.message
        );
    }

    #[test]
    fn no_catchup_skips_to_the_latest_missed_time() {
        let plan = plan(&json!({
            "trigger": {"periodic_schedule": {"interval_second": "60"}},
            "no_catchup": true
        }))
        .unwrap();
        let last = at("2026-01-01T00:00:00Z");
        assert_eq!(
            plan.due(last, at("2026-01-01T00:05:30Z")),
            Some(at("2026-01-01T00:05:00Z"))
        );
        let catching_up =
            super::plan(&json!({"trigger": {"periodic_schedule": {"interval_second": 60}}}))
                .unwrap();
        assert_eq!(
            catching_up.due(last, at("2026-01-01T00:05:30Z")),
            Some(at("2026-01-01T00:01:00Z"))
        );
    }

    #[test]
    fn start_and_end_times_bound_the_schedule() {
        let plan = plan(&json!({"trigger": {"periodic_schedule": {
            "interval_second": "10",
            "start_time": "2026-01-01T01:00:00Z",
            "end_time": "2026-01-01T01:00:15Z"
        }}}))
        .unwrap();
        let created = at("2026-01-01T00:00:00Z");
        assert_eq!(plan.due(created, at("2026-01-01T00:30:00Z")), None);
        let first = plan.due(created, at("2026-01-01T01:00:30Z")).unwrap();
        assert!(
            first >= at("2026-01-01T01:00:00Z") && first <= at("2026-01-01T01:00:10Z"),
            "{first}"
        );
        assert_eq!(plan.next_after(at("2026-01-01T01:00:10Z")), None);
        assert!(super::plan(&json!({"trigger": {}})).is_err());
        assert!(super::plan(&json!({"trigger": {"periodic_schedule": {"interval_second": "5"}}, "max_concurrency": "11"})).is_err());
    }
}
