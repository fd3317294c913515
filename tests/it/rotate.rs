//! `keyctl rotate` and `keyctl gc`: a successor with the same name, pushed to and
//! verified on a real Keystone, the old key superseded then revoked after its grace
//! period; and every failing step rolled back, checked in the registry, the keyring and
//! Keystone itself.

use crate::support::keystone::{Keystone, User, create_ruled_app_credential, keystone};
use crate::support::*;
use serde_json::Value;

/// The run's Keystone, a new user with `role` there, and a keyring home with remote `ks`
/// for that user and key `app` pushed to it (its `create --json`).
fn app_on_keystone(
    prefix: &str,
    role: &str,
) -> Option<(&'static Keystone, User, KeyringHome, Value)> {
    let ks = keystone()?;
    let user = ks.user(prefix, Some(role));
    let e = KeyringHome::new()?;
    user.add_remote(e.cmd(), "ks");
    let app = e
        .cmd()
        .args(["--json", "create", "--name", "app", "--remote", "ks"])
        .json();
    Some((ks, user, e, app))
}

fn secret_of(e: &KeyringHome, key: &str) -> String {
    e.cmd().args(["secret", key]).ok().trim().to_string()
}

#[test]
fn local_rotation_keeps_the_name_and_gc_revokes_after_the_grace_period() {
    let e = require!(KeyringHome::new());
    let old = json(
        &e.cmd()
            .args([
                "--json",
                "create",
                "--name",
                "svc",
                "--expires",
                "30d",
                "--scope",
                "read",
            ])
            .ok(),
    );
    let old_id = old["id"].as_str().unwrap();
    let config = e.home.dir.path().join("configuration.yml");
    std::fs::write(&config, "# mine\ndata_source x:\n  type: postgres\n").unwrap();
    let w = config.display().to_string();
    // 10 s: the checks below run inside the grace period even on a loaded machine (1 s
    // was not); the one check that needs it is made only while it provably holds.
    let rotated = std::time::Instant::now();
    let out = e
        .cmd()
        .args(["rotate", "svc", "--grace", "10s", "--write", &w])
        .ok();
    assert!(
        out.is_empty(),
        "--write keeps stdout free of the secret: {out}"
    );

    let keys = e.keys();
    assert_eq!(keys.len(), 2);
    let new = keys.iter().find(|k| k["status"] == "active").unwrap();
    let new_id = new["id"].as_str().unwrap();
    assert_eq!(new["name"], "svc");
    assert_eq!(new["scopes"], serde_json::json!(["read"]));
    assert!(new["expires_at"].is_string());
    let old_now = keys.iter().find(|k| k["id"] == old_id).unwrap();
    assert_eq!(old_now["status"], "superseded");
    // The name means the new key; the old one still works by ID during the grace period.
    let new_secret = secret_of(&e, "svc");
    assert_eq!(
        e.ss.secret_tool_lookup(new_id).as_deref(),
        Some(new_secret.as_str())
    );
    assert_eq!(secret_of(&e, old_id), old["secret"].as_str().unwrap());
    let text = std::fs::read_to_string(&config).unwrap();
    assert!(
        text.starts_with("# mine\ndata_source x:\n  type: postgres\n"),
        "{text}"
    );
    assert!(
        text.contains(&new_secret) && text.contains(new_id),
        "{text}"
    );

    // A superseded key is not rotated twice.
    let (code, _, err) = e.cmd().args(["rotate", old_id]).run();
    assert_eq!(code, 8, "{err}");

    // gc before the end of the grace period does nothing; after it, revokes.
    let before_gc = rotated.elapsed();
    e.cmd().args(["gc", "--yes"]).ok();
    if before_gc < std::time::Duration::from_secs(9) {
        assert!(e.ss.secret_tool_lookup(old_id).is_some());
    }
    std::thread::sleep(std::time::Duration::from_millis(11_500).saturating_sub(rotated.elapsed()));
    if e.ss.secret_tool_lookup(old_id).is_some() {
        let (code, _, err) = e.cmd().args(["gc"]).run();
        assert_eq!(code, 10, "gc asks before revoking: {err}");
        e.cmd().args(["rotate", "--finish", "--yes"]).ok();
    }
    let old_now = e.keys().into_iter().find(|k| k["id"] == old_id).unwrap();
    assert_eq!(old_now["status"], "revoked");
    assert!(e.ss.secret_tool_lookup(old_id).is_none());
    assert_eq!(secret_of(&e, "svc"), new_secret);
}

