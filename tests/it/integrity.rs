//! Nothing lost, nothing leaked: keyctl killed at random points, run twice at once, fed
//! hostile files and arguments. Each test provokes what used to break (two live keys of
//! one name after concurrent rotations, a stranded secret after a killed create, a named
//! temp file holding a secret beside the user's config, a secret quoted in an error,
//! `/dev/zero` as a `--write` target) and checks the state left behind.

use std::io::Write as _;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use crate::support::*;
use serde_json::Value;

fn keyctl(home: &Home, args: &[&str], stdin: &str) -> (i32, String, String) {
    home.cmd()
        .args(["--store", "file"])
        .args(args)
        .stdin(stdin)
        .run()
}

fn ok(home: &Home, args: &[&str]) -> String {
    let (code, out, err) = keyctl(home, args, "");
    assert_eq!(code, 0, "keyctl {args:?}: {err}");
    out
}

fn keys(home: &Home) -> Vec<Value> {
    json(&ok(home, &["--json", "list", "--all"]))
        .as_array()
        .unwrap()
        .clone()
}

fn store(home: &Home) -> serde_json::Map<String, Value> {
    match std::fs::read(home.path().join("secrets.json")) {
        Ok(b) => serde_json::from_slice::<Value>(&b)
            .unwrap()
            .as_object()
            .unwrap()
            .clone(),
        Err(_) => Default::default(),
    }
}

/// Starts keyctl and SIGKILLs it after `after`.
fn kill_after(home: &Home, args: &[&str], after: Duration) {
    let mut c = home.cmd().command();
    c.args(["--store", "file"])
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    let mut child = c.spawn().unwrap();
    std::thread::sleep(after);
    let _ = child.kill();
    let _ = child.wait();
}

/// A pseudo-random delay from 0 to `max_ms`.
fn jitter(seed: &mut u64, max_ms: u64) -> Duration {
    *seed ^= *seed << 13;
    *seed ^= *seed >> 7;
    *seed ^= *seed << 17;
    Duration::from_micros(*seed % (max_ms * 1000))
}

/// Files anywhere under `dir` (other than `except`) whose bytes contain `needle`.
fn files_holding(dir: &Path, needle: &str, except: &[&Path]) -> Vec<String> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap().flatten() {
        let p = e.path();
        if except.contains(&p.as_path()) {
            continue;
        }
        if p.is_dir() {
            out.extend(files_holding(&p, needle, except));
        } else if std::fs::read(&p).is_ok_and(|b| String::from_utf8_lossy(&b).contains(needle)) {
            out.push(p.display().to_string());
        }
    }
    out
}

#[test]
fn concurrent_rotations_leave_one_live_key_per_name() {
    for round in 0..6 {
        let home = Home::new();
        ok(&home, &["create", "--name", "r"]);
        let spawn = || {
            let mut c = home.cmd().command();
            c.args(["--store", "file", "rotate", "r", "--grace", "1h"])
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::piped());
            c.spawn().unwrap()
        };
        let (a, b) = (spawn(), spawn());
        let codes: Vec<i32> = [a, b]
            .into_iter()
            .map(|c| c.wait_with_output().unwrap().status.code().unwrap())
            .collect();
        assert!(codes.contains(&0), "round {round}: {codes:?}");
        assert!(
            codes.iter().all(|c| [0, 4, 8].contains(c)),
            "round {round}: {codes:?}"
        );
        let live: Vec<Value> = keys(&home)
            .into_iter()
            .filter(|k| k["name"] == "r" && k["status"] == "active")
            .collect();
        assert_eq!(live.len(), 1, "round {round}: {live:?}");
        ok(&home, &["secret", "r"]);
        // Every supersession names a key that exists.
        let all = keys(&home);
        for k in &all {
            if let Some(by) = k["superseded"]["by"].as_str() {
                assert!(all.iter().any(|n| n["id"] == by), "{k}");
            }
        }
    }
}

