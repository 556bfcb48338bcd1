//! The browser auditor's files (`make auditor-web`: wasm-bindgen's glue and module and the
//! page code), read once at start from `[node] auditor_dir` and served at `/auditor/{file}`
//! for the dashboard's verify action. Only these three names are served, from memory: no path
//! from a request ever reaches the file system.

use std::path::Path;

use axum::body::Bytes;
use axum::extract::{Path as UrlPath, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use std::sync::Arc;
use thiserror::Error;

/// The files and their content types.
const FILES: [(&str, &str); 3] = [
    ("auditor.js", "text/javascript; charset=utf-8"),
    ("auditor_bg.wasm", "application/wasm"),
    ("ui.js", "text/javascript; charset=utf-8"),
];

/// The largest file accepted (the wasm is held within 500 KB by its build).
const MAX_FILE_BYTES: u64 = 4 << 20;

/// The auditor's files, in memory.
#[derive(Debug, Clone, Default)]
pub struct AuditorAssets {
    files: Vec<(&'static str, &'static str, Bytes)>,
}

/// Why the auditor's folder cannot be served.
#[derive(Debug, Error)]
pub enum AssetsError {
    /// A file is missing or unreadable.
    #[error("node.auditor_dir: cannot read {path} (build it with `make auditor-web`): {source}")]
    Read {
        /// The file.
        path: String,
        /// Why.
        source: std::io::Error,
    },
    /// A file is larger than any build makes.
    #[error("node.auditor_dir: {path} is {bytes} bytes, more than the {MAX_FILE_BYTES} accepted")]
    TooLarge {
        /// The file.
        path: String,
        /// Its size.
        bytes: u64,
    },
}

impl AuditorAssets {
    /// Reads the files from `dir`.
    pub fn load(dir: &Path) -> Result<Self, AssetsError> {
        let mut files = Vec::with_capacity(FILES.len());
        for (name, content_type) in FILES {
            let path = dir.join(name);
            let shown = path.display().to_string();
            let read = |source| AssetsError::Read {
                path: shown.clone(),
                source,
            };
            let bytes = std::fs::metadata(&path).map_err(read)?.len();
            if bytes > MAX_FILE_BYTES {
                return Err(AssetsError::TooLarge { path: shown, bytes });
            }
            let bytes = std::fs::read(&path).map_err(read)?;
            files.push((name, content_type, Bytes::from(bytes)));
        }
        Ok(Self { files })
    }

    /// A file's content type and bytes (shared, not copied).
    fn get(&self, name: &str) -> Option<(&'static str, Bytes)> {
        self.files
            .iter()
            .find(|(file, ..)| *file == name)
            .map(|(_, content_type, bytes)| (*content_type, bytes.clone()))
    }
}

/// `GET /auditor/{file}`.
pub async fn serve(
    State(assets): State<Option<Arc<AuditorAssets>>>,
    UrlPath(name): UrlPath<String>,
) -> Response {
    match assets.as_deref().and_then(|assets| assets.get(&name)) {
        Some((content_type, bytes)) => (
            [
                (header::CONTENT_TYPE, content_type),
                (header::CACHE_CONTROL, "no-cache"),
            ],
            bytes,
        )
            .into_response(),
        None if assets.is_none() => (
            StatusCode::NOT_FOUND,
            "this node does not serve the browser auditor (node.auditor_dir is not set)",
        )
            .into_response(),
        None => (StatusCode::NOT_FOUND, "no such auditor file").into_response(),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)] // test code

    use super::*;

    #[test]
    fn only_the_three_files_load_and_a_missing_one_is_named() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("auditor.js"), "export {}").unwrap();
        std::fs::write(dir.path().join("auditor_bg.wasm"), b"\0asm").unwrap();
        let err = AuditorAssets::load(dir.path()).unwrap_err();
        assert!(err.to_string().contains("ui.js"), "{err}");
        std::fs::write(dir.path().join("ui.js"), "export {}").unwrap();
        let assets = AuditorAssets::load(dir.path()).unwrap();
        assert_eq!(assets.get("auditor_bg.wasm").unwrap().0, "application/wasm");
        assert!(assets.get("../node.sqlite").is_none());
        assert!(assets.get("verify.html").is_none());
    }
}
