//! Rack-level routes: `/system`, `/system/processes`, `/system/releases`, `/instances`, `/auth`.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, Uri};
use axum::response::Response;
use chrono::Utc;

use super::state::Release;
use super::{decode_map, json_response, ok_response, ApiError, Params, Shared};

/// `GET /auth`: the credential check `convox login` makes; reaching the handler means it passed.
pub async fn auth_check() -> Response {
    ok_response()
}

pub async fn system_get(State(shared): State<Arc<Shared>>) -> Response {
    let system = shared.with_state(|s| s.system.clone());
    json_response(&system)
}

/// `PUT /system`: `rack update` (`version`), `rack params set` (`parameters`, a url-encoded
/// map merged into the current ones), `rack scale` (`count`, `type`). All accepted; the gateway,
/// not the rack, is what should refuse them.
pub async fn system_update(
    State(shared): State<Arc<Shared>>,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    let params = Params::new(&headers, uri.query(), &body);
    let count = params.get_i64("count")?;
    let form: std::collections::BTreeMap<String, String> =
        url::form_urlencoded::parse(&body).into_owned().collect();
    shared.with_state(|s| {
        if let Some(p) = params.get("parameters") {
            for (k, v) in decode_map(&p) {
                s.system.parameters.insert(k, v);
            }
        }
        if let Some(version) = params.get("version").filter(|v| !v.is_empty()) {
            s.system.version = version;
        }
        if let Some(count) = count {
            s.system.count = count;
        }
        // `rack scale --type` changes the node instance type, which v3 racks keep as a param.
        if let Some(kind) = params.get("type").filter(|v| !v.is_empty()) {
            s.system
                .parameters
                .insert("node_type".to_string(), kind.clone());
        }
        s.system_updates.push(form);
    });
    Ok(ok_response())
}

pub async fn system_processes(State(shared): State<Arc<Shared>>) -> Response {
    let ps = shared.with_state(|s| s.system_processes.clone());
    json_response(&ps)
}

/// `GET /system/releases`: rack version history; the mock has one entry, the current version.
pub async fn system_releases(State(shared): State<Arc<Shared>>) -> Response {
    let version = shared.with_state(|s| s.system.version.clone());
    let releases = vec![Release {
        id: version.clone(),
        app: "system".to_string(),
        build: String::new(),
        env: String::new(),
        manifest: String::new(),
        description: format!("rack version {version}"),
        created: Utc::now() - chrono::Duration::days(3),
    }];
    json_response(&releases)
}

pub async fn instance_list(State(shared): State<Arc<Shared>>) -> Response {
    let instances = shared.with_state(|s| s.instances.clone());
    json_response(&instances)
}
