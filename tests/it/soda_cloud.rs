//! The paths a Soda Cloud user takes, against a Soda Cloud stand-in that answers exactly
//! what Soda publishes and nothing more, and against Prism serving a transcription of
//! that definition (`tests/specs/soda-cloud.yaml`), which rejects any request the
//! definition does not allow.
//!
//! Definitions followed: "Soda Cloud API v4", Runners (OpenAPI 3.1.0 published inline on
//! docs.soda.io, REST API reference): `POST /api/v1/runners` has no request body and answers
//! `PublicApiCreateRunnerResponse` = {apiKeyId, apiKeySecret} (no runner ID); runners
//! (`PublicApiRunnerDTO`) carry no key ID and appear only once a runner deployed with the
//! key registers; `GET /api/v1/runners` pages with size 10..=1000; `DELETE
//! /api/v1/runners/{runnerId}` answers 200 {}, 400 while the runner is in use, 404 when
//! unknown; errors are `ErrorResponse` {code, message}. `GET /api/v1/test-login` (Soda's
//! public API v1 definition) answers `PublicApiTestLoginResponse` {organisationName}.
//! Soda Core's own login (`POST /api/command` login, `POST /api/query` whoAmI) is answered
//! as `soda_core` describes it.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use crate::support::fake_http::{FakeServer, Request, Response};
use crate::support::*;
use base64::Engine as _;
use serde_json::{Value, json};

const ADMIN_ID: &str = "2d1b6a3e-0c4f-4e0b-9d55-0a0000000001";
const ADMIN_SECRET: &str = "admin-secret-Xy_0123456789abcdefghijklmnopqrstuvwxyzABCD";
/// An API key created in Soda Cloud's UI (profile, API keys), which keyctl imports.
const UI_KEY_ID: &str = "5c7e0b9a-1d2f-4a3b-8c4d-0b0000000002";
const UI_KEY_SECRET: &str = "ui-secret-abcdefghijklmnopqrstuvwxyz0123456789_-ABCDEF";

#[derive(Clone)]
struct Runner {
    id: String,
    name: String,
    in_use: bool,
}

/// What the stand-in keeps: the API keys it knows (admin, UI-made, minted for runners),
/// the runners that registered, and every way a request broke the definition.
#[derive(Default)]
struct State {
    keys: BTreeMap<String, String>,
    runners: Vec<Runner>,
    minted: usize,
    /// Answer the next create with 429 and `Retry-After: 1`.
    throttle_next_create: bool,
    violations: Vec<String>,
}

struct Soda {
    server: FakeServer,
    state: Arc<Mutex<State>>,
}

fn error(status: u16, code: &str, message: &str) -> Response {
    Response::json(status, json!({"code": code, "message": message}))
}

fn basic_user(r: &Request, keys: &BTreeMap<String, String>) -> Option<String> {
    let enc = r.header("authorization")?.strip_prefix("Basic ")?;
    let raw = base64::engine::general_purpose::STANDARD.decode(enc).ok()?;
    let (id, secret) = std::str::from_utf8(&raw).ok()?.split_once(':')?;
    (keys.get(id).map(String::as_str) == Some(secret)).then(|| id.to_string())
}

fn runner_dto(r: &Runner) -> Value {
    json!({
        "id": r.id,
        "isOnline": r.in_use,
        "label": r.name,
        "lastSeenTimestamp": "2026-11-28T10:00:00Z",
        "name": r.name,
        "type": "SELF_HOSTED",
        "versions": {"library": "1.0.0", "runner": "1.2.0"}
    })
}

impl Soda {
    fn start() -> Soda {
        let state = Arc::new(Mutex::new(State::default()));
        {
            let mut s = state.lock().unwrap();
            s.keys.insert(ADMIN_ID.into(), ADMIN_SECRET.into());
            s.keys.insert(UI_KEY_ID.into(), UI_KEY_SECRET.into());
        }
        let st = state.clone();
        let server = FakeServer::start(move |r| handle(&mut st.lock().unwrap(), r));
        Soda { server, state }
    }

