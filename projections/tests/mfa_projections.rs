//! The MFA projections against a real database: every `mfa.*` event and the
//! lock folded in the appending transaction, invariants refused, and
//! `rebuild --check` agreeing after all of it (and naming a hand-edited row).

use std::sync::Arc;
use std::time::Duration;

use events::catalogue::*;
use events::store::{self, AppendError, Appender, AppenderConfig, AppenderMetrics};
use events::{Actor, Draft};
use projections::{mfa, rebuild, Projector};
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

const EMAIL: &str = "dee@example.com";

fn enrolled(user: Uuid, method: Uuid, kind: &str) -> MfaMethodEnrolled {
    MfaMethodEnrolled {
        method_id: method,
        user_id: user,
        email: EMAIL.into(),
        kind: kind.into(),
        label: "Phone".into(),
        cli_compatible: true,
        fingerprint: "0123456789abcdef".into(),
    }
}

fn verified(user: Uuid, session: Uuid, method: Uuid, login: bool) -> MfaVerificationSucceeded {
    MfaVerificationSucceeded {
        user_id: user,
        email: EMAIL.into(),
        session_id: Some(session),
        method_id: Some(method),
        kind: "totp".into(),
        purpose: if login { "login" } else { "step_up" }.into(),
        channel: "cli".into(),
        device: None,
        verifies_session: login,
        opens_step_up: !login,
    }
}

