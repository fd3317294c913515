//! What a person sees, in a pseudo-terminal of 80x24 (support::pty): tables that never
//! wrap an ID, status colors on a terminal and none on a pipe or with NO_COLOR, a spinner
//! while a server is slow (and none with -q), prompts that say what will happen; and the
//! exact first line of every error a person meets first.

use std::net::TcpListener;
use std::path::Path;
use std::time::Duration;

use crate::support::pty;
use crate::support::{BIN, Home};

const SIZE: (u16, u16) = (80, 24);

fn env(home: &Home) -> Vec<(&'static str, std::path::PathBuf)> {
    vec![
        ("KEYCTL_HOME", home.path()),
        ("HOME", home.dir.path().join("user")),
    ]
}

fn in_pty(home: &Home, args: &[&str], extra: &[(&str, &str)], answer: Option<&str>) -> pty::Run {
    let e = env(home);
    let e: Vec<(&str, &Path)> = e.iter().map(|(k, v)| (*k, v.as_path())).collect();
    let mut extra = extra.to_vec();
    extra.push(("KEYCTL_STORE", "file"));
    pty::run(args, &e, &extra, SIZE, answer, Duration::from_secs(30))
}

fn create(home: &Home, args: &[&str]) -> serde_json::Value {
    home.cmd()
        .env("KEYCTL_STORE", "file")
        .args(["--json", "create"])
        .args(args)
        .json()
}

#[test]
fn list_at_80_columns_keeps_ids_whole_and_colors_status_only_on_a_terminal() {
    let home = Home::new();
    let long = create(
        &home,
        &[
            "--name",
            "deploy-production-eu-west",
            "--expires",
            "90d",
            "--description",
            "the production deploy key of the EU cluster, used by every job",
        ],
    );
    let soon = create(&home, &["--name", "soon", "--expires", "3d"]);
    let gone = create(&home, &["--name", "gone"]);
    home.cmd().args(["revoke", "gone", "-y"]).ok();
    let ids: Vec<String> = [&long, &soon, &gone]
        .iter()
        .map(|v| v["id"].as_str().unwrap().to_string())
        .collect();

    let r = in_pty(&home, &[BIN, "list", "--all"], &[], None);
    assert_eq!(r.code, 0, "{}", r.raw);
    let rows = r.rows();
    for id in &ids {
        assert!(
            rows.iter().any(|l| l.contains(id.as_str())),
            "{id} wrapped or missing:\n{}",
            rows.join("\n")
        );
    }
    assert!(
        rows.iter().any(|l| l.contains("deploy-production-eu-west")),
        "{}",
        rows.join("\n")
    );
    assert!(rows.iter().all(|l| l.chars().count() <= 80));
    assert!(
        rows.iter().any(|l| l.contains("in 3 days")),
        "{}",
        rows.join("\n")
    );
    assert!(
        rows.iter().any(|l| l.contains("in 90 days")),
        "{}",
        rows.join("\n")
    );
    assert_eq!(
        r.color_of("expiring"),
        Some(vt100::Color::Idx(11)),
        "{}",
        r.raw
    );
    assert_eq!(
        r.color_of("active"),
        Some(vt100::Color::Idx(10)),
        "{}",
        r.raw
    );
    assert_eq!(
        r.color_of("revoked"),
        Some(vt100::Color::Idx(9)),
        "{}",
        r.raw
    );

    // NO_COLOR: the same table, plain.
    let r = in_pty(&home, &[BIN, "list", "--all"], &[("NO_COLOR", "1")], None);
    assert_eq!(r.color_of("expiring"), Some(vt100::Color::Default));
    assert!(!r.raw.contains("\x1b[38;5;"), "{}", r.raw);

    // Piped, even with --color always: the stable TSV with dates, no escapes.
    let cmd = format!("{BIN} --color always list --all | cat");
    let r = in_pty(&home, &["sh", "-c", &cmd], &[], None);
    assert!(
        r.raw.contains(&format!("soon\t{}\tapi\t", ids[1])),
        "{}",
        r.raw
    );
    assert!(
        !r.raw.contains("\x1b[38;5;") && !r.raw.contains("in 3 days"),
        "{}",
        r.raw
    );
}

