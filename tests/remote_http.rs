//! The `soda` remote and the `http` remote's shipped profiles (SODA Multicloud AK/SK,
//! OVH-style token exchange), against in-process servers that speak those protocols and
//! check what keyctl sends (auth headers, bodies, paths).

mod common;
#[path = "common/fake_http.rs"]
mod fake_http;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use base64::Engine as _;
use common::*;
use fake_http::{FakeServer, Request, Response};
use serde_json::{Value, json};

const ADMIN_ID: &str = "2d1b6a3e-0c4f-4e0b-9d55-admin0000001";
const ADMIN_SECRET: &str = "admin-secret-Xy_0123456789abcdefghijklmnopqrstuvwxyzABCD";
const RUNNER_ID: &str = "7f0e3c1a-5b2d-4c8e-9a61-runner000001";
const RUNNER_SECRET: &str = "runner-secret-abcdefghijklmnopqrstuvwxyz0123456789_-AB";

fn keyctl(ss: &SecretService, home: &Home, args: &[&str], stdin: &str) -> (i32, String, String) {
    let mut c = ss.cmd(home);
    c.args(args);
    run(c, stdin)
}

fn basic_ok(r: &Request) -> bool {
    let want =
        base64::engine::general_purpose::STANDARD.encode(format!("{ADMIN_ID}:{ADMIN_SECRET}"));
    r.header("authorization") == Some(&format!("Basic {want}"))
}

fn fake_soda(deleted: Arc<AtomicBool>) -> FakeServer {
    FakeServer::start(move |r| {
        if !basic_ok(r) {
            return Response::json(401, json!({"message": "Unauthorized"}));
        }
        match (r.method.as_str(), r.path.as_str()) {
            ("GET", "/api/v1/test-login") => Response::json(200, json!({"ok": true})),
            ("POST", "/api/v1/runners") => Response::json(
                201,
                json!({"id": "r-1", "apiKeyId": RUNNER_ID, "apiKeySecret": RUNNER_SECRET}),
            ),
            ("GET", p) if p.starts_with("/api/v1/runners?page=0") => {
                let content = if deleted.load(Ordering::SeqCst) {
                    json!([])
                } else {
                    json!([{"id": "r-1", "apiKeyId": RUNNER_ID}, {"id": "r-2", "apiKeyId": "other"}])
                };
                Response::json(200, json!({"content": content, "last": true, "number": 0}))
            }
            ("DELETE", "/api/v1/runners/r-1") => {
                if deleted.swap(true, Ordering::SeqCst) {
                    Response::json(404, json!({"message": "not found"}))
                } else {
                    Response::raw(204, "")
                }
            }
            _ => Response::json(404, json!({"message": "no route"})),
        }
    })
}

