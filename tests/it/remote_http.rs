//! The `http` remote's shipped profiles on the services' real contracts
//! (`notes/real-contracts.md`):
//! - SODA Multicloud, against a stand-in that does what sodafoundation/strato's code does
//!   (`api/pkg/aksk/router.go`, `api/pkg/aksk/service.go`,
//!   `aksk/pkg/iam/driver/keystone/keystone.go`): it mints AK/SK pairs and keeps them as
//!   ec2 credentials of the user in the **real Keystone** the tests run, lists them as a
//!   JSON array, deletes *every* credential of the user on `DELETE .../aksks/{user}` and
//!   answers errors in `text/plain`;
//! - OVH Data Platform IAM ("API Reference: Identity Access Manager"): `POST /iam/login`
//!   body {auth_mode, apikey, secretkey, app_id}, reply {uid, user, firstname, lastname,
//!   civility, login, password_renew, password_expiration, token} (no expiry), and
//!   `DELETE /iam/logout?app_id=..&token=..`;
//! - a server that echoes the request in a plain-text error, for the masking of secrets.

use std::sync::{Arc, Mutex};

use crate::support::fake_http::{FakeServer, Request, Response};
use crate::support::keystone::{User, keystone};
use crate::support::*;
use serde_json::{Value, json};

fn text(status: u16, body: &str) -> Response {
    Response {
        status,
        headers: vec![("Content-Type".into(), "text/plain; charset=utf-8".into())],
        body: body.as_bytes().to_vec(),
        delay: std::time::Duration::ZERO,
    }
}

const B32: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
const B62: &[u8] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

fn random(alphabet: &[u8], n: usize) -> String {
    use std::time::{SystemTime, UNIX_EPOCH};
    static SEQ: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);
    let mut x = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64
        ^ SEQ.fetch_add(0x9E37_79B9_7F4A_7C15, std::sync::atomic::Ordering::SeqCst);
    (0..n)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            alphabet[(x % alphabet.len() as u64) as usize] as char
        })
        .collect()
}

/// Every request the stand-in saw, and what broke strato's contract.
#[derive(Default)]
struct Seen {
    user_wide_deletes: usize,
    violations: Vec<String>,
}

/// SODA Multicloud's AK/SK API as strato implements it, on the real Keystone.
fn multicloud(seen: Arc<Mutex<Seen>>) -> FakeServer {
    FakeServer::start(move |r| {
        let ks = keystone::started();
        let Some(token) = r.header("x-auth-token") else {
            return text(401, "Unauthorized: no X-Auth-Token");
        };
        // strato has Keystone check the token.
        let (status, _) = ks.api_as(token, "GET", "/v3/auth/projects", None);
        if status != 200 {
            return text(401, "Unauthorized: invalid token");
        }
        let parts: Vec<&str> = r.path.trim_start_matches('/').split('/').collect();
        match (r.method.as_str(), parts.as_slice()) {
            ("POST", ["v1", project, "aksks"]) => {
                // Decoded flat; the nested {"credential": ...} form has no projectId.
                let b: Value = serde_json::from_str(&r.body).unwrap_or(Value::Null);
                let (Some(p), Some(u)) = (b["project_id"].as_str(), b["user_id"].as_str()) else {
                    seen.lock()
                        .unwrap()
                        .violations
                        .push(format!("body {}", r.body));
                    return text(400, "projectId is blank");
                };
                if p != *project {
                    return text(400, "project_id does not match the path");
                }
                let access = random(B32, 16);
                let secret = random(B62, 32);
                let blob = json!({"access": access, "secret": secret}).to_string();
                let (s, v) = ks.api(
                    "POST",
                    "/v3/credentials",
                    Some(json!({"credential": {"type": "ec2", "user_id": u,
                        "project_id": p, "blob": blob}})),
                );
                if s != 201 {
                    return text(500, &format!("keystone said {s}: {v}"));
                }
                Response::json(200, json!({"access_key": access, "secret_key": secret}))
            }
            ("GET", ["v1", project, "aksks", user]) => {
                let list: Vec<Value> = ks
                    .ec2_of(user)
                    .into_iter()
                    .map(|(a, s)| {
                        json!({"project_id": project, "user_id": user, "type": "ec2",
                            "blob": {"access_key": a, "secret_key": s}})
                    })
                    .collect();
                Response::json(200, Value::Array(list))
            }
            ("DELETE", ["v1", _, "aksks", user]) => {
                // Every credential of the user, whatever it is; 200 either way.
                seen.lock().unwrap().user_wide_deletes += 1;
                let (_, v) = ks.api("GET", &format!("/v3/credentials?user_id={user}"), None);
                for c in v["credentials"].as_array().into_iter().flatten() {
                    let id = c["id"].as_str().unwrap();
                    ks.api("DELETE", &format!("/v3/credentials/{id}"), None);
                }
                Response::json(200, json!({}))
            }
            _ => {
                seen.lock()
                    .unwrap()
                    .violations
                    .push(format!("{} {}", r.method, r.path));
                text(404, "404 page not found")
            }
        }
    })
}

