//! Projections against a real database: folded in the appending transaction,
//! invariants enforced without writing the event, and `rebuild --check`
//! catching a hand-edited row.

use std::sync::Arc;
use std::time::Duration;

use events::catalogue::{
    ApiTokenCreated, ApiTokenRevoked, EventPayload, SessionCreated, SessionRevoked, UserCreated,
    UserDisabled, UserRoleChanged,
};
use events::store::{self, AppendError, Appender, AppenderConfig, AppenderMetrics};
use events::{Actor, Draft};
use projections::{api_tokens, rebuild, sessions, users, Projector};
use sqlx::PgPool;
use uuid::Uuid;

async fn setup() -> (testkit::TestDatabase, PgPool, Appender) {
    let db = testkit::fresh_database().await;
    let pool = store::connect_pool(&db.url, 4).await.unwrap();
    store::migrate(&pool).await.unwrap();
    let chain = store::ensure_chain_id(&pool).await.unwrap();
    let (appender, _task) = Appender::spawn(
        store::connect_options(&db.url).unwrap(),
        AppenderConfig {
            chain,
            instance: "test".into(),
            append_timeout: Duration::from_secs(5),
        },
        Arc::new(Projector),
        AppenderMetrics::default(),
    );
    (db, pool, appender)
}

fn draft<P: EventPayload>(payload: &P) -> Draft {
    payload.draft(Actor::system("root"))
}

fn user(email: &str, role: &str) -> (Uuid, Draft) {
    let id = Uuid::new_v4();
    let d = draft(&UserCreated {
        user_id: id,
        email: email.into(),
        name: Some("Someone".into()),
        role: role.into(),
    });
    (id, d)
}

/// A mixed workload touching every projection.
async fn mixed_workload(appender: &Appender) -> (Uuid, Uuid, Uuid) {
    let (admin, d) = user("admin@example.com", "admin");
    appender.append(d).await.unwrap();
    let (viewer, d) = user("viewer@example.com", "viewer");
    appender.append(d).await.unwrap();
    appender
        .append(draft(&UserRoleChanged {
            user_id: viewer,
            email: "viewer@example.com".into(),
            role: "ops".into(),
            previous_role: "viewer".into(),
        }))
        .await
        .unwrap();
    let token = Uuid::new_v4();
    appender
        .append(draft(&ApiTokenCreated {
            token_id: token,
            name: "ci".into(),
            token_sha256: "ab".repeat(32),
            role: "cicd".into(),
            user_id: Some(admin),
            user_email: Some("admin@example.com".into()),
            expires_at: Some("2030-01-01T00:00:00Z".into()),
        }))
        .await
        .unwrap();
    let session = Uuid::new_v4();
    appender
        .append(draft(&SessionCreated {
            session_id: session,
            user_id: viewer,
            email: "viewer@example.com".into(),
            channel: "cli".into(),
            token_sha256: "cd".repeat(32),
            device_id: Some("dev-1".into()),
            device_name: Some("laptop".into()),
            device_os: Some("linux".into()),
            client_version: Some("0.1.0".into()),
            expires_at: "2030-01-01T00:00:00Z".into(),
        }))
        .await
        .unwrap();
    (admin, viewer, token)
}

#[tokio::test]
async fn events_fold_into_rows_in_the_same_transaction() {
    let (_db, pool, appender) = setup().await;
    let (_admin, viewer, token) = mixed_workload(&appender).await;
    let v = users::by_email(&pool, "VIEWER@example.com")
        .await
        .unwrap()
        .unwrap();
    assert_eq!((v.id, v.role.as_str(), v.disabled), (viewer, "ops", false));
    let t = api_tokens::by_sha256(&pool, &"ab".repeat(32))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (t.id, t.name.as_str(), t.created_by.as_deref()),
        (token, "ci", Some("root"))
    );
    assert!(t.is_active(chrono::Utc::now()));
    let s = sessions::for_user(&pool, viewer).await.unwrap();
    assert_eq!(s.len(), 1);
    assert_eq!(s[0].channel, "cli");
}

