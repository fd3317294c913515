//! Shared fixtures for the end-to-end tests: one builder for running keyctl (or any
//! program) and checking its outcome, a private keyctl home, a real Secret Service
//! (gnome-keyring on its own D-Bus session bus) per test so tests run in parallel without
//! sharing state, and the one place that decides whether a missing service skips a test
//! or fails it.

pub(crate) mod fake_http;
pub(crate) mod keystone;
pub(crate) mod openbao;
#[cfg(unix)]
pub(crate) mod pty;

use std::ffi::OsStr;
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;
use tempfile::TempDir;

/// Set by scripts/test: a service a test needs that is missing fails the test instead of
/// skipping it.
pub(crate) const REQUIRE_SERVICES: &str = "KEYCTL_TEST_REQUIRE_SERVICES";
/// Treat the services found on PATH (gnome-keyring, D-Bus, openssl, python3) as missing,
/// to check on a machine that has them what `cargo test` does on one that does not.
pub(crate) const NO_PATH_SERVICES: &str = "KEYCTL_TEST_NO_PATH_SERVICES";

/// A service that scripts/test installs and names in `var` (a file or directory): its
/// path, or None when it is missing and services are not required. Use with `require!`.
pub(crate) fn need(what: &str, var: &str) -> Option<PathBuf> {
    match std::env::var_os(var).map(PathBuf::from) {
        Some(p) if p.exists() => Some(p),
        Some(p) => missing(what, var, &format!("{var}={} does not exist", p.display())),
        None => missing(what, var, &format!("{var} is not set")),
    }
}

/// Programs from Debian packages, found on PATH: Some(()) when all are there.
pub(crate) fn need_programs(what: &str, programs: &[&str], package: &str) -> Option<()> {
    let hidden = std::env::var_os(NO_PATH_SERVICES).is_some();
    let absent: Vec<&str> = programs
        .iter()
        .copied()
        .filter(|p| hidden || !on_path(p))
        .collect();
    if absent.is_empty() {
        return Some(());
    }
    let why = format!(
        "{} not on PATH; the Debian package {package}",
        absent.join(", ")
    );
    missing(what, &absent.join(", "), &why)
}

fn on_path(program: &str) -> bool {
    std::env::var_os("PATH")
        .is_some_and(|p| std::env::split_paths(&p).any(|d| d.join(program).is_file()))
}

/// One line saying what is skipped (written past the test harness's capture, so a plain
/// `cargo test` shows it), or a failure under scripts/test.
fn missing<T>(what: &str, hint: &str, why: &str) -> Option<T> {
    if std::env::var_os(REQUIRE_SERVICES).is_some() {
        panic!(
            "{what} is missing ({why}): run the README's test command (scripts/test), which installs it"
        );
    }
    let _ = writeln!(
        std::io::stderr(),
        "skipped: needs {what} ({hint}); scripts/test runs it"
    );
    None
}

/// The value of an `Option` from [`need`] or a fixture that starts a service, or an early
/// return from the test when the service is missing (after its one "skipped:" line).
macro_rules! require {
    ($e:expr) => {
        match $e {
            Some(v) => v,
            None => return,
        }
    };
}
pub(crate) use require;

/// A program to run, built up call by call and then checked:
/// `home.cmd().args(["show", "k"]).stdin("..").code(3).stderr_has("no key")`, or `.ok()`
/// for its stdout.
pub(crate) struct Cmd {
    c: Command,
    stdin: Vec<u8>,
}

/// What a finished [`Cmd`] printed, for further checks.
pub(crate) struct Out {
    pub stdout: String,
    pub stderr: String,
}

impl Out {
    pub(crate) fn stderr_has(self, needle: &str) -> Out {
        assert!(
            self.stderr.contains(needle),
            "expected {needle:?} in stderr: {}",
            self.stderr
        );
        self
    }
}

impl Cmd {
    pub(crate) fn new(program: impl AsRef<OsStr>) -> Cmd {
        Cmd::from(Command::new(program))
    }

    pub(crate) fn arg(mut self, a: impl AsRef<OsStr>) -> Cmd {
        self.c.arg(a);
        self
    }