#[test]
fn soda_runner_keys_are_minted_listed_and_revoked() {
    let deleted = Arc::new(AtomicBool::new(false));
    let server = fake_soda(deleted.clone());
    let ss = SecretService::start();
    let home = Home::new();

    // A wrong admin secret is refused at add time and nothing is saved.
    let add = [
        "remote",
        "add",
        "soda",
        "--type",
        "soda",
        "--url",
        &server.url,
        "--user",
        ADMIN_ID,
    ];
    let (code, _, err) = keyctl(&ss, &home, &add, "wrong");
    assert_eq!(code, 7, "{err}");
    assert!(ss.secret_tool_lookup("remote:soda").is_none());
    let (code, _, err) = keyctl(&ss, &home, &add, ADMIN_SECRET);
    assert_eq!(code, 0, "{err}");
    assert_eq!(
        ss.secret_tool_lookup("remote:soda").as_deref(),
        Some(ADMIN_SECRET)
    );

    let (code, out, err) = keyctl(
        &ss,
        &home,
        &[
            "--json",
            "create",
            "--kind",
            "runner",
            "--name",
            "r",
            "--remote",
            "soda",
            "--server-side",
        ],
        "",
    );
    assert_eq!(code, 0, "{err}");
    let v = json(&out);
    assert_eq!(v["id"], RUNNER_ID);
    assert_eq!(v["secret"], RUNNER_SECRET);
    assert_eq!(v["remotes"][0]["remote_id"], "r-1");
    assert_eq!(
        ss.secret_tool_lookup(RUNNER_ID).as_deref(),
        Some(RUNNER_SECRET)
    );
    assert_eq!(server.count("POST", "/api/v1/runners"), 1);

    let (code, out, _) = keyctl(&ss, &home, &["--json", "list", "--remote", "soda"], "");
    assert_eq!(code, 0);
    let rows = json(&out);
    let place = |id: &str| {
        rows.as_array()
            .unwrap()
            .iter()
            .find(|r| r["id"] == id)
            .unwrap()["where"]
            .clone()
    };
    assert_eq!(place(RUNNER_ID), "both");
    assert_eq!(place("other"), "remote");

    // Soda Cloud takes no client-made keys.
    let (code, _, _) = keyctl(&ss, &home, &["create", "--name", "local"], "");
    assert_eq!(code, 0);
    let (code, _, err) = keyctl(&ss, &home, &["push", "local", "--remote", "soda"], "");
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("--server-side"), "{err}");

    let (code, _, err) = keyctl(&ss, &home, &["--yes", "revoke", "r"], "");
    assert_eq!(code, 0, "{err}");
    assert!(deleted.load(Ordering::SeqCst));
    assert!(ss.secret_tool_lookup(RUNNER_ID).is_none());
    let reg = home.registry();
    assert!(reg["keys"][0]["revoked_at"].is_string());

    // --region picks Soda's own hosts (saved without a login here).
    let (code, _, err) = keyctl(
        &ss,
        &home,
        &[
            "remote",
            "add",
            "us",
            "--type",
            "soda",
            "--region",
            "us",
            "--user",
            ADMIN_ID,
            "--no-verify",
        ],
        ADMIN_SECRET,
    );
    assert_eq!(code, 0, "{err}");
    let config = std::fs::read_to_string(home.path().join("config.yaml")).unwrap();
    assert!(config.contains("url: https://cloud.us.soda.io"), "{config}");
    assert!(!config.contains(ADMIN_SECRET));
}

#[test]
fn soda_rate_limit_on_mint_is_not_retried_and_stores_nothing() {
    let server = FakeServer::start(|r| match r.method.as_str() {
        "POST" => Response::json(429, json!({"message": "Too many requests"})),
        _ => Response::json(200, json!({})),
    });
    let ss = SecretService::start();
    let home = Home::new();
    let (code, _, err) = keyctl(
        &ss,
        &home,
        &[
            "remote",
            "add",
            "soda",
            "--type",
            "soda",
            "--url",
            &server.url,
            "--user",
            ADMIN_ID,
        ],
        ADMIN_SECRET,
    );
    assert_eq!(code, 0, "{err}");
    let (code, _, err) = keyctl(
        &ss,
        &home,
        &[
            "create",
            "--kind",
            "runner",
            "--remote",
            "soda",
            "--server-side",
        ],
        "",
    );
    assert_eq!(code, 7, "{err}");
    assert!(err.contains("rate-limiting"), "{err}");
    // Minting is not safe to repeat: one request only.
    assert_eq!(server.count("POST", "/api/v1/runners"), 1);
    assert!(!home.path().join("keys.json").exists() || home.registry()["keys"] == json!([]));
}

const TOKEN: &str = "keystone-token-for-multicloud";

