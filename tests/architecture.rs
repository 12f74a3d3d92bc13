//! The house rules that keep the crate readable, checked on its sources:
//! - the modules of `src/` (top level: `engine`, `model`, `gpu`, `ffi`, ...) import each other
//!   without a cycle;
//! - `src/model/` depends only on tch and the model's own utilities (errors, configuration,
//!   layers, weights, geometry), never on the runtime around it (engine, runner, GPU plumbing,
//!   settings, FFI);
//! - no file of the FFI is over 600 lines.
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

fn sources(dir: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    let mut dirs = vec![dir.to_path_buf()];
    while let Some(dir) = dirs.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                dirs.push(path);
            } else if path.extension().is_some_and(|e| e == "rs") {
                files.push(path);
            }
        }
    }
    files.sort();
    files
}

fn src() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("src")
}

/// The top-level module a source file belongs to (`src/gpu/support.rs` -> `gpu`).
fn module_of(file: &Path) -> Option<String> {
    let relative = file.strip_prefix(src()).ok()?;
    let first = relative.components().next()?.as_os_str().to_str()?;
    let name = first.strip_suffix(".rs").unwrap_or(first);
    (name != "lib").then(|| name.to_owned())
}

/// The code of a file without its `#[cfg(test)]` module (tests may reach anywhere) and without
/// comments.
fn code_of(file: &Path) -> String {
    let text = std::fs::read_to_string(file).unwrap();
    let text = match text.find("#[cfg(test)]\nmod tests") {
        Some(at) => &text[..at],
        None => &text[..],
    };
    text.lines().map(|l| l.split("//").next().unwrap_or("")).collect::<Vec<_>>().join("\n")
}

/// The top-level modules a file's code names through `crate::`, including grouped imports
/// (`use crate::{a, b::c}`).
fn dependencies(code: &str) -> BTreeSet<String> {
    let mut found = BTreeSet::new();
    let mut rest = code;
    while let Some(at) = rest.find("crate::") {
        rest = &rest[at + "crate::".len()..];
        if let Some(group) = rest.strip_prefix('{') {
            let end = group.find('}').unwrap_or(group.len());
            for item in group[..end].split(',') {
                let name: String = item.trim().chars().take_while(|c| c.is_alphanumeric() || *c == '_').collect();
                if !name.is_empty() {
                    found.insert(name);
                }
            }
        } else {
            let name: String = rest.chars().take_while(|c| c.is_alphanumeric() || *c == '_').collect();
            if !name.is_empty() {
                found.insert(name);
            }
        }
    }
    found
}

fn module_graph() -> BTreeMap<String, BTreeSet<String>> {
    let mut graph: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    let modules: BTreeSet<String> = sources(&src()).iter().filter_map(|f| module_of(f)).collect();
    for file in sources(&src()) {
        let Some(module) = module_of(&file) else { continue };
        let deps = dependencies(&code_of(&file));
        let entry = graph.entry(module.clone()).or_default();
        // Only edges to other modules (re-exports at the crate root such as `crate::Result` are
        // the `error` module's, and name no module here).
        entry.extend(deps.into_iter().filter(|d| *d != module && modules.contains(d)));
    }
    graph
}

#[test]
fn the_module_graph_has_no_cycle() {
    let graph = module_graph();
    // Depth-first search with colours: reaching a module still on the stack closes a cycle.
    fn visit<'a>(
        node: &'a str,
        graph: &'a BTreeMap<String, BTreeSet<String>>,
        state: &mut BTreeMap<&'a str, u8>,
        stack: &mut Vec<&'a str>,
    ) -> Option<Vec<String>> {
        match state.get(node) {
            Some(2) => return None,
            Some(1) => {
                let start = stack.iter().position(|n| *n == node).unwrap();
                let mut cycle: Vec<String> = stack[start..].iter().map(|s| s.to_string()).collect();
                cycle.push(node.to_owned());
                return Some(cycle);
            }
            _ => {}
        }
        state.insert(node, 1);
        stack.push(node);
        for next in graph.get(node).into_iter().flatten() {
            if let Some(cycle) = visit(next, graph, state, stack) {
                return Some(cycle);
            }
        }
        stack.pop();
        state.insert(node, 2);
        None
    }
    let mut state = BTreeMap::new();
    for node in graph.keys() {
        if let Some(cycle) = visit(node, &graph, &mut state, &mut Vec::new()) {
            panic!("module cycle: {}\nthe graph: {graph:#?}", cycle.join(" -> "));
        }
    }
}

#[test]
fn the_model_depends_only_on_tch_and_its_own_utilities() {
    let allowed: BTreeSet<&str> = ["error", "config", "nn", "weights", "utils", "model"].into();
    let mut offenders = Vec::new();
    for file in sources(&src().join("model")) {
        let code = code_of(&file);
        for dep in dependencies(&code) {
            if !allowed.contains(dep.as_str()) && dep != "Result" && dep != "Error" {
                offenders.push(format!("{}: crate::{dep}", file.display()));
            }
        }
        if code.contains("std::env") || code.contains("env::var") {
            offenders.push(format!("{}: reads the environment", file.display()));
        }
    }
    assert!(offenders.is_empty(), "src/model/ reaches outside the model:\n{}", offenders.join("\n"));
}

#[test]
fn no_file_of_the_ffi_is_over_600_lines() {
    let long: Vec<String> = sources(&src().join("ffi"))
        .into_iter()
        .map(|f| (std::fs::read_to_string(&f).unwrap().lines().count(), f))
        .filter(|(lines, _)| *lines > 600)
        .map(|(lines, f)| format!("{}: {lines} lines", f.display()))
        .collect();
    assert!(long.is_empty(), "{long:?}");
}