    /// A runner deployed with the key's Helm values registers under `soda.agent.name`.
    fn deploy(&self, name: &str, id: &str) {
        self.state.lock().unwrap().runners.push(Runner {
            id: id.into(),
            name: name.into(),
            in_use: false,
        });
    }

    fn set_in_use(&self, id: &str, in_use: bool) {
        for r in self.state.lock().unwrap().runners.iter_mut() {
            if r.id == id {
                r.in_use = in_use;
            }
        }
    }

    fn forget_key(&self, id: &str) {
        self.state.lock().unwrap().keys.remove(id);
    }

    fn has_runner(&self, id: &str) -> bool {
        self.state
            .lock()
            .unwrap()
            .runners
            .iter()
            .any(|r| r.id == id)
    }

    fn violations(&self) -> Vec<String> {
        self.state.lock().unwrap().violations.clone()
    }
}

fn handle(s: &mut State, r: &Request) -> Response {
    let (path, query) = r.path.split_once('?').unwrap_or((&r.path, ""));
    if let Some(reply) = crate::soda_core::cqrs(&s.keys, &mut s.violations, r) {
        return reply;
    }
    let caller = basic_user(r, &s.keys);
    if caller.is_none() {
        return error(401, "UNAUTHORIZED", "Unauthorized");
    }
    let admin = caller.as_deref() == Some(ADMIN_ID);
    match (r.method.as_str(), path) {
        ("GET", "/api/v1/test-login") => {
            Response::json(200, json!({"organisationName": "Acme Data"}))
        }
        ("POST", "/api/v1/runners") => {
            if !r.body.is_empty() || r.header("content-type").is_some() {
                s.violations.push(format!(
                    "POST /api/v1/runners defines no body, got {:?}",
                    r.body
                ));
                return error(
                    400,
                    "BAD_REQUEST",
                    "No supported content types, but request included a non-empty body",
                );
            }
            if !admin {
                return error(403, "FORBIDDEN", "MANAGE_DATASOURCES_AND_RUNNERS required");
            }
            if std::mem::take(&mut s.throttle_next_create) {
                return error(429, "TOO_MANY_REQUESTS", "Too many requests")
                    .header("Retry-After", "1");
            }
            s.minted += 1;
            let id = format!("9e1d6c2b-7a4f-4b8e-a1c3-{:012}", s.minted);
            let secret = format!(
                "rk_{:04}-abcdefghijklmnopqrstuvwxyz0123456789_-ABCDEFG",
                s.minted
            );
            s.keys.insert(id.clone(), secret.clone());
            Response::json(200, json!({"apiKeyId": id, "apiKeySecret": secret}))
        }
        ("GET", "/api/v1/runners") => {
            let q: BTreeMap<&str, &str> = query
                .split('&')
                .filter_map(|kv| kv.split_once('='))
                .collect();
            let size: usize = q.get("size").and_then(|v| v.parse().ok()).unwrap_or(10);
            let page: usize = q.get("page").and_then(|v| v.parse().ok()).unwrap_or(0);
            if !(10..=1000).contains(&size) {
                s.violations
                    .push(format!("page size {size} outside 10..=1000"));
                return error(400, "BAD_REQUEST", "size must be between 10 and 1000");
            }
            let total = s.runners.len();
            let content: Vec<Value> = s
                .runners
                .iter()
                .skip(page * size)
                .take(size)
                .map(runner_dto)
                .collect();
            let pages = total.div_ceil(size).max(1);
            Response::json(
                200,
                json!({
                    "content": content,
                    "first": page == 0,
                    "last": page + 1 >= pages,
                    "number": page,
                    "size": size,
                    "totalElements": total,
                    "totalPages": pages
                }),
            )
        }
        ("DELETE", p) if p.starts_with("/api/v1/runners/") => {
            let id = &p["/api/v1/runners/".len()..];
            if !admin {
                return error(403, "FORBIDDEN", "MANAGE_DATASOURCES_AND_RUNNERS required");
            }
            match s.runners.iter().position(|r| r.id == id) {
                None => error(404, "NOT_FOUND", "Runner not found"),
                Some(i) if s.runners[i].in_use => {
                    error(400, "BAD_REQUEST", "Runner is still in use")
                }
                Some(i) => {
                    s.runners.remove(i);
                    Response::json(200, json!({}))
                }
            }
        }
        (m, p) => {
            s.violations
                .push(format!("{m} {p} is not in the definition"));
            error(404, "NOT_FOUND", "no such operation")
        }
    }
}