/// Remote `mc`: the multicloud profile at `url`, logged in through Keystone remote `ks`.
fn add_multicloud(e: &KeyringHome, url: &str) {
    e.cmd()
        .args([
            "remote",
            "add",
            "mc",
            "--type",
            "http",
            "--profile",
            "multicloud",
            "--auth-remote",
            "ks",
            "--url",
            url,
        ])
        .code(0);
}

#[test]
fn multicloud_revoke_takes_exactly_one_key_and_list_agrees_with_keystone() {
    let ks = require!(keystone());
    let seen = Arc::new(Mutex::new(Seen::default()));
    let server = multicloud(seen.clone());
    let user = ks.user("mc", Some("member"));
    let admin = ks.user("mcadmin", Some("admin"));
    let e = require!(KeyringHome::new());
    user.add_remote(e.cmd(), "ks");
    admin.add_remote(e.cmd(), "ksadmin");
    add_multicloud(&e, &server.url);

    let out = e
        .cmd()
        .args([
            "--json",
            "create",
            "--name",
            "mc1",
            "--remote",
            "mc",
            "--server-side",
        ])
        .ok();
    let mc1 = json(&out)["id"].as_str().unwrap().to_string();
    let out = e
        .cmd()
        .args([
            "--json",
            "create",
            "--name",
            "mc2",
            "--remote",
            "mc",
            "--server-side",
        ])
        .ok();
    let mc2 = json(&out)["id"].as_str().unwrap().to_string();
    assert_eq!(mc1.len(), 16);
    let on_keystone =
        |u: &User| -> Vec<String> { ks.ec2_of(&u.id).into_iter().map(|(a, _)| a).collect() };
    assert_eq!(on_keystone(&user).len(), 2);

    // A key keyctl holds that Multicloud never saw, and one Multicloud holds that
    // keyctl never saw: list --remote tells them apart, as Keystone does.
    e.cmd().args(["create", "--name", "only-here"]).code(0);
    let stranger = random(B32, 16);
    let (s, _) = ks.api(
        "POST",
        "/v3/credentials",
        Some(
            json!({"credential": {"type": "ec2", "user_id": user.id, "project_id": user.project_id,
            "blob": json!({"access": stranger, "secret": "x".repeat(32)}).to_string()}}),
        ),
    );
    assert_eq!(s, 201);
    let out = e.cmd().args(["--json", "list", "--remote", "mc"]).ok();
    let rows = json(&out);
    let place = |id: &str| -> String {
        rows.as_array()
            .unwrap()
            .iter()
            .find(|r| r["id"] == id)
            .map(|r| r["where"].as_str().unwrap().to_string())
            .unwrap_or_default()
    };
    assert_eq!(place(&mc1), "both", "{out}");
    assert_eq!(place(&mc2), "both", "{out}");
    assert_eq!(place(&stranger), "remote", "{out}");
    let only_here = e.cmd().args(["--json", "show", "only-here"]).run().1;
    assert_eq!(
        place(json(&only_here)["id"].as_str().unwrap()),
        "local",
        "{out}"
    );

    // Revoking mc1 removes exactly mc1's credential, through Keystone; the user-wide
    // DELETE of Multicloud is never sent.
    e.cmd().args(["--yes", "revoke", "mc1"]).code(0);
    let left = on_keystone(&user);
    assert!(
        !left.contains(&mc1) && left.contains(&mc2) && left.contains(&stranger),
        "{left:?}"
    );
    assert_eq!(seen.lock().unwrap().user_wide_deletes, 0);

    // mc2 still authenticates: a signed ec2tokens request (validated by an admin remote).
    let out = e
        .cmd()
        .args(["--json", "token", "mc2", "--remote", "ksadmin"])
        .ok();
    assert!(json(&out)["token"].as_str().is_some_and(|t| !t.is_empty()));
    let out = e.cmd().args(["--json", "list", "--remote", "mc"]).ok();
    let rows = json(&out);
    assert!(
        rows.as_array()
            .unwrap()
            .iter()
            .all(|r| r["id"] != mc1.as_str()),
        "{out}"
    );
    assert!(
        seen.lock().unwrap().violations.is_empty(),
        "{:?}",
        seen.lock().unwrap().violations
    );
}

