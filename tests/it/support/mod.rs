//! Shared fixtures for the end-to-end tests: the built binary with a clean environment,
//! a private keyctl home, and a real Secret Service (gnome-keyring on its own D-Bus
//! session bus) per test, so tests run in parallel without sharing state.

pub mod fake_http;
pub mod keystone;
pub mod openbao;

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use tempfile::TempDir;

pub const BIN: &str = env!("CARGO_BIN_EXE_keyctl");

/// A private keyctl home (and HOME) that disappears with the test.
pub struct Home {
    pub dir: TempDir,
}

impl Home {
    pub fn new() -> Home {
        let dir = tempfile::Builder::new()
            .prefix("keyctl-test-")
            .tempdir()
            .unwrap();
        std::fs::create_dir_all(dir.path().join("user")).unwrap();
        Home { dir }
    }

    /// The keyctl home (`KEYCTL_HOME`).
    pub fn path(&self) -> PathBuf {
        self.dir.path().join("home")
    }

    /// The built binary with no session bus: as on a headless server.
    pub fn cmd(&self) -> Command {
        let mut c = Command::new(BIN);
        clean_env(&mut c, self.dir.path());
        c.env("KEYCTL_HOME", self.path());
        c
    }

    pub fn registry(&self) -> serde_json::Value {
        let b = std::fs::read(self.path().join("keys.json")).unwrap();
        serde_json::from_slice(&b).unwrap()
    }

    /// Every byte of every file under the home except the file store.
    pub fn files_except_store(&self) -> Vec<(PathBuf, Vec<u8>)> {
        let mut out = Vec::new();
        walk(self.dir.path(), &mut out);
        out.retain(|(p, _)| p.file_name().is_none_or(|n| n != "secrets.json"));
        out
    }
}

fn walk(dir: &Path, out: &mut Vec<(PathBuf, Vec<u8>)>) {
    if let Ok(rd) = std::fs::read_dir(dir) {
        for e in rd.flatten() {
            let p = e.path();
            if p.is_dir() {
                walk(&p, out);
            } else if let Ok(b) = std::fs::read(&p) {
                out.push((p, b));
            }
        }
    }
}

/// Removes what could leak in from the developer's environment.
pub fn clean_env(c: &mut Command, root: &Path) {
    for (k, _) in std::env::vars_os() {
        let k = k.to_string_lossy().into_owned();
        if k.starts_with("KEYCTL_")
            || k.starts_with("DBUS_")
            || k.starts_with("XDG_")
            || k.starts_with("SODA_")
            || k.starts_with("OS_")
            || k.starts_with("VAULT_")
            || k.starts_with("BAO_")
            || k == "NO_COLOR"
        {
            c.env_remove(&k);
        }
    }
    c.env("HOME", root.join("user"));
    c.env("XDG_RUNTIME_DIR", root.join("user"));
}

/// Runs the command with `stdin` and returns (code, stdout, stderr).
pub fn run(mut c: Command, stdin: &str) -> (i32, String, String) {
    c.stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = c.spawn().expect("spawn keyctl");
    child.stdin.take().unwrap().write_all(stdin.as_bytes()).ok();
    let o = child.wait_with_output().unwrap();
    (
        o.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&o.stdout).into_owned(),
        String::from_utf8_lossy(&o.stderr).into_owned(),
    )
}

fn require(bin: &str, package: &str) {
    let found = std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).any(|d| d.join(bin).is_file()))
        .unwrap_or(false);
    assert!(
        found,
        "{bin} is not installed: run the README's test command (scripts/test), which installs the Debian package {package}"
    );
}

/// A real gnome-keyring Secret Service on a private session bus, unlocked.
pub struct SecretService {
    pub address: String,
    _dir: TempDir,
    dbus: Child,
    keyring: Option<Child>,
}

impl SecretService {
    pub fn start() -> SecretService {
        let ss = Self::start_with(true);
        ss.wait_for_owner();
        ss
    }

