//! The `fishapp` binary as an operator runs it: configuration errors, `config`, `schema`,
//! `migrate`, and a clean exit on SIGTERM.

mod common;

use common::{TestDatabase, free_port, test_config};
use std::process::{Command, Output, Stdio};
use std::time::Duration;

fn fishapp(args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_fishapp"));
    command.args(args).stdin(Stdio::null());
    for (key, value) in env {
        command.env(key, value);
    }
    command.output().expect("fishapp runs")
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

#[test]
fn a_bad_environment_value_exits_2_with_one_line_naming_the_variable() {
    for (key, value) in [
        ("FISHAPP_HTTP_ADDR", "not-an-address"),
        ("FISHAPP_DATABASE_MAX_CONNECTIONS", "many"),
        ("FISHAPP_REDIS_URL", "http://127.0.0.1:6379"),
        ("FISHAPP_LOG_FORMAT", "xml"),
        ("FISHAPP_DATABSE_URL", "postgres://typo"),
    ] {
        let output = fishapp(&["serve"], &[(key, value)]);
        assert_eq!(
            output.status.code(),
            Some(2),
            "{key}={value}: {}",
            stderr(&output)
        );
        let message = stderr(&output);
        assert_eq!(message.trim_end().lines().count(), 1, "one line: {message}");
        assert!(message.contains(key), "{key} not named in: {message}");
    }
}

#[test]
fn a_bad_file_value_names_the_key_and_the_file() {
    let dir = std::env::temp_dir().join(format!("fishapp-cli-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("fishapp.toml");
    std::fs::write(&file, "shutdown_grace_secs = -1\n").unwrap();
    let output = fishapp(&["--config", file.to_str().unwrap(), "config"], &[]);
    std::fs::remove_dir_all(&dir).ok();
    assert_eq!(output.status.code(), Some(2));
    let message = stderr(&output);
    assert!(
        message.contains("shutdown_grace_secs") && message.contains("fishapp.toml"),
        "{message}"
    );
}

#[test]
fn config_prints_the_effective_values_with_secrets_redacted() {
    let output = fishapp(
        &["config"],
        &[
            (
                "FISHAPP_DATABASE_URL",
                "postgres://app:sup3r-secret@db.internal:5432/fishapp",
            ),
            ("FISHAPP_TEMPORAL_NAMESPACE", "fishapp-prod"),
        ],
    );
    assert!(output.status.success(), "{}", stderr(&output));
    let printed = stdout(&output);
    assert!(!printed.contains("sup3r-secret"), "{printed}");
    assert!(
        printed.contains("postgres://app:REDACTED@db.internal:5432/fishapp"),
        "{printed}"
    );
    assert!(
        printed.contains(r#"temporal_namespace = "fishapp-prod""#),
        "{printed}"
    );
}

#[test]
fn schema_prints_the_sdl() {
    let output = fishapp(&["schema"], &[]);
    assert!(output.status.success());
    assert!(stdout(&output).contains("healthCheck: Boolean!"));
}

#[test]
fn every_subcommand_has_help() {
    for sub in [
        "dev",
        "serve",
        "worker",
        "relay",
        "notifier",
        "dead-letters",
        "notifier-rewind",
        "migrate",
        "replay",
        "keygen",
        "schema",
        "config",
    ] {
        let output = fishapp(&[sub, "--help"], &[]);
        assert!(output.status.success(), "{sub} --help");
        assert!(stdout(&output).contains("Usage: fishapp"), "{sub}");
    }
}

#[test]
fn keygen_writes_a_private_key_once_and_prints_its_public_key() {
    let dir = tempfile::tempdir().unwrap();
    let key = dir.path().join("keys/jwt.pem");
    let key_arg = key.to_str().unwrap();
    let output = fishapp(&["keygen", "--out", key_arg], &[]);
    assert!(output.status.success(), "{}", stderr(&output));
    let public = stdout(&output);
    assert!(public.starts_with("-----BEGIN PUBLIC KEY-----"), "{public}");
    let private = std::fs::read_to_string(&key).unwrap();
    assert!(private.starts_with("-----BEGIN PRIVATE KEY-----"));
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(
        std::fs::metadata(&key).unwrap().permissions().mode() & 0o777,
        0o600
    );
    // Never over an existing key; --if-missing keeps it and prints the same public key.
    let again = fishapp(&["keygen", "--out", key_arg], &[]);
    assert_eq!(again.status.code(), Some(1));
    assert!(
        stderr(&again).contains("never overwritten"),
        "{}",
        stderr(&again)
    );
    let kept = fishapp(&["keygen", "--out", key_arg, "--if-missing"], &[]);
    assert!(kept.status.success());
    assert_eq!(stdout(&kept), public);
    assert_eq!(std::fs::read_to_string(&key).unwrap(), private);
}

#[tokio::test]
async fn migrate_creates_the_database_and_is_idempotent() {
    let config = test_config();
    // Created by `migrate` itself; dropped by the guard.
    let guard = TestDatabase {
        url: config.connections.database_url.clone(),
    };
    let env = [("FISHAPP_DATABASE_URL", guard.url.as_str())];

    let first = fishapp(&["migrate"], &env);
    assert!(first.status.success(), "{}", stderr(&first));
    assert!(
        !stdout(&first).contains("applied: []"),
        "{}",
        stdout(&first)
    );

    let second = fishapp(&["migrate"], &env);
    assert!(second.status.success(), "{}", stderr(&second));
    assert!(
        stdout(&second).contains("applied: []"),
        "{}",
        stdout(&second)
    );
}

#[test]
fn serve_refuses_to_start_without_a_signing_key() {
    let output = fishapp(
        &["serve"],
        &[("FISHAPP_JWT_PRIVATE_KEY_FILE", "/nonexistent/key.pem")],
    );
    assert_eq!(output.status.code(), Some(1));
    assert!(
        stderr(&output).contains("no ID-token signing key at /nonexistent/key.pem"),
        "{}",
        stderr(&output)
    );
}

#[tokio::test]
async fn sigterm_stops_serve_with_exit_code_0() {
    let port = free_port().await;
    let addr = format!("127.0.0.1:{port}");
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_fishapp"))
        .arg("serve")
        .env("FISHAPP_HTTP_ADDR", &addr)
        .env("FISHAPP_LOG_FILTER", "warn")
        .env("FISHAPP_JWT_PRIVATE_KEY_PEM", common::test_signing_key())
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("fishapp serve starts");

    let client = reqwest::Client::new();
    let healthz = format!("http://{addr}/healthz");
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while client.get(&healthz).send().await.is_err() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "serve never answered"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    let pid = child.id().expect("running").to_string();
    let killed = Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .expect("kill runs");
    assert!(killed.success());
    let status = tokio::time::timeout(Duration::from_secs(15), child.wait())
        .await
        .expect("exits within the grace period")
        .expect("wait");
    assert_eq!(status.code(), Some(0));
}
