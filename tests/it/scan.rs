//! `keyctl scan` as a user and a CI job run it: planted secrets in a tree and in a real
//! git repository's history (added, then deleted) found with the right key, status and
//! place; look-alikes with a broken checksum never reported; nothing secret on stdout,
//! stderr or in JSON and SARIF; the pre-commit hook blocks a live secret and lets a clean
//! commit through.

use std::path::Path;

use crate::support::{Cmd, Home, json, need, need_programs, require};

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
    // The file is gone from the work tree: the advice is about history, not the files.
    let err = home
        .cmd()
        .args(["scan", "--git"])
        .arg(&repo)
        .code(12)
        .stderr;
    assert!(
        err.contains("they are in git history") && err.contains("keyctl rotate KEY"),
        "{err}"
    );
    assert!(!err.contains("then take them out of the files"), "{err}");

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
    // Stopped before history: unstage and keep the secret out, nothing about revoking.
    assert!(
        err.contains("git restore --staged") && err.contains("--secret-ref env"),
        "{err}"
    );
    assert!(!err.contains("revoke them"), "{err}");
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

/// Runs keyctl under `timeout` so that a hang fails the test instead of stalling it.
fn bounded(home: &Home) -> crate::support::Cmd {
    home.cmd_of("timeout")
        .args(["-s", "KILL", "60"])
        .arg(crate::support::BIN)
}

fn rewrite_registry(home: &Home, f: impl FnOnce(&mut serde_json::Value)) {
    let mut reg = home.registry();
    f(&mut reg);
    std::fs::write(
        home.path().join("keys.json"),
        serde_json::to_vec_pretty(&reg).unwrap(),
    )
    .unwrap();
}

fn record_mut<'a>(reg: &'a mut serde_json::Value, name: &str) -> &'a mut serde_json::Value {
    let keys = if reg.get("keys").is_some() {
        &mut reg["keys"]
    } else {
        reg
    };
    keys.as_array_mut()
        .unwrap()
        .iter_mut()
        .find(|k| k["name"] == name)
        .unwrap()
}

#[test]
fn hidden_files_are_scanned_and_skipped_files_are_counted_and_listed_escaped() {
    let (home, keys) = home_with_keys();
    let [live, ..] = &keys;
    let tree = home.dir.path().join("tree");
    std::fs::create_dir_all(tree.join(".github/workflows")).unwrap();
    std::fs::write(tree.join(".env"), format!("K={}\n", live.1)).unwrap();
    std::fs::write(tree.join(".env.prod"), format!("K={}\n", live.1)).unwrap();
    std::fs::write(
        tree.join(".github/workflows/ci.yml"),
        format!("env:\n  K: {}\n", live.1),
    )
    .unwrap();
    std::fs::write(tree.join(".gitignore"), "secret.log\nbuild/\n").unwrap();
    std::fs::write(tree.join("secret.log"), format!("{}\n", live.1)).unwrap();
    std::fs::create_dir_all(tree.join("build")).unwrap();
    std::fs::write(tree.join("build/out.txt"), "x\n").unwrap();
    let mut bin = b"\x00\x01".to_vec();
    bin.extend_from_slice(live.1.as_bytes());
    std::fs::write(tree.join("blob.bin"), bin).unwrap();
    std::fs::write(tree.join("big.txt"), "y".repeat(2 * 1024 * 1024)).unwrap();
    std::fs::write(tree.join("utf32.txt"), b"\xff\xfe\x00\x00k\x00\x00\x00").unwrap();
    std::fs::write(tree.join("evil\x1b[2Jname.bin"), b"\x00").unwrap();

    let (code, out, err) = home
        .cmd()
        .args(["-v", "scan", "--max-size", "1"])
        .arg(&tree)
        .run();
    assert_eq!(code, 12, "{err}");
    for f in [".env:1:3", ".env.prod:1:3", ".github/workflows/ci.yml:2:6"] {
        assert!(out.contains(f), "{f} not found: {out}");
    }
    assert_eq!(out.lines().count(), 3, "{out}");
    assert!(
        err.contains("skipped 6 (2 binary, 1 encoding, 2 ignored, 1 too large), -v lists them"),
        "{err}"
    );
    for listed in [
        "not scanned (ignored): ",
        "secret.log",
        "build",
        "not scanned (binary): ",
        "blob.bin",
        "not scanned (too large): ",
        "big.txt",
        "not scanned (encoding): ",
        "utf32.txt",
        "evil\\u{1b}[2Jname.bin",
    ] {
        assert!(err.contains(listed), "{listed} not listed: {err}");
    }
    assert!(
        !err.contains('\x1b'),
        "a raw escape reached the terminal: {err:?}"
    );
    // --no-hidden: as ripgrep walks.
    home.cmd()
        .args(["scan", "--no-hidden"])
        .arg(&tree)
        .code(0)
        .stderr_has("no keyctl secret in");
}

