//! End-to-end tests of the local lifecycle (create, import, list, show, secret, delete,
//! check, doctor) on the built binary, against a real Secret Service and real files.

use crate::support::*;

fn create_json(c: Cmd, extra: &[&str]) -> serde_json::Value {
    c.args(["--json", "create"]).args(extra).json()
}

#[test]
fn keyring_lifecycle_create_list_show_secret_delete() {
    let ss = require!(SecretService::start());
    let home = Home::new();
    let k = create_json(
        ss.cmd(&home),
        &[
            "--kind",
            "runner",
            "--name",
            "ci",
            "--expires",
            "90d",
            "--scope",
            "read",
            "--scope",
            "write",
        ],
    );
    assert_eq!(k["store"], "keyring");
    assert_eq!(k["kind"], "runner");
    assert_eq!(k["name"], "ci");
    assert_eq!(k["scopes"], serde_json::json!(["read", "write"]));
    assert!(k["expires_at"].as_str().unwrap().ends_with('Z'));
    let id = k["id"].as_str().unwrap();
    let secret = k["secret"].as_str().unwrap();
    assert!(secret.starts_with("kcr_"));

    // Another tool finds it where the README says.
    assert_eq!(ss.secret_tool_lookup(id).as_deref(), Some(secret));

    // `secret` by name and by id.
    for key in ["ci", id] {
        let (code, out, _) = ss.cmd(&home).args(["secret", key]).run();
        assert_eq!(code, 0);
        assert_eq!(out, format!("{secret}\n"));
    }

    // list (piped: TSV) and list --json
    let (code, out, _) = ss.cmd(&home).arg("list").run();
    assert_eq!(code, 0);
    let cols: Vec<&str> = out.lines().next().unwrap().split('\t').collect();
    assert_eq!(cols[0], "ci");
    assert_eq!(cols[1], id);
    assert_eq!(cols[2], "runner");
    assert_eq!(cols[5], "active");
    assert_eq!(cols[6], "keyring");

    let (code, out, _) = ss.cmd(&home).args(["show", "ci", "--json"]).run();
    assert_eq!(code, 0);
    let v = json(&out);
    assert_eq!(v["id"], id);
    assert!(v.get("secret").is_none());
    assert!(!out.contains(secret));

    // delete needs --yes without a terminal, and leaves everything in place otherwise.
    let (code, _, err) = ss.cmd(&home).args(["delete", "ci"]).stdin("y\n").run();
    assert_eq!(code, 10, "{err}");
    assert!(ss.secret_tool_lookup(id).is_some());

    let (code, _, err) = ss.cmd(&home).args(["delete", "ci", "--yes"]).run();
    assert_eq!(code, 0, "{err}");
    assert_eq!(ss.secret_tool_lookup(id), None);
    assert_eq!(home.registry()["keys"], serde_json::json!([]));

    let (code, _, err) = ss.cmd(&home).args(["secret", "ci"]).run();
    assert_eq!(code, 3, "{err}");
    assert_eq!(err.lines().count(), 1);
}

#[test]
fn import_reads_the_secret_from_stdin_and_other_tools_see_it() {
    let ss = require!(SecretService::start());
    let home = Home::new();
    let (code, _, err) = ss
        .cmd(&home)
        .args([
            "import",
            "--kind",
            "api",
            "--name",
            "soika",
            "--id",
            "7d3c-11aa",
        ])
        .stdin("sk_soika_Server.Minted-Secret/+=\n")
        .run();
    assert_eq!(code, 0, "{err}");
    assert_eq!(
        ss.secret_tool_lookup("7d3c-11aa").as_deref(),
        Some("sk_soika_Server.Minted-Secret/+=")
    );
    assert_eq!(
        ss.cmd(&home).args(["secret", "soika"]).run().1,
        "sk_soika_Server.Minted-Secret/+=\n"
    );

    // A secret another tool wrote is read back by keyctl (the item is the same).
    ss.secret_tool_store("7d3c-11aa", "rotated-elsewhere");
    assert_eq!(
        ss.cmd(&home).args(["secret", "7d3c-11aa"]).run().1,
        "rotated-elsewhere\n"
    );

    // Empty stdin is refused and nothing is registered.
    let (code, _, err) = ss
        .cmd(&home)
        .args(["import", "--name", "empty", "--id", "x1"])
        .run();
    assert_eq!(code, 2, "{err}");
    assert_eq!(home.registry()["keys"].as_array().unwrap().len(), 1);
}

#[test]
fn python_keyring_reads_what_keyctl_wrote() {
    let py = require!(need("Python's keyring", "KEYCTL_TEST_PYKEYRING"));
    let ss = require!(SecretService::start());
    let home = Home::new();
    let k = create_json(ss.cmd(&home), &["--name", "py"]);
    let id = k["id"].as_str().unwrap();
    let (code, out, err) = Cmd::new(py)
        .args(["get", "keyctl", id])
        .env("DBUS_SESSION_BUS_ADDRESS", &ss.address)
        .env(
            "PYTHON_KEYRING_BACKEND",
            "keyring.backends.SecretService.Keyring",
        )
        .run();
    assert_eq!(code, 0, "python keyring: {err}");
    assert_eq!(out.trim_end(), k["secret"].as_str().unwrap());
}