fn add_soda(e: &KeyringHome, url: &str) {
    e.cmd()
        .args([
            "remote", "add", "soda", "--type", "soda", "--url", url, "--user", ADMIN_ID,
        ])
        .stdin(ADMIN_SECRET)
        .code(0);
}

fn key(e: &KeyringHome, name_or_id: &str) -> Value {
    e.cmd().args(["--json", "show", name_or_id]).json()
}

#[test]
fn a_runner_key_is_minted_by_soda_stored_first_and_revoked_once_its_runner_registered() {
    let soda = Soda::start();
    let e = require!(KeyringHome::new());
    add_soda(&e, &soda.server.url);

    // No --remote and no --server-side: the only Soda remote mints the runner key.
    let Out {
        stdout: out,
        stderr: err,
    } = e
        .cmd()
        .args([
            "--json",
            "create",
            "--kind",
            "runner",
            "--name",
            "prod-runner",
        ])
        .code(0);
    let created = json(&out);
    let id = created["id"].as_str().unwrap().to_string();
    let secret = created["secret"].as_str().unwrap().to_string();
    assert!(id.starts_with("9e1d6c2b-"), "the ID is Soda's: {out}");
    assert_eq!(
        e.ss.secret_tool_lookup(&id).as_deref(),
        Some(secret.as_str())
    );
    assert_eq!(created["remotes"][0]["remote"], "soda");
    assert_eq!(created["remotes"][0]["remote_id"], Value::Null, "{out}");
    assert!(err.contains("minted this runner key"), "{err}");
    assert_eq!(soda.server.count("POST", "/api/v1/runners"), 1);

    // The Helm values name the runner after the key and point at the remote's host.
    let values = e.cmd().args(["config", "prod-runner"]).ok();
    assert!(values.contains("name: \"prod-runner\""), "{values}");
    assert!(
        values.contains(&format!("endpoint: \"{}\"", soda.server.url)),
        "the runner endpoint keeps the remote's scheme and port: {values}"
    );
    assert!(values.contains(&id), "{values}");

    // Not deployed yet: Soda lists no runner for it, so revoke refuses the remote side
    // (and never sends a key ID where a runner ID belongs); the key stays as it was.
    let out = e.cmd().args(["--json", "list", "--remote", "soda"]).ok();
    let rows = json(&out);
    assert_eq!(rows[0]["where"], "local", "{out}");
    assert_eq!(rows[0]["pushed"], true, "{out}");
    let (code, _, err) = e.cmd().args(["--yes", "revoke", "prod-runner"]).run();
    assert_eq!(code, 3, "{err}");
    assert!(
        err.contains("Soda Cloud (Runners)") && err.contains("--local-only"),
        "{err}"
    );
    assert_eq!(
        err.lines().count(),
        1,
        "one message, not a warning and an error: {err}"
    );
    // The refusal comes before any question: without --yes (and no terminal to ask on)
    // it is the same refusal, not "needs confirmation" (exit 10).
    let (code, _, err) = e.cmd().args(["revoke", "prod-runner"]).run();
    assert_eq!(code, 3, "{err}");
    assert_eq!(soda.server.count("DELETE", "/api/v1/runners"), 0);
    assert_eq!(key(&e, "prod-runner")["status"], "active");
    assert!(e.ss.secret_tool_lookup(&id).is_some());

    // The runner registers under the key's name; `list --remote` matches it by name,
    // shows the other runner as remote-only, and records the runner ID.
    soda.deploy("prod-runner", "rn-1");
    soda.deploy("someone-else", "rn-2");
    let Out {
        stdout: out,
        stderr: err,
    } = e.cmd().args(["--json", "list", "--remote", "soda"]).code(0);
    let rows = json(&out);
    let row = |n: &str| {
        rows.as_array()
            .unwrap()
            .iter()
            .find(|r| r["name"] == n)
            .cloned()
            .unwrap_or_else(|| panic!("no row {n}: {out}"))
    };
    assert_eq!(row("prod-runner")["where"], "both");
    assert_eq!(row("prod-runner")["remote_id"], "rn-1");
    assert_eq!(row("someone-else")["where"], "remote");
    assert!(err.contains("runner rn-1"), "{err}");
    assert_eq!(key(&e, "prod-runner")["remotes"][0]["remote_id"], "rn-1");

    // verify proves the key with Soda Core's own login as the key itself, at the
    // remote's host, port and scheme (the key's service).
    let err = e.cmd().args(["verify", "prod-runner"]).code(0).stderr;
    assert!(
        err.contains("POST /api/command login") && err.contains(&soda.server.url),
        "{err}"
    );

    // A runner still in use cannot be deleted: explained, key kept.
    soda.set_in_use("rn-1", true);
    e.cmd()
        .args(["--yes", "revoke", "prod-runner"])
        .code(7)
        .stderr_has("stop the runner");
    assert_eq!(key(&e, "prod-runner")["status"], "active");
    soda.set_in_use("rn-1", false);
    e.cmd().args(["--yes", "revoke", "prod-runner"]).code(0);
    assert!(!soda.has_runner("rn-1") && soda.has_runner("rn-2"));
    assert_eq!(soda.server.count("DELETE", "/api/v1/runners/rn-1"), 2);
    assert!(e.ss.secret_tool_lookup(&id).is_none());

    // Once Soda has forgotten a key, verify says so with exit 7.
    let out = e
        .cmd()
        .args(["--json", "create", "--kind", "runner", "--name", "gone"])
        .ok();
    let gone = json(&out)["id"].as_str().unwrap().to_string();
    soda.forget_key(&gone);
    let (code, _, err) = e.cmd().args(["verify", "gone"]).run();
    assert_eq!(code, 7, "{err}");

    assert_eq!(soda.violations(), Vec::<String>::new());
}

