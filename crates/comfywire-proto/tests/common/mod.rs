//! Shared by the integration tests: where the golden traces are.
#![allow(dead_code, clippy::disallowed_methods)]

use std::path::PathBuf;
use std::time::Instant;

use comfywire_proto::trace::Trace;

/// `COMFYWIRE_TRACES` if set; else `../shared/traces` beside the checkout
/// when present (new recordings dropped there are picked up); else the copy
/// inside the repository.
pub fn traces_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("COMFYWIRE_TRACES") {
        return PathBuf::from(dir);
    }
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..");
    let shared = root.join("../shared/traces");
    if shared.is_dir() {
        return shared;
    }
    root.join("tests/data/traces")
}

/// Every `*.jsonl` trace, sorted by name.
pub fn load_traces() -> Vec<(String, Trace)> {
    let dir = traces_dir();
    let mut paths: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("cannot read traces dir {}: {e}", dir.display()))
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "jsonl"))
        .collect();
    paths.sort();
    assert!(!paths.is_empty(), "no traces in {}", dir.display());
    paths
        .into_iter()
        .map(|p| {
            let name = p
                .file_stem()
                .unwrap_or_default()
                .to_string_lossy()
                .into_owned();
            let text =
                std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
            let trace = Trace::parse(&text).unwrap_or_else(|e| panic!("{name}: {e}"));
            (name, trace)
        })
        .collect()
}

/// A base instant for fake time.
pub fn base() -> Instant {
    Instant::now()
}
