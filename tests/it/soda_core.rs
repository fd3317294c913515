//! Soda Core itself judges the keys keyctl hands out: Soda Core 3.5 and 4.x (their own
//! Python code, from PyPI) log in with the `soda_cloud` block keyctl wrote, against an
//! in-process recorder that stands in for Soda Cloud, and `keyctl verify` is judged by
//! the same recorder. The recorder answers what Soda Core's source sends and reads
//! (Soda Core 3.5 `soda/cloud/soda_cloud.py` `_get_token`; 4.x
//! `soda_core/common/soda_cloud.py` `_get_token`, `test_connection`,
//! `_execute_cqrs_request`): `POST {scheme}://{host}{:port}/api/command` with
//! `{"type": "login", "apiKeyId", "apiKeySecret"}` and no Authorization header answers
//! `{"token"}`; `POST .../api/query` with `{"type": "whoAmI", "token"}`. `GET
//! /api/v1/test-login` (HTTP Basic, Soda's public API v1) is the check keyctl used to run,
//! which can pass where Soda Core's login fails and the reverse.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::{Arc, Mutex};

use crate::support::fake_http::{FakeServer, Request, Response};
use crate::support::*;
use serde_json::{Value, json};

const KEY_ID: &str = "5c7e0b9a-1d2f-4a3b-8c4d-0b0000000002";
const KEY_SECRET: &str = "ui-secret-abcdefghijklmnopqrstuvwxyz0123456789_-ABCDEF";

/// Soda Core's login and whoAmI, for any stand-in of Soda Cloud: None for other requests.
/// A request that breaks what Soda Core sends is answered 400 and noted in `violations`.
pub(crate) fn cqrs(
    keys: &BTreeMap<String, String>,
    violations: &mut Vec<String>,
    r: &Request,
) -> Option<Response> {
    let bad = |violations: &mut Vec<String>, why: String| {
        violations.push(why);
        Some(Response::json(400, json!({"code": "bad_request"})))
    };
    match (r.method.as_str(), r.path.as_str()) {
        ("POST", "/api/command") => {
            if r.header("authorization").is_some() {
                return bad(
                    violations,
                    "Soda Core's login sends no Authorization".into(),
                );
            }
            let body: Value = serde_json::from_str(&r.body).unwrap_or_default();
            if body["type"] != "login" {
                return bad(violations, format!("not a login command: {}", r.body.len()));
            }
            let id = body["apiKeyId"].as_str().unwrap_or_default();
            let secret = body["apiKeySecret"].as_str().unwrap_or_default();
            if keys.get(id).map(String::as_str) != Some(secret) {
                return Some(Response::json(401, json!({"code": "unauthenticated"})));
            }
            Some(Response::json(200, json!({"token": format!("tok-{id}")})))
        }
        ("POST", "/api/query") => {
            let body: Value = serde_json::from_str(&r.body).unwrap_or_default();
            let token = body["token"].as_str().unwrap_or_default();
            let known = token
                .strip_prefix("tok-")
                .is_some_and(|id| keys.contains_key(id));
            if !known {
                return Some(Response::json(401, json!({"code": "unauthenticated"})));
            }
            if body["type"] != "whoAmI" {
                return bad(violations, format!("unexpected query {}", body["type"]));
            }
            Some(Response::json(
                200,
                json!({"user": {"email": "ci@example.com"}}),
            ))
        }
        _ => None,
    }
}

/// A Soda Cloud stand-in that accepts the key through one door only: Soda Core's
/// `/api/command` login, or `GET /api/v1/test-login`.
struct Recorder {
    server: FakeServer,
    violations: Arc<Mutex<Vec<String>>>,
}

impl Recorder {
    fn start(login: bool, test_login: bool) -> Recorder {
        let keys: BTreeMap<String, String> = [(KEY_ID.to_string(), KEY_SECRET.to_string())].into();
        let violations = Arc::new(Mutex::new(Vec::new()));
        let v = violations.clone();
        let server = FakeServer::start(move |r| {
            let path = r.path.as_str();
            if path.starts_with("/api/command") || path.starts_with("/api/query") {
                if !login {
                    return Response::json(404, json!({"code": "not_found"}));
                }
                return cqrs(&keys, &mut v.lock().unwrap(), r)
                    .unwrap_or_else(|| Response::json(404, json!({})));
            }
            if r.method == "GET" && path == "/api/v1/test-login" && test_login {
                let basic = base64::Engine::encode(
                    &base64::engine::general_purpose::STANDARD,
                    format!("{KEY_ID}:{KEY_SECRET}"),
                );
                if r.header("authorization") == Some(&format!("Basic {basic}")) {
                    return Response::json(200, json!({"organisationName": "Acme"}));
                }
                return Response::json(401, json!({"code": "UNAUTHORIZED"}));
            }
            Response::json(404, json!({"code": "NOT_FOUND"}))
        });
        Recorder { server, violations }
    }

    fn port(&self) -> String {
        self.server.url.rsplit(':').next().unwrap().to_string()
    }

    /// Login requests from anyone (Soda Core, keyctl).
    fn logins(&self) -> usize {
        self.server.count("POST", "/api/command")
    }
}

/// Soda Core 3.x: the configuration file as `soda scan -c` reads it, then its own login.
const SODA3_LOGIN: &str = r#"
import sys, json
from soda.scan import Scan
s = Scan()
s.add_configuration_yaml_file(sys.argv[1])
c = s._configuration.soda_cloud
r = {"api_url": c.api_url}
try:
    c._get_token()
    r["login"] = "ok"
