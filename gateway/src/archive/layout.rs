//! Object keys of the archive and of export bundles (events.md §5):
//!
//! ```text
//! <prefix>/<chain>/segments/<first seq, 20 digits>-<last seq, 20 digits>.jsonl
//! <prefix>/<chain>/checkpoints/<N, 20 digits>.note
//! <prefix>/<chain>/keys/<key name>.vkey
//! ```
//!
//! Twenty zero-padded digits make lexicographic order (how S3 lists keys)
//! numeric order. `verify-chain` parses the same names (tools, which does not
//! depend on this crate); the tests of both hold them to this format.

/// Where one chain's objects live: `<prefix>/<chain>/` (just `<chain>/` for an empty prefix).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Layout {
    root: String,
}

impl Layout {
    pub fn new(prefix: &str, chain: &str) -> Layout {
        let prefix = prefix.trim_matches('/');
        let root = if prefix.is_empty() {
            format!("{chain}/")
        } else {
            format!("{prefix}/{chain}/")
        };
        Layout { root }
    }

    /// `<prefix>/<chain>/`, with the trailing slash.
    pub fn root(&self) -> &str {
        &self.root
    }

    pub fn segments_prefix(&self) -> String {
        format!("{}segments/", self.root)
    }

    pub fn checkpoints_prefix(&self) -> String {
        format!("{}checkpoints/", self.root)
    }

    pub fn segment_key(&self, first: u64, last: u64) -> String {
        format!("{}segments/{first:020}-{last:020}.jsonl", self.root)
    }

    pub fn checkpoint_key(&self, size: u64) -> String {
        format!("{}checkpoints/{size:020}.note", self.root)
    }

    pub fn key_key(&self, key_name: &str) -> String {
        format!("{}keys/{key_name}.vkey", self.root)
    }

    /// `(first, last)` of a segment key under this layout; `None` for any other key.
    pub fn parse_segment_key(&self, key: &str) -> Option<(u64, u64)> {
        let name = key
            .strip_prefix(&self.segments_prefix())?
            .strip_suffix(".jsonl")?;
        let (first, last) = name.split_once('-')?;
        let first = parse_padded(first)?;
        let last = parse_padded(last)?;
        (first >= 1 && last >= first).then_some((first, last))
    }

    /// `N` of a checkpoint key under this layout.
    pub fn parse_checkpoint_key(&self, key: &str) -> Option<u64> {
        let name = key
            .strip_prefix(&self.checkpoints_prefix())?
            .strip_suffix(".note")?;
        parse_padded(name).filter(|&n| n >= 1)
    }
}

/// Exactly 20 ASCII digits.
fn parse_padded(text: &str) -> Option<u64> {
    (text.len() == 20 && text.bytes().all(|b| b.is_ascii_digit()))
        .then(|| text.parse().ok())
        .flatten()
}

#[cfg(test)]
mod tests {
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
        assert_eq!(Layout::new("/a/b/", "c").root(), "a/b/c/");
        assert_eq!(Layout::new("", "c").segment_key(2, 3).len(), 2 + 9 + 41 + 6);
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
    }
}
