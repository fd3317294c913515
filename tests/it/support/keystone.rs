//! A real OpenStack Keystone for the remote tests: installed from PyPI into a cached
//! venv by scripts/test (`KEYCTL_TEST_KEYSTONE_VENV`), started once per test run (the
//! tests are one binary) on a free loopback port with SQLite in a temp dir, and stopped
//! when the test binary exits (a shell watcher kills gunicorn once this process is gone,
//! since statics are never dropped).
//!
//! Tests make their own users and projects through the admin API, so they run in
//! parallel, and check results against Keystone's own API rather than through keyctl.

use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::support::Cmd;

pub(crate) const ADMIN_PASSWORD: &str = "admin-test-pw";

pub(crate) struct Keystone {
    pub url: String,
    pub admin_token: String,
    http: reqwest::blocking::Client,
    /// The shell that runs gunicorn and stops it when this process is gone.
    _watcher: std::process::Child,
}

/// A user with a project of its own, made for one test.
pub(crate) struct User {
    pub name: String,
    pub id: String,
    pub project: String,
    pub project_id: String,
    pub password: String,
}

impl User {
    /// `keyctl remote add NAME ...` for this user on `url` (the password goes on stdin).
    pub(crate) fn remote_add_args<'a>(&'a self, name: &'a str, url: &'a str) -> [&'a str; 9] {
        [
            "remote",
            "add",
            name,
            "--url",
            url,
            "--user",
            &self.name,
            "--project",
            &self.project,
        ]
    }

    /// Adds remote `name` for this user on the run's Keystone with `keyctl`.
    pub(crate) fn add_remote(&self, keyctl: Cmd, name: &str) {
        keyctl
            .args(self.remote_add_args(name, &started().url))
            .stdin(&self.password)
            .ok();
    }
}

static KEYSTONE: OnceLock<Keystone> = OnceLock::new();
static SEQ: AtomicU32 = AtomicU32::new(0);

/// The run's Keystone, started by the first test that asks; None (see `require!`) when
/// it is not installed.
pub(crate) fn keystone() -> Option<&'static Keystone> {
    if let Some(ks) = KEYSTONE.get() {
        return Some(ks);
    }
    let venv = crate::support::need("Keystone", "KEYCTL_TEST_KEYSTONE_VENV")?;
    Some(KEYSTONE.get_or_init(|| Keystone::start(&venv)))
}

/// The run's Keystone, for code that runs only once a test has [`keystone`] (the
/// stand-ins that call it from their request handlers).
pub(crate) fn started() -> &'static Keystone {
    KEYSTONE.get().expect("keystone() was called first")
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn manage(venv: &Path, conf: &Path, args: &[&str]) {
    let o = Command::new(venv.join("bin/keystone-manage"))
        .arg("--config-file")
        .arg(conf)
        .args(args)
        .output()
        .expect("run keystone-manage");
    assert!(
        o.status.success(),
        "keystone-manage {args:?} failed: {}",
        String::from_utf8_lossy(&o.stderr)
    );
}

