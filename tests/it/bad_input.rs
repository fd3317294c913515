//! Every bad input: a one-line error, its documented exit code, and nothing lost or
//! half-written (registry bytes and store contents unchanged).

use crate::support::*;

/// A home with one key in the file store; returns (home, registry bytes, store bytes).
fn seeded() -> (Home, Vec<u8>, Vec<u8>) {
    let home = Home::new();
    let (code, _, err) = home
        .cmd()
        .args(["--store", "file", "create", "--name", "keep"])
        .run();
    assert_eq!(code, 0, "{err}");
    let reg = std::fs::read(home.path().join("keys.json")).unwrap();
    let store = std::fs::read(home.path().join("secrets.json")).unwrap();
    (home, reg, store)
}

fn assert_untouched(home: &Home, reg: &[u8], store: &[u8]) {
    assert_eq!(std::fs::read(home.path().join("keys.json")).unwrap(), reg);
    assert_eq!(
        std::fs::read(home.path().join("secrets.json")).unwrap(),
        store
    );
}

fn expect(home: &Home, args: &[&str], stdin: &str, code: i32, needle: &str) -> String {
    let (got, out, err) = home
        .cmd()
        .args(["--store", "file"])
        .args(args)
        .stdin(stdin)
        .run();
    assert_eq!(got, code, "{args:?}: stderr {err}");
    assert!(out.is_empty(), "{args:?} printed on stdout: {out}");
    assert_eq!(err.lines().count(), 1, "{args:?}: not one line: {err}");
    assert!(err.starts_with("keyctl: error: "), "{err}");
    assert!(err.contains(needle), "{args:?}: {err:?} lacks {needle:?}");
    assert!(
        !err.contains('\u{1b}'),
        "escape reached the terminal: {err:?}"
    );
    err
}

#[test]
fn create_refuses_bad_values() {
    let (home, reg, store) = seeded();
    let long = "d".repeat(100_000);
    let cases: Vec<(Vec<&str>, i32, &str)> = vec![
        (
            vec!["create", "--kind", "robot"],
            2,
            "invalid value 'robot'",
        ),
        (vec!["create", "--name", ""], 2, "empty"),
        (vec!["create", "--name", "keep"], 4, "already exists"),
        (vec!["create", "--name", "two\nlines"], 2, "invalid name"),
        (vec!["create", "--name", "tab\there"], 2, "invalid name"),
        (
            vec!["create", "--name", "red\u{1b}[31mname"],
            2,
            "invalid name",
        ),
        (
            vec!["create", "--name", "x", "--description", &long],
            2,
            "description too long",
        ),
        (
            vec![
                "create",
                "--name",
                "x",
                "--description",
                "a\u{1b}]0;pwn\u{7}",
            ],
            2,
            "control characters",
        ),
        (
            vec!["create", "--name", "x", "--expires", "2001-01-01"],
            2,
            "not in the future",
        ),
        (
            vec!["create", "--name", "x", "--expires", "soonish"],
            2,
            "invalid --expires",
        ),
        (
            vec!["create", "--name", "x", "--expires", "0d"],
            2,
            "invalid --expires",
        ),
        (
            vec!["create", "--name", "x", "--scope", "a b"],
            2,
            "invalid scope",
        ),
        (
            vec!["create", "--name", "x", "--prefix", "nounderscore"],
            2,
            "invalid prefix",
        ),
        (
            vec![
                "create", "--name", "x", "--format", "aksk", "--prefix", "a_",
            ],
            2,
            "--prefix",
        ),
    ];
    for (args, code, needle) in cases {
        expect(&home, &args, "", code, needle);
    }
    assert_untouched(&home, &reg, &store);
}