#[test]
fn headless_auto_falls_back_to_the_file_store_and_says_where() {
    let home = Home::new();
    let (code, out, err) = home.cmd().args(["create", "--name", "srv"]).run();
    assert_eq!(code, 0, "{err}");
    let store = home.path().join("secrets.json");
    assert!(err.contains(&store.display().to_string()), "{err}");
    assert_eq!(err.matches("file store").count(), 2, "{err}");
    let secret = out
        .lines()
        .find_map(|l| l.strip_prefix("  api_key_secret: \""))
        .and_then(|l| l.strip_suffix('"'))
        .unwrap()
        .to_string();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = |p: &std::path::Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&store), 0o600);
        assert_eq!(mode(&home.path()), 0o700);
        assert_eq!(mode(&home.path().join("keys.json")), 0o600);
    }
    assert_eq!(
        home.cmd().args(["secret", "srv"]).run().1,
        format!("{secret}\n")
    );

    // --store keyring refuses to fall back, with its own code and nothing written.
    let (code, _, err) = home
        .cmd()
        .args(["--store", "keyring", "create", "--name", "strict"])
        .run();
    assert_eq!(code, 5, "{err}");
    assert!(err.contains("DBUS_SESSION_BUS_ADDRESS"), "{err}");
    assert_eq!(err.lines().count(), 1);
    assert_eq!(home.registry()["keys"].as_array().unwrap().len(), 1);

    // doctor tells which store and where.
    let (code, out, _) = home.cmd().args(["doctor", "--json"]).run();
    assert_eq!(code, 0);
    let d = json(&out);
    assert_eq!(d["keyring_available"], false);
    assert_eq!(d["new_secrets_go_to"], "file");
    assert_eq!(d["keys_in_file"], 1);

    assert_eq!(home.cmd().args(["--store", "keyring", "doctor"]).run().0, 5);
}

#[test]
fn bus_without_an_unlocked_keyring_falls_back_quickly() {
    let ss = require!(SecretService::start_bus_only());
    let home = Home::new();
    let started = std::time::Instant::now();
    ss.cmd(&home)
        .args(["create", "--name", "b"])
        .code(0)
        .stderr_has("secrets.json");
    assert!(started.elapsed() < std::time::Duration::from_secs(10));
    ss.cmd(&home)
        .args(["--store", "keyring", "create", "--name", "k"])
        .code(5)
        .stderr_has("OS keyring");
    assert_eq!(home.registry()["keys"].as_array().unwrap().len(), 1);
}

#[test]
fn store_file_on_purpose_says_nothing_extra_and_delete_removes_it() {
    let home = Home::new();
    let (code, out, err) = home
        .cmd()
        .env("KEYCTL_STORE", "file")
        .args(["--json", "create", "--name", "f"])
        .run();
    assert_eq!(code, 0, "{err}");
    assert!(!err.contains("no OS keyring"), "{err}");
    let k = json(&out);
    assert_eq!(k["store"], "file");
    let secret = k["secret"].as_str().unwrap();
    let store = std::fs::read_to_string(home.path().join("secrets.json")).unwrap();
    assert!(store.contains(secret));
    assert_eq!(home.cmd().args(["delete", "f", "-y"]).run().0, 0);
    let store = std::fs::read_to_string(home.path().join("secrets.json")).unwrap();
    assert!(!store.contains(secret));
}

#[test]
fn check_validates_offline() {
    let home = Home::new();
    let k = create_json(home.cmd(), &["--name", "c"]);
    let secret = k["secret"].as_str().unwrap().to_string();

    let (code, out, _) = home.cmd().arg("check").stdin(format!("{secret}\n")).run();
    assert_eq!(code, 0);
    assert!(out.contains("api"), "{out}");

    let mut broken = secret.clone();
    broken.pop();
    broken.push(if secret.ends_with('A') { 'B' } else { 'A' });
    for bad in [broken.as_str(), &secret[..secret.len() - 3], "hello", ""] {
        let (code, out, err) = home.cmd().args(["check", "--json"]).stdin(bad).run();
        assert_ne!(code, 0);
        if !bad.is_empty() {
            assert_eq!(code, 9, "{err}");
            assert_eq!(json(&out)["valid"], false);
        }
        assert!(!err.contains(bad) || bad.is_empty(), "secret echoed: {err}");
    }

    let k = json(
        &home
            .cmd()
            .args(["--json", "create", "--format", "aksk", "--name", "ak"])
            .run()
            .1,
    );
    assert_eq!(k["id"].as_str().unwrap().len(), 16);
    assert_eq!(k["secret"].as_str().unwrap().len(), 32);
    let (code, out, _) = home
        .cmd()
        .args(["check", "--json"])
        .stdin(k["secret"].as_str().unwrap())
        .run();
    assert_eq!(code, 0);
    assert_eq!(json(&out)["format"], "aksk");

    let k = json(
        &home
            .cmd()
            .args([
                "--json",
                "create",
                "--prefix",
                "sk_soika_",
                "--name",
                "soika",
            ])
            .run()
            .1,
    );
    assert!(k["secret"].as_str().unwrap().starts_with("sk_soika_"));
}
