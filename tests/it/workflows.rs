//! The GitHub workflows (`.github/workflows/`), which cannot run on this machine (actionlint
//! checks their syntax in `make lint`): every step that runs something runs one Makefile target
//! (`make TARGET`, with `NAME=value` variables at most) that the Makefile defines, so what CI and
//! the release do is what `make` does here; CI runs lint and test on every push and pull request;
//! a tag `v*` runs the release's targets in order with the permissions keyless signing needs;
//! every action is pinned to a version.

use std::collections::BTreeSet;
use std::process::Command;

use regex::Regex;
use serde_json::Value;

use crate::support::controlplane::repo_root;
use crate::support::deploy::parse_yaml;

/// The workflow `.github/workflows/NAME`, parsed.
fn workflow(name: &str) -> Value {
    let path = repo_root().join(".github/workflows").join(name);
    let text =
        std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()));
    let mut docs = parse_yaml(&text);
    assert_eq!(docs.len(), 1, "{name} is one YAML document");
    docs.remove(0)
}

/// The targets the Makefile defines, from make's own database (`make -pRrq`): rules, not the
/// files make merely mentions.
fn make_targets() -> BTreeSet<String> {
    let output = Command::new("make")
        .args(["-pRrq", ":"])
        .current_dir(repo_root())
        .env_remove("MAKEFLAGS")
        .env_remove("MAKELEVEL")
        .output()
        .expect("run make -pRrq");
    let database = String::from_utf8_lossy(&output.stdout);
    let rule = Regex::new(r"^([^\s#:=][^:=]*?)::?(\s|$)").unwrap();
    let mut targets = BTreeSet::new();
    let mut previous = "";
    for line in database.lines() {
        if previous != "# Not a target:"
            && let Some(found) = rule.captures(line)
        {
            targets.extend(found[1].split_whitespace().map(str::to_string));
        }
        previous = line;
    }
    assert!(
        targets.contains("test") && targets.contains("lint"),
        "make's database lists the Makefile's rules: {targets:?}"
    );
    targets
}

/// A workflow's steps, job by job: `(job, step)`.
fn steps(workflow: &Value) -> Vec<(String, Value)> {
    let jobs = workflow["jobs"].as_object().expect("jobs");
    assert!(!jobs.is_empty(), "a workflow has jobs");
    jobs.iter()
        .flat_map(|(job, spec)| {
            let steps = spec["steps"]
                .as_array()
                .unwrap_or_else(|| panic!("job {job} has steps"));
            steps.iter().map(move |s| (job.clone(), s.clone()))
        })
        .collect()
}

/// The `make` command lines a workflow runs, in order: `(target, variables)`. Panics on a `run:`
/// line that is anything else (a raw command, a pipe, a second command, a custom shell).
fn make_runs(name: &str, workflow: &Value) -> Vec<(String, Vec<String>)> {
    let make =
        Regex::new(r"^make ([a-z][a-z0-9-]*)((?: [A-Z][A-Z0-9_]*=[^\s;&|<>`$]+)*)$").unwrap();
    let mut runs = Vec::new();
    for (job, step) in steps(workflow) {
        let Some(script) = step.get("run") else {
            continue;
        };
        let script = script.as_str().expect("run: is a string");
        assert!(
            step.get("shell").is_none() && workflow["defaults"]["run"]["shell"].is_null(),
            "{name}, job {job}: steps run in the default shell: {step}"
        );
        let lines: Vec<&str> = script
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty() && !l.starts_with('#'))
            .collect();
        assert_eq!(
            lines.len(),
            1,
            "{name}, job {job}: a step runs one make target: {script:?}"
        );
        let found = make.captures(lines[0]).unwrap_or_else(|| {
            panic!(
                "{name}, job {job}: `{}` is not `make TARGET [NAME=value ...]`: every step runs \
                 a Makefile target",
                lines[0]
            )
        });
        let variables = found[2].split_whitespace().map(str::to_string).collect();
        runs.push((found[1].to_string(), variables));
    }
    runs
}

/// The workflow's `on:` (YAML 1.1 would read the key as `true`).
fn triggers(workflow: &Value) -> &Value {
    let on = &workflow["on"];
    assert!(!on.is_null(), "a workflow has triggers: {workflow}");
    on
}

