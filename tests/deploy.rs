//! The deployment files, checked without a cluster or a container engine: the compose file
//! parses (`docker-compose config`), the kustomize base and overlay render (`kubectl kustomize`)
//! and every rendered manifest validates against the Kubernetes schemas (`kubernetes-validate
//! --strict`, offline), the Dockerfile passes hadolint, every `FISHAPP_*` variable they set
//! is a configuration key this build knows, and the alert rules parse, pass their unit tests
//! (`promtool`) and name only metrics the code registers. `scripts/stack tools` installs the
//! tools.
#![allow(clippy::unwrap_used)] // in a test, a panic is the failure report

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

/// The Kubernetes version the manifests are validated against.
const KUBERNETES_VERSION: &str = "1.33.0";

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn run(program: &str, args: &[&str]) -> Output {
    let output = Command::new(program)
        .args(args)
        .current_dir(root())
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| {
            panic!("cannot run {program} ({e}); `scripts/stack tools` installs it")
        });
    assert!(
        output.status.success(),
        "{program} {args:?} failed:\n{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    output
}

#[test]
fn the_compose_file_parses() {
    run(
        "docker-compose",
        &["-f", "docker-compose.temporal.yml", "config", "--quiet"],
    );
}

#[test]
fn the_dockerfile_passes_hadolint() {
    run("hadolint", &["Dockerfile"]);
}

#[test]
fn the_kustomizations_render_and_validate_against_the_kubernetes_schemas() {
    let dir = tempfile::tempdir().unwrap();
    for (name, path) in [
        ("base", "deploy/base"),
        ("production", "deploy/overlays/production"),
    ] {
        let rendered = run("kubectl", &["kustomize", path]).stdout;
        let text = String::from_utf8(rendered.clone()).unwrap();
        for kind in [
            "kind: Deployment",
            "kind: Job",
            "kind: Service",
            "kind: PodDisruptionBudget",
            "kind: HorizontalPodAutoscaler",
        ] {
            assert!(text.contains(kind), "{name} has no {kind}");
        }
        let file = dir.path().join(format!("{name}.yaml"));
        std::fs::write(&file, rendered).unwrap();
        let output = run(
            "kubernetes-validate",
            &[
                "--strict",
                "--quiet",
                "-k",
                KUBERNETES_VERSION,
                file.to_str().unwrap(),
            ],
        );
        let report = String::from_utf8_lossy(&output.stdout);
        assert!(!report.contains("ERROR"), "{name}: {report}");
    }
}

/// `FISHAPP_*` names set by a deployment file (a name followed by `=`, `:` or a `value` line).
fn variables_in(path: &Path) -> Vec<String> {
    let text = std::fs::read_to_string(path).unwrap();
    let mut names = Vec::new();
    let mut rest = text.as_str();
    while let Some(at) = rest.find("FISHAPP_") {
        let name: String = rest[at..]
            .chars()
            .take_while(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || *c == '_')
            .collect();
        rest = &rest[at + name.len()..];
        // `FISHAPP_*` in prose names no variable.
        if name.len() > "FISHAPP_".len() {
            names.push(name);
        }
    }
    names
}

#[test]
fn every_variable_a_deployment_sets_is_a_configuration_key() {
    let keys: std::collections::HashSet<&str> = fishapp::config::Config::keys().collect();
    let mut files = vec![
        root().join("Dockerfile"),
        root().join("docker-compose.temporal.yml"),
    ];
    for dir in ["deploy/base", "deploy/overlays/production"] {
        for entry in std::fs::read_dir(root().join(dir)).unwrap() {
            files.push(entry.unwrap().path());
        }
    }
    let mut checked = 0;
    for file in &files {
        for name in variables_in(file) {
            let key = name.trim_start_matches("FISHAPP_").to_lowercase();
            assert!(
                keys.contains(key.as_str()),
                "{}: {name} is not a configuration key",
                file.display()
            );
            checked += 1;
        }
    }
    assert!(checked > 20, "only {checked} variables found");
}

