//! Where each field of a YAML or JSON document sits in its text, so a violation can say
//! `tenant.yaml:14:7`. serde_yaml_ng keeps no positions; the source is walked a second time with
//! yaml-rust2's event parser (JSON is YAML too), only for sources with something to report.

use std::collections::HashMap;

use yaml_rust2::parser::{Event, MarkedEventReceiver, Parser};
use yaml_rust2::scanner::Marker;

/// A 1-based line and column.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
pub struct Position {
    pub line: usize,
    pub column: usize,
}

/// One step of a field path: a map key or a list index.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Segment {
    Key(String),
    Index(usize),
}

/// Splits a field path as violations write it (`spec.pools[0].labels[app.kubernetes.io/name]`)
/// into segments; `<root>` and the empty path have none.
pub fn segments(field: &str) -> Vec<Segment> {
    let mut out = Vec::new();
    if field == "<root>" {
        return out;
    }
    let mut rest = field;
    while !rest.is_empty() {
        if let Some(inner) = rest.strip_prefix('[') {
            // `["a]b"]`: a key written as a JSON string (see violation::push_key).
            if inner.starts_with('"') {
                let mut strings = serde_json::Deserializer::from_str(inner).into_iter::<String>();
                if let Some(Ok(key)) = strings.next() {
                    let after = &inner[strings.byte_offset()..];
                    out.push(Segment::Key(key));
                    rest = after.strip_prefix(']').unwrap_or(after);
                    continue;
                }
            }
            let end = inner.find(']').unwrap_or(inner.len());
            let key = &inner[..end];
            out.push(match key.parse::<usize>() {
                Ok(i) => Segment::Index(i),
                Err(_) => Segment::Key(key.to_owned()),
            });
            rest = inner.get(end + 1..).unwrap_or("");
        } else {
            let rest_no_dot = rest.strip_prefix('.').unwrap_or(rest);
            let end = rest_no_dot.find(['.', '[']).unwrap_or(rest_no_dot.len());
            if end > 0 {
                out.push(Segment::Key(rest_no_dot[..end].to_owned()));
            }
            rest = &rest_no_dot[end..];
        }
    }
    out
}

/// The positions of every node of every document of one YAML (or JSON) stream.
#[derive(Debug, Default)]
pub struct SourceMap {
    documents: Vec<HashMap<Vec<Segment>, Position>>,
}

impl SourceMap {
    /// Best effort: text the parser refuses gives what was read before the error.
    pub fn of(text: &str) -> SourceMap {
        let mut builder = Builder::default();
        let _ = Parser::new_from_str(text).load(&mut builder, true);
        SourceMap {
            documents: builder.documents,
        }
    }

    /// Where `field` (a violation's path, under `prefix` for an item of a List) is in document
    /// `index` (0-based, in stream order), or its nearest parent that the text has.
    pub fn locate(&self, index: usize, prefix: &[Segment], field: &str) -> Option<Position> {
        let positions = self.documents.get(index)?;
        let mut path: Vec<Segment> = prefix.to_vec();
        path.extend(segments(field));
        loop {
            if let Some(p) = positions.get(&path) {
                return Some(*p);
            }
            path.pop()?;
        }
    }
}

enum Frame {
    /// `placed`: whether the mapping's own position is known. yaml-rust2 marks a block mapping's
    /// start where it recognised its first key (at the `:`), so a mapping takes its first key's.
    Map {
        key: Option<Segment>,
        placed: bool,
    },
    Seq {
        next: usize,
    },
}

#[derive(Default)]
struct Builder {
    documents: Vec<HashMap<Vec<Segment>, Position>>,
    frames: Vec<Frame>,
    path: Vec<Segment>,
}

impl Builder {
    fn record(&mut self, mark: Marker) {
        if let Some(doc) = self.documents.last_mut() {
            doc.entry(self.path.clone()).or_insert(Position {
                line: mark.line(),
                column: mark.col() + 1,
            });
        }
    }

    /// A value starts: its path is the parent's plus the key or index it sits at. Returns whether
    /// it was a map key instead (then there is nothing more to do for it).
    fn begin_value(&mut self, event: &Event, mark: Marker) -> bool {
        if matches!(self.frames.last(), Some(Frame::Map { key: None, .. })) {
            let name = match event {
                Event::Scalar(value, ..) => value.clone(),
                _ => String::from("?"),
            };
            let mut place_map = false;
            if let Some(Frame::Map { key, placed }) = self.frames.last_mut() {
                *key = Some(Segment::Key(name.clone()));
                place_map = !std::mem::replace(placed, true);
            }
            if place_map {
                self.record(mark);
            }
            // A field is where its key is written.
            self.path.push(Segment::Key(name));
            self.record(mark);
            self.path.pop();
            return true;
        }
        match self.frames.last() {
            Some(Frame::Map { key: Some(k), .. }) => {
                let k = k.clone();
                self.path.push(k);
            }
            Some(Frame::Seq { next }) => {
                let i = *next;
                self.path.push(Segment::Index(i));
                if !matches!(event, Event::MappingStart(..)) {
                    self.record(mark);
                }
            }
            _ if matches!(event, Event::MappingStart(..)) => {}
            _ => self.record(mark),
        }
        false
    }

