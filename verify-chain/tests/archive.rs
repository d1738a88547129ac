//! `verify-chain --dir` over directories in the archive layout, built here
//! from sample chains: a clean one verifies, and every malformed or
//! incomplete one is refused with the right exit code and check, naming the
//! object — never a crash, a hang or a success. Also `verify-proof` on
//! malformed files.

use std::path::PathBuf;
use std::process::Output;

use events::testing::{sample_chain, sample_signer, signed_checkpoint};
use events::{CompactRange, Event};
use serde_json::Value;

const VERIFY: &str = env!("CARGO_BIN_EXE_verify-chain");
const CHAIN: &str = "0b5e55ed-0000-4000-8000-000000000001";

struct Bundle {
    _dir: tempfile::TempDir,
    root: PathBuf,
    chain_dir: PathBuf,
    vkey: String,
    events: Vec<Event>,
}

/// A bundle of `n` events with segments ending at each of `cuts` (all checkpoints).
fn bundle(n: usize, cuts: &[usize]) -> Bundle {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().to_path_buf();
    let chain_dir = root.join("rack-gateway").join(CHAIN);
    for sub in ["segments", "checkpoints", "keys"] {
        std::fs::create_dir_all(chain_dir.join(sub)).unwrap();
    }
    let events = sample_chain(n, CHAIN);
    let signer = sample_signer("archive-test");
    let vkey = signer.verifier().to_vkey();
    std::fs::write(
        chain_dir.join("keys/archive-test.vkey"),
        format!("{vkey}\n"),
    )
    .unwrap();
    let mut first = 1;
    for &last in cuts {
        let mut body = Vec::new();
        for event in &events[first - 1..last] {
            body.extend_from_slice(&event.to_line());
            body.push(b'\n');
        }
        std::fs::write(chain_dir.join(segment_name(first, last)), body).unwrap();
        std::fs::write(
            chain_dir.join(note_name(last)),
            signed_checkpoint(&events, last, &signer),
        )
        .unwrap();
        first = last + 1;
    }
    Bundle {
        _dir: dir,
        root,
        chain_dir,
        vkey,
        events,
    }
}

fn segment_name(first: usize, last: usize) -> String {
    format!("segments/{first:020}-{last:020}.jsonl")
}

fn note_name(size: usize) -> String {
    format!("checkpoints/{size:020}.note")
}

impl Bundle {
    fn verify(&self, extra: &[&str]) -> (i32, Value) {
        let mut args = vec![
            "--dir",
            self.root.to_str().unwrap(),
            "--json",
            "--key",
            &self.vkey,
        ];
        args.extend_from_slice(extra);
        run_json(&args)
    }

    /// Make it a partial export: drop segments before `after + 1`, write start.json.
    fn start_after(&self, after: usize) {
        let mut tree = CompactRange::new();
        for event in &self.events[..after] {
            tree.push(events::merkle::leaf_hash(&event.canonical_bytes()));
        }
        let start = serde_json::json!({
            "chain": CHAIN,
            "size": after,
            "head": self.events[after - 1].hash,
            "frontier": tree.frontier().iter().map(hex::encode).collect::<Vec<_>>(),
            "checkpoint": note_name(after),
        });
        std::fs::write(self.chain_dir.join("start.json"), start.to_string()).unwrap();
        for entry in std::fs::read_dir(self.chain_dir.join("segments")).unwrap() {
            let path = entry.unwrap().path();
            let name = path.file_name().unwrap().to_string_lossy().to_string();
            let first: usize = name[..20].parse().unwrap();
            if first <= after {
                std::fs::remove_file(path).unwrap();
            }
        }
    }

    fn edit(&self, name: &str, change: impl Fn(String) -> String) {
        let path = self.chain_dir.join(name);
        let text = std::fs::read_to_string(&path).unwrap();
        std::fs::write(&path, change(text)).unwrap();
    }
}

fn run(args: &[&str]) -> Output {
    std::process::Command::new(VERIFY)
        .args(args)
        .env_remove("AUDIT_LOCK_MODE")
        .env_remove("AUDIT_RETENTION_DAYS")
        .output()
        .unwrap()
}

fn run_json(args: &[&str]) -> (i32, Value) {
    let out = run(args);
    let text = String::from_utf8_lossy(&out.stdout);
    let value = serde_json::from_str(text.trim()).unwrap_or_else(|e| {
        panic!(
            "one JSON object ({e}): {text} {}",
            String::from_utf8_lossy(&out.stderr)
        )
    });
    (out.status.code().unwrap_or(-1), value)
}

