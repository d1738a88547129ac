//! Users the settings name (`ADMIN_USERS`, `DEPLOYER_USERS`,
//! `OPERATIONS_USERS`, `VIEWER_USERS`) are created at start, each once, as
//! `user.created` events through `accounts::users::add` (actor: the gateway
//! itself). A user who already exists is left exactly as they are: the lists
//! bootstrap access, they do not override what admins changed since.

use events::store::Appender;
use events::{Actor, Source};
use sqlx::PgPool;

use crate::accounts::users::{self, Requester};
use crate::accounts::AccountError;
use crate::settings::SeedUser;

/// Create the missing users; returns how many were created.
pub async fn provision(
    pool: &PgPool,
    appender: &Appender,
    instance: &str,
    seeds: &[SeedUser],
) -> Result<usize, AccountError> {
    let by = Requester {
        actor: Actor::system("gateway"),
        source: Source {
            instance: Some(instance.to_owned()),
            ..Source::default()
        },
    };
    let mut created = 0;
    for seed in seeds {
        if projections::users::by_email(pool, &seed.email)
            .await?
            .is_some()
        {
            continue;
        }
        match users::add(pool, appender, &by, &seed.email, seed.role.as_str(), None).await {
            Ok(user) => {
                tracing::info!(email = %user.email, role = %user.role, "user provisioned from settings");
                created += 1;
            }
            // Another replica starting at the same moment created them first.
            Err(AccountError::Conflict(_)) => {}
            Err(e) => return Err(e),
        }
    }
    Ok(created)
}
