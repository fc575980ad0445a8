//! The image `make image` builds from the Dockerfile (buildah, on the stand-in bases): it runs
//! as 65532 with `senderops run` as its command, holds the binary and no shell, and stays small.

use std::process::Command;

use serde_json::Value;

use super::node::{IMAGE, image_archive};

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

#[test]
fn the_image_runs_as_65532_holds_the_binary_and_no_shell() {
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
    for shell in ["/bin/sh", "/bin/bash", "/usr/bin/sh", "/busybox"] {
        let out = run_in_image(&[shell, "-c", "true"]);
        assert!(!out.status.success(), "the image has a shell at {shell}");
    }

    // The docker archive holds the image's layers uncompressed: its size is the image's.
    let size = std::fs::metadata(image_archive())
        .expect("the archive")
        .len();
    eprintln!("image {IMAGE}: {:.1} MB uncompressed", size as f64 / 1e6);
    assert!(size < MAX_IMAGE_BYTES, "the image is {size} bytes");
}
