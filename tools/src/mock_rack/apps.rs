//! Apps, releases (env reads and writes, promote) and services (scale, restart).

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::Response;

use super::state::{new_pid, App, AppRecord};
use super::{decode_map, json_response, ok_response, ApiError, Params, Shared};

/// A query value by name (`limit`, `service`, …).
pub(crate) fn query_value(query: &Option<String>, name: &str) -> Option<String> {
    query.as_deref().and_then(|q| {
        url::form_urlencoded::parse(q.as_bytes())
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.into_owned())
    })
}

/// `limit` as the rack reads it; absent or unparsable means the default.
pub(crate) fn query_limit(query: &Option<String>, default: usize) -> usize {
    query_value(query, "limit")
        .and_then(|v| v.parse::<usize>().ok())
        .unwrap_or(default)
}

pub async fn app_list(State(shared): State<Arc<Shared>>) -> Response {
    let apps: Vec<App> = shared.with_state(|s| s.apps.values().map(|a| a.app.clone()).collect());
    json_response(&apps)
}

pub async fn app_create(
    State(shared): State<Arc<Shared>>,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    let params = Params::new(&headers, uri.query(), &body);
    let name = params
        .get("name")
        .filter(|n| !n.is_empty())
        .ok_or_else(|| ApiError::bad_request("parameter required: name"))?;
    let generation = params.get("generation").unwrap_or_else(|| "2".to_string());
    let app = shared.with_state(|s| {
        if s.apps.contains_key(&name) {
            return Err(ApiError::new(
                StatusCode::CONFLICT,
                format!("app already exists: {name}"),
            ));
        }
        let app = App::new(&name, &generation);
        s.apps.insert(name.clone(), AppRecord::new(app.clone()));
        Ok(app)
    })?;
    Ok(json_response(&app))
}

pub async fn app_get(
    State(shared): State<Arc<Shared>>,
    Path(app): Path<String>,
) -> Result<Response, ApiError> {
    let app = shared.with_app(&app, |a| Ok(a.app.clone()))?;
    Ok(json_response(&app))
}

/// `PUT /apps/{app}`: `lock` and `parameters` (url-encoded map, merged).
pub async fn app_update(
    State(shared): State<Arc<Shared>>,
    Path(app): Path<String>,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    let params = Params::new(&headers, uri.query(), &body);
    shared.with_app(&app, |a| {
        if let Some(lock) = params.get_bool("lock") {
            a.app.locked = lock;
        }
        if let Some(p) = params.get("parameters") {
            a.app.parameters.extend(decode_map(&p));
        }
        Ok(())
    })?;
    Ok(ok_response())
}

/// `DELETE /apps/{app}`: gone at once, so the CLI's wait for `app not found` ends quickly.
pub async fn app_delete(
    State(shared): State<Arc<Shared>>,
    Path(app): Path<String>,
) -> Result<Response, ApiError> {
    shared.with_state(|s| match s.apps.remove(&app) {
        Some(_) => Ok(()),
        None => Err(ApiError::not_found(format!("app not found: {app}"))),
    })?;
    Ok(ok_response())
}

/// `GET /apps/{app}/budget`: no budget configured. `convox ps` asks for it and would print a
/// fetch error on stderr if the route were missing.
pub async fn budget_get(
    State(shared): State<Arc<Shared>>,
    Path(app): Path<String>,
) -> Result<Response, ApiError> {
    shared.with_app(&app, |_| Ok(()))?;
    Ok(json_response(
        &serde_json::json!({ "config": null, "state": null }),
    ))
}

