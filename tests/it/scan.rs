//! `keyctl scan` as a user and a CI job run it: planted secrets in a tree and in a real
//! git repository's history (added, then deleted) found with the right key, status and
//! place; look-alikes with a broken checksum never reported; nothing secret on stdout,
//! stderr or in JSON and SARIF; the pre-commit hook blocks a live secret and lets a clean
//! commit through.

use std::path::Path;

use crate::support::{Cmd, Home, json, need_programs, require};

fn git(dir: &Path, args: &[&str]) {
    Cmd::new("git")
        .arg("-C")
        .arg(dir)
        .args(["-c", "user.name=t", "-c", "user.email=t@example.com"])
        .args(args)
        .ok();
}

/// A home (file store) with keys: (name, secret) of a live one, a revoked one, and an
/// imported one whose secret has no checksum.
fn home_with_keys() -> (Home, [(String, String); 3]) {
    let home = Home::new();
    let mk = |name: &str| {
        let v = home
            .cmd()
            .env("KEYCTL_STORE", "file")
            .args(["--json", "create", "--name", name])
            .json();
        (name.to_string(), v["secret"].as_str().unwrap().to_string())
    };
    let live = mk("live");
    let gone = mk("gone");
    home.cmd().args(["revoke", "gone", "-y"]).ok();
    let imported = (
        "ui".to_string(),
        "uk-Zx9pQ7aB3cD4eF5gH6iJ7kL8mN0oP".to_string(),
    );
    home.cmd()
        .env("KEYCTL_STORE", "file")
        .args(["import", "--kind", "api", "--name", "ui", "--id", "UIKEY1"])
        .stdin(&imported.1)
        .ok();
    (home, [live, gone, imported])
}

fn no_secret_in(text: &str, secrets: &[(String, String)]) {
    for (_, s) in secrets {
        assert!(!text.contains(s.as_str()), "a secret was printed: {text}");
        assert!(
            !text.contains(&s[..s.len() - 4]),
            "most of a secret was printed"
        );
    }
}

#[test]
fn planted_secrets_are_found_with_their_key_status_and_place() {
    let (home, keys) = home_with_keys();
    let [live, gone, ui] = &keys;
    let tree = home.dir.path().join("tree");
    std::fs::create_dir_all(tree.join("deploy")).unwrap();
    std::fs::write(
        tree.join("configuration.yml"),
        format!(
            "soda_cloud:\n  host: cloud.soda.io\n  api_key_secret: \"{}\"\n",
            live.1
        ),
    )
    .unwrap();
    std::fs::write(
        tree.join("deploy/.env"),
        format!("X=1\nSODA_API_KEY_SECRET={}\n", ui.1),
    )
    .unwrap();
    std::fs::write(tree.join("old.txt"), format!("{}\n", gone.1)).unwrap();
    // A look-alike: the live secret with its last character changed.
    let mut fake = live.1.clone();
    let last = fake.pop().unwrap();
    fake.push(if last == 'A' { 'B' } else { 'A' });
    std::fs::write(tree.join("fake.md"), format!("not a key: {fake}\n")).unwrap();

    let (code, out, err) = home.cmd().args(["scan", "--hidden"]).arg(&tree).run();
    assert_eq!(code, 12, "{err}");
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 3, "{out}");
    let live_at = format!(
        "configuration.yml:3:20: kca_…{} key 'live'",
        &live.1[live.1.len() - 4..]
    );
    assert!(
        lines
            .iter()
            .any(|l| l.ends_with(" active") && l.contains(&live_at)),
        "{out}"
    );
    assert!(
        lines
            .iter()
            .any(|l| l.contains("deploy/.env:2:21: …") && l.contains("key 'ui' (UIKEY1) active")),
        "{out}"
    );
    assert!(
        lines
            .iter()
            .any(|l| l.contains("old.txt:1:1:") && l.ends_with(" revoked")),
        "{out}"
    );
    assert!(!out.contains("fake.md"), "{out}");
    assert!(
        err.starts_with("keyctl: error: 2 secrets that may still work, in 2 files"),
        "{err}"
    );
    no_secret_in(&out, &keys);
    no_secret_in(&err, &keys);

    // JSON lines and SARIF say the same, masked.
    let out = home
        .cmd()
        .args(["scan", "--hidden", "--format", "json"])
        .arg(&tree)
        .code(12)
        .stdout;
    no_secret_in(&out, &keys);
    let v: Vec<serde_json::Value> = out.lines().map(json).collect();
    assert_eq!(v.len(), 3);
    assert!(
        v.iter()
            .any(|f| f["key_name"] == "gone" && f["live"] == false && f["status"] == "revoked")
    );
    let sarif = home
        .cmd()
        .args(["scan", "--hidden", "--format", "sarif"])
        .arg(&tree)
        .code(12)
        .stdout;
    no_secret_in(&sarif, &keys);
    let s = json(&sarif);
    assert_eq!(s["version"], "2.1.0");
    assert_eq!(s["runs"][0]["results"].as_array().unwrap().len(), 3);

    // Only the revoked one left: exit 0 with a note, 12 with --strict.
    std::fs::remove_file(tree.join("configuration.yml")).unwrap();
    std::fs::remove_file(tree.join("deploy/.env")).unwrap();
    home.cmd()
        .arg("scan")
        .arg(&tree)
        .code(0)
        .stderr_has("1 revoked or expired secret");
    home.cmd().args(["scan", "--strict"]).arg(&tree).code(12);
    std::fs::remove_file(tree.join("old.txt")).unwrap();
    home.cmd()
        .arg("scan")
        .arg(&tree)
        .code(0)
        .stderr_has("no keyctl secret in");
}

