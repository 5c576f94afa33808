//! docs/configuration.md documents every configuration key with its default.

use switchboard_core::config::KEYS;

#[test]
fn every_key_is_documented_with_its_default() {
    let readme = include_str!("../../docs/configuration.md");
    let mut missing = Vec::new();
    for k in KEYS {
        let row = readme
            .lines()
            .find(|l| l.starts_with(&format!("| `{}` |", k.key)));
        let ok = row.is_some_and(|r| {
            let default = if k.default.is_empty() {
                "empty"
            } else {
                k.default
            };
            r.contains(&format!("`{default}`")) || r.contains(default)
        });
        if !ok {
            missing.push(k.key);
        }
    }
    assert!(
        missing.is_empty(),
        "docs/configuration.md lacks (or has the wrong default for): {missing:?}"
    );
}
