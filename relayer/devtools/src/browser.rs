//! Headless Chromium (Debian's package) for the browser tests: run a page, take its rendered
//! DOM or a screenshot, and read the attributes the pages put on what they render.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::DevError;

/// The Chromium binary: `$CHROMIUM`, else the first of the usual names on PATH.
pub fn chromium() -> Result<PathBuf, DevError> {
    if let Some(path) = std::env::var_os("CHROMIUM") {
        return Ok(PathBuf::from(path));
    }
    let paths = std::env::var_os("PATH").unwrap_or_default();
    ["chromium", "chromium-browser", "google-chrome"]
        .iter()
        .flat_map(|name| std::env::split_paths(&paths).map(move |dir| dir.join(name)))
        .find(|candidate| candidate.is_file())
        .ok_or_else(|| {
            DevError::Invalid(
                "no Chromium found: install Debian's `chromium` (make deps) or set CHROMIUM".into(),
            )
        })
}

/// What a headless run produces.
pub enum Capture<'a> {
    /// The DOM once the page settled, returned as text.
    Dom,
    /// A PNG screenshot written to this file.
    Screenshot(&'a Path),
}

/// Runs headless Chromium on `url` (blocking) and returns its stdout: the DOM with
/// [`Capture::Dom`]. The page gets up to `budget_ms` of virtual time to settle.
pub fn headless(url: &str, capture: Capture<'_>, budget_ms: u64) -> Result<String, DevError> {
    let profile = tempfile::tempdir().map_err(|err| DevError::io("a Chromium profile", err))?;
    let capture = match capture {
        Capture::Dom => "--dump-dom".to_string(),
        Capture::Screenshot(file) => format!("--screenshot={}", file.display()),
    };
    let output = Command::new(chromium()?)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-dev-shm-usage",
            "--disable-background-networking",
            "--disable-extensions",
            "--no-first-run",
            "--hide-scrollbars",
            "--window-size=1200,1400",
            // The pages under test are on loopback behind throwaway CAs.
            "--ignore-certificate-errors",
        ])
        // Lets the page's fetches, wasm and rendering finish before the capture.
        .arg(format!("--virtual-time-budget={budget_ms}"))
        .arg(format!("--user-data-dir={}", profile.path().display()))
        .arg(capture)
        .arg(url)
        .output()
        .map_err(|err| DevError::io("running chromium", err))?;
    if !output.status.success() {
        return Err(DevError::Invalid(format!(
            "chromium failed on {url}: {}",
            String::from_utf8_lossy(&output.stderr)
        )));
    }
    Ok(String::from_utf8_lossy(&output.stdout).into_owned())
}

/// The standalone page (`verify.html`, an absolute path) opened on `bundle`'s bytes with a
/// trust anchor `anchor` (`pin=<hex>`, or `rpc=<url>&contract=<addr>`), all in the fragment.
pub fn bundle_link(page: &Path, bundle: &[u8], anchor: &str) -> String {
    let bundle = cosmwasm_std::Binary::from(bundle)
        .to_base64()
        .replace('+', "-")
        .replace('/', "_");
    format!("file://{}#bundle={bundle}&{anchor}", page.display())
}

/// The value of attribute `name` in the first tag of `dom` whose text contains `marker`
/// (e.g. `class="audit `), as Chromium serialises it.
pub fn attribute(dom: &str, marker: &str, name: &str) -> Option<String> {
    let at = dom.find(marker)?;
    let start = dom[..at].rfind('<')?;
    let end = at + dom[at..].find('>')?;
    let tag = &dom[start..end];
    let key = format!(" {name}=\"");
    let value = &tag[tag.find(&key)? + key.len()..];
    Some(value[..value.find('"')?].to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn attributes_are_read_from_the_marked_tag_only() {
        let dom = r#"<div class="x" data-outcome="no"></div><div class="audit failed" data-epoch="3" data-outcome="failed" data-check="certified.invalid_signature"><h3>"#;
        assert_eq!(
            attribute(dom, "class=\"audit ", "data-check").as_deref(),
            Some("certified.invalid_signature")
        );
        assert_eq!(
            attribute(dom, "class=\"audit ", "data-outcome").as_deref(),
            Some("failed")
        );
        assert_eq!(attribute(dom, "class=\"audit ", "data-verdict"), None);
        assert_eq!(attribute(dom, "class=\"missing", "data-check"), None);
    }
}
