//! Failure cases a real Keystone cannot be made to produce on demand (timeouts, 429,
//! 500, malformed and huge replies, a 409 for another secret), served by an in-process
//! HTTP server that speaks Keystone's shapes. After every failure the registry, the
//! keyring and the remote agree with what the error said.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use crate::support::fake_http::{FakeServer, Request, Response};
use crate::support::*;
use serde_json::json;

const TOKEN: &str = "fake-subject-token-0123456789";

/// A fake Keystone: logins succeed, everything else goes to `op`.
fn fake_keystone(op: impl Fn(&Request) -> Response + Send + Sync + 'static) -> FakeServer {
    FakeServer::start(move |r| {
        if r.method == "POST" && r.path == "/v3/auth/tokens" {
            return Response::json(
                201,
                json!({"token": {"expires_at": "2099-01-01T00:00:00Z",
                    "user": {"id": "u1"}, "project": {"id": "p1"}}}),
            )
            .header("X-Subject-Token", TOKEN);
        }
        op(r)
    })
}

struct Setup {
    ss: SecretService,
    home: Home,
    id: String,
    secret: String,
}

impl Setup {
    /// A home with key `k` and remote `fk` pointing at `server`.
    fn new(server: &FakeServer, extra: &[&str]) -> Option<Setup> {
        let KeyringHome { ss, home } = KeyringHome::new()?;
        ss.cmd(&home)
            .args(["remote", "add", "fk", "--url", &server.url])
            .args(["--user", "u", "--project", "p"])
            .args(extra)
            .stdin("remote-password")
            .ok();
        let v = ss
            .cmd(&home)
            .args(["--json", "create", "--name", "k"])
            .json();
        Some(Setup {
            id: v["id"].as_str().unwrap().into(),
            secret: v["secret"].as_str().unwrap().into(),
            ss,
            home,
        })
    }

    fn cmd(&self) -> Cmd {
        self.ss.cmd(&self.home)
    }

    /// The key is local only, not marked pushed, and its secret is intact.
    fn assert_untouched(&self) {
        let reg = self.home.registry();
        let k = &reg["keys"][0];
        assert!(k.get("remotes").is_none(), "marked pushed: {k}");
        assert!(k.get("revoked_at").is_none(), "revoked: {k}");
        assert_eq!(
            self.ss.secret_tool_lookup(&self.id).as_deref(),
            Some(self.secret.as_str())
        );
    }
}

fn push_fails_with(resp: fn() -> Response, code: i32, text: &str) {
    let server = fake_keystone(move |_| resp());
    let s = Setup::new(&server, &[]).unwrap();
    let (got, _, err) = s.cmd().args(["-v", "push", "k", "--remote", "fk"]).run();
    assert_eq!(got, code, "{err}");
    assert!(err.contains(text), "expected {text:?} in: {err}");
    assert!(!err.contains(TOKEN) && !err.contains(&s.secret) && !err.contains("remote-password"));
    s.assert_untouched();
}

#[test]
fn push_refusals_and_server_errors_leave_the_key_unpushed() {
    require!(SecretService::available());
    push_fails_with(
        || {
            Response::json(
                403,
                json!({"error": {"code": 403, "message": "You are not authorized"}}),
            )
        },
        7,
        "HTTP 403 (You are not authorized)",
    );
    push_fails_with(
        || Response::json(400, json!({"error": {"message": "bad \u{1b}[31m input"}})),
        7,
        "bad \\u{1b}[31m input",
    );
    push_fails_with(
        || Response::json(500, json!({"error": {"message": "boom"}})),
        6,
        "HTTP 500 (boom)",
    );
    push_fails_with(|| Response::raw(201, "{not json"), 6, "malformed reply");
    // A server that echoes the request body in its error: the secret is not repeated.
    let server = fake_keystone(|r| {
        Response::json(
            400,
            json!({"error": {"message": format!("bad input: {}", r.body)}}),
        )
    });
    let s = Setup::new(&server, &[]).unwrap();
    let (code, _, err) = s.cmd().args(["push", "k", "--remote", "fk"]).run();
    assert_eq!(code, 7, "{err}");
    assert!(err.contains("bad input"), "{err}");
    assert!(err.contains("[secret]"), "{err}");
    assert!(!err.contains(&s.secret), "{err}");
    s.assert_untouched();
    push_fails_with(
        || Response::raw(201, vec![b' '; 5 * 1024 * 1024]),
        6,
        "larger than 4 MiB",
    );
}

