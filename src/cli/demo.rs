//! The demo `up --demo` runs, embedded in the binary: its manifests and the components they
//! name are written to `<data-dir>/demo/` at first use, so an installed binary runs it from any
//! directory.

use std::fs;
use std::path::{Path, PathBuf};

use anyhow::Context as _;

/// The two-container pod sharing an emptyDir.
pub const POD_MANIFEST: &str = "demo.toml";
/// Three HTTP replicas behind a LoadBalancer Service.
pub const WEB_MANIFEST: &str = "web.yaml";

/// The demo's files: its manifests (whose images are relative to them) and the components.
const FILES: &[(&str, &[u8])] = &[
    (POD_MANIFEST, include_bytes!("../../wasm-samples/demo.toml")),
    (WEB_MANIFEST, include_bytes!("../../wasm-samples/web.yaml")),
    (
        "exerciser.wasm",
        include_bytes!(concat!(env!("WASMKUBE_SAMPLES_DIR"), "/exerciser.wasm")),
    ),
    (
        "http-echo.wasm",
        include_bytes!(concat!(env!("WASMKUBE_SAMPLES_DIR"), "/http-echo.wasm")),
    ),
];

/// Writes the demo's files under `data_dir` (again when they differ from the binary's) and
/// returns the directory holding them.
///
/// # Errors
/// When a file cannot be written.
pub fn install(data_dir: &Path) -> anyhow::Result<PathBuf> {
    let dir = data_dir.join("demo");
    fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
    for (name, bytes) in FILES {
        let path = dir.join(name);
        if fs::read(&path).is_ok_and(|old| old == *bytes) {
            continue;
        }
        fs::write(&path, bytes).with_context(|| format!("cannot write {}", path.display()))?;
    }
    Ok(dir)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_demo_is_written_next_to_its_components_and_kept() {
        let dir = tempfile::tempdir().unwrap();
        let manifest = install(dir.path()).unwrap().join(POD_MANIFEST);
        let text = fs::read_to_string(&manifest).unwrap();
        assert!(text.contains("image = \"exerciser.wasm\""), "{text}");
        let component = manifest.with_file_name("exerciser.wasm");
        let written = fs::metadata(&component).unwrap().modified().unwrap();
        assert!(fs::read(&component).unwrap().starts_with(b"\0asm"));
        install(dir.path()).unwrap();
        assert_eq!(
            fs::metadata(&component).unwrap().modified().unwrap(),
            written
        );
    }
}
