//! Where things are in a YAML document: a skeleton of the document (mappings, sequences and
//! the position of every key and value, no values) that turns a field path such as
//! `assets[2].criticality` into a line, and a position reported by serde-saphyr back into a
//! field path. It lets the model stay free of span wrappers while every diagnostic, semantic
//! ones included, still points at a line.

use serde::de::{self, Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_saphyr::{Location, Spanned};
use std::fmt;

/// One node of a YAML document, with the positions of its children.
#[derive(Debug)]
pub enum LocatedNode {
    Mapping(Vec<(Spanned<KeyText>, Spanned<LocatedNode>)>),
    Sequence(Vec<Spanned<LocatedNode>>),
    Scalar,
    Null,
}

/// A mapping key as written. Read as a string so that `n` or `on` stay text rather than
/// turning into YAML 1.1 booleans.
#[derive(Debug)]
pub struct KeyText(pub String);

/// One step of a field path: `assets`, then `[2]`, then `criticality`.
#[derive(Debug, PartialEq)]
enum Segment<'a> {
    Key(&'a str),
    Index(usize),
}

/// Splits `assets[2].criticality` into its steps. Keys of the estate schema are plain
/// identifiers, so `.` and `[` never occur inside them.
fn segments(field: &str) -> Vec<Segment<'_>> {
    let mut out = Vec::new();
    for part in field.split('.').filter(|part| !part.is_empty()) {
        let (key, mut indexes) = part.split_once('[').unwrap_or((part, ""));
        if !key.is_empty() {
            out.push(Segment::Key(key));
        }
        while let Some((index, rest)) = indexes.split_once(']') {
            if let Ok(index) = index.parse() {
                out.push(Segment::Index(index));
            }
            indexes = rest.trim_start_matches('[');
        }
    }
    out
}

/// The 1-based line of the deepest node on `field`'s path that exists in the document: the
/// line of the field itself, or of the object that lacks it. A key is placed on its own line
/// rather than its value's, which for a nested mapping is the next one.
pub fn line_of_field(root: &Spanned<LocatedNode>, field: &str) -> u64 {
    let mut node = root;
    let mut line = root.referenced.line();
    for segment in segments(field) {
        let next = match (&node.value, segment) {
            (LocatedNode::Mapping(entries), Segment::Key(name)) => entries
                .iter()
                .find(|(key, _)| key.value.0 == name)
                .map(|(key, value)| (key.referenced.line(), value)),
            (LocatedNode::Sequence(items), Segment::Index(index)) => {
                items.get(index).map(|item| (item.referenced.line(), item))
            }
            _ => None,
        };
        let Some((next_line, next_node)) = next else {
            break;
        };
        line = next_line;
        node = next_node;
    }
    line
}

/// The field path of the node at `line` and `column` (1-based, where serde-saphyr reports an
/// error), best effort. A value starting exactly there wins (a `missing field` error points at its mapping, whose
/// first key starts at the same place); then a key starting there (`unknown field`); then
/// the last node starting before it.
pub fn field_at(root: &Spanned<LocatedNode>, line: u64, column: u64) -> String {
    let target = (line, column);
    let mut exact_value = None;
    let mut exact_key = None;
    let mut before = None;
    let mut path = String::new();
    visit(root, &mut path, &mut |path, at, is_key| {
        let position = (at.line(), at.column());
        if position == target {
            let slot = if is_key {
                &mut exact_key
            } else {
                &mut exact_value
            };
            // The outermost value starting here is the one the error is about; the
            // innermost key is the only key there can be.
            if slot.is_none() || is_key {
                *slot = Some(path.to_string());
            }
        }
        if position <= target {
            before = Some(path.to_string());
        }
    });
    exact_value.or(exact_key).or(before).unwrap_or_default()
}

/// Calls `seen(path, location, is_key)` for every node in document order.
fn visit(
    node: &Spanned<LocatedNode>,
    path: &mut String,
    seen: &mut impl FnMut(&str, Location, bool),
) {
    seen(path, node.referenced, false);
    let len = path.len();
    match &node.value {
        LocatedNode::Mapping(entries) => {
            for (key, value) in entries {
                if !path.is_empty() {
                    path.push('.');
                }
                path.push_str(&key.value.0);
                seen(path, key.referenced, true);
                visit(value, path, seen);
                path.truncate(len);
            }
        }
        LocatedNode::Sequence(items) => {
            for (index, item) in items.iter().enumerate() {
                path.push_str(&format!("[{index}]"));
                visit(item, path, seen);
                path.truncate(len);
            }
        }
        LocatedNode::Scalar | LocatedNode::Null => {}
    }
}

