//! Regenerates `include/comfywire.h` from the crate's `extern "C"` items.
//!
//! The header is committed; `scripts/test-c.sh` fails when a build leaves it
//! different from the committed one, so the ABI never changes unnoticed.
//! The file is only rewritten when its text changes, so an unchanged ABI
//! does not touch its modification time (and trigger C rebuilds).

use std::path::PathBuf;

fn main() {
    let crate_dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let config_path = crate_dir.join("cbindgen.toml");
    let header = crate_dir.join("../../include/comfywire.h");
    println!("cargo:rerun-if-changed=src");
    println!("cargo:rerun-if-changed=cbindgen.toml");
    println!("cargo:rerun-if-changed=build.rs");

    let config = match cbindgen::Config::from_file(&config_path) {
        Ok(config) => config,
        Err(e) => panic!("cannot read {}: {e}", config_path.display()),
    };
    let bindings = match cbindgen::Builder::new()
        .with_crate(&crate_dir)
        .with_config(config)
        .generate()
    {
        Ok(bindings) => bindings,
        // A syntax error is reported by rustc itself with a better message;
        // failing here would only hide it.
        Err(e) => {
            println!("cargo:warning=cbindgen could not generate the header: {e}");
            return;
        }
    };
    let mut text = Vec::new();
    bindings.write(&mut text);
    if std::fs::read(&header).ok().as_deref() != Some(text.as_slice()) {
        if let Err(e) = std::fs::write(&header, &text) {
            panic!("cannot write {}: {e}", header.display());
        }
    }
}
