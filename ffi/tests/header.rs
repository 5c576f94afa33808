//! The checked-in `include/switchboard.h` must be exactly what cbindgen generates from
//! the current sources (build.rs writes a fresh copy into OUT_DIR on every build).
//!
//! To update the checked-in copy: `make header` (which runs this test with
//! `SWITCHBOARD_BLESS_HEADER=1`).

use std::path::PathBuf;

fn checked_in_path() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../include/switchboard.h")
}

fn fresh() -> String {
    std::fs::read_to_string(concat!(env!("OUT_DIR"), "/switchboard.h"))
        .expect("build.rs writes $OUT_DIR/switchboard.h")
}

#[test]
fn checked_in_header_matches_fresh_generation() {
    let fresh = fresh();
    let path = checked_in_path();
    if std::env::var_os("SWITCHBOARD_BLESS_HEADER").is_some() {
        std::fs::write(&path, &fresh).expect("write include/switchboard.h");
        eprintln!("updated {}", path.display());
        return;
    }
    let checked_in = std::fs::read_to_string(&path).unwrap_or_default();
    if checked_in != fresh {
        let first_diff = checked_in
            .lines()
            .zip(fresh.lines())
            .position(|(a, b)| a != b)
            .unwrap_or_else(|| checked_in.lines().count().min(fresh.lines().count()));
        panic!(
            "include/switchboard.h is out of date with ffi/src and ffi/cbindgen.toml \
             (first difference at line {}).\n\
             Regenerate it with `make header` and commit it.\n\
             checked in: {:?}\n\
             generated:  {:?}",
            first_diff + 1,
            checked_in
                .lines()
                .nth(first_diff)
                .unwrap_or("<end of file>"),
            fresh.lines().nth(first_diff).unwrap_or("<end of file>"),
        );
    }
}

#[test]
fn version_macros_match_cargo_toml() {
    let header = fresh();
    for (name, want) in [
        ("SB_VERSION_MAJOR", env!("CARGO_PKG_VERSION_MAJOR")),
        ("SB_VERSION_MINOR", env!("CARGO_PKG_VERSION_MINOR")),
        ("SB_VERSION_PATCH", env!("CARGO_PKG_VERSION_PATCH")),
    ] {
        let line = format!("#define {name} {want}\n");
        assert!(
            header.contains(&line),
            "the header should define {name} as {want} (Cargo.toml's version)"
        );
    }
}

#[test]
fn header_declares_every_exported_function() {
    let header = fresh();
    let src_dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("src");
    // ffi/src and its module folders (ffi/src/registry/).
    let mut files = Vec::new();
    let mut dirs = vec![src_dir];
    while let Some(dir) = dirs.pop() {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                dirs.push(path);
            } else if path.extension().is_some_and(|e| e == "rs") {
                files.push(path);
            }
        }
    }
    let mut exported = 0;
    for path in files {
        let text = std::fs::read_to_string(path).unwrap();
        for line in text.lines() {
            // Exported functions are `pub`; test callbacks inside `mod tests` are not.
            if !line.trim_start().starts_with("pub ") {
                continue;
            }
            let Some(rest) = line.split("extern \"C\" fn ").nth(1) else {
                continue;
            };
            let name = rest.split('(').next().unwrap();
            exported += 1;
            assert!(
                header.contains(&format!(" {name}(")) || header.contains(&format!("*{name}(")),
                "{name} is exported but not declared in the header"
            );
            assert!(name.starts_with("sb_"), "{name}: C names start with sb_");
        }
    }
    assert!(exported >= 19, "found only {exported} exported functions");
}
