//! A CLI login link cannot phish a session: after the provider, the browser
//! that signed in is shown what it authorises and must press Confirm (a POST
//! form bound to a cookie only it holds); until then `/complete` waits, and
//! the confirmation is recorded.

use reqwest::StatusCode;

use crate::helpers::{person, Role, TestApp};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cli_login_link_sent_to_a_victim_hands_out_nothing_without_their_confirmation() {
    let app = TestApp::build().sign_in().spawn().await;
    // The attacker starts a login and sends its provider URL to the victim.
    let attacker = app.cli_start().await;
    assert_eq!(attacker.user_code.len(), 9, "{}", attacker.user_code);
    let victim = person(Role::Admin);
    let unconfirmed = app.cli_browser_unconfirmed(&attacker, &victim, None).await;
    assert!(
        unconfirmed
            .landing
            .starts_with("/app/cli/auth/confirm?login="),
        "{}",
        unconfirmed.landing
    );
    let cookie = unconfirmed.cookie.clone().expect("a confirmation cookie");

    // Signed in at the provider is not enough: /complete still waits.
    let (status, _, body) = app
        .cli_complete(&attacker.state, &attacker.cli_secret)
        .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    assert_eq!(body["waiting_for"], "confirmation");
    assert!(body.get("token").is_none());

    // The page shows what is being authorised.
    let page = app
        .client
        .get(app.url(&unconfirmed.landing))
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), StatusCode::OK);
    let html = page.text().await.unwrap();
    for shown in [
        attacker.user_code.as_str(),
        "test-laptop",
        "linux",
        "0.1.0-test",
        "127.0.0.1",
        victim.as_str(),
        "method=\"post\"",
    ] {
        assert!(html.contains(shown), "{shown} not on the page: {html}");
    }

    // Without the browser's cookie (the attacker, or another site's page), Confirm does nothing.
    let login_id = unconfirmed
        .landing
        .split("login=")
        .nth(1)
        .unwrap()
        .to_owned();
    let forged = [
        None,
        Some("rgw_cli_confirm_x=y".to_owned()),
        Some(format!(
            "rgw_cli_confirm_{}=wrong",
            uuid::Uuid::parse_str(&login_id).unwrap().simple()
        )),
    ];
    for cookie in forged {
        let mut post = app
            .client
            .post(app.url("/app/cli/auth/confirm"))
            .form(&[("login", login_id.as_str())]);
        if let Some(cookie) = &cookie {
            post = post.header("cookie", cookie);
        }
        let response = post.send().await.unwrap();
        assert_eq!(response.status(), StatusCode::SEE_OTHER);
        let to = response.headers()["location"].to_str().unwrap().to_owned();
        assert!(to.starts_with("/app/auth/error"), "{cookie:?}: {to}");
    }
    // Nor does the right cookie on a cross-site form post.
    let response = app
        .client
        .post(app.url("/app/cli/auth/confirm"))
        .header("cookie", &cookie)
        .header("sec-fetch-site", "cross-site")
        .form(&[("login", login_id.as_str())])
        .send()
        .await
        .unwrap();
    assert!(response.headers()["location"]
        .to_str()
        .unwrap()
        .starts_with("/app/auth/error"));
    let (status, _, _) = app
        .cli_complete(&attacker.state, &attacker.cli_secret)
        .await;
    assert_eq!(status, StatusCode::ACCEPTED);
    assert!(app.events_of("auth.login.confirmed").await.is_empty());
    // The success page is not shown for an unconfirmed login either.
    let success = app
        .client
        .get(app.url(&format!("/app/cli/auth/success?login={login_id}")))
        .send()
        .await
        .unwrap();
    assert_eq!(success.status(), StatusCode::SEE_OTHER);

    // The person who started it (here: whoever holds the page) confirms: now it completes.
    let landing = app.cli_confirm(&unconfirmed, &cookie).await;
    assert!(landing.starts_with("/app/cli/auth/success"), "{landing}");
    let confirmed = app.events_of("auth.login.confirmed").await;
    assert_eq!(confirmed.len(), 1);
    let data = &confirmed[0]["data"];
    assert_eq!(data["user_code"], attacker.user_code.as_str());
    assert_eq!(data["email"], victim.as_str());
    assert_eq!(data["device_name"], "test-laptop");
    assert_eq!(data["started_from"], "127.0.0.1");
    assert_eq!(confirmed[0]["actor"]["email"], victim.as_str());
    // Confirm is single use.
    let again = app.cli_confirm(&unconfirmed, &cookie).await;
    assert!(again.starts_with("/app/auth/error"), "{again}");

    let (status, _, body) = app
        .cli_complete(&attacker.state, &attacker.cli_secret)
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert!(body["token"]
        .as_str()
        .is_some_and(|t| t.starts_with("rgw_sess_")));
    // The confirmation comes before the session in the chain.
    let seq = |t: &'static str| {
        let app = &app;
        async move {
            app.events_of(t).await.last().unwrap()["seq"]
                .as_i64()
                .unwrap()
        }
    };
    assert!(seq("auth.login.confirmed").await < seq("auth.login.succeeded").await);
    app.assert_projections_rebuild().await;
}