    /// A session bus where no keyring was started and unlocked: D-Bus may still activate
    /// gnome-keyring on demand, which then has no unlocked collection (a common setup on
    /// servers that have the package but no desktop session).
    pub fn start_bus_only() -> SecretService {
        Self::start_with(false)
    }

    fn start_with(unlocked_keyring: bool) -> SecretService {
        require("dbus-daemon", "dbus");
        require("gnome-keyring-daemon", "gnome-keyring");
        let dir = tempfile::Builder::new()
            .prefix("keyctl-ss-")
            .tempdir()
            .unwrap();
        let sock = dir.path().join("bus");
        let mut dbus = Command::new("dbus-daemon")
            .args(["--session", "--nofork", "--print-address=1"])
            .arg(format!("--address=unix:path={}", sock.display()))
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("start dbus-daemon");
        let mut line = String::new();
        BufReader::new(dbus.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let address = line.trim().to_string();
        assert!(address.starts_with("unix:"), "dbus-daemon gave no address");
        let keyring = unlocked_keyring.then(|| {
            let mut k = Command::new("gnome-keyring-daemon")
                .args(["--foreground", "--unlock", "--components=secrets"])
                .env("DBUS_SESSION_BUS_ADDRESS", &address)
                .env("XDG_DATA_HOME", dir.path())
                .env("XDG_RUNTIME_DIR", dir.path())
                .env("HOME", dir.path())
                .stdin(Stdio::piped())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .expect("start gnome-keyring-daemon");
            // printf, not echo: a newline would become part of the password.
            k.stdin.take().unwrap().write_all(b"test-password").unwrap();
            k
        });
        SecretService {
            address,
            _dir: dir,
            dbus,
            keyring,
        }
    }

    fn wait_for_owner(&self) {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let o = Command::new("dbus-send")
                .args([
                    "--session",
                    "--print-reply",
                    "--dest=org.freedesktop.DBus",
                    "/org/freedesktop/DBus",
                    "org.freedesktop.DBus.NameHasOwner",
                    "string:org.freedesktop.secrets",
                ])
                .env("DBUS_SESSION_BUS_ADDRESS", &self.address)
                .output()
                .expect("dbus-send");
            if String::from_utf8_lossy(&o.stdout).contains("boolean true") {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "gnome-keyring did not take org.freedesktop.secrets within 10 s"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// keyctl in `home`, talking to this Secret Service.
    pub fn cmd(&self, home: &Home) -> Command {
        let mut c = home.cmd();
        c.env("DBUS_SESSION_BUS_ADDRESS", &self.address);
        c
    }

    /// libsecret's own client, the way another tool would look the secret up.
    pub fn secret_tool_lookup(&self, id: &str) -> Option<String> {
        require("secret-tool", "libsecret-tools");
        let o = Command::new("secret-tool")
            .args(["lookup", "service", "keyctl", "username", id])
            .env("DBUS_SESSION_BUS_ADDRESS", &self.address)
            .output()
            .unwrap();
        o.status
            .success()
            .then(|| String::from_utf8_lossy(&o.stdout).into_owned())
    }

    pub fn secret_tool_store(&self, id: &str, secret: &str) {
        let mut c = Command::new("secret-tool");
        c.args([
            "store", "--label", "test", "service", "keyctl", "username", id,
        ])
        .env("DBUS_SESSION_BUS_ADDRESS", &self.address);
        let (code, _, err) = run(c, secret);
        assert_eq!(code, 0, "secret-tool store: {err}");
    }
}

impl Drop for SecretService {
    fn drop(&mut self) {
        if let Some(k) = &mut self.keyring {
            let _ = k.kill();
            let _ = k.wait();
        }
        let _ = self.dbus.kill();
        let _ = self.dbus.wait();
    }
}

/// Parses stdout as JSON.
pub fn json(stdout: &str) -> serde_json::Value {
    serde_json::from_str(stdout).unwrap_or_else(|e| panic!("not JSON ({e}): {stdout}"))
}
