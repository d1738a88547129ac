//! `gateway`, `version` and `web`: the gateway server itself.

use serde_json::Value;

use super::{refused, Context};
use crate::api::{GatewayClient, Info};

/// `/api/v1/info` when there is a usable credential; `Err` says why not, in words.
async fn info_if_possible(ctx: &Context) -> Result<Info, String> {
    let (selection, credential, client) = ctx.authenticated().map_err(|e| first_line(&e))?;
    client
        .info()
        .await
        .map_err(|e| first_line(&refused(e, &selection, &credential)))
}

fn first_line(error: &anyhow::Error) -> String {
    format!("{error:#}")
        .lines()
        .next()
        .unwrap_or_default()
        .to_owned()
}

/// `gateway`: health (no credential needed) and, when signed in, server information.
pub async fn gateway(ctx: &Context) -> anyhow::Result<i32> {
    let config = ctx.config()?;
    let selection = ctx.select(&config)?;
    outln!("Rack: {}", selection.label());
    outln!("Gateway URL: {}", selection.url);
    let health = GatewayClient::new(&selection.url, None)?.health().await?;
    let status = health
        .get("status")
        .and_then(Value::as_str)
        .unwrap_or("unknown");
    let service = health.get("service").and_then(Value::as_str);
    match service {
        Some(service) => outln!("Health: {status} ({service})"),
        None => outln!("Health: {status}"),
    }
    match info_if_possible(ctx).await {
        Ok(info) => {
            if let Some(version) = info.version.and_then(|v| v.gateway) {
                outln!("Gateway version: {version}");
            }
            if let Some(name) = info.rack.and_then(|r| r.name) {
                outln!("Gateway rack name: {name}");
            }
            match (info.user, info.credential) {
                (Some(user), _) => outln!(
                    "Signed in as: {} ({})",
                    user.email,
                    user.role.as_deref().unwrap_or("no role")
                ),
                (None, Some(credential)) => outln!(
                    "Signed in with: {} {}",
                    credential.kind,
                    credential.name.unwrap_or_default()
                ),
                (None, None) => {}
            }
        }
        Err(why) => outln!("Server details: unavailable ({why})"),
    }
    Ok(0)
}

/// `version`: this CLI, and the gateway's version when it can be asked.
pub async fn version(ctx: &Context) -> anyhow::Result<i32> {
    outln!("rack-gateway CLI {}", env!("CARGO_PKG_VERSION"));
    match info_if_possible(ctx).await {
        Ok(info) => match info.version.and_then(|v| v.gateway) {
            Some(version) => outln!("Gateway {version}"),
            None => outln!("Gateway: unknown (the gateway did not say)"),
        },
        Err(why) => outln!("Gateway: unknown ({why})"),
    }
    Ok(0)
}

/// `web`: open `<gateway>/app`.
pub fn web(ctx: &Context) -> anyhow::Result<i32> {
    let config = ctx.config()?;
    let selection = ctx.select(&config)?;
    let url = selection.url.endpoint("/app");
    outln!("Opening {url}");
    if let Err(error) = webbrowser::open(&url) {
        eprintln!("Could not open a browser ({error}); open the URL above yourself.");
    }
    Ok(0)
}