#[test]
fn a_killed_create_leaves_an_orphan_that_doctor_finds_and_fixes() {
    let home = Home::new();
    ok(&home, &["create", "--name", "first"]);
    let mut seed = 0x9E37_79B9_7F4A_7C15u64;
    for i in 0..40 {
        let name = format!("k{i}");
        kill_after(&home, &["create", "--name", &name], jitter(&mut seed, 25));
    }
    // The next write removes whatever a killed one left; then no named temporary copy
    // of the store is in the home.
    ok(&home, &["create", "--name", "after"]);
    let leftovers: Vec<String> = std::fs::read_dir(home.path())
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".tmp"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
    let registry: Vec<String> = keys(&home)
        .iter()
        .map(|k| k["id"].as_str().unwrap().to_string())
        .collect();
    let orphans: Vec<String> = store(&home)
        .keys()
        .filter(|id| !registry.contains(id))
        .cloned()
        .collect();
    let report = json(&ok(&home, &["--json", "doctor"]));
    let reported: Vec<String> = report["orphans"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o.as_str().unwrap().trim_start_matches("file:").to_string())
        .collect();
    assert_eq!(reported.len(), orphans.len(), "{report}");
    if !orphans.is_empty() {
        let before = store(&home).len();
        // Scripts must say yes.
        let (code, _, err) = keyctl(&home, &["doctor", "--fix"], "");
        assert_eq!(code, 10, "{err}");
        // Within the grace period nothing goes: a command may still be writing the record.
        let (code, _, err) = keyctl(&home, &["--yes", "doctor", "--fix"], "");
        assert_eq!(code, 0, "{err}");
        assert!(err.contains("kept"), "{err}");
        assert_eq!(store(&home).len(), before);
        let (code, _, err) = home
            .cmd()
            .env("KEYCTL_ORPHAN_GRACE", "0")
            .args(["--store", "file", "--yes", "doctor", "--fix"])
            .run();
        assert_eq!(code, 0, "{err}");
        assert!(err.contains("removed orphaned secret"), "{err}");
    }
    let after = store(&home);
    assert!(after.keys().all(|id| registry.contains(id)), "{after:?}");
    for id in &registry {
        let k = keys(&home)
            .into_iter()
            .find(|k| k["id"] == id.as_str())
            .unwrap();
        if k["status"] != "revoked" {
            assert!(after.contains_key(id), "key {id} lost its secret");
        }
    }
    assert_eq!(
        json(&ok(&home, &["--json", "doctor"]))["orphans"],
        serde_json::json!([])
    );
}

#[test]
fn a_killed_rotation_is_finished_or_undone_by_running_it_again() {
    let home = Home::new();
    ok(&home, &["create", "--name", "r"]);
    let mut seed = 0x2545_F491_4F6C_DD1Du64;
    for _ in 0..25 {
        kill_after(
            &home,
            &["rotate", "r", "--grace", "1h"],
            jitter(&mut seed, 30),
        );
        let all = keys(&home);
        let live: Vec<&Value> = all
            .iter()
            .filter(|k| k["name"] == "r" && k["status"] == "active")
            .collect();
        assert_eq!(live.len(), 1, "{all:?}");
        for k in &all {
            if let Some(by) = k["superseded"]["by"].as_str() {
                assert!(all.iter().any(|n| n["id"] == by), "dangling: {k}");
            }
        }
        ok(&home, &["secret", "r"]);
    }
    ok(&home, &["rotate", "r", "--grace", "1h"]);
    ok(&home, &["--yes", "doctor", "--fix"]);
    ok(&home, &["secret", "r"]);
}

#[test]
fn a_killed_config_write_leaves_no_named_copy_of_the_secret() {
    let home = Home::new();
    let out = ok(&home, &["--json", "create", "--name", "w"]);
    let secret = json(&out)["secret"].as_str().unwrap().to_string();
    let dir = tempfile::tempdir().unwrap();
    let conf = dir.path().join("configuration.yml");
    std::fs::write(&conf, "data_source x:\n  type: postgres\n").unwrap();
    let mut seed = 0xDEAD_BEEF_1234_5678u64;
    for _ in 0..30 {
        let path = conf.to_str().unwrap().to_string();
        kill_after(
            &home,
            &["--yes", "config", "w", "--write", &path],
            jitter(&mut seed, 20),
        );
        // The next run removes what a killed one left in the instant between naming
        // its temporary file and renaming it over the target.
        ok(&home, &["--yes", "config", "w", "--write", &path]);
        let leaks = files_holding(dir.path(), &secret, &[conf.as_path()]);
        assert!(leaks.is_empty(), "a copy of the secret was left: {leaks:?}");
    }
    // And none in the home beside the store itself.
    let store_file = home.path().join("secrets.json");
    let leaks = files_holding(&home.path(), &secret, &[store_file.as_path()]);
    assert!(leaks.is_empty(), "{leaks:?}");
}