    /// A value ended: step the parent to its next key or index.
    fn end_value(&mut self) {
        match self.frames.last_mut() {
            Some(Frame::Map { key, .. }) if key.is_some() => {
                *key = None;
                self.path.pop();
            }
            Some(Frame::Seq { next }) => {
                *next += 1;
                self.path.pop();
            }
            _ => {}
        }
    }
}

impl MarkedEventReceiver for Builder {
    fn on_event(&mut self, event: Event, mark: Marker) {
        match event {
            Event::DocumentStart => {
                self.documents.push(HashMap::new());
                self.frames.clear();
                self.path.clear();
            }
            Event::Scalar(..) | Event::Alias(..) if !self.begin_value(&event, mark) => {
                self.end_value();
            }
            Event::MappingStart(..) | Event::SequenceStart(..) => {
                // (A mapping or sequence as a map key is not something a Tenant has.)
                self.begin_value(&event, mark);
                self.frames
                    .push(if matches!(event, Event::MappingStart(..)) {
                        Frame::Map {
                            key: None,
                            placed: false,
                        }
                    } else {
                        Frame::Seq { next: 0 }
                    });
            }
            Event::MappingEnd | Event::SequenceEnd => {
                self.frames.pop();
                self.end_value();
            }
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(map: &SourceMap, doc: usize, field: &str) -> (usize, usize) {
        let p = map.locate(doc, &[], field).unwrap();
        (p.line, p.column)
    }

    #[test]
    fn every_key_a_path_can_hold_reads_back() {
        for key in [
            "plain",
            "example.com/gpu",
            "a]b",
            "[x",
            "q\"uote",
            "a.b]c[d",
            "",
        ] {
            let mut path = "spec".to_owned();
            crate::admission::violation::push_key(&mut path, key);
            path.push_str(".next");
            assert_eq!(
                segments(&path),
                [
                    Segment::Key("spec".into()),
                    Segment::Key(key.into()),
                    Segment::Key("next".into())
                ],
                "{path}"
            );
        }
    }

    #[test]
    fn fields_of_block_yaml_are_where_their_keys_are() {
        let text = "apiVersion: v1\nspec:\n  pools:\n    - name: p0\n      servers: 17\n    - name: p1\n      labels:\n        app.kubernetes.io/name: x\n";
        let map = SourceMap::of(text);
        assert_eq!(at(&map, 0, "spec"), (2, 1));
        assert_eq!(at(&map, 0, "spec.pools[0].servers"), (5, 7));
        assert_eq!(at(&map, 0, "spec.pools[1]"), (6, 7));
        assert_eq!(
            at(&map, 0, "spec.pools[1].labels[app.kubernetes.io/name]"),
            (8, 9)
        );
        // A field that is not written: its nearest parent that is.
        assert_eq!(at(&map, 0, "spec.pools[1].volumesPerServer"), (6, 7));
        assert_eq!(at(&map, 0, "<root>"), (1, 1));
    }

    #[test]
    fn documents_of_a_stream_and_json_are_mapped_too() {
        let map = SourceMap::of("a: 1\n---\nb:\n  c: [1, {d: 2}]\n");
        assert_eq!(at(&map, 1, "b.c[1].d"), (4, 11));
        assert_eq!(at(&map, 1, "b.c[1]"), (4, 11));
        let json = SourceMap::of(
            "{\n  \"spec\": {\n    \"pools\": [\n      {\"servers\": 2}\n    ]\n  }\n}\n",
        );
        assert_eq!(at(&json, 0, "spec.pools[0].servers"), (4, 8));
    }

    #[test]
    fn paths_split_like_violations_write_them() {
        assert_eq!(
            segments("spec.pools[3].labels[a.b/c]"),
            vec![
                Segment::Key("spec".into()),
                Segment::Key("pools".into()),
                Segment::Index(3),
                Segment::Key("labels".into()),
                Segment::Key("a.b/c".into()),
            ]
        );
        assert!(segments("<root>").is_empty());
    }
}