#[test]
fn unknown_and_ambiguous_keys() {
    let (home, _, _) = seeded();
    for cmd in ["show", "secret", "delete"] {
        expect(
            &home,
            &[cmd, "nope", "--yes"],
            "",
            3,
            "no key with ID or name 'nope'",
        );
    }
    // A key whose *name* is another key's ID makes that string ambiguous.
    let keep_id = home.registry()["keys"][0]["id"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(
        home.cmd()
            .args(["import", "--name", &keep_id, "--id", "other-1"])
            .stdin("s3cr3t\n")
            .run()
            .0,
        0
    );
    let (reg, store) = (
        std::fs::read(home.path().join("keys.json")).unwrap(),
        std::fs::read(home.path().join("secrets.json")).unwrap(),
    );
    expect(
        &home,
        &["delete", &keep_id, "--yes"],
        "",
        4,
        "more than one key",
    );
    expect(&home, &["secret", &keep_id], "", 4, "use the key ID");
    assert_untouched(&home, &reg, &store);
}

#[test]
fn secrets_on_the_command_line_are_refused_without_echo() {
    let (home, reg, store) = seeded();
    let secret = home
        .cmd()
        .args(["secret", "keep"])
        .run()
        .1
        .trim()
        .to_string();
    for args in [
        vec!["create", "--name", secret.as_str()],
        vec!["import", "--name", "n", "--id", "i", secret.as_str()],
        vec!["check", secret.as_str()],
    ] {
        let err = expect(&home, &args, "", 2, "looks like a keyctl secret");
        assert!(!err.contains(&secret));
    }
    let flag = format!("--description={secret}");
    let err = expect(
        &home,
        &["create", &flag],
        "",
        2,
        "looks like a keyctl secret",
    );
    assert!(!err.contains(&secret));
    assert_untouched(&home, &reg, &store);
}

#[test]
fn import_refuses_bad_ids_and_bad_secrets() {
    let (home, reg, store) = seeded();
    expect(
        &home,
        &["import", "--name", "n", "--id", "has space"],
        "s\n",
        2,
        "invalid key ID",
    );
    expect(
        &home,
        &["import", "--name", "n", "--id", "ok"],
        "",
        2,
        "no secret",
    );
    expect(
        &home,
        &["import", "--name", "n", "--id", "ok"],
        "two\nlines\n",
        2,
        "more than one line",
    );
    let huge = "x".repeat(10_000);
    expect(
        &home,
        &["import", "--name", "n", "--id", "ok"],
        &huge,
        2,
        "longer than",
    );
    expect(
        &home,
        &["import", "--name", "keep", "--id", "ok"],
        "s\n",
        4,
        "already exists",
    );
    assert_untouched(&home, &reg, &store);
}

#[test]
fn corrupted_registry_is_named_and_never_overwritten() {
    let (home, _, store) = seeded();
    let path = home.path().join("keys.json");
    let garbage = b"{\"version\":1,\"keys\":[{\"id\": tru".to_vec();
    std::fs::write(&path, &garbage).unwrap();
    for args in [
        vec!["create", "--name", "new"],
        vec!["list"],
        vec!["secret", "keep"],
        vec!["delete", "keep", "--yes"],
    ] {
        expect(&home, &args, "", 1, &path.display().to_string());
        assert_eq!(std::fs::read(&path).unwrap(), garbage);
    }
    assert_eq!(
        std::fs::read(home.path().join("secrets.json")).unwrap(),
        store
    );
}

#[test]
fn unwritable_home_fails_cleanly() {
    let home = Home::new();
    let file = home.dir.path().join("a-file");
    std::fs::write(&file, "x").unwrap();
    let (code, out, err) = home
        .cmd()
        .env("KEYCTL_HOME", file.join("home"))
        .args(["--store", "file", "create", "--name", "x"])
        .run();
    assert_eq!(code, 1, "{err}");
    assert!(out.is_empty());
    assert!(err.contains("cannot create directory"), "{err}");
    assert_eq!(err.lines().count(), 1);
    assert_eq!(std::fs::read(&file).unwrap(), b"x");
}

#[test]
fn no_secret_in_home_files_stderr_or_verbose_output() {
    let ss = require!(SecretService::start());
    let home = Home::new();
    let mut secrets = Vec::new();
    for (i, store) in ["auto", "file"].iter().enumerate() {
        let (code, out, err) = ss
            .cmd(&home)
            .args([
                "-vv",
                "--store",
                store,
                "--json",
                "create",
                "--name",
                &format!("k{i}"),
            ])
            .run();
        assert_eq!(code, 0, "{err}");
        let s = json(&out)["secret"].as_str().unwrap().to_string();
        assert!(!err.contains(&s), "secret in stderr: {err}");
        assert!(err.contains("debug"), "-v printed nothing: {err}");
        secrets.push(s);
    }
    for key in ["k0", "k1"] {
        for args in [
            vec!["-vv", "show", key],
            vec!["-vv", "list"],
            vec!["-vv", "doctor"],
        ] {
            let (_, out, err) = ss.cmd(&home).args(&args).run();
            for s in &secrets {
                assert!(!out.contains(s) && !err.contains(s), "{args:?} leaked");
            }
        }
        let (_, _, err) = ss.cmd(&home).args(["-vv", "secret", key]).run();
        for s in &secrets {
            assert!(!err.contains(s), "secret -v leaked to stderr");
        }
    }
    for (path, bytes) in home.files_except_store() {
        let text = String::from_utf8_lossy(&bytes);
        for s in &secrets {
            assert!(!text.contains(s.as_str()), "secret in {}", path.display());
        }
    }
    // The file store holds the file-store secret only; the keyring one is not on disk.
    let store = std::fs::read_to_string(home.path().join("secrets.json")).unwrap();
    assert!(!store.contains(&secrets[0]) && store.contains(&secrets[1]));
}
