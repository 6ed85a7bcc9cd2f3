//! The operator's local commands, through the real binary: `safehire config check` (valid,
//! invalid with the key named, environment applied as `serve` applies it, files reported but
//! never printed) and `safehire keys new` / `keys id` (never overwrite, never print the key).

use crate::common;

use std::os::unix::fs::PermissionsExt;
use std::process::Output;

use common::process::safehire_with_env;

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn config_check_prints_the_effective_configuration_with_the_environment_applied() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("s.toml"),
        "data_dir = \"/srv/sh\"\n[limits]\nmax_batch_rows = 10\n",
    )
    .unwrap();
    let out = safehire_with_env(
        dir.path(),
        &["config", "check", "s.toml"],
        &[("SAFEHIRE_LISTEN", "127.0.0.1:6000")],
    );
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let text = stdout(&out);
    assert!(
        text.contains("variables applied: SAFEHIRE_LISTEN"),
        "{text}"
    );
    let printed: toml::Table = toml::from_str(&text).expect("the output is TOML");
    assert_eq!(printed["listen"].as_str(), Some("127.0.0.1:6000"));
    assert_eq!(printed["limits"]["max_batch_rows"].as_integer(), Some(10));
    assert_eq!(
        printed["master_key_file"].as_str(),
        Some("/srv/sh/master.key"),
        "derived paths are shown as the server will use them"
    );
}

#[test]
fn config_check_names_the_key_of_an_invalid_configuration() {
    let dir = tempfile::tempdir().unwrap();
    /// (file text, SAFEHIRE_… variables, the key the error must name)
    type Case<'a> = (&'a str, &'a [(&'a str, &'a str)], &'a str);
    let cases: [Case; 5] = [
        ("[limits]\nmax_mesage_bytes = 5\n", &[], "max_mesage_bytes"),
        (
            "[rules]\nrecheck_interval_days = 0\n",
            &[],
            "rules.recheck_interval_days",
        ),
        (
            "[rules]\nexcess_query_ratio = nan\n",
            &[],
            "rules.excess_query_ratio",
        ),
        ("listen = 7\n", &[], "listen"),
        (
            "",
            &[("SAFEHIRE_LIMITS__MAX_BATCH_ROWS", "0")],
            "limits.max_batch_rows",
        ),
    ];
    for (text, env, key) in cases {
        std::fs::write(dir.path().join("bad.toml"), text).unwrap();
        let out = safehire_with_env(dir.path(), &["config", "check", "bad.toml"], env);
        assert_eq!(out.status.code(), Some(5), "{text}: {}", stderr(&out));
        assert!(stderr(&out).contains(key), "{key}: {}", stderr(&out));
        assert!(stdout(&out).is_empty());
    }
    let missing = safehire_with_env(dir.path(), &["config", "check", "nowhere.toml"], &[]);
    assert_eq!(missing.status.code(), Some(7));
}

#[test]
fn config_check_reports_the_files_without_printing_the_key() {
    let dir = tempfile::tempdir().unwrap();
    let certs = safehire_with_env(dir.path(), &["certs", "init", "--out", "tls"], &[]);
    assert!(certs.status.success(), "{}", stderr(&certs));
    std::fs::write(
        dir.path().join("prod.toml"),
        "dev_mode = false\nmaster_key_file = \"keys/master.key\"\n[tls]\ndev_dir = \"tls\"\n",
    )
    .unwrap();
    let check = |extra: &[&str]| {
        let mut args = vec!["config", "check", "prod.toml"];
        args.extend_from_slice(extra);
        safehire_with_env(dir.path(), &args, &[])
    };
    let without_key = check(&[]);
    assert_eq!(
        without_key.status.code(),
        Some(0),
        "the configuration is valid"
    );
    assert!(
        stdout(&without_key).contains("PROBLEM: master key file keys/master.key does not exist")
    );
    assert_eq!(check(&["--require-files"]).status.code(), Some(7));

    let created = safehire_with_env(dir.path(), &["keys", "new", "keys/master.key"], &[]);
    assert!(created.status.success(), "{}", stderr(&created));
    let ready = check(&["--require-files"]);
    assert_eq!(ready.status.code(), Some(0), "{}", stdout(&ready));
    let text = stdout(&ready);
    let key = std::fs::read(dir.path().join("keys/master.key")).unwrap();
    let key_id = stdout(&safehire_with_env(
        dir.path(),
        &["keys", "id", "keys/master.key"],
        &[],
    ));
    assert!(
        text.contains(&format!("mode 0600, 32 bytes, key id {}", key_id.trim())),
        "{text}"
    );
    assert!(text.contains("tls/ca.pem: ok, 1 certificate(s)"), "{text}");
    assert!(!text.contains(&hex::encode(&key)));
}

#[test]
fn keys_new_writes_a_private_key_once_and_keys_id_names_it() {
    let dir = tempfile::tempdir().unwrap();
    let out = safehire_with_env(dir.path(), &["keys", "new", "etc/master.key"], &[]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let path = dir.path().join("etc/master.key");
    let key = std::fs::read(&path).unwrap();
    assert_eq!(key.len(), 32);
    let mode = std::fs::metadata(&path).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600);

    let id = safehire_with_env(dir.path(), &["keys", "id", "etc/master.key"], &[]);
    assert_eq!(id.status.code(), Some(0));
    let key_id = stdout(&id).trim().to_string();
    assert_eq!(key_id.len(), 32);
    assert!(stdout(&out).contains(&key_id), "keys new names the key id");
    for printed in [stdout(&out), stdout(&id), stderr(&out)] {
        assert!(
            !printed.contains(&hex::encode(&key)),
            "the key is never printed"
        );
    }

    let again = safehire_with_env(dir.path(), &["keys", "new", "etc/master.key"], &[]);
    assert_eq!(again.status.code(), Some(5));
    assert!(
        stderr(&again).contains("never replaced"),
        "{}",
        stderr(&again)
    );
    assert_eq!(std::fs::read(&path).unwrap(), key, "the key is unchanged");

    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
    let open = safehire_with_env(dir.path(), &["keys", "id", "etc/master.key"], &[]);
    assert_eq!(open.status.code(), Some(5));
    assert!(stderr(&open).contains("chmod 600"));
    let missing = safehire_with_env(dir.path(), &["keys", "id", "nowhere.key"], &[]);
    assert_eq!(missing.status.code(), Some(7));
}