#[test]
fn rotation_on_keystone_pushes_verifies_and_finally_revokes_the_old_credential() {
    let (ks, user, e, old) = require!(app_on_keystone("rot", "admin"));
    let old_id = old["id"].as_str().unwrap().to_string();
    assert_eq!(ks.ec2_of(&user.id).len(), 1);

    let (code, out, err) = e
        .cmd()
        .args(["-v", "--json", "rotate", "app", "--grace", "0s", "--yes"])
        .run();
    assert_eq!(code, 0, "{err}");
    let r = json(out.lines().next().unwrap());
    let new_id = r["id"].as_str().unwrap();
    let new_secret = r["secret"].as_str().unwrap();
    assert_eq!(r["replaces"], old_id.as_str());
    assert!(
        err.contains("ec2tokens"),
        "the new key is verified by a token exchange: {err}"
    );
    assert!(!err.contains(new_secret));
    // Keystone holds the new pair and no longer the old one (grace 0: revoked at once).
    let creds = ks.ec2_of(&user.id);
    assert_eq!(creds, vec![(new_id.to_string(), new_secret.to_string())]);
    let keys = e.keys();
    let old_now = keys.iter().find(|k| k["id"] == old_id.as_str()).unwrap();
    assert_eq!(old_now["status"], "revoked");
    let new = keys.iter().find(|k| k["id"] == new_id).unwrap();
    assert_eq!(new["remotes"][0]["remote"], "ks");
}

#[test]
fn a_failed_push_rolls_back_and_leaves_the_old_key_untouched() {
    let (ks, user, e, old) = require!(app_on_keystone("rotfail", "member"));
    let reg_before = std::fs::read(e.home.path().join("keys.json")).unwrap();

    // The remote's address now points at nothing listening.
    let cfg_path = e.home.path().join("config.yaml");
    let cfg = std::fs::read_to_string(&cfg_path).unwrap();
    std::fs::write(&cfg_path, cfg.replace(&ks.url, "http://127.0.0.1:9")).unwrap();
    let (code, out, err) = e.cmd().args(["rotate", "app"]).run();
    assert_eq!(code, 6, "{err}");
    assert!(out.is_empty());
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(
        err.contains("step 'push to ks'") && err.contains("rolled back"),
        "{err}"
    );
    assert_eq!(
        std::fs::read(e.home.path().join("keys.json")).unwrap(),
        reg_before
    );
    assert_eq!(secret_of(&e, "app"), old["secret"].as_str().unwrap());
    assert_eq!(ks.ec2_of(&user.id).len(), 1);
}

#[test]
fn a_member_remote_verifies_the_new_key_by_listing_it() {
    // A member may not exchange EC2 tokens (Keystone answers 403), so the new key is
    // checked by Keystone listing it instead.
    let (ks, user, e, _) = require!(app_on_keystone("rotver", "member"));
    let (code, _, err) = e.cmd().args(["rotate", "app", "--grace", "1h"]).run();
    assert_eq!(code, 0, "{err}");
    assert!(
        err.contains("HTTP 403") && err.contains("it lists the key"),
        "{err}"
    );
    let new_id = e
        .keys()
        .into_iter()
        .find(|k| k["status"] == "active")
        .unwrap()["id"]
        .clone();
    let on_keystone: Vec<String> = ks.ec2_of(&user.id).into_iter().map(|(a, _)| a).collect();
    assert_eq!(on_keystone.len(), 2, "old and new during the grace period");
    assert!(on_keystone.iter().any(|a| *a == new_id));
}

/// `e`'s `show KEY --json`.
fn show(e: &KeyringHome, key: &str) -> Value {
    e.cmd().args(["--json", "show", key]).json()
}