    pub(crate) fn args<S: AsRef<OsStr>>(mut self, a: impl IntoIterator<Item = S>) -> Cmd {
        self.c.args(a);
        self
    }

    pub(crate) fn env(mut self, k: impl AsRef<OsStr>, v: impl AsRef<OsStr>) -> Cmd {
        self.c.env(k, v);
        self
    }

    pub(crate) fn env_remove(mut self, k: impl AsRef<OsStr>) -> Cmd {
        self.c.env_remove(k);
        self
    }

    pub(crate) fn env_clear(mut self) -> Cmd {
        self.c.env_clear();
        self
    }

    pub(crate) fn stdin(mut self, s: impl AsRef<[u8]>) -> Cmd {
        self.stdin = s.as_ref().to_vec();
        self
    }

    /// Runs it to the end: (exit code, stdout, stderr), whatever the code.
    pub(crate) fn run(mut self) -> (i32, String, String) {
        self.c
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = self
            .c
            .spawn()
            .unwrap_or_else(|e| panic!("spawn {:?}: {e}", self.c.get_program()));
        // A program may exit without reading its input.
        let _ = child.stdin.take().unwrap().write_all(&self.stdin);
        let o = child.wait_with_output().unwrap();
        (
            o.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&o.stdout).into_owned(),
            String::from_utf8_lossy(&o.stderr).into_owned(),
        )
    }

    /// Runs it and checks its exit code.
    pub(crate) fn code(self, want: i32) -> Out {
        let what = self.describe();
        let (code, stdout, stderr) = self.run();
        assert_eq!(code, want, "{what}: stderr {stderr}");
        Out { stdout, stderr }
    }

    /// Runs it, checks it succeeded, and returns its stdout.
    pub(crate) fn ok(self) -> String {
        self.code(0).stdout
    }

    /// Runs it, checks it succeeded, and parses its stdout as JSON.
    pub(crate) fn json(self) -> Value {
        json(&self.ok())
    }

    /// The command itself, for a test that spawns it, signals it or kills it.
    pub(crate) fn command(self) -> Command {
        self.c
    }

    fn describe(&self) -> String {
        let args: Vec<_> = self.c.get_args().map(|a| a.to_string_lossy()).collect();
        format!(
            "{} {}",
            Path::new(self.c.get_program())
                .file_name()
                .unwrap_or_default()
                .to_string_lossy(),
            args.join(" ")
        )
    }
}

impl From<Command> for Cmd {
    fn from(c: Command) -> Cmd {
        Cmd {
            c,
            stdin: Vec::new(),
        }
    }
}

pub(crate) const BIN: &str = env!("CARGO_BIN_EXE_keyctl");

/// A private keyctl home (and HOME) that disappears with the test.
pub(crate) struct Home {
    pub dir: TempDir,
}

impl Home {
    pub(crate) fn new() -> Home {
        let dir = tempfile::Builder::new()
            .prefix("keyctl-test-")
            .tempdir()
            .unwrap();
        std::fs::create_dir_all(dir.path().join("user")).unwrap();
        Home { dir }
    }

    /// The keyctl home (`KEYCTL_HOME`).
    pub(crate) fn path(&self) -> PathBuf {
        self.dir.path().join("home")
    }

    /// The built binary with no session bus: as on a headless server.
    pub(crate) fn cmd(&self) -> Cmd {
        self.cmd_of(BIN)
    }

    /// Another keyctl binary (a release artifact) in this home, with the same environment.
    pub(crate) fn cmd_of(&self, program: impl AsRef<OsStr>) -> Cmd {
        let mut c = Command::new(program);
        clean_env(&mut c, self.dir.path());
        c.env("KEYCTL_HOME", self.path());
        Cmd::from(c)
    }

    pub(crate) fn registry(&self) -> serde_json::Value {
        let b = std::fs::read(self.path().join("keys.json")).unwrap();
        serde_json::from_slice(&b).unwrap()
    }

