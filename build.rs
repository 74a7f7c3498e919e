//! Builds the sample components in `wasm-samples/` so a fresh checkout needs
//! nothing but rustup and cargo.
//!
//! The samples are their own cargo workspace with their own target directory,
//! so the nested `cargo build` never waits on the lock this build holds. The
//! artifacts are copied next to the samples' manifest (`wasm-samples/*.wasm`,
//! ignored by git) and the directory is exported to the crate as
//! `env!("WASMKUBE_SAMPLES_DIR")`.

use std::env;
use std::ffi::OsString;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

const TARGET: &str = "wasm32-wasip2";
/// The artifacts of the samples workspace (`target/wasm32-wasip2/release/<artifact>`) and the
/// names they are copied to in `wasm-samples/`: two commands, and an HTTP component (a
/// library, whose file cargo names with an underscore).
const SAMPLES: &[(&str, &str)] = &[
    ("exerciser.wasm", "exerciser.wasm"),
    ("client.wasm", "client.wasm"),
    ("http_echo.wasm", "http-echo.wasm"),
];
/// What a change in rebuilds the samples.
const SAMPLE_INPUTS: &[&str] = &[
    "src",
    "Cargo.toml",
    "Cargo.lock",
    "client/src",
    "client/Cargo.toml",
    "http-echo/src",
    "http-echo/Cargo.toml",
];

/// Inherited variables a nested cargo must not see: the outer build's target,
/// flags, target dir and jobserver would redirect or break it. User settings
/// for the network and registries are kept.
const KEPT_CARGO_VARS: &[&str] = &["CARGO_HOME", "CARGO_NET_", "CARGO_HTTP_", "CARGO_REGISTR"];
const REMOVED_VARS: &[&str] = &[
    "RUSTFLAGS",
    "RUSTDOCFLAGS",
    "RUSTC_WORKSPACE_WRAPPER",
    "MAKEFLAGS",
    "MFLAGS",
];

fn main() {
    let root = PathBuf::from(env::var_os("CARGO_MANIFEST_DIR").expect("CARGO_MANIFEST_DIR"));
    let samples = root.join("wasm-samples");
    for input in SAMPLE_INPUTS {
        println!("cargo:rerun-if-changed=wasm-samples/{input}");
    }
    println!("cargo:rerun-if-changed=build.rs");

    ensure_target_installed();
    build_samples(&samples);
    for (artifact, name) in SAMPLES {
        let built = samples.join(format!("target/{TARGET}/release/{artifact}"));
        copy_if_changed(&built, &samples.join(name));
    }
    println!("cargo:rustc-env=WASMKUBE_SAMPLES_DIR={}", samples.display());
}

/// Adds the wasm32-wasip2 standard library with rustup when the toolchain
/// building us lacks it.
fn ensure_target_installed() {
    let rustc = env::var_os("RUSTC").unwrap_or_else(|| "rustc".into());
    let output = Command::new(&rustc)
        .args(["--print", "target-libdir", "--target", TARGET])
        .output()
        .unwrap_or_else(|e| panic!("wasm-samples: cannot run {}: {e}", rustc.display()));
    let libdir = String::from_utf8_lossy(&output.stdout).trim().to_owned();
    if output.status.success() && !libdir.is_empty() && Path::new(&libdir).is_dir() {
        return;
    }
    println!("cargo:warning=installing the {TARGET} target with rustup for wasm-samples");
    let status = Command::new("rustup")
        .args(["target", "add", TARGET])
        .stdout(Stdio::from(std::io::stderr()))
        .status()
        .unwrap_or_else(|e| {
            panic!("wasm-samples: the {TARGET} target is missing and rustup cannot run ({e}); install it with `rustup target add {TARGET}`")
        });
    assert!(
        status.success(),
        "wasm-samples: `rustup target add {TARGET}` failed with {status}"
    );
}

fn build_samples(samples: &Path) {
    let cargo = env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut command = Command::new(&cargo);
    command
        .args(["build", "--workspace", "--release", "--target", TARGET])
        .arg("--manifest-path")
        .arg(samples.join("Cargo.toml"))
        .arg("--target-dir")
        .arg(samples.join("target"))
        // Our stdout is parsed for `cargo:` directives; keep the nested
        // cargo's output on stderr, which cargo shows when the build fails.
        .stdout(Stdio::from(std::io::stderr()));
    for name in vars_to_remove(env::vars_os().map(|(name, _)| name)) {
        command.env_remove(name);
    }
    let status = command
        .status()
        .unwrap_or_else(|e| panic!("wasm-samples: cannot run {}: {e}", cargo.display()));
    assert!(
        status.success(),
        "wasm-samples: `cargo build --release --target {TARGET}` in {} failed with {status}; \
         its errors are above",
        samples.display()
    );
}

fn vars_to_remove(names: impl Iterator<Item = OsString>) -> Vec<OsString> {
    names
        .filter(|name| {
            let name = name.to_string_lossy();
            let cargo_var = (name.starts_with("CARGO_") || name.starts_with("__CARGO"))
                && !KEPT_CARGO_VARS.iter().any(|kept| name.starts_with(kept));
            cargo_var || REMOVED_VARS.contains(&name.as_ref())
        })
        .collect()
}

/// Copies only when the bytes differ, so an unchanged sample keeps its
/// modification time.
fn copy_if_changed(from: &Path, to: &Path) {
    let bytes = fs::read(from).unwrap_or_else(|e| {
        panic!(
            "wasm-samples: built artifact {} missing: {e}",
            from.display()
        )
    });
    if fs::read(to).is_ok_and(|old| old == bytes) {
        return;
    }
    fs::write(to, &bytes)
        .unwrap_or_else(|e| panic!("wasm-samples: cannot write {}: {e}", to.display()));
}