#[test]
fn api_keys_come_from_soda_clouds_ui_through_import_and_are_verified() {
    let soda = Soda::start();
    let e = require!(KeyringHome::new());
    add_soda(&e, &soda.server.url);

    // Soda mints API keys only in its UI: create refuses with the way forward.
    e.cmd()
        .args(["create", "--kind", "api", "--remote", "soda"])
        .code(2)
        .stderr_has("keyctl import --kind api");
    assert_eq!(soda.server.count("POST", "/api/v1/runners"), 0);
    assert!(!e.home.path().join("keys.json").exists() || e.home.registry()["keys"] == json!([]));

    // import offers verify; --verify does it at once.
    let err = e
        .cmd()
        .args(["import", "--kind", "api", "--name", "ci", "--id", UI_KEY_ID])
        .stdin(UI_KEY_SECRET)
        .code(0)
        .stderr;
    assert!(err.contains("`keyctl verify ci --remote soda`"), "{err}");
    let err = e.cmd().args(["verify", "ci"]).code(0).stderr;
    assert!(err.contains("answered whoAmI"), "{err}");
    let out = e.cmd().args(["--json", "verify", "--all"]).ok();
    assert_eq!(json(&out)[0]["works"], true, "{out}");

    // A wrong secret is refused by Soda (exit 7) at import time with --verify, and
    // nothing is imported.
    let (code, _, err) = e
        .cmd()
        .args([
            "import", "--kind", "api", "--name", "typo", "--id", "other-id", "--verify", "soda",
        ])
        .stdin("not-the-secret")
        .run();
    assert_eq!(code, 7, "{err}");
    assert!(!err.contains("not-the-secret"), "{err}");
    assert_eq!(e.cmd().args(["show", "typo"]).run().0, 3);

    // The snippet of an imported key is the soda_cloud block.
    let block = e.cmd().args(["config", "ci"]).ok();
    assert!(block.starts_with("soda_cloud:\n"), "{block}");
    assert!(block.contains(UI_KEY_ID), "{block}");
    assert_eq!(soda.violations(), Vec::<String>::new());
}