    /// Every byte of every file under the home except the file store.
    pub(crate) fn files_except_store(&self) -> Vec<(PathBuf, Vec<u8>)> {
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
pub(crate) fn clean_env(c: &mut Command, root: &Path) {
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

/// A real gnome-keyring Secret Service on a private session bus, unlocked.
pub(crate) struct SecretService {
    pub address: String,
    _dir: TempDir,
    dbus: Child,
    keyring: Option<Child>,
}

impl SecretService {
    /// Some(()) when one can be started, None (see [`require!`]) when gnome-keyring or
    /// D-Bus is not installed: for a test whose helpers start several.
    pub(crate) fn available() -> Option<()> {
        need_programs(
            "a Secret Service",
            &[
                "dbus-daemon",
                "dbus-send",
                "gnome-keyring-daemon",
                "secret-tool",
            ],
            "dbus, gnome-keyring and libsecret-tools",
        )
    }

    /// None (see [`require!`]) when gnome-keyring or D-Bus is not installed.
    pub(crate) fn start() -> Option<SecretService> {
        let ss = Self::start_with(true)?;
        ss.wait_for_owner();
        Some(ss)
    }

    /// A session bus where no keyring was started and unlocked: D-Bus may still activate
    /// gnome-keyring on demand, which then has no unlocked collection (a common setup on
    /// servers that have the package but no desktop session).
    pub(crate) fn start_bus_only() -> Option<SecretService> {
        Self::start_with(false)
    }

    fn start_with(unlocked_keyring: bool) -> Option<SecretService> {
        Self::available()?;
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
        Some(SecretService {
            address,
            _dir: dir,
            dbus,
            keyring,
        })
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
    pub(crate) fn cmd(&self, home: &Home) -> Cmd {
        home.cmd().env("DBUS_SESSION_BUS_ADDRESS", &self.address)
    }

    /// libsecret's own client, the way another tool would look the secret up.
    pub(crate) fn secret_tool_lookup(&self, id: &str) -> Option<String> {
        let o = Command::new("secret-tool")
            .args(["lookup", "service", "keyctl", "username", id])
            .env("DBUS_SESSION_BUS_ADDRESS", &self.address)
            .output()
            .unwrap();
        o.status
            .success()
            .then(|| String::from_utf8_lossy(&o.stdout).into_owned())
    }

    pub(crate) fn secret_tool_store(&self, id: &str, secret: &str) {
        Cmd::new("secret-tool")
            .args([
                "store", "--label", "test", "service", "keyctl", "username", id,
            ])
            .env("DBUS_SESSION_BUS_ADDRESS", &self.address)
            .stdin(secret)
            .ok();
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

/// `keyctl [-v] --store file remote add fk --url URL --user u --project p EXTRA...` in
/// `home`, the password on stdin: a Keystone remote in a file-store home.
pub(crate) fn remote_add_fk(
    home: &Home,
    url: &str,
    verbose: bool,
    extra: &[&str],
    password: &str,
) -> Cmd {
    let mut c = home.cmd().args(["--store", "file"]);
    if verbose {
        c = c.arg("-v");
    }
    c.args(["remote", "add", "fk", "--url", url])
        .args(["--user", "u", "--project", "p"])
        .args(extra)
        .stdin(password)
}

/// Parses stdout as JSON.
pub(crate) fn json(stdout: &str) -> Value {
    serde_json::from_str(stdout).unwrap_or_else(|e| panic!("not JSON ({e}): {stdout}"))
}

/// A home whose keyctl talks to a Secret Service of its own: the usual desktop setup.
pub(crate) struct KeyringHome {
    pub ss: SecretService,
    pub home: Home,
}

impl KeyringHome {
    /// None (see [`require!`]) when gnome-keyring or D-Bus is not installed.
    pub(crate) fn new() -> Option<KeyringHome> {
        Some(KeyringHome {
            ss: SecretService::start()?,
            home: Home::new(),
        })
    }

    pub(crate) fn cmd(&self) -> Cmd {
        self.ss.cmd(&self.home)
    }

    /// `list --all --json`: every key, revoked and superseded ones too.
    pub(crate) fn keys(&self) -> Vec<Value> {
        self.cmd()
            .args(["--json", "list", "--all"])
            .json()
            .as_array()
            .unwrap()
            .clone()
    }
}
