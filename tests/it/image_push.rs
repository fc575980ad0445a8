//! Getting the image into a registry as the README says: `make image-push IMAGE=…` (its very
//! line, with the plain-HTTP switch it documents) into a real OCI registry, the CNCF distribution
//! registry (`make registry` builds it from its Go module) listening on 127.0.0.1, then the
//! image read back through the registry's HTTP API: the manifest under the tag, the archive's
//! config (user 65532, entrypoint `/senderops`, command `run`) and every layer. The release's
//! `make chart-push` goes into the same kind of registry and its chart is read back. No node:
//! these tests take no turn on it.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::support::controlplane::repo_root;
use crate::support::deploy::{documented_command, helm_binary};
use crate::support::wait::Wait;
use crate::support::{built, image_archive};

/// The registry answers `/v2/` within this of its start.
const START_TIMEOUT: Duration = Duration::from_secs(30);

/// The manifest types a registry may hold an image or an artifact under.
const MANIFEST_TYPES: &str = "application/vnd.oci.image.manifest.v1+json, \
     application/vnd.docker.distribution.manifest.v2+json";

/// Variables a surrounding `make test` (or the caller's shell) may pass down, which a user
/// running the README's line from a shell does not have.
const MAKE_ENV: &[&str] = &[
    "MAKEFLAGS",
    "MFLAGS",
    "MAKELEVEL",
    "IMAGE",
    "IMAGE_PUSH_FLAGS",
    "RELEASE_TAG",
    "RELEASE_REGISTRY",
    "RELEASE_HELM",
    "HELM_PUSH_FLAGS",
];

/// A distribution registry on 127.0.0.1 (plain HTTP), storing in a temporary directory; killed
/// when dropped.
struct Registry {
    child: Child,
    addr: String,
    log: PathBuf,
    _dir: tempfile::TempDir,
}

