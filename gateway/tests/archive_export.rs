//! Export bundles an auditor takes home: they verify with `verify-chain
//! --dir` and no database (whole, partial, as a `.tar.gz`, downloaded from
//! the API); `prove` and `consistency` outputs verify from the file alone and
//! every tampered field is rejected; this quarter's export provably extends
//! last quarter's; the README's by-hand checks work with python3 and openssl.

mod archive_support;
mod common;

use std::path::{Path, PathBuf};
use std::process::Output;
use std::time::Duration;

use archive_support as s3;
use common::{spawn_app_with, stderr, stdout, TestApp};
use events::{Actor, Draft};
use serde_json::Value;

async fn app_with_chain(events: usize) -> TestApp {
    let app = spawn_app_with(|env| {
        env.set("CHECKPOINT_EVERY_EVENTS", "25");
        env.set("CHECKPOINT_EVERY_SECONDS", "3600");
    })
    .await;
    for n in 0..events {
        app.state
            .appender
            .append(Draft::new(
                "test.event",
                Actor::system("export-test"),
                serde_json::json!({ "n": n }),
            ))
            .await
            .unwrap();
    }
    // A checkpoint of everything so far (the signer answers in-process).
    let pool = app.pool.clone();
    let head = app.event_count().await;
    let requests = app.state.checkpoint_requests.clone();
    s3::wait_for("a checkpoint at the head", Duration::from_secs(60), || {
        let (pool, requests) = (pool.clone(), requests.clone());
        async move {
            let _ = requests.checkpoint_now().await;
            sqlx::query_scalar::<_, i64>("SELECT coalesce(max(size), 0) FROM checkpoints")
                .fetch_one(&pool)
                .await
                .unwrap()
                >= head
        }
    })
    .await;
    app
}

fn export(app: &TestApp, args: &[&str]) -> Output {
    let mut all = vec!["export"];
    all.extend_from_slice(args);
    let out = app.server_command(&all);
    assert!(
        out.status.success(),
        "export {args:?}: {}{}",
        stdout(&out),
        stderr(&out)
    );
    out
}

fn vc(args: &[&str]) -> Output {
    s3::verify_chain("http://127.0.0.1:9", args)
}

fn vc_json(args: &[&str]) -> (i32, Value) {
    s3::verify_json("http://127.0.0.1:9", args)
}

fn p(path: &Path) -> &str {
    s3::path_str(path)
}

/// The chain directory inside a bundle.
fn chain_dir(bundle: &Path, chain: &str) -> PathBuf {
    bundle.join("rack-gateway").join(chain)
}

async fn checkpoint_sizes(app: &TestApp) -> Vec<u64> {
    sqlx::query_scalar::<_, i64>("SELECT size FROM checkpoints ORDER BY size")
        .fetch_all(&app.pool)
        .await
        .unwrap()
        .into_iter()
        .map(|s| s as u64)
        .collect()
}

