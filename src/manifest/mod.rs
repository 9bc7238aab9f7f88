//! Reading Kubernetes manifests from files, directories and stdin: multi-document YAML or JSON,
//! `kind: List` expanded, every error naming the source, the document and the line.

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};

use serde::Deserialize;
use serde_json::Value;

use crate::api::tenant::{API_VERSION, KIND};
pub mod source_map;

use source_map::{Position, Segment, SourceMap};

/// Where a document came from, for messages: `tenant.yaml: document 2 (line 14)`.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct Origin {
    pub source: String,
    /// 1-based index of the document in its source (items of a List count separately).
    pub document: usize,
    /// 1-based line where the document starts, when known.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub line: Option<usize>,
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: document {}", self.source, self.document)?;
        if let Some(line) = self.line {
            write!(f, " (line {line})")?;
        }
        Ok(())
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ManifestError {
    #[error("{source_name}: cannot read: {error}")]
    Read {
        source_name: String,
        error: std::io::Error,
    },
    #[error("{source_name}: document {document}: line {line}, column {column}: {message}")]
    Syntax {
        source_name: String,
        document: usize,
        line: usize,
        column: usize,
        message: String,
    },
    #[error("{source_name}: no YAML or JSON files found")]
    NoFiles { source_name: String },
}

#[derive(Clone, Debug, PartialEq)]
pub struct Document {
    pub origin: Origin,
    pub value: Value,
    /// Where the document is in its source text, to find its fields' lines and columns.
    locator: Locator,
}

/// The text a document came from, and where in it the document sits.
#[derive(Clone, Debug)]
struct Locator {
    source: Arc<SourceText>,
    /// 0-based index of the YAML document in the stream (0 for JSON).
    stream_index: usize,
    /// For an item of a List: `items[i]` (or `[i]` for a top-level JSON array).
    prefix: Vec<Segment>,
}

impl PartialEq for Locator {
    fn eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.source, &other.source)
            && self.stream_index == other.stream_index
            && self.prefix == other.prefix
    }
}

/// A source's text, with the positions of its fields worked out on first need.
#[derive(Debug)]
struct SourceText {
    text: String,
    map: OnceLock<SourceMap>,
}

impl Document {
    /// Whether this is a `minio.min.io/v2` Tenant.
    pub fn is_tenant(&self) -> bool {
        is_tenant(&self.value)
    }

    /// Line and column of `field` (a violation's path), or of its nearest parent written in the
    /// source. The source is walked for positions once, the first time any of its documents is
    /// asked.
    pub fn position(&self, field: &str) -> Option<Position> {
        let source = &self.locator.source;
        source
            .map
            .get_or_init(|| SourceMap::of(&source.text))
            .locate(self.locator.stream_index, &self.locator.prefix, field)
    }
}

/// Whether a JSON object is a `minio.min.io/v2` Tenant.
pub fn is_tenant(value: &Value) -> bool {
    value.get("apiVersion").and_then(Value::as_str) == Some(API_VERSION)
        && value.get("kind").and_then(Value::as_str) == Some(KIND)
}

/// The documents read before an error, and the error, if any: a broken document stops its source
/// (a YAML stream cannot be resynchronised) but what came before it is still judged.
pub struct Read {
    pub documents: Vec<Document>,
    pub error: Option<ManifestError>,
}

/// Parses one source's text.
pub fn parse(source_name: &str, text: &str) -> Read {
    let mut documents = Vec::new();
    let source = Arc::new(SourceText {
        text: text.to_owned(),
        map: OnceLock::new(),
    });
    let trimmed = text.trim_start_matches('\u{feff}').trim_start();
    if trimmed.starts_with('{') || trimmed.starts_with('[') {
        // JSON gets its own parser: its errors are clearer and it is much faster on large files.
        return match serde_json::from_str::<Value>(trimmed) {
            Ok(value) => {
                push_expanded(&mut documents, source_name, Some(1), (&source, 0), value);
                Read {
                    documents,
                    error: None,
                }
            }
            Err(e) => Read {
                documents,
                error: Some(ManifestError::Syntax {
                    source_name: source_name.to_owned(),
                    document: 1,
                    line: e.line() + text[..text.len() - trimmed.len()].matches('\n').count(),
                    column: e.column(),
                    message: e.to_string(),
                }),
            },
        };
    }
    let starts = document_start_lines(text);
    for (index, doc) in serde_yaml_ng::Deserializer::from_str(text).enumerate() {
        match Value::deserialize(doc) {
            Ok(Value::Null) => {}
            Ok(value) => push_expanded(
                &mut documents,
                source_name,
                starts.get(index).copied(),
                (&source, index),
                value,
            ),
            Err(e) => {
                let (line, column) = e.location().map_or((0, 0), |l| (l.line(), l.column()));
                let message = e.to_string();
                let message = message
                    .split(" at line ")
                    .next()
                    .unwrap_or(&message)
                    .to_owned();
                // The deserializer yields the same error forever after one: stop here.
                return Read {
                    documents,
                    error: Some(ManifestError::Syntax {
                        source_name: source_name.to_owned(),
                        document: index + 1,
                        line,
                        column,
                        message,
                    }),
                };
            }
        }
    }
    Read {
        documents,
        error: None,
    }
}