/// A server that accepts connections and never answers.
fn silent_server() -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    std::thread::spawn(move || {
        let mut held = Vec::new();
        for c in l.incoming() {
            held.push(c);
        }
    });
    port
}

#[test]
fn a_slow_server_shows_a_spinner_and_quiet_shows_none() {
    let home = Home::new();
    let port = silent_server();
    let add = |quiet: &str| {
        format!(
            "echo pw | {BIN} {quiet} remote add ks --url http://127.0.0.1:{port}/v3 --user u --project p --timeout 2s"
        )
    };
    let r = in_pty(&home, &["sh", "-c", &add("")], &[], None);
    assert_eq!(r.code, 6, "{}", r.raw);
    assert!(
        r.raw.contains(&format!(
            "waiting for remote ks (POST http://127.0.0.1:{port}/v3/auth/tokens)"
        )),
        "no spinner: {}",
        r.raw
    );
    // Cleared when the wait ended: the screen keeps only the error.
    let rows = r.rows().join("\n");
    assert!(!rows.contains("waiting for"), "{rows}");
    assert!(rows.contains("timed out"), "{rows}");
    // One attempt: a server that did not answer within the timeout is not asked again.
    assert_eq!(r.raw.matches("retrying").count(), 0, "{}", r.raw);

    let r = in_pty(&home, &["sh", "-c", &add("-q")], &[], None);
    assert_eq!(r.code, 6);
    assert!(!r.raw.contains("waiting for"), "{}", r.raw);
}

#[test]
fn prompts_say_what_will_happen_and_no_changes_nothing() {
    let home = Home::new();
    let k = create(&home, &["--name", "k"]);
    let id = k["id"].as_str().unwrap();
    let r = in_pty(&home, &[BIN, "revoke", "k"], &[], Some("n"));
    assert_eq!(r.code, 10, "{}", r.raw);
    assert!(
        r.raw.contains(&format!(
            "revoke key 'k' ({id}) here (no remote is called), and delete its secret [y/N]"
        )),
        "{}",
        r.raw
    );
    assert!(
        r.raw.contains("not confirmed; nothing was changed"),
        "{}",
        r.raw
    );
    let v = home.cmd().args(["--json", "show", "k"]).json();
    assert_eq!(v["status"], "active");

    let r = in_pty(&home, &[BIN, "revoke", "k"], &[], Some("y"));
    assert_eq!(r.code, 0, "{}", r.raw);
    assert_eq!(
        home.cmd().args(["--json", "show", "k"]).json()["status"],
        "revoked"
    );
}

fn first_line(stderr: &str) -> &str {
    stderr.lines().next().unwrap_or("")
}

#[test]
fn errors_people_meet_first_are_one_readable_line() {
    let home = Home::new();
    let err = home.cmd().arg("show").code(2).stderr;
    assert_eq!(
        first_line(&err),
        "keyctl: error: keyctl show needs KEY, a key ID or name: keyctl show <KEY>; `keyctl list` shows them"
    );
    assert!(
        !err.contains("--home"),
        "an option from KEYCTL_HOME shown as required: {err}"
    );
    let err = home.cmd().arg("crate").code(2).stderr;
    assert_eq!(
        first_line(&err),
        "keyctl: error: unknown command 'crate': did you mean create? (`keyctl --help` lists the commands)"
    );
    let err = home.cmd().args(["run", "ci", "env"]).code(2).stderr;
    assert_eq!(
        first_line(&err),
        "keyctl: error: keyctl run: the command to run goes after --: keyctl run [OPTIONS] <KEY> -- <CMD>... (e.g. keyctl run KEY -- env)"
    );
    let err = home
        .cmd()
        .args(["create", "--expires", "1m"])
        .code(2)
        .stderr;
    assert_eq!(
        first_line(&err),
        "keyctl: error: invalid --expires '1m': 'm' could mean minutes or months; write 1min for minutes or 1mo for months; or a date (2027-01-31), an RFC 3339 time, or never"
    );
    // A bare `keyctl` is the short help, the same with and without KEYCTL_HOME.
    let with_home = home.cmd().code(2).stderr;
    let without = home.cmd().env_remove("KEYCTL_HOME").code(2).stderr;
    assert_eq!(with_home, without);
    assert!(
        with_home.contains("Usage: keyctl [OPTIONS] <COMMAND>"),
        "{with_home}"
    );
    // --help teaches with examples.
    let help = home.cmd().args(["create", "--help"]).ok();
    assert!(
        help.contains("Examples:\n  keyctl create --kind api --name ci --expires 90d"),
        "{help}"
    );
}

