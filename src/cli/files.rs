//! Reading `-f` arguments: files, directories and stdin, decoded into objects whose relative
//! component paths are made absolute.

use std::io::Read as _;
use std::path::{Path, PathBuf};

use anyhow::{Context as _, bail};
use serde_json::Value;

use crate::manifest::{self, Format};

/// One object read from a manifest.
#[derive(Clone, Debug, PartialEq)]
pub struct Manifest {
    /// Where it came from, as kubectl names it in messages (`demo.yaml`, `STDIN`).
    pub source: String,
    pub object: Value,
}

/// The extensions read from a directory.
const MANIFEST_EXTENSIONS: &[&str] = &["yaml", "yml", "json", "toml"];

/// Reads every `-f` argument in order: a file, a directory (its `*.yaml`, `*.yml`,
/// `*.json` and `*.toml` files, by name, not recursing) or `-` for stdin.
///
/// # Errors
/// When a path does not exist, cannot be read or does not decode.
pub fn read(filenames: &[String]) -> anyhow::Result<Vec<Manifest>> {
    if filenames.is_empty() {
        bail!("must specify one of -f and -k");
    }
    let mut manifests = Vec::new();
    for filename in filenames {
        if filename == "-" {
            let mut text = String::new();
            std::io::stdin()
                .read_to_string(&mut text)
                .context("cannot read stdin")?;
            let base = std::env::current_dir().context("cannot find the current directory")?;
            manifests.extend(decode("STDIN", &text, Format::Sniff, &base)?);
            continue;
        }
        let path = Path::new(filename);
        if !path.exists() {
            bail!("the path \"{filename}\" does not exist");
        }
        for file in files_of(path)? {
            manifests.extend(read_file(&file)?);
        }
    }
    Ok(manifests)
}

/// The objects of one manifest file.
///
/// # Errors
/// When it cannot be read or does not decode.
pub fn read_file(path: &Path) -> anyhow::Result<Vec<Manifest>> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    let absolute =
        std::path::absolute(path).with_context(|| format!("cannot resolve {}", path.display()))?;
    let base = absolute.parent().map(Path::to_path_buf).unwrap_or_default();
    decode(
        &path.display().to_string(),
        &text,
        Format::from_path(path),
        &base,
    )
}

fn files_of(path: &Path) -> anyhow::Result<Vec<PathBuf>> {
    if !path.is_dir() {
        return Ok(vec![path.to_path_buf()]);
    }
    let mut files = Vec::new();
    for entry in std::fs::read_dir(path)
        .with_context(|| format!("cannot read directory {}", path.display()))?
    {
        let file = entry?.path();
        let extension = file
            .extension()
            .and_then(|e| e.to_str())
            .map(str::to_ascii_lowercase);
        if file.is_file() && extension.is_some_and(|e| MANIFEST_EXTENSIONS.contains(&e.as_str())) {
            files.push(file);
        }
    }
    files.sort();
    Ok(files)
}

fn decode(source: &str, text: &str, format: Format, base: &Path) -> anyhow::Result<Vec<Manifest>> {
    let objects = manifest::decode_documents(text, format)
        .with_context(|| format!("error parsing {source}"))?;
    Ok(objects
        .into_iter()
        .map(|mut object| {
            resolve_images(&mut object, base);
            Manifest {
                source: source.to_string(),
                object,
            }
        })
        .collect())
}

/// Makes the relative component paths in `object`'s pod spec (or pod template) absolute
/// against `base`, the manifest's directory, so the server finds them wherever it runs.
pub fn resolve_images(object: &mut Value, base: &Path) {
    const POD_SPECS: &[&str] = &[
        "/spec",
        "/spec/template/spec",
        "/spec/jobTemplate/spec/template/spec",
    ];
    for pointer in POD_SPECS {
        let Some(spec) = object.pointer_mut(pointer) else {
            continue;
        };
        for list in ["containers", "initContainers", "ephemeralContainers"] {
            let Some(Value::Array(containers)) = spec.get_mut(list) else {
                continue;
            };
            for container in containers {
                if let Some(Value::String(image)) = container.get_mut("image")
                    && let Some(resolved) = resolve_image(image, base)
                {
                    *image = resolved;
                }
            }
        }
    }
}