/// Line (1-based) where each YAML document starts, in the order the parser yields them: the text is
/// cut at `---` lines, and a part before the first `---` holding only comments is no document.
fn document_start_lines(text: &str) -> Vec<usize> {
    let mut starts = vec![1];
    let mut first_part_empty = true;
    let mut seen_marker = false;
    for (i, line) in text.lines().enumerate() {
        if line == "---" || line.starts_with("--- ") {
            if !seen_marker && first_part_empty {
                starts.clear();
            }
            seen_marker = true;
            starts.push(i + 2);
        } else if !seen_marker && !line.trim().is_empty() && !line.trim_start().starts_with('#') {
            first_part_empty = false;
        }
    }
    starts
}

fn push_expanded(
    out: &mut Vec<Document>,
    source: &str,
    line: Option<usize>,
    (text, stream_index): (&Arc<SourceText>, usize),
    value: Value,
) {
    let is_list = value
        .get("kind")
        .and_then(Value::as_str)
        .is_some_and(|k| k.ends_with("List"))
        && value.get("items").is_some_and(Value::is_array);
    let (items, prefix): (Vec<Value>, Option<&str>) = match value {
        Value::Object(mut map) if is_list => match map.remove("items") {
            Some(Value::Array(items)) => (items, Some("items")),
            _ => (Vec::new(), None),
        },
        Value::Array(items) => (items, Some("")),
        single => (vec![single], None),
    };
    for (i, value) in items.into_iter().enumerate() {
        let origin = Origin {
            source: source.to_owned(),
            document: out.len() + 1,
            line,
        };
        let prefix = match prefix {
            Some("") => vec![Segment::Index(i)],
            Some(key) => vec![Segment::Key(key.to_owned()), Segment::Index(i)],
            None => Vec::new(),
        };
        let locator = Locator {
            source: text.clone(),
            stream_index,
            prefix,
        };
        out.push(Document {
            origin,
            value,
            locator,
        });
    }
}

/// Reads a path (`-` is stdin; a directory is walked for .yaml, .yml and .json files, sorted).
pub fn read_path(path: &str) -> Vec<Read> {
    if path == "-" {
        let mut text = String::new();
        return vec![
            match std::io::Read::read_to_string(&mut std::io::stdin(), &mut text) {
                Ok(_) => parse("<stdin>", &text),
                Err(error) => unreadable("<stdin>".into(), error),
            },
        ];
    }
    let p = Path::new(path);
    if p.is_dir() {
        let mut files = Vec::new();
        collect_manifest_files(p, &mut files);
        files.sort();
        if files.is_empty() {
            return vec![Read {
                documents: Vec::new(),
                error: Some(ManifestError::NoFiles {
                    source_name: path.to_owned(),
                }),
            }];
        }
        return files
            .iter()
            .map(|f| read_file(&f.display().to_string()))
            .collect();
    }
    vec![read_file(path)]
}

fn read_file(path: &str) -> Read {
    match std::fs::read(path) {
        Ok(bytes) => match String::from_utf8(bytes) {
            Ok(text) => parse(path, &text),
            Err(e) => unreadable(
                path.to_owned(),
                std::io::Error::new(
                    std::io::ErrorKind::InvalidData,
                    format!("not UTF-8 text: {e}"),
                ),
            ),
        },
        Err(error) => unreadable(path.to_owned(), error),
    }
}

fn unreadable(source_name: String, error: std::io::Error) -> Read {
    Read {
        documents: Vec::new(),
        error: Some(ManifestError::Read { source_name, error }),
    }
}

fn collect_manifest_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        let hidden = path
            .file_name()
            .and_then(|n| n.to_str())
            .is_some_and(|n| n.starts_with('.'));
        if hidden {
            continue;
        }
        if path.is_dir() {
            collect_manifest_files(&path, out);
        } else if path
            .extension()
            .and_then(|e| e.to_str())
            .is_some_and(|e| matches!(e, "yaml" | "yml" | "json"))
        {
            out.push(path);
        }
    }
}
