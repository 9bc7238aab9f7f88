//! The shape of `src/`: data flows one way, so the modules' import graph has no cycle, and
//! docs/architecture.md names every module there is. Read from the source text: a `use` or a path
//! through `crate::`/`super::` is an edge from the module that writes it to the module it names.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use hanzo_testkit::repo_root;

/// A module, as its path from the crate root (`["reconcile", "pass"]`; the root is `[]`).
type Module = Vec<String>;

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// Every module of `src/` (but `main.rs`) and its text without its tests and comments.
fn modules() -> BTreeMap<Module, String> {
    let src = repo_root().join("src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    let mut modules = BTreeMap::new();
    for file in files {
        let relative = file.strip_prefix(&src).unwrap().with_extension("");
        let mut module: Module = relative
            .components()
            .map(|c| c.as_os_str().to_string_lossy().into_owned())
            .collect();
        match module.last().map(String::as_str) {
            Some("main") if module.len() == 1 => continue,
            Some("mod") | Some("lib") => {
                module.pop();
            }
            _ => {}
        }
        let text = std::fs::read_to_string(&file).unwrap();
        let code = text
            .split("#[cfg(test)]\nmod tests")
            .next()
            .unwrap_or_default()
            .lines()
            .map(|l| l.split("//").next().unwrap_or_default())
            .collect::<Vec<_>>()
            .join("\n");
        modules.insert(module, code);
    }
    modules
}

/// `use a::{b, c::{d, e}}` written out as `a::b`, `a::c::d`, `a::c::e`.
fn expand(prefix: &str, tree: &str, out: &mut Vec<String>) {
    let Some(open) = tree.find('{') else {
        out.push(format!("{prefix}{tree}"));
        return;
    };
    let (head, body) = (
        &tree[..open],
        &tree[open + 1..tree.rfind('}').unwrap_or(tree.len())],
    );
    let (mut depth, mut part) = (0, String::new());
    for c in body.chars() {
        match c {
            '{' => depth += 1,
            '}' => depth -= 1,
            ',' if depth == 0 => {
                expand(&format!("{prefix}{head}"), &std::mem::take(&mut part), out);
                continue;
            }
            _ => {}
        }
        part.push(c);
    }
    if !part.is_empty() {
        expand(&format!("{prefix}{head}"), &part, out);
    }
}

/// A use tree without whitespace and without its renames (`a as b` is `a`).
fn without_renames(tree: &str) -> String {
    let spaced = tree
        .replace(',', " , ")
        .replace('{', " { ")
        .replace('}', " } ");
    let mut tokens = spaced.split_whitespace();
    let mut out = String::new();
    while let Some(token) = tokens.next() {
        if token == "as" {
            tokens.next();
        } else {
            out.push_str(token);
        }
    }
    out
}

/// The paths a module names through `crate::` or `super::`, in `use` items and in code.
fn named_paths(code: &str) -> Vec<Vec<String>> {
    let mut paths = Vec::new();
    for item in code.split(';') {
        let item = item.trim();
        let Some(tree) = item
            .strip_prefix("use ")
            .or_else(|| item.strip_prefix("pub use "))
            .or_else(|| item.split_once(") use ").map(|(_, t)| t))
        else {
            continue;
        };
        let mut flat = Vec::new();
        expand("", &without_renames(tree), &mut flat);
        paths.extend(flat);
    }
    for (i, _) in code
        .match_indices("crate::")
        .chain(code.match_indices("super::"))
    {
        let preceded_by_ident = code[..i]
            .chars()
            .last()
            .is_some_and(|c| c.is_alphanumeric() || c == '_');
        if preceded_by_ident {
            continue;
        }
        let path: String = code[i..]
            .chars()
            .take_while(|c| c.is_alphanumeric() || *c == '_' || *c == ':')
            .collect();
        paths.push(path);
    }
    paths
        .into_iter()
        .map(|p| {
            p.split("::")
                .filter(|s| !s.is_empty())
                .map(str::to_owned)
                .collect()
        })
        .collect()
}

/// The module a path names: the longest prefix of it that is a module (items inside one name it).
fn resolve(from: &Module, path: &[String], modules: &BTreeMap<Module, String>) -> Option<Module> {
    let mut base: Module = match path.first()?.as_str() {
        "crate" => Vec::new(),
        "super" => from.clone(),
        _ => return None,
    };
    let mut rest = &path[1..];
    if path[0] == "super" {
        base.pop();
        while rest.first().is_some_and(|s| s == "super") {
            base.pop();
            rest = &rest[1..];
        }
    }
    let mut found = base.clone();
    for segment in rest {
        base.push(segment.clone());
        if modules.contains_key(&base) {
            found = base.clone();
        } else {
            break;
        }
    }
    Some(found)
}

fn graph() -> BTreeMap<Module, BTreeSet<Module>> {
    let modules = modules();
    modules
        .iter()
        .map(|(module, code)| {
            let targets = named_paths(code)
                .iter()
                .filter_map(|p| resolve(module, p, &modules))
                .filter(|t| t != module)
                .collect();
            (module.clone(), targets)
        })
        .collect()
}

/// The strongly connected components of more than one module (Tarjan).
fn cycles(graph: &BTreeMap<Module, BTreeSet<Module>>) -> Vec<Vec<Module>> {
    struct State<'a> {
        graph: &'a BTreeMap<Module, BTreeSet<Module>>,
        index: BTreeMap<&'a Module, usize>,
        low: BTreeMap<&'a Module, usize>,
        stack: Vec<&'a Module>,
        found: Vec<Vec<Module>>,
    }
    fn visit<'a>(s: &mut State<'a>, v: &'a Module) {
        let i = s.index.len();
        s.index.insert(v, i);
        s.low.insert(v, i);
        s.stack.push(v);
        for w in s.graph.get(v).into_iter().flatten() {
            let Some((w, _)) = s.graph.get_key_value(w) else {
                continue;
            };
            if !s.index.contains_key(w) {
                visit(s, w);
                let low = s.low[v].min(s.low[w]);
                s.low.insert(v, low);
            } else if s.stack.contains(&w) {
                let low = s.low[v].min(s.index[w]);
                s.low.insert(v, low);
            }
        }
        if s.low[v] == s.index[v] {
            let mut component = Vec::new();
            while let Some(w) = s.stack.pop() {
                component.push(w.clone());
                if w == v {
                    break;
                }
            }
            if component.len() > 1 {
                s.found.push(component);
            }
        }
    }
    let mut state = State {
        graph,
        index: BTreeMap::new(),
        low: BTreeMap::new(),
        stack: Vec::new(),
        found: Vec::new(),
    };
    for v in graph.keys() {
        if !state.index.contains_key(v) {
            visit(&mut state, v);
        }
    }
    state.found
}