/// The absolute path of a relative component path; None for absolute paths, URLs
/// (`file://`, `oci://`, ...) and registry references (`ghcr.io/org/app:1.0`).
fn resolve_image(image: &str, base: &Path) -> Option<String> {
    let path = Path::new(image);
    if image.is_empty() || path.is_absolute() || image.contains("://") {
        return None;
    }
    let joined = base.join(path);
    let looks_like_a_path =
        image.ends_with(".wasm") || image.starts_with("./") || image.starts_with("../");
    if !looks_like_a_path && !joined.exists() {
        return None;
    }
    let absolute = joined.canonicalize().unwrap_or_else(|_| normalize(&joined));
    Some(absolute.display().to_string())
}

/// Removes `.` and `..` components without touching the file system.
fn normalize(path: &Path) -> PathBuf {
    let mut normalized = PathBuf::new();
    for component in path.components() {
        match component {
            std::path::Component::CurDir => {}
            std::path::Component::ParentDir => {
                normalized.pop();
            }
            other => normalized.push(other),
        }
    }
    normalized
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn relative_component_paths_become_absolute() {
        let mut pod = json!({"kind": "Pod", "spec": {
            "containers": [
                {"name": "a", "image": "exerciser.wasm"},
                {"name": "b", "image": "./sub/../x.wasm"},
                {"name": "c", "image": "/abs/y.wasm"},
                {"name": "d", "image": "file:///z.wasm"},
                {"name": "e", "image": "ghcr.io/org/app:1.0"}
            ],
            "initContainers": [{"name": "i", "image": "../init.wasm"}]
        }});
        resolve_images(&mut pod, Path::new("/nonexistent/manifests"));
        let images: Vec<_> = pod["spec"]["containers"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["image"].as_str().unwrap().to_string())
            .collect();
        assert_eq!(
            images,
            [
                "/nonexistent/manifests/exerciser.wasm",
                "/nonexistent/manifests/x.wasm",
                "/abs/y.wasm",
                "file:///z.wasm",
                "ghcr.io/org/app:1.0"
            ]
        );
        assert_eq!(
            pod["spec"]["initContainers"][0]["image"],
            "/nonexistent/init.wasm"
        );
    }

    #[test]
    fn pod_templates_are_resolved_too() {
        let mut deployment =
            json!({"spec": {"template": {"spec": {"containers": [{"image": "web.wasm"}]}}}});
        resolve_images(&mut deployment, Path::new("/m"));
        assert_eq!(
            deployment["spec"]["template"]["spec"]["containers"][0]["image"],
            "/m/web.wasm"
        );
    }

    #[test]
    fn directories_yield_manifest_files_in_name_order() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("b.toml"),
            "apiVersion = \"v1\"\nkind = \"Namespace\"\n[metadata]\nname = \"b\"\n",
        )
        .unwrap();
        std::fs::write(dir.path().join("a.yaml"), "apiVersion: v1\nkind: Namespace\nmetadata: {name: a}\n---\napiVersion: v1\nkind: Namespace\nmetadata: {name: a2}\n").unwrap();
        std::fs::write(dir.path().join("notes.txt"), "not a manifest").unwrap();
        let manifests = read(&[dir.path().display().to_string()]).unwrap();
        let names: Vec<_> = manifests
            .iter()
            .map(|m| m.object["metadata"]["name"].clone())
            .collect();
        assert_eq!(names, [json!("a"), json!("a2"), json!("b")]);
        assert!(manifests[0].source.ends_with("a.yaml"));
    }

    #[test]
    fn missing_paths_and_bad_files_are_reported_with_their_name() {
        let error = read(&["/no/such/file.yaml".into()]).unwrap_err();
        assert_eq!(
            error.to_string(),
            "the path \"/no/such/file.yaml\" does not exist"
        );
        let dir = tempfile::tempdir().unwrap();
        let bad = dir.path().join("bad.json");
        std::fs::write(&bad, "{\"kind\": }").unwrap();
        let error = format!("{:#}", read(&[bad.display().to_string()]).unwrap_err());
        assert!(
            error.starts_with(&format!(
                "error parsing {}: error parsing JSON document 1 (line 1",
                bad.display()
            )),
            "{error}"
        );
    }
}