#[test]
fn a_rate_limited_create_waits_as_told_and_a_secret_that_cannot_be_stored_is_shown_once() {
    let soda = Soda::start();
    let e = require!(KeyringHome::new());
    // No keyring on this bus: the remote's own secret goes to the file store.
    let headless = Home::new();
    headless
        .cmd()
        .args([
            "remote",
            "add",
            "soda",
            "--type",
            "soda",
            "--url",
            &soda.server.url,
        ])
        .args(["--user", ADMIN_ID])
        .stdin(ADMIN_SECRET)
        .ok();

    // --store keyring with no keyring: Soda has minted the key, keyctl cannot store it,
    // so the secret is printed once on stderr rather than lost.
    let (code, out, err) = headless
        .cmd()
        .args([
            "--store", "keyring", "create", "--kind", "runner", "--name", "lost",
        ])
        .run();
    assert_eq!(code, 5, "{err}");
    assert!(out.is_empty(), "{out}");
    assert!(err.contains("shown this once"), "{err}");
    assert!(err.contains("rk_0001-"), "the secret is on stderr: {err}");

    // A 429 is waited out as Retry-After says, with a note, then the mint goes through.
    add_soda(&e, &soda.server.url);
    soda.state.lock().unwrap().throttle_next_create = true;
    let err = e
        .cmd()
        .args(["create", "--kind", "runner", "--name", "paced"])
        .code(0)
        .stderr;
    assert!(
        err.contains("rate-limiting") && err.contains("waiting 1 s"),
        "{err}"
    );
    assert_eq!(soda.server.count("POST", "/api/v1/runners"), 3);
    assert_eq!(soda.violations(), Vec::<String>::new());
}

#[test]
fn a_runner_key_is_rotated_on_soda_and_gc_deletes_only_a_known_old_runner() {
    let soda = Soda::start();
    let e = require!(KeyringHome::new());
    add_soda(&e, &soda.server.url);
    let out = e
        .cmd()
        .args(["--json", "create", "--kind", "runner", "--name", "r"])
        .ok();
    let old = json(&out)["id"].as_str().unwrap().to_string();
    soda.deploy("r", "rn-old");
    e.cmd().args(["list", "--remote", "soda"]).code(0);

    let Out {
        stdout: values,
        stderr: err,
    } = e.cmd().args(["rotate", "r", "--grace", "1s"]).code(0);
    assert_eq!(soda.server.count("POST", "/api/v1/runners"), 2);
    let new = key(&e, "r");
    let new_id = new["id"].as_str().unwrap();
    assert_ne!(new_id, old);
    assert!(
        values.contains(new_id) && values.contains("name: \"r\""),
        "{values}"
    );
    assert!(err.contains("the new key works"), "{err}");
    assert_eq!(key(&e, &old)["status"], "superseded");

    std::thread::sleep(std::time::Duration::from_millis(1500));
    e.cmd().args(["--yes", "gc"]).code(0);
    assert!(!soda.has_runner("rn-old"), "gc deleted the old runner");
    assert_eq!(key(&e, &old)["status"], "revoked");

    // A successor whose runner never registered: gc of it later cannot find its runner
    // by name (the name is the successor's now), so it revokes locally and says so.
    let _ = e.cmd().args(["rotate", "r", "--grace", "1s"]).ok();
    std::thread::sleep(std::time::Duration::from_millis(1500));
    let deletes = soda.server.count("DELETE", "/api/v1/runners");
    let err = e.cmd().args(["--yes", "gc"]).code(0).stderr;
    assert!(err.contains("delete that runner in Soda Cloud"), "{err}");
    assert_eq!(soda.server.count("DELETE", "/api/v1/runners"), deletes);
    assert_eq!(soda.violations(), Vec::<String>::new());
}