/// `GET /apps/{app}/configs/{name}`: the mock stores no app configs (the CLI asks for the env
/// mask list on a terminal and treats this 404 as "no masking").
pub async fn config_get(
    State(shared): State<Arc<Shared>>,
    Path((app, name)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    shared.with_app(&app, |_| Ok(()))?;
    Err(ApiError::not_found(format!("app config not found: {name}")))
}

/// `GET /apps/{app}/releases?limit=N`: newest first, default 10.
pub async fn release_list(
    State(shared): State<Arc<Shared>>,
    Path(app): Path<String>,
    RawQuery(query): RawQuery,
) -> Result<Response, ApiError> {
    let limit = query_limit(&query, 10);
    let releases = shared.with_app(&app, |a| {
        Ok(a.releases
            .iter()
            .rev()
            .take(limit)
            .cloned()
            .collect::<Vec<_>>())
    })?;
    Ok(json_response(&releases))
}

/// `POST /apps/{app}/releases`: `convox env set/unset` send the whole env here (`env`, `K=V`
/// lines); `build` and `description` are the other fields. Missing fields come from the
/// latest release.
pub async fn release_create(
    State(shared): State<Arc<Shared>>,
    Path(app): Path<String>,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    let params = Params::new(&headers, uri.query(), &body);
    let release = shared.with_app(&app, |a| {
        let parent = params.get("parent-release").filter(|p| !p.is_empty());
        let build = params.get("build").filter(|b| !b.is_empty());
        let env = params.has("env").then(|| params.get("env")).flatten();
        a.create_release(parent.as_deref(), build, env, params.get("description"))
            .map_err(ApiError::not_found)
    })?;
    Ok(json_response(&release))
}

pub async fn release_get(
    State(shared): State<Arc<Shared>>,
    Path((app, id)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    let release = shared.with_app(&app, |a| {
        a.release(&id)
            .cloned()
            .ok_or_else(|| ApiError::not_found(format!("release not found: {id}")))
    })?;
    Ok(json_response(&release))
}

/// `POST /apps/{app}/releases/{id}/promote`: the rack's checks (app busy → 403 unless
/// `force`, empty manifest → 400), then the app points at the release and stays `running`,
/// so the CLI's wait loop ends after its two confirming polls.
pub async fn release_promote(
    State(shared): State<Arc<Shared>>,
    Path((app, id)): Path<(String, String)>,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    let params = Params::new(&headers, uri.query(), &body);
    let force = params.get_bool("force").unwrap_or(false);
    shared.with_app(&app, |a| {
        if !force && a.app.status != "running" {
            return Err(ApiError::new(
                StatusCode::FORBIDDEN,
                "app is currently updating",
            ));
        }
        let release = a
            .release(&id)
            .cloned()
            .ok_or_else(|| ApiError::not_found(format!("release not found: {id}")))?;
        if release.manifest.trim().is_empty() {
            return Err(ApiError::bad_request(format!(
                "release {id} has no manifest and cannot be promoted"
            )));
        }
        a.promote(&id);
        Ok(())
    })?;
    Ok(ok_response())
}

pub async fn service_list(
    State(shared): State<Arc<Shared>>,
    Path(app): Path<String>,
) -> Result<Response, ApiError> {
    let services = shared.with_app(&app, |a| Ok(a.services.clone()))?;
    Ok(json_response(&services))
}

/// `PUT /apps/{app}/services/{service}` (`convox scale`): `count`, `cpu`, `memory`, `gpu`,
/// `gpu-vendor`; the service's processes follow `count` at once.
pub async fn service_update(
    State(shared): State<Arc<Shared>>,
    Path((app, service)): Path<(String, String)>,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    let params = Params::new(&headers, uri.query(), &body);
    let count = params.get_i64("count")?;
    let cpu = params.get_i64("cpu")?;
    let memory = params.get_i64("memory")?;
    let gpu = params.get_i64("gpu")?;
    shared.with_app(&app, |a| {
        let s = a
            .services
            .iter_mut()
            .find(|s| s.name == service)
            .ok_or_else(|| ApiError::not_found(format!("service not found: {service}")))?;
        if let Some(v) = count {
            if v < 0 {
                return Err(ApiError::bad_request("count must be >= 0"));
            }
            s.count = v;
        }
        if let Some(v) = cpu {
            s.cpu = v;
        }
        if let Some(v) = memory {
            s.memory = v;
        }
        if let Some(v) = gpu {
            s.gpu = v;
        }
        if let Some(v) = params.get("gpu-vendor") {
            s.gpu_vendor = v;
        }
        a.reconcile_processes();
        Ok(())
    })?;
    Ok(ok_response())
}

/// `POST /apps/{app}/services/{service}/restart`: the service's processes get new ids, as
/// restarted pods do.
pub async fn service_restart(
    State(shared): State<Arc<Shared>>,
    Path((app, service)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    shared.with_app(&app, |a| {
        if !a.services.iter().any(|s| s.name == service) {
            return Err(ApiError::not_found(format!("service not found: {service}")));
        }
        let restarted = a
            .processes
            .iter_mut()
            .filter(|p| p.name == service && !super::state::is_run_process(p));
        for p in restarted {
            p.id = new_pid(&service);
            p.started = chrono::Utc::now();
        }
        a.restarts.push(service.clone());
        Ok(())
    })?;
    Ok(ok_response())
}