#[test]
fn create_with_a_failing_push_keeps_the_key_local_and_says_how_to_retry() {
    require!(SecretService::available());
    let server = fake_keystone(|_| Response::json(500, json!({"error": {"message": "boom"}})));
    let s = Setup::new(&server, &[]).unwrap();
    let (code, out, err) = s
        .cmd()
        .args(["--json", "create", "--name", "k2", "--remote", "fk"])
        .run();
    assert_eq!(code, 6, "{err}");
    // The secret was still shown once, and is stored; the key is not marked pushed.
    let v = json(&out);
    let id = v["id"].as_str().unwrap();
    assert!(v.get("remotes").is_none(), "{out}");
    assert!(
        err.contains(&format!("keyctl push {id} --remote fk")),
        "{err}"
    );
    assert_eq!(s.ss.secret_tool_lookup(id).as_deref(), v["secret"].as_str());
    let reg = s.home.registry();
    let k = reg["keys"]
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["id"] == id)
        .unwrap()
        .clone();
    assert!(k.get("remotes").is_none());
}

#[test]
fn a_cached_token_that_keystone_rejects_is_replaced_once() {
    require!(SecretService::available());
    let posts = AtomicUsize::new(0);
    let server = fake_keystone(move |r| {
        if r.method == "POST" && posts.fetch_add(1, Ordering::SeqCst) == 0 {
            return Response::json(401, json!({"error": {"message": "token expired"}}));
        }
        Response::json(201, json!({"credential": {"id": "cid", "user_id": "u1"}}))
    });
    let s = Setup::new(&server, &[]).unwrap();
    let (code, _, err) = s.cmd().args(["push", "k", "--remote", "fk"]).run();
    assert_eq!(code, 0, "{err}");
    // add's login, the rejected push, a new login, the push again.
    assert_eq!(server.count("POST", "/v3/auth/tokens"), 2);
    assert_eq!(server.count("POST", "/v3/credentials"), 2);
    assert_eq!(
        s.home.registry()["keys"][0]["remotes"][0]["remote_id"],
        "cid"
    );

    // A 401 on a fresh login is a refusal: wrong credentials.
    let server = FakeServer::start(|_| Response::json(401, json!({"error": {"message": "no"}})));
    let s2 = Setup::new(&fake_keystone(|_| Response::raw(204, "")), &[]).unwrap();
    let add = [
        "remote",
        "add",
        "bad",
        "--no-verify",
        "--url",
        &server.url,
        "--user",
        "u",
        "--project",
        "p",
    ];
    let (code, _, _) = s2.cmd().args(add).run();
    assert_eq!(code, 2, "no password on stdin");
    assert_eq!(s2.ss.cmd(&s2.home).args(add).stdin("pw").run().0, 0);
    s2.cmd()
        .args(["push", "k", "--remote", "bad"])
        .code(7)
        .stderr_has("keyctl remote test");
    s2.assert_untouched();
}

#[test]
fn a_timeout_is_unreachable_and_429_is_retried() {
    require!(SecretService::available());
    let server = fake_keystone(|_| {
        Response::json(201, json!({"credential": {"id": "cid"}})).after(Duration::from_secs(5))
    });
    let s = Setup::new(&server, &["--timeout", "1s"]).unwrap();
    let t = std::time::Instant::now();
    s.cmd()
        .args(["push", "k", "--remote", "fk"])
        .code(6)
        .stderr_has("timed out");
    assert!(t.elapsed() < Duration::from_secs(5), "no timeout applied");
    s.assert_untouched();

    let n = AtomicUsize::new(0);
    let server = fake_keystone(move |_| {
        if n.fetch_add(1, Ordering::SeqCst) == 0 {
            Response::json(429, json!({"error": {"message": "slow down"}}))
                .header("Retry-After", "0")
        } else {
            Response::json(201, json!({"credential": {"id": "cid"}}))
        }
    });
    let s = Setup::new(&server, &[]).unwrap();
    s.cmd()
        .args(["-v", "push", "k", "--remote", "fk"])
        .code(0)
        .stderr_has("HTTP 429");
    assert_eq!(server.count("POST", "/v3/credentials"), 2);
}