#[test]
fn every_step_that_runs_something_runs_a_makefile_target_that_exists() {
    let targets = make_targets();
    let dir = repo_root().join(".github/workflows");
    let mut names: Vec<String> = std::fs::read_dir(&dir)
        .expect("read .github/workflows")
        .map(|e| {
            e.expect("a directory entry")
                .file_name()
                .into_string()
                .unwrap()
        })
        .filter(|n| n.ends_with(".yml") || n.ends_with(".yaml"))
        .collect();
    names.sort();
    for expected in ["ci.yml", "release.yml"] {
        assert!(
            names.iter().any(|n| n == expected),
            "{expected} in {names:?}"
        );
    }
    let pinned = Regex::new(r"^[\w.-]+/[\w./-]+@(v\d+\.\d+\.\d+|[0-9a-f]{40})$").unwrap();
    for name in &names {
        let workflow = workflow(name);
        let runs = make_runs(name, &workflow);
        assert!(!runs.is_empty(), "{name} runs make targets");
        for (target, _) in &runs {
            assert!(
                targets.contains(target),
                "{name} runs `make {target}`, which the Makefile does not define"
            );
        }
        for (job, step) in steps(&workflow) {
            if let Some(uses) = step.get("uses") {
                let uses = uses.as_str().expect("uses: is a string");
                assert!(
                    pinned.is_match(uses),
                    "{name}, job {job}: {uses} is pinned to a version (vX.Y.Z or a commit)"
                );
            }
            assert!(
                step.get("uses").is_some() != step.get("run").is_some(),
                "{name}, job {job}: a step either uses an action or runs make: {step}"
            );
        }
    }
}

#[test]
fn ci_runs_lint_and_test_on_every_push_and_pull_request() {
    let ci = workflow("ci.yml");
    let on = triggers(&ci);
    for event in ["push", "pull_request"] {
        let filter = &on[event];
        assert!(
            on.get(event).is_some()
                && (filter.is_null()
                    || (filter.get("branches").is_none() && filter.get("paths").is_none())),
            "ci.yml runs on every {event}, unfiltered: {on}"
        );
    }
    let targets: Vec<String> = make_runs("ci.yml", &ci)
        .into_iter()
        .map(|(t, _)| t)
        .collect();
    for target in ["lint", "test", "advisories"] {
        assert!(
            targets.iter().any(|t| t == target),
            "ci.yml runs make {target}: {targets:?}"
        );
    }
}

#[test]
fn a_tag_runs_the_release_targets_in_order_with_keyless_signing_permissions() {
    let release = workflow("release.yml");
    let on = triggers(&release);
    assert_eq!(
        on["push"]["tags"],
        serde_json::json!(["v*"]),
        "release.yml runs on tags v*: {on}"
    );
    assert!(
        on.as_object().is_some_and(|o| o.len() == 1) && on["push"]["branches"].is_null(),
        "release.yml runs on tags only: {on}"
    );
    let runs = make_runs("release.yml", &release);
    let targets: Vec<&str> = runs.iter().map(|(t, _)| t.as_str()).collect();
    let position = |target: &str| {
        targets
            .iter()
            .position(|t| *t == target)
            .unwrap_or_else(|| panic!("release.yml runs make {target}: {targets:?}"))
    };
    assert!(position("advisories") < position("image-release"));
    assert!(position("image-release") < position("sbom"), "{targets:?}");
    assert!(position("sbom") < position("sign"), "{targets:?}");
    assert!(position("chart-push") < position("sign"), "{targets:?}");

    // The registry and tag come from the tag and the repository's owner, for every target.
    let jobs = release["jobs"].as_object().expect("jobs");
    for (job, spec) in jobs {
        let env = |name: &str| {
            spec["env"][name]
                .as_str()
                .or(release["env"][name].as_str())
                .unwrap_or_else(|| panic!("job {job} sets {name}"))
                .to_string()
        };
        assert_eq!(env("RELEASE_TAG"), "${{ github.ref_name }}");
        assert_eq!(
            env("RELEASE_REGISTRY"),
            "ghcr.io/${{ github.repository_owner }}"
        );
        for (permission, level) in [
            ("id-token", "write"),
            ("packages", "write"),
            ("contents", "write"),
        ] {
            assert_eq!(
                spec["permissions"][permission], level,
                "job {job}: permissions {permission}: {level}"
            );
        }
    }
    // The tools the targets call come from the well-known actions.
    let uses: Vec<String> = steps(&release)
        .into_iter()
        .filter_map(|(_, s)| {
            s["uses"]
                .as_str()
                .map(|u| u.split('@').next().unwrap().to_string())
        })
        .collect();
    for action in [
        "sigstore/cosign-installer",
        "anchore/sbom-action/download-syft",
        "azure/setup-helm",
        "docker/setup-qemu-action",
    ] {
        assert!(
            uses.iter().any(|u| u == action),
            "release.yml installs with {action}: {uses:?}"
        );
    }
}
