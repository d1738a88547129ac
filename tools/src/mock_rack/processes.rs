//! Processes: list, get, stop, and one-off runs (`convox run`).

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, Uri};
use axum::response::Response;

use super::apps::query_value;
use super::state::{new_run_pid, Process};
use super::{json_response, ok_response, ApiError, Params, Shared};

/// `GET /apps/{app}/processes?service=&release=`.
pub async fn process_list(
    State(shared): State<Arc<Shared>>,
    Path(app): Path<String>,
    RawQuery(query): RawQuery,
) -> Result<Response, ApiError> {
    let service = query_value(&query, "service").filter(|s| !s.is_empty());
    let release = query_value(&query, "release").filter(|s| !s.is_empty());
    let ps = shared.with_app(&app, |a| {
        Ok(a.processes
            .iter()
            .filter(|p| service.as_ref().is_none_or(|s| &p.name == s))
            .filter(|p| release.as_ref().is_none_or(|r| &p.release == r))
            .cloned()
            .collect::<Vec<_>>())
    })?;
    Ok(json_response(&ps))
}

pub async fn process_get(
    State(shared): State<Arc<Shared>>,
    Path((app, pid)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    let p = shared.with_app(&app, |a| {
        a.processes
            .iter()
            .find(|p| p.id == pid)
            .cloned()
            .ok_or_else(|| ApiError::not_found(format!("process not found: {pid}")))
    })?;
    Ok(json_response(&p))
}

/// `DELETE /apps/{app}/processes/{pid}` (`convox ps stop`, and the end of an attached run).
pub async fn process_stop(
    State(shared): State<Arc<Shared>>,
    Path((app, pid)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    shared.with_app(&app, |a| {
        let before = a.processes.len();
        a.processes.retain(|p| p.id != pid);
        if a.processes.len() == before {
            return Err(ApiError::not_found(format!("process not found: {pid}")));
        }
        a.stopped.push(pid.clone());
        Ok(())
    })?;
    Ok(ok_response())
}

/// `POST /apps/{app}/services/{service}/processes`: a one-off process, `running` at once. All
/// options arrive as headers (`Command`, `Release`, `Cpu`, …); `Command` is kept as the
/// process's command (`sleep 3600` for an attached run, the real command for `--detach`).
pub async fn process_run(
    State(shared): State<Arc<Shared>>,
    Path((app, service)): Path<(String, String)>,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    let params = Params::new(&headers, uri.query(), &body);
    let command = params.header("Command").unwrap_or_default();
    let process = shared.with_app(&app, |a| {
        if !a.services.iter().any(|s| s.name == service) {
            return Err(ApiError::not_found(format!("service not found: {service}")));
        }
        let release = match params.header("Release").filter(|r| !r.is_empty()) {
            Some(r) if a.release(&r).is_none() => {
                return Err(ApiError::not_found(format!("release not found: {r}")))
            }
            Some(r) => r,
            None => a.app.release.clone(),
        };
        let mut p = Process::new(&app, &service, &release, &command);
        p.id = new_run_pid(&service);
        a.processes.push(p.clone());
        Ok(p)
    })?;
    tracing::debug!(app, service, pid = %process.id, command, "process run");
    Ok(json_response(&process))
}