#[test]
fn write_targets_must_be_regular_files_in_a_writable_directory() {
    let home = Home::new();
    ok(&home, &["create", "--name", "k"]);
    let dir = tempfile::tempdir().unwrap();
    let fifo = dir.path().join("fifo.yml");
    assert!(
        Command::new("mkfifo")
            .arg(&fifo)
            .status()
            .unwrap()
            .success()
    );
    for target in ["/dev/null", "/dev/zero", fifo.to_str().unwrap()] {
        let (code, _, err) = keyctl(&home, &["config", "k", "--write", target], "");
        assert_eq!(code, 2, "{target}: {err}");
        assert!(err.contains("not a regular file"), "{err}");
    }
    // A directory that takes no new file: checked before anything is minted.
    let before = keys(&home).len();
    let (code, _, err) = keyctl(
        &home,
        &["create", "--name", "n", "--write", "/proc/keyctl-test.yml"],
        "",
    );
    assert_eq!(code, 2, "{err}");
    assert_eq!(keys(&home).len(), before);
    // A UTF-8 byte order mark is kept; deep nesting is refused.
    let bom = dir.path().join("bom.yml");
    std::fs::write(&bom, "\u{feff}data_source x:\n  type: postgres\n").unwrap();
    ok(&home, &["config", "k", "--write", bom.to_str().unwrap()]);
    let text = std::fs::read_to_string(&bom).unwrap();
    assert!(text.starts_with("\u{feff}data_source x:"), "{text:?}");
    assert!(text.contains("soda_cloud:"), "{text}");
    let deep = dir.path().join("deep.yml");
    std::fs::write(
        &deep,
        format!("a: {}{}\n", "[".repeat(100_000), "]".repeat(100_000)),
    )
    .unwrap();
    let (code, _, err) = keyctl(
        &home,
        &["config", "k", "--write", deep.to_str().unwrap()],
        "",
    );
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("nests deeper"), "{err}");
}

#[test]
fn dry_run_masks_every_secret_like_value_whatever_its_style() {
    let home = Home::new();
    let out = ok(&home, &["--json", "create", "--name", "k"]);
    let secret = json(&out)["secret"].as_str().unwrap().to_string();
    let dir = tempfile::tempdir().unwrap();
    let conf = dir.path().join("c.yml");
    std::fs::write(
        &conf,
        "data_source x:\n  password: >-\n    folded-db-pass\n  \"db password\": quoted-key-pass\n  token:\n    next-line-token\nsoda_cloud:\n  host: cloud.soda.io\n  api_key_id: \"old\"\n  api_key_secret:\n    old-secret-on-next-line\n",
    )
    .unwrap();
    let (code, out, err) = keyctl(
        &home,
        &[
            "--yes",
            "config",
            "k",
            "--write",
            conf.to_str().unwrap(),
            "--dry-run",
        ],
        "",
    );
    assert_eq!(code, 0, "{err}");
    for s in [
        secret.as_str(),
        "folded-db-pass",
        "quoted-key-pass",
        "next-line-token",
        "old-secret-on-next-line",
    ] {
        assert!(!out.contains(s), "{s} shown:\n{out}");
    }
    assert!(out.contains("***"), "{out}");
}

