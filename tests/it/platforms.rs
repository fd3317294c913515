//! The release artifacts against each platform's own keyring, end to end: the static musl
//! binary against a real gnome-keyring (Secret Service on a private bus), and the Windows
//! binary under wine against its Credential Manager (CredWriteW/CredReadW/CredDeleteW).
//! `scripts/release --ci` (run by scripts/test) builds them and exports their paths; under
//! scripts/test a missing artifact fails with a message, never a skip.

use std::process::Command;

use crate::support::*;

/// create, secret, list, delete through the OS keyring with `--store keyring`.
fn keyring_round_trip(cmd: impl Fn() -> Cmd, home: &str) {
    let go = |args: &[&str]| {
        let (code, out, err) = cmd().args(["--home", home]).args(args).run();
        (code, out.replace('\r', ""), err)
    };
    let (code, out, err) = go(&["--store", "keyring", "--json", "create", "--name", "plat"]);
    assert_eq!(code, 0, "create: {err}");
    let v = json(&out);
    assert_eq!(v["store"], "keyring", "{out}");
    let secret = v["secret"].as_str().unwrap().to_string();
    let (code, out, err) = go(&["secret", "plat"]);
    assert_eq!(code, 0, "secret: {err}");
    assert_eq!(out.trim(), secret);
    let (code, out, _) = go(&["list"]);
    assert_eq!(code, 0);
    assert!(out.contains("plat") && out.contains("keyring"), "{out}");
    let (code, _, err) = go(&["--yes", "delete", "plat"]);
    assert_eq!(code, 0, "delete: {err}");
    let (code, _, _) = go(&["secret", "plat"]);
    assert_eq!(code, 3, "the key is gone");
}

/// `program` with the environment of a test home, but no KEYCTL_HOME: the artifacts get
/// `--home`, a path wine's Windows binary takes as it is.
fn artifact_cmd(program: impl AsRef<std::ffi::OsStr>, home: &Home) -> Cmd {
    let mut c = Command::new(program);
    clean_env(&mut c, home.dir.path());
    Cmd::from(c)
}

#[test]
fn the_static_musl_binary_round_trips_through_gnome_keyring() {
    let bin = require!(need("the static musl build", "KEYCTL_TEST_MUSL_BIN"));
    let ss = require!(SecretService::start());
    let home = Home::new();
    let musl = || artifact_cmd(&bin, &home).env("DBUS_SESSION_BUS_ADDRESS", &ss.address);
    keyring_round_trip(musl, home.path().to_str().unwrap());
    // What the musl binary stored is there for other tools, under service keyctl.
    let (_, out, _) = musl()
        .args(["--home", home.path().to_str().unwrap()])
        .args(["--store", "keyring", "--json", "create", "--name", "seen"])
        .run();
    let v = json(&out);
    assert_eq!(
        ss.secret_tool_lookup(v["id"].as_str().unwrap()).as_deref(),
        v["secret"].as_str()
    );
}

#[test]
fn the_windows_binary_round_trips_through_the_credential_manager_under_wine() {
    let exe = require!(need("the Windows build", "KEYCTL_TEST_WINDOWS_EXE"));
    let prefix = require!(need("a wine prefix", "KEYCTL_TEST_WINEPREFIX"));
    let home = Home::new();
    let wine = || {
        artifact_cmd("wine", &home)
            .env("WINEPREFIX", &prefix)
            .env("WINEDEBUG", "-all")
            // wine's own HOME-based paths stay in the prefix.
            .env("HOME", std::env::var_os("HOME").unwrap_or_default())
            .arg(&exe)
    };
    keyring_round_trip(wine, home.path().to_str().unwrap());
}
