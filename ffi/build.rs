//! Generates the C header from this crate's sources with cbindgen (pinned in
//! Cargo.toml) and `cbindgen.toml`, into `$OUT_DIR/switchboard.h`. The checked-in copy
//! is `include/switchboard.h`; `tests/header.rs` fails when the two differ, and
//! `make header` updates the checked-in copy. The cbindgen CLI of the same version,
//! run as `cbindgen --config ffi/cbindgen.toml --crate switchboard-ffi --output X ffi`,
//! produces the same bytes: everything is in cbindgen.toml and the sources.

use std::env;
use std::path::PathBuf;

fn main() {
    let crate_dir = PathBuf::from(env::var("CARGO_MANIFEST_DIR").expect("CARGO_MANIFEST_DIR"));
    let out = PathBuf::from(env::var("OUT_DIR").expect("OUT_DIR")).join("switchboard.h");
    println!("cargo:rerun-if-changed=cbindgen.toml");
    println!("cargo:rerun-if-changed=src");

    let config = cbindgen::Config::from_file(crate_dir.join("cbindgen.toml"))
        .unwrap_or_else(|e| panic!("ffi/cbindgen.toml: {e}"));
    let bindings = cbindgen::Builder::new()
        .with_config(config)
        .with_crate_and_name(&crate_dir, "switchboard-ffi")
        .generate()
        .unwrap_or_else(|e| panic!("cbindgen could not generate switchboard.h: {e}"));
    bindings.write_to_file(&out);
}