#[test]
fn encoded_secrets_and_utf16_files_are_found() {
    use base64::Engine as _;
    let (home, keys) = home_with_keys();
    let [live, _, ui] = &keys;
    // An imported secret with the characters encoders change.
    let odd = "Zx9/pQ7+aB3/cD4+eF5/gH6+iJ7kL8mN".to_string();
    home.cmd()
        .env("KEYCTL_STORE", "file")
        .args(["import", "--kind", "api", "--name", "odd", "--id", "ODD1"])
        .stdin(&odd)
        .ok();
    let tree = home.dir.path().join("tree");
    std::fs::create_dir_all(&tree).unwrap();
    let b64 = base64::engine::general_purpose::STANDARD;
    std::fs::write(
        tree.join("secret.yaml"),
        format!(
            "apiVersion: v1\nkind: Secret\ndata:\n  API_KEY_SECRET: {}\n  UI: {}\n",
            b64.encode(&live.1),
            b64.encode(&ui.1)
        ),
    )
    .unwrap();
    let url: String = odd
        .bytes()
        .map(|b| match b {
            b'/' => "%2F".to_string(),
            b'+' => "%2B".to_string(),
            _ => (b as char).to_string(),
        })
        .collect();
    std::fs::write(
        tree.join("dsn.txt"),
        format!("https://h/?secret={url}&x=1\n"),
    )
    .unwrap();
    std::fs::write(
        tree.join("conf.json"),
        format!("{{\"secret\":\"{}\"}}\n", odd.replace('/', "\\/")),
    )
    .unwrap();
    let line = format!("SODA_API_KEY_SECRET={}\r\n", live.1);
    let mut le = vec![0xFF, 0xFE];
    let mut be = vec![0xFE, 0xFF];
    for u in line.encode_utf16() {
        le.extend_from_slice(&u.to_le_bytes());
        be.extend_from_slice(&u.to_be_bytes());
    }
    std::fs::write(tree.join("ps5-le.env"), le).unwrap();
    std::fs::write(tree.join("be.env"), be).unwrap();

    let (code, out, err) = home.cmd().arg("scan").arg(&tree).run();
    assert_eq!(code, 12, "{err}");
    let tail = &live.1[live.1.len() - 4..];
    for want in [
        format!("secret.yaml:4:19: kca_…{tail} (base64-encoded) key 'live'"),
        "secret.yaml:5:7: …".to_string(),
        "dsn.txt:1:12: …L8mN (url-encoded) key 'odd'".to_string(),
        "conf.json:1:12: …L8mN (json-encoded) key 'odd'".to_string(),
        format!("ps5-le.env:1:21: kca_…{tail} key 'live'"),
        format!("be.env:1:21: kca_…{tail} key 'live'"),
    ] {
        assert!(out.contains(&want), "{want} not found in:\n{out}");
    }
    assert!(out.contains("key 'ui'"), "{out}");
    no_secret_in(&out, &keys);
    no_secret_in(&err, &keys);
}

