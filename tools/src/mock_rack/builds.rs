//! Object uploads (streamed, constant memory) and builds.

use std::sync::Arc;

use axum::body::{Body, Bytes};
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use chrono::Utc;
use futures::StreamExt;
use serde::Serialize;
use sha2::{Digest, Sha256};

use super::apps::query_limit;
use super::state::{go_zero_time, new_id, Build, UploadInfo, DEFAULT_MANIFEST};
use super::{json_response, ok_response, ApiError, Params, Shared};

/// The object upload reply. `Url` is capitalised because the rack's struct field has no JSON tag.
#[derive(Serialize)]
struct Object {
    #[serde(rename = "Url")]
    url: String,
}

/// The rack refuses object keys with a `..` segment.
fn check_key(key: &str) -> Result<(), ApiError> {
    if key.is_empty() || key.split('/').any(|seg| seg == "..") {
        return Err(ApiError::bad_request(format!("invalid object key: {key}")));
    }
    Ok(())
}

/// `POST /apps/{app}/objects/{key...}`: the raw body is the object. It is hashed and counted
/// as it streams and then dropped, so uploads of any size run in constant memory.
pub async fn object_store(
    State(shared): State<Arc<Shared>>,
    Path((app, key)): Path<(String, String)>,
    body: Body,
) -> Result<Response, ApiError> {
    check_key(&key)?;
    // Refuse before reading a possibly huge body for an app that does not exist.
    shared.with_app(&app, |_| Ok(()))?;

    let mut stream = body.into_data_stream();
    let mut hasher = Sha256::new();
    let mut bytes: u64 = 0;
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(|e| ApiError::bad_request(format!("reading upload: {e}")))?;
        hasher.update(&chunk);
        bytes += chunk.len() as u64;
    }
    let info = UploadInfo {
        app: app.clone(),
        key: key.clone(),
        bytes,
        sha256: hex::encode(hasher.finalize()),
    };
    tracing::debug!(app, key, bytes, "object stored");

    shared.with_state(|s| {
        s.uploads.push(info.clone());
        // The app may have been deleted while the body streamed; the upload is still logged.
        if let Some(a) = s.apps.get_mut(&app) {
            a.objects.insert(key.clone(), info);
        }
    });
    Ok(json_response(&Object {
        url: format!("object://{app}/{key}"),
    }))
}

/// `HEAD /apps/{app}/objects/{key...}`.
pub async fn object_exists(
    State(shared): State<Arc<Shared>>,
    Path((app, key)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    check_key(&key)?;
    let exists = shared.with_app(&app, |a| Ok(a.objects.contains_key(&key)))?;
    Ok(if exists {
        json_response(&true)
    } else {
        StatusCode::NOT_FOUND.into_response()
    })
}

/// `DELETE /apps/{app}/objects/{key...}`.
pub async fn object_delete(
    State(shared): State<Arc<Shared>>,
    Path((app, key)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    check_key(&key)?;
    shared.with_app(&app, |a| match a.objects.remove(&key) {
        Some(_) => Ok(()),
        None => Err(ApiError::not_found(format!("object not found: {key}"))),
    })?;
    Ok(ok_response())
}

/// `POST /apps/{app}/builds`: form `url=object://<app>/<key>` plus description, manifest,
/// git-sha…. The build starts `running`; it completes (with a new release) when its log stream
/// has been sent, or by itself after `build_duration`. A source object that was never uploaded
/// makes it end `failed`, as the build pod would.
pub async fn build_create(
    State(shared): State<Arc<Shared>>,
    Path(app): Path<String>,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    let params = Params::new(&headers, uri.query(), &body);
    let build = shared.with_app(&app, |a| {
        let id = new_id('B');
        let mut reason = String::new();
        if let Some(url) = params.get("url").filter(|u| !u.is_empty()) {
            match url
                .strip_prefix("object://")
                .and_then(|r| r.split_once('/'))
            {
                Some((object_app, key)) if object_app == app => {
                    if !a.objects.contains_key(key) {
                        reason = format!("object not found: {key}");
                    }
                }
                Some((object_app, _)) if !object_app.is_empty() => {
                    reason = format!("object belongs to another app: {url}");
                }
                _ => return Err(ApiError::bad_request(format!("invalid source url: {url}"))),
            }
        }
        let manifest_text = a.current_manifest();
        let build = Build {
            id: id.clone(),
            app: app.clone(),
            description: params.get("description").unwrap_or_default(),
            entrypoint: String::new(),
            git_sha: params.get("git-sha").unwrap_or_default(),
            logs: String::new(),
            manifest: if manifest_text.is_empty() {
                DEFAULT_MANIFEST.to_string()
            } else {
                manifest_text
            },
            process: format!("build-{}", id.to_lowercase()),
            release: String::new(),
            reason,
            repository: format!("registry.mock-rack.convox.local/{app}"),
            status: "running".to_string(),
            started: Utc::now(),
            ended: go_zero_time(),
        };
        a.builds.push(build.clone());
        Ok(build)
    })?;
    Ok(json_response(&build))
}

/// `GET /apps/{app}/builds?limit=N`: newest first, default 10.
pub async fn build_list(
    State(shared): State<Arc<Shared>>,
    Path(app): Path<String>,
    RawQuery(query): RawQuery,
) -> Result<Response, ApiError> {
    let limit = query_limit(&query, 10);
    let after = build_duration(&shared);
    let builds = shared.with_app(&app, |a| {
        a.refresh_builds(after);
        Ok(a.builds
            .iter()
            .rev()
            .take(limit)
            .cloned()
            .collect::<Vec<_>>())
    })?;
    Ok(json_response(&builds))
}

/// `GET /apps/{app}/builds/{id}`. (`{id}.tgz` would be the export route; the mock keeps no
/// artifacts, so it is a 404.)
pub async fn build_get(
    State(shared): State<Arc<Shared>>,
    Path((app, id)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    let after = build_duration(&shared);
    let build = shared.with_app(&app, |a| {
        a.refresh_builds(after);
        a.builds
            .iter()
            .find(|b| b.id == id)
            .cloned()
            .ok_or_else(|| ApiError::not_found(format!("build not found: {id}")))
    })?;
    Ok(json_response(&build))
}

fn build_duration(shared: &Shared) -> chrono::Duration {
    chrono::Duration::from_std(shared.config.build_duration)
        .unwrap_or_else(|_| chrono::Duration::seconds(2))
}

/// The lines a build's log stream sends.
pub(crate) fn build_log_lines(build: &Build) -> Vec<String> {
    let repo = &build.repository;
    let mut lines = vec![
        format!(
            "Authenticating {}: Login Succeeded",
            repo.split('/').next().unwrap_or(repo)
        ),
        "Building: .".to_string(),
        "Step 1/2 : FROM scratch".to_string(),
        "Step 2/2 : COPY . /app".to_string(),
    ];
    if build.reason.is_empty() {
        lines.push(format!(
            "Running: docker push {repo}:web.{id}",
            id = build.id
        ));
        lines.push(format!("Build: {}", build.id));
    } else {
        lines.push(format!("ERROR: {}", build.reason));
    }
    lines
}
