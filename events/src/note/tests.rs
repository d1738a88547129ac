//! Known-answer tests from Go's `golang.org/x/mod/sumdb/note`, repository
//! golang/mod at commit fe2ec04f7c3c3aa6fad97631aafcff6e49e2d1db:
//! `sumdb/note/note.go` (package doc example), `sumdb/note/note_test.go`
//! (`TestNewVerifier`, `TestNewSigner`, `TestSign`, `TestOpen`) and
//! `sumdb/note/example_test.go` (`ExampleSign_add_signatures`, whose EnochRoot
//! key comes from `GenerateKey` reading an all-zero "random" stream, i.e. the
//! Ed25519 seed of 32 zero bytes).

use super::*;

const PETER_SKEY: &str =
    "PRIVATE+KEY+PeterNeumann+c74f20a3+AYEKFALVFGyNhPJEMzD1QIDr+Y7hfZx09iUvxdXHKDFz";
const PETER_VKEY: &str = "PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW";
const ENOCH_VKEY: &str = "EnochRoot+af0cfe78+ATtqJ7zOtqQtYqOo0CpvDXNlMhV3HeJDpjrASKGLWdop";
const TEXT: &str = "If you think cryptography is the answer to your problem,\n\
                    then you don't know what your problem is.\n";
const PETER_SIG: &str = "— PeterNeumann x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2pZSNXgKvqfqdngotpRZb6KE6RyyBwJnAM=\n";
const ENOCH_SIG: &str = "— EnochRoot rwz+eBzmZa0SO3NbfRGzPCpDckykFXSdeX+MNtCOXm2/5n2tiOHp+vAF1aGrQ5ovTG01oOTGwnWLox33WWd1RvMc+QQ=\n";

fn peter() -> Verifier {
    Verifier::from_vkey(PETER_VKEY).unwrap()
}

fn enoch() -> Verifier {
    Verifier::from_vkey(ENOCH_VKEY).unwrap()
}

fn is_malformed(err: &NoteError) -> bool {
    matches!(
        err,
        NoteError::Malformed(_) | NoteError::BadBase64 { .. } | NoteError::TooManySignatures
    )
}

#[test]
fn go_keys_parse_and_round_trip() {
    let signer = Signer::from_skey(PETER_SKEY).unwrap();
    assert_eq!(signer.name(), "PeterNeumann");
    assert_eq!(signer.key_id(), 0xc74f20a3);
    assert_eq!(signer.verifier(), peter());
    assert_eq!(peter().to_vkey(), PETER_VKEY);
    assert_eq!(peter().key_id(), 0xc74f20a3);
    assert_eq!(enoch().name(), "EnochRoot");
    assert_eq!(enoch().to_vkey(), ENOCH_VKEY);
}

#[test]
fn signer_debug_does_not_show_the_secret() {
    let signer = Signer::from_skey(PETER_SKEY).unwrap();
    // Exactly the public parts: nothing derived from the seed can appear.
    assert_eq!(
        format!("{signer:?}"),
        r#"Signer { name: "PeterNeumann", key_id: c74f20a3, .. }"#
    );
}

/// `TestSign` and the package doc: our note is Go's, byte for byte.
#[test]
fn sign_reproduces_go_output() {
    let signer = Signer::from_skey(PETER_SKEY).unwrap();
    let note = sign(TEXT, &[&signer]).unwrap();
    assert_eq!(note, format!("{TEXT}\n{PETER_SIG}"));
    assert_eq!(
        sign("abc", &[&signer]),
        Err(NoteError::MalformedText("must end with a newline".into()))
    );
}

/// `ExampleSign_add_signatures`: the EnochRoot key from an all-zero seed.
#[test]
fn zero_seed_key_and_double_signature_match_go() {
    let enoch_signer = Signer::from_ed25519_seed("EnochRoot", &[0; 32]).unwrap();
    assert_eq!(enoch_signer.key_id(), 0xaf0cfe78);
    assert_eq!(enoch_signer.verifier().to_vkey(), ENOCH_VKEY);
    let skey = format!(
        "PRIVATE+KEY+EnochRoot+af0cfe78+{}",
        BASE64.encode([[1u8].as_slice(), &[0; 32]].concat())
    );
    assert_eq!(Signer::from_skey(&skey).unwrap().verifier(), enoch());

    let peter_signer = Signer::from_skey(PETER_SKEY).unwrap();
    let note = sign(TEXT, &[&peter_signer, &enoch_signer]).unwrap();
    assert_eq!(note, format!("{TEXT}\n{PETER_SIG}{ENOCH_SIG}"));
}