#[tokio::test]
async fn invariants_refuse_the_event_and_write_nothing() {
    let (_db, pool, appender) = setup().await;
    let (_admin, viewer, token) = mixed_workload(&appender).await;
    let head_before = appender.head_seq();

    let (_, dup) = user("admin@example.com", "viewer");
    assert_eq!(
        appender.append(dup).await.unwrap_err(),
        AppendError::Rejected("user admin@example.com already exists".into())
    );
    let unknown = draft(&UserRoleChanged {
        user_id: Uuid::new_v4(),
        email: "nobody@example.com".into(),
        role: "admin".into(),
        previous_role: "viewer".into(),
    });
    assert!(matches!(
        appender.append(unknown).await,
        Err(AppendError::Rejected(_))
    ));
    let revoke = |reason: &str| {
        draft(&ApiTokenRevoked {
            token_id: token,
            name: "ci".into(),
            reason: Some(reason.into()),
        })
    };
    appender.append(revoke("rotated")).await.unwrap();
    assert!(matches!(
        appender.append(revoke("again")).await,
        Err(AppendError::Rejected(_))
    ));
    // A malformed payload is refused too.
    let malformed = Draft::new(
        UserCreated::TYPE,
        Actor::system("root"),
        serde_json::json!({"email": 5}),
    );
    assert!(matches!(
        appender.append(malformed).await,
        Err(AppendError::Rejected(_))
    ));

    assert_eq!(
        appender.head_seq(),
        head_before + 1,
        "only the first revoke was appended"
    );
    let head = store::head(&pool, appender.chain())
        .await
        .unwrap()
        .unwrap()
        .0;
    assert_eq!(head, head_before + 1);
    let v = users::by_id(&pool, viewer).await.unwrap().unwrap();
    assert_eq!(v.role, "ops");
}

#[tokio::test]
async fn rebuild_check_passes_then_names_a_hand_edited_row_and_rebuild_repairs_it() {
    let (_db, pool, appender) = setup().await;
    let (_admin, viewer, _token) = mixed_workload(&appender).await;
    appender
        .append(draft(&UserDisabled {
            user_id: viewer,
            email: "viewer@example.com".into(),
            reason: None,
        }))
        .await
        .unwrap();
    let session = sessions::for_user(&pool, viewer).await.unwrap()[0].id;
    appender
        .append(draft(&SessionRevoked {
            session_id: session,
            user_id: viewer,
            email: "viewer@example.com".into(),
            reason: "user_disabled".into(),
        }))
        .await
        .unwrap();

    let (report, differences) = rebuild::check(&pool).await.unwrap();
    assert!(differences.is_empty(), "{differences:?}");
    assert_eq!(report.folded, 7);

    sqlx::query("UPDATE users SET role = 'admin' WHERE email = 'viewer@example.com'")
        .execute(&pool)
        .await
        .unwrap();
    sqlx::query("DELETE FROM api_tokens")
        .execute(&pool)
        .await
        .unwrap();
    let (_, differences) = rebuild::check(&pool).await.unwrap();
    assert_eq!(differences.len(), 2, "{differences:?}");
    let users_diff = differences.iter().find(|d| d.table == "users").unwrap();
    assert_eq!(users_diff.key, format!("id={viewer}"));
    assert!(
        users_diff
            .detail
            .contains(r#"role: live "admin", rebuilt "ops""#),
        "{}",
        users_diff.detail
    );
    let tokens_diff = differences
        .iter()
        .find(|d| d.table == "api_tokens")
        .unwrap();
    assert!(tokens_diff.detail.contains("missing from the live table"));
    // The scratch schema is gone.
    let schemas: i64 =
        sqlx::query_scalar("SELECT count(*) FROM pg_namespace WHERE nspname LIKE 'rgw_check_%'")
            .fetch_one(&pool)
            .await
            .unwrap();
    assert_eq!(schemas, 0);

    let report = rebuild::rebuild(&pool).await.unwrap();
    assert_eq!(report.folded, 7);
    let (_, differences) = rebuild::check(&pool).await.unwrap();
    assert!(differences.is_empty(), "{differences:?}");
    assert_eq!(
        users::by_id(&pool, viewer).await.unwrap().unwrap().role,
        "ops"
    );
}