#[test]
fn multicloud_profile_mints_and_deletes_aksk_behind_a_keystone_token() {
    let server = FakeServer::start(|r| match (r.method.as_str(), r.path.as_str()) {
        ("POST", "/v3/auth/tokens") => Response::json(
            201,
            json!({"token": {"expires_at": "2099-01-01T00:00:00Z",
                    "user": {"id": "u1"}, "project": {"id": "p1"}}}),
        )
        .header("X-Subject-Token", TOKEN),
        _ if r.header("x-auth-token") != Some(TOKEN) => {
            Response::json(401, json!({"error": {"message": "no token"}}))
        }
        ("POST", "/v1/p1/aksks") => {
            let b: Value = serde_json::from_str(&r.body).unwrap();
            assert_eq!(b, json!({"user_id": "u1", "project_id": "p1"}));
            Response::json(
                200,
                json!({"access_key": "AKMULTICLOUD0001", "secret_key": "SKmulticloud0123456789abcdefABCD"}),
            )
        }
        ("GET", "/v1/p1/aksks/u1") => Response::json(200, json!({})),
        ("DELETE", "/v1/p1/aksks/u1") => Response::raw(204, ""),
        _ => Response::json(404, json!({})),
    });
    let ss = SecretService::start();
    let home = Home::new();
    let (code, _, err) = keyctl(
        &ss,
        &home,
        &[
            "remote",
            "add",
            "ks",
            "--url",
            &server.url,
            "--user",
            "u",
            "--project",
            "p",
        ],
        "pw",
    );
    assert_eq!(code, 0, "{err}");
    // No secret of its own: it borrows ks's token, so nothing is read from stdin.
    let (code, _, err) = keyctl(
        &ss,
        &home,
        &[
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
            &server.url,
        ],
        "",
    );
    assert_eq!(code, 0, "{err}");
    let config = std::fs::read_to_string(home.path().join("config.yaml")).unwrap();
    assert!(config.contains("/v1/{project_id}/aksks"), "{config}");

    let (code, out, err) = keyctl(
        &ss,
        &home,
        &[
            "--json",
            "create",
            "--name",
            "mc",
            "--remote",
            "mc",
            "--server-side",
        ],
        "",
    );
    assert_eq!(code, 0, "{err}");
    let v = json(&out);
    assert_eq!(v["id"], "AKMULTICLOUD0001");
    assert_eq!(
        ss.secret_tool_lookup("AKMULTICLOUD0001").as_deref(),
        Some("SKmulticloud0123456789abcdefABCD")
    );
    let (code, _, err) = keyctl(&ss, &home, &["--yes", "revoke", "mc"], "");
    assert_eq!(code, 0, "{err}");
    assert_eq!(server.count("DELETE", "/v1/p1/aksks/u1"), 1);

    // The profile has no list endpoint: a usage error that says where to add one.
    let (code, _, err) = keyctl(&ss, &home, &["list", "--remote", "mc"], "");
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("http.list"), "{err}");
}

#[test]
fn ovh_profile_exchanges_key_and_secret_for_a_token() {
    let seen_secret = Arc::new(std::sync::Mutex::new(None::<(String, String)>));
    let seen = seen_secret.clone();
    let server = FakeServer::start(move |r| {
        if (r.method.as_str(), r.path.as_str()) != ("POST", "/iam/login") {
            return Response::json(404, json!({}));
        }
        let b: Value = serde_json::from_str(&r.body).unwrap();
        assert_eq!(b["auth_mode"], "apikey");
        assert!(r.header("authorization").is_none());
        let pair = (
            b["apikey"].as_str().unwrap().to_string(),
            b["secretkey"].as_str().unwrap().to_string(),
        );
        let mut s = seen.lock().unwrap();
        if let Some(known) = s.as_ref()
            && known != &pair
        {
            return Response::json(401, json!({"message": "invalid credentials"}));
        }
        *s = Some(pair);
        Response::json(
            200,
            json!({"token": "ovh-short-lived", "expires_at": "2099-01-01T00:00:00Z"}),
        )
    });
    let ss = SecretService::start();
    let home = Home::new();
    let (code, _, err) = keyctl(
        &ss,
        &home,
        &[
            "remote",
            "add",
            "ovh",
            "--type",
            "http",
            "--profile",
            "ovh",
            "--url",
            &server.url,
        ],
        "",
    );
    assert_eq!(code, 0, "{err}");
    let (code, out, _) = keyctl(&ss, &home, &["--json", "create", "--name", "k"], "");
    assert_eq!(code, 0);
    let k = json(&out);
    let (code, out, err) = keyctl(
        &ss,
        &home,
        &["-v", "--json", "token", "k", "--remote", "ovh"],
        "",
    );
    assert_eq!(code, 0, "{err}");
    let t = json(&out);
    assert_eq!(t["token"], "ovh-short-lived");
    assert_eq!(t["expires_at"], "2099-01-01T00:00:00Z");
    assert!(!err.contains("ovh-short-lived") && !err.contains(k["secret"].as_str().unwrap()));
    assert_eq!(
        seen_secret.lock().unwrap().clone().unwrap(),
        (
            k["id"].as_str().unwrap().to_string(),
            k["secret"].as_str().unwrap().to_string()
        )
    );
    // Another key's secret is refused by the service: exit 7.
    let (code, _, _) = keyctl(&ss, &home, &["create", "--name", "k2"], "");
    assert_eq!(code, 0);
    let (code, _, err) = keyctl(&ss, &home, &["token", "k2", "--remote", "ovh"], "");
    assert_eq!(code, 7, "{err}");
    assert!(err.contains("invalid credentials"), "{err}");
}