#[test]
fn history_has_merges_every_ref_and_every_path() {
    require!(need_programs("git", &["git"], "git"));
    let (home, keys) = home_with_keys();
    let [live, _, ui] = &keys;
    let repo = home.dir.path().join("repo");
    std::fs::create_dir_all(&repo).unwrap();
    git(&repo, &["init", "-q", "-b", "main"]);
    std::fs::write(repo.join("a.txt"), "a\n").unwrap();
    git(&repo, &["add", "."]);
    git(&repo, &["commit", "-q", "-m", "root"]);
    // The same blob added at two paths.
    let both = format!("k: {}\n", ui.1);
    std::fs::write(repo.join("one.yml"), &both).unwrap();
    std::fs::create_dir_all(repo.join("deploy")).unwrap();
    std::fs::write(repo.join("deploy/two.yml"), &both).unwrap();
    git(&repo, &["add", "."]);
    git(&repo, &["commit", "-q", "-m", "two paths"]);
    // A secret added only by a merge (an "evil merge").
    git(&repo, &["checkout", "-q", "-b", "side"]);
    std::fs::write(repo.join("side.txt"), "side\n").unwrap();
    git(&repo, &["add", "."]);
    git(&repo, &["commit", "-q", "-m", "side"]);
    git(&repo, &["checkout", "-q", "main"]);
    std::fs::write(repo.join("main.txt"), "main\n").unwrap();
    git(&repo, &["add", "."]);
    git(&repo, &["commit", "-q", "-m", "main"]);
    git(&repo, &["merge", "-q", "--no-ff", "--no-commit", "side"]);
    std::fs::write(repo.join("merged.env"), format!("K={}\n", live.1)).unwrap();
    git(&repo, &["add", "merged.env"]);
    git(&repo, &["commit", "-q", "-m", "merge"]);
    git(&repo, &["rm", "-q", "merged.env"]);
    git(&repo, &["commit", "-q", "-m", "gone"]);
    // Only on another branch, a tag, and the stash.
    git(&repo, &["checkout", "-q", "-b", "feature"]);
    std::fs::write(repo.join("feature.env"), format!("K={}\n", live.1)).unwrap();
    git(&repo, &["add", "."]);
    git(&repo, &["commit", "-q", "-m", "feature"]);
    git(&repo, &["tag", "-a", "-m", "t", "v1"]);
    git(&repo, &["checkout", "-q", "main"]);
    git(&repo, &["branch", "-q", "-D", "feature"]);
    std::fs::write(repo.join("a.txt"), format!("a {}\n", live.1)).unwrap();
    git(&repo, &["stash", "-q"]);

    let out = home
        .cmd()
        .args(["scan", "--git"])
        .arg(&repo)
        .code(12)
        .stdout;
    assert!(
        out.contains(":merged.env:1:3: kca_…"),
        "merge blob missed:\n{out}"
    );
    assert!(out.contains(":one.yml:1:4: …"), "{out}");
    assert!(out.contains(":deploy/two.yml:1:4: …"), "{out}");
    assert!(!out.contains("feature.env"), "{out}");
    let out = home
        .cmd()
        .args(["scan", "--git", "--all"])
        .arg(&repo)
        .code(12)
        .stdout;
    assert!(
        out.contains(":feature.env:1:3: kca_…"),
        "tag missed:\n{out}"
    );
    assert!(out.contains(":a.txt:1:3: kca_…"), "stash missed:\n{out}");
    no_secret_in(&out, &keys);
}

