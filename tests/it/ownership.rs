//! The OS keyring is shared by every keyctl home of a user: `doctor --fix` removes only
//! what its own home owns, only under the registry lock, and only once older than the
//! grace period; foreign items are listed apart. Python keyring's own items for a key are
//! read (newest wins) and removed with it. Issue 20 and issue 19's keyring bullet.

use std::time::Duration;

use crate::support::fake_http::{FakeServer, Response};
use crate::support::*;

fn id_of(out: &str) -> String {
    json(out)["id"].as_str().unwrap().to_string()
}

#[test]
fn doctor_fix_in_one_home_leaves_another_homes_items_and_other_programs_items() {
    let ss = require!(SecretService::start());
    let a = Home::new();
    let b = Home::new();
    let a_key = id_of(&ss.cmd(&a).args(["--json", "create", "--name", "a"]).ok());
    let b_key = id_of(&ss.cmd(&b).args(["--json", "create", "--name", "b"]).ok());
    // An older keyctl's item (no home attribute) that home A's registry names is A's.
    let (code, _, err) = ss
        .cmd(&a)
        .args(["import", "--name", "old", "--id", "kcold333333333"])
        .stdin("an-old-items-secret-value\n")
        .run();
    assert_eq!(code, 0, "{err}");
    ss.secret_tool_store("kcold333333333", "an-old-items-secret-value");
    ss.secret_tool_store("remote:theirs", "another-programs-secret");

    let report = json(&ss.cmd(&b).args(["--json", "doctor"]).ok());
    assert_eq!(report["orphans"], serde_json::json!([]), "{report}");
    let foreign = report["foreign"].as_array().unwrap();
    for id in [&a_key, "kcold333333333", "remote:theirs"] {
        assert!(
            foreign.iter().any(|f| f == &format!("keyring:{id}")),
            "{id} is foreign to B: {report}"
        );
    }
    let (code, _, err) = ss
        .cmd(&b)
        .env("KEYCTL_ORPHAN_GRACE", "0")
        .args(["--yes", "doctor", "--fix"])
        .run();
    assert_eq!(code, 0, "{err}");
    assert!(!err.contains("removed"), "{err}");
    for id in [&a_key, &b_key, "kcold333333333", "remote:theirs"] {
        assert!(ss.secret_tool_lookup(id).is_some(), "{id} was deleted");
    }
    // Home A claims its old item: not foreign there.
    let report = json(&ss.cmd(&a).args(["--json", "doctor"]).ok());
    assert_eq!(report["orphans"], serde_json::json!([]), "{report}");
    assert!(
        !report["foreign"]
            .as_array()
            .unwrap()
            .iter()
            .any(|f| f == "keyring:kcold333333333"),
        "{report}"
    );
}

#[test]
fn doctor_fix_with_a_moved_aside_or_torn_registry_removes_nothing() {
    let ss = require!(SecretService::start());
    let home = Home::new();
    let id = id_of(&ss.cmd(&home).args(["--json", "create", "--name", "k"]).ok());
    let fix = || {
        ss.cmd(&home)
            .env("KEYCTL_ORPHAN_GRACE", "0")
            .args(["--yes", "doctor", "--fix"])
            .run()
    };
    let reg = home.path().join("keys.json");
    // keyctl's own advice for a torn registry: move it aside.
    std::fs::write(&reg, b"{\"version\": 1, \"keys\": [").unwrap();
    let (_, _, err) = fix();
    assert!(!err.contains("removed orphaned"), "{err}");
    assert!(ss.secret_tool_lookup(&id).is_some());
    std::fs::rename(&reg, home.path().join("keys.json.aside")).unwrap();
    let (code, _, err) = fix();
    assert_eq!(code, 0, "{err}");
    assert!(err.contains("removes nothing"), "{err}");
    assert!(
        ss.secret_tool_lookup(&id).is_some(),
        "the secret was deleted"
    );
    std::fs::write(&reg, b"{\"version\": 1, \"keys\": []}").unwrap();
    let (_, _, err) = fix();
    assert!(err.contains("removes nothing"), "{err}");
    assert!(
        ss.secret_tool_lookup(&id).is_some(),
        "the secret was deleted"
    );
}

