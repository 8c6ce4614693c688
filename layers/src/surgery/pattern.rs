//! [`PathPattern`]: globs over dotted module paths.

use autograd::{Error, Result};

/// One segment of a [`PathPattern`].
#[derive(Clone, Debug, PartialEq, Eq)]
enum Segment {
    /// `**`: zero or more segments.
    Any,
    /// A segment that may hold `*` wildcards (matching any run of characters within the
    /// segment); a lone `*` matches exactly one segment.
    Glob(String),
}

/// A glob over dotted module paths (`layer3.0.conv1`): `*` matches exactly one segment, `**`
/// zero or more segments, other segments match literally, and a `*` inside a segment matches any
/// run of characters within it (`conv*` matches `conv1` and `conv`). The empty glob `""` matches
/// only the root (the empty path).
///
/// ```
/// use layers::surgery::PathPattern;
/// let p = PathPattern::new("**.conv*").unwrap();
/// assert!(p.matches("conv1") && p.matches("layer1.0.conv2"));
/// assert!(!p.matches("layer1.0.bn1") && !p.matches("layer1.0.conv1.weight"));
/// assert!(PathPattern::new("blocks.*.mlp").unwrap().matches("blocks.11.mlp"));
/// assert!(PathPattern::new("layer3.**").unwrap().matches("layer3"));
/// assert!(PathPattern::new("").unwrap().matches("") && !PathPattern::new("").unwrap().matches("fc"));
/// assert!(PathPattern::new("layer1..conv").is_err());
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PathPattern {
    glob: String,
    segments: Vec<Segment>,
}

impl PathPattern {
    /// Parses `glob`. Empty segments (`a..b`, a leading or trailing dot) and `**` inside a longer
    /// segment (`a**`) are errors naming the glob.
    pub fn new(glob: &str) -> Result<PathPattern> {
        let bad = |why: &str| Error::invalid("PathPattern::new", format!("glob {glob:?}: {why}"));
        let mut segments = Vec::new();
        if !glob.is_empty() {
            for s in glob.split('.') {
                segments.push(match s {
                    "" => return Err(bad("empty segment (two dots, or a dot at an end)")),
                    "**" => Segment::Any,
                    _ if s.contains("**") => return Err(bad("`**` must be a whole segment")),
                    _ => Segment::Glob(s.to_string()),
                });
            }
        }
        Ok(PathPattern { glob: glob.to_string(), segments })
    }

    /// The glob this pattern was parsed from.
    pub fn glob(&self) -> &str {
        &self.glob
    }

    /// Whether the dotted module path `path` (`""` for the root) matches.
    pub fn matches(&self, path: &str) -> bool {
        let parts: Vec<&str> = if path.is_empty() { Vec::new() } else { path.split('.').collect() };
        match_from(&self.segments, &parts)
    }
}

fn match_from(pattern: &[Segment], parts: &[&str]) -> bool {
    match pattern.split_first() {
        None => parts.is_empty(),
        Some((Segment::Any, rest)) => (0..=parts.len()).any(|skip| match_from(rest, &parts[skip..])),
        Some((Segment::Glob(g), rest)) => {
            parts.split_first().is_some_and(|(first, tail)| glob_segment(g, first) && match_from(rest, tail))
        }
    }
}

/// Whether one segment matches a glob whose `*` matches any run of characters.
fn glob_segment(glob: &str, s: &str) -> bool {
    let pieces: Vec<&str> = glob.split('*').collect();
    if pieces.len() == 1 {
        return glob == s;
    }
    let (first, last) = (pieces[0], pieces[pieces.len() - 1]);
    if s.len() < first.len() + last.len() || !s.starts_with(first) || !s.ends_with(last) {
        return false;
    }
    // Greedy left-to-right for the middle pieces is exact for `*`-only globs.
    let mut rest = &s[first.len()..s.len() - last.len()];
    for piece in &pieces[1..pieces.len() - 1] {
        match rest.find(piece) {
            Some(i) => rest = &rest[i + piece.len()..],
            None => return false,
        }
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_match_table() {
        let table: &[(&str, &str, bool)] = &[
            ("layer3.**", "layer3", true),
            ("layer3.**", "layer3.0", true),
            ("layer3.**", "layer3.1.conv2", true),
            ("layer3.**", "layer30", false),
            ("layer3.**", "layer2.0", false),
            ("layer3.**", "", false),
            ("blocks.*.mlp", "blocks.0.mlp", true),
            ("blocks.*.mlp", "blocks.11.mlp", true),
            ("blocks.*.mlp", "blocks.mlp", false),
            ("blocks.*.mlp", "blocks.0.1.mlp", false),
            ("blocks.*.mlp", "blocks.0.mlp.fc1", false),
            ("**.conv*", "conv1", true),
            ("**.conv*", "layer1.0.conv2", true),
            ("**.conv*", "features.0.conv", true),
            ("**.conv*", "layer1.0.bn1", false),
            ("**.conv*", "layer1.0.conv1.x", false),
            ("**.conv*", "", false),
            ("", "", true),
            ("", "fc", false),
            ("**", "", true),
            ("**", "a.b.c", true),
            ("*", "", false),
            ("*", "fc", true),
            ("*", "layer1.0", false),
            ("layer*.*.conv1", "layer4.1.conv1", true),
            ("layer*.*.conv1", "layer4.conv1", false),
            ("**.0.**", "layer1.0", true),
            ("**.0.**", "layer1.0.conv1", true),
            ("**.0.**", "layer1.1", false),
            ("a*b*c", "abc", true),
            ("a*b*c", "axxbyyc", true),
            ("a*b*c", "axxc", false),
            ("a*a", "a", false),
            ("fc", "fc", true),
            ("fc", "fc1", false),
        ];
        for &(glob, path, expect) in table {
            assert_eq!(PathPattern::new(glob).unwrap().matches(path), expect, "{glob:?} on {path:?}");
        }
    }

    #[test]
    fn malformed_globs_are_errors() {
        for glob in [".a", "a.", "a..b", "a**", "**b.c"] {
            let e = PathPattern::new(glob).unwrap_err().to_string();
            assert!(e.contains(&format!("{glob:?}")), "{e}");
        }
    }
}
