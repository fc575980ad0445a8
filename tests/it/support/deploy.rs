//! The install manifests as tests see them: `kubectl kustomize` and `helm template` renders
//! parsed into JSON objects, server-side dry runs against the test control plane, and
//! `senderops run` started with a kubeconfig of the test's choosing (a ServiceAccount token).
//!
//! The tools are the project's own builds (`target/testplane/kubectl`, `target/tools/helm`,
//! `target/tools/kustomize`): a missing one fails the test with the make target that builds it.
//! [`documented_command`] reads a command from the README, so that the tests run the commands a
//! user is told to run.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::Duration;

use serde::Deserialize;
use serde_json::{Value, json};

use super::controlplane::{self, repo_root};
use super::kubectl::{Kubectl, KubectlOutput};
use super::wait::Wait;

/// The namespace the manifests install into.
pub const INSTALL_NAMESPACE: &str = "senderops";

/// How long `senderops run` gets to exit after SIGTERM.
const STOP_TIMEOUT: Duration = Duration::from_secs(15);

pub fn kubectl_binary() -> PathBuf {
    repo_root().join("target/testplane/kubectl")
}

pub fn helm_binary() -> PathBuf {
    super::built("target/tools/helm", "helm", "builds it from its Go module")
}

pub fn kustomize_binary() -> PathBuf {
    super::built(
        "target/tools/kustomize",
        "kustomize",
        "builds it from its Go module",
    )
}

/// Runs the kustomize CLI with `args` in `dir`; panics with its output if it fails.
pub fn kustomize_cli(dir: &Path, args: &[String]) -> String {
    let output = Command::new(kustomize_binary())
        .args(args)
        .current_dir(dir)
        .output()
        .expect("run kustomize");
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    assert!(
        output.status.success(),
        "kustomize {} (in {}) failed:\n{stdout}{}",
        args.join(" "),
        dir.display(),
        String::from_utf8_lossy(&output.stderr)
    );
    stdout
}

/// A command line of the README's (one line of a code block, `\` continuations joined, the
/// trailing `# comment` left out) that contains `needle`, as its words, with the placeholders
/// for the user's image filled in: `REGISTRY/senderops` is the repository of `image`
/// (`NAME:TAG`) and `TAG` its tag. Panics unless exactly one line contains `needle`, so the tests
/// run what the README says, no more and no less.
pub fn documented_command(needle: &str, image: &str) -> Vec<String> {
    let (repository, tag) = image
        .rsplit_once(':')
        .unwrap_or_else(|| panic!("{image} is REPOSITORY:TAG"));
    documented_command_in("README.md", needle)
        .into_iter()
        .map(|word| {
            word.replace("REGISTRY/senderops", repository)
                .replace("TAG", tag)
        })
        .collect()
}

/// The one command line of the Markdown file `doc` (relative to the repository root) that
/// contains `needle`, as [`documented_command`] finds it, its words split as a shell would
/// (quotes removed).
pub fn documented_command_in(doc: &str, needle: &str) -> Vec<String> {
    let readme = std::fs::read_to_string(repo_root().join(doc))
        .unwrap_or_else(|e| panic!("read {doc}: {e}"));
    let mut lines = Vec::new();
    let (mut in_block, mut pending) = (false, String::new());
    for line in readme.lines() {
        if line.trim_start().starts_with("```") {
            in_block = !in_block;
            continue;
        }
        if !in_block {
            continue;
        }
        let code = line.split(" #").next().unwrap_or_default().trim_end();
        match code.strip_suffix('\\') {
            Some(head) => pending.push_str(head),
            None => {
                pending.push_str(code);
                lines.push(std::mem::take(&mut pending));
            }
        }
    }
    let found: Vec<&String> = lines.iter().filter(|l| l.contains(needle)).collect();
    assert_eq!(
        found.len(),
        1,
        "{doc} has one command line with {needle:?} in its code blocks, not {found:#?}"
    );
    shlex::split(found[0])
        .unwrap_or_else(|| panic!("{doc}: not a shell command line: {}", found[0]))
}

/// kubectl for commands that need no cluster (`kustomize`).
fn offline_kubectl() -> Kubectl {
    Kubectl::new(kubectl_binary(), "/dev/null".into())
}

/// `kubectl kustomize` of a directory relative to the repository root.
pub fn kustomize(dir: &str) -> String {
    offline_kubectl()
        .arg("kustomize")
        .arg(repo_root().join(dir))
        .run()
        .expect_success(&format!("render {dir} with kustomize"))
        .stdout
}

