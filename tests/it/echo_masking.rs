//! A server that echoes what it got, in its own notation, never makes keyctl print a
//! secret: an in-process Keystone-shaped server (fault injection: a real Keystone echoes
//! only some forms) answers with the password or the token JSON-escaped, as Python's repr
//! (Keystone's validation errors), percent-encoded and base64-encoded (both alphabets, the
//! whole request body or the Basic pair). Issue 20.

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use serde_json::json;

use crate::support::fake_http::{FakeServer, Request, Response};
use crate::support::*;

const PASSWORD: &str = "pa\"ss\\wo'rd/Summer 2024!";
const TOKEN: &str = "gAAAAABtoken-with/slash+plus=0123456789";

fn repr(s: &str) -> String {
    let mut out = String::from("'");
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\'' => out.push_str("\\'"),
            c => out.push(c),
        }
    }
    out.push('\'');
    out
}

fn percent(s: &str) -> String {
    s.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

/// How a server writes back `value` from a request.
type Echo = fn(&str, &Request) -> String;

/// Each way a server writes back what it got: (name, echo of the request).
fn encodings() -> Vec<(&'static str, Echo)> {
    vec![
        ("json-escaped", |v, _| serde_json::to_string(v).unwrap()),
        ("json body", |_, r| r.body.clone()),
        ("python repr", |v, _| format!("{{'password': {}}}", repr(v))),
        ("url-encoded", |v, _| format!("password={}", percent(v))),
        ("base64", |v, _| STANDARD.encode(v)),
        ("base64 url-safe unpadded", |v, _| URL_SAFE_NO_PAD.encode(v)),
        ("base64 of the body", |_, r| STANDARD.encode(&r.body)),
        ("base64 url-safe of the body", |_, r| {
            URL_SAFE_NO_PAD.encode(&r.body)
        }),
    ]
}

fn forbidden(v: &str) -> Vec<String> {
    vec![
        v.to_string(),
        serde_json::to_string(v).unwrap(),
        repr(v),
        percent(v),
        STANDARD.encode(v),
        URL_SAFE_NO_PAD.encode(v),
        "Summer 2024".into(),
    ]
}

#[test]
fn a_server_echoing_the_password_in_any_encoding_never_prints_it() {
    for (name, encode) in encodings() {
        let server = FakeServer::start(move |r| {
            Response::json(
                400,
                json!({"error": {"code": 400, "title": "Bad Request",
                    "message": format!("Invalid input for field: {}", encode(PASSWORD, r))}}),
            )
        });
        let home = Home::new();
        let (code, out, err) = remote_add_fk(&home, &server.url, true, &[], PASSWORD).run();
        assert_ne!(code, 0, "{name}: {err}");
        assert!(
            err.contains("Invalid input"),
            "{name}: the message was dropped: {err}"
        );
        for f in forbidden(PASSWORD) {
            assert!(
                !err.contains(&f) && !out.contains(&f),
                "{name} leaked {f}: {err}"
            );
        }
        assert!(err.contains("[secret]"), "{name}: {err}");
    }
}

/// The secret of the EC2 credential a push sent, from its JSON blob.
fn blob_secret(r: &Request) -> String {
    let body: serde_json::Value = serde_json::from_str(&r.body).unwrap_or_default();
    let blob: serde_json::Value = body["credential"]["blob"]
        .as_str()
        .and_then(|b| serde_json::from_str(b).ok())
        .unwrap_or_default();
    blob["secret"].as_str().unwrap_or_default().to_string()
}

/// `create --remote fk` against a server whose logins succeed and whose push answers 400
/// echoing what `pick` takes from the request, encoded each way; stderr never shows it.
fn echo_after_login(pick: fn(&Request) -> String) {
    for (name, encode) in encodings() {
        let server = FakeServer::start(move |r| {
            if r.method == "POST" && r.path == "/v3/auth/tokens" {
                return Response::json(
                    201,
                    json!({"token": {"expires_at": "2099-01-01T00:00:00Z",
                        "user": {"id": "u1"}, "project": {"id": "p1"}}}),
                )
                .header("X-Subject-Token", TOKEN);
            }
            let sent = pick(r);
            let fake = Request {
                body: json!({"value": sent}).to_string(),
                ..r.clone()
            };
            Response::json(
                400,
                json!({"error": {"code": 400, "title": "Bad Request",
                    "message": format!("Invalid input for field: {}", encode(&sent, &fake))}}),
            )
        });
        let home = Home::new();
        remote_add_fk(&home, &server.url, false, &[], "a-password").ok();
        let (_, _, err) = home
            .cmd()
            .args([
                "--store", "file", "-v", "create", "--name", "k", "--remote", "fk",
            ])
            .run();
        assert!(err.contains("Invalid input"), "{name}: {err}");
        let echoed: Vec<String> = server
            .requests
            .lock()
            .unwrap()
            .iter()
            // Not the login, nor the catalog read that names the S3 endpoint (no body).
            .filter(|r| r.path != "/v3/auth/tokens" && r.path != "/v3/auth/catalog")
            .map(pick)
            .collect();
        assert!(
            !echoed.is_empty() && echoed[0].len() >= 16,
            "{name}: {echoed:?}"
        );
        for f in forbidden(&echoed[0]) {
            assert!(!err.contains(&f), "{name} leaked {f}: {err}");
        }
        assert!(err.contains("[secret]"), "{name}: {err}");
    }
}

#[test]
fn a_server_echoing_the_token_in_any_encoding_never_prints_it() {
    echo_after_login(|r| r.header("x-auth-token").unwrap_or_default().to_string());
}

#[test]
fn a_server_echoing_the_keys_secret_in_any_encoding_never_prints_it() {
    echo_after_login(blob_secret);
}
