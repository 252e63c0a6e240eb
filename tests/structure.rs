//! The code's shape, checked: no module imports a module that imports it back (inside any
//! crate), and no Rust file grows past what one reader holds in mind. Reads the sources only.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// Files longer than this are split by concern (ARCHITECTURE.md's invariants).
const MAX_LINES: usize = 700;

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = fs_err::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        let name = entry.file_name();
        if path.is_dir() && name != "target" && name != "fuzz" {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// A crate's modules by path (`""` is the crate root), each with its file's text.
fn modules(src: &Path) -> BTreeMap<String, String> {
    let mut files = Vec::new();
    rust_files(src, &mut files);
    files
        .into_iter()
        .map(|file| {
            let relative = file.strip_prefix(src).expect("under src");
            let mut parts: Vec<String> = relative
                .iter()
                .map(|p| p.to_string_lossy().trim_end_matches(".rs").to_owned())
                .collect();
            if matches!(
                parts.last().map(String::as_str),
                Some("lib" | "main" | "mod")
            ) {
                parts.pop();
            }
            let text = fs_err::read_to_string(&file).expect("readable source");
            (parts.join("::"), text)
        })
        .collect()
}

/// Every path a file names, as segment lists: `use` trees expanded, inline paths as written.
fn paths_in(text: &str) -> Vec<Vec<String>> {
    let code: String = text
        .lines()
        .map(|l| match l.find("//") {
            Some(i) => &l[..i],
            None => l,
        })
        .collect::<Vec<_>>()
        .join("\n");
    let chars: Vec<char> = code.chars().collect();
    let mut found = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let starts_word = i == 0 || !(chars[i - 1].is_alphanumeric() || chars[i - 1] == '_');
        if starts_word && (chars[i].is_alphabetic() || chars[i] == '_') {
            let (paths, next) = parse_tree(&chars, i);
            if paths.iter().any(|p| p.len() > 1) {
                found.extend(paths);
            }
            i = next.max(i + 1);
        } else {
            i += 1;
        }
    }
    found
}

fn ident(chars: &[char], mut i: usize) -> (String, usize) {
    let start = i;
    while i < chars.len() && (chars[i].is_alphanumeric() || chars[i] == '_') {
        i += 1;
    }
    (chars[start..i].iter().collect(), i)
}

fn skip_space(chars: &[char], mut i: usize) -> usize {
    while i < chars.len() && chars[i].is_whitespace() {
        i += 1;
    }
    i
}

/// `a::b::{c, d::e}` from `i`: the full paths, and where parsing stopped.
fn parse_tree(chars: &[char], i: usize) -> (Vec<Vec<String>>, usize) {
    let (first, mut i) = ident(chars, i);
    let mut prefix = vec![first];
    loop {
        if chars.get(i) == Some(&':') && chars.get(i + 1) == Some(&':') {
            i = skip_space(chars, i + 2);
            if chars.get(i) == Some(&'{') {
                let mut paths = Vec::new();
                i += 1;
                loop {
                    i = skip_space(chars, i);
                    match chars.get(i) {
                        Some('}') => return (paths, i + 1),
                        Some(',') => i += 1,
                        Some(c) if c.is_alphabetic() || *c == '_' => {
                            let (inner, next) = parse_tree(chars, i);
                            paths.extend(inner.into_iter().map(|p| {
                                let mut full = prefix.clone();
                                full.extend(p);
                                full
                            }));
                            i = next;
                        }
                        Some(_) => i += 1,
                        None => return (paths, i),
                    }
                }
            }
            if chars.get(i).is_some_and(|c| c.is_alphabetic() || *c == '_') {
                let (segment, next) = ident(chars, i);
                prefix.push(segment);
                i = next;
                continue;
            }
        }
        return (vec![prefix], i);
    }
}