#[test]
fn hostile_files_and_arguments_are_refused_without_echoing_secrets() {
    let home = Home::new();
    let out = ok(&home, &["--json", "create", "--name", "k"]);
    let secret = json(&out)["secret"].as_str().unwrap().to_string();
    let registry_before = std::fs::read(home.path().join("keys.json")).unwrap();

    // A secret inside another argument.
    for args in [
        vec![
            "create",
            "--name",
            "d",
            "--description",
            &format!("see {secret}"),
        ],
        vec!["create", "--name", "s", "--scope", &format!("{secret}/x")],
    ] {
        let (code, _, err) = keyctl(&home, &args, "");
        assert_eq!(code, 2, "{err}");
        assert!(!err.contains(&secret), "{err}");
    }
    assert_eq!(
        std::fs::read(home.path().join("keys.json")).unwrap(),
        registry_before
    );

    // Bidi and invisible controls in what is shown.
    ok(
        &home,
        &[
            "create",
            "--name",
            "b",
            "--description",
            "safe\u{202E}txt.exe\u{200B}",
        ],
    );
    let shown = ok(&home, &["show", "b"]);
    assert!(
        !shown.contains('\u{202E}') && !shown.contains('\u{200B}'),
        "{shown:?}"
    );

    // A store file readable by others is refused, with the fix; doctor names it.
    let store_file = home.path().join("secrets.json");
    let chmod = |mode: u32| {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&store_file, std::fs::Permissions::from_mode(mode)).unwrap();
    };
    chmod(0o644);
    let (code, _, err) = keyctl(&home, &["secret", "k"], "");
    assert_ne!(code, 0);
    assert!(err.contains("chmod 600"), "{err}");
    let report = json(&ok(&home, &["--json", "doctor"]));
    assert!(
        report["problems"].to_string().contains("chmod 600"),
        "{report}"
    );
    chmod(0o600);

    // A symlinked store is refused and its target left alone.
    let elsewhere = home.dir.path().join("elsewhere.json");
    std::fs::rename(&store_file, &elsewhere).unwrap();
    std::os::unix::fs::symlink(&elsewhere, &store_file).unwrap();
    let target_before = std::fs::read(&elsewhere).unwrap();
    let (code, _, err) = keyctl(&home, &["create", "--name", "via-link"], "");
    assert_ne!(code, 0);
    assert!(err.contains("symbolic link"), "{err}");
    assert_eq!(std::fs::read(&elsewhere).unwrap(), target_before);
    std::fs::remove_file(&store_file).unwrap();

    // A bare JSON string in the store is never quoted back.
    std::fs::write(&store_file, format!("\"{secret}\"")).unwrap();
    chmod(0o600);
    let (code, _, err) = keyctl(&home, &["secret", "k"], "");
    assert_ne!(code, 0);
    assert!(err.contains("corrupted") && !err.contains(&secret), "{err}");
}

#[test]
fn check_treats_any_non_secret_input_as_invalid_and_completion_needs_a_shell() {
    let home = Home::new();
    for input in ["two\nlines\n", "\u{0}\u{1}"] {
        let (code, _, err) = keyctl(&home, &["check"], input);
        assert_eq!(code, 9, "{input:?}: {err}");
    }
    let mut c = home.cmd().command();
    c.args(["check"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = c.spawn().unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(&[0xff, 0xfe, b'\n'])
        .unwrap();
    assert_eq!(child.wait_with_output().unwrap().status.code(), Some(9));

    // KEYCTL_COMPLETE exported in a shell changes nothing until the shell asks.
    let (code, out, err) = home
        .cmd()
        .env("KEYCTL_COMPLETE", "bash")
        .args(["--store", "file", "list"])
        .run();
    assert_eq!(code, 0, "{err}");
    assert!(!out.contains("complete") && !out.contains("_clap"), "{out}");
}

#[test]
fn a_running_keyctl_cannot_dump_core() {
    let home = Home::new();
    // `import` waits on stdin: inspect it while it runs.
    let mut c = home.cmd().command();
    c.args(["--store", "file", "import", "--name", "x", "--id", "abc"])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    let mut child = c.spawn().unwrap();
    // Polled: on a loaded machine keyctl may take a moment to reach its first line.
    let core_line = || {
        std::fs::read_to_string(format!("/proc/{}/limits", child.id()))
            .unwrap_or_default()
            .lines()
            .find(|l| l.starts_with("Max core file size"))
            .map(str::to_owned)
            .unwrap_or_default()
    };
    let zero = |l: &str| l.split_whitespace().skip(4).take(2).eq(["0", "0"]);
    let deadline = std::time::Instant::now() + Duration::from_secs(15);
    let mut line = core_line();
    while !zero(&line) && std::time::Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(100));
        line = core_line();
    }
    drop(child.stdin.take());
    let _ = child.wait();
    assert!(zero(&line), "{line}");
    let report = json(&ok(&home, &["--json", "doctor"]));
    assert_eq!(report["core_dumps_possible"], false, "{report}");
}

