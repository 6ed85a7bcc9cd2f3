//! The deployment files in deploy/: the systemd units, the Kubernetes manifests, the example
//! configuration, the container file and the backup script. What needs a tool that may be
//! missing (systemd-analyze, kubectl, python3 with PyYAML, sqlite3, a Docker engine) runs when
//! the tool is there and otherwise prints why it was skipped; the structural checks always run.

use crate::common;
use crate::yaml_subset;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use common::process::BIN;
use yaml_subset::{Node, parse_documents};

fn deploy_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("deploy")
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn skip(what: &str, why: &str) {
    eprintln!("SKIPPED {what}: {why}");
}

/// `safehire` with no SAFEHIRE_… variable of the test's own environment, in `dir`.
fn safehire(dir: &Path, args: &[&str]) -> Output {
    let mut command = crate::common::process::command();
    command.args(args).current_dir(dir);
    for (name, _) in std::env::vars_os() {
        if name.to_string_lossy().starts_with("SAFEHIRE_") {
            command.env_remove(name);
        }
    }
    command.output().expect("safehire runs")
}

fn tool_works(program: &str, args: &[&str]) -> bool {
    Command::new(program)
        .args(args)
        .output()
        .is_ok_and(|o| o.status.success())
}

// ---------------------------------------------------------------- systemd

/// `KEY=value` lines of a unit file, in order (a key may repeat).
fn directives(unit: &str) -> Vec<(String, String)> {
    unit.lines()
        .map(str::trim)
        .filter(|l| !l.starts_with('#') && !l.starts_with('['))
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
        .collect()
}

#[test]
fn the_service_unit_is_hardened() {
    let unit = directives(&read(&deploy_dir().join("safehire.service")));
    let has = |key: &str, value: &str| unit.iter().any(|(k, v)| k == key && v == value);
    for (key, value) in [
        ("User", "safehire"),
        ("NoNewPrivileges", "yes"),
        ("ProtectSystem", "strict"),
        ("ProtectHome", "yes"),
        ("PrivateTmp", "yes"),
        ("PrivateDevices", "yes"),
        ("ProtectKernelTunables", "yes"),
        ("ProtectKernelModules", "yes"),
        ("ProtectKernelLogs", "yes"),
        ("ProtectControlGroups", "yes"),
        ("RestrictAddressFamilies", "AF_INET AF_INET6 AF_UNIX"),
        ("RestrictNamespaces", "yes"),
        ("LockPersonality", "yes"),
        ("MemoryDenyWriteExecute", "yes"),
        ("SystemCallFilter", "@system-service"),
        ("CapabilityBoundingSet", ""),
        ("UMask", "0077"),
        ("StateDirectory", "safehire"),
        ("ReadWritePaths", "/var/lib/safehire"),
        ("LoadCredential", "master.key:/etc/safehire/master.key"),
    ] {
        assert!(has(key, value), "safehire.service lacks {key}={value}");
    }
    let writable: Vec<_> = unit.iter().filter(|(k, _)| k == "ReadWritePaths").collect();
    assert_eq!(writable.len(), 1, "only the state folder is writable");
    assert!(
        unit.iter()
            .any(|(k, v)| k == "ExecStart" && v.contains("serve --config /etc/safehire/")),
        "ExecStart runs serve with the configuration file"
    );
}

/// The units as `systemd-analyze verify` sees them, with the install paths of the binary and
/// the backup script pointed at this build, so that a missing install is not what it reports.
fn units_for_verification(dir: &Path) -> Vec<PathBuf> {
    let script = deploy_dir().join("safehire-backup.sh");
    [
        "safehire.service",
        "safehire-backup.service",
        "safehire-backup.timer",
        "safehire-witness.service",
        "safehire-witness.timer",
    ]
    .iter()
    .map(|name| {
        let text = read(&deploy_dir().join(name))
            .replace("/usr/local/bin/safehire", BIN)
            .replace(
                "/usr/local/lib/safehire/safehire-backup.sh",
                &script.to_string_lossy(),
            );
        let path = dir.join(name);
        std::fs::write(&path, text).unwrap();
        path
    })
    .collect()
}