#[test]
fn write_over_another_keys_soda_cloud_block_asks_first() {
    let e = require!(KeyringHome::new());
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("configuration.yml");
    let before = "data_source x:\n  type: postgres\nsoda_cloud:\n  host: cloud.soda.io\n  api_key_id: \"old-working-key\"\n  api_key_secret: \"s\"\n";
    std::fs::write(&file, before).unwrap();
    let path = file.to_str().unwrap();

    // No terminal and no --yes: exit 10, nothing minted, the file as it was.
    e.cmd()
        .args(["create", "--name", "n", "--write", path])
        .code(10)
        .stderr_has("old-working-key");
    assert_eq!(std::fs::read_to_string(&file).unwrap(), before);
    assert!(!e.home.path().join("keys.json").exists() || e.home.registry()["keys"] == json!([]));

    let err = e
        .cmd()
        .args(["--yes", "create", "--name", "n", "--write", path])
        .code(0)
        .stderr;
    assert!(err.contains("registered with no service"), "{err}");
    let id = key(&e, "n")["id"].as_str().unwrap().to_string();
    let after = std::fs::read_to_string(&file).unwrap();
    assert!(
        after.contains(&id) && !after.contains("old-working-key"),
        "{after}"
    );
    // The same key again: nothing to ask.
    e.cmd().args(["config", "n", "--write", path]).code(0);
}

/// Prism, serving the transcribed definition, validates every request keyctl makes; a
/// request with a body on create is rejected by it (so the check can fail).
#[test]
fn every_soda_request_passes_prism_validation() {
    let prism = require!(need("Prism", "KEYCTL_TEST_PRISM"));
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let spec = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/specs/soda-cloud.yaml");
    let log_path = tempfile::NamedTempFile::new().unwrap().into_temp_path();
    let log = std::fs::File::create(&log_path).unwrap();
    let mut child = std::process::Command::new(&prism)
        .args(["mock", "-h", "127.0.0.1", "-p", &port.to_string(), spec])
        .stdout(log.try_clone().unwrap())
        .stderr(log)
        .spawn()
        .expect("start prism");
    struct Kill(std::process::Child);
    impl Drop for Kill {
        fn drop(&mut self) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
    let _guard = {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                std::time::Instant::now() < deadline,
                "Prism did not start: {}",
                std::fs::read_to_string(&log_path).unwrap_or_default()
            );
            if let Ok(Some(s)) = child.try_wait() {
                panic!(
                    "Prism exited ({s}): {}",
                    std::fs::read_to_string(&log_path).unwrap_or_default()
                );
            }
            std::thread::sleep(std::time::Duration::from_millis(200));
        }
        Kill(child)
    };
    let url = format!("http://127.0.0.1:{port}");
    let e = require!(KeyringHome::new());
    add_soda(&e, &url);
    e.cmd()
        .args(["create", "--kind", "runner", "--name", "p"])
        .code(0);
    e.cmd().args(["list", "--remote", "soda"]).code(0);
    // `verify` speaks Soda Core's login (`/api/command`), which no published definition
    // describes: it is judged by Soda Core itself in `soda_core`.
    let text = std::fs::read_to_string(&log_path).unwrap();
    assert!(text.contains("Request received"), "{text}");
    assert!(
        !text.contains("Violation"),
        "Prism found requests outside the definition:\n{text}"
    );

    // The validator is live: the request an older keyctl sent (a JSON body on create)
    // is refused.
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    let auth =
        base64::engine::general_purpose::STANDARD.encode(format!("{ADMIN_ID}:{ADMIN_SECRET}"));
    write!(
        s,
        "POST /api/v1/runners HTTP/1.1\r\nHost: x\r\nAuthorization: Basic {auth}\r\nContent-Type: application/json\r\nContent-Length: 12\r\nConnection: close\r\n\r\n{{\"name\":\"x\"}}"
    )
    .unwrap();
    let mut reply = String::new();
    s.read_to_string(&mut reply).unwrap();
    assert!(reply.starts_with("HTTP/1.1 400"), "{reply}");
}