/// `step` (a command printing a new key's `--json`) in a loop beside `doctor --fix -y` in a
/// loop: every key made keeps its secret.
fn beside_doctor(cmd: impl Fn() -> Cmd + Sync, n: usize, step: impl Fn(usize) -> Vec<String>) {
    let stop = std::sync::atomic::AtomicBool::new(false);
    let made = std::thread::scope(|s| {
        let doctor = s.spawn(|| {
            let mut runs = 0;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                cmd().args(["--yes", "doctor", "--fix"]).run();
                runs += 1;
            }
            runs
        });
        let mut made = Vec::new();
        for i in 0..n {
            made.push(id_of(&cmd().args(step(i)).ok()));
        }
        stop.store(true, std::sync::atomic::Ordering::Relaxed);
        assert!(doctor.join().unwrap() > 0);
        made
    });
    let mut lost = 0;
    for id in &made {
        let (code, _, _) = cmd().args(["secret", id]).run();
        if code != 0 {
            lost += 1;
        }
    }
    assert_eq!(lost, 0, "{lost} of {n} secrets lost");
}

fn create_step(i: usize) -> Vec<String> {
    ["--json", "create", "--name", &format!("c{i}")]
        .map(String::from)
        .to_vec()
}

#[test]
fn create_and_doctor_fix_in_loops_lose_nothing_in_the_file_store() {
    let home = Home::new();
    beside_doctor(|| home.cmd().args(["--store", "file"]), 40, create_step);
}

#[test]
fn rotate_and_doctor_fix_in_loops_lose_no_successor() {
    let home = Home::new();
    home.cmd()
        .args(["--store", "file", "create", "--name", "r"])
        .ok();
    beside_doctor(
        || home.cmd().args(["--store", "file"]),
        20,
        |_| {
            ["--json", "rotate", "r", "--grace", "1h"]
                .map(String::from)
                .to_vec()
        },
    );
}

#[test]
fn create_and_doctor_fix_in_loops_lose_nothing_in_the_keyring() {
    let ss = require!(SecretService::start());
    let home = Home::new();
    beside_doctor(
        || ss.cmd(&home).args(["--store", "keyring"]),
        25,
        create_step,
    );
}

/// A Keystone-shaped server where every login succeeds (`remote add` needs one).
fn keystone_login() -> FakeServer {
    FakeServer::start(|_| {
        Response::json(
            201,
            serde_json::json!({"token": {"expires_at": "2099-01-01T00:00:00Z",
                "user": {"id": "u1"}, "project": {"id": "p1"}}}),
        )
        .header("X-Subject-Token", "tok-0123456789")
    })
}

/// `remote add fk` (replacing one there) in a keyring home, the password on stdin.
fn add_fk(ss: &SecretService, home: &Home, server: &FakeServer, password: &str) -> Cmd {
    ss.cmd(home)
        .args([
            "--store",
            "keyring",
            "remote",
            "add",
            "fk",
            "--url",
            &server.url,
        ])
        .args(["--user", "u", "--project", "p", "--force"])
        .stdin(password)
}

fn pykeyring(py: &std::path::Path, ss: &SecretService) -> Cmd {
    Cmd::new(py)
        .env("DBUS_SESSION_BUS_ADDRESS", &ss.address)
        .env(
            "PYTHON_KEYRING_BACKEND",
            "keyring.backends.SecretService.Keyring",
        )
}

