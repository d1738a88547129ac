//! Property tests of the parsers every proxied request goes through (paths,
//! forms, content types, route matching, redaction): thousands of inputs an
//! attacker could send, no panic, and the properties the proxy relies on.

use proptest::prelude::*;

use crate::path::normalize;
use crate::redact::{redact_command, redact_value};
use crate::routes::{self, match_route, request_form};

proptest! {
    #![proptest_config(ProptestConfig { cases: 3000, ..ProptestConfig::default() })]

    /// Any path: refused, or normalised to one the normaliser keeps as it is
    /// (one reading), with no dot segment, empty segment or encoded slash left.
    #[test]
    fn paths_normalise_once_or_are_refused(raw in "(/|[a-zA-Z0-9._~%;:@!$&'()*+,=-]|%2[eEfF]|%25|\\.\\.){0,40}") {
        if let Ok(normalized) = normalize(&raw) {
            let again = normalize(&normalized.path).expect("a normalised path normalises");
            prop_assert_eq!(&again.path, &normalized.path);
            for segment in &normalized.segments {
                prop_assert!(segment != "." && segment != ".." && !segment.is_empty());
                prop_assert!(!segment.contains('/'));
            }
            let lower = normalized.path.to_ascii_lowercase();
            prop_assert!(!lower.contains("%2f") && !lower.contains("//"));
            for method in ["GET", "POST", "PUT", "DELETE"] {
                let method = http::Method::from_bytes(method.as_bytes()).unwrap();
                let _ = match_route(&method, &normalized, false);
                let _ = match_route(&method, &normalized, true);
            }
        }
    }

    /// Any text at all: no panic.
    #[test]
    fn arbitrary_paths_never_panic(raw in proptest::string::string_regex(".{0,300}").unwrap()) {
        let _ = normalize(&raw);
        let _ = normalize(&format!("/{raw}"));
    }

    /// Forms: any bytes parse without panic; what Go's serializer writes reads back exactly.
    #[test]
    fn forms_round_trip_and_never_panic(
        pairs in proptest::collection::vec(("\\PC{0,12}", "\\PC{0,24}"), 0..8),
        noise in proptest::collection::vec(any::<u8>(), 0..200),
    ) {
        let _ = routes::body_fields(
            routes::ROUTES.iter().find(|r| r.handler == "ReleaseCreate").unwrap(),
            Some("application/x-www-form-urlencoded"),
            &noise,
        );
        let encoded = form_urlencoded::Serializer::new(String::new())
            .extend_pairs(pairs.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .finish();
        let read = request_form(Some(&encoded), None);
        prop_assert_eq!(read, pairs);
    }

    /// Content types: any header bytes, on any route, no panic; on a form route
    /// anything but printable ASCII is refused.
    #[test]
    fn content_types_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..80)) {
        if let Ok(value) = http::HeaderValue::from_bytes(&bytes) {
            let mut headers = http::HeaderMap::new();
            headers.insert(http::header::CONTENT_TYPE, value);
            for route in routes::ROUTES.iter() {
                let read = routes::content_type(route, &headers);
                let printable = bytes.iter().all(|b| *b == b'\t' || (0x20..0x7f).contains(b));
                if route.inspect_form && !printable {
                    prop_assert!(read.is_err());
                }
                if let Ok(ct) = read {
                    let _ = route.body_plan(ct.as_deref());
                }
            }
        }
    }

    /// Redaction: no panic on any text, and a token of a known shape planted
    /// anywhere in it never survives.
    #[test]
    fn planted_tokens_never_survive_redaction(
        before in "\\PC{0,40}",
        after in "\\PC{0,40}",
        body in "[A-Za-z0-9]{20,40}",
        kind in 0usize..7,
    ) {
        let token = match kind {
            0 => format!("ghp_{body}"),
            1 => format!("xoxb-{body}"),
            2 => format!("sk_live_{body}"),
            3 => format!("rgw_token_{body}"),
            4 => format!("eyJ{body}.eyJ{body}.{body}"),
            5 => format!("github_pat_{body}"),
            _ => format!("whsec_{body}"),
        };
        let text = format!("{before} {token} {after}");
        for redacted in [redact_value(&text), redact_command(&text)] {
            prop_assert!(!redacted.contains(&token), "{} kept in {}", token, redacted);
        }
        let _ = redact_value(&before);
    }

    /// URL user-info and query values never survive.
    #[test]
    fn url_userinfo_and_query_values_never_survive(
        user in "[a-z]{1,8}",
        password in "[A-Za-z0-9]{12,20}",
        value in "[A-Za-z0-9]{12,20}",
    ) {
        let text = format!("curl https://{user}:{password}@h.example/p?x={value}&y=1");
        let redacted = redact_value(&text);
        prop_assert!(!redacted.contains(&password), "{}", redacted);
        prop_assert!(!redacted.contains(&value), "{}", redacted);
    }
}
