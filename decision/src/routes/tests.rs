use super::*;
use crate::path::normalize;
use crate::rbac::permissions::lowest_role_with;
use std::collections::BTreeSet;

fn m(method: &str, path: &str) -> Result<RouteMatch, RouteError> {
    let method = Method::from_bytes(method.as_bytes()).unwrap();
    match_route(&method, &normalize(path).unwrap(), false)
}

fn m_ws(path: &str) -> Result<RouteMatch, RouteError> {
    match_route(&Method::GET, &normalize(path).unwrap(), true)
}

fn pairs(list: &[(&str, &str)]) -> Vec<(String, String)> {
    list.iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

/// `{app}`, `{name}`, `{key...}` → `{}` / `{...}`: the spec uses several names
/// for the same segment.
fn shape(pattern: &str) -> String {
    let mut out = String::new();
    let mut rest = pattern;
    while let Some(start) = rest.find('{') {
        out.push_str(&rest[..start]);
        let end = rest[start..].find('}').unwrap() + start;
        let inner = &rest[start + 1..end];
        out.push_str(if inner.ends_with("...") {
            "{...}"
        } else {
            "{}"
        });
        rest = &rest[end + 1..];
    }
    out.push_str(rest);
    out
}

fn example_path(pattern: &str) -> String {
    let mut out = String::new();
    let mut rest = pattern;
    let mut n = 0;
    while let Some(start) = rest.find('{') {
        out.push_str(&rest[..start]);
        let end = rest[start..].find('}').unwrap() + start;
        n += 1;
        if rest[start + 1..end].ends_with("...") {
            out.push_str(&format!("tmp/x{n}/obj.tgz"));
        } else {
            out.push_str(&format!("x{n}"));
        }
        rest = &rest[end + 1..];
    }
    out.push_str(rest);
    out
}

struct SpecLine {
    methods: Vec<&'static str>,
    any: bool,
    pattern: &'static str,
    websocket: bool,
}

/// `decision/tests/data/convox-routes.txt`: `METHOD[,METHOD] PATH [ws]`.
fn spec_routes() -> Vec<SpecLine> {
    include_str!("../../tests/data/convox-routes.txt")
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(|l| {
            let mut words = l.split_whitespace();
            let method = words.next().unwrap();
            let pattern = words.next().unwrap();
            let websocket = words.next() == Some("ws");
            let any = method == "ANY";
            let methods = if any {
                vec!["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]
            } else {
                method.split(',').collect()
            };
            SpecLine {
                methods,
                any,
                pattern,
                websocket,
            }
        })
        .collect()
}

#[test]
fn every_spec_route_is_mapped_or_refused() {
    let lines = spec_routes();
    assert!(lines.len() > 100, "the route list looks truncated");
    for line in &lines {
        let path = example_path(line.pattern);
        for method in &line.methods {
            let method = Method::from_bytes(method.as_bytes()).unwrap();
            let got = match_route(&method, &normalize(&path).unwrap(), line.websocket)
                .unwrap_or_else(|e| panic!("{method} {} ({path}): {e}", line.pattern));
            assert_eq!(
                shape(got.route.pattern),
                shape(line.pattern),
                "{method} {path} matched {}",
                got.name()
            );
            assert_eq!(got.route.websocket, line.websocket, "{}", got.name());
        }
    }
}

#[test]
fn the_table_has_no_route_outside_the_spec_list() {
    let listed: BTreeSet<(String, String)> = spec_routes()
        .iter()
        .flat_map(|l| {
            let methods: Vec<String> = if l.any {
                vec!["*".into(), "GET".into(), "HEAD".into()]
            } else {
                l.methods.iter().map(|m| (*m).to_owned()).collect()
            };
            methods
                .into_iter()
                .map(|m| (m, shape(l.pattern)))
                .collect::<Vec<_>>()
        })
        .collect();
    for route in ROUTES {
        assert!(
            listed.contains(&(route.method.to_owned(), shape(route.pattern))),
            "{} is in neither the spec list nor the documented extras",
            route.name()
        );
    }
}

#[test]
fn every_route_is_well_formed() {
    let mut seen = BTreeSet::new();
    for r in ROUTES {
        assert!(
            seen.insert((r.method, r.pattern)),
            "{} is listed twice",
            r.name()
        );
        let parts: Vec<&str> = r.permission.split(':').collect();
        assert!(
            parts.len() == 3 && parts[0] == "convox" && parts.iter().all(|p| !p.is_empty()),
            "{}: bad permission {}",
            r.name(),
            r.permission
        );
        assert!(lowest_role_with(r.permission).is_some(), "{}", r.permission);
        assert!(r.pattern.starts_with('/'));
        assert_eq!(r.websocket, r.kind == RouteKind::WebSocket);
        if r.websocket {
            assert_eq!(r.method, "GET");
        }
        if r.opened_by.is_some() {
            assert!(r.refused.is_some(), "{}", r.name());
        }
        if let Some(why) = r.refused {
            assert!(why.len() > 20, "{}: give the reason", r.name());
        }
    }
}

#[test]
fn params_are_extracted_by_name() {
    let got = m("GET", "/apps/myapp/processes/p-1").unwrap();
    assert_eq!(got.route.handler, "ProcessGet");
    assert_eq!(got.param("app"), Some("myapp"));
    assert_eq!(got.param("pid"), Some("p-1"));
    assert_eq!(got.param("nope"), None);
    assert_eq!(got.name(), "GET /apps/{app}/processes/{pid}");

    let got = m("POST", "/apps/myapp/objects/tmp/abc/def.tgz").unwrap();
    assert_eq!(got.route.handler, "ObjectStore");
    assert_eq!(got.param("key"), Some("tmp/abc/def.tgz"));

    let got = m("DELETE", "/registries/registry.example.com:5000/team").unwrap();
    assert_eq!(got.param("server"), Some("registry.example.com:5000/team"));
}

#[test]
fn the_tgz_export_is_tried_before_the_build() {
    let got = m("GET", "/apps/myapp/builds/B123.tgz").unwrap();
    assert_eq!(got.route.handler, "BuildExport");
    assert_eq!(got.param("id"), Some("B123"));
    let got = m("GET", "/apps/myapp/builds/B123").unwrap();
    assert_eq!(got.route.handler, "BuildGet");
    // gorilla's `[^/]+` needs one character before the suffix.
    assert_eq!(
        m("GET", "/apps/myapp/builds/.tgz").unwrap().route.handler,
        "BuildGet"
    );
    assert_eq!(
        m("POST", "/apps/myapp/builds/import")
            .unwrap()
            .route
            .handler,
        "BuildImport"
    );
}

#[test]
fn unknown_routes_and_methods_are_not_found() {
    for (method, path) in [
        ("GET", "/"),
        ("GET", "/check"),
        ("GET", "/apps/myapp/env"),
        ("GET", "/APPS"),
        ("HEAD", "/apps"),
        ("PATCH", "/apps/myapp"),
        ("POST", "/system"),
        ("GET", "/apps/myapp/objects/"),
        ("POST", "/apps/myapp/objects"),
        ("GET", "/v2"),
        ("DELETE", "/apps/myapp/releases/R1"),
        ("GET", "/api/v1/rack-proxy/apps"),
    ] {
        let path = normalize(path);
        let Ok(path) = path else { continue };
        let method = Method::from_bytes(method.as_bytes()).unwrap();
        assert_eq!(
            match_route(&method, &path, false).unwrap_err(),
            RouteError::NotFound,
            "{method} {}",
            path.path
        );
    }
    assert_eq!(RouteError::NotFound.status(), http::StatusCode::NOT_FOUND);
}

#[test]
fn websockets_match_only_upgrades() {
    assert_eq!(
        m_ws("/apps/myapp/processes/p1/exec").unwrap().route.handler,
        "ProcessExec"
    );
    assert_eq!(
        m("GET", "/apps/myapp/processes/p1/exec").unwrap_err(),
        RouteError::WebSocketMismatch
    );
    assert_eq!(m_ws("/apps").unwrap_err(), RouteError::WebSocketMismatch);
    assert_eq!(
        m_ws("/v2/myapp/manifests/latest").unwrap_err(),
        RouteError::WebSocketMismatch
    );
    assert_eq!(m_ws("/nope").unwrap_err(), RouteError::NotFound);
    assert_eq!(
        RouteError::WebSocketMismatch.status(),
        http::StatusCode::BAD_REQUEST
    );
    let mut h = HeaderMap::new();
    assert!(!is_websocket_upgrade(&h));
    h.insert("upgrade", "WebSocket".parse().unwrap());
    assert!(is_websocket_upgrade(&h));
    h.insert("upgrade", "h2c".parse().unwrap());
    assert!(!is_websocket_upgrade(&h));
}

#[test]
fn any_method_routes_split_reads_from_writes() {
    assert_eq!(
        m("GET", "/v2/myapp/manifests/latest")
            .unwrap()
            .route
            .permission,
        "convox:build:read"
    );
    assert!(m("HEAD", "/v2/myapp/blobs/sha256:1")
        .unwrap()
        .route
        .refused
        .is_none());
    let push = m("PUT", "/v2/myapp/manifests/latest").unwrap();
    assert!(push.route.refused.is_some());
    assert_eq!(push.name(), "PUT /v2/{path...}");
    assert!(m("PATCH", "/v2/myapp/blobs/uploads/u1")
        .unwrap()
        .route
        .refused
        .is_some());
    assert!(m("GET", "/custom/http/proxy/a/b")
        .unwrap()
        .route
        .refused
        .is_some());
}

#[test]
fn the_cli_probes_are_their_own_kind() {
    for p in ["/machines", "/racks"] {
        let got = m("GET", p).unwrap();
        assert_eq!(got.route.kind, RouteKind::Probe);
        assert!(got.route.refused.is_none());
    }
}

#[test]
fn env_in_a_release_is_an_env_change() {
    let r = m("POST", "/apps/myapp/releases").unwrap();
    assert_eq!(permission_for(&r, None), "convox:release:create");
    assert_eq!(
        permission_for(&r, Some(&pairs(&[("build", "B1")]))),
        "convox:release:create"
    );
    assert_eq!(
        permission_for(&r, Some(&pairs(&[("env", "A=1")]))),
        "convox:env:set"
    );
    // An empty env wipes the environment: still an env change.
    assert_eq!(
        permission_for(&r, Some(&pairs(&[("build", "B1"), ("env", "")]))),
        "convox:env:set"
    );
    // Through the query string, which the rack reads as form too.
    let form = request_form(Some("env=A%3D1"), None);
    assert_eq!(permission_for(&r, Some(&form)), "convox:env:set");
}

#[test]
fn put_system_splits_update_from_parameters_and_scale() {
    let r = m("PUT", "/system").unwrap();
    assert_eq!(
        permission_for(
            &r,
            Some(&pairs(&[("version", "3.19.1"), ("force", "false")]))
        ),
        "convox:rack:update"
    );
    assert_eq!(
        permission_for(&r, Some(&pairs(&[("parameters", "a=1")]))),
        "convox:rack:manage"
    );
    assert_eq!(
        permission_for(&r, Some(&pairs(&[("count", "3")]))),
        "convox:rack:manage"
    );
    assert_eq!(
        permission_for(&r, Some(&pairs(&[("type", "t3.large")]))),
        "convox:rack:manage"
    );
    assert_eq!(
        permission_for(
            &r,
            Some(&pairs(&[("version", "3.19.1"), ("parameters", "a=1")]))
        ),
        "convox:rack:manage"
    );
    assert_eq!(permission_for(&r, None), "convox:rack:update");
}

#[test]
fn commands_are_read_where_the_rack_reads_them() {
    let mut h = HeaderMap::new();
    h.insert("command", "bin/pre_release".parse().unwrap());
    let exec = m_ws("/apps/myapp/processes/p1/exec").unwrap();
    assert_eq!(
        command_of(&exec, &h, None).as_deref(),
        Some("bin/pre_release")
    );
    // The rack's c.Value reads the form (here: the query) before the header.
    let q = request_form(Some("command=rails+console"), None);
    assert_eq!(
        command_of(&exec, &h, Some(&q)).as_deref(),
        Some("rails console")
    );
    let empty = request_form(Some("command="), None);
    assert_eq!(
        command_of(&exec, &h, Some(&empty)).as_deref(),
        Some("bin/pre_release")
    );
    assert_eq!(
        command_candidates(&exec, &h, Some(&q)),
        ["rails console", "bin/pre_release"]
    );

    let run = m("POST", "/apps/myapp/services/command/processes").unwrap();
    assert_eq!(
        command_of(&run, &h, Some(&q)).as_deref(),
        Some("bin/pre_release")
    );
    let detached = m("POST", "/apps/myapp/processes/command/run").unwrap();
    let f = pairs(&[("command", "rake db:seed")]);
    assert_eq!(
        command_of(&detached, &h, Some(&f)).as_deref(),
        Some("rake db:seed")
    );
    let attached = m_ws("/apps/myapp/processes/command/run").unwrap();
    assert_eq!(
        command_of(&attached, &h, None).as_deref(),
        Some("bin/pre_release")
    );
    let list = m("GET", "/apps/myapp/processes").unwrap();
    assert_eq!(command_of(&list, &h, None), None);
    assert!(command_candidates(&list, &h, None).is_empty());
}

#[test]
fn bodies_are_buffered_only_where_they_are_read() {
    let release = m("POST", "/apps/myapp/releases").unwrap().route;
    assert!(release.inspect_form);
    assert_eq!(
        release.body_plan(Some("application/x-www-form-urlencoded")),
        Ok(BodyPlan::Buffer)
    );
    assert_eq!(
        release.body_plan(Some("multipart/form-data; boundary=x")),
        Err(BodyError::UnsupportedMediaType)
    );
    assert_eq!(
        body_fields(
            release,
            Some("application/x-www-form-urlencoded"),
            b"env=A%3D1%0AB%3D2&description=x"
        )
        .unwrap(),
        pairs(&[("env", "A=1\nB=2"), ("description", "x")])
    );
    // Go reads form fields from url-encoded bodies only.
    assert!(
        body_fields(release, Some("application/octet-stream"), b"env=A")
            .unwrap()
            .is_empty()
    );

    let builds = m("POST", "/apps/myapp/builds").unwrap().route;
    assert_eq!(
        builds.body_plan(Some("multipart/form-data; boundary=x")),
        Ok(BodyPlan::Stream)
    );
    assert_eq!(
        builds.body_plan(Some("application/x-www-form-urlencoded")),
        Ok(BodyPlan::Buffer)
    );

    let object = m("POST", "/apps/myapp/objects/tmp/a.tgz").unwrap().route;
    assert!(!object.inspect_form);
    assert_eq!(
        object.body_plan(Some("application/octet-stream")),
        Ok(BodyPlan::Stream)
    );

    let legacy_env = m("POST", "/apps/myapp/environment").unwrap().route;
    assert!(legacy_env.inspect_form);
    assert_eq!(
        legacy_env.body_plan(Some("application/octet-stream")),
        Ok(BodyPlan::Buffer)
    );
    assert_eq!(
        body_fields(legacy_env, Some("application/octet-stream"), b"A=1\nB=2").unwrap(),
        pairs(&[("env", "A=1\nB=2")])
    );
    assert_eq!(
        BodyError::UnsupportedMediaType.status(),
        http::StatusCode::UNSUPPORTED_MEDIA_TYPE
    );
}

#[test]
fn the_form_is_body_then_query_like_go() {
    let body = pairs(&[("force", "false")]);
    assert_eq!(
        request_form(Some("force=true&x=1"), Some(&body)),
        pairs(&[("force", "false"), ("force", "true"), ("x", "1")])
    );
    assert!(request_form(None, None).is_empty());
}

/// What Go's `url.ParseQuery` keeps, pair for pair (`net/url` `parseQuery`).
#[test]
fn urlencoded_forms_are_parsed_exactly_as_go_parses_them() {
    let cases: &[(&str, &[(&str, &str)])] = &[
        ("a=1&b=2", &[("a", "1"), ("b", "2")]),
        // A `;` anywhere in a pair drops the pair (Go 1.17+), not the rest.
        ("a=1;b=2&command=ls", &[("command", "ls")]),
        ("command=rake%3Bdb&x=y;z", &[("command", "rake;db")]),
        // A malformed escape drops its pair: the rack then runs the next one.
        (
            "command=%zz&command=rake+db:drop",
            &[("command", "rake db:drop")],
        ),
        ("command=abc%4&x=1", &[("x", "1")]),
        ("%41=%4a%4B", &[("A", "JK")]),
        // Empty pairs are skipped; no `=` is an empty value; an empty name is kept.
        ("&&a&=b&c=", &[("a", ""), ("", "b"), ("c", "")]),
        ("a=b=c", &[("a", "b=c")]),
        ("plus=a+b%2Bc", &[("plus", "a b+c")]),
    ];
    for (query, want) in cases {
        assert_eq!(request_form(Some(query), None), pairs(want), "{query}");
    }
}

#[test]
fn content_types_are_read_as_go_reads_them_or_refused() {
    let release = m("POST", "/apps/myapp/releases").unwrap().route;
    let fields = |ct: &str| body_fields(release, Some(ct), b"env=A%3D1").unwrap();
    // Case, spaces and parameters (even malformed) do not hide a form from Go.
    for ct in [
        "APPLICATION/X-WWW-FORM-URLENCODED",
        " application/x-www-form-urlencoded \t; charset=utf-8",
        "application/x-www-form-urlencoded;",
        "application/x-www-form-urlencoded; charset",
        "application/x-www-form-urlencoded;;=;x",
    ] {
        assert_eq!(fields(ct), pairs(&[("env", "A=1")]), "{ct:?}");
        assert_eq!(release.body_plan(Some(ct)), Ok(BodyPlan::Buffer), "{ct:?}");
    }
    // Not a form to Go either.
    for ct in [
        "application/x-www-form-urlencoded, text/plain",
        "text/plain",
        "application/x-www-form-urlencodedx",
    ] {
        assert!(fields(ct).is_empty(), "{ct:?}");
    }
    let mut headers = HeaderMap::new();
    assert_eq!(content_type(release, &headers), Ok(None));
    // Go lower-cases and trims with Unicode rules ("applİcation" → "application",
    // a trailing no-break space trimmed): a header we cannot read the same way is refused.
    for bytes in [
        &b"application/x-www-form-urlencoded\xc2\xa0"[..],
        "appl\u{130}cation/x-www-form-urlencoded".as_bytes(),
        b"application/x-www-form-urlencoded\xff",
    ] {
        headers.insert(
            http::header::CONTENT_TYPE,
            http::HeaderValue::from_bytes(bytes).unwrap(),
        );
        let refused = content_type(release, &headers).unwrap_err();
        assert_eq!(refused, BodyError::UndecodableContentType);
        assert_eq!(refused.status(), http::StatusCode::UNSUPPORTED_MEDIA_TYPE);
    }
    // Two headers: Go reads the first, something in between may read another.
    let mut headers = HeaderMap::new();
    headers.append(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static("text/plain"),
    );
    headers.append(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static("application/x-www-form-urlencoded"),
    );
    let refused = content_type(release, &headers).unwrap_err();
    assert_eq!(refused, BodyError::DuplicateContentType);
    assert_eq!(refused.status(), http::StatusCode::BAD_REQUEST);
    // Routes whose body is not read keep the first value.
    let object = m("POST", "/apps/myapp/objects/tmp/a.tgz").unwrap().route;
    assert_eq!(
        content_type(object, &headers),
        Ok(Some("text/plain".to_owned()))
    );
}