#[test]
fn a_hostile_repository_runs_none_of_its_commands() {
    require!(need_programs("git", &["git"], "git"));
    let (home, keys) = home_with_keys();
    let [live, ..] = &keys;
    let root = home.dir.path();
    let marker = root.join("ran");
    let evil = root.join("evil.sh");
    std::fs::write(
        &evil,
        format!(
            "#!/bin/sh\necho \"$0 $*\" >> '{}'\nexit 1\n",
            marker.display()
        ),
    )
    .unwrap();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&evil, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    // core.fsmonitor and hooks, with --staged.
    let repo = root.join("repo");
    std::fs::create_dir_all(&repo).unwrap();
    git(&repo, &["init", "-q"]);
    std::fs::write(repo.join("f.txt"), "x\n").unwrap();
    git(&repo, &["add", "."]);
    git(&repo, &["commit", "-q", "-m", "one"]);
    let e = evil.to_str().unwrap();
    git(&repo, &["config", "core.fsmonitor", e]);
    git(&repo, &["config", "core.hooksPath", root.to_str().unwrap()]);
    std::fs::write(repo.join("g.env"), format!("K={}\n", live.1)).unwrap();
    Cmd::new("git")
        .arg("-C")
        .arg(&repo)
        .args(["-c", "core.fsmonitor=false", "add", "g.env"])
        .ok();
    bounded(&home)
        .args(["scan", "--staged"])
        .arg(&repo)
        .code(12);
    bounded(&home).args(["scan", "--git"]).arg(&repo).code(12);
    assert!(
        !marker.exists(),
        "fsmonitor ran: {:?}",
        std::fs::read_to_string(&marker)
    );

    // A partial clone: a missing blob must not be fetched through remote.origin.uploadpack.
    let origin = root.join("origin");
    std::fs::create_dir_all(&origin).unwrap();
    git(&origin, &["init", "-q"]);
    git(&origin, &["config", "uploadpack.allowFilter", "true"]);
    std::fs::write(origin.join("leak.env"), format!("K={}\n", live.1)).unwrap();
    git(&origin, &["add", "."]);
    git(&origin, &["commit", "-q", "-m", "leak"]);
    let clone = root.join("clone");
    Cmd::new("git")
        .args(["clone", "-q", "--no-checkout", "--filter=blob:none"])
        .arg(format!("file://{}", origin.display()))
        .arg(&clone)
        .ok();
    git(&clone, &["config", "remote.origin.uploadpack", e]);
    let (code, _, err) = bounded(&home)
        .args(["-v", "scan", "--git"])
        .arg(&clone)
        .run();
    assert_eq!(code, 0, "{err}");
    assert!(
        err.contains("not in the repository (partial clone)"),
        "{err}"
    );
    assert!(
        !marker.exists(),
        "uploadpack ran: {:?}",
        std::fs::read_to_string(&marker)
    );
}

#[cfg(target_os = "linux")]
#[test]
fn a_fifo_or_proc_kmsg_never_hangs_a_scan() {
    let (home, _) = home_with_keys();
    let tree = home.dir.path().join("tree");
    std::fs::create_dir_all(&tree).unwrap();
    std::fs::write(tree.join("a.txt"), "x\n").unwrap();
    let fifo = tree.join("pipe.yml");
    Cmd::new("mkfifo").arg(&fifo).ok();
    let (code, _, err) = bounded(&home).args(["-v", "scan"]).arg(&tree).run();
    assert_eq!(code, 0, "{err}");
    let (code, _, err) = bounded(&home).args(["-v", "scan"]).arg(&fifo).run();
    assert_eq!(code, 0, "{err}");
    assert!(err.contains("not scanned (not a regular file): "), "{err}");
    // A file swapped for a FIFO between the walk and the open: no scan hangs.
    let swap = tree.join("swap.yml");
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let swapper = {
        let (swap, stop) = (swap.clone(), stop.clone());
        std::thread::spawn(move || {
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                let _ = std::fs::remove_file(&swap);
                let _ = std::fs::write(&swap, "x\n");
                std::thread::sleep(std::time::Duration::from_micros(200));
                let _ = std::fs::remove_file(&swap);
                let _ = std::process::Command::new("mkfifo").arg(&swap).status();
            }
        })
    };
    for _ in 0..40 {
        let (code, _, err) = home
            .cmd_of("timeout")
            .args(["-s", "KILL", "10"])
            .arg(crate::support::BIN)
            .arg("scan")
            .arg(&tree)
            .run();
        if code != 0 {
            stop.store(true, std::sync::atomic::Ordering::Relaxed);
            panic!("a scan hung or failed ({code}): {err}");
        }
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    swapper.join().unwrap();
    if Path::new("/proc/kmsg").exists() {
        let (code, _, err) = bounded(&home).args(["scan", "/proc/kmsg"]).run();
        assert_eq!(code, 0, "{err}");
    }
}