/// The package doc's `Open` example.
#[test]
fn open_go_note() {
    let opened = open(&format!("{TEXT}\n{PETER_SIG}"), &[peter()]).unwrap();
    assert_eq!(
        opened,
        OpenedNote {
            text: TEXT.into(),
            verified: vec!["PeterNeumann".into()],
            unverified: vec![],
        }
    );
}

/// `TestOpen`.
#[test]
fn open_matches_go_rules() {
    let both = format!("{TEXT}\n{PETER_SIG}{ENOCH_SIG}");

    // One signature verified, one not.
    let opened = open(&both, &[peter()]).unwrap();
    assert_eq!(opened.text, TEXT);
    assert_eq!(opened.verified, vec!["PeterNeumann".to_string()]);
    assert_eq!(
        opened.unverified,
        vec![("EnochRoot".to_string(), 0xaf0cfe78)]
    );

    // Both verified.
    let opened = open(&both, &[peter(), enoch()]).unwrap();
    assert_eq!(
        opened.verified,
        vec!["PeterNeumann".to_string(), "EnochRoot".to_string()]
    );
    assert!(opened.unverified.is_empty());

    // Neither verified.
    let err = open(&both, &[]).unwrap_err();
    assert_eq!(
        err,
        NoteError::Unverified {
            signatures: vec![
                ("PeterNeumann".into(), 0xc74f20a3),
                ("EnochRoot".into(), 0xaf0cfe78)
            ]
        }
    );
    assert_eq!(
        err.to_string(),
        "note has no verifiable signatures (signed only by PeterNeumann+c74f20a3, EnochRoot+af0cfe78)"
    );

    // Too many signatures, verified or not.
    let many = format!("{TEXT}\n{}", PETER_SIG.repeat(101));
    assert_eq!(open(&many, &[peter()]), Err(NoteError::TooManySignatures));
    assert_eq!(open(&many, &[]), Err(NoteError::TooManySignatures));
    assert!(open(&format!("{TEXT}\n{}", PETER_SIG.repeat(100)), &[peter()]).is_ok());

    // Invalid signature by a known key.
    let forged = format!("{TEXT}\n{}ABCD{}", &PETER_SIG[..60], &PETER_SIG[60..]);
    assert_eq!(
        open(&forged, &[peter()]),
        Err(NoteError::InvalidSignature {
            name: "PeterNeumann".into(),
            key_id: 0xc74f20a3
        })
    );

    // Repeated identical lines are dropped; distinct unknown ones are kept.
    let enoch_abcd = format!("{}ABCD{}", &ENOCH_SIG[..60], &ENOCH_SIG[60..]);
    let repeated = format!("{TEXT}\n{PETER_SIG}{PETER_SIG}{ENOCH_SIG}{ENOCH_SIG}{enoch_abcd}");
    let opened = open(&repeated, &[peter()]).unwrap();
    assert_eq!(opened.verified, vec!["PeterNeumann".to_string()]);
    assert_eq!(
        opened.unverified,
        vec![
            ("EnochRoot".to_string(), 0xaf0cfe78),
            ("EnochRoot".to_string(), 0xaf0cfe78)
        ]
    );

    // Invalid encoded message syntax.
    let bad_messages = [
        TEXT.to_string(),
        format!("{TEXT}\n"),
        format!("{TEXT}\n{}", &PETER_SIG[..PETER_SIG.len() - 1]),
        format!("\x01{TEXT}\n{PETER_SIG}"),
        format!("{TEXT}\n— Bad Name x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2pZSNXgKvqfqdngotpRZb6KE6RyyBwJnAM="),
        format!("{TEXT}\n{PETER_SIG}Unexpected line.\n"),
    ];
    for message in &bad_messages {
        let err = open(message, &[peter()]).unwrap_err();
        assert!(is_malformed(&err), "{message:?} gave {err:?}");
    }
    let not_utf8 = [
        b"\xff".as_slice(),
        TEXT.as_bytes(),
        b"\n",
        PETER_SIG.as_bytes(),
    ]
    .concat();
    assert!(is_malformed(
        &open_bytes(&not_utf8, &[peter()]).unwrap_err()
    ));
    assert_eq!(
        open_bytes(format!("{TEXT}\n{PETER_SIG}").as_bytes(), &[peter()])
            .unwrap()
            .text,
        TEXT
    );
}