#[test]
fn a_conflict_with_another_secret_is_refused_and_the_same_secret_is_success() {
    require!(SecretService::available());
    let server = fake_keystone(|r| match r.method.as_str() {
        "POST" => Response::json(409, json!({"error": {"message": "Duplicate entry"}})),
        _ => Response::json(
            200,
            json!({"credential": {"id": "cid", "user_id": "u1", "type": "ec2",
                "blob": "{\"access\":\"x\",\"secret\":\"someone-elses\"}"}}),
        ),
    });
    let s = Setup::new(&server, &[]).unwrap();
    let (code, _, err) = s.cmd().args(["push", "k", "--remote", "fk"]).run();
    assert_eq!(code, 7, "{err}");
    assert!(err.contains("different secret"), "{err}");
    assert!(!err.contains("someone-elses"), "{err}");
    s.assert_untouched();
}

#[test]
fn a_failed_remote_revoke_keeps_the_secret_and_a_missing_one_is_success() {
    require!(SecretService::available());
    let deletes = std::sync::Arc::new(AtomicUsize::new(0));
    let d = deletes.clone();
    let fail = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(true));
    let f = fail.clone();
    let server = fake_keystone(move |r| match r.method.as_str() {
        "POST" => Response::json(201, json!({"credential": {"id": "cid", "user_id": "u1"}})),
        "DELETE" => {
            d.fetch_add(1, Ordering::SeqCst);
            if f.load(Ordering::SeqCst) {
                Response::json(503, json!({"error": {"message": "maintenance"}}))
            } else {
                Response::json(
                    404,
                    json!({"error": {"message": "Could not find credential"}}),
                )
            }
        }
        _ => Response::json(404, json!({})),
    });
    let s = Setup::new(&server, &[]).unwrap();
    let (code, _, err) = s.cmd().args(["push", "k", "--remote", "fk"]).run();
    assert_eq!(code, 0, "{err}");
    let before = s.home.registry();
    let (code, _, err) = s.cmd().args(["--yes", "revoke", "k"]).run();
    assert_eq!(code, 6, "{err}");
    assert!(err.contains("HTTP 503 (maintenance)"), "{err}");
    assert!(err.contains("keyctl revoke"), "{err}");
    assert!(err.contains("--local-only"), "{err}");
    // DELETE is safe to repeat: tried three times.
    assert_eq!(deletes.load(Ordering::SeqCst), 3);
    assert_eq!(s.home.registry(), before);
    assert_eq!(
        s.ss.secret_tool_lookup(&s.id).as_deref(),
        Some(s.secret.as_str())
    );

    fail.store(false, Ordering::SeqCst);
    s.cmd()
        .args(["--yes", "revoke", "k"])
        .code(0)
        .stderr_has("already gone");
    assert!(s.home.registry()["keys"][0]["revoked_at"].is_string());
    assert!(s.ss.secret_tool_lookup(&s.id).is_none());
}

#[test]
fn verbose_shows_requests_but_never_the_token() {
    require!(SecretService::available());
    let server = fake_keystone(|_| {
        Response::json(
            200,
            json!({"token": {"expires_at": "2099-01-01T00:00:00Z",
            "user": {"id": "u1"}}}),
        )
        .header("X-Subject-Token", "exchanged-token-abc")
    });
    let s = Setup::new(&server, &[]).unwrap();
    let (code, out, err) = s.cmd().args(["-v", "token", "k", "--remote", "fk"]).run();
    assert_eq!(code, 0, "{err}");
    assert_eq!(out, "exchanged-token-abc\n");
    assert!(err.contains("POST "), "{err}");
    assert!(err.contains("/v3/ec2tokens -> 200 in "), "{err}");
    for hidden in [
        "exchanged-token-abc",
        TOKEN,
        s.secret.as_str(),
        "remote-password",
    ] {
        assert!(!err.contains(hidden), "{err}");
    }
    // Keystone got a signature, never the secret.
    let reqs = server.requests.lock().unwrap();
    let ec2 = reqs.iter().find(|r| r.path == "/v3/ec2tokens").unwrap();
    assert!(!ec2.body.contains(&s.secret));
    assert!(ec2.body.contains("\"signature\""));
    assert_eq!(ec2.header("x-auth-token"), Some(TOKEN));
}