#[test]
fn the_hook_is_installed_only_inside_the_repository_and_runs_this_keyctl() {
    require!(need_programs("git", &["git"], "git"));
    let (home, keys) = home_with_keys();
    let [live, ..] = &keys;
    let root = home.dir.path();
    let repo = root.join("repo");
    std::fs::create_dir_all(&repo).unwrap();
    git(&repo, &["init", "-q"]);
    // A dangling symlink where the hook goes: refused, its target never created.
    let target = root.join("elsewhere/pre-commit");
    #[cfg(unix)]
    {
        std::os::unix::fs::symlink(&target, repo.join(".git/hooks/pre-commit")).unwrap();
        home.cmd()
            .args(["scan", "--install-hook"])
            .arg(&repo)
            .code(4)
            .stderr_has("is a symbolic link");
        assert!(!target.exists() && !root.join("elsewhere").exists());
        std::fs::remove_file(repo.join(".git/hooks/pre-commit")).unwrap();
    }
    // A relative core.hooksPath that leads out of the repository: refused, nothing made.
    git(&repo, &["config", "core.hooksPath", "../../outside-hooks"]);
    home.cmd()
        .args(["scan", "--install-hook"])
        .arg(&repo)
        .code(4)
        .stderr_has("is outside the repository");
    assert!(
        !root.join("outside-hooks").exists()
            && !root.parent().unwrap().join("outside-hooks").exists()
    );
    git(&repo, &["config", "--unset", "core.hooksPath"]);

    home.cmd().args(["scan", "--install-hook"]).arg(&repo).ok();
    let hook = std::fs::read_to_string(repo.join(".git/hooks/pre-commit")).unwrap();
    // The running binary's own path (/proc/self/exe: symlinks resolved).
    let bin = std::fs::canonicalize(crate::support::BIN).unwrap();
    assert!(
        hook.contains(&format!("exec '{}' scan --staged", bin.display())),
        "{hook}"
    );
    // Debian's keyutils `keyctl` first on PATH, and one in the repository on a relative
    // PATH entry: neither runs.
    let fake = root.join("fakebin");
    std::fs::create_dir_all(&fake).unwrap();
    std::fs::write(
        fake.join("keyctl"),
        "#!/bin/sh\necho 'Unknown command' >&2\nexit 1\n",
    )
    .unwrap();
    std::fs::create_dir_all(repo.join("bin")).unwrap();
    std::fs::write(repo.join("bin/keyctl"), "#!/bin/sh\nexit 0\n").unwrap();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        for p in [fake.join("keyctl"), repo.join("bin/keyctl")] {
            std::fs::set_permissions(p, std::fs::Permissions::from_mode(0o755)).unwrap();
        }
    }
    let path = std::env::var_os("PATH").unwrap_or_default();
    let hostile = std::env::join_paths(
        [fake.clone(), "bin".into()]
            .into_iter()
            .chain(std::env::split_paths(&path)),
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
            .env("PATH", &hostile)
            .run()
    };
    std::fs::write(repo.join("clean.txt"), "nothing\n").unwrap();
    git(&repo, &["add", "clean.txt"]);
    let (code, _, err) = commit("clean");
    assert_eq!(code, 0, "{err}");
    std::fs::write(repo.join("leak.env"), format!("K={}\n", live.1)).unwrap();
    git(&repo, &["add", "leak.env"]);
    let (code, _, err) = commit("leak");
    assert_ne!(code, 0, "{err}");
    assert!(err.contains("secret that may still work"), "{err}");
}

