//! The `http` remote's shipped profiles (SODA Multicloud AK/SK,
//! OVH-style token exchange), against in-process servers that speak those protocols and
//! check what keyctl sends (auth headers, bodies, paths).

mod common;
#[path = "common/fake_http.rs"]
mod fake_http;

use std::sync::Arc;

use common::*;
use fake_http::{FakeServer, Response};
use serde_json::{Value, json};

fn keyctl(ss: &SecretService, home: &Home, args: &[&str], stdin: &str) -> (i32, String, String) {
    let mut c = ss.cmd(home);
    c.args(args);
    run(c, stdin)
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