#[test]
fn what_is_on_screen_is_true() {
    let home = Home::new();
    // create says when the key expires; the file-store warning comes once per home.
    let (code, _, err) = home
        .cmd()
        .args(["create", "--name", "a", "--expires", "90d"])
        .run();
    assert_eq!(code, 0, "{err}");
    assert!(
        err.contains(", expires 20") && err.contains("(in 90 days)"),
        "{err}"
    );
    assert_eq!(
        err.matches("keyctl: warning: secrets are kept in plain text")
            .count(),
        1,
        "{err}"
    );
    let (_, _, err) = home.cmd().args(["create", "--name", "b"]).run();
    assert!(err.contains("never expires"), "{err}");
    assert!(!err.contains("plain text"), "said twice: {err}");
    let doctor = home.cmd().arg("doctor").ok();
    assert!(
        doctor.contains("2 keys keep their secret in plain text"),
        "{doctor}"
    );

    // A revoked key: its secret was deleted, and nothing suggests otherwise.
    let id = home.cmd().args(["--json", "show", "b"]).json()["id"]
        .as_str()
        .unwrap()
        .to_string();
    home.cmd().args(["revoke", "b", "-y"]).ok();
    let err = home.cmd().args(["secret", "b"]).code(8).stderr;
    assert!(
        first_line(&err).starts_with(&format!("keyctl: error: key 'b' ({id}) was revoked on ")),
        "{err}"
    );
    assert!(
        err.contains("its secret was deleted") && !err.contains("--allow-expired"),
        "{err}"
    );
    let show = home.cmd().args(["show", "b"]).ok();
    assert!(
        show.contains("none: revoked on") && show.contains("its secret was deleted"),
        "{show}"
    );
}

/// Round two (issue 23): what a person met at 80 columns.
#[test]
fn tables_keep_their_identifying_column_at_80_columns() {
    let home = Home::new();
    // Two remotes with long URLs: NAME must stay, low-value columns go first.
    create(&home, &["--name", "first"]);
    std::fs::write(
        home.path().join("config.yaml"),
        "remotes:\n  production-keystone:\n    type: keystone\n    url: https://identity.production.example.com:5000/identity/v3\n    auth: password\n    user: deploy-automation-user\n    project: platform-engineering-prod\n    secret_store: file\n  ks2:\n    type: keystone\n    url: https://keystone.staging.internal.example.org/v3\n    auth: password\n    user: someone-else-entirely\n    project: another-long-project-name\n    secret_store: file\n",
    )
    .unwrap();
    let r = in_pty(&home, &[BIN, "remote", "list"], &[], None);
    assert_eq!(r.code, 0, "{}", r.raw);
    let rows = r.rows();
    let screen = rows.join("\n");
    assert!(screen.contains("NAME"), "{screen}");
    assert!(screen.contains("production-keystone"), "{screen}");
    assert!(rows.iter().all(|l| l.chars().count() <= 80), "{screen}");

    // A long key name: the table stays within 80 columns, the ID whole, the name cut.
    let long = "a-very-long-key-name-for-the-production-deploy-pipeline-eu-west";
    let id = create(&home, &["--name", long])["id"]
        .as_str()
        .unwrap()
        .to_string();
    let r = in_pty(&home, &[BIN, "list"], &[], None);
    let rows = r.rows();
    let screen = rows.join("\n");
    assert!(rows.iter().all(|l| l.chars().count() <= 80), "{screen}");
    assert!(rows.iter().any(|l| l.contains(&id)), "{screen}");
    assert!(screen.contains("a-very-long-key"), "{screen}");
    assert!(screen.contains('…'), "{screen}");
    // Piped, the name is whole (scripts get the data, not the fitting).
    let piped = home.cmd().arg("list").ok();
    assert!(piped.contains(long), "{piped}");
}

