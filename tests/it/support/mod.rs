//! Shared helpers for the integration tests (`tests/it`), compiled once into their binary;
//! `benches/fleet` includes them too, with `#[path]`.

pub mod controlplane;
pub mod deploy;
pub mod fleet;
pub mod json_paths;
pub mod kubectl;
pub mod lease;
pub mod metrics;
pub mod openapi;
pub mod operator;
pub mod ports;
pub mod prism;
pub mod relay;
pub mod sim;
pub mod wait;

/// `path` (relative to the repository) as `make target` builds it, or a failure that says to
/// run that target: a test never runs without what it needs, and never skips.
pub fn built(path: &str, target: &str, what: &str) -> std::path::PathBuf {
    let built = controlplane::repo_root().join(path);
    assert!(
        built.is_file(),
        "{} is missing: run `make {target}` (or `make test`), which {what}",
        built.display()
    );
    built
}

/// The operator's image as `make image` writes it (a docker archive).
pub fn image_archive() -> std::path::PathBuf {
    built(
        "target/image/senderops.tar",
        "image",
        "builds it from the Dockerfile",
    )
}

/// Whether process `pid` still runs (a zombie no longer does).
pub fn process_runs(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|stat| {
        // `PID (COMM) STATE ...`; COMM may hold spaces and parentheses.
        stat.rsplit_once(") ")
            .is_some_and(|(_, rest)| !rest.starts_with('Z'))
    })
}

/// The PIDs of this machine's processes whose `/proc/PID/FILE` holds `needle`.
pub fn processes_whose(file: &str, needle: &str) -> std::collections::BTreeSet<u32> {
    std::fs::read_dir("/proc")
        .expect("read /proc")
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| {
            std::fs::read(format!("/proc/{pid}/{file}"))
                .is_ok_and(|text| String::from_utf8_lossy(&text).contains(needle))
        })
        .collect()
}