#[test]
fn python_keyring_overwrites_a_keyctl_item_and_keyctl_reads_the_new_value() {
    let py = require!(need("Python's keyring", "KEYCTL_TEST_PYKEYRING"));
    let ss = require!(SecretService::start());
    let home = Home::new();
    let id = id_of(
        &ss.cmd(&home)
            .args(["--json", "create", "--name", "py"])
            .ok(),
    );
    // Secret Service times are whole seconds: the overwrite is in a later one.
    std::thread::sleep(Duration::from_millis(1100));
    let (code, _, err) = pykeyring(&py, &ss)
        .args(["set", "keyctl", &id])
        .stdin("written-by-python-keyring\n")
        .run();
    assert_eq!(code, 0, "python keyring: {err}");
    let (code, out, err) = ss.cmd(&home).args(["secret", &id]).run();
    assert_eq!(code, 0, "{err}");
    assert_eq!(out, "written-by-python-keyring\n");
    // Python keyring's item is this key's too: not foreign, not an orphan.
    let report = json(&ss.cmd(&home).args(["--json", "doctor"]).ok());
    assert_eq!(report["foreign"], serde_json::json!([]), "{report}");
    assert_eq!(report["orphans"], serde_json::json!([]), "{report}");
    // Deleting the key removes both items.
    ss.cmd(&home).args(["--yes", "delete", &id]).ok();
    assert_eq!(ss.secret_tool_lookup(&id), None);
    let (code, out, _) = pykeyring(&py, &ss).args(["get", "keyctl", &id]).run();
    assert!(
        code != 0 || out.trim().is_empty(),
        "python still reads {out}"
    );
}

#[test]
fn a_remotes_credential_is_not_an_orphan_while_config_yaml_names_it() {
    let ss = require!(SecretService::start());
    let server = keystone_login();
    let home = Home::new();
    add_fk(&ss, &home, &server, "remote-password").ok();
    ss.cmd(&home).args(["create", "--name", "k"]).ok();
    let report = json(&ss.cmd(&home).args(["--json", "doctor"]).ok());
    assert_eq!(report["orphans"], serde_json::json!([]), "{report}");
    ss.cmd(&home)
        .env("KEYCTL_ORPHAN_GRACE", "0")
        .args(["--yes", "doctor", "--fix"])
        .ok();
    assert_eq!(
        ss.secret_tool_lookup("remote:fk").as_deref(),
        Some("remote-password")
    );
    assert!(
        ss.secret_tool_lookup("token:fk").is_some(),
        "the cached token"
    );
    // Once config.yaml no longer names the remote, its credential is this home's orphan.
    std::fs::write(home.path().join("config.yaml"), "").unwrap();
    let report = json(&ss.cmd(&home).args(["--json", "doctor"]).ok());
    assert_eq!(
        report["orphans"],
        serde_json::json!(["keyring:remote:fk", "keyring:token:fk"]),
        "{report}"
    );
}

#[test]
fn keyctl_replaces_its_item_and_python_keyrings_together() {
    let py = require!(need("Python's keyring", "KEYCTL_TEST_PYKEYRING"));
    let ss = require!(SecretService::start());
    let server = keystone_login();
    let home = Home::new();
    let add = |password: &str| {
        add_fk(&ss, &home, &server, password).ok();
    };
    add("first-password");
    let (code, _, err) = pykeyring(&py, &ss)
        .args(["set", "keyctl", "remote:fk"])
        .stdin("python-password\n")
        .run();
    assert_eq!(code, 0, "python keyring: {err}");
    add("second-password");
    // secret-tool shows every item of the remote's credential: both hold the new one.
    let all = Cmd::new("secret-tool")
        .args([
            "search",
            "--all",
            "--unlock",
            "service",
            "keyctl",
            "username",
            "remote:fk",
        ])
        .env("DBUS_SESSION_BUS_ADDRESS", &ss.address)
        .run();
    let text = format!("{}{}", all.1, all.2);
    assert_eq!(text.matches("secret = ").count(), 2, "{text}");
    assert_eq!(
        text.matches("secret = second-password").count(),
        2,
        "{text}"
    );
    let (_, out, _) = pykeyring(&py, &ss)
        .args(["get", "keyctl", "remote:fk"])
        .run();
    assert_eq!(out.trim_end(), "second-password");
}