/// A fresh folder in the home for the files keys are written to.
fn deploy_dir(e: &KeyringHome) -> std::path::PathBuf {
    let dir = e.home.dir.path().join("deploy");
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

#[test]
fn rotate_rewrites_every_file_the_key_was_written_to_and_reports_a_vanished_one() {
    let e = require!(KeyringHome::new());
    let dir = deploy_dir(&e);
    let soda = dir.join("configuration.yml");
    std::fs::write(&soda, "# mine\ndata_source x:\n  type: postgres\n").unwrap();
    let env = dir.join("app.env");
    std::fs::write(&env, "# not keyctl's\nexport OTHER=1\n").unwrap();
    let gone = dir.join("gone.json");
    let s = |p: &std::path::Path| p.display().to_string();

    let old = e
        .cmd()
        .args(["--json", "create", "--name", "svc", "--write", &s(&soda)])
        .json();
    let old_id = old["id"].as_str().unwrap().to_string();
    assert!(old["secret"].is_null(), "the secret went to the file");
    let write_env = || {
        e.cmd()
            .args([
                "config",
                "svc",
                "-o",
                "env",
                "--export",
                "--write",
                &s(&env),
            ])
            .ok()
    };
    write_env();
    e.cmd()
        .args(["config", "svc", "-o", "json", "--write", &s(&gone)])
        .ok();
    // Written twice: recorded once.
    write_env();
    let env_text = std::fs::read_to_string(&env).unwrap();
    assert!(
        env_text.starts_with("# not keyctl's\nexport OTHER=1\n# >>> keyctl key svc >>>\n"),
        "{env_text}"
    );
    assert_eq!(
        env_text.matches(">>> keyctl key svc").count(),
        1,
        "{env_text}"
    );

    let targets = show(&e, "svc")["targets"].clone();
    let listed: Vec<(String, String)> = targets
        .as_array()
        .unwrap()
        .iter()
        .map(|t| {
            (
                t["path"].as_str().unwrap().to_string(),
                t["format"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    assert_eq!(
        listed,
        vec![
            (s(&soda), "yaml".into()),
            (s(&gone), "json".into()),
            (s(&env), "env".into()),
        ]
    );
    assert_eq!(targets[2]["export"], true, "the render choice is recorded");
    let shown = e.cmd().args(["show", "svc"]).ok();
    assert!(
        shown.contains("delivered to") && shown.contains(&s(&env)),
        "{shown}"
    );
    let reg = std::fs::read_to_string(e.home.path().join("keys.json")).unwrap();
    let secret = secret_of(&e, "svc");
    assert!(!reg.contains(&secret), "no secret in the registry");

    std::fs::remove_file(&gone).unwrap();
    let (code, out, err) = e
        .cmd()
        .args(["--json", "rotate", "svc", "--grace", "1h"])
        .run();
    assert_eq!(code, 0, "{err}");
    let r = json(&out);
    let new_id = r["id"].as_str().unwrap();
    let new_secret = secret_of(&e, "svc");
    assert_eq!(r["targets"].as_array().unwrap().len(), 2, "{r}");
    let warnings = r["warnings"].as_array().unwrap();
    assert_eq!(warnings.len(), 1, "{r}");
    assert!(warnings[0].as_str().unwrap().contains("gone.json"), "{r}");
    assert!(
        err.contains("gone.json"),
        "a warning line on stderr too: {err}"
    );
    assert!(!gone.exists(), "a vanished target is not made again");

    for f in [&soda, &env] {
        let text = std::fs::read_to_string(f).unwrap();
        assert!(
            text.contains(new_id) && text.contains(&new_secret),
            "{text}"
        );
        assert!(!text.contains(&old_id), "{text}");
    }
    let soda_text = std::fs::read_to_string(&soda).unwrap();
    assert!(
        soda_text.starts_with("# mine\ndata_source x:\n  type: postgres\n"),
        "{soda_text}"
    );
    let env_text = std::fs::read_to_string(&env).unwrap();
    assert!(
        env_text.starts_with("# not keyctl's\nexport OTHER=1\n"),
        "{env_text}"
    );
    assert!(
        env_text.contains(&format!("export SODA_API_KEY_ID={new_id}")),
        "{env_text}"
    );

    // The successor owns the targets now; the old key keeps none.
    assert_eq!(show(&e, "svc")["targets"].as_array().unwrap().len(), 2);
    assert!(show(&e, &old_id)["targets"].is_null());
}

#[test]
fn a_target_that_cannot_take_the_new_key_rolls_the_rotation_back_and_leaves_every_file() {
    let e = require!(KeyringHome::new());
    let dir = deploy_dir(&e);
    let a = dir.join("a.env");
    let b = dir.join("b.env");
    let s = |p: &std::path::Path| p.display().to_string();
    let old = e.cmd().args(["--json", "create", "--name", "svc"]).json();
    let old_id = old["id"].as_str().unwrap();
    for f in [&a, &b] {
        e.cmd()
            .args(["config", "svc", "-o", "env", "--write", &s(f)])
            .ok();
    }
    // b.env became a YAML document (still naming the key): not shell lines keyctl edits.
    std::fs::write(&b, format!("key: {old_id}\n")).unwrap();
    let a_before = std::fs::read(&a).unwrap();
    let reg_before = std::fs::read(e.home.path().join("keys.json")).unwrap();
    let (code, out, err) = e.cmd().args(["rotate", "svc", "--grace", "1h"]).run();
    assert_eq!(code, 2, "{err}");
    assert!(out.is_empty());
    assert!(
        err.contains("deliver the new key") && err.contains("rolled back") && err.contains("b.env"),
        "{err}"
    );
    assert_eq!(std::fs::read(&a).unwrap(), a_before);
    assert_eq!(
        std::fs::read_to_string(&b).unwrap(),
        format!("key: {old_id}\n")
    );
    assert_eq!(
        std::fs::read(e.home.path().join("keys.json")).unwrap(),
        reg_before
    );
    assert_eq!(secret_of(&e, "svc"), old["secret"].as_str().unwrap());
}

#[test]
fn an_application_credential_is_rotated_into_one_with_the_same_rules_and_an_older_record_is_refused()
 {
    let ks = require!(keystone());
    let e = require!(KeyringHome::new());
    let user = ks.user("rotac", Some("member"));
    user.add_remote(e.cmd(), "ks");
    let old = create_ruled_app_credential(e.cmd(), e.home.dir.path(), "ks", "ruled");
    let old_id = old["id"].as_str().unwrap();
    let ac = |id: &str| {
        ks.api(
            "GET",
            &format!("/v3/users/{}/application_credentials/{id}", user.id),
            None,
        )
    };

    let out = e
        .cmd()
        .args(["--json", "--yes", "rotate", "ruled", "--grace", "0s"])
        .ok();
    // The rotation, then (grace 0) the old key's revocation.
    let r = json(out.lines().next().unwrap());
    let new_id = r["id"].as_str().unwrap();
    let (st, v) = ac(new_id);
    assert_eq!(st, 200, "{v}");
    let got = &v["application_credential"];
    assert_eq!(got["unrestricted"], true);
    assert_eq!(got["access_rules"][0]["service"], "identity");
    assert_eq!(got["access_rules"][0]["method"], "GET");
    assert_eq!(got["access_rules"][0]["path"], "/v3/users/*");
    assert_eq!(ac(old_id).0, 404, "grace 0: the old one is deleted at once");
    assert_eq!(secret_of(&e, "ruled"), r["secret"].as_str().unwrap());

    // A record an older keyctl wrote has no policy: refused with the steps, nothing made.
    let path = e.home.path().join("keys.json");
    let mut reg: Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
    for k in reg["keys"].as_array_mut().unwrap() {
        k.as_object_mut().unwrap().remove("app_credential");
    }
    std::fs::write(&path, serde_json::to_vec_pretty(&reg).unwrap()).unwrap();
    let before = std::fs::read(&path).unwrap();
    let (code, _, err) = e.cmd().args(["rotate", "ruled"]).run();
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains("older keyctl")
            && err.contains("keyctl create --remote ks --app-credential --name NEW"),
        "{err}"
    );
    assert_eq!(std::fs::read(&path).unwrap(), before);
    let (_, list) = ks.api(
        "GET",
        &format!("/v3/users/{}/application_credentials", user.id),
        None,
    );
    assert_eq!(list["application_credentials"].as_array().unwrap().len(), 1);
}

#[test]
fn gc_keeps_a_key_whose_successor_was_never_verified_until_verify_says_it_works() {
    let (_ks, _user, e, old) = require!(app_on_keystone("rotgc", "admin"));
    let old_id = old["id"].as_str().unwrap();
    assert!(show(&e, "app")["last_verified"].is_null());
    e.cmd()
        .args(["rotate", "app", "--no-verify", "--grace", "1s"])
        .ok();
    let new_id = show(&e, "app")["id"].as_str().unwrap().to_string();
    assert!(show(&e, "app")["last_verified"].is_null());
    std::thread::sleep(std::time::Duration::from_millis(1_200));
    let (code, _, err) = e.cmd().args(["--yes", "gc"]).run();
    assert_eq!(code, 13, "{err}");
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(
        err.contains("never verified") && err.contains(&format!("keyctl verify {new_id}")),
        "{err}"
    );
    assert_eq!(
        show(&e, old_id)["status"],
        "superseded",
        "the old key is kept"
    );

    // verify records when the key last worked; then gc revokes the old key.
    e.cmd().args(["verify", "app"]).ok();
    let verified = show(&e, "app")["last_verified"].clone();
    assert!(verified.as_str().unwrap().ends_with('Z'), "{verified}");
    let shown = e.cmd().args(["show", "app"]).ok();
    assert!(!shown.contains("verified     never"), "{shown}");
    e.cmd().args(["--yes", "gc"]).ok();
    assert_eq!(show(&e, old_id)["status"], "revoked");

    // --unverified says otherwise explicitly.
    e.cmd()
        .args(["rotate", "app", "--no-verify", "--grace", "1s"])
        .ok();
    std::thread::sleep(std::time::Duration::from_millis(1_200));
    e.cmd().args(["--yes", "gc", "--unverified"]).ok();
    assert_eq!(show(&e, &new_id)["status"], "revoked");
}

/// Moves key `name`'s creation back by `hours` in the registry (a policy falls due).
fn age(e: &KeyringHome, name: &str, hours: i64) {
    let path = e.home.path().join("keys.json");
    let mut reg: Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
    let then = time::OffsetDateTime::now_utc() - time::Duration::hours(hours);
    for k in reg["keys"].as_array_mut().unwrap() {
        if k["name"] == name {
            k["created_at"] = then
                .format(&time::format_description::well_known::Rfc3339)
                .unwrap()
                .into();
        }
    }
    std::fs::write(&path, serde_json::to_vec_pretty(&reg).unwrap()).unwrap();
}

#[test]
fn rotate_due_rotates_what_its_policy_says_is_due_quietly_otherwise_and_exits_14_on_a_partial_failure()
 {
    let e = require!(KeyringHome::new());
    let create = |name: &str, every: Option<&str>| {
        let mut args = vec!["create", "--name", name];
        if let Some(d) = every {
            args.extend(["--rotate-every", d]);
        }
        e.cmd().args(args).ok();
    };
    create("a", Some("90d"));
    create("b", Some("1h"));
    create("c", None);
    create("d", Some("2h"));
    assert_eq!(show(&e, "a")["rotate_every"], "90d");
    assert!(show(&e, "c")["rotate_every"].is_null());

    // Nothing due: nothing said at all.
    let (code, out, err) = e.cmd().args(["rotate", "--due"]).run();
    assert_eq!((code, out.as_str(), err.as_str()), (0, "", ""));

    // b falls due and rotates (its file rewritten); a and c are left alone.
    let dir = deploy_dir(&e);
    let b_env = dir.join("b.env");
    e.cmd()
        .args([
            "config",
            "b",
            "-o",
            "env",
            "--write",
            b_env.to_str().unwrap(),
        ])
        .ok();
    let (a_id, b_id) = (show(&e, "a")["id"].clone(), show(&e, "b")["id"].clone());
    age(&e, "b", 2);
    let listed = e.cmd().args(["list"]).ok();
    assert!(
        listed.contains("\t1h, due "),
        "a ROTATE column (TSV when piped): {listed}"
    );
    let (code, out, err) = e.cmd().args(["rotate", "--due", "--grace", "1h"]).run();
    assert_eq!(code, 0, "{err}");
    assert!(out.is_empty(), "no snippet, no secret: {out}");
    assert!(
        err.contains("rotate --due: 1 of 1 due keys rotated (b)"),
        "{err}"
    );
    let b_new = show(&e, "b");
    assert_ne!(b_new["id"], b_id);
    assert_eq!(
        b_new["rotate_every"], "1h",
        "the successor keeps the policy"
    );
    assert!(
        std::fs::read_to_string(&b_env)
            .unwrap()
            .contains(b_new["id"].as_str().unwrap())
    );
    assert_eq!(show(&e, "a")["id"], a_id);

    // The policy is changed with rotate KEY --every, cleared with never.
    e.cmd().args(["rotate", "a", "--every", "30d"]).ok();
    assert_eq!(show(&e, "a")["rotate_every"], "30d");
    assert_eq!(show(&e, "a")["id"], a_id, "--every does not rotate");
    let (code, _, err) = e.cmd().args(["rotate", "a", "--every", "5min"]).run();
    assert_eq!(code, 2, "{err}");
    e.cmd().args(["rotate", "a", "--every", "never"]).ok();
    assert!(show(&e, "a")["rotate_every"].is_null());

    // a falls due and rotates; d falls due but its file cannot take the new key: 14.
    e.cmd().args(["rotate", "a", "--every", "1h"]).ok();
    let d_env = dir.join("d.env");
    e.cmd()
        .args([
            "config",
            "d",
            "-o",
            "env",
            "--write",
            d_env.to_str().unwrap(),
        ])
        .ok();
    let d_id = show(&e, "d")["id"].as_str().unwrap().to_string();
    std::fs::write(&d_env, format!("key: {d_id}\n")).unwrap();
    age(&e, "a", 2);
    age(&e, "d", 3);
    let (code, out, err) = e
        .cmd()
        .args(["--json", "rotate", "--due", "--grace", "1h"])
        .run();
    assert_eq!(code, 14, "{err}");
    let r = json(&out);
    assert_eq!(r["rotated"][0]["name"], "a", "{r}");
    assert_eq!(r["failed"][0]["name"], "d", "{r}");
    assert!(
        r["failed"][0]["error"].as_str().unwrap().contains("d.env"),
        "{r}"
    );
    assert!(
        !out.contains(&secret_of(&e, "a")),
        "no secret in --due's JSON"
    );
    assert!(
        err.lines()
            .last()
            .unwrap()
            .contains("1 of 2 due keys rotated (a); failed: d"),
        "{err}"
    );
    assert_eq!(show(&e, "d")["id"], d_id.as_str(), "d was rolled back");
}

#[test]
fn an_ec2_credential_written_at_create_is_rewritten_by_its_rotation() {
    let ks = require!(keystone());
    let e = require!(KeyringHome::new());
    let user = ks.user("rotec2", Some("admin"));
    user.add_remote(e.cmd(), "ks");
    let file = e.home.dir.path().join("s3.env");
    std::fs::write(&file, "export AWS_DEFAULT_REGION=RegionOne\n").unwrap();
    let c = e
        .cmd()
        .args([
            "--json",
            "create",
            "--name",
            "s3",
            "--remote",
            "ks",
            "--write",
            file.to_str().unwrap(),
        ])
        .json();
    let old_id = c["id"].as_str().unwrap();
    assert!(c["secret"].is_null(), "{c}");
    let text = std::fs::read_to_string(&file).unwrap();
    assert!(
        text.contains(&format!("export AWS_ACCESS_KEY_ID={old_id}")),
        "{text}"
    );
    let (code, out, err) = e.cmd().args(["rotate", "s3", "--grace", "1h"]).run();
    assert_eq!(code, 0, "{err}");
    assert!(
        out.is_empty(),
        "its file holds the new key; nothing printed: {out}"
    );
    let new_id = show(&e, "s3")["id"].as_str().unwrap().to_string();
    let text = std::fs::read_to_string(&file).unwrap();
    assert!(
        text.starts_with("export AWS_DEFAULT_REGION=RegionOne\n"),
        "{text}"
    );
    assert!(
        text.contains(&format!("export AWS_ACCESS_KEY_ID={new_id}")) && !text.contains(old_id),
        "{text}"
    );
    let (acc, secret) = ks
        .ec2_of(&user.id)
        .into_iter()
        .find(|(a, _)| *a == new_id)
        .unwrap();
    assert!(
        text.contains(&format!("AWS_SECRET_ACCESS_KEY='{secret}'")),
        "{acc}"
    );
}

#[test]
fn import_writes_and_remembers_its_file_and_a_bad_file_keeps_nothing() {
    let e = require!(KeyringHome::new());
    let dir = deploy_dir(&e);
    let conf = dir.join("configuration.yml");
    std::fs::write(&conf, "data_source x:\n  type: postgres\n").unwrap();
    let secret = "q7Rk2pXz9LmN4vBt8Wc1Hd6Jf3Gs5Ya0";
    let bad = dir.join("bad.yml");
    std::fs::write(&bad, "- a list\n").unwrap();
    let (code, _, err) = e
        .cmd()
        .args(["import", "--name", "ui", "--id", "ab12cd34ef56", "--write"])
        .arg(&bad)
        .stdin(secret)
        .run();
    assert_eq!(code, 2, "{err}");
    assert!(e.keys().is_empty(), "a bad FILE keeps nothing");
    let k = e
        .cmd()
        .args([
            "--json",
            "import",
            "--name",
            "ui",
            "--id",
            "ab12cd34ef56",
            "--write",
        ])
        .arg(&conf)
        .stdin(secret)
        .json();
    assert_eq!(
        k["targets"][0]["path"],
        conf.display().to_string().as_str(),
        "{k}"
    );
    let text = std::fs::read_to_string(&conf).unwrap();
    assert!(
        text.starts_with("data_source x:\n") && text.contains(secret),
        "{text}"
    );
}