#[test]
fn doctor_finds_keyring_items_no_key_owns_and_keys_whose_secret_vanished() {
    let ss = require!(SecretService::start());
    let home = Home::new();
    let keyctl_ss = |args: &[&str]| ss.cmd(&home).args(args).run();
    let (code, out, err) = keyctl_ss(&["--json", "create", "--name", "kept"]);
    assert_eq!(code, 0, "{err}");
    let kept = json(&out)["id"].as_str().unwrap().to_string();
    let (code, out, _) = keyctl_ss(&["--json", "create", "--name", "vanishing"]);
    assert_eq!(code, 0);
    let vanishing = json(&out)["id"].as_str().unwrap().to_string();
    // An item a killed create left (its record is gone), another program's item under
    // service keyctl, and a secret removed behind keyctl's back.
    let (code, out, _) = keyctl_ss(&["--json", "create", "--name", "orphaned"]);
    assert_eq!(code, 0);
    let orphan = json(&out)["id"].as_str().unwrap().to_string();
    let mut reg = home.registry();
    reg["keys"]
        .as_array_mut()
        .unwrap()
        .retain(|k| k["id"] != orphan.as_str());
    std::fs::write(home.path().join("keys.json"), reg.to_string()).unwrap();
    ss.secret_tool_store("kcforeign222222222", "another-program");
    let clear = Command::new("secret-tool")
        .args(["clear", "service", "keyctl", "username", &vanishing])
        .env("DBUS_SESSION_BUS_ADDRESS", &ss.address)
        .status()
        .unwrap();
    assert!(clear.success());

    let (code, out, err) = keyctl_ss(&["--json", "doctor"]);
    assert_eq!(code, 0, "{err}");
    let report = json(&out);
    assert_eq!(
        report["orphans"],
        serde_json::json!([format!("keyring:{orphan}")]),
        "{report}"
    );
    assert_eq!(
        report["foreign"],
        serde_json::json!(["keyring:kcforeign222222222"]),
        "{report}"
    );
    assert_eq!(
        report["missing_secrets"],
        serde_json::json!([vanishing]),
        "{report}"
    );
    let (_, text, _) = keyctl_ss(&["doctor"]);
    assert!(text.contains("2 keys:"), "plural: {text}");
    assert!(
        text.contains("no secret in the keyring store any more"),
        "{text}"
    );

    let (code, _, err) = keyctl_ss(&["--yes", "doctor", "--fix"]);
    assert_eq!(code, 0, "{err}");
    assert!(err.contains("kept 1 orphaned secret"), "{err}");
    assert!(
        ss.secret_tool_lookup(&orphan).is_some(),
        "within the grace period"
    );
    let (code, _, err) = ss
        .cmd(&home)
        .env("KEYCTL_ORPHAN_GRACE", "0")
        .args(["--yes", "doctor", "--fix"])
        .run();
    assert_eq!(code, 0, "{err}");
    assert!(
        err.contains(&format!("removed orphaned secret {orphan}")),
        "{err}"
    );
    assert!(ss.secret_tool_lookup(&orphan).is_none());
    assert!(
        ss.secret_tool_lookup("kcforeign222222222").is_some(),
        "another program's item is never removed"
    );
    assert!(
        ss.secret_tool_lookup(&kept).is_some(),
        "a key's own secret is kept"
    );
}

#[test]
fn ctrl_c_at_the_hidden_prompt_gives_the_terminal_its_echo_back() {
    require!(need_programs("Python", &["python3"], "python3"));
    let home = Home::new();
    std::fs::create_dir_all(home.path()).unwrap();
    // A pseudo-terminal from Python's pty module: keyctl prompts with echo off, gets a
    // Ctrl-C, and the terminal must have echo on again afterwards.
    let script = r#"
import os, pty, sys, time, termios
pid, fd = pty.fork()
if pid == 0:
    os.execv(sys.argv[1], [sys.argv[1], "--home", sys.argv[2], "--store", "file",
                           "import", "--name", "x", "--id", "abc"])
buf = b""
deadline = time.time() + 20
while b"input hidden" not in buf and time.time() < deadline:
    buf += os.read(fd, 1024)
time.sleep(0.2)
during = bool(termios.tcgetattr(fd)[3] & termios.ECHO)
os.write(fd, b"\x03")
_, status = os.waitpid(pid, 0)
after = bool(termios.tcgetattr(fd)[3] & termios.ECHO)
print(during, after, os.WIFSIGNALED(status))
"#;
    let out = Command::new("python3")
        .args(["-c", script, BIN, home.path().to_str().unwrap()])
        .output()
        .expect("python3 (installed by scripts/test)");
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        text.trim(),
        "False True True",
        "{text} {}",
        String::from_utf8_lossy(&out.stderr)
    );
}