#[test]
fn a_plain_text_error_is_shown_on_one_line_with_every_secret_masked() {
    // An echoing proxy: it answers 502 with the request in text/plain.
    let server = FakeServer::start(|r: &Request| {
        let headers: Vec<String> = r.headers.iter().map(|(k, v)| format!("{k}: {v}")).collect();
        text(
            400,
            &format!(
                "echo:\n{}\n{} {}\n{}",
                r.body,
                r.method,
                r.path,
                headers.join("\n")
            ),
        )
    });
    let e = require!(KeyringHome::new());
    e.cmd()
        .args([
            "remote",
            "add",
            "ovh",
            "--type",
            "http",
            "--profile",
            "ovh",
            "--url",
            &server.url,
            "--no-verify",
        ])
        .code(0);
    let out = e.cmd().args(["--json", "create", "--name", "k"]).ok();
    let secret = json(&out)["secret"].as_str().unwrap().to_string();
    let (code, _, err) = e.cmd().args(["token", "k", "--remote", "ovh"]).run();
    assert_eq!(code, 7, "{err}");
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.contains("echo: {"), "the server's text is shown: {err}");
    assert!(!err.contains(&secret), "{err}");
    assert!(err.contains("[secret]"), "{err}");
}

/// OVH's documented reply to a login: exactly these fields.
fn ovh_login_reply(token: &str) -> Value {
    json!({"uid": "u-1", "user": "svc", "firstname": "", "lastname": "", "civility": "",
        "login": "svc@example.com", "password_renew": false, "password_expiration": null,
        "token": token})
}

#[test]
fn ovh_login_sends_the_documented_body_claims_no_expiry_and_logs_out() {
    let seen: Arc<Mutex<Vec<Request>>> = Arc::default();
    let log = seen.clone();
    let server = FakeServer::start(move |r| {
        log.lock().unwrap().push(r.clone());
        match (r.method.as_str(), r.path.split('?').next().unwrap_or("")) {
            ("POST", "/iam/login") => Response::json(200, ovh_login_reply("ovh-token-1")),
            ("DELETE", "/iam/logout") => Response::json(200, json!({})),
            _ => Response::json(404, json!({})),
        }
    });
    let e = require!(KeyringHome::new());
    e.cmd()
        .args([
            "remote",
            "add",
            "ovh",
            "--type",
            "http",
            "--profile",
            "ovh",
            "--url",
            &server.url,
            "--no-verify",
        ])
        .code(0);
    e.cmd()
        .args([
            "remote",
            "add",
            "ovh-proj",
            "--type",
            "http",
            "--profile",
            "ovh",
            "--var",
            "app_id=my-project",
            "--url",
            &server.url,
            "--no-verify",
        ])
        .code(0);
    // OVH mints its keys in its Control Panel: keyctl imports them.
    let id = "ovh-Key-0123456789";
    let secret = "ovhSecret0123456789abcdefghij";
    e.cmd()
        .args(["import", "--name", "ovhkey", "--id", id])
        .stdin(secret)
        .code(0);

    let Out {
        stdout: out,
        stderr: err,
    } = e
        .cmd()
        .args(["-v", "--json", "token", "ovhkey", "--remote", "ovh"])
        .code(0);
    let t = json(&out);
    assert_eq!(t, json!({"token": "ovh-token-1", "expires_at": null}));
    assert!(
        !err.contains("ovh-token-1") && !err.contains(secret),
        "{err}"
    );
    e.cmd()
        .args(["token", "ovhkey", "--remote", "ovh-proj"])
        .code(0);
    let reqs = seen.lock().unwrap().clone();
    let bodies: Vec<Value> = reqs
        .iter()
        .filter(|r| r.path == "/iam/login")
        .map(|r| serde_json::from_str(&r.body).unwrap())
        .collect();
    assert_eq!(
        bodies[0],
        json!({"auth_mode": "apikey", "apikey": id, "secretkey": secret, "app_id": "forepaas"})
    );
    assert_eq!(bodies[1]["app_id"], "my-project");
    assert!(reqs.iter().all(|r| r.header("authorization").is_none()));

    // --logout ends a token read from stdin.
    let err = e
        .cmd()
        .args(["-v", "token", "--logout", "--remote", "ovh"])
        .stdin("ovh-token-1")
        .code(0)
        .stderr;
    assert!(
        !err.contains("ovh-token-1"),
        "the -v line masks the token: {err}"
    );
    let reqs = seen.lock().unwrap().clone();
    let out = reqs
        .iter()
        .find(|r| r.method == "DELETE")
        .expect("a logout request");
    assert_eq!(out.path, "/iam/logout?app_id=forepaas&token=ovh-token-1");
}

