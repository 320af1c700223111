//! Regenerates `include/comfywire.h` from the crate's `extern "C"` items.
//!
//! The header is committed; `scripts/test-c.sh` fails when a build leaves it
//! different from the committed one, so the ABI never changes unnoticed.
//! The file is only rewritten when its text changes, so an unchanged ABI
//! does not touch its modification time (and trigger C rebuilds).

use std::path::PathBuf;

fn main() {
    // A versioned soname, as C libraries have: `libcomfywire.so.0.1` while
    // the version is 0.1.x (before 1.0 a minor release may break the ABI),
    // `libcomfywire.so.1` from 1.0 on. scripts/install-c.sh lays out the
    // file and its links to match.
    if std::env::var("CARGO_CFG_TARGET_OS").as_deref() == Ok("linux") {
        let major = env!("CARGO_PKG_VERSION_MAJOR");
        let soversion = if major == "0" {
            format!("0.{}", env!("CARGO_PKG_VERSION_MINOR"))
        } else {
            major.to_owned()
        };
        println!("cargo:rustc-cdylib-link-arg=-Wl,-soname,libcomfywire.so.{soversion}");
    }
    // Read at run time: a build script compiled for another checkout of the
    // same target dir must not write that checkout's header.
    let crate_dir = PathBuf::from(
        std::env::var_os("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR"),
    );
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
