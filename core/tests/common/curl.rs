//! curl, the real HTTP client of the server tests.

use std::process::Command;

/// Runs curl with `args`; returns the status code, the body and the HTTP version
/// (`-w` appends them), or the curl failure.
pub fn curl(args: &[&str]) -> Result<(u16, String, String), String> {
    let out = Command::new("curl")
        .args([
            "-sS",
            "--max-time",
            "10",
            "-w",
            "\n%{http_code} %{http_version}",
        ])
        .args(args)
        .output()
        .map_err(|e| format!("curl could not run: {e}"))?;
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    if !out.status.success() {
        return Err(format!(
            "curl {args:?} failed ({}): {}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    let (body, tail) = text.rsplit_once('\n').unwrap_or(("", &text));
    let (code, version) = tail.split_once(' ').unwrap_or((tail, ""));
    Ok((
        code.parse().unwrap_or(0),
        body.to_string(),
        version.to_string(),
    ))
}
