//! The proof that a rotation is invisible to what uses the key: a consumer that logs in
//! to the real Keystone every 200 ms with the application credential it reads afresh,
//! each time, from the clouds.yaml keyctl wrote (openstacksdk's own clouds.yaml loader
//! and keystoneauth, from the openstack CLI's venv, `KEYCTL_TEST_OPENSTACK`) runs through
//! `keyctl rotate --grace` and the `keyctl gc` after it: no login fails, and afterwards the
//! old credential no longer logs in. The figures (logins, failures, the longest gap
//! between two successful logins) are printed for the record.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use crate::support::keystone::keystone;
use crate::support::openbao::wait_until;
use crate::support::*;
use serde_json::Value;

/// `loop FILE CLOUD STOP PROGRESS`: log in every 200 ms until STOP exists, keeping counts
/// in PROGRESS and printing them as JSON at the end. `once FILE CLOUD`: one login, exit 0
/// if it worked.
const CONSUMER: &str = r#"
import json, os, sys, time
import openstack.config

def login(path, cloud):
    cfg = openstack.config.OpenStackConfig(config_files=[path], vendor_files=[])
    return cfg.get_one(cloud=cloud).get_session().get_token()

mode, path, cloud = sys.argv[1:4]
if mode == "once":
    try:
        login(path, cloud)
        print("ok")
        sys.exit(0)
    except Exception as e:
        print(f"{type(e).__name__}: {e}")
        sys.exit(1)
stop, progress = sys.argv[4:6]
ok = failed = 0
last = None
gap = 0.0
errors = []
t0 = time.monotonic()
while not os.path.exists(stop):
    start = time.monotonic()
    try:
        login(path, cloud)
        now = time.monotonic()
        if last is not None:
            gap = max(gap, now - last)
        last = now
        ok += 1
    except Exception as e:
        failed += 1
        errors.append(f"{time.monotonic() - t0:.2f}s {type(e).__name__}: {str(e)[:200]}")
    with open(progress + ".tmp", "w") as f:
        json.dump({"ok": ok, "failed": failed}, f)
    os.replace(progress + ".tmp", progress)
    time.sleep(max(0.0, 0.2 - (time.monotonic() - start)))
print(json.dumps({"ok": ok, "failed": failed, "longest_gap_s": round(gap, 3),
                  "seconds": round(time.monotonic() - t0, 1), "errors": errors[:20]}))
"#;

/// The openstack CLI venv's python (openstacksdk, keystoneauth).
fn sdk_python() -> Option<PathBuf> {
    Some(
        need("python-openstackclient", "KEYCTL_TEST_OPENSTACK")?
            .parent()?
            .join("python"),
    )
}

fn progress(file: &Path) -> (u64, u64) {
    let v: Value = std::fs::read(file)
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
        .unwrap_or_default();
    (
        v["ok"].as_u64().unwrap_or(0),
        v["failed"].as_u64().unwrap_or(0),
    )
}