impl Registry {
    async fn start() -> Registry {
        let binary = built(
            "target/tools/registry",
            "registry",
            "builds the CNCF distribution registry from its Go module",
        );
        let dir = tempfile::tempdir().expect("a directory for the registry");
        let port = crate::support::ports::unused();
        let addr = format!("127.0.0.1:{port}");
        let config = dir.path().join("config.yml");
        std::fs::write(
            &config,
            format!(
                "version: 0.1\nlog:\n  level: warn\n  accesslog:\n    disabled: true\n\
                 storage:\n  filesystem:\n    rootdirectory: {}\n\
                 http:\n  addr: {addr}\n",
                dir.path().join("storage").display()
            ),
        )
        .expect("write the registry's config");
        let log = dir.path().join("registry.log");
        let log_file = std::fs::File::create(&log).expect("create the registry's log");
        let child = Command::new(&binary)
            .arg("serve")
            .arg(&config)
            .env("OTEL_TRACES_EXPORTER", "none")
            .stdin(Stdio::null())
            .stdout(log_file.try_clone().expect("clone the log handle"))
            .stderr(log_file)
            .spawn()
            .expect("start the registry");
        let mut registry = Registry {
            child,
            addr,
            log,
            _dir: dir,
        };
        let log = registry.log.clone();
        Wait::until("the registry to answer /v2/")
            .within(START_TIMEOUT)
            .context(|| std::fs::read_to_string(&log).unwrap_or_default())
            .poll_ok(async || {
                if let Some(status) = registry.child.try_wait().expect("poll the registry") {
                    panic!("the registry exited ({status}):\n{}", registry.log());
                }
                let url = format!("http://{}/v2/", registry.addr);
                match client().get(&url).send().await {
                    Ok(response) if response.status() == 200 => Ok(()),
                    Ok(response) => Err(format!("GET /v2/: {}", response.status())),
                    Err(err) => Err(format!("GET /v2/: {err}")),
                }
            })
            .await;
        registry
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// GET of a registry API path (`/v2/…`), asserting 200; returns the response.
    async fn get(&self, path: &str, accept: &str) -> reqwest::Response {
        let url = format!("http://{}{path}", self.addr);
        let response = client()
            .get(&url)
            .header("Accept", accept)
            .send()
            .await
            .unwrap_or_else(|e| panic!("GET {url}: {e}"));
        assert_eq!(
            response.status(),
            200,
            "GET {url}; the registry's log:\n{}",
            self.log()
        );
        response
    }

    /// The manifest of `repository:reference`, and the digest the registry gives it.
    async fn manifest(&self, repository: &str, reference: &str) -> (Value, String) {
        let response = self
            .get(
                &format!("/v2/{repository}/manifests/{reference}"),
                MANIFEST_TYPES,
            )
            .await;
        let digest = response
            .headers()
            .get("Docker-Content-Digest")
            .and_then(|d| d.to_str().ok())
            .expect("the registry names the manifest's digest")
            .to_string();
        (response.json().await.expect("a JSON manifest"), digest)
    }

    async fn blob(&self, repository: &str, digest: &str) -> Vec<u8> {
        self.get(&format!("/v2/{repository}/blobs/{digest}"), "*/*")
            .await
            .bytes()
            .await
            .expect("the blob's bytes")
            .to_vec()
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn client() -> reqwest::Client {
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()
        .expect("an HTTP client")
}

/// `make ARGS` in the repository, as from a shell (no variables from a surrounding make), with
/// `env` added, off the async threads.
fn make(args: &[String], env: &[(&str, &str)]) -> Output {
    let mut command = Command::new("make");
    command.args(args).current_dir(repo_root());
    for name in MAKE_ENV {
        command.env_remove(name);
    }
    command.envs(env.iter().copied());
    tokio::task::block_in_place(|| command.output()).expect("run make")
}

fn assert_made(output: &Output, what: &str) {
    assert!(
        output.status.success(),
        "{what} failed ({}):\n{}{}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

/// The config digest the docker archive's manifest.json names (`Config: "<hex>.json"`, or
/// `blobs/sha256/<hex>`).
fn archive_config_digest(archive: &Path) -> String {
    let output = Command::new("tar")
        .args(["-xOf"])
        .arg(archive)
        .arg("manifest.json")
        .output()
        .expect("run tar");
    assert!(output.status.success(), "read manifest.json of the archive");
    let manifest: Value = serde_json::from_slice(&output.stdout).expect("the archive's manifest");
    let config = manifest[0]["Config"].as_str().expect("a Config entry");
    let hex = config
        .rsplit('/')
        .next()
        .unwrap_or(config)
        .trim_end_matches(".json");
    format!("sha256:{hex}")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn make_image_push_puts_the_image_in_a_registry_as_the_readme_says() {
    let archive = image_archive();
    let registry = Registry::start().await;
    let image = format!("{}/team/senderops:test", registry.addr);

    // The README's line, the image named for this registry, plus the switch it documents for a
    // registry that speaks plain HTTP.
    let mut command = documented_command("make image-push IMAGE=", &image);
    assert_eq!(
        command,
        ["make", "image-push", &format!("IMAGE={image}")],
        "the README's push line"
    );
    command.push("IMAGE_PUSH_FLAGS=--dest-tls-verify=false".into());
    let began = Instant::now();
    let pushed = make(&command[1..], &[]);
    assert_made(&pushed, &command.join(" "));
    eprintln!("{} in {:?}", command.join(" "), began.elapsed());

    // The manifest, under the tag, is the one make reported.
    let (manifest, digest) = registry.manifest("team/senderops", "test").await;
    let reported = std::fs::read_to_string(repo_root().join("target/image/pushed.digest"))
        .expect("make image-push writes target/image/pushed.digest");
    assert_eq!(
        reported.trim(),
        digest,
        "the digest make image-push reports"
    );
    assert!(
        String::from_utf8_lossy(&pushed.stdout).contains(&digest),
        "make image-push prints the digest: {}",
        String::from_utf8_lossy(&pushed.stdout)
    );

    // Its config: the user the manifests pin and the binary as entrypoint; and it is the
    // archive's.
    let config_digest = manifest["config"]["digest"]
        .as_str()
        .expect("a config digest");
    let config: Value =
        serde_json::from_slice(&registry.blob("team/senderops", config_digest).await)
            .expect("a JSON image config");
    let user = config["config"]["User"].as_str().unwrap_or_default();
    assert!(
        user == "65532" || user.starts_with("65532:"),
        "the image runs as 65532 (runAsUser in deploy/), not {user:?}"
    );
    assert_eq!(
        config["config"]["Entrypoint"],
        serde_json::json!(["/senderops"]),
        "the entrypoint"
    );
    assert_eq!(
        config["config"]["Cmd"],
        serde_json::json!(["run"]),
        "the command"
    );
    assert_eq!(config["os"], "linux");
    assert_eq!(
        config_digest,
        archive_config_digest(&archive),
        "the pushed image is target/image/senderops.tar's"
    );

    // Every layer arrived, one per filesystem diff of the config.
    let layers = manifest["layers"].as_array().expect("layers");
    let diff_ids = config["rootfs"]["diff_ids"].as_array().expect("diff_ids");
    assert!(!layers.is_empty(), "{manifest}");
    assert_eq!(layers.len(), diff_ids.len(), "{manifest}");
    for layer in layers {
        let digest = layer["digest"].as_str().expect("a layer digest");
        let url = format!("http://{}/v2/team/senderops/blobs/{digest}", registry.addr);
        let head = client().head(&url).send().await.expect("HEAD a layer");
        assert_eq!(head.status(), 200, "layer {digest} is in the registry");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn make_image_push_without_image_says_what_to_give_and_builds_nothing() {
    let out = make(&["image-push".to_string()], &[]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success()
            && stderr.contains("make image-push needs IMAGE=REGISTRY/NAME:TAG")
            && stderr.contains("make image-push IMAGE=registry.example.com/team/senderops:0.1.0"),
        "make image-push without IMAGE fails saying what to give: {}\n{stderr}",
        out.status
    );
    assert!(
        out.stdout.is_empty(),
        "it stops before building or pushing anything: {}",
        String::from_utf8_lossy(&out.stdout)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn make_chart_push_pushes_the_chart_as_an_oci_artifact_pointing_at_the_release_image() {
    let helm = helm_binary();
    let registry = Registry::start().await;
    let home = tempfile::tempdir().expect("a temporary helm home");
    let release_registry = format!("{}/team", registry.addr);
    let args: Vec<String> = [
        "chart-push".to_string(),
        format!("RELEASE_REGISTRY={release_registry}"),
        "RELEASE_TAG=v0.1.0-test".to_string(),
        format!("RELEASE_HELM={}", helm.display()),
        "HELM_PUSH_FLAGS=--plain-http".to_string(),
    ]
    .into();
    let config = home.path().join("config");
    let cache = home.path().join("cache");
    let data = home.path().join("data");
    let pushed = make(
        &args,
        &[
            ("HELM_CONFIG_HOME", config.to_str().unwrap()),
            ("HELM_CACHE_HOME", cache.to_str().unwrap()),
            ("HELM_DATA_HOME", data.to_str().unwrap()),
        ],
    );
    assert_made(&pushed, &format!("make {}", args.join(" ")));

    let (manifest, digest) = registry
        .manifest("team/charts/senderops", "0.1.0-test")
        .await;
    let reported = std::fs::read_to_string(repo_root().join("target/dist/chart.digest"))
        .expect("make chart-push writes target/dist/chart.digest");
    assert_eq!(
        reported.trim(),
        digest,
        "the digest make chart-push records"
    );
    assert_eq!(
        manifest["config"]["mediaType"], "application/vnd.cncf.helm.config.v1+json",
        "a Helm chart artifact: {manifest}"
    );
    let config: Value = serde_json::from_slice(
        &registry
            .blob(
                "team/charts/senderops",
                manifest["config"]["digest"].as_str().unwrap(),
            )
            .await,
    )
    .expect("the chart's metadata");
    assert_eq!(config["name"], "senderops");
    assert_eq!(config["version"], "0.1.0-test", "the tag without its v");
    assert_eq!(config["appVersion"], "0.1.0-test");

    // The chart's image defaults to the release's image.
    let layer = &manifest["layers"][0];
    assert_eq!(
        layer["mediaType"], "application/vnd.cncf.helm.chart.content.v1.tar+gzip",
        "{manifest}"
    );
    let chart = home.path().join("chart.tgz");
    std::fs::write(
        &chart,
        registry
            .blob("team/charts/senderops", layer["digest"].as_str().unwrap())
            .await,
    )
    .expect("write the chart");
    let values = Command::new("tar")
        .args(["-xzOf"])
        .arg(&chart)
        .arg("senderops/values.yaml")
        .output()
        .expect("run tar");
    assert!(values.status.success(), "the chart holds values.yaml");
    let values = String::from_utf8_lossy(&values.stdout);
    assert!(
        values.contains(&format!("  repository: {release_registry}/senderops\n")),
        "the pushed chart's image.repository is the release's image:\n{values}"
    );
}