#[test]
fn history_staged_changes_and_the_hook() {
    require!(need_programs("git", &["git"], "git"));
    let (home, keys) = home_with_keys();
    let [live, ..] = &keys;
    let repo = home.dir.path().join("repo");
    std::fs::create_dir_all(&repo).unwrap();
    git(&repo, &["init", "-q"]);
    std::fs::write(repo.join("configuration.yml"), format!("k: {}\n", live.1)).unwrap();
    git(&repo, &["add", "."]);
    git(&repo, &["commit", "-q", "-m", "leak"]);
    std::fs::write(repo.join("configuration.yml"), "k: none\n").unwrap();
    git(&repo, &["commit", "-q", "-am", "remove"]);
    // The work tree is clean; the history is not.
    home.cmd().arg("scan").arg(&repo).code(0);
    let out = home
        .cmd()
        .args(["scan", "--git"])
        .arg(&repo)
        .code(12)
        .stdout;
    assert!(
        out.contains(":configuration.yml:1:4: kca_…") && out.contains("key 'live'"),
        "{out}"
    );
    no_secret_in(&out, &keys);

    // The hook: installed once, idempotent, never over another hook.
    home.cmd().args(["scan", "--install-hook"]).arg(&repo).ok();
    home.cmd().args(["scan", "--install-hook"]).arg(&repo).ok();
    let path = std::env::var_os("PATH").unwrap_or_default();
    let bin_dir = Path::new(crate::support::BIN).parent().unwrap();
    let with_keyctl = std::env::join_paths(
        std::iter::once(bin_dir.to_path_buf()).chain(std::env::split_paths(&path)),
    )
    .unwrap();
    let commit = |msg: &str| {
        home.cmd_of("git")
            .arg("-C")
            .arg(&repo)
            .args([
                "-c",
                "user.name=t",
                "-c",
                "user.email=t@example.com",
                "commit",
                "-q",
                "-m",
                msg,
            ])
            .env("PATH", &with_keyctl)
            .run()
    };
    std::fs::write(repo.join("new.yml"), format!("again: {}\n", live.1)).unwrap();
    git(&repo, &["add", "new.yml"]);
    let (code, _, err) = commit("leak again");
    assert_ne!(code, 0, "the hook let a live secret through: {err}");
    assert!(err.contains("secret that may still work"), "{err}");
    no_secret_in(&err, &keys);
    git(&repo, &["rm", "-q", "--cached", "new.yml"]);
    std::fs::write(repo.join("clean.txt"), "nothing here\n").unwrap();
    git(&repo, &["add", "clean.txt"]);
    let (code, _, err) = commit("clean");
    assert_eq!(code, 0, "{err}");
    std::fs::write(repo.join(".git/hooks/pre-commit"), "#!/bin/sh\nexit 0\n").unwrap();
    home.cmd()
        .args(["scan", "--install-hook"])
        .arg(&repo)
        .code(4)
        .stderr_has("already holds another hook");
}