#[test]
fn a_consumer_logging_in_every_200ms_from_the_written_clouds_yaml_never_fails_through_rotate_and_gc()
 {
    let ks = require!(keystone());
    let python = require!(sdk_python());
    let e = require!(KeyringHome::new());
    let user = ks.user("proof", Some("member"));
    user.add_remote(e.cmd(), "ks");
    let work = e.home.dir.path().join("work");
    std::fs::create_dir_all(&work).unwrap();
    std::fs::create_dir_all(e.home.dir.path().join("user")).unwrap();
    let s = |p: &Path| p.display().to_string();

    // A clouds.yaml with another cloud in it; keyctl adds its entry and keeps that one.
    let clouds = work.join("clouds.yaml");
    std::fs::write(
        &clouds,
        "clouds:\n  other:\n    auth_type: password\n    auth:\n      auth_url: http://other.invalid/v3\n",
    )
    .unwrap();
    let created = e
        .cmd()
        .args([
            "--json",
            "create",
            "--remote",
            "ks",
            "--app-credential",
            "--name",
            "ci",
            "--role",
            "member",
            "--expires",
            "30d",
            "--write",
            &s(&clouds),
        ])
        .json();
    let old_id = created["id"].as_str().unwrap().to_string();
    assert!(created["secret"].is_null(), "the secret went to the file");
    let old_copy = work.join("old-clouds.yaml");
    std::fs::copy(&clouds, &old_copy).unwrap();

    let script = work.join("consumer.py");
    std::fs::write(&script, CONSUMER).unwrap();
    let (stop, prog) = (work.join("stop"), work.join("progress.json"));
    let mut consumer = e
        .home
        .cmd_of(&python)
        .args([
            s(&script),
            "loop".into(),
            s(&clouds),
            "ci".into(),
            s(&stop),
            s(&prog),
        ])
        .command();
    consumer
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    let consumer = consumer.spawn().expect("start the consumer");
    wait_until(
        Duration::from_secs(60),
        "the consumer's first logins",
        || progress(&prog).0 >= 5,
    );
    assert_eq!(progress(&prog).1, 0, "logins failed before the rotation");

    let (code, out, err) = e
        .cmd()
        .args(["--json", "rotate", "ci", "--grace", "5s"])
        .run();
    assert_eq!(code, 0, "{err}");
    let rotated = Instant::now();
    let r = json(&out);
    let new_id = r["id"].as_str().unwrap().to_string();
    assert_ne!(new_id, old_id);
    assert_eq!(r["targets"][0]["path"], s(&clouds).as_str(), "{r}");
    let text = std::fs::read_to_string(&clouds).unwrap();
    assert!(text.contains(&new_id) && !text.contains(&old_id), "{text}");
    assert!(
        text.contains("other.invalid"),
        "the other cloud is kept: {text}"
    );

    // The successor is what the old one was: same user, roles, restriction, lifetime.
    let ac = |id: &str| {
        let (st, v) = ks.api(
            "GET",
            &format!("/v3/users/{}/application_credentials/{id}", user.id),
            None,
        );
        (st, v["application_credential"].clone())
    };
    let (_, old_ac) = ac(&old_id);
    let (st, new_ac) = ac(&new_id);
    assert_eq!(st, 200, "{new_ac}");
    let roles = |v: &Value| {
        let mut r: Vec<String> = v["roles"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["name"].as_str().unwrap().to_string())
            .collect();
        r.sort();
        r
    };
    assert_eq!(roles(&new_ac), roles(&old_ac));
    assert_eq!(new_ac["unrestricted"], false);
    assert_eq!(new_ac["project_id"], old_ac["project_id"]);
    assert!(new_ac["expires_at"].as_str().unwrap() > old_ac["expires_at"].as_str().unwrap());

    // After the grace period, gc deletes the old credential on Keystone.
    std::thread::sleep(Duration::from_millis(6_000).saturating_sub(rotated.elapsed()));
    e.cmd().args(["--yes", "gc"]).ok();
    let old_now = e
        .keys()
        .into_iter()
        .find(|k| k["id"] == old_id.as_str())
        .unwrap();
    assert_eq!(old_now["status"], "revoked");
    assert_eq!(ac(&old_id).0, 404);
    // The consumer goes on, on the new credential alone.
    let after_gc = progress(&prog).0;
    wait_until(Duration::from_secs(30), "logins after gc", || {
        progress(&prog).0 >= after_gc + 10
    });
    std::fs::write(&stop, "").unwrap();
    let o = consumer.wait_with_output().unwrap();
    let report = json(&String::from_utf8_lossy(&o.stdout));
    eprintln!(
        "rotation proof: {} logins in {} s, {} failed, longest gap between two successful logins {} s",
        report["ok"], report["seconds"], report["failed"], report["longest_gap_s"]
    );
    assert_eq!(
        report["failed"],
        0,
        "{report}\n{}",
        String::from_utf8_lossy(&o.stderr)
    );
    assert!(report["ok"].as_u64().unwrap() >= 25, "{report}");

    // The old credential, from the file as it was, no longer logs in; the new one does.
    let once = |file: &Path| {
        e.home
            .cmd_of(&python)
            .args([s(&script), "once".into(), s(file), "ci".into()])
            .run()
    };
    let (code, out, _) = once(&old_copy);
    assert_eq!(code, 1, "the old credential still logs in: {out}");
    // Keystone answers a login with a deleted application credential 404 ("Could not find
    // Application Credential"), a wrong secret 401.
    assert!(
        out.contains("Could not find Application Credential") || out.contains("Unauthorized"),
        "{out}"
    );
    assert_eq!(once(&clouds).0, 0);
}

/// The same for consumers that read the key by name from keyctl itself: `keyctl token
/// NAME` (Keystone's ec2tokens exchange with the stored EC2 credential) every 200 ms
/// through `rotate --grace` and `gc`. The name means the old key until the successor is
/// pushed, verified and delivered, so no exchange fails.
#[test]
fn a_consumer_exchanging_the_key_by_name_every_200ms_never_fails_through_rotate_and_gc() {
    let ks = require!(keystone());
    let e = Arc::new(require!(KeyringHome::new()));
    let user = ks.user("proofname", Some("admin"));
    user.add_remote(e.cmd(), "ks");
    let old = e
        .cmd()
        .args(["--json", "create", "--name", "app", "--remote", "ks"])
        .json();
    let old_id = old["id"].as_str().unwrap().to_string();

    let stop = Arc::new(AtomicBool::new(false));
    let consumer = {
        let (e, stop) = (e.clone(), stop.clone());
        std::thread::spawn(move || {
            let mut seen: Vec<(Instant, Result<(), String>)> = Vec::new();
            while !stop.load(Ordering::Relaxed) {
                let t = Instant::now();
                let (code, _, err) = e.cmd().args(["token", "app", "--remote", "ks"]).run();
                seen.push((
                    Instant::now(),
                    if code == 0 {
                        Ok(())
                    } else {
                        Err(format!("exit {code}: {err}"))
                    },
                ));
                std::thread::sleep(Duration::from_millis(200).saturating_sub(t.elapsed()));
            }
            seen
        })
    };
    std::thread::sleep(Duration::from_secs(1));
    e.cmd().args(["rotate", "app", "--grace", "3s"]).ok();
    let rotated = Instant::now();
    std::thread::sleep(Duration::from_millis(3_500).saturating_sub(rotated.elapsed()));
    e.cmd().args(["--yes", "gc"]).ok();
    std::thread::sleep(Duration::from_secs(1));
    stop.store(true, Ordering::Relaxed);
    let seen = consumer.join().unwrap();

    let failures: Vec<&String> = seen.iter().filter_map(|(_, r)| r.as_ref().err()).collect();
    let ok: Vec<Instant> = seen
        .iter()
        .filter(|(_, r)| r.is_ok())
        .map(|(t, _)| *t)
        .collect();
    let gap = ok.windows(2).map(|w| w[1] - w[0]).max().unwrap_or_default();
    eprintln!(
        "rotation proof (by name): {} exchanges, {} failed, longest gap between two successful exchanges {:.3} s",
        seen.len(),
        failures.len(),
        gap.as_secs_f64()
    );
    assert!(failures.is_empty(), "{failures:?}");
    assert!(seen.len() >= 10, "{}", seen.len());
    // The old credential is gone from Keystone.
    assert!(ks.ec2_of(&user.id).iter().all(|(a, _)| *a != old_id));
}
