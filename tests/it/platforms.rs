//! The release artifacts against each platform's own keyring, end to end: the static musl
//! binary against a real gnome-keyring (Secret Service on a private bus), and the Windows
//! binary under wine against its Credential Manager (CredWriteW/CredReadW/CredDeleteW).
//! `scripts/release --ci` (run by scripts/test) builds them and exports their paths; a
//! missing artifact fails with a message, never a skip.

use std::process::Command;

use crate::support::*;

fn artifact(var: &str) -> String {
    let p = std::env::var(var).unwrap_or_else(|_| {
        panic!("{var} is not set: run the README's test command (scripts/test), which builds the release artifacts with scripts/release --ci")
    });
    assert!(
        std::path::Path::new(&p).is_file(),
        "{var}={p} does not exist: run scripts/test"
    );
    p
}

/// create, secret, list, delete through the OS keyring with `--store keyring`.
fn keyring_round_trip(mut cmd: impl FnMut() -> Command, home: &str) {
    let go = |c: &mut Command, args: &[&str]| {
        c.args(["--home", home]).args(args);
        let o = c.output().unwrap();
        (
            o.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&o.stdout).replace('\r', ""),
            String::from_utf8_lossy(&o.stderr).into_owned(),
        )
    };
    let (code, out, err) = go(
        &mut cmd(),
        &["--store", "keyring", "--json", "create", "--name", "plat"],
    );
    assert_eq!(code, 0, "create: {err}");
    let v = json(&out);
    assert_eq!(v["store"], "keyring", "{out}");
    let secret = v["secret"].as_str().unwrap().to_string();
    let (code, out, err) = go(&mut cmd(), &["secret", "plat"]);
    assert_eq!(code, 0, "secret: {err}");
    assert_eq!(out.trim(), secret);
    let (code, out, _) = go(&mut cmd(), &["list"]);
    assert_eq!(code, 0);
    assert!(out.contains("plat") && out.contains("keyring"), "{out}");
    let (code, _, err) = go(&mut cmd(), &["--yes", "delete", "plat"]);
    assert_eq!(code, 0, "delete: {err}");
    let (code, _, _) = go(&mut cmd(), &["secret", "plat"]);
    assert_eq!(code, 3, "the key is gone");
}

#[test]
fn the_static_musl_binary_round_trips_through_gnome_keyring() {
    let bin = artifact("KEYCTL_TEST_MUSL_BIN");
    let ss = SecretService::start();
    let home = Home::new();
    let root = home.dir.path().to_path_buf();
    let address = ss.address.clone();
    keyring_round_trip(
        || {
            let mut c = Command::new(&bin);
            clean_env(&mut c, &root);
            c.env("DBUS_SESSION_BUS_ADDRESS", &address);
            c
        },
        home.path().to_str().unwrap(),
    );
    // What the musl binary stored is there for other tools, under service keyctl.
    let mut c = Command::new(&bin);
    clean_env(&mut c, &root);
    c.env("DBUS_SESSION_BUS_ADDRESS", &address).args([
        "--home",
        home.path().to_str().unwrap(),
        "--store",
        "keyring",
        "--json",
        "create",
        "--name",
        "seen",
    ]);
    let o = c.output().unwrap();
    let v = json(&String::from_utf8_lossy(&o.stdout));
    assert_eq!(
        ss.secret_tool_lookup(v["id"].as_str().unwrap()).as_deref(),
        v["secret"].as_str()
    );
}

#[test]
fn the_windows_binary_round_trips_through_the_credential_manager_under_wine() {
    let exe = artifact("KEYCTL_TEST_WINDOWS_EXE");
    let prefix = std::env::var("KEYCTL_TEST_WINEPREFIX")
        .expect("KEYCTL_TEST_WINEPREFIX is not set: run scripts/test");
    let home = Home::new();
    let root = home.dir.path().to_path_buf();
    keyring_round_trip(
        || {
            let mut c = Command::new("wine");
            clean_env(&mut c, &root);
            c.env("WINEPREFIX", &prefix)
                .env("WINEDEBUG", "-all")
                // wine's own HOME-based paths stay in the prefix.
                .env("HOME", std::env::var_os("HOME").unwrap_or_default())
                .arg(&exe);
            c
        },
        home.path().to_str().unwrap(),
    );
}
