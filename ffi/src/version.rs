//! The library version.

use std::ffi::c_char;

/// Major version of the switchboard headers (Cargo.toml's version, checked when the
/// crate is compiled).
pub const SB_VERSION_MAJOR: u32 = 0;
/// Minor version of the switchboard headers.
pub const SB_VERSION_MINOR: u32 = 1;
/// Patch version of the switchboard headers.
pub const SB_VERSION_PATCH: u32 = 0;

const fn parse_u32(s: &str) -> u32 {
    let b = s.as_bytes();
    let mut i = 0;
    let mut n = 0u32;
    while i < b.len() {
        n = n * 10 + (b[i] - b'0') as u32;
        i += 1;
    }
    n
}

// The header's version macros are literals (cbindgen copies them from the constants
// above); these make a version bump in Cargo.toml fail to compile until they match.
const _: () = assert!(SB_VERSION_MAJOR == parse_u32(env!("CARGO_PKG_VERSION_MAJOR")));
const _: () = assert!(SB_VERSION_MINOR == parse_u32(env!("CARGO_PKG_VERSION_MINOR")));
const _: () = assert!(SB_VERSION_PATCH == parse_u32(env!("CARGO_PKG_VERSION_PATCH")));

static VERSION: &str = concat!(env!("CARGO_PKG_VERSION"), "\0");

/// The version of the loaded library, e.g. "0.1.0" (compare with the
/// `SB_VERSION_*` macros of the header you compiled against). A static string:
/// never NULL, never freed.
#[unsafe(no_mangle)]
pub extern "C" fn sb_version() -> *const c_char {
    std::panic::catch_unwind(|| VERSION.as_ptr())
        .unwrap_or(c"?".as_ptr().cast())
        .cast()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn version_string_matches_cargo() {
        // SAFETY: sb_version returns a pointer to a static NUL-terminated string.
        let v = unsafe { std::ffi::CStr::from_ptr(sb_version()) };
        assert_eq!(v.to_str().unwrap(), env!("CARGO_PKG_VERSION"));
        assert_eq!(
            format!("{SB_VERSION_MAJOR}.{SB_VERSION_MINOR}.{SB_VERSION_PATCH}"),
            env!("CARGO_PKG_VERSION")
        );
    }
}