except BaseException as e:
    r["login"] = "failed: " + type(e).__name__
print("KEYCTL-RESULT " + json.dumps(r))
"#;

/// Soda Core 4.x: the Soda Cloud file as `-sc FILE` reads it, its login, then what
/// `soda cloud test` sends (whoAmI), judged by the reply it got, not by what it prints.
const SODA4_LOGIN: &str = r#"
import sys, json
from soda_core.common.soda_cloud import SodaCloud
c = SodaCloud.from_config(sys.argv[1])
r = {"api_url": c.api_url}
try:
    c._get_token()
    resp = c._execute_query({"type": "whoAmI"}, request_log_name="who_am_i")
    r["login"] = "ok" if resp is not None and resp.status_code == 200 else "failed: whoAmI"
except BaseException as e:
    r["login"] = "failed: " + type(e).__name__
print("KEYCTL-RESULT " + json.dumps(r))
"#;

fn soda_login(py: &Path, probe: &str, file: &Path) -> Value {
    let (code, out, err) = Cmd::new(py)
        .arg("-c")
        .arg(probe)
        .arg(file)
        .env_remove("HTTP_PROXY")
        .env_remove("HTTPS_PROXY")
        .env_remove("http_proxy")
        .env_remove("https_proxy")
        .env("NO_PROXY", "127.0.0.1")
        .run();
    assert_eq!(code, 0, "{}: {err}{out}", py.display());
    let line = out
        .lines()
        .find_map(|l| l.strip_prefix("KEYCTL-RESULT "))
        .unwrap_or_else(|| panic!("no result from {}: {out}{err}", py.display()));
    serde_json::from_str(line).unwrap()
}

/// Imports the UI key for the recorder's address and writes its block into a
/// configuration file that already has other settings.
fn key_for(home: &Home, rec: &Recorder, dir: &Path) -> std::path::PathBuf {
    let port = rec.port();
    home.cmd()
        .env("KEYCTL_STORE", "file")
        .args([
            "import",
            "--kind",
            "api",
            "--name",
            "ci",
            "--id",
            KEY_ID,
            "--host",
            "127.0.0.1",
            "--port",
            &port,
            "--scheme",
            "http",
        ])
        .stdin(KEY_SECRET)
        .ok();
    let f = dir.join("configuration.yml");
    std::fs::write(&f, "data_source warehouse:\n  type: postgres\n").unwrap();
    home.cmd()
        .env("KEYCTL_STORE", "file")
        .args(["config", "ci", "--write", f.to_str().unwrap()])
        .ok();
    let text = std::fs::read_to_string(&f).unwrap();
    assert!(
        text.contains(&format!("  port: \"{port}\"\n")) && text.contains("  scheme: \"http\"\n"),
        "port quoted, scheme kept: {text}"
    );
    f
}

#[test]
fn verify_says_works_exactly_when_soda_core_can_log_in() {
    let soda3 = require!(need("Soda Core 3", "KEYCTL_TEST_SODA3_PYTHON"));
    let soda4 = require!(need("Soda Core 4", "KEYCTL_TEST_SODA4_PYTHON"));
    let dir = tempfile::tempdir().unwrap();

    // Soda Core's login works, test-login does not: Soda Core works and so does verify.
    let only_login = Recorder::start(true, false);
    let home = Home::new();
    let f = key_for(&home, &only_login, dir.path());
    let api = format!("{}/api", only_login.server.url);
    for (py, probe) in [(&soda3, SODA3_LOGIN), (&soda4, SODA4_LOGIN)] {
        let got = soda_login(py, probe, &f);
        assert_eq!(
            got,
            json!({"api_url": api, "login": "ok"}),
            "{}",
            py.display()
        );
    }
    let before = only_login.logins();
    let Out { stderr, .. } = home
        .cmd()
        .env("KEYCTL_STORE", "file")
        .args(["verify", "ci"])
        .code(0);
    assert!(
        stderr.contains("works in its service")
            && stderr.contains("POST /api/command login")
            && stderr.contains("whoAmI"),
        "{stderr}"
    );
    assert_eq!(
        only_login.logins(),
        before + 1,
        "keyctl logged in as Soda Core does"
    );
    assert_eq!(only_login.server.count("GET", "/api/v1/test-login"), 0);
    assert_eq!(*only_login.violations.lock().unwrap(), Vec::<String>::new());

    // Only test-login answers: Soda Core cannot log in, and verify says so (exit 7).
    let only_test_login = Recorder::start(false, true);
    let home = Home::new();
    let dir2 = tempfile::tempdir().unwrap();
    let f = key_for(&home, &only_test_login, dir2.path());
    for (py, probe) in [(&soda3, SODA3_LOGIN), (&soda4, SODA4_LOGIN)] {
        let got = soda_login(py, probe, &f);
        assert_ne!(got["login"], "ok", "{}: {got}", py.display());
    }
    let (code, _, err) = home
        .cmd()
        .env("KEYCTL_STORE", "file")
        .args(["verify", "ci"])
        .run();
    assert_eq!(code, 7, "{err}");
    assert!(
        err.contains("does not work") && err.contains("/api/command"),
        "{err}"
    );
    assert!(!err.contains(KEY_SECRET), "{err}");
}