#[test]
fn a_group_without_subcommand_shows_that_groups_help() {
    let home = Home::new();
    let err = home.cmd().arg("remote").code(2).stderr;
    assert!(err.contains("Usage: keyctl remote"), "{err}");
    assert!(err.contains("add") && err.contains("test"), "{err}");
    assert!(!err.contains("Mint a key"), "top-level help shown: {err}");
}

#[test]
fn list_expiring_answers_with_exit_11_and_no_error_line() {
    let home = Home::new();
    create(&home, &["--name", "soon", "--expires", "3d"]);
    create(&home, &["--name", "later", "--expires", "90d"]);
    let old = create(&home, &["--name", "old", "--expires", "5d"]);
    // Age one key past its expiry, as time would.
    edit_keys(&home, |reg| {
        for k in reg["keys"].as_array_mut().unwrap() {
            if k["id"] == old["id"] {
                k["expires_at"] = "2020-01-01T00:00:00Z".into();
            }
        }
    });
    let out = home.cmd().args(["list", "--expiring", "7d"]).code(11);
    assert!(!out.stderr.contains("error"), "{}", out.stderr);
    assert!(
        out.stderr
            .contains("1 key expires within 7d; 1 key has expired"),
        "{}",
        out.stderr
    );
    assert!(out.stdout.contains("soon") && !out.stdout.contains("later"));
    let q = home.cmd().args(["-q", "list", "--expiring", "7d"]).code(11);
    assert_eq!(q.stderr, "");
}

#[test]
fn the_hidden_prompt_says_what_happened_on_ctrl_d_and_on_empty_enter() {
    let home = Home::new();
    let e = env(&home);
    let e: Vec<(&str, &Path)> = e.iter().map(|(k, v)| (*k, v.as_path())).collect();
    let args = [BIN, "import", "--name", "x", "--id", "abc123"];
    for (bytes, want) in [
        (
            &b"\x04"[..],
            "no secret typed (the prompt was closed with Ctrl-D)",
        ),
        (&b"\r"[..], "no secret typed at the prompt"),
    ] {
        let r = pty::run_typing(
            &args,
            &e,
            &[("KEYCTL_STORE", "file")],
            SIZE,
            Some(pty::Typing {
                marker: ": ",
                bytes,
                hidden_prompt: true,
            }),
            Duration::from_secs(30),
        );
        assert_eq!(r.code, 2, "{}", r.raw);
        let rows = r.rows();
        assert!(
            rows.iter()
                .any(|l| l.starts_with("keyctl: error: ") && l.contains(want)),
            "{}",
            rows.join("\n")
        );
    }
}

#[test]
fn times_for_people_are_to_the_second() {
    let home = Home::new();
    create(&home, &["--name", "t", "--expires", "30d"]);
    let show = home.cmd().args(["show", "t"]).ok();
    let created = show.lines().find(|l| l.starts_with("created")).unwrap();
    let value = created.trim_start_matches("created").trim();
    // "2026-12-05 08:25:39 UTC"
    assert_eq!(value.len(), 23, "{show}");
    assert!(value.ends_with(" UTC") && !value.contains('.'), "{show}");
    assert_eq!(&value[10..11], " ", "{show}");
    // JSON keeps RFC 3339.
    let j = home.cmd().args(["--json", "show", "t"]).json();
    assert!(j["created_at"].as_str().unwrap().contains('T'));
}