impl Keystone {
    fn start(venv: &Path) -> Keystone {
        assert!(
            venv.join("bin/gunicorn").is_file() && venv.join("bin/keystone-manage").is_file(),
            "Keystone is not installed in {}: run the README's test command (scripts/test), which installs keystone==30.0.0 and gunicorn from PyPI into that venv",
            venv.display()
        );
        let dir = tempfile::Builder::new()
            .prefix("keyctl-keystone-")
            .tempdir()
            .unwrap()
            .keep();
        let port = free_port();
        let url = format!("http://127.0.0.1:{port}");
        let conf = dir.join("keystone.conf");
        std::fs::write(
            &conf,
            format!(
                "[DEFAULT]\nlog_file = {d}/keystone.log\n\
                 [database]\nconnection = sqlite:///{d}/keystone.db\n\
                 [token]\nprovider = fernet\n\
                 [fernet_tokens]\nkey_repository = {d}/fernet-keys\n\
                 [credential]\nkey_repository = {d}/credential-keys\n\
                 [identity]\npassword_hash_rounds = 4\n\
                 [auth]\nmethods = password,token,application_credential,ec2credential\n",
                d = dir.display()
            ),
        )
        .unwrap();
        let user =
            String::from_utf8(Command::new("id").arg("-un").output().unwrap().stdout).unwrap();
        let group =
            String::from_utf8(Command::new("id").arg("-gn").output().unwrap().stdout).unwrap();
        let (user, group) = (user.trim(), group.trim());
        manage(
            venv,
            &conf,
            &[
                "fernet_setup",
                "--keystone-user",
                user,
                "--keystone-group",
                group,
            ],
        );
        manage(
            venv,
            &conf,
            &[
                "credential_setup",
                "--keystone-user",
                user,
                "--keystone-group",
                group,
            ],
        );
        manage(venv, &conf, &["db_sync"]);
        let v3 = format!("{url}/v3/");
        manage(
            venv,
            &conf,
            &[
                "bootstrap",
                "--bootstrap-password",
                ADMIN_PASSWORD,
                "--bootstrap-region-id",
                "RegionOne",
                "--bootstrap-public-url",
                &v3,
                "--bootstrap-admin-url",
                &v3,
                "--bootstrap-internal-url",
                &v3,
            ],
        );
        // One worker: SQLite under several writer processes answers "database is
        // locked" as HTTP 500 now and then.
        // oslo.config parses sys.argv: under gunicorn it would see gunicorn's flags.
        std::fs::write(
            dir.join("keyctl_ks_shim.py"),
            "import sys\nsys.argv = sys.argv[:1]\nfrom keystone.wsgi.api import application\n",
        )
        .unwrap();
        let script = format!(
            "'{g}' --bind 127.0.0.1:{port} --workers 1 --timeout 120 --no-control-socket \
             --chdir '{d}' keyctl_ks_shim:application >'{d}/gunicorn.log' 2>&1 & g=$!; \
             while kill -0 {me} 2>/dev/null && kill -0 $g 2>/dev/null; do sleep 0.5; done; \
             kill $g 2>/dev/null; wait $g; rm -rf '{d}'",
            g = venv.join("bin/gunicorn").display(),
            d = dir.display(),
            me = std::process::id(),
        );
        let watcher = Command::new("sh")
            .arg("-c")
            .arg(script)
            .env("OS_KEYSTONE_CONFIG_DIR", &dir)
            .env("HOME", &dir)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start gunicorn");
        let http = reqwest::blocking::Client::builder()
            .timeout(Duration::from_secs(30))
            .build()
            .unwrap();
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Ok(r) = http.get(&v3).send()
                && r.status().is_success()
            {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "Keystone did not answer on {v3} within 60 s; gunicorn log: {}",
                std::fs::read_to_string(dir.join("gunicorn.log")).unwrap_or_default()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        let mut ks = Keystone {
            url,
            admin_token: String::new(),
            http,
            _watcher: watcher,
        };
        ks.admin_token = ks.login("admin", ADMIN_PASSWORD, "admin");
        ks
    }

    /// A project-scoped token for a user, straight from Keystone.
    pub(crate) fn login(&self, user: &str, password: &str, project: &str) -> String {
        let body = json!({"auth": {
            "identity": {"methods": ["password"], "password": {"user": {
                "name": user, "domain": {"name": "Default"}, "password": password}}},
            "scope": {"project": {"name": project, "domain": {"name": "Default"}}}}});
        let r = self
            .http
            .post(format!("{}/v3/auth/tokens", self.url))
            .json(&body)
            .send()
            .unwrap();
        assert_eq!(r.status().as_u16(), 201, "login of {user} failed");
        r.headers()["x-subject-token"].to_str().unwrap().to_string()
    }

    /// An admin API call: (status, JSON body or Null).
    pub(crate) fn api(&self, method: &str, path: &str, body: Option<Value>) -> (u16, Value) {
        self.api_as(&self.admin_token, method, path, body)
    }

    pub(crate) fn api_as(
        &self,
        token: &str,
        method: &str,
        path: &str,
        body: Option<Value>,
    ) -> (u16, Value) {
        let m = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
        let mut rb = self
            .http
            .request(m, format!("{}{path}", self.url))
            .header("X-Auth-Token", token);
        if let Some(b) = body {
            rb = rb.json(&b);
        }
        let r = rb.send().unwrap();
        let status = r.status().as_u16();
        let text = r.text().unwrap();
        (status, serde_json::from_str(&text).unwrap_or(Value::Null))
    }

    /// Keystone's own view of a token (admin validation): its `token` object.
    pub(crate) fn validate(&self, token: &str) -> Value {
        let r = self
            .http
            .get(format!("{}/v3/auth/tokens", self.url))
            .header("X-Auth-Token", &self.admin_token)
            .header("X-Subject-Token", token)
            .send()
            .unwrap();
        assert_eq!(r.status().as_u16(), 200, "token does not validate");
        r.json::<Value>().unwrap()["token"].clone()
    }

    fn role_id(&self, name: &str) -> String {
        let (s, v) = self.api("GET", &format!("/v3/roles?name={name}"), None);
        assert_eq!(s, 200);
        v["roles"][0]["id"].as_str().unwrap().to_string()
    }

    /// A new user with a project of its own; `role` on that project unless None.
    pub(crate) fn user(&self, prefix: &str, role: Option<&str>) -> User {
        self.user_in(prefix, "default", "default", role)
    }

    /// A new domain: (id, name).
    pub(crate) fn domain(&self, prefix: &str) -> (String, String) {
        let n = SEQ.fetch_add(1, Ordering::SeqCst);
        let name = format!("{prefix}-{}-{n}", std::process::id());
        let (s, v) = self.api(
            "POST",
            "/v3/domains",
            Some(json!({"domain": {"name": name}})),
        );
        assert_eq!(s, 201, "create domain: {v}");
        (v["domain"]["id"].as_str().unwrap().to_string(), name)
    }

    /// A new user in domain `user_domain` (an ID) with a project of its own in domain
    /// `project_domain`; `role` on that project unless None.
    pub(crate) fn user_in(
        &self,
        prefix: &str,
        user_domain: &str,
        project_domain: &str,
        role: Option<&str>,
    ) -> User {
        let n = SEQ.fetch_add(1, Ordering::SeqCst);
        let name = format!("{prefix}-{}-{n}", std::process::id());
        let project = format!("p-{name}");
        let (s, v) = self.api(
            "POST",
            "/v3/projects",
            Some(json!({"project": {"name": project, "domain_id": project_domain}})),
        );
        assert_eq!(s, 201, "create project: {v}");
        let project_id = v["project"]["id"].as_str().unwrap().to_string();
        let password = format!("pw-{name}");
        let (s, v) = self.api(
            "POST",
            "/v3/users",
            Some(json!({"user": {"name": name, "domain_id": user_domain,
                "password": password, "default_project_id": project_id}})),
        );
        assert_eq!(s, 201, "create user: {v}");
        let id = v["user"]["id"].as_str().unwrap().to_string();
        if let Some(role) = role {
            let rid = self.role_id(role);
            let (s, _) = self.api(
                "PUT",
                &format!("/v3/projects/{project_id}/users/{id}/roles/{rid}"),
                None,
            );
            assert_eq!(s, 204, "assign role");
        }
        User {
            name,
            id,
            project,
            project_id,
            password,
        }
    }

    /// The ec2 credentials Keystone holds for a user: (access, secret) pairs.
    pub(crate) fn ec2_of(&self, user_id: &str) -> Vec<(String, String)> {
        let (s, v) = self.api(
            "GET",
            &format!("/v3/credentials?user_id={user_id}&type=ec2"),
            None,
        );
        assert_eq!(s, 200, "{v}");
        v["credentials"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| {
                let b: Value = serde_json::from_str(c["blob"].as_str().unwrap()).unwrap();
                (
                    b["access"].as_str().unwrap().to_string(),
                    b["secret"].as_str().unwrap().to_string(),
                )
            })
            .collect()
    }
}

/// `keyctl --json create --remote REMOTE --app-credential --name NAME --unrestricted
/// --access-rules FILE` with one rule (GET /v3/users/* on identity), the rules file
/// written in `dir`: the created key's JSON.
pub(crate) fn create_ruled_app_credential(
    keyctl: Cmd,
    dir: &Path,
    remote: &str,
    name: &str,
) -> Value {
    let rules = dir.join("rules.yaml");
    std::fs::write(
        &rules,
        "- service: identity\n  method: GET\n  path: /v3/users/*\n",
    )
    .unwrap();
    keyctl
        .args([
            "--json",
            "create",
            "--remote",
            remote,
            "--app-credential",
            "--name",
            name,
            "--unrestricted",
            "--access-rules",
            rules.to_str().unwrap(),
        ])
        .json()
}