/// Where we are stricter than Go, on purpose (see the module doc).
#[test]
fn open_is_strict_where_go_is_lenient() {
    // A second, different signature by a trusted key: a forged one is
    // invalid (Go would skip it), a valid one is a duplicate.
    let forged_second = format!(
        "{TEXT}\n{PETER_SIG}{}ABCD{}",
        &PETER_SIG[..60],
        &PETER_SIG[60..]
    );
    assert_eq!(
        open(&forged_second, &[peter()]),
        Err(NoteError::InvalidSignature {
            name: "PeterNeumann".into(),
            key_id: 0xc74f20a3
        })
    );
    // Same verifier listed twice is fine; different keys under one name+id are ambiguous.
    let note = format!("{TEXT}\n{PETER_SIG}");
    assert!(open(&note, &[peter(), enoch(), peter()]).is_ok());
    let impostor = Verifier {
        name: "PeterNeumann".into(),
        key_id: 0xc74f20a3,
        key: enoch().key,
    };
    assert_eq!(
        open(&note, &[peter(), impostor]),
        Err(NoteError::AmbiguousKey {
            name: "PeterNeumann".into(),
            key_id: 0xc74f20a3
        })
    );
    // Non-canonical base64 (non-zero trailing bits: "M=" → "N=").
    let sloppy = note.replace("JnAM=", "JnAN=");
    assert_eq!(
        open(&sloppy, &[peter()]),
        Err(NoteError::BadBase64 { line: 1 })
    );
    // Truncated signature (67 bytes instead of 4 + 64).
    let short = note.replace("x08go/ZJ", "x08go/");
    assert!(open(&short, &[peter()]).is_err());
}

#[test]
fn duplicate_signers_are_refused_and_text_is_checked() {
    let signer = Signer::from_skey(PETER_SKEY).unwrap();
    assert_eq!(
        sign(TEXT, &[&signer, &signer]),
        Err(NoteError::DuplicateSignature {
            name: "PeterNeumann".into(),
            key_id: 0xc74f20a3
        })
    );
    assert_eq!(sign(TEXT, &[]), Err(NoteError::NoSigners));
    assert!(matches!(
        sign("a\tb\n", &[&signer]),
        Err(NoteError::MalformedText(_))
    ));
    assert!(matches!(
        sign("a\rb\n", &[&signer]),
        Err(NoteError::MalformedText(_))
    ));
}

/// `TestNewVerifier`: every proper substring and every one-byte change fails.
#[test]
fn mangled_verifier_keys_are_rejected() {
    let key = PETER_VKEY.as_bytes();
    for i in 0..=key.len() {
        for j in i + 1..=key.len() {
            if i != 0 || j != key.len() {
                let part = std::str::from_utf8(&key[i..j]).unwrap();
                assert!(Verifier::from_vkey(part).is_err(), "accepted {part:?}");
            }
        }
    }
    for i in 0..key.len() {
        let mut changed = key.to_vec();
        changed[i] += 1;
        let changed = String::from_utf8(changed).unwrap();
        assert!(
            Verifier::from_vkey(&changed).is_err(),
            "accepted {changed:?}"
        );
    }
    // Go's wrong-length key (with a matching id): its base64 also has
    // non-zero trailing bits, which our strict decoding refuses first.
    assert_eq!(
        Verifier::from_vkey(
            "PeterNeumann+cc469956+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TWBADKEY=="
        ),
        Err(NoteError::MalformedVerifierKey("key is not valid base64"))
    );
    // A canonical wrong-length key with a matching id.
    let long_key = [[ALG_ED25519].as_slice(), &[7; 33]].concat();
    let digest = Sha256::new()
        .chain_update(b"Long\n")
        .chain_update(&long_key)
        .finalize();
    let long_vkey = format!(
        "Long+{}+{}",
        hex::encode(&digest[..4]),
        BASE64.encode(&long_key)
    );
    assert_eq!(
        Verifier::from_vkey(&long_vkey),
        Err(NoteError::MalformedVerifierKey(
            "Ed25519 public key must be 32 bytes"
        ))
    );
    // Go's unknown algorithm (with a matching id).
    assert_eq!(
        Verifier::from_vkey("PeterNeumann+173116ae+ZRpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW"),
        Err(NoteError::UnknownAlgorithm(0x65))
    );
    assert_eq!(
        Verifier::from_vkey("PeterNeumann+c74f20a4+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW"),
        Err(NoteError::KeyIdMismatch {
            expected: 0xc74f20a3,
            found: 0xc74f20a4
        })
    );
    assert!(Verifier::from_vkey(
        "PeterNeumann+-74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW"
    )
    .is_err());
    assert!(Verifier::from_vkey(
        "PeterNeumann++74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW"
    )
    .is_err());
}