/// The outcome of one helm command.
#[derive(Debug)]
pub struct HelmOutput {
    pub success: bool,
    pub stdout: String,
    pub stderr: String,
}

/// Runs helm with `args` (paths are relative to the repository root), with a private home so
/// the machine's helm configuration plays no part.
pub fn helm(args: &[&str]) -> HelmOutput {
    let home = tempfile::tempdir().expect("a temporary helm home");
    let output = Command::new(helm_binary())
        .args(args)
        .current_dir(repo_root())
        .env("HELM_CONFIG_HOME", home.path().join("config"))
        .env("HELM_CACHE_HOME", home.path().join("cache"))
        .env("HELM_DATA_HOME", home.path().join("data"))
        .env_remove("KUBECONFIG")
        .output()
        .expect("run helm");
    HelmOutput {
        success: output.status.success(),
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    }
}

pub const CHART: &str = "deploy/helm/senderops";

/// `helm template RELEASE deploy/helm/senderops -n NAMESPACE` with `values` (`--set` style
/// pairs, `key=value`) and any `extra` flags; panics with helm's message if it fails.
pub fn helm_template(release: &str, namespace: &str, values: &[&str], extra: &[&str]) -> String {
    let mut args = vec!["template", release, CHART, "--namespace", namespace];
    for value in values {
        args.extend(["--set", value]);
    }
    args.extend(extra);
    let out = helm(&args);
    assert!(
        out.success,
        "helm {} failed:\n{}",
        args.join(" "),
        out.stderr
    );
    out.stdout
}

/// The documents of a multi-document YAML stream, empty ones left out.
pub fn parse_yaml(text: &str) -> Vec<Value> {
    serde_norway::Deserializer::from_str(text)
        .map(|doc| {
            Value::deserialize(doc).unwrap_or_else(|e| panic!("invalid YAML ({e}):\n{text}"))
        })
        .filter(|doc| !doc.is_null())
        .collect()
}

/// Every object of `kind`.
pub fn all_of<'a>(objects: &'a [Value], kind: &str) -> Vec<&'a Value> {
    objects.iter().filter(|o| o["kind"] == kind).collect()
}

/// The one object of `kind`, asserting there is exactly one.
pub fn one_of<'a>(objects: &'a [Value], kind: &str) -> &'a Value {
    let found = all_of(objects, kind);
    assert_eq!(
        found.len(),
        1,
        "expected exactly one {kind}, found {}: {:?}",
        found.len(),
        found.iter().map(|o| name_of(o)).collect::<Vec<_>>()
    );
    found[0]
}

/// The object of `kind` named `name`.
pub fn named<'a>(objects: &'a [Value], kind: &str, name: &str) -> &'a Value {
    objects
        .iter()
        .find(|o| o["kind"] == kind && o["metadata"]["name"] == name)
        .unwrap_or_else(|| {
            panic!(
                "no {kind} {name} among {:?}",
                objects.iter().map(kind_and_name).collect::<Vec<_>>()
            )
        })
}

pub fn name_of(object: &Value) -> &str {
    object["metadata"]["name"].as_str().unwrap_or("")
}

pub fn kind_and_name(object: &Value) -> String {
    format!(
        "{}/{}",
        object["kind"].as_str().unwrap_or("?"),
        name_of(object)
    )
}

/// The operator container of a Deployment.
pub fn container(deployment: &Value) -> &Value {
    let containers = deployment["spec"]["template"]["spec"]["containers"]
        .as_array()
        .unwrap_or_else(|| panic!("{} has no containers", kind_and_name(deployment)));
    assert_eq!(
        containers.len(),
        1,
        "{} runs one container, not {containers:#?}",
        kind_and_name(deployment)
    );
    &containers[0]
}

/// The container's arguments as strings.
pub fn args_of(deployment: &Value) -> Vec<String> {
    container(deployment)["args"]
        .as_array()
        .unwrap_or_else(|| panic!("{} has no args", kind_and_name(deployment)))
        .iter()
        .map(|a| a.as_str().expect("args are strings").to_string())
        .collect()
}

/// The values given to `--flag=value` arguments.
pub fn flag_values(args: &[String], flag: &str) -> Vec<String> {
    let prefix = format!("{flag}=");
    args.iter()
        .filter_map(|a| a.strip_prefix(&prefix).map(str::to_string))
        .collect()
}

/// Applies `namespace` (a Namespace object) for real, so that namespaced objects can be
/// dry-run into it and its Pod Security labels apply.
pub fn install_namespace(namespace: &Value) {
    assert_eq!(namespace["kind"], "Namespace", "{namespace}");
    controlplane::shared()
        .kubectl()
        .args(["apply", "--server-side", "-f", "-"])
        .stdin(namespace.to_string())
        .run()
        .expect_success(&format!(
            "create namespace {}",
            namespace["metadata"]["name"]
        ));
}