#[test]
fn a_token_about_to_expire_is_not_reused() {
    require!(SecretService::available());
    let soon = time::OffsetDateTime::now_utc() + time::Duration::minutes(2);
    let soon = soon
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap();
    let server = FakeServer::start(move |r| {
        if r.path == "/v3/auth/tokens" {
            return Response::json(
                201,
                json!({"token": {"expires_at": soon, "user": {"id": "u1"}, "project": {"id": "p1"}}}),
            )
            .header("X-Subject-Token", TOKEN);
        }
        Response::json(201, json!({"credential": {"id": "cid"}}))
    });
    let s = Setup::new(&server, &[]).unwrap();
    let (code, _, err) = s.cmd().args(["push", "k", "--remote", "fk"]).run();
    assert_eq!(code, 0, "{err}");
    // add logged in once; the token expires within the 5-minute margin, so push logs in again.
    assert_eq!(server.count("POST", "/v3/auth/tokens"), 2);
}

#[test]
fn revoke_from_one_remote_keeps_the_key_while_another_holds_it() {
    require!(SecretService::available());
    let a = fake_keystone(|r| match r.method.as_str() {
        "POST" => Response::json(201, json!({"credential": {"id": "on-a"}})),
        _ => Response::raw(204, ""),
    });
    let b = fake_keystone(|r| match r.method.as_str() {
        "POST" => Response::json(201, json!({"credential": {"id": "on-b"}})),
        _ => Response::raw(204, ""),
    });
    let s = Setup::new(&a, &[]).unwrap();
    assert_eq!(
        s.ss.cmd(&s.home)
            .args([
                "remote",
                "add",
                "fb",
                "--url",
                &b.url,
                "--user",
                "u",
                "--project",
                "p",
            ])
            .stdin("pw")
            .run()
            .0,
        0
    );
    for r in ["fk", "fb"] {
        let (code, _, err) = s.cmd().args(["push", "k", "--remote", r]).run();
        assert_eq!(code, 0, "{err}");
    }
    s.cmd()
        .args(["--yes", "revoke", "k", "--remote", "fb"])
        .code(0)
        .stderr_has("stays active locally (still on fk)");
    assert_eq!(b.count("DELETE", "/v3/credentials/on-b"), 1);
    assert_eq!(a.count("DELETE", "/v3/credentials/"), 0);
    let k = &s.home.registry()["keys"][0];
    assert!(k.get("revoked_at").is_none());
    assert_eq!(k["remotes"].as_array().unwrap().len(), 1);
    assert_eq!(k["remotes"][0]["remote"], "fk");
    assert!(s.ss.secret_tool_lookup(&s.id).is_some());

    // A revoke naming a remote the key is not on is refused and changes nothing.
    let before = s.home.registry();
    let (code, _, err) = s
        .cmd()
        .args(["--yes", "revoke", "k", "--remote", "fb"])
        .run();
    assert_eq!(code, 3, "{err}");
    assert_eq!(s.home.registry(), before);
    let (code, _, err) = s.cmd().args(["--yes", "revoke", "k", "--jobs", "0"]).run();
    assert_eq!(code, 2, "{err}");

    let (code, _, err) = s.cmd().args(["--yes", "revoke", "k"]).run();
    assert_eq!(code, 0, "{err}");
    assert_eq!(a.count("DELETE", "/v3/credentials/on-a"), 1);
    assert!(s.home.registry()["keys"][0]["revoked_at"].is_string());
    assert!(s.ss.secret_tool_lookup(&s.id).is_none());
}