#[test]
fn names_from_the_registry_are_escaped_and_sarif_is_valid_and_stable() {
    let (home, keys) = home_with_keys();
    let [live, ..] = &keys;
    rewrite_registry(&home, |reg| {
        record_mut(reg, "live")["name"] = "live\u{1b}]0;owned\u{7}\u{1b}[31m".into();
    });
    let tree = home.dir.path().join("tree");
    std::fs::create_dir_all(&tree).unwrap();
    std::fs::write(tree.join("a b#?%.yml"), format!("k: {}\n", live.1)).unwrap();
    let (code, out, err) = home.cmd().arg("scan").arg(&tree).run();
    assert_eq!(code, 12, "{err}");
    assert!(!out.contains('\u{1b}') && !out.contains('\u{7}'), "{out:?}");
    assert!(out.contains("live\\u{1b}]0;owned"), "{out}");

    let sarif = || {
        home.cmd()
            .args(["scan", "--format", "sarif"])
            .arg(&tree)
            .code(12)
            .stdout
    };
    let (one, two) = (sarif(), sarif());
    let (a, b) = (json(&one), json(&two));
    let fp = |v: &serde_json::Value| v["runs"][0]["results"][0]["partialFingerprints"].clone();
    assert_eq!(fp(&a), fp(&b));
    assert!(fp(&a).as_object().is_some_and(|o| !o.is_empty()));
    let uri =
        &a["runs"][0]["results"][0]["locations"][0]["physicalLocation"]["artifactLocation"]["uri"];
    assert!(
        uri.as_str().unwrap().ends_with("/a%20b%23%3F%25.yml"),
        "{uri}"
    );
    no_secret_in(&one, &keys);

    // Validated against the published SARIF 2.1.0 schema by Python's jsonschema.
    let py = require!(need("Python jsonschema", "KEYCTL_TEST_JSONSCHEMA_PYTHON"));
    let schema = require!(need("the SARIF 2.1.0 schema", "KEYCTL_TEST_SARIF_SCHEMA"));
    let log = home.dir.path().join("keyctl.sarif");
    std::fs::write(&log, &one).unwrap();
    Cmd::new(py)
        .args([
            "-c",
            "import json,sys,jsonschema\n\
             s=json.load(open(sys.argv[1])); d=json.load(open(sys.argv[2]))\n\
             jsonschema.validators.validator_for(s)(s).validate(d)\n\
             bad=dict(d); bad['runs']=[{'results':[]}]\n\
             assert not jsonschema.validators.validator_for(s)(s).is_valid(bad)\n",
        ])
        .arg(&schema)
        .arg(&log)
        .ok();
}