/// The `data` of the rendered ConfigMap named `fishapp`: `FISHAPP_*` names and their values.
fn configmap_data(rendered: &str) -> Vec<(String, String)> {
    let document = rendered
        .split("\n---\n")
        .find(|doc| doc.contains("kind: ConfigMap") && doc.contains("name: fishapp\n"))
        .expect("a ConfigMap named fishapp");
    let mut in_data = false;
    let mut data = Vec::new();
    for line in document.lines() {
        if !line.starts_with(' ') {
            in_data = line == "data:";
            continue;
        }
        if let Some((name, value)) = line.trim().split_once(": ")
            && in_data
        {
            let value = value.trim().trim_matches('"').to_owned();
            data.push((name.to_owned(), value));
        }
    }
    data
}

/// What a deployment sets must not only be keys but values this build accepts: each
/// rendered ConfigMap, read the way the environment is read, passes the configuration's checks
/// (the secrets' keys come from Secrets, and the defaults stand in for them here).
#[test]
fn every_rendered_configmap_is_a_valid_configuration() {
    for path in ["deploy/base", "deploy/overlays/production"] {
        let rendered = String::from_utf8(run("kubectl", &["kustomize", path]).stdout).unwrap();
        let data = configmap_data(&rendered);
        assert!(
            data.len() > 10,
            "{path}: only {} settings found",
            data.len()
        );
        let mut dict = figment::value::Dict::new();
        for (name, value) in &data {
            let key = name
                .strip_prefix("FISHAPP_")
                .unwrap_or_else(|| panic!("{path}: {name} is not a FISHAPP_ variable"))
                .to_lowercase();
            dict.insert(key, value.parse().unwrap());
        }
        let config =
            fishapp::config::Config::load_from(None, figment::providers::Serialized::globals(dict))
                .unwrap_or_else(|e| panic!("{path}'s ConfigMap: {e}"));
        assert_eq!(
            config.diagnostics.log_format,
            fishapp::config::LogFormat::Json,
            "{path}: the settings were not read"
        );
    }
}

const ALERTS: &str = "deploy/monitoring/alerts.yaml";

#[test]
fn the_alert_rules_parse_and_pass_their_unit_tests() {
    run("promtool", &["check", "rules", ALERTS]);
    run(
        "promtool",
        &["test", "rules", "deploy/monitoring/alerts.test.yaml"],
    );
}

/// The Rust sources of the workspace's crates (tests and benches aside).
fn sources(dir: &Path, out: &mut String) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            sources(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push_str(&std::fs::read_to_string(&path).unwrap());
        }
    }
}

/// An alert on a metric nobody serves never fires: every `fishapp_*` name in the rules is
/// registered by the code (the registry adds the `fishapp_` namespace; a histogram's series
/// end in `_bucket`, `_sum` and `_count`).
#[test]
fn every_metric_an_alert_names_is_registered_by_the_code() {
    let rules = std::fs::read_to_string(root().join(ALERTS)).unwrap();
    let mut code = String::new();
    for entry in std::fs::read_dir(root()).unwrap() {
        let src = entry.unwrap().path().join("src");
        if src.is_dir() {
            sources(&src, &mut code);
        }
    }
    sources(&root().join("src"), &mut code);
    let mut named = std::collections::BTreeSet::new();
    let mut rest = rules.as_str();
    while let Some(at) = rest.find("fishapp_") {
        let name: String = rest[at..]
            .chars()
            .take_while(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == '_')
            .collect();
        rest = &rest[at + name.len()..];
        named.insert(name);
    }
    assert!(named.len() >= 10, "only {named:?} found in {ALERTS}");
    for name in &named {
        let metric = name.trim_start_matches("fishapp_");
        let metric = ["_bucket", "_sum", "_count"]
            .iter()
            .find_map(|suffix| metric.strip_suffix(suffix))
            .unwrap_or(metric);
        assert!(
            code.contains(&format!("\"{metric}\"")),
            "{ALERTS} names {name}, which no crate registers"
        );
    }
}
