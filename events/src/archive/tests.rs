use super::*;

#[test]
fn keys_follow_events_md_section_5() {
    let layout = Layout::new("rack-gateway", "c0ffee");
    assert_eq!(
        layout.segment_key(1, 1000),
        "rack-gateway/c0ffee/segments/00000000000000000001-00000000000000001000.jsonl"
    );
    assert_eq!(
        layout.checkpoint_key(1000),
        "rack-gateway/c0ffee/checkpoints/00000000000000001000.note"
    );
    assert_eq!(
        layout.key_key("rack-gateway-prod"),
        "rack-gateway/c0ffee/keys/rack-gateway-prod.vkey"
    );
    assert_eq!(layout.start_key(), "rack-gateway/c0ffee/start.json");
    assert_eq!(Layout::new("/a/b/", "c").root(), "a/b/c/");
    assert_eq!(Layout::new("", "c").segment_key(2, 3).len(), 2 + 9 + 41 + 6);
    assert_eq!(Layout::at_root("a/b/c/"), Layout::new("a/b", "c"));
}

#[test]
fn parses_only_its_own_names() {
    let layout = Layout::new("p", "c");
    assert_eq!(
        layout.parse_segment_key(&layout.segment_key(7, 9)),
        Some((7, 9))
    );
    assert_eq!(
        layout.parse_checkpoint_key(&layout.checkpoint_key(9)),
        Some(9)
    );
    for bad in [
        "p/c/segments/7-9.jsonl",
        "p/c/segments/00000000000000000009-00000000000000000007.jsonl",
        "p/c/segments/00000000000000000000-00000000000000000007.jsonl",
        "p/other/segments/00000000000000000001-00000000000000000007.jsonl",
        "p/c/segments/00000000000000000001-00000000000000000007.json",
        "p/c/segments/0000000000000000000x-00000000000000000007.jsonl",
    ] {
        assert_eq!(layout.parse_segment_key(bad), None, "{bad}");
    }
    assert_eq!(
        layout.parse_checkpoint_key("p/c/checkpoints/00000000000000000000.note"),
        None
    );
    assert!(layout.is_key_key("p/c/keys/prod.vkey"));
    assert!(!layout.is_key_key("p/c/keys/prod.txt"));
    assert!(!layout.is_key_key("p/other/keys/prod.vkey"));
}

#[test]
fn start_point_bytes_and_frontier_round_trip() {
    let frontier = [[0xab; 32], [0x01; 32]];
    let start = StartPoint::new("c0ffee", 6, "ff", &frontier);
    assert_eq!(start.checkpoint, "checkpoints/00000000000000000006.note");
    let json = start.to_json().unwrap();
    let text = String::from_utf8(json.clone()).unwrap();
    assert!(
        text.starts_with("{\n  \"chain\": \"c0ffee\",\n  \"size\": 6,\n  \"head\": \"ff\",\n"),
        "{text}"
    );
    assert!(text.ends_with("}\n"), "{text}");
    let parsed = StartPoint::parse(&json).unwrap();
    assert_eq!(parsed, start);
    assert_eq!(parsed.frontier_hashes().unwrap(), frontier.to_vec());

    let mut bad = start;
    bad.frontier.push("abc".into());
    assert!(bad.frontier_hashes().unwrap_err().contains("\"abc\""));
    assert!(StartPoint::parse(b"{\"chain\": \"c\"}").is_err());
}