impl<'de> Deserialize<'de> for KeyText {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct KeyVisitor;

        impl Visitor<'_> for KeyVisitor {
            type Value = KeyText;

            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a mapping key")
            }

            fn visit_str<E: de::Error>(self, text: &str) -> Result<KeyText, E> {
                Ok(KeyText(text.to_string()))
            }
        }

        deserializer.deserialize_str(KeyVisitor)
    }
}

impl<'de> Deserialize<'de> for LocatedNode {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct NodeVisitor;

        impl<'de> Visitor<'de> for NodeVisitor {
            type Value = LocatedNode;

            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("any YAML node")
            }

            fn visit_bool<E>(self, _: bool) -> Result<LocatedNode, E> {
                Ok(LocatedNode::Scalar)
            }

            fn visit_i64<E>(self, _: i64) -> Result<LocatedNode, E> {
                Ok(LocatedNode::Scalar)
            }

            fn visit_i128<E>(self, _: i128) -> Result<LocatedNode, E> {
                Ok(LocatedNode::Scalar)
            }

            fn visit_u64<E>(self, _: u64) -> Result<LocatedNode, E> {
                Ok(LocatedNode::Scalar)
            }

            fn visit_u128<E>(self, _: u128) -> Result<LocatedNode, E> {
                Ok(LocatedNode::Scalar)
            }

            fn visit_f64<E>(self, _: f64) -> Result<LocatedNode, E> {
                Ok(LocatedNode::Scalar)
            }

            fn visit_str<E>(self, _: &str) -> Result<LocatedNode, E> {
                Ok(LocatedNode::Scalar)
            }

            fn visit_bytes<E>(self, _: &[u8]) -> Result<LocatedNode, E> {
                Ok(LocatedNode::Scalar)
            }

            fn visit_unit<E>(self) -> Result<LocatedNode, E> {
                Ok(LocatedNode::Null)
            }

            fn visit_none<E>(self) -> Result<LocatedNode, E> {
                Ok(LocatedNode::Null)
            }

            fn visit_some<D: Deserializer<'de>>(self, inner: D) -> Result<LocatedNode, D::Error> {
                LocatedNode::deserialize(inner)
            }

            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<LocatedNode, A::Error> {
                let mut items = Vec::new();
                while let Some(item) = seq.next_element()? {
                    items.push(item);
                }
                Ok(LocatedNode::Sequence(items))
            }

            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<LocatedNode, A::Error> {
                let mut entries = Vec::new();
                while let Some(key) = map.next_key()? {
                    entries.push((key, map.next_value()?));
                }
                Ok(LocatedNode::Mapping(entries))
            }
        }

        deserializer.deserialize_any(NodeVisitor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tree(yaml: &str) -> Spanned<LocatedNode> {
        serde_saphyr::from_str(yaml).expect("test document parses")
    }

    const DOCUMENT: &str = "\
id: acme
incident_grouping:
  window: 30m
assets:
  - id: a
    criticality: 3
  - {id: b, criticality: 9}
  - id: c
";

    #[test]
    fn splits_field_paths_into_keys_and_indexes() {
        assert_eq!(
            segments("assets[2].members[10]"),
            [
                Segment::Key("assets"),
                Segment::Index(2),
                Segment::Key("members"),
                Segment::Index(10)
            ]
        );
        assert_eq!(segments(""), []);
    }

    #[test]
    fn finds_the_line_of_a_field_or_of_its_nearest_existing_parent() {
        let root = tree(DOCUMENT);
        assert_eq!(line_of_field(&root, ""), 1);
        assert_eq!(line_of_field(&root, "incident_grouping"), 2);
        assert_eq!(line_of_field(&root, "incident_grouping.window"), 3);
        assert_eq!(line_of_field(&root, "assets[0].criticality"), 6);
        assert_eq!(line_of_field(&root, "assets[1].criticality"), 7);
        assert_eq!(line_of_field(&root, "assets[2].criticality"), 8);
        assert_eq!(line_of_field(&root, "assets[7]"), 4);
    }

    #[test]
    fn maps_an_error_position_back_to_a_field() {
        let root = tree(DOCUMENT);
        let at = |line, column| field_at(&root, line, column);
        assert_eq!(at(5, 5), "assets[0]");
        assert_eq!(at(6, 5), "assets[0].criticality");
        assert_eq!(at(7, 26), "assets[1].criticality");
        assert_eq!(at(7, 27), "assets[1].criticality");
        assert_eq!(at(3, 11), "incident_grouping.window");
    }
}