/// `kubectl apply --server-side --dry-run=server` of `manifests`: the API server validates,
/// defaults and admits every object without storing it. Returns kubectl's output, one line per
/// object.
pub fn server_dry_run(manifests: &str, what: &str) -> KubectlOutput {
    controlplane::shared()
        .kubectl()
        .args([
            "apply",
            "--server-side",
            "--dry-run=server",
            "--field-manager=senderops-deploy-tests",
            "-f",
            "-",
        ])
        .stdin(manifests.to_string())
        .run()
        .expect_success(&format!("dry-run {what} on the API server"))
}

/// Asserts a dry run reported every object in `objects`.
pub fn assert_dry_run_covered(output: &KubectlOutput, objects: &[Value]) {
    let lines: Vec<&str> = output.stdout.lines().filter(|l| !l.is_empty()).collect();
    assert_eq!(
        lines.len(),
        objects.len(),
        "the dry run reported {} objects for {} manifests:\n{}",
        lines.len(),
        objects.len(),
        output.stdout
    );
    assert!(
        lines.iter().all(|l| l.ends_with("(server dry run)")),
        "every object went through the server: {}",
        output.stdout
    );
}

/// Writes a kubeconfig that authenticates to the test control plane with `token` (and nothing
/// else: no client certificate), into `dir`.
pub fn token_kubeconfig(dir: &Path, token: &str) -> PathBuf {
    let plane = controlplane::shared();
    let kubeconfig = json!({
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": "testplane", "cluster": {
            "server": plane.server_url(),
            "certificate-authority": plane.ca_file(),
        }}],
        "users": [{"name": "token", "user": {"token": token}}],
        "contexts": [{"name": "token", "context": {"cluster": "testplane", "user": "token"}}],
        "current-context": "token",
    });
    let path = dir.join("kubeconfig");
    std::fs::write(&path, serde_json::to_string_pretty(&kubeconfig).unwrap())
        .expect("write the token kubeconfig");
    path
}

/// kubectl authenticated by `kubeconfig` only (not the admin's).
pub fn kubectl_as(kubeconfig: &Path) -> Kubectl {
    Kubectl::new(kubectl_binary(), kubeconfig.to_path_buf())
}

/// `senderops run` with a kubeconfig of the caller's choosing and the given flags. Dropping it
/// kills the process.
pub struct OperatorProcess {
    child: Option<Child>,
    log: PathBuf,
}

impl OperatorProcess {
    pub fn start(kubeconfig: &Path, env: &[(&str, &str)], args: &[&str], log: PathBuf) -> Self {
        let log_file = File::create(&log).expect("create the operator log");
        let child = Command::new(env!("CARGO_BIN_EXE_senderops"))
            .arg("run")
            .args(args)
            .env("KUBECONFIG", kubeconfig)
            .env("RUST_LOG", "info,senderops=debug")
            .env_remove("TWILIO_API_URL")
            .env_remove("WATCH_NAMESPACE")
            .envs(env.iter().copied())
            .stdin(Stdio::null())
            .stdout(log_file.try_clone().expect("clone the log handle"))
            .stderr(log_file)
            .spawn()
            .expect("start senderops run");
        OperatorProcess {
            child: Some(child),
            log,
        }
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Panics (with the log) if the process has already exited.
    pub fn assert_running(&mut self) {
        let child = self.child.as_mut().expect("the operator was started");
        if let Some(status) = child.try_wait().expect("poll the operator") {
            panic!(
                "senderops run exited early ({status}); its log:\n{}",
                self.log()
            );
        }
    }

    /// SIGTERM, then waits (bounded) for the exit.
    pub fn stop(&mut self) -> ExitStatus {
        let mut child = self.child.take().expect("the operator is running");
        Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .status()
            .expect("send SIGTERM");
        Wait::until("senderops run to exit after SIGTERM")
            .within(STOP_TIMEOUT)
            .every(Duration::from_millis(50))
            .try_poll_ok_blocking(|| {
                let exited = child.try_wait().expect("poll the operator");
                exited.ok_or("still running")
            })
            .unwrap_or_else(|_| {
                let _ = child.kill();
                panic!(
                    "senderops run did not exit within {STOP_TIMEOUT:?} of SIGTERM; its log:\n{}",
                    self.log()
                )
            })
    }
}

impl Drop for OperatorProcess {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}