fn failure(result: (i32, Value), check: u64) -> Value {
    let (code, value) = result;
    assert_eq!(code, 1, "{value}");
    assert_eq!(value["ok"], false, "{value}");
    assert_eq!(value["check"], check, "{value}");
    value
}

#[test]
fn a_clean_bundle_verifies_from_any_level_of_its_directory() {
    let b = bundle(50, &[10, 25, 50]);
    let (code, value) = b.verify(&[]);
    assert_eq!(code, 0, "{value}");
    assert_eq!(value["events"], 50);
    assert_eq!(value["checkpoint_size"], 50);
    for dir in [b.root.join("rack-gateway"), b.chain_dir.clone()] {
        let (code, value) = run_json(&["--dir", dir.to_str().unwrap(), "--json", "--key", &b.vkey]);
        assert_eq!(code, 0, "{}: {value}", dir.display());
    }
    let text = run(&["--dir", b.root.to_str().unwrap(), "--key", &b.vkey]);
    assert!(String::from_utf8_lossy(&text.stdout).contains("verified"));
}

#[test]
fn a_partial_bundle_verifies_from_its_start_and_a_forged_start_is_caught() {
    let b = bundle(50, &[10, 25, 50]);
    b.start_after(25);
    let (code, value) = b.verify(&[]);
    assert_eq!(code, 0, "{value}");
    assert_eq!(value["events"], 25);
    assert_eq!(value["head_seq"], 50);
    // Another head for the prefix: the signed checkpoint 25 says otherwise.
    b.edit("start.json", |text| {
        text.replace(&b.events[24].hash, &b.events[23].hash)
    });
    failure(b.verify(&[]), 3);
}

#[test]
fn missing_overlapping_and_foreign_objects_are_named() {
    let b = bundle(50, &[10, 25, 50]);
    std::fs::remove_file(b.chain_dir.join(segment_name(11, 25))).unwrap();
    let value = failure(b.verify(&[]), 6);
    assert!(
        value["object"]
            .as_str()
            .unwrap()
            .ends_with(&format!("{:020}-*.jsonl", 11)),
        "{value}"
    );

    let b = bundle(50, &[10, 25, 50]);
    std::fs::remove_file(b.chain_dir.join(note_name(25))).unwrap();
    let value = failure(b.verify(&[]), 6);
    assert!(
        value["object"].as_str().unwrap().ends_with(&note_name(25)),
        "{value}"
    );

    let b = bundle(50, &[10, 25, 50]);
    std::fs::copy(
        b.chain_dir.join(segment_name(11, 25)),
        b.chain_dir.join(segment_name(20, 25)),
    )
    .unwrap();
    failure(b.verify(&[]), 6);

    let b = bundle(50, &[10, 25, 50]);
    std::fs::write(b.chain_dir.join("segments/notes.txt"), "hello").unwrap();
    let value = failure(b.verify(&[]), 6);
    assert!(
        value["object"].as_str().unwrap().ends_with("notes.txt"),
        "{value}"
    );
}

#[test]
fn malformed_lines_are_check_1_or_2_naming_the_segment() {
    type Edit = Box<dyn Fn(String) -> String>;
    let cases: Vec<(&str, Edit, u64)> = vec![
        (
            "garbage line",
            Box::new(|t: String| t.replacen('{', "not json {", 1)),
            1,
        ),
        ("empty line", Box::new(|t: String| format!("\n{t}")), 1),
        (
            "truncated",
            Box::new(|t: String| t[..t.len() / 2].to_owned()),
            1,
        ),
        (
            "one byte",
            Box::new(|t: String| t.replacen("\"GET\"", "\"PUT\"", 1)),
            1,
        ),
        (
            "swapped lines",
            Box::new(|t: String| {
                let mut lines: Vec<&str> = t.lines().collect();
                lines.swap(2, 3);
                lines.join("\n") + "\n"
            }),
            2,
        ),
        (
            "a line dropped",
            Box::new(|t: String| {
                let mut lines: Vec<&str> = t.lines().collect();
                lines.remove(4);
                lines.join("\n") + "\n"
            }),
            2,
        ),
    ];
    for (what, change, check) in cases {
        let b = bundle(50, &[10, 25, 50]);
        b.edit(&segment_name(11, 25), change);
        let value = failure(b.verify(&[]), check);
        assert!(
            value["object"]
                .as_str()
                .unwrap_or_default()
                .ends_with(&segment_name(11, 25))
                || value["check"] == 2,
            "{what}: {value}"
        );
    }
}