#[test]
fn every_remote_type_masks_what_an_echoing_server_sends_back() {
    // Echoes headers and body in a JSON error message, as some proxies and debug
    // servers do.
    let server = FakeServer::start(|r: &Request| {
        let headers: Vec<String> = r.headers.iter().map(|(k, v)| format!("{k}: {v}")).collect();
        Response::json(
            401,
            json!({"error": {"message": format!("echo {} {}", headers.join(" "), r.body)}}),
        )
    });
    let e = require!(KeyringHome::new());
    let password = "keystone-password-never-shown";
    for (kind, extra) in [
        ("keystone", &["--user", "u", "--project", "p"][..]),
        ("soda", &["--user", "admin-id"][..]),
        ("http", &["--auth", "bearer"][..]),
    ] {
        let mut args = vec!["remote", "add", kind, "--type", kind, "--url", &server.url];
        args.extend_from_slice(extra);
        if kind == "http" {
            // An http remote checks its credential on its test endpoint.
            args.extend_from_slice(&["--profile", "multicloud", "--auth-remote", "keystone"]);
            args.retain(|a| *a != "--auth" && *a != "bearer");
        }
        let (code, _, err) = e.cmd().args(&args).stdin(password).run();
        assert_ne!(code, 0, "{kind}: {err}");
        assert!(err.contains("echo"), "{kind}: {err}");
        assert!(!err.contains(password), "{kind}: {err}");
        use base64::Engine as _;
        let basic =
            base64::engine::general_purpose::STANDARD.encode(format!("admin-id:{password}"));
        assert!(!err.contains(&basic), "{kind}: {err}");
        if kind == "keystone" {
            // Saved without a login, so the http remote below can borrow it.
            let mut args = args.clone();
            args.push("--no-verify");
            e.cmd().args(args).stdin(password).code(0);
        }
    }
}

#[test]
fn a_multicloud_key_is_rotated_through_multicloud_and_gc_deletes_only_the_old_one() {
    let ks = require!(keystone());
    let seen = Arc::new(Mutex::new(Seen::default()));
    let server = multicloud(seen.clone());
    let user = ks.user("mcrot", Some("member"));
    let e = require!(KeyringHome::new());
    user.add_remote(e.cmd(), "ks");
    add_multicloud(&e, &server.url);
    let old = e
        .cmd()
        .args([
            "--json",
            "create",
            "--name",
            "mc",
            "--remote",
            "mc",
            "--server-side",
        ])
        .json();
    let old_id = old["id"].as_str().unwrap().to_string();
    let (code, out, err) = e
        .cmd()
        .args(["--json", "rotate", "mc", "--grace", "1s"])
        .run();
    assert_eq!(code, 0, "{err}");
    let r = json(&out);
    let new_id = r["id"].as_str().unwrap().to_string();
    let new_secret = r["secret"].as_str().unwrap().to_string();
    // Keystone (behind Multicloud) holds the successor's own pair, and the old one still.
    let creds = ks.ec2_of(&user.id);
    assert!(creds.contains(&(new_id.clone(), new_secret)), "{creds:?}");
    assert!(creds.iter().any(|(a, _)| *a == old_id), "{creds:?}");
    std::thread::sleep(std::time::Duration::from_millis(1_200));
    e.cmd().args(["--yes", "gc"]).ok();
    let left: Vec<String> = ks.ec2_of(&user.id).into_iter().map(|(a, _)| a).collect();
    assert_eq!(left, vec![new_id], "only the old pair is deleted");
    assert_eq!(seen.lock().unwrap().user_wide_deletes, 0);
}