/// `TestNewSigner`: every proper substring and every one-byte change fails,
/// and no error message repeats the secret.
#[test]
fn mangled_signer_keys_are_rejected() {
    let key = PETER_SKEY.as_bytes();
    let secret = &PETER_SKEY[PETER_SKEY.len() - 44..];
    for i in 0..=key.len() {
        for j in i + 1..=key.len() {
            if i != 0 || j != key.len() {
                let part = std::str::from_utf8(&key[i..j]).unwrap();
                let err = Signer::from_skey(part).unwrap_err();
                assert!(
                    !err.to_string().contains(&secret[4..20]),
                    "{err} leaks the key"
                );
            }
        }
    }
    for i in 0..key.len() {
        let mut changed = key.to_vec();
        changed[i] += 1;
        let changed = String::from_utf8(changed).unwrap();
        assert!(Signer::from_skey(&changed).is_err(), "accepted {changed:?}");
    }
}

#[test]
fn names_follow_go_rules() {
    for good in ["PeterNeumann", "rack-gateway/checkpoints", "例え", "a"] {
        assert!(is_valid_name(good), "{good}");
    }
    for bad in ["", "a b", "a+b", "a\tb", "a\u{a0}b", "a\u{2003}b", "a\nb"] {
        assert!(!is_valid_name(bad), "{bad:?}");
        assert_eq!(generate_key(bad), Err(NoteError::InvalidName(bad.into())));
    }
}

#[test]
fn generated_keys_sign_and_open() {
    let (skey, vkey) = generate_key("rack-gateway-test").unwrap();
    assert!(skey.starts_with("PRIVATE+KEY+rack-gateway-test+"));
    let signer = Signer::from_skey(&skey).unwrap();
    let verifier = Verifier::from_vkey(&vkey).unwrap();
    assert_eq!(signer.verifier(), verifier);
    let note = sign("hello\n", &[&signer]).unwrap();
    assert_eq!(
        open(&note, std::slice::from_ref(&verifier))
            .unwrap()
            .verified,
        vec!["rack-gateway-test".to_string()]
    );
    // Two keys are different keys.
    let (other_skey, _) = generate_key("rack-gateway-test").unwrap();
    assert_ne!(skey, other_skey);
    // A changed text no longer verifies.
    let altered = note.replacen("hello", "jello", 1);
    assert!(matches!(
        open(&altered, &[verifier]),
        Err(NoteError::InvalidSignature { .. })
    ));
}

#[test]
fn texts_with_blank_lines_open_after_the_last_one() {
    let signer = Signer::from_skey(PETER_SKEY).unwrap();
    let text = "first\n\nthird\n";
    let note = sign(text, &[&signer]).unwrap();
    assert_eq!(open(&note, &[peter()]).unwrap().text, text);
}

mod properties {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn open_never_panics_on_arbitrary_bytes(bytes in proptest::collection::vec(any::<u8>(), 0..400)) {
            let _ = open_bytes(&bytes, &[peter(), enoch()]);
        }

        #[test]
        fn open_never_panics_on_arbitrary_text(text in "(\\PC|\n|— ){0,200}") {
            let _ = open(&text, &[peter(), enoch()]);
            let _ = open(&format!("{TEXT}\n{text}"), &[peter(), enoch()]);
        }
    }
}

/// Every single-byte substitution anywhere in a signed note (all positions,
/// all 255 other values) makes it fail to open.
#[test]
fn every_single_byte_change_is_refused() {
    let note = format!("{TEXT}\n{PETER_SIG}").into_bytes();
    for position in 0..note.len() {
        for delta in 1..=255u8 {
            let mut changed = note.clone();
            changed[position] = changed[position].wrapping_add(delta);
            assert!(
                open_bytes(&changed, &[peter()]).is_err(),
                "accepted byte {position} changed by {delta}"
            );
        }
    }
}