#[test]
fn bad_notes_keys_and_starts_are_refused() {
    let b = bundle(30, &[10, 30]);
    b.edit(&note_name(10), |t| t.replacen("\n10\n", "\n11\n", 1));
    failure(b.verify(&[]), 3);

    let b = bundle(30, &[10, 30]);
    let (_, other) = events::note::generate_key("someone-else").unwrap();
    let (code, value) = run_json(&["--dir", b.root.to_str().unwrap(), "--json", "--key", &other]);
    assert_eq!((code, &value["check"]), (1, &Value::from(3)), "{value}");

    let b = bundle(30, &[10, 30]);
    std::fs::write(b.chain_dir.join("start.json"), "{not json").unwrap();
    failure(b.verify(&[]), 3);

    let b = bundle(30, &[10, 30]);
    b.start_after(10);
    std::fs::remove_file(b.chain_dir.join(note_name(10))).unwrap();
    failure(b.verify(&[]), 6);
}

#[test]
fn usage_and_io_problems_exit_2() {
    let (code, value) = run_json(&["--dir", "/nonexistent/bundle", "--json"]);
    assert_eq!(
        (code, value["ok"].clone()),
        (2, Value::Bool(false)),
        "{value}"
    );
    let empty = tempfile::tempdir().unwrap();
    assert_eq!(
        run_json(&["--dir", empty.path().to_str().unwrap(), "--json"]).0,
        2
    );
    // Two chains side by side need --chain.
    let b = bundle(10, &[10]);
    let other = b.root.join("rack-gateway/another-chain/segments");
    std::fs::create_dir_all(&other).unwrap();
    assert_eq!(b.verify(&[]).0, 2);
    let (code, value) = b.verify(&["--chain", CHAIN]);
    assert_eq!(code, 0, "{value}");
    assert_eq!(run_json(&["--s3", "not-a-url", "--json"]).0, 2);
    assert_eq!(
        run(&["verify-proof", "/nonexistent.json"]).status.code(),
        Some(2)
    );
}

#[test]
fn verify_proof_refuses_what_is_not_a_proof() {
    let dir = tempfile::tempdir().unwrap();
    let write = |name: &str, text: &str| {
        let path = dir.path().join(name);
        std::fs::write(&path, text).unwrap();
        path
    };
    let b = bundle(10, &[10]);
    let not_json = write("a.json", "not json");
    assert_eq!(
        run(&["verify-proof", not_json.to_str().unwrap(), "--key", &b.vkey])
            .status
            .code(),
        Some(2)
    );
    let wrong_type = write("b.json", r#"{"type": "something-else"}"#);
    assert_eq!(
        run(&[
            "verify-proof",
            wrong_type.to_str().unwrap(),
            "--key",
            &b.vkey
        ])
        .status
        .code(),
        Some(1)
    );
    let missing = write(
        "c.json",
        r#"{"type": "rack-gateway-inclusion-proof", "version": 1}"#,
    );
    assert_eq!(
        run(&["verify-proof", missing.to_str().unwrap(), "--key", &b.vkey])
            .status
            .code(),
        Some(1)
    );
}

#[test]
fn prove_and_consistency_from_a_bundle_verify() {
    let b = bundle(40, &[7, 20, 40]);
    let root = b.root.to_str().unwrap();
    let dir = tempfile::tempdir().unwrap();
    for seq in ["1", "7", "8", "33", "40"] {
        let out = run(&["prove", "--seq", seq, "--dir", root, "--key", &b.vkey]);
        assert_eq!(
            out.status.code(),
            Some(0),
            "{seq}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let path = dir.path().join(format!("{seq}.json"));
        std::fs::write(&path, &out.stdout).unwrap();
        assert_eq!(
            run(&["verify-proof", path.to_str().unwrap(), "--key", &b.vkey])
                .status
                .code(),
            Some(0)
        );
    }
    let out = run(&["prove", "--seq", "41", "--dir", root, "--key", &b.vkey]);
    assert_eq!(out.status.code(), Some(2));
    let old = b.chain_dir.join(note_name(7));
    let new = b.chain_dir.join(note_name(40));
    let out = run(&[
        "consistency",
        old.to_str().unwrap(),
        new.to_str().unwrap(),
        "--dir",
        root,
        "--key",
        &b.vkey,
    ]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // A bundle whose events do not match the notes cannot produce a proof that verifies.
    b.edit(&segment_name(8, 20), |t| {
        t.replacen("\"GET\"", "\"PUT\"", 1)
    });
    let out = run(&[
        "consistency",
        old.to_str().unwrap(),
        new.to_str().unwrap(),
        "--dir",
        root,
        "--key",
        &b.vkey,
    ]);
    assert_eq!(
        out.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