#[test]
fn systemd_analyze_verifies_the_units_and_rates_them_safe() {
    if !tool_works("systemd-analyze", &["--version"]) {
        skip("systemd-analyze verify", "systemd-analyze is not installed");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let units = units_for_verification(dir.path());
    let verify = Command::new("systemd-analyze")
        .arg("verify")
        .args(&units)
        .output()
        .unwrap();
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&verify.stdout),
        String::from_utf8_lossy(&verify.stderr)
    );
    assert!(
        verify.status.success() && said.trim().is_empty(),
        "systemd-analyze verify: {said}"
    );
    // Exposure is scored 0 (best) to 10; --threshold takes tenths. 2.0 is within "OK".
    for unit in &units[..2] {
        let security = Command::new("systemd-analyze")
            .args(["security", "--offline=true", "--threshold=20"])
            .arg(unit)
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&security.stdout);
        let overall = text.lines().last().unwrap_or_default();
        eprintln!("{overall}");
        assert!(security.status.success(), "{text}");
    }
}

// ---------------------------------------------------------------- Kubernetes

fn kubernetes_dir() -> PathBuf {
    deploy_dir().join("kubernetes")
}

fn manifest_files() -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(kubernetes_dir())
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
        .collect();
    files.sort();
    files
}

/// Every document of every manifest, with the file it came from.
fn manifests() -> Vec<(String, Node)> {
    let mut out = Vec::new();
    for file in manifest_files() {
        let name = file.file_name().unwrap().to_string_lossy().into_owned();
        let docs = parse_documents(&read(&file)).unwrap_or_else(|e| panic!("{name}: {e}"));
        out.extend(docs.into_iter().map(|d| (name.clone(), d)));
    }
    out
}

fn text_at<'a>(node: &'a Node, path: &str) -> &'a str {
    node.at(path)
        .and_then(Node::str)
        .unwrap_or_else(|| panic!("no text at {path}"))
}

fn one_of_kind(kind: &str) -> Node {
    let mut found: Vec<Node> = manifests()
        .into_iter()
        .map(|(_, d)| d)
        .filter(|d| d.at("kind").and_then(Node::str) == Some(kind))
        .collect();
    assert_eq!(found.len(), 1, "one {kind}");
    found.remove(0)
}

#[test]
fn every_manifest_names_its_kind_and_namespace_and_is_applied() {
    let mut kinds = BTreeSet::new();
    for (file, doc) in manifests() {
        let kind = text_at(&doc, "kind").to_string();
        assert!(!text_at(&doc, "apiVersion").is_empty(), "{file}");
        kinds.insert(kind.clone());
        if kind == "Kustomization" {
            continue;
        }
        assert!(!text_at(&doc, "metadata.name").is_empty(), "{file}");
        if kind != "Namespace" {
            assert_eq!(text_at(&doc, "metadata.namespace"), "safehire", "{file}");
        }
    }
    for kind in [
        "Namespace",
        "ConfigMap",
        "Service",
        "NetworkPolicy",
        "StatefulSet",
        "Kustomization",
    ] {
        assert!(kinds.contains(kind), "no {kind} among {kinds:?}");
    }
    let listed: BTreeSet<String> = one_of_kind("Kustomization")
        .at("resources")
        .unwrap()
        .items()
        .iter()
        .filter_map(|n| n.str().map(str::to_string))
        .collect();
    let present: BTreeSet<String> = manifest_files()
        .iter()
        .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
        .filter(|n| n != "kustomization.yaml")
        .collect();
    assert_eq!(listed, present, "kustomization.yaml applies every manifest");
}

