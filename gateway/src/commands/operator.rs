//! The commands that need the database.

use anyhow::Context;
use events::Source;
use serde_json::json;

use super::{TokenCommand, TokenOutput, UserCommand};
use crate::accounts::users::Requester;
use crate::accounts::{api_tokens, users, AccountError};
use crate::settings::{Env, Settings};
use crate::startup::{self, Application, Core};

fn settings() -> anyhow::Result<Settings> {
    Ok(Settings::from_env(&Env::load())?)
}

fn requester(core: &Core) -> Requester {
    Requester {
        actor: crate::audit::operator_actor(),
        source: Source {
            ip: None,
            user_agent: Some(format!("rack-gateway-server/{}", startup::VERSION)),
            request_id: None,
            instance: Some(core.instance.clone()),
        },
    }
}

async fn open() -> anyhow::Result<Core> {
    let settings = settings()?;
    Core::open(&settings, format!("cli-{}", uuid::Uuid::new_v4())).await
}

/// Account errors are the user's to fix: print them plainly.
fn refused(error: AccountError) -> anyhow::Error {
    anyhow::Error::msg(error.to_string())
}

pub async fn serve() -> anyhow::Result<i32> {
    let settings = settings()?;
    let app = Application::build(settings).await?;
    tracing::info!(port = app.port(), "rack-gateway listening");
    app.run_until_stopped(startup::shutdown_signal()).await?;
    Ok(0)
}

pub async fn migrate() -> anyhow::Result<i32> {
    let settings = settings()?;
    let core = Core::open(&settings, "migrate".into()).await?;
    let chain = core.appender.chain().to_owned();
    core.close().await;
    println!("migrations applied; chain {chain}");
    Ok(0)
}

pub async fn user(command: UserCommand) -> anyhow::Result<i32> {
    let core = open().await?;
    let by = requester(&core);
    let result = run_user(&core, &by, command).await;
    core.close().await;
    result
}

async fn run_user(core: &Core, by: &Requester, command: UserCommand) -> anyhow::Result<i32> {
    let (pool, appender) = (&core.pool, &core.appender);
    match command {
        UserCommand::Add { email, role, name } => {
            let user = users::add(pool, appender, by, &email, &role, name.as_deref())
                .await
                .map_err(refused)?;
            println!("added {} ({}), id {}", user.email, user.role, user.id);
        }
        UserCommand::SetRole { email, role } => {
            match users::set_role(pool, appender, by, &email, &role)
                .await
                .map_err(refused)?
            {
                Some(user) => println!("{} is now {}", user.email, user.role),
                None => println!("{email} already has role {role}; nothing changed"),
            }
        }
        UserCommand::Disable { email, reason } => {
            let (user, sessions) = users::disable(pool, appender, by, &email, reason.as_deref())
                .await
                .map_err(refused)?;
            println!("disabled {}; revoked {sessions} session(s)", user.email);
        }
        UserCommand::List { json } => {
            let list = projections::users::list(pool).await.context("list users")?;
            if json {
                println!("{}", serde_json::to_string_pretty(&list)?);
            } else {
                println!(
                    "{:<36}  {:<32}  {:<9}  {:<8}  NAME",
                    "ID", "EMAIL", "ROLE", "STATUS"
                );
                for u in list {
                    println!(
                        "{:<36}  {:<32}  {:<9}  {:<8}  {}",
                        u.id,
                        u.email,
                        u.role,
                        if u.disabled { "disabled" } else { "active" },
                        u.name.unwrap_or_default()
                    );
                }
            }
        }
    }
    Ok(0)
}

pub async fn token(command: TokenCommand) -> anyhow::Result<i32> {
    let core = open().await?;
    let by = requester(&core);
    let result = run_token(&core, &by, command).await;
    core.close().await;
    result
}

async fn run_token(core: &Core, by: &Requester, command: TokenCommand) -> anyhow::Result<i32> {
    let (pool, appender) = (&core.pool, &core.appender);
    match command {
        TokenCommand::Create {
            name,
            role,
            user,
            expires_at,
            output,
        } => {
            let created = api_tokens::create(
                pool,
                appender,
                by,
                api_tokens::NewToken {
                    name: &name,
                    role: &role,
                    user_email: user.as_deref(),
                    expires_at: expires_at.as_deref(),
                },
            )
            .await
            .map_err(refused)?;
            let t = &created.token;
            match output {
                TokenOutput::Token => println!("{}", created.secret),
                TokenOutput::Json => println!(
                    "{}",
                    serde_json::to_string_pretty(&json!({
                        "id": t.id, "name": t.name, "role": t.role, "user_email": t.user_email,
                        "expires_at": t.expires_at, "created_at": t.created_at, "token": created.secret,
                    }))?
                ),
                TokenOutput::Text => {
                    println!(
                        "created API token {:?} (id {}, role {}, expires {})",
                        t.name,
                        t.id,
                        t.role,
                        t.expires_at
                            .map(|e| e.to_rfc3339())
                            .unwrap_or_else(|| "never".into())
                    );
                    println!("token (shown once; store it now):");
                    println!("{}", created.secret);
                }
            }
        }
        TokenCommand::Revoke { id, reason } => {
            let t = api_tokens::revoke(pool, appender, by, &id, reason.as_deref())
                .await
                .map_err(refused)?;
            println!("revoked API token {:?} ({})", t.name, t.id);
        }
        TokenCommand::List { json } => {
            let list = projections::api_tokens::list(pool)
                .await
                .context("list tokens")?;
            if json {
                println!("{}", serde_json::to_string_pretty(&list)?);
            } else {
                println!(
                    "{:<36}  {:<24}  {:<8}  {:<8}  {:<25}  OWNER",
                    "ID", "NAME", "ROLE", "STATUS", "EXPIRES"
                );
                let now = chrono::Utc::now();
                for t in list {
                    let status = if t.revoked_at.is_some() {
                        "revoked"
                    } else if t.is_active(now) {
                        "active"
                    } else {
                        "expired"
                    };
                    println!(
                        "{:<36}  {:<24}  {:<8}  {:<8}  {:<25}  {}",
                        t.id,
                        t.name,
                        t.role,
                        status,
                        t.expires_at
                            .map(|e| e.to_rfc3339())
                            .unwrap_or_else(|| "never".into()),
                        t.user_email.unwrap_or_default()
                    );
                }
            }
        }
    }
    Ok(0)
}

pub async fn rebuild(check: bool) -> anyhow::Result<i32> {
    let settings = settings()?;
    let core = Core::open(&settings, "rebuild".into()).await?;
    let pool = core.pool.clone();
    let result = if check {
        let (report, differences) = projections::rebuild::check(&pool).await?;
        if differences.is_empty() {
            println!(
                "projections match the chain: {} events read, {} folded",
                report.events, report.folded
            );
            Ok(0)
        } else {
            for difference in &differences {
                println!("DIFFERENCE {difference}");
            }
            println!(
                "{} difference(s) between the live tables and the chain",
                differences.len()
            );
            Ok(1)
        }
    } else {
        let report = projections::rebuild::rebuild(&pool).await?;
        println!(
            "rebuilt projections from {} events ({} folded)",
            report.events, report.folded
        );
        Ok(0)
    };
    core.close().await;
    result
}