/// A home with a Keystone remote `ks` on a port nobody listens on, its credential stored.
fn home_with_dead_remote() -> Home {
    let home = Home::new();
    create(&home, &["--name", "first"]);
    let port = {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    std::fs::write(
        home.path().join("config.yaml"),
        format!("remotes:\n  ks:\n    type: keystone\n    url: http://127.0.0.1:{port}/v3\n    auth: password\n    user: u\n    project: p\n    secret_store: file\n"),
    )
    .unwrap();
    let secrets = home.path().join("secrets.json");
    let mut s: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&secrets).unwrap()).unwrap();
    s["remote:ks"] = "not-a-real-password".into();
    std::fs::write(&secrets, serde_json::to_vec(&s).unwrap()).unwrap();
    home
}

#[test]
fn a_failure_is_said_once_with_a_short_cause() {
    let home = home_with_dead_remote();
    edit_keys(&home, |reg| {
        reg["keys"][0]["remotes"] = serde_json::json!([
            {"remote": "ks", "remote_id": "abc", "pushed_at": "2026-12-01T00:00:00Z"}
        ]);
    });
    for (args, code) in [
        (&["revoke", "first", "-y"][..], 6),
        (&["verify", "first", "--remote", "ks"][..], 6),
    ] {
        let err = home
            .cmd()
            .env("KEYCTL_STORE", "file")
            .args(args)
            .code(code)
            .stderr;
        assert_eq!(err.lines().count(), 1, "{args:?}: {err}");
        assert!(err.starts_with("keyctl: error: "), "{err}");
        assert!(err.contains("connection refused"), "{err}");
        assert!(
            !err.contains("os error") && !err.contains("client error (Connect)"),
            "{err}"
        );
        assert!(!err.contains("warning"), "{err}");
    }
    // verify says the key could not be checked, not that it does not work.
    let err = home
        .cmd()
        .args(["verify", "first", "--remote", "ks"])
        .code(6)
        .stderr;
    assert!(err.contains("could not be verified"), "{err}");
    // -v still has the whole chain of causes.
    let err = home
        .cmd()
        .args(["-v", "verify", "first", "--remote", "ks"])
        .code(6)
        .stderr;
    assert!(err.contains("os error"), "{err}");
}

#[test]
fn an_interrupted_create_says_how_to_finish_it() {
    let home = home_with_dead_remote();
    // What Ctrl-C during `create --name cc --remote ks` leaves: the key, not pushed.
    create(&home, &["--name", "cc"]);
    let err = home
        .cmd()
        .env("KEYCTL_STORE", "file")
        .args(["create", "--name", "cc", "--remote", "ks"])
        .code(4)
        .stderr;
    assert!(
        err.contains("`keyctl push cc --remote ks` finishes an interrupted create"),
        "{err}"
    );
    // Without --remote, the plain refusal.
    let err = home
        .cmd()
        .env("KEYCTL_STORE", "file")
        .args(["create", "--name", "cc"])
        .code(4)
        .stderr;
    assert!(
        err.contains("pick another --name") && !err.contains("push"),
        "{err}"
    );
}

#[test]
fn no_session_bus_says_what_to_do_next() {
    let home = Home::new();
    let err = home
        .cmd()
        .env_remove("DBUS_SESSION_BUS_ADDRESS")
        .args(["--store", "keyring", "create", "--name", "cron"])
        .code(5)
        .stderr;
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.contains("as under cron"), "{err}");
    assert!(
        err.contains("`--store file`") && err.contains("`--store vault`"),
        "{err}"
    );
    // SAFETY: getuid has no preconditions.
    let bus = format!("/run/user/{}/bus", unsafe { libc::getuid() });
    if Path::new(&bus).exists() {
        assert!(
            err.contains(&format!("DBUS_SESSION_BUS_ADDRESS=unix:path={bus}")),
            "{err}"
        );
    } else {
        assert!(err.contains("no session of yours runs a bus now"), "{err}");
    }
    // Nothing recorded for a key whose secret went nowhere.
    let reg = home.path().join("keys.json");
    assert!(
        !reg.exists()
            || home.registry()["keys"]
                .as_array()
                .is_none_or(|k| k.is_empty()),
        "{:?}",
        std::fs::read_to_string(&reg)
    );
}