#[test]
fn the_statefulset_runs_one_confined_pod_with_probes_limits_and_a_volume() {
    let set = one_of_kind("StatefulSet");
    assert_eq!(text_at(&set, "spec.replicas"), "1", "SQLite has one writer");
    let pod = set.at("spec.template.spec").unwrap();
    assert_eq!(text_at(pod, "securityContext.runAsNonRoot"), "true");
    assert_ne!(text_at(pod, "securityContext.runAsUser"), "0");
    assert_eq!(text_at(pod, "automountServiceAccountToken"), "false");
    assert_eq!(
        set.at("spec.selector.matchLabels"),
        set.at("spec.template.metadata.labels"),
        "the selector matches the pod's labels"
    );
    let containers: Vec<&Node> = ["initContainers", "containers"]
        .iter()
        .flat_map(|k| pod.get(k).map(Node::items).unwrap_or_default())
        .collect();
    assert_eq!(containers.len(), 2);
    for c in &containers {
        let name = text_at(c, "name");
        for part in [
            "requests.cpu",
            "requests.memory",
            "limits.cpu",
            "limits.memory",
        ] {
            assert!(
                c.at(&format!("resources.{part}")).is_some(),
                "{name}: no {part}"
            );
        }
        assert_eq!(
            text_at(c, "securityContext.allowPrivilegeEscalation"),
            "false"
        );
        assert_eq!(text_at(c, "securityContext.readOnlyRootFilesystem"), "true");
        assert_eq!(text_at(c, "securityContext.capabilities.drop.0"), "ALL");
    }
    let server = pod.at("containers.0").unwrap();
    for probe in ["startupProbe", "readinessProbe", "livenessProbe"] {
        let command: Vec<&str> = server
            .at(&format!("{probe}.exec.command"))
            .unwrap_or_else(|| panic!("{probe} is an exec probe"))
            .items()
            .iter()
            .filter_map(Node::str)
            .collect();
        assert_eq!(&command[..2], ["safehire", "health"], "{probe}");
        assert!(command.contains(&"--ca"), "{probe} verifies the server");
    }
    let claim = set.at("spec.volumeClaimTemplates.0").unwrap();
    assert_eq!(text_at(claim, "spec.accessModes.0"), "ReadWriteOnce");
    let mounts = mounts_of(server);
    assert_eq!(
        mounts
            .get(text_at(claim, "metadata.name"))
            .map(|m| m.0.as_str()),
        Some("/var/lib/safehire")
    );
    let secrets: BTreeMap<&str, &str> = pod
        .at("volumes")
        .unwrap()
        .items()
        .iter()
        .filter_map(|v| Some((text_at(v, "name"), v.at("secret.secretName")?.str()?)))
        .collect();
    assert_eq!(secrets.get("master-key"), Some(&"safehire-master-key"));
    assert_eq!(secrets.get("tls"), Some(&"safehire-tls"));
    for c in &containers {
        for (volume, (path, read_only)) in mounts_of(c) {
            if secrets.contains_key(volume.as_str()) {
                assert!(read_only, "secret {volume} is mounted read-only at {path}");
            }
        }
    }
}

/// volume name → (mount path, read-only)
fn mounts_of(container: &Node) -> BTreeMap<String, (String, bool)> {
    container
        .at("volumeMounts")
        .map(Node::items)
        .unwrap_or_default()
        .iter()
        .map(|m| {
            let read_only = m.at("readOnly").and_then(Node::str) == Some("true");
            (
                text_at(m, "name").to_string(),
                (text_at(m, "mountPath").to_string(), read_only),
            )
        })
        .collect()
}

