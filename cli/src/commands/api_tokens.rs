//! `api-token list|get|create|delete` against `/api/v1/api-tokens`.
//!
//! The secret of a new token is printed once, by `create`, and nowhere else.

use anyhow::Context as _;
use serde_json::Value;

use super::{human_time, refused, Context};
use crate::api::CreateApiToken;
use crate::args::{ApiTokenCommand, OutputFormat};

pub async fn run(ctx: &Context, command: ApiTokenCommand) -> anyhow::Result<i32> {
    let (selection, credential, client) = ctx.authenticated()?;
    let refused = |e| refused(e, &selection, &credential);
    match command {
        ApiTokenCommand::List { json } => {
            let tokens = client.list_api_tokens().await.map_err(refused)?;
            if json {
                print_json(&tokens)?;
            } else {
                print_table(tokens.as_array().map(Vec::as_slice).unwrap_or_default());
            }
        }
        ApiTokenCommand::Get { id, json } => {
            let token = client.get_api_token(&id).await.map_err(refused)?;
            if json {
                print_json(&token)?;
            } else {
                print_details(&token);
            }
        }
        ApiTokenCommand::Create {
            name,
            role,
            user,
            expires_at,
            output,
        } => {
            if let Some(at) = &expires_at {
                chrono::DateTime::parse_from_rfc3339(at).with_context(|| {
                    format!(
                        "--expires-at {at:?} is not an RFC 3339 time (e.g. 2030-01-31T12:00:00Z)"
                    )
                })?;
            }
            let body = CreateApiToken {
                name,
                role,
                user_email: user,
                expires_at,
            };
            // `gateway:api_token:create` needs MFA on the request (level `always`).
            let created = ctx
                .with_mfa(
                    &selection,
                    &credential,
                    &client,
                    "gateway:api_token:create",
                    |client| {
                        let body = body.clone();
                        async move { client.create_api_token(&body).await }
                    },
                )
                .await?;
            let secret = field(&created, "token");
            match output {
                OutputFormat::Token => outln!("{secret}"),
                OutputFormat::Json => print_json(&created)?,
                OutputFormat::Text => {
                    outln!(
                        "Created API token {} (id {}, role {})",
                        field(&created, "name"),
                        field(&created, "id"),
                        field(&created, "role")
                    );
                    outln!("Token: {secret}");
                    outln!("Store it now: the gateway will not show it again.");
                }
            }
        }
        ApiTokenCommand::Delete { id } => {
            let token = ctx
                .with_mfa(
                    &selection,
                    &credential,
                    &client,
                    "gateway:api_token:delete",
                    |client| {
                        let id = id.clone();
                        async move { client.delete_api_token(&id).await }
                    },
                )
                .await?;
            let name = field(&token, "name");
            if name.is_empty() {
                outln!("Revoked API token {id}");
            } else {
                outln!("Revoked API token {id} ({name})");
            }
        }
    }
    Ok(0)
}

fn print_json(value: &Value) -> anyhow::Result<()> {
    outln!("{}", serde_json::to_string_pretty(value)?);
    Ok(())
}

/// A field as text: strings as they are, numbers written out, absent or null as "".
fn field(value: &Value, key: &str) -> String {
    match value.get(key) {
        None | Some(Value::Null) => String::new(),
        Some(Value::String(s)) => s.clone(),
        Some(other) => other.to_string(),
    }
}

fn time_or(value: &Value, key: &str, missing: &str) -> String {
    match field(value, key) {
        t if t.is_empty() => missing.to_owned(),
        t => human_time(&t),
    }
}

fn print_table(tokens: &[Value]) {
    if tokens.is_empty() {
        outln!("No API tokens.");
        return;
    }
    let header = ["ID", "NAME", "ROLE", "USER", "EXPIRES", "STATUS"];
    let rows: Vec<[String; 6]> = tokens
        .iter()
        .map(|t| {
            [
                field(t, "id"),
                field(t, "name"),
                field(t, "role"),
                field(t, "user_email"),
                time_or(t, "expires_at", "never"),
                match field(t, "revoked_at") {
                    r if r.is_empty() => "active".to_owned(),
                    r => format!("revoked {}", human_time(&r)),
                },
            ]
        })
        .collect();
    let mut widths = header.map(str::len);
    for row in &rows {
        for (width, cell) in widths.iter_mut().zip(row) {
            *width = (*width).max(cell.len());
        }
    }
    let line = |cells: &[String]| {
        cells
            .iter()
            .zip(widths)
            .map(|(cell, width)| format!("{cell:<width$}"))
            .collect::<Vec<_>>()
            .join("  ")
            .trim_end()
            .to_owned()
    };
    outln!("{}", line(&header.map(str::to_owned)));
    for row in &rows {
        outln!("{}", line(row));
    }
}

fn print_details(token: &Value) {
    let revoked = match field(token, "revoked_at") {
        r if r.is_empty() => "no".to_owned(),
        r => human_time(&r),
    };
    for (label, value) in [
        ("ID", field(token, "id")),
        ("Name", field(token, "name")),
        ("Role", field(token, "role")),
        ("User", field(token, "user_email")),
        ("Expires", time_or(token, "expires_at", "never")),
        ("Created", time_or(token, "created_at", "")),
        ("Created by", field(token, "created_by")),
        ("Revoked", revoked),
    ] {
        outln!("{:<11} {value}", format!("{label}:"));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn fields_render_as_text() {
        let v = json!({"id": 7, "name": "ci", "revoked_at": null});
        assert_eq!(field(&v, "id"), "7");
        assert_eq!(field(&v, "name"), "ci");
        assert_eq!(field(&v, "revoked_at"), "");
        assert_eq!(field(&v, "missing"), "");
        assert_eq!(time_or(&v, "expires_at", "never"), "never");
    }
}
