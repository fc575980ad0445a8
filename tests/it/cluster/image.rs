//! The image `make image` builds from the Dockerfile (buildah, on the stand-in bases): it runs
//! as 65532 with `senderops run` as its command, holds the binary and no shell, and stays small.

use std::process::Command;

use serde_json::Value;

use super::node::{IMAGE, image_archive, turn};

/// distroless cc plus one release binary; well above what it is (about 30 MB), well below a
/// Debian base's.
const MAX_IMAGE_BYTES: u64 = 60 * 1024 * 1024;

fn buildah(args: &[&str]) -> std::process::Output {
    Command::new("buildah")
        .args(args)
        .output()
        .expect("run buildah (make node-packages installs it)")
}

/// Runs `command` in a container of the image (buildah run, no network), as the image's user.
fn run_in_image(command: &[&str]) -> std::process::Output {
    let from = buildah(&["from", "--pull=never", "--quiet", IMAGE]);
    assert!(
        from.status.success(),
        "buildah from {IMAGE}: {}",
        String::from_utf8_lossy(&from.stderr)
    );
    let container = String::from_utf8_lossy(&from.stdout).trim().to_string();
    let mut args = vec!["run", "--network", "none", &container, "--"];
    args.extend(command);
    let out = buildah(&args);
    buildah(&["rm", &container]);
    out
}

/// File names of shells, and of the multi-call binaries that are one.
const SHELLS: &[&str] = &[
    "sh", "bash", "dash", "ash", "zsh", "ksh", "mksh", "busybox", "toybox",
];

/// Paths in the image's filesystem (`buildah mount`) whose file name is one of `names`.
fn image_files_named(names: &[&str]) -> Vec<String> {
    fn walk(dir: &std::path::Path, root: &std::path::Path, names: &[&str], out: &mut Vec<String>) {
        for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
            let path = entry.path();
            if names.contains(&entry.file_name().to_string_lossy().as_ref()) {
                out.push(format!("/{}", path.strip_prefix(root).unwrap().display()));
            }
            if entry.file_type().is_ok_and(|t| t.is_dir()) {
                walk(&path, root, names, out);
            }
        }
    }
    let from = buildah(&["from", "--pull=never", "--quiet", IMAGE]);
    assert!(from.status.success(), "buildah from {IMAGE}: {from:?}");
    let container = String::from_utf8_lossy(&from.stdout).trim().to_string();
    let mount = buildah(&["mount", &container]);
    assert!(mount.status.success(), "buildah mount: {mount:?}");
    let root = std::path::PathBuf::from(String::from_utf8_lossy(&mount.stdout).trim());
    assert!(
        root.join("senderops").is_file(),
        "the mount is the image's filesystem: {}",
        root.display()
    );
    let mut found = Vec::new();
    walk(&root, &root, names, &mut found);
    buildah(&["umount", &container]);
    buildah(&["rm", &container]);
    found
}

#[test]
fn the_image_runs_as_65532_holds_the_binary_and_no_shell() {
    // buildah mounts the image and runs containers of it: not while a node test compares the
    // host before and after its node.
    let _turn = turn();
    image_archive();
    let inspect = buildah(&["inspect", "--type", "image", IMAGE]);
    assert!(
        inspect.status.success(),
        "{IMAGE} is not in buildah's storage (make image builds it): {}",
        String::from_utf8_lossy(&inspect.stderr)
    );
    let inspect: Value = serde_json::from_slice(&inspect.stdout).expect("buildah inspect JSON");
    let config = &inspect["OCIv1"]["config"];
    assert_eq!(config["User"], "65532:65532", "{config}");
    assert_eq!(
        config["Entrypoint"],
        serde_json::json!(["/senderops"]),
        "{config}"
    );
    assert_eq!(config["Cmd"], serde_json::json!(["run"]), "{config}");

    let version = run_in_image(&["/senderops", "--version"]);
    assert!(
        version.status.success()
            && String::from_utf8_lossy(&version.stdout).starts_with("senderops "),
        "the binary runs in its image with the image's libraries: {version:?}"
    );
    let crd = run_in_image(&["/senderops", "crd"]);
    assert!(
        String::from_utf8_lossy(&crd.stdout).contains("kind: CustomResourceDefinition"),
        "{crd:?}"
    );
    // No shell: none in the image's files, wherever it might be (distroless' debug images keep
    // busybox under /busybox/), and none that runs from where shells live; each attempt fails
    // because there is nothing there, not for another reason.
    let shells = image_files_named(SHELLS);
    assert!(shells.is_empty(), "the image has shells: {shells:?}");
    for shell in [
        "/bin/sh",
        "/bin/bash",
        "/usr/bin/sh",
        "/usr/bin/bash",
        "/bin/dash",
        "/bin/busybox",
        "/busybox/sh",
    ] {
        let out = run_in_image(&[shell, "-c", "true"]);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            !out.status.success() && stderr.contains("no such file or directory"),
            "{shell} is not in the image: {out:?}"
        );
    }

    // The docker archive holds the image's layers uncompressed: its size is the image's.
    let size = std::fs::metadata(image_archive())
        .expect("the archive")
        .len();
    eprintln!("image {IMAGE}: {:.1} MB uncompressed", size as f64 / 1e6);
    assert!(size < MAX_IMAGE_BYTES, "the image is {size} bytes");
}