#[tokio::test]
async fn bundles_verify_offline_whole_partial_and_as_tarballs() {
    let app = app_with_chain(300).await;
    let chain = app.state.chain().to_owned();
    let sizes = checkpoint_sizes(&app).await;
    let newest = *sizes.last().unwrap();
    let dir = tempfile::tempdir().unwrap();

    // Whole.
    let full = dir.path().join("full");
    let out = export(&app, &["--out", p(&full)]);
    assert!(
        stdout(&out).contains(&format!("exported events 1..{newest}")),
        "{}",
        stdout(&out)
    );
    let (code, value) = vc_json(&["--dir", p(&full), "--key", &app.vkey]);
    assert_eq!(code, 0, "{value}");
    assert_eq!(value["head_seq"], newest);
    assert_eq!(value["events"], newest);
    assert_eq!(value["checkpoint_size"], newest);
    assert_eq!(value["keys_trusted"], true);
    // Without --key it uses the bundle's published key and says so.
    let (code, value) = vc_json(&["--dir", p(&full)]);
    assert_eq!(
        (code, &value["keys_trusted"]),
        (0, &Value::Bool(false)),
        "{value}"
    );
    // Every file arrives intact by SHA256SUMS, with standard tools.
    let sums = std::process::Command::new("sha256sum")
        .args(["-c", "--quiet", "SHA256SUMS"])
        .current_dir(&full)
        .output()
        .unwrap();
    assert!(
        sums.status.success(),
        "{}",
        String::from_utf8_lossy(&sums.stdout)
    );
    // Segments end at every checkpoint, exactly as the shipper cuts them.
    let segments: Vec<String> = std::fs::read_dir(chain_dir(&full, &chain).join("segments"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(segments.len(), sizes.len());
    // The export is recorded.
    let exported = app.events_of("audit.exported").await;
    assert_eq!(exported[0]["data"]["via"], "cli");
    assert_eq!(exported[0]["actor"]["kind"], "system");
    // Together with the database: check 4 across them.
    let (code, value) = vc_json(&[
        "--database-url",
        &app.db.url,
        "--dir",
        p(&full),
        "--key",
        &app.vkey,
    ]);
    assert_eq!(code, 0, "{value}");

    // As a .tar.gz, extracted with tar.
    let tarball = dir.path().join("audit-2026q4.tar.gz");
    export(&app, &["--out", p(&tarball)]);
    let extracted = dir.path().join("extracted");
    std::fs::create_dir(&extracted).unwrap();
    let tar = std::process::Command::new("tar")
        .args(["xzf", p(&tarball), "-C", p(&extracted)])
        .output()
        .unwrap();
    assert!(
        tar.status.success(),
        "{}",
        String::from_utf8_lossy(&tar.stderr)
    );
    assert!(extracted.join("audit-2026q4/README.md").is_file());
    let (code, value) = vc_json(&["--dir", p(&extracted), "--key", &app.vkey]);
    assert_eq!(code, 0, "{value}");
    assert_eq!(value["head_seq"], newest);
    // An existing file is never overwritten.
    let again = app.server_command(&["export", "--out", p(&tarball)]);
    assert!(!again.status.success());

    // Partial: from a few events past checkpoint A to a few past checkpoint B
    // starts right after A and ends at B.
    let (a, b) = (sizes[4], sizes[9]);
    let part = dir.path().join("part");
    let (from, to) = ((a + 5).to_string(), (b + 10).to_string());
    let out = export(
        &app,
        &["--out", p(&part), "--from-seq", &from, "--to-seq", &to],
    );
    assert!(
        stderr(&out).contains(&format!("starting at seq {}", a + 1)),
        "{}",
        stderr(&out)
    );
    let start: Value = serde_json::from_slice(
        &std::fs::read(chain_dir(&part, &chain).join("start.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(start["size"], a);
    assert_eq!(
        start["frontier"].as_array().unwrap().len(),
        a.count_ones() as usize
    );
    let (code, value) = vc_json(&["--dir", p(&part), "--key", &app.vkey]);
    assert_eq!(code, 0, "{value}");
    assert_eq!(value["events"], b - a);
    assert_eq!(value["head_seq"], b);
    let readme = std::fs::read_to_string(part.join("README.md")).unwrap();
    assert!(
        readme.contains("partial export") && readme.contains(&format!("{}..{b}", a + 1)),
        "{readme}"
    );
    let (code, value) = vc_json(&[
        "--database-url",
        &app.db.url,
        "--dir",
        p(&part),
        "--key",
        &app.vkey,
    ]);
    assert_eq!(code, 0, "partial export against the database: {value}");

    // A partial export whose start frontier was altered is refused (check 3).
    let forged = dir.path().join("forged");
    export(&app, &["--out", p(&forged), "--from-seq", &from]);
    let start_path = chain_dir(&forged, &chain).join("start.json");
    let mut start: Value = serde_json::from_slice(&std::fs::read(&start_path).unwrap()).unwrap();
    start["frontier"][0] = Value::String("00".repeat(32));
    std::fs::write(&start_path, serde_json::to_vec(&start).unwrap()).unwrap();
    let (code, value) = vc_json(&["--dir", p(&forged), "--key", &app.vkey]);
    assert_eq!(code, 1, "{value}");
    assert_eq!(value["check"], 3, "{value}");

    // One altered byte in a segment of the whole export: check 1, naming the file.
    let segment = chain_dir(&full, &chain).join("segments").join(format!(
        "{:020}-{:020}.jsonl",
        sizes[1] + 1,
        sizes[2]
    ));
    let text = std::fs::read_to_string(&segment).unwrap();
    std::fs::write(&segment, text.replacen("\"n\":", "\"n\":1", 1)).unwrap();
    let (code, value) = vc_json(&["--dir", p(&full), "--key", &app.vkey]);
    assert_eq!(code, 1, "{value}");
    assert_eq!(value["check"], 1, "{value}");
    assert!(
        value["object"].as_str().unwrap().ends_with(".jsonl"),
        "{value}"
    );
    // A missing checkpoint note is named (check 6).
    std::fs::write(&segment, text).unwrap();
    let note = chain_dir(&full, &chain).join(format!("checkpoints/{:020}.note", sizes[2]));
    std::fs::remove_file(&note).unwrap();
    let (code, value) = vc_json(&["--dir", p(&full), "--key", &app.vkey]);
    assert_eq!((code, &value["check"]), (1, &Value::from(6)), "{value}");

    // Usage errors are exit 2 and change nothing.
    let beyond = (newest + 1).to_string();
    let bad = app.server_command(&[
        "export",
        "--out",
        p(&dir.path().join("x")),
        "--from-seq",
        &beyond,
    ]);
    assert!(!bad.status.success());
    assert!(
        stderr(&bad).contains("below --from-seq"),
        "{}",
        stderr(&bad)
    );
}

/// Replace one field of a proof file and expect verify-proof to reject it.
fn rejects(proof: &Value, dir: &Path, name: &str, vkey: &str, change: impl Fn(&mut Value)) {
    let mut forged = proof.clone();
    change(&mut forged);
    assert_ne!(&forged, proof, "{name}: the change changes something");
    let path = dir.join(format!("{name}.json"));
    std::fs::write(&path, serde_json::to_vec_pretty(&forged).unwrap()).unwrap();
    let out = vc(&["verify-proof", p(&path), "--key", vkey]);
    assert_eq!(
        out.status.code(),
        Some(1),
        "{name}: a tampered proof is rejected: {}",
        String::from_utf8_lossy(&out.stdout)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("REJECTED"));
}

fn flip_hex(text: &str) -> String {
    let mut chars: Vec<char> = text.chars().collect();
    chars[0] = if chars[0] == '0' { '1' } else { '0' };
    chars.into_iter().collect()
}

#[tokio::test]
async fn proofs_verify_from_the_file_alone_and_tampering_is_rejected() {
    let app = app_with_chain(300).await;
    let chain = app.state.chain().to_owned();
    let dir = tempfile::tempdir().unwrap();
    let write = |name: &str, out: &Output| {
        assert_eq!(
            out.status.code(),
            Some(0),
            "{name}: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        let path = dir.path().join(name);
        std::fs::write(&path, &out.stdout).unwrap();
        let value: Value = serde_json::from_slice(&out.stdout).unwrap();
        (path, value)
    };

    let sizes = checkpoint_sizes(&app).await;
    let (a, b) = (sizes[4], sizes[9]);
    let (seq, size) = ((a + 14).to_string(), b.to_string());
    // Inclusion, from the database and from a partial export: the same proof.
    let (_, from_db) = write(
        "db-proof.json",
        &vc(&[
            "prove",
            "--seq",
            &seq,
            "--database-url",
            &app.db.url,
            "--size",
            &size,
            "--key",
            &app.vkey,
        ]),
    );
    let part = dir.path().join("part");
    let (from, to) = ((a + 5).to_string(), (b + 10).to_string());
    export(
        &app,
        &["--out", p(&part), "--from-seq", &from, "--to-seq", &to],
    );
    let (proof_path, proof) = write(
        "proof.json",
        &vc(&[
            "prove",
            "--seq",
            &seq,
            "--dir",
            p(&part),
            "--key",
            &app.vkey,
        ]),
    );
    assert_eq!(proof["tree_size"], b);
    assert_eq!(proof["leaf_index"], a + 13);
    assert_eq!(proof["audit_path"], from_db["audit_path"]);
    assert_eq!(proof["event"], from_db["event"]);
    let ok = vc(&["verify-proof", p(&proof_path), "--key", &app.vkey]);
    assert_eq!(
        ok.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&ok.stdout)
    );
    // Without --key: the keys in the file, said to be untrusted.
    let ok = vc(&["verify-proof", p(&proof_path)]);
    assert_eq!(ok.status.code(), Some(0));
    assert!(String::from_utf8_lossy(&ok.stdout).contains("NOT independently trusted"));
    // An untrusted key is refused.
    let (_, other_vkey) = events::note::generate_key("someone-else").unwrap();
    assert_eq!(
        vc(&["verify-proof", p(&proof_path), "--key", &other_vkey])
            .status
            .code(),
        Some(1)
    );
    // The last event of a checkpoint also matches its head line.
    let (last_path, _) = write(
        "last.json",
        &vc(&[
            "prove",
            "--seq",
            &size,
            "--dir",
            p(&part),
            "--key",
            &app.vkey,
        ]),
    );
    assert_eq!(
        vc(&["verify-proof", p(&last_path), "--key", &app.vkey])
            .status
            .code(),
        Some(0)
    );

    let vkey = app.vkey.clone();
    let d = dir.path();
    rejects(&proof, d, "node", &vkey, |v| {
        let node = v["audit_path"][2].as_str().unwrap().to_owned();
        v["audit_path"][2] = Value::String(flip_hex(&node));
    });
    rejects(&proof, d, "missing-node", &vkey, |v| {
        v["audit_path"].as_array_mut().unwrap().pop();
    });
    rejects(&proof, d, "index", &vkey, |v| {
        v["leaf_index"] = Value::from(a + 14)
    });
    rejects(&proof, d, "index-and-seq", &vkey, |v| {
        v["leaf_index"] = Value::from(a + 14);
        v["seq"] = Value::from(a + 15);
    });
    rejects(&proof, d, "size", &vkey, |v| {
        v["tree_size"] = Value::from(b + 1)
    });
    rejects(&proof, d, "root", &vkey, |v| {
        v["root"] = Value::String(base64_of([7u8; 32]));
    });
    rejects(&proof, d, "event", &vkey, |v| {
        let event = v["event"].as_str().unwrap().replace("\"n\":", "\"n\":1");
        v["event"] = Value::String(event);
    });
    rejects(&proof, d, "event-rehashed", &vkey, |v| {
        let mut event = events::Event::from_line(v["event"].as_str().unwrap().as_bytes()).unwrap();
        event.data = serde_json::json!({"n": 1_000_000});
        event.hash = event.computed_hash();
        v["event"] = Value::String(String::from_utf8(event.to_line()).unwrap());
        v["leaf_hash"] = Value::String(hex::encode(events::merkle::leaf_hash(
            &event.canonical_bytes(),
        )));
    });
    rejects(&proof, d, "note", &vkey, |v| {
        let note = v["checkpoint"].as_str().unwrap().replacen(
            &format!("\n{b}\n"),
            &format!("\n{}\n", b + 1),
            1,
        );
        v["checkpoint"] = Value::String(note);
    });
    rejects(&proof, d, "note-signature", &vkey, |v| {
        let note = v["checkpoint"].as_str().unwrap();
        let (body, sig) = note.rsplit_once(' ').unwrap();
        let mut sig = sig.to_owned();
        sig.replace_range(8..9, if &sig[8..9] == "A" { "B" } else { "A" });
        v["checkpoint"] = Value::String(format!("{body} {sig}"));
    });

    // Consistency: last quarter (to checkpoint A) and this quarter (from A+1), each a bundle of its own.
    let q1 = dir.path().join("q1");
    let q2 = dir.path().join("q2");
    export(&app, &["--out", p(&q1), "--to-seq", &a.to_string()]);
    export(&app, &["--out", p(&q2), "--from-seq", &(a + 1).to_string()]);
    let newest = *sizes.last().unwrap();
    let old_note = chain_dir(&q1, &chain).join(format!("checkpoints/{a:020}.note"));
    let new_note = chain_dir(&q2, &chain).join(format!("checkpoints/{newest:020}.note"));
    assert_eq!(vc_json(&["--dir", p(&q1), "--key", &app.vkey]).0, 0);
    assert_eq!(vc_json(&["--dir", p(&q2), "--key", &app.vkey]).0, 0);
    let (consistency_path, consistency) = write(
        "consistency.json",
        &vc(&[
            "consistency",
            p(&old_note),
            p(&new_note),
            "--dir",
            p(&q2),
            "--key",
            &app.vkey,
        ]),
    );
    assert_eq!(consistency["old_size"], a);
    assert_eq!(consistency["new_size"], newest);
    let ok = vc(&["verify-proof", p(&consistency_path), "--key", &app.vkey]);
    assert_eq!(
        ok.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&ok.stdout)
    );
    // The database gives the same proof, and proves any older checkpoint too.
    let (_, from_db) = write(
        "consistency-db.json",
        &vc(&[
            "consistency",
            p(&old_note),
            p(&new_note),
            "--database-url",
            &app.db.url,
            "--key",
            &app.vkey,
        ]),
    );
    assert_eq!(from_db["proof"], consistency["proof"]);
    let note_50 = chain_dir(&q1, &chain).join(format!("checkpoints/{:020}.note", sizes[2]));
    let (_, older) = write(
        "consistency-older.json",
        &vc(&[
            "consistency",
            p(&note_50),
            p(&new_note),
            "--database-url",
            &app.db.url,
            "--key",
            &app.vkey,
        ]),
    );
    assert_eq!(older["old_size"], sizes[2]);
    // From q2 alone, a proof from before its start cannot be made (usage error, not a wrong proof).
    let out = vc(&[
        "consistency",
        p(&note_50),
        p(&new_note),
        "--dir",
        p(&q2),
        "--key",
        &app.vkey,
    ]);
    assert_eq!(
        out.status.code(),
        Some(2),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    rejects(&consistency, d, "c-node", &vkey, |v| {
        let node = v["proof"][0].as_str().unwrap().to_owned();
        v["proof"][0] = Value::String(flip_hex(&node));
    });
    rejects(&consistency, d, "c-old-size", &vkey, |v| {
        v["old_size"] = Value::from(a - 1)
    });
    rejects(&consistency, d, "c-new-root", &vkey, |v| {
        v["new_root"] = Value::String(base64_of([9u8; 32]));
    });
    rejects(&consistency, d, "c-old-note", &vkey, |v| {
        v["old_checkpoint"] = older["old_checkpoint"].clone();
    });
    rejects(&consistency, d, "c-swapped", &vkey, |v| {
        let old = v["old_checkpoint"].clone();
        v["old_checkpoint"] = v["new_checkpoint"].clone();
        v["new_checkpoint"] = old;
    });
}

fn base64_of(bytes: [u8; 32]) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

/// The README's indented code blocks (7 spaces: inside its numbered list)
/// that call python3 or openssl, with the placeholders filled in.
fn readme_blocks(readme: &str, segment: &str, vkey: &str) -> Vec<String> {
    let mut blocks = Vec::new();
    let mut current: Vec<&str> = Vec::new();
    for line in readme.lines().chain(std::iter::once("")) {
        match line.strip_prefix("       ") {
            Some(code) => current.push(code),
            None => {
                let block = current.join("\n");
                if block.contains("python3") || block.contains("openssl") {
                    blocks.push(
                        block
                            .replace("<file>.jsonl", segment)
                            .replace("<verifier key>", vkey),
                    );
                }
                current.clear();
            }
        }
    }
    blocks
}

#[tokio::test]
async fn the_readme_checks_a_checkpoint_by_hand_with_python_and_openssl() {
    let app = app_with_chain(60).await;
    let chain = app.state.chain().to_owned();
    let dir = tempfile::tempdir().unwrap();
    let bundle = dir.path().join("bundle");
    export(&app, &["--out", p(&bundle)]);
    let readme = std::fs::read_to_string(bundle.join("README.md")).unwrap();
    let segments = chain_dir(&bundle, &chain).join("segments");
    let mut names: Vec<String> = std::fs::read_dir(&segments)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    let blocks = readme_blocks(&readme, &names[1], &app.vkey);
    assert_eq!(blocks.len(), 3, "three hand checks: {blocks:#?}");
    let newest = *checkpoint_sizes(&app).await.last().unwrap();
    let note = std::fs::read_to_string(
        chain_dir(&bundle, &chain).join(format!("checkpoints/{newest:020}.note")),
    )
    .unwrap();
    let root_line = note.lines().nth(2).unwrap();
    let expect = [
        "ok, last hash".to_owned(),
        format!("{newest} {root_line}"),
        "Signature Verified Successfully".to_owned(),
    ];
    for (block, expected) in blocks.iter().zip(expect) {
        let out = std::process::Command::new("bash")
            .args(["-euc", block])
            .current_dir(&bundle)
            .output()
            .unwrap();
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(out.status.success(), "{block}\n{text}");
        assert!(
            text.contains(&expected),
            "{block}\nexpected {expected:?} in:\n{text}"
        );
    }
}

#[tokio::test]
async fn auditors_and_admins_download_the_bundle_and_the_download_is_an_event() {
    let app = app_with_chain(80).await;
    let token = |role: &str| {
        let out = app.server_command(&[
            "token", "create", "--name", role, "--role", role, "--output", "token",
        ]);
        assert!(out.status.success(), "{}", stderr(&out));
        stdout(&out).trim().to_owned()
    };
    let (auditor, admin, deployer) = (token("auditor"), token("admin"), token("deployer"));
    let sizes = checkpoint_sizes(&app).await;
    let url = app.url(&format!("/api/v1/audit/export?from_seq={}", sizes[1] + 3));
    let expected_events = sizes.last().unwrap() - sizes[1];

    let denied = app
        .client
        .get(&url)
        .bearer_auth(&deployer)
        .send()
        .await
        .unwrap();
    assert_eq!(denied.status(), 403);
    assert!(denied
        .text()
        .await
        .unwrap()
        .contains("permission denied: gateway:audit_log:read"));
    let anonymous = app.client.get(&url).send().await.unwrap();
    assert_eq!(anonymous.status(), 401);
    let bad = app
        .client
        .get(app.url("/api/v1/audit/export?from_seq=abc"))
        .bearer_auth(&auditor)
        .send()
        .await
        .unwrap();
    assert_eq!(bad.status(), 400);
    assert!(
        app.events_of("audit.exported").await.is_empty(),
        "refusals export nothing"
    );

    for (who, secret) in [("auditor", &auditor), ("admin", &admin)] {
        let response = app
            .client
            .get(&url)
            .bearer_auth(secret)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200, "{who}");
        assert_eq!(response.headers()["content-type"], "application/gzip");
        assert!(response.headers()["content-disposition"]
            .to_str()
            .unwrap()
            .contains(".tar.gz"));
        let body = response.bytes().await.unwrap();
        let dir = tempfile::tempdir().unwrap();
        tar::Archive::new(flate2::read::GzDecoder::new(&body[..]))
            .unpack(dir.path())
            .unwrap();
        let (code, value) = vc_json(&["--dir", p(dir.path()), "--key", &app.vkey]);
        assert_eq!(code, 0, "{who}: {value}");
        assert_eq!(value["events"], expected_events, "{who}: {value}");
    }
    let exported = app.events_of("audit.exported").await;
    assert_eq!(exported.len(), 2);
    assert_eq!(exported[0]["actor"]["kind"], "api_token");
    assert_eq!(exported[0]["actor"]["role"], "auditor");
    assert_eq!(exported[1]["actor"]["role"], "admin");
    assert_eq!(exported[0]["data"]["via"], "api");
    assert_eq!(exported[0]["data"]["first_seq"], sizes[1] + 1);
    assert!(exported[0]["source"]["ip"].is_string());
}
