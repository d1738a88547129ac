//! The mock validation server against a client speaking protocol 2.0 over HTTP:
//! valid, replayed, another key's, unknown client, unsigned request, and a
//! forged answer that the client's checks must refuse.

use tools::mock_yubico::{MockYubico, TestKey};
use yubico_otp::{Answer, ProtocolError, Status, VerifyRequest};

const SECRET: &str = "dGVzdC15dWJpY28tc2VjcmV0"; // "test-yubico-secret"

async fn ask(
    url: &str,
    request: &VerifyRequest,
    secret: &str,
    extra: &str,
) -> Result<Status, ProtocolError> {
    let query = request.query(secret).expect("sign");
    let body = reqwest::get(format!("{url}?{query}{extra}"))
        .await
        .expect("request")
        .text()
        .await
        .expect("body");
    Answer::parse(&body).check(SECRET, request)
}

fn request(otp: &str, nonce: &str) -> VerifyRequest {
    VerifyRequest {
        client_id: "87".into(),
        otp: otp.into(),
        nonce: nonce.into(),
    }
}

#[tokio::test]
async fn valid_replayed_foreign_and_forged() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let server = MockYubico::bind(
        "127.0.0.1:0".parse().unwrap(),
        "87",
        SECRET,
        vec![TestKey::dev(0)],
    )
    .await
    .unwrap()
    .with_test_controls();
    let url = server.url();
    let handle = server.spawn();
    let key = TestKey::dev(0);

    let first = handle.mint(&key.public_id).unwrap();
    assert_eq!(
        ask(&url, &request(&first, "nonce0000000000001"), SECRET, "").await,
        Ok(Status::Ok)
    );
    assert_eq!(
        ask(&url, &request(&first, "nonce0000000000002"), SECRET, "").await,
        Ok(Status::ReplayedOtp)
    );
    let second = handle.mint(&key.public_id).unwrap();
    assert_eq!(
        ask(&url, &request(&second, "nonce0000000000003"), SECRET, "").await,
        Ok(Status::Ok)
    );

    // An OTP of a key this server does not hold (another user's YubiKey, elsewhere).
    let stranger = MockYubico::bind(
        "127.0.0.1:0".parse().unwrap(),
        "87",
        SECRET,
        vec![TestKey::dev(1)],
    )
    .await
    .unwrap()
    .mint(&TestKey::dev(1).public_id)
    .unwrap();
    assert_eq!(
        ask(&url, &request(&stranger, "nonce0000000000004"), SECRET, "").await,
        Ok(Status::BadOtp)
    );

    let third = handle.mint(&key.public_id).unwrap();
    let mut unknown = request(&third, "nonce0000000000005");
    unknown.client_id = "99".into();
    assert_eq!(
        ask(&url, &unknown, SECRET, "").await,
        Ok(Status::NoSuchClient)
    );
    assert_eq!(
        ask(&url, &request(&third, "nonce0000000000006"), "b3RoZXI=", "").await,
        Ok(Status::BadSignature)
    );
    assert_eq!(
        ask(
            &url,
            &request(&third, "nonce0000000000007"),
            SECRET,
            "&mock_bad_signature=1"
        )
        .await,
        Err(ProtocolError::Signature)
    );
    handle.shutdown().await.unwrap();
}