#[test]
fn the_configmap_holds_a_valid_configuration_matching_the_pod() {
    let map = one_of_kind("ConfigMap");
    let toml_text = map
        .get("data")
        .and_then(|d| d.get("safehire.toml"))
        .and_then(Node::str)
        .expect("data: safehire.toml");
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("safehire.toml");
    std::fs::write(&file, toml_text).unwrap();
    let out = safehire(dir.path(), &["--json", "config", "check", "safehire.toml"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let config = &report["config"];
    assert_eq!(config["dev_mode"], false);

    let set = one_of_kind("StatefulSet");
    let pod = set.at("spec.template.spec").unwrap();
    let server = pod.at("containers.0").unwrap();
    let mounts = mounts_of(server);
    let port = text_at(server, "ports.0.containerPort");
    assert!(
        config["listen"]
            .as_str()
            .unwrap()
            .ends_with(&format!(":{port}"))
    );
    assert_eq!(config["data_dir"], mounts["data"].0.as_str());
    let tls_dir = &mounts["tls"].0;
    for key in ["client_ca", "server_cert", "server_key"] {
        assert!(
            config["tls"][key]
                .as_str()
                .unwrap()
                .starts_with(tls_dir.as_str()),
            "tls.{key} is in the mounted Secret"
        );
    }
    let copy: Vec<&str> = pod
        .at("initContainers.0.command")
        .unwrap()
        .items()
        .iter()
        .filter_map(Node::str)
        .collect();
    assert_eq!(
        copy.last().copied(),
        config["master_key_file"].as_str(),
        "the init container copies the key where the server reads it"
    );
    assert!(copy.contains(&"0600"));
}

#[test]
fn the_network_policy_admits_grpc_and_metrics_from_monitoring_only() {
    let policy = one_of_kind("NetworkPolicy");
    let types: Vec<&str> = policy
        .at("spec.policyTypes")
        .unwrap()
        .items()
        .iter()
        .filter_map(Node::str)
        .collect();
    assert_eq!(types, ["Ingress", "Egress"]);
    assert_eq!(policy.at("spec.egress"), Some(&Node::Seq(Vec::new())));
    let rules = policy.at("spec.ingress").unwrap().items();
    assert_eq!(rules.len(), 2);
    assert_eq!(text_at(&rules[0], "ports.0.port"), "50051");
    assert!(rules[0].get("from").is_none(), "clients come from anywhere");
    assert_eq!(text_at(&rules[1], "ports.0.port"), "9464");
    let labels = rules[1]
        .at("from.0.namespaceSelector.matchLabels")
        .expect("a namespace selector");
    assert_eq!(
        labels
            .get("kubernetes.io/metadata.name")
            .and_then(Node::str),
        Some("monitoring")
    );
}

/// The same manifests read by PyYAML, where it is installed: proof that the subset reader
/// above reads what a real YAML parser reads.
#[test]
fn a_real_yaml_parser_reads_the_manifests_the_same() {
    const DUMP: &str = r#"
import json, sys, yaml
def norm(v):
    if isinstance(v, bool): return "true" if v else "false"
    if isinstance(v, (int, float)): return str(v)
    if isinstance(v, dict): return {str(k): norm(x) for k, x in v.items()}
    if isinstance(v, list): return [norm(x) for x in v]
    return v
with open(sys.argv[1]) as f:
    print(json.dumps([norm(d) for d in yaml.safe_load_all(f) if d is not None]))
"#;
    if !tool_works("python3", &["-c", "import yaml"]) {
        skip(
            "the PyYAML comparison",
            "python3 with PyYAML is not installed",
        );
        return;
    }
    for file in manifest_files() {
        let out = Command::new("python3")
            .args(["-c", DUMP])
            .arg(&file)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let theirs: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        let ours: Vec<serde_json::Value> = parse_documents(&read(&file))
            .unwrap()
            .iter()
            .map(Node::to_resolved_json)
            .collect();
        assert_eq!(serde_json::Value::Array(ours), theirs, "{}", file.display());
    }
}

#[test]
fn kubectl_kustomize_builds_the_manifests() {
    if !tool_works("kubectl", &["version", "--client"]) {
        skip("kubectl kustomize", "kubectl is not installed");
        return;
    }
    let out = Command::new("kubectl")
        .arg("kustomize")
        .arg(kubernetes_dir())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let built = String::from_utf8_lossy(&out.stdout);
    assert!(built.contains("image: registry.example.org/safehire:0.1.0"));
}

// ---------------------------------------------------------------- example configuration

#[derive(Debug)]
struct Documented {
    /// What follows `# default:` in the comment block above the key.
    default: Option<String>,
}

/// Every key of the example, set or commented out (`# key = value`, under `[table]` or
/// `# [table]`), with the default its comment states.
fn documented_keys(text: &str) -> BTreeMap<String, Documented> {
    let mut keys = BTreeMap::new();
    let mut table = String::new();
    let mut default: Option<String> = None;
    for line in text.lines().map(str::trim) {
        let body = line.strip_prefix('#').map_or(line, str::trim);
        if line.is_empty() {
            default = None;
        } else if let Some(name) = body.strip_prefix('[').and_then(|b| b.strip_suffix(']')) {
            table = name.to_string();
            default = None;
        } else if let Some(value) = body.strip_prefix("default:") {
            default = Some(value.trim().to_string());
        } else if let Some((key, _)) = body.split_once(" = ").filter(|(k, _)| {
            k.bytes().all(|b| b.is_ascii_lowercase() || b == b'_') && !k.is_empty()
        }) {
            let path = if table.is_empty() {
                key.to_string()
            } else {
                format!("{table}.{key}")
            };
            let previous = keys.insert(
                path.clone(),
                Documented {
                    default: default.take(),
                },
            );
            assert!(previous.is_none(), "{path} is documented twice");
        }
    }
    keys
}

fn leaves(prefix: &str, value: &serde_json::Value, out: &mut BTreeMap<String, serde_json::Value>) {
    match value.as_object() {
        Some(map) => {
            for (k, v) in map {
                let path = if prefix.is_empty() {
                    k.clone()
                } else {
                    format!("{prefix}.{k}")
                };
                leaves(&path, v, out);
            }
        }
        None => {
            out.insert(prefix.to_string(), value.clone());
        }
    }
}

#[test]
fn the_example_configuration_loads_and_documents_every_key_with_its_default() {
    let example = deploy_dir().join("safehire.toml");
    let dir = tempfile::tempdir().unwrap();
    let out = safehire(
        dir.path(),
        &["--json", "config", "check", &example.to_string_lossy()],
    );
    assert!(
        out.status.success(),
        "safehire config check deploy/safehire.toml: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["config"]["dev_mode"], false);

    // Every key: the defaults, and (for keys whose default is "none, derived") the effective
    // configuration, where the derived paths are filled in.
    let defaults =
        serde_json::to_value(toml::Value::try_from(safehire::config::Config::default()).unwrap())
            .unwrap();
    let mut default_leaves = BTreeMap::new();
    leaves("", &defaults, &mut default_leaves);
    let mut every_key = default_leaves.clone();
    leaves("", &report["config"], &mut every_key);

    let documented = documented_keys(&read(&example));
    for key in every_key.keys() {
        let doc = documented
            .get(key)
            .unwrap_or_else(|| panic!("deploy/safehire.toml does not document {key}"));
        let stated = doc
            .default
            .as_deref()
            .unwrap_or_else(|| panic!("{key} has no `# default:` line"));
        if let Some(actual) = default_leaves.get(key) {
            let parsed: toml::Table = toml::from_str(&format!("v = {stated}"))
                .unwrap_or_else(|e| panic!("{key}: default `{stated}` is not TOML: {e}"));
            let parsed = serde_json::to_value(&parsed["v"]).unwrap();
            assert_eq!(
                &parsed, actual,
                "{key}: the stated default is not the default"
            );
        }
    }
    for key in documented.keys() {
        assert!(
            every_key.contains_key(key),
            "deploy/safehire.toml documents {key}, which safehire does not know"
        );
    }
}

// ---------------------------------------------------------------- container

#[test]
fn the_container_file_builds_with_locked_dependencies_and_runs_as_non_root() {
    let file = read(&deploy_dir().join("Containerfile"));
    let instructions: Vec<&str> = file
        .lines()
        .map(str::trim)
        .filter(|l| !l.starts_with('#') && !l.is_empty())
        .collect();
    assert!(file.contains("rust:") && file.contains("debian:bookworm-slim"));
    assert!(file.contains("cargo build --release --locked"));
    // The documented way to build the image with the trace export.
    assert!(
        file.contains("ARG CARGO_FEATURES=") && file.contains("--features \"$CARGO_FEATURES\"")
    );
    let user = instructions
        .iter()
        .rev()
        .find_map(|l| l.strip_prefix("USER "))
        .expect("a USER instruction");
    let uid: u32 = user
        .split(':')
        .next()
        .and_then(|u| u.parse().ok())
        .expect("a numeric USER");
    assert_ne!(uid, 0);
    assert!(instructions.contains(&r#"VOLUME ["/var/lib/safehire"]"#));
    assert!(instructions.iter().any(|l| l.starts_with("EXPOSE 50051")));
    let ignore = read(&Path::new(env!("CARGO_MANIFEST_DIR")).join(".dockerignore"));
    for pattern in ["**/*.key", "**/*.db"] {
        assert!(
            ignore.lines().any(|l| l == pattern),
            ".dockerignore: {pattern}"
        );
    }

    // A real build needs a Docker engine and the base images from a registry; opt in.
    if std::env::var_os("DEPLOY_TEST_DOCKER_BUILD").is_none() {
        skip(
            "docker build",
            "set DEPLOY_TEST_DOCKER_BUILD=1 to build the image (needs a Docker engine and registry access)",
        );
        return;
    }
    assert!(tool_works("docker", &["info"]), "no working Docker engine");
    let build = Command::new("docker")
        .args([
            "build",
            "-f",
            "deploy/Containerfile",
            "-t",
            "safehire:test",
            ".",
        ])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .status()
        .unwrap();
    assert!(build.success());
}

// ---------------------------------------------------------------- backups

#[test]
fn the_backup_script_copies_a_live_database_and_verifies_it() {
    let dir = tempfile::tempdir().unwrap();
    let (_server, url) = common::process::serve(dir.path());
    let records = dir.path().join("records.csv");
    let generated = safehire(dir.path(), &["gen", "records", "200"]);
    std::fs::write(&records, &generated.stdout).unwrap();
    let imported = common::process::run(
        dir.path(),
        &url,
        &["--as", "registrar", "registry", "import", "records.csv"],
    );
    assert!(imported.status.success());

    let backups = dir.path().join("backups");
    let run = || {
        Command::new("sh")
            .arg(deploy_dir().join("safehire-backup.sh"))
            .arg(dir.path().join("data/safehire.db"))
            .arg(&backups)
            .env("BACKUP_SAFEHIRE", BIN)
            .env("BACKUP_KEEP", "1")
            .output()
            .unwrap()
    };
    let first = run();
    assert!(
        first.status.success(),
        "{}",
        String::from_utf8_lossy(&first.stderr)
    );
    std::thread::sleep(std::time::Duration::from_millis(1100));
    assert!(run().status.success());
    let kept: Vec<PathBuf> = std::fs::read_dir(&backups)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(kept.len(), 1, "BACKUP_KEEP=1 keeps one copy: {kept:?}");
    let verify = safehire(
        dir.path(),
        &["audit", "verify", "--db", &kept[0].to_string_lossy()],
    );
    assert!(verify.status.success());
    assert!(String::from_utf8_lossy(&verify.stdout).contains("audit chain OK"));
    let key = std::fs::read(dir.path().join("data/master.key")).unwrap();
    let copy = std::fs::read(&kept[0]).unwrap();
    assert!(
        !copy.windows(key.len()).any(|w| w == key.as_slice()),
        "the master key is never in a backup"
    );
}