#[test]
fn runner_create_names_the_soda_remotes_or_warns_that_soda_will_not_take_a_local_key() {
    let e = require!(KeyringHome::new());
    // No Soda remote: the local key the user asked for, with a warning that says how to
    // get one Soda Cloud accepts.
    let Out { stdout, stderr } = e
        .cmd()
        .args([
            "--json",
            "create",
            "--kind",
            "runner",
            "--name",
            "local-runner",
        ])
        .code(0);
    assert!(json(&stdout)["secret"].is_string(), "{stdout}");
    let warning = stderr
        .lines()
        .find(|l| l.starts_with("keyctl: warning:"))
        .unwrap_or_else(|| panic!("no warning line: {stderr}"));
    assert!(
        warning.contains("Soda Cloud will not accept")
            && warning.contains("--type soda")
            && warning.contains("keyctl create --kind runner --remote NAME"),
        "{warning}"
    );
    assert_eq!(key(&e, "local-runner")["service"], json!({"type": "local"}));

    // Two Soda remotes and no --remote: refused (usage), naming both; nothing minted.
    let (one, two) = (Soda::start(), Soda::start());
    add_soda(&e, &one.server.url);
    e.cmd()
        .args([
            "remote",
            "add",
            "soda-us",
            "--type",
            "soda",
            "--url",
            &two.server.url,
            "--user",
            ADMIN_ID,
        ])
        .stdin(ADMIN_SECRET)
        .code(0);
    let (code, _, err) = e
        .cmd()
        .args(["create", "--kind", "runner", "--name", "which"])
        .run();
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains("2 Soda remotes are configured (soda, soda-us)") && err.contains("--remote"),
        "{err}"
    );
    assert_eq!(one.server.count("POST", "/api/v1/runners"), 0);
    assert_eq!(two.server.count("POST", "/api/v1/runners"), 0);
    assert_eq!(e.cmd().args(["show", "which"]).run().0, 3);

    // Naming one: that one mints it, and the key's service is that remote's address.
    let out = e
        .cmd()
        .args([
            "--json", "create", "--kind", "runner", "--name", "us", "--remote", "soda-us",
        ])
        .ok();
    assert_eq!(two.server.count("POST", "/api/v1/runners"), 1, "{out}");
    let port = two.server.url.rsplit(':').next().unwrap();
    assert_eq!(
        key(&e, "us")["service"],
        json!({"type": "soda-cloud", "host": "127.0.0.1", "port": port, "scheme": "http"})
    );
}