/// The modules `module` imports from: through `use`, or by naming a path inline.
fn imports(module: &str, text: &str, all: &BTreeMap<String, String>) -> BTreeSet<String> {
    let own: Vec<&str> = if module.is_empty() {
        Vec::new()
    } else {
        module.split("::").collect()
    };
    // Inside an inline `mod tests { ... }`, `super` is the file's own module.
    let text = match text.find("mod tests {") {
        Some(at) => format!("{}{}", &text[..at], text[at..].replace("super::", "self::")),
        None => text.to_owned(),
    };
    let mut out = BTreeSet::new();
    for path in paths_in(&text) {
        let base: Vec<&str> = match path[0].as_str() {
            "crate" => Vec::new(),
            "self" => own.clone(),
            "super" => {
                let mut base = own.clone();
                let mut segments = path.iter().peekable();
                while segments.next_if(|s| *s == "super").is_some() {
                    base.pop();
                }
                let rest: Vec<&str> = segments.map(String::as_str).collect();
                if let Some(target) = longest_module(&base, &rest, all) {
                    out.insert(target);
                }
                continue;
            }
            _ => {
                // A child module named without `self::`.
                let mut child = own.clone();
                child.push(path[0].as_str());
                if !all.contains_key(&child.join("::")) {
                    continue;
                }
                own.clone()
            }
        };
        let rest: Vec<&str> = path
            .iter()
            .skip(usize::from(matches!(path[0].as_str(), "crate" | "self")))
            .map(String::as_str)
            .collect();
        if let Some(target) = longest_module(&base, &rest, all) {
            out.insert(target);
        }
    }
    out.remove(module);
    out
}

fn longest_module(base: &[&str], rest: &[&str], all: &BTreeMap<String, String>) -> Option<String> {
    let mut best = None;
    let mut path: Vec<&str> = base.to_vec();
    if all.contains_key(&path.join("::")) {
        best = Some(path.join("::"));
    }
    for segment in rest {
        path.push(segment);
        if all.contains_key(&path.join("::")) {
            best = Some(path.join("::"));
        } else {
            break;
        }
    }
    best
}

fn crates() -> Vec<(String, PathBuf)> {
    let mut out: Vec<(String, PathBuf)> = fs_err::read_dir(repo().join("sandbox"))
        .expect("sandbox/")
        .flatten()
        .filter(|e| e.path().join("src").is_dir())
        .map(|e| {
            (
                e.file_name().to_string_lossy().into_owned(),
                e.path().join("src"),
            )
        })
        .collect();
    out.sort();
    out
}

#[test]
fn no_module_imports_a_module_that_imports_it_back() {
    let mut cycles = Vec::new();
    for (name, src) in crates() {
        let all = modules(&src);
        let edges: BTreeMap<&String, BTreeSet<String>> = all
            .iter()
            .map(|(module, text)| (module, imports(module, text, &all)))
            .collect();
        for (module, targets) in &edges {
            for target in targets {
                // Reachable back from the target: a circle, however long.
                let mut seen = BTreeSet::new();
                let mut stack = vec![target.clone()];
                while let Some(next) = stack.pop() {
                    if !seen.insert(next.clone()) {
                        continue;
                    }
                    if &next == *module {
                        let show = |m: &str| {
                            if m.is_empty() {
                                "lib".to_owned()
                            } else {
                                m.to_owned()
                            }
                        };
                        cycles.push(format!(
                            "{name}: {} -> {} -> ... -> {}",
                            show(module),
                            show(target),
                            show(module)
                        ));
                        break;
                    }
                    if let Some(further) = edges.get(&next) {
                        stack.extend(further.iter().cloned());
                    }
                }
            }
        }
    }
    assert!(
        cycles.is_empty(),
        "module import circles:\n{}",
        cycles.join("\n")
    );
}

#[test]
fn no_rust_file_is_longer_than_a_reader_holds() {
    let mut files = Vec::new();
    rust_files(&repo().join("sandbox"), &mut files);
    rust_files(&repo().join("tests"), &mut files);
    let long: Vec<String> = files
        .iter()
        .filter_map(|file| {
            let lines = fs_err::read_to_string(file).ok()?.lines().count();
            (lines > MAX_LINES).then(|| format!("{} ({lines} lines)", file.display()))
        })
        .collect();
    assert!(
        long.is_empty(),
        "split these by concern:\n{}",
        long.join("\n")
    );
}

#[test]
fn the_checker_sees_a_circle() {
    let all: BTreeMap<String, String> = [
        ("".to_owned(), "mod a; mod b; pub use a::Thing;".to_owned()),
        (
            "a".to_owned(),
            "use crate::b::Other; pub struct Thing;".to_owned(),
        ),
        ("b".to_owned(), "use super::{a::Thing, c};".to_owned()),
    ]
    .into_iter()
    .collect();
    assert_eq!(
        imports("", &all[""], &all),
        BTreeSet::from(["a".to_owned()])
    );
    assert_eq!(
        imports("a", &all["a"], &all),
        BTreeSet::from(["b".to_owned()])
    );
    assert_eq!(
        imports("b", &all["b"], &all),
        BTreeSet::from(["".to_owned(), "a".to_owned()])
    );
}