fn name(m: &Module) -> String {
    if m.is_empty() {
        "crate".to_owned()
    } else {
        m.join("::")
    }
}

#[test]
fn the_modules_of_src_import_each_other_one_way_only() {
    let graph = graph();
    assert!(
        graph.len() > 40 && graph[&vec!["reconcile".to_owned(), "pass".to_owned()]].len() > 5,
        "the graph was read: {} modules",
        graph.len()
    );
    let found: Vec<String> = cycles(&graph)
        .iter()
        .map(|c| {
            let members: BTreeSet<&Module> = c.iter().collect();
            let edges: Vec<String> = c
                .iter()
                .flat_map(|a| {
                    graph[a]
                        .iter()
                        .filter(|b| members.contains(b))
                        .map(move |b| format!("{} -> {}", name(a), name(b)))
                })
                .collect();
            edges.join(", ")
        })
        .collect();
    assert!(
        found.is_empty(),
        "import cycles in src/ (move what both sides need into a module of its own):\n  {}",
        found.join("\n  ")
    );
}

#[test]
fn a_cycle_is_found_where_there_is_one() {
    let m = |s: &str| -> Module { s.split("::").map(str::to_owned).collect() };
    let graph = BTreeMap::from([
        (m("a"), BTreeSet::from([m("b")])),
        (m("b"), BTreeSet::from([m("c")])),
        (m("c"), BTreeSet::from([m("a")])),
        (m("d"), BTreeSet::from([m("a")])),
    ]);
    let found = cycles(&graph);
    assert_eq!(found.len(), 1);
    assert_eq!(found[0].len(), 3);
    let paths = named_paths(
        "use super::{status::{self, Blocked}, outcome as out};\nlet x = crate::api::names::f();",
    );
    assert!(paths.contains(&vec!["super".to_owned(), "outcome".to_owned()]));
    assert!(paths.contains(&vec![
        "crate".to_owned(),
        "api".to_owned(),
        "names".to_owned(),
        "f".to_owned()
    ]));
}

#[test]
fn docs_architecture_names_every_module() {
    let doc = std::fs::read_to_string(repo_root().join("docs/architecture.md")).unwrap();
    let missing: Vec<String> = graph()
        .keys()
        .filter(|m| m.len() == 1 || (m.len() == 2 && m[0] == "reconcile"))
        .map(|m| m.last().cloned().unwrap_or_default())
        .filter(|last| !doc.contains(&format!("`{last}`")))
        .collect();
    assert!(
        missing.is_empty(),
        "docs/architecture.md does not name these modules: {missing:?}"
    );
}