#[test]
fn a_soda_ui_key_is_never_rotated_locally_and_its_revoke_says_what_is_left_to_do() {
    let soda = Soda::start();
    let e = require!(KeyringHome::new());
    add_soda(&e, &soda.server.url);
    e.cmd()
        .args([
            "import", "--kind", "api", "--name", "ci", "--id", UI_KEY_ID, "--region", "us",
        ])
        .stdin(UI_KEY_SECRET)
        .code(0);
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("configuration.yml");
    e.cmd()
        .args(["config", "ci", "--write", file.to_str().unwrap()])
        .code(0);
    let written = std::fs::read_to_string(&file).unwrap();
    assert!(written.contains("host: \"cloud.us.soda.io\""), "{written}");
    let keys_before = e.home.registry()["keys"].as_array().unwrap().len();

    // rotate: refused with the steps in Soda Cloud's UI; nothing minted, written or revoked.
    let (code, out, err) = e
        .cmd()
        .args(["--yes", "rotate", "ci", "--write", file.to_str().unwrap()])
        .run();
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains("Soda Cloud mints API keys only in its UI")
            && err.contains("profile, API keys")
            && err.contains("https://cloud.us.soda.io")
            && err.contains("keyctl import --kind api"),
        "{err}"
    );
    assert!(out.is_empty(), "{out}");
    assert_eq!(std::fs::read_to_string(&file).unwrap(), written);
    assert_eq!(
        e.home.registry()["keys"].as_array().unwrap().len(),
        keys_before
    );
    assert_eq!(key(&e, "ci")["status"], "active");
    assert!(e.ss.secret_tool_lookup(UI_KEY_ID).is_some());
    assert_eq!(soda.server.count("POST", "/api/v1/runners"), 0);
    assert_eq!(soda.server.count("DELETE", "/api/v1/runners"), 0);

    // revoke: revoked here, and the warning says it still works in Soda Cloud until
    // deleted there, never that it no longer works.
    let err = e.cmd().args(["--yes", "revoke", "ci"]).code(0).stderr;
    assert!(
        err.contains("revoked here only")
            && err.contains("still works in Soda Cloud until it is deleted there")
            && err.contains("API keys"),
        "{err}"
    );
    assert!(!err.contains("no longer work"), "{err}");
    assert_eq!(soda.server.count("DELETE", "/api/v1/runners"), 0);
}

#[test]
fn an_old_registry_learns_its_keys_services_on_first_read() {
    let soda = Soda::start();
    let e = require!(KeyringHome::new());
    add_soda(&e, &soda.server.url);
    // Keys as an older keyctl recorded them: no `service`.
    for (name, id) in [("runner", "rk-1"), ("ui", "ui-1"), ("plain", "pl-1")] {
        e.cmd()
            .args(["import", "--kind", "api", "--name", name, "--id", id])
            .stdin("s3cret-value-0123456789")
            .code(0);
    }
    let path = e.home.path().join("keys.json");
    let mut reg: Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    for k in reg["keys"].as_array_mut().unwrap() {
        let k = k.as_object_mut().unwrap();
        k.remove("service");
        match k["name"].as_str().unwrap() {
            "runner" => {
                k.insert(
                    "remotes".into(),
                    json!([{"remote": "soda", "remote_id": null, "pushed_at": "2026-11-01T00:00:00Z"}]),
                );
            }
            "ui" => {
                k.insert("soda_host".into(), json!("cloud.us.soda.io"));
            }
            _ => {}
        }
    }
    std::fs::write(&path, serde_json::to_vec_pretty(&reg).unwrap()).unwrap();

    let port = soda.server.url.rsplit(':').next().unwrap().to_string();
    assert_eq!(
        key(&e, "runner")["service"],
        json!({"type": "soda-cloud", "host": "127.0.0.1", "port": port, "scheme": "http"})
    );
    assert_eq!(
        key(&e, "ui")["service"],
        json!({"type": "soda-cloud", "host": "cloud.us.soda.io"})
    );
    assert_eq!(key(&e, "plain")["service"], json!({"type": "local"}));
    // Written back once, under the lock.
    let saved: Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    assert!(
        saved["keys"]
            .as_array()
            .unwrap()
            .iter()
            .all(|k| k["service"].is_object()),
        "{saved}"
    );
    let shown = e.cmd().args(["show", "ui"]).ok();
    assert!(
        shown.contains("Soda Cloud (https://cloud.us.soda.io)"),
        "{shown}"
    );
    let listed = json(&e.cmd().args(["--json", "list"]).ok());
    assert!(
        listed
            .as_array()
            .unwrap()
            .iter()
            .all(|k| k["service"]["type"].is_string()),
        "{listed}"
    );
}
