//! `[telemetry] otlp_endpoint` through `safehire config check`: a build without the `otel`
//! feature refuses it, from the file or from SAFEHIRE_TELEMETRY__OTLP_ENDPOINT, rather than
//! run without the export the operator asked for; a build with it accepts it and shows it.

use std::process::Output;

use crate::common::process::safehire_with_env;

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn telemetry_is_off_by_default_and_shown_in_the_effective_configuration() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("s.toml"), "").unwrap();
    let out = safehire_with_env(dir.path(), &["config", "check", "s.toml"], &[]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let printed: toml::Table = toml::from_str(&String::from_utf8_lossy(&out.stdout)).unwrap();
    assert_eq!(printed["telemetry"]["otlp_endpoint"].as_str(), Some(""));
    assert_eq!(
        printed["telemetry"]["service_name"].as_str(),
        Some("safehire")
    );
}

#[test]
fn an_otlp_endpoint_needs_a_build_with_the_otel_feature() {
    let dir = tempfile::tempdir().unwrap();
    let endpoint = "http://127.0.0.1:4317";
    std::fs::write(
        dir.path().join("file.toml"),
        format!("[telemetry]\notlp_endpoint = \"{endpoint}\"\n"),
    )
    .unwrap();
    std::fs::write(dir.path().join("empty.toml"), "").unwrap();
    let from_file = safehire_with_env(dir.path(), &["config", "check", "file.toml"], &[]);
    let from_env = safehire_with_env(
        dir.path(),
        &["config", "check", "empty.toml"],
        &[("SAFEHIRE_TELEMETRY__OTLP_ENDPOINT", endpoint)],
    );
    for out in [from_file, from_env] {
        if cfg!(feature = "otel") {
            assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
            let printed: toml::Table =
                toml::from_str(&String::from_utf8_lossy(&out.stdout)).unwrap();
            assert_eq!(
                printed["telemetry"]["otlp_endpoint"].as_str(),
                Some(endpoint)
            );
        } else {
            assert_eq!(out.status.code(), Some(5), "{}", stderr(&out));
            let err = stderr(&out);
            assert!(
                err.contains(
                    "telemetry.otlp_endpoint is set but this build has no OpenTelemetry support; rebuild with --features otel"
                ),
                "{err}"
            );
            assert!(out.stdout.is_empty());
        }
    }
}

#[test]
fn serve_refuses_an_otlp_endpoint_it_cannot_honour() {
    // `serve` validates as `config check` does, before it creates anything.
    let dir = tempfile::tempdir().unwrap();
    let endpoint = if cfg!(feature = "otel") {
        "http://127.0.0.1:4318/v1/traces"
    } else {
        "http://127.0.0.1:4317"
    };
    let out = safehire_with_env(
        dir.path(),
        &["serve", "--listen", "127.0.0.1:0"],
        &[
            ("SAFEHIRE_TELEMETRY__OTLP_ENDPOINT", endpoint),
            ("SAFEHIRE_METRICS__ENABLED", "false"),
        ],
    );
    assert_eq!(out.status.code(), Some(5), "{}", stderr(&out));
    assert!(stderr(&out).contains("telemetry.otlp_endpoint"));
    assert!(
        !dir.path().join("data").exists(),
        "nothing was created before the refusal"
    );
}