#[test]
fn the_pre_commit_framework_blocks_a_staged_secret() {
    require!(need_programs("git", &["git"], "git"));
    let pre_commit = require!(need("pre-commit (PyPI)", "KEYCTL_TEST_PRE_COMMIT"));
    let (home, keys) = home_with_keys();
    let [live, ..] = &keys;
    let root = home.dir.path();
    // This repository's .pre-commit-hooks.yaml, as the framework fetches it: a git repo.
    let hooks_repo = root.join("hooks-repo");
    std::fs::create_dir_all(&hooks_repo).unwrap();
    git(&hooks_repo, &["init", "-q"]);
    std::fs::copy(
        Path::new(env!("CARGO_MANIFEST_DIR")).join(".pre-commit-hooks.yaml"),
        hooks_repo.join(".pre-commit-hooks.yaml"),
    )
    .unwrap();
    git(&hooks_repo, &["add", "."]);
    git(&hooks_repo, &["commit", "-q", "-m", "hooks"]);
    let rev = Cmd::new("git")
        .arg("-C")
        .arg(&hooks_repo)
        .args(["rev-parse", "HEAD"])
        .ok();
    let repo = root.join("repo");
    std::fs::create_dir_all(&repo).unwrap();
    git(&repo, &["init", "-q"]);
    std::fs::write(
        repo.join(".pre-commit-config.yaml"),
        format!(
            "repos:\n  - repo: {}\n    rev: {}\n    hooks:\n      - id: keyctl-scan\n",
            hooks_repo.display(),
            rev.trim()
        ),
    )
    .unwrap();
    let bin_dir = Path::new(crate::support::BIN).parent().unwrap();
    let path = std::env::var_os("PATH").unwrap_or_default();
    let with_keyctl = std::env::join_paths(
        std::iter::once(bin_dir.to_path_buf()).chain(std::env::split_paths(&path)),
    )
    .unwrap();
    let run = |c: crate::support::Cmd| {
        c.env("PATH", &with_keyctl)
            .env("PRE_COMMIT_HOME", root.join("pre-commit-cache"))
            .run()
    };
    let mut install = home.cmd_of(&pre_commit).arg("install").command();
    install.current_dir(&repo);
    let (code, _, err) = run(crate::support::Cmd::from(install));
    assert_eq!(code, 0, "{err}");
    let commit = |msg: &str| {
        run(home.cmd_of("git").arg("-C").arg(&repo).args([
            "-c",
            "user.name=t",
            "-c",
            "user.email=t@example.com",
            "commit",
            "-q",
            "-m",
            msg,
        ]))
    };
    git(&repo, &["add", ".pre-commit-config.yaml"]);
    let (code, out, err) = commit("config");
    assert_eq!(code, 0, "{out}{err}");
    std::fs::write(repo.join("leak.env"), format!("K={}\n", live.1)).unwrap();
    git(&repo, &["add", "leak.env"]);
    let (code, out, err) = commit("leak");
    assert_ne!(
        code, 0,
        "the framework let a live secret through: {out}{err}"
    );
    let all = format!("{out}{err}");
    assert!(
        all.contains("keyctl scan") && all.contains("Failed"),
        "{all}"
    );
    assert!(all.contains("secret that may still work"), "{all}");
    no_secret_in(&out, &keys);
    no_secret_in(&err, &keys);
}

#[test]
fn scan_revoke_leaves_a_soda_cloud_ui_key_to_soda_cloud() {
    let (home, keys) = home_with_keys();
    let [_, _, ui] = &keys;
    rewrite_registry(&home, |reg| {
        record_mut(reg, "ui")["service"] =
            serde_json::json!({"type": "soda-cloud", "host": "cloud.us.soda.io"});
    });
    let tree = home.dir.path().join("tree");
    std::fs::create_dir_all(&tree).unwrap();
    std::fs::write(
        tree.join("c.env"),
        format!("SODA_API_KEY_SECRET={}\n", ui.1),
    )
    .unwrap();
    let (code, out, err) = home.cmd().args(["scan", "--revoke", "-y"]).arg(&tree).run();
    assert_eq!(code, 12, "{out}{err}");
    assert!(
        err.contains("key 'ui' (UIKEY1, Soda Cloud cloud.us.soda.io) not revoked and still working in Soda Cloud")
            && err.contains("create a new API key, `keyctl import` it, then delete the old one there"),
        "{err}"
    );
    assert!(!err.contains("no longer work"), "{err}");
    let reg = home.registry();
    let keys_json = reg.get("keys").unwrap_or(&reg);
    let rec = keys_json
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["name"] == "ui")
        .unwrap();
    assert!(rec.get("revoked_at").is_none(), "{rec}");
}