#[tokio::test]
async fn mfa_events_fold_and_rebuild_agrees() {
    let (_db, pool, appender) = setup().await;
    let user = Uuid::new_v4();
    let a = |p: Draft| appender.append(p);
    a(draft(&UserCreated {
        user_id: user,
        email: EMAIL.into(),
        name: None,
        role: "deployer".into(),
    }))
    .await
    .unwrap();
    let session = Uuid::new_v4();
    a(draft(&SessionCreated {
        session_id: session,
        user_id: user,
        email: EMAIL.into(),
        channel: "cli".into(),
        token_sha256: "cd".repeat(32),
        device_id: None,
        device_name: None,
        device_os: None,
        client_version: None,
        expires_at: "2030-01-01T00:00:00Z".into(),
    }))
    .await
    .unwrap();
    let totp = Uuid::new_v4();
    let key = Uuid::new_v4();
    a(draft(&enrolled(user, totp, "totp"))).await.unwrap();
    a(draft(&enrolled(user, key, "webauthn"))).await.unwrap();
    // Enrolling twice under one id, or for nobody, is refused.
    assert!(matches!(
        a(draft(&enrolled(user, totp, "totp"))).await,
        Err(AppendError::Rejected(_))
    ));
    assert!(matches!(
        a(draft(&enrolled(Uuid::new_v4(), Uuid::new_v4(), "totp"))).await,
        Err(AppendError::Rejected(_))
    ));

    // Sign-in verification, then a step-up.
    a(draft(&verified(user, session, totp, true)))
        .await
        .unwrap();
    let s = mfa::session_state(&pool, session).await.unwrap().unwrap();
    assert!(s.mfa_verified);
    assert_eq!(s.mfa_method.as_deref(), Some("totp"));
    assert!(
        s.recent_step_up_at.is_none(),
        "sign-in opens no step-up window"
    );
    a(draft(&verified(user, session, totp, false)))
        .await
        .unwrap();
    let s = mfa::session_state(&pool, session).await.unwrap().unwrap();
    assert!(s.mfa_verified && s.recent_step_up_at.is_some());

    a(draft(&MfaMethodRenamed {
        method_id: totp,
        user_id: user,
        label: "Work phone".into(),
        previous_label: "Phone".into(),
    }))
    .await
    .unwrap();
    a(draft(&MfaPreferredMethodSet {
        user_id: user,
        method_id: Some(key),
    }))
    .await
    .unwrap();
    a(draft(&MfaWebauthnCounterRegressed {
        method_id: key,
        user_id: user,
        stored_counter: 5,
        presented_counter: 2,
    }))
    .await
    .unwrap();
    // A disabled credential cannot verify.
    assert!(matches!(
        a(draft(&verified(user, session, key, false))).await,
        Err(AppendError::Rejected(_))
    ));
    a(draft(&MfaMethodRemoved {
        method_id: key,
        user_id: user,
        kind: "webauthn".into(),
        label: "Phone".into(),
        reason: "owner".into(),
    }))
    .await
    .unwrap();
    let methods = mfa::methods_of(&pool, user).await.unwrap();
    assert_eq!(methods.len(), 1);
    assert_eq!(methods[0].label, "Work phone");
    let state = mfa::user_state(&pool, user).await.unwrap().unwrap();
    assert_eq!(
        state.mfa_preferred_method, None,
        "removing clears the preference"
    );

    // Backup codes: a set, one used once, then replaced.
    let set = Uuid::new_v4();
    let hmacs: Vec<String> = (0..10).map(|i| format!("{i:02x}").repeat(32)).collect();
    a(draft(&MfaBackupCodesGenerated {
        user_id: user,
        set_id: set,
        code_hmacs: hmacs.clone(),
    }))
    .await
    .unwrap();
    let used = MfaBackupCodeUsed {
        user_id: user,
        set_id: set,
        index: 3,
        remaining: 9,
        session_id: Some(session),
        purpose: "step_up".into(),
        channel: "web".into(),
    };
    a(draft(&used)).await.unwrap();
    assert!(matches!(
        a(draft(&used)).await,
        Err(AppendError::Rejected(_))
    ));
    assert_eq!(
        mfa::unused_backup_codes(&pool, user).await.unwrap().len(),
        9
    );
    a(draft(&MfaBackupCodesGenerated {
        user_id: user,
        set_id: Uuid::new_v4(),
        code_hmacs: hmacs,
    }))
    .await
    .unwrap();
    assert_eq!(
        mfa::unused_backup_codes(&pool, user).await.unwrap().len(),
        10
    );

    // Trusted devices.
    let device = Uuid::new_v4();
    a(draft(&MfaTrustedDeviceTrusted {
        device_id: device,
        user_id: user,
        token_sha256: "ef".repeat(32),
        label: Some("Firefox".into()),
        expires_at: "2030-01-01T00:00:00Z".into(),
    }))
    .await
    .unwrap();
    let revoked = MfaTrustedDeviceRevoked {
        device_id: device,
        user_id: user,
        reason: "owner".into(),
    };
    a(draft(&revoked)).await.unwrap();
    assert!(matches!(
        a(draft(&revoked)).await,
        Err(AppendError::Rejected(_))
    ));

    // The lock.
    let locked = UserLocked {
        user_id: user,
        email: EMAIL.into(),
        reason: "mfa_failures".into(),
        failures: 10,
    };
    a(draft(&locked)).await.unwrap();
    assert!(matches!(
        a(draft(&locked)).await,
        Err(AppendError::Rejected(_))
    ));
    assert!(mfa::user_state(&pool, user)
        .await
        .unwrap()
        .unwrap()
        .locked_at
        .is_some());
    a(draft(&UserUnlocked {
        user_id: user,
        email: EMAIL.into(),
    }))
    .await
    .unwrap();
    a(draft(&locked)).await.unwrap();

    let (_, differences) = rebuild::check(&pool).await.unwrap();
    assert!(differences.is_empty(), "{differences:?}");

    sqlx::query("UPDATE sessions SET recent_step_up_at = now() + interval '1 day'")
        .execute(&pool)
        .await
        .unwrap();
    sqlx::query("UPDATE mfa_backup_codes SET used_at = NULL WHERE idx = 0")
        .execute(&pool)
        .await
        .unwrap();
    let (_, differences) = rebuild::check(&pool).await.unwrap();
    let tables: Vec<&str> = differences.iter().map(|d| d.table.as_str()).collect();
    assert_eq!(tables, ["sessions"], "{differences:?}");
    sqlx::query("UPDATE mfa_backup_codes SET code_hmac = 'x' WHERE idx = 0")
        .execute(&pool)
        .await
        .unwrap();
    let (_, differences) = rebuild::check(&pool).await.unwrap();
    assert!(differences.iter().any(|d| d.table == "mfa_backup_codes"));
    rebuild::rebuild(&pool).await.unwrap();
    let (_, differences) = rebuild::check(&pool).await.unwrap();
    assert!(differences.is_empty(), "{differences:?}");
}