#[test]
fn token_refuses_an_expired_key_before_any_remote_sees_its_secret() {
    let home = home_with_dead_remote();
    edit_keys(&home, |reg| {
        reg["keys"][0]["expires_at"] = "2020-01-01T00:00:00Z".into();
    });
    // Exit 8 (expired), not 6: the remote (down) was never asked.
    let err = home
        .cmd()
        .args(["token", "first", "--remote", "ks"])
        .code(8)
        .stderr;
    assert!(err.contains("is expired"), "{err}");
    // `secret` says the same.
    home.cmd().args(["secret", "first"]).code(8);
}

/// The round-two messages as a person sees them at 80x24: each failure a few rows, no
/// red error for `list --expiring`'s answer, a group's own help, the next step without
/// a session bus.
#[test]
fn round_two_messages_on_an_80_column_screen() {
    let home = home_with_dead_remote();
    edit_keys(&home, |reg| {
        reg["keys"][0]["remotes"] = serde_json::json!([
            {"remote": "ks", "remote_id": "abc", "pushed_at": "2026-12-01T00:00:00Z"}
        ]);
        reg["keys"][0]["expires_at"] = "2099-01-01T00:00:00Z".into();
    });
    create(&home, &["--name", "soon", "--expires", "3d"]);

    let screen = |args: &[&str], extra: &[(&str, &str)]| {
        let mut argv = vec![BIN];
        argv.extend_from_slice(args);
        let r = in_pty(&home, &argv, extra, None);
        let rows: Vec<String> = r.rows().into_iter().filter(|l| !l.is_empty()).collect();
        (r.code, rows, r)
    };
    // revoke with the remote down: one message, at most 3 rows, the cause at the end.
    let (code, rows, _) = screen(&["revoke", "first", "-y"], &[]);
    assert_eq!(code, 6, "{rows:?}");
    assert!(rows.len() <= 3, "{}", rows.join("\n"));
    assert!(rows[0].starts_with("keyctl: error: "), "{rows:?}");
    assert!(
        rows.last().unwrap().ends_with("connection refused"),
        "{rows:?}"
    );

    // list --expiring: the table and a plain note; nothing red, no "error".
    let (code, rows, r) = screen(&["list", "--expiring", "7d"], &[]);
    assert_eq!(code, 11, "{rows:?}");
    let text = rows.join("\n");
    assert!(!text.contains("error"), "{text}");
    assert!(text.contains("1 key expires within 7d"), "{text}");
    assert_ne!(
        r.color_of("1 key expires"),
        Some(vt100::Color::Idx(1)),
        "{text}"
    );

    // `keyctl remote` alone: that group's help.
    let (code, _, r) = screen(&["remote"], &[]);
    assert_eq!(code, 2);
    // Longer than the screen: the bytes written, not what is left on it.
    assert!(r.raw.contains("Usage: keyctl remote"), "{}", r.raw);

    // No session bus: the next step is on screen, in a few rows.
    let (code, rows, _) = screen(&["--store", "keyring", "create", "--name", "cron"], &[]);
    assert_eq!(code, 5, "{rows:?}");
    assert!(rows.len() <= 5, "{}", rows.join("\n"));
    assert!(rows.concat().contains("`--store file`"), "{rows:?}");
}

/// Changes keys.json as time or another program would (an expiry passed, a link added).
fn edit_keys(home: &Home, f: impl FnOnce(&mut serde_json::Value)) {
    let path = home.path().join("keys.json");
    let mut reg: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
    f(&mut reg);
    std::fs::write(&path, serde_json::to_vec(&reg).unwrap()).unwrap();
}
