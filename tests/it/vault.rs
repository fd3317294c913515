//! End-to-end tests of the team store against a real OpenBao: two keyctl homes act as
//! two machines sharing one server, checked also through OpenBao's own HTTP API; many
//! concurrent creators; a 3-node Raft cluster losing its leader mid-run; and the
//! failures a team meets (bad token, sealed server, wrong mount, server down).

use crate::support::openbao::*;
use crate::support::*;
use serde_json::json;

/// Writes the home's config.yaml.
fn write_config(home: &Home, yaml: &str) {
    std::fs::create_dir_all(home.path()).unwrap();
    std::fs::write(home.path().join("config.yaml"), yaml).unwrap();
}

/// keyctl in `home` with `--store vault` against `addr` with `token`.
fn vault_cmd(home: &Home, addr: &str, token: &str) -> Cmd {
    home.cmd()
        .env("BAO_ADDR", addr)
        .env("BAO_TOKEN", token)
        .env("KEYCTL_STORE", "vault")
}

fn create(bao: &DevServer, home: &Home, args: &[&str]) -> serde_json::Value {
    bao.cmd(home).args(["--json", "create"]).args(args).json()
}

#[test]
fn two_machines_share_keys_through_openbao() {
    let bao = require!(DevServer::start());
    let (a, b) = (Home::new(), Home::new());
    let k = create(
        &bao,
        &a,
        &["--name", "ci", "--scope", "read", "--expires", "90d"],
    );
    assert_eq!(k["store"], "vault");
    let id = k["id"].as_str().unwrap();
    let secret = k["secret"].as_str().unwrap();

    // What OpenBao holds, read with its own API: the record, the secret at a path of its
    // own, the name claimed for this ID, and nothing of the key in A's local registry.
    let stored = bao.api.key(id).expect("key in OpenBao");
    assert_eq!(stored.get("secret"), None, "metadata only: {stored}");
    assert_eq!(bao.api.secret(id).as_deref(), Some(secret));
    assert_eq!(stored["record"]["name"], "ci");
    assert_eq!(stored["record"]["scopes"], json!(["read"]));
    assert_eq!(bao.api.name_owner("ci").as_deref(), Some(id));
    assert!(!a.path().join("secrets.json").exists());

    // Machine B configured by config.yaml instead of the environment.
    std::fs::create_dir_all(b.path()).unwrap();
    std::fs::write(
        b.path().join("config.yaml"),
        format!("store: vault\nvault:\n  addr: {}\n", bao.addr()),
    )
    .unwrap();
    let b_cmd = || b.cmd().env("BAO_TOKEN", ROOT_TOKEN);
    let listed = b_cmd().args(["--json", "list"]).json();
    assert_eq!(listed.as_array().unwrap().len(), 1, "{listed}");
    assert_eq!(listed[0]["id"], id);
    assert_eq!(listed[0]["store"], "vault");
    assert_eq!(b_cmd().args(["secret", "ci"]).ok(), format!("{secret}\n"));
    assert_eq!(b_cmd().args(["secret", id]).ok(), format!("{secret}\n"));
    // config and run on B use the same shared record and secret.
    assert_eq!(
        b_cmd().args(["config", "ci", "--output", "env"]).ok(),
        format!("SODA_API_KEY_ID={id}\nSODA_API_KEY_SECRET={secret}\n")
    );
    assert_eq!(
        b_cmd()
            .args([
                "run",
                "ci",
                "--",
                "sh",
                "-c",
                "printf '%s %s' \"$SODA_API_KEY_ID\" \"$SODA_API_KEY_SECRET\"",
            ])
            .ok(),
        format!("{id} {secret}")
    );
    let shown = b_cmd().args(["show", "ci"]).ok();
    assert!(
        shown.contains(&format!("secret/keyctl/keys/{id}")),
        "{shown}"
    );
    assert!(!shown.contains(secret));

    // The name is taken team-wide: B cannot reuse it, and nothing is half-written.
    let (code, out, err) = b_cmd().args(["create", "--name", "ci"]).run();
    assert_eq!(code, 4, "{err}");
    assert!(err.contains("a key named 'ci' already exists"), "{err}");
    assert!(out.is_empty());
    assert_eq!(bao.api.key_ids().len(), 1);

    // Revoked on another machine: B sees it at once.
    bao.cmd(&a).args(["revoke", "ci", "--yes"]).ok();
    assert!(bao.api.key(id).unwrap()["record"]["revoked_at"].is_string());
    let (code, out, err) = b_cmd().args(["secret", "ci"]).run();
    assert_eq!(code, 8, "{err}");
    assert!(out.is_empty() && err.contains("revoked"), "{err}");
    assert_eq!(b_cmd().args(["--json", "list"]).json(), json!([]));
    assert_eq!(
        b_cmd().args(["--json", "list", "--all"]).json()[0]["status"],
        "revoked"
    );

    // Without --yes and no terminal, nothing is deleted, and the question says how far
    // the deletion would reach.
    b_cmd()
        .args(["delete", "ci"])
        .code(10)
        .stderr_has("for every machine");
    assert!(bao.api.key(id).is_some());

    // Deleted on B: gone in OpenBao (all versions, name claim) and for A.
    b_cmd()
        .args(["delete", "ci", "--yes"])
        .code(0)
        .stderr_has("for every machine");
    assert_eq!(bao.api.key(id), None);
    let (s, _) = bao
        .api
        .call("GET", &format!("secret/metadata/keyctl/keys/{id}"), None);
    assert_eq!(s, 404, "versions left behind");
    assert_eq!(bao.api.name_owner("ci"), None);
    let (code, out, err) = bao.cmd(&a).args(["secret", "ci"]).run();
    assert_eq!(code, 3, "{err}");
    assert!(out.is_empty());
    // The name is free again.
    create(&bao, &a, &["--name", "ci"]);
}

/// A server and a home holding a file-store key named `local_name` and a team key
/// named `team`; returns the local key's `create --json`.
fn local_and_team(local_name: &str) -> Option<(DevServer, Home, serde_json::Value)> {
    let bao = DevServer::start()?;
    let home = Home::new();
    let local = json(
        &bao.cmd(&home)
            .args(["--store", "file", "--json", "create", "--name", local_name])
            .ok(),
    );
    create(&bao, &home, &["--name", "team"]);
    Some((bao, home, local))
}

#[test]
fn local_and_team_keys_side_by_side() {
    let (bao, home, local) = require!(local_and_team("laptop"));
    let listed = bao.cmd(&home).args(["--json", "list"]).json();
    let stores: Vec<(&str, &str)> = listed
        .as_array()
        .unwrap()
        .iter()
        .map(|k| (k["name"].as_str().unwrap(), k["store"].as_str().unwrap()))
        .collect();
    assert_eq!(stores, [("laptop", "file"), ("team", "vault")]);
    // A team key cannot take a name this machine already uses.
    let (code, _, err) = bao.cmd(&home).args(["create", "--name", "laptop"]).run();
    assert_eq!(code, 4, "{err}");
    assert_eq!(bao.api.name_owner("laptop"), None);
    // The local key still reads from its own store.
    assert_eq!(
        bao.cmd(&home).args(["secret", "laptop"]).ok().trim(),
        local["secret"].as_str().unwrap()
    );
}

#[test]
fn hundred_concurrent_creates_from_two_machines_all_land() {
    let bao = require!(DevServer::start());
    let homes = [Home::new(), Home::new()];
    let children: Vec<_> = (0..100)
        .map(|i| {
            let mut c = bao.cmd(&homes[i % 2]).command();
            c.args(["--json", "create", "--name", &format!("k{i}")])
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped());
            c.spawn().unwrap()
        })
        .collect();
    let mut ids = std::collections::BTreeSet::new();
    for ch in children {
        let o = ch.wait_with_output().unwrap();
        assert!(
            o.status.success(),
            "create failed: {}",
            String::from_utf8_lossy(&o.stderr)
        );
        let v = json(&String::from_utf8_lossy(&o.stdout));
        assert!(ids.insert(v["id"].as_str().unwrap().to_owned()));
    }
    let stored: std::collections::BTreeSet<String> = bao.api.key_ids().into_iter().collect();
    assert_eq!(stored, ids, "OpenBao holds exactly the 100 reported keys");
    for i in 0..100 {
        assert!(bao.api.name_owner(&format!("k{i}")).is_some());
    }
    assert_eq!(
        bao.cmd(&homes[0])
            .args(["--json", "list"])
            .json()
            .as_array()
            .unwrap()
            .len(),
        100
    );

    // 20 processes racing for one name: exactly one wins, the rest get a clear conflict.
    let racers: Vec<_> = (0..20)
        .map(|i| {
            let mut c = bao.cmd(&homes[i % 2]).command();
            c.args(["--json", "create", "--name", "contested"])
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped());
            c.spawn().unwrap()
        })
        .collect();
    let mut winners = Vec::new();
    for ch in racers {
        let o = ch.wait_with_output().unwrap();
        match o.status.code() {
            Some(0) => winners.push(json(&String::from_utf8_lossy(&o.stdout))),
            Some(4) => assert!(String::from_utf8_lossy(&o.stderr).contains("already exists")),
            c => panic!(
                "unexpected exit {c:?}: {}",
                String::from_utf8_lossy(&o.stderr)
            ),
        }
    }
    assert_eq!(winners.len(), 1);
    assert_eq!(
        bao.api.name_owner("contested").as_deref(),
        winners[0]["id"].as_str()
    );
    assert_eq!(
        bao.api.key_ids().len(),
        101,
        "no orphan entries from losers"
    );
}

#[test]
fn doctor_reports_server_mount_and_token_ttl() {
    let bao = require!(DevServer::start());
    let home = Home::new();
    create(&bao, &home, &["--name", "one"]);
    let (s, tok) = bao.api.call(
        "POST",
        "auth/token/create",
        Some(json!({"ttl": "2h", "policies": ["root"]})),
    );
    assert_eq!(s, 200, "{tok}");
    let short = tok["auth"]["client_token"].as_str().unwrap();
    let (code, out, err) = bao
        .cmd(&home)
        .env("BAO_TOKEN", short)
        .args(["--json", "doctor"])
        .run();
    assert_eq!(code, 0, "{err}");
    assert!(!out.contains(short), "token printed");
    let r = json(&out);
    assert_eq!(r["store_choice"], "vault");
    assert_eq!(r["new_secrets_go_to"], "vault");
    let v = &r["vault"];
    assert_eq!(v["addr"], bao.addr());
    assert_eq!(v["mount"], "secret");
    assert_eq!(v["prefix"], "keyctl");
    assert_eq!(v["token_source"], "BAO_TOKEN");
    assert_eq!(v["keys"], 1);
    assert_eq!(v["standby"], false);
    let ttl = v["token_ttl_seconds"].as_u64().unwrap();
    assert!((7000..=7200).contains(&ttl), "ttl {ttl}");
    let text = bao.cmd(&home).env("BAO_TOKEN", short).arg("doctor").ok();
    assert!(
        text.contains("expires in 1") || text.contains("expires in 2"),
        "{text}"
    );
    assert!(text.contains(bao.addr()), "{text}");

    // The token helper's file is used when no variable is set.
    std::fs::write(
        home.dir.path().join("user/.vault-token"),
        format!("{short}\n"),
    )
    .unwrap();
    let r = json(
        &bao.cmd(&home)
            .env_remove("BAO_TOKEN")
            .arg("--json")
            .arg("doctor")
            .ok(),
    );
    assert!(
        r["vault"]["token_source"]
            .as_str()
            .unwrap()
            .ends_with(".vault-token")
    );
}

/// Runs a failing command and checks code, message, empty stdout, and that the local
/// home and the server are exactly as before.
fn fails(bao: &DevServer, home: &Home, c: Cmd, code: i32, needle: &str) -> String {
    let before = home.files_except_store();
    let ids = bao.api.key_ids();
    let (got, out, err) = c.run();
    assert_eq!(got, code, "{err}");
    assert!(err.contains(needle), "expected {needle:?} in: {err}");
    assert_eq!(err.lines().count(), 1, "one-line error: {err}");
    assert!(out.is_empty(), "{out}");
    assert_eq!(home.files_except_store(), before, "local state changed");
    assert_eq!(bao.api.key_ids(), ids, "server state changed");
    err
}

#[test]
fn clear_errors_and_nothing_lost_locally() {
    // A local key that must survive every failure below.
    let (bao, home, local) = require!(local_and_team("local"));

    let c = bao
        .cmd(&home)
        .env("BAO_TOKEN", "not-a-token")
        .args(["create", "--name", "x"]);
    let err = fails(&bao, &home, c, 5, "rejected the token from BAO_TOKEN");
    assert!(!err.contains("not-a-token"));
    let c = bao
        .cmd(&home)
        .env("BAO_TOKEN", "not-a-token")
        .args(["secret", "team"]);
    fails(&bao, &home, c, 5, "permission denied");

    let c = bao
        .cmd(&home)
        .env_remove("BAO_TOKEN")
        .args(["create", "--name", "x"]);
    fails(&bao, &home, c, 5, "no OpenBao/Vault token");

    write_config(&home, "vault:\n  mount: nokv\n");
    let c = bao.cmd(&home).args(["create", "--name", "x"]);
    fails(&bao, &home, c, 5, "no KV v2 engine mounted at nokv/");
    std::fs::remove_file(home.path().join("config.yaml")).unwrap();

    let c = bao
        .cmd(&home)
        .env("BAO_ADDR", "http://vault.example.com:8200")
        .args(["create", "--name", "x"]);
    fails(&bao, &home, c, 2, "refusing plain http");

    // Server down: a closed port, with a short retry budget.
    write_config(&home, "vault:\n  retry_seconds: 1\n");
    let closed = format!("http://127.0.0.1:{}", free_ports());
    let c = bao
        .cmd(&home)
        .env("BAO_ADDR", &closed)
        .args(["create", "--name", "x"]);
    fails(&bao, &home, c, 5, "retry later");
    let c = bao
        .cmd(&home)
        .env("BAO_ADDR", &closed)
        .args(["secret", "team"]);
    fails(&bao, &home, c, 5, "is not available");
    // A local key is answered locally: no wait for (or word about) the team store.
    let t = std::time::Instant::now();
    let (code, out, err) = bao
        .cmd(&home)
        .env("BAO_ADDR", &closed)
        .env("KEYCTL_STORE", "file")
        .args(["secret", "local"])
        .run();
    assert_eq!(code, 0, "{err}");
    assert_eq!(out.trim(), local["secret"].as_str().unwrap());
    assert!(!err.contains("team store"), "{err}");
    assert!(
        t.elapsed() < std::time::Duration::from_millis(900),
        "{:?}",
        t.elapsed()
    );

    // Sealed.
    let (s, b) = bao.api.call("PUT", "sys/seal", None);
    assert_eq!(s, 204, "{b}");
    let before = home.files_except_store();
    let (code, out, err) = bao.cmd(&home).args(["create", "--name", "x"]).run();
    assert_eq!(code, 5, "{err}");
    assert!(err.contains("is sealed"), "{err}");
    assert!(out.is_empty());
    assert_eq!(home.files_except_store(), before);
    let (code, out, _) = bao.cmd(&home).arg("doctor").run();
    assert_eq!(code, 5);
    assert!(out.contains("sealed"), "{out}");
    assert_eq!(
        bao.cmd(&home)
            .env("KEYCTL_STORE", "file")
            .args(["secret", "local"])
            .ok()
            .trim(),
        local["secret"].as_str().unwrap()
    );
}

/// The leader of a 3-node Raft cluster dies in the middle of a run of creates sent to a
/// follower: every create keyctl reported as done is in the cluster afterwards, and the
/// ones that failed said so clearly, with the "retry later" exit code.
#[test]
fn raft_leader_failover_loses_no_acknowledged_create() {
    let mut cluster = require!(Cluster::start());
    let leader = cluster.leader();
    let follower = (leader + 1) % 3;
    let home = Home::new();
    // A short retry budget, so that some creates do fail during the election and their
    // errors can be checked; the default budget (15 s) rides out an election.
    write_config(&home, "vault:\n  retry_seconds: 1\n");
    let addr = cluster.nodes[follower].addr();
    let token = cluster.root_token.clone();
    let run_create = |i: usize| {
        vault_cmd(&home, &addr, &token)
            .args(["--json", "create", "--name", &format!("f{i}")])
            .run()
    };
    // Machine A on the leader, machine B on a follower: B sees each key A just created,
    // although a follower's own copy lags the leader.
    let leader_addr = cluster.nodes[leader].addr();
    let other = Home::new();
    for i in 0..10 {
        let secret = json(
            &vault_cmd(&other, &leader_addr, &token)
                .args(["--json", "create", "--name", &format!("x{i}")])
                .ok(),
        )["secret"]
            .as_str()
            .unwrap()
            .to_owned();
        let (code, out, err) = vault_cmd(&home, &addr, &token)
            .args(["secret", &format!("x{i}")])
            .run();
        assert_eq!(
            (code, out.trim()),
            (0, secret.as_str()),
            "read x{i} on a follower: {err}"
        );
    }

    // doctor says when it talks to a standby.
    let r = json(
        &vault_cmd(&home, &addr, &token)
            .args(["--json", "doctor"])
            .ok(),
    );
    assert_eq!(r["vault"]["standby"], true, "{r}");
    assert!(
        r["problems"].to_string().contains("disable_standby_reads"),
        "{r}"
    );

    let mut acked = Vec::new();
    let mut failed = Vec::new();
    let started = std::time::Instant::now();
    for i in 0..60 {
        if i == 15 {
            cluster.nodes[leader].kill();
        }
        let (code, out, err) = run_create(i);
        match code {
            0 => acked.push(json(&out)["id"].as_str().unwrap().to_owned()),
            5 => {
                assert!(err.contains("retry later"), "{err}");
                assert_eq!(err.lines().count(), 1, "{err}");
                failed.push(i);
            }
            c => panic!("create f{i}: exit {c}: {err}"),
        }
    }
    eprintln!(
        "failover run: {} acknowledged, {} failed with exit 5, {:?}",
        acked.len(),
        failed.len(),
        started.elapsed()
    );
    assert!(acked.len() >= 45, "too few creates survived: {failed:?}");
    let new_leader = cluster.leader();
    assert_ne!(new_leader, leader);
    for (i, n) in cluster
        .nodes
        .iter()
        .enumerate()
        .filter(|(_, n)| n.running())
    {
        let api = n.api(&cluster.root_token);
        let held: std::collections::BTreeSet<String> = api.key_ids().into_iter().collect();
        for (j, id) in acked.iter().enumerate() {
            if !held.contains(id) {
                std::thread::sleep(std::time::Duration::from_secs(3));
                let later: std::collections::BTreeSet<String> = api.key_ids().into_iter().collect();
                panic!(
                    "acknowledged key #{j}/{} {id} lost on node {i} (leader {new_leader}, killed {leader}, follower {follower}); 3 s later there: {}; get: {:?}",
                    acked.len(),
                    later.contains(id),
                    api.key(id).map(|v| v["record"]["name"].clone())
                );
            }
        }
    }
    // keyctl on the surviving follower lists them all.
    let listed = json(
        &vault_cmd(&home, &addr, &token)
            .args(["--json", "list"])
            .ok(),
    );
    assert!(listed.as_array().unwrap().len() >= acked.len());
}

/// A loopback HTTP server answering every request with `reply` (or never, when None):
/// for the replies a real OpenBao cannot be made to give on demand.
fn fake_server(reply: Option<&'static str>) -> String {
    use std::io::{Read, Write};
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = format!("http://{}", l.local_addr().unwrap());
    std::thread::spawn(move || {
        let mut held = Vec::new();
        for s in l.incoming() {
            let Ok(mut s) = s else { continue };
            let mut buf = [0u8; 4096];
            let _ = s.read(&mut buf);
            match reply {
                Some(r) => {
                    let _ = s.write_all(r.as_bytes());
                }
                None => held.push(s),
            }
        }
    });
    addr
}

#[test]
fn malformed_failing_and_silent_servers_give_clear_errors() {
    let home = Home::new();
    // The silent server is cut after 2 s (10 s by default).
    write_config(&home, "vault:\n  retry_seconds: 1\n  timeout: 2s\n");
    let cases = [
        (
            Some("HTTP/1.1 200 OK\r\ncontent-length: 9\r\nconnection: close\r\n\r\n<html>hi!"),
            "not JSON: is it a Vault server?",
        ),
        (
            Some(
                "HTTP/1.1 500 Internal Server Error\r\ncontent-type: application/json\r\ncontent-length: 24\r\nconnection: close\r\n\r\n{\"errors\":[\"boom boom\"]}",
            ),
            "HTTP 500: boom boom), still after 1 s; retry later",
        ),
        (
            Some(
                "HTTP/1.1 502 Bad Gateway\r\ncontent-type: text/html\r\ncontent-length: 13\r\nconnection: close\r\n\r\n<html></html>",
            ),
            "(HTTP 502), still after 1 s; retry later",
        ),
        (None, "timed out"),
    ];
    for (reply, needle) in cases {
        let addr = fake_server(reply);
        let before = home.files_except_store();
        let (code, out, err) = vault_cmd(&home, &addr, "t")
            .args(["create", "--name", "x"])
            .run();
        assert_eq!(code, 5, "{err}");
        assert!(err.contains(needle), "expected {needle:?} in: {err}");
        assert!(out.is_empty());
        assert_eq!(home.files_except_store(), before);
    }
}

/// What `revoke` and other record changes rely on: 20 writers updating one key's record
/// at once through `VaultStore::update_record` all land (check-and-set with re-reads),
/// and the secret is untouched.
#[test]
fn concurrent_record_updates_lose_nothing() {
    use keyctl::store::vault::{VaultConfig, VaultStore};
    use secrecy::SecretString;
    let bao = require!(DevServer::start());
    let home = Home::new();
    let k = create(&bao, &home, &["--name", "shared"]);
    let id = k["id"].as_str().unwrap();
    let cfg = VaultConfig {
        addr: Some(bao.addr().to_owned()),
        ..Default::default()
    };
    std::thread::scope(|s| {
        for i in 0..20 {
            let cfg = &cfg;
            s.spawn(move || {
                let v = VaultStore::connect(cfg, SecretString::from(ROOT_TOKEN), "test".into())
                    .unwrap();
                v.update_record(id, |r| {
                    let scope = format!("s{i}");
                    let new = !r.scopes.contains(&scope);
                    if new {
                        r.scopes.push(scope);
                    }
                    new
                })
                .unwrap();
            });
        }
    });
    let (s, b) = bao
        .api
        .call("GET", &format!("secret/data/keyctl/keys/{id}"), None);
    assert_eq!(s, 200);
    let mut scopes: Vec<&str> = b["data"]["data"]["record"]["scopes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    scopes.sort_unstable();
    let mut want: Vec<String> = (0..20).map(|i| format!("s{i}")).collect();
    want.sort_unstable();
    assert_eq!(scopes, want);
    assert_eq!(bao.api.secret(id).as_deref(), k["secret"].as_str());
    assert_eq!(
        b["data"]["metadata"]["version"], 21,
        "one version per update"
    );

    // A revocation written this way is what every machine's keyctl then enforces.
    let v = VaultStore::connect(&cfg, SecretString::from(ROOT_TOKEN), "test".into()).unwrap();
    let rec = v
        .update_record(id, |r| {
            r.revoked_at = Some(time::OffsetDateTime::now_utc());
            true
        })
        .unwrap();
    assert!(rec.revoked_at.is_some());
    let (code, _, err) = bao.cmd(&Home::new()).args(["secret", "shared"]).run();
    assert_eq!(code, 8, "{err}");
    // Updating a key that is gone is a clear not-found.
    let err = v.update_record("kcnosuchkey", |_| true).unwrap_err();
    assert!(format!("{err:#}").contains("has no key kcnosuchkey"));
}

/// A creator that died between claiming a name and writing its key leaves a claim with
/// no key: after five minutes the name can be taken again; before, and for a name whose
/// key exists, it cannot.
#[test]
fn abandoned_name_claims_are_taken_over_only_when_old() {
    let bao = require!(DevServer::start());
    let home = Home::new();
    let claim = |name: &str, id: &str, at: &str| {
        let (s, b) = bao.api.call(
            "POST",
            &format!("secret/data/keyctl/names/{name}"),
            Some(json!({"data": {"id": id, "at": at}})),
        );
        assert_eq!(s, 200, "{b}");
    };
    let now = time::OffsetDateTime::now_utc()
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap();
    claim("ghost", "kcdiedbeforewriting", "2020-01-01T00:00:00Z");
    claim("busy", "kcstillwriting", &now);
    let k = create(&bao, &home, &["--name", "ghost"]);
    assert_eq!(bao.api.name_owner("ghost").as_deref(), k["id"].as_str());

    let (code, _, err) = bao.cmd(&home).args(["create", "--name", "busy"]).run();
    assert_eq!(code, 4, "{err}");
    assert_eq!(
        bao.api.name_owner("busy").as_deref(),
        Some("kcstillwriting")
    );

    // A claim soft-deleted by hand (`bao kv delete`) frees the name.
    claim("soft", "kcsomeoneelse", &now);
    let (st, _) = bao
        .api
        .call("DELETE", "secret/data/keyctl/names/soft", None);
    assert_eq!(st, 204);
    let s = create(&bao, &home, &["--name", "soft"]);
    assert_eq!(bao.api.name_owner("soft").as_deref(), s["id"].as_str());

    // An old claim whose key exists stays with that key.
    let id = k["id"].as_str().unwrap();
    claim("ghost", id, "2020-01-01T00:00:00Z");
    let (code, _, err) = bao.cmd(&home).args(["create", "--name", "ghost"]).run();
    assert_eq!(code, 4, "{err}");
    let mut ids = bao.api.key_ids();
    ids.sort();
    let mut want = vec![id.to_owned(), s["id"].as_str().unwrap().to_owned()];
    want.sort();
    assert_eq!(ids, want);
}

/// A server with a private CA: refused at once (no retries) until keyctl is told the CA,
/// by `BAO_CACERT` or `vault.ca_cert`.
#[test]
fn https_with_a_private_ca() {
    let bao = require!(DevServer::start_tls());
    let home = Home::new();
    let started = std::time::Instant::now();
    let (code, out, err) = bao.cmd(&home).args(["create", "--name", "x"]).run();
    assert_eq!(code, 5, "{err}");
    assert!(err.contains("cannot verify the TLS certificate"), "{err}");
    assert!(err.contains("BAO_CACERT"), "{err}");
    assert!(out.is_empty());
    assert!(
        started.elapsed() < std::time::Duration::from_secs(5),
        "retried a TLS failure"
    );

    let ca = bao.ca_cert();
    let k = json(
        &bao.cmd(&home)
            .env("BAO_CACERT", &ca)
            .args(["--json", "create", "--name", "x"])
            .ok(),
    );
    write_config(&home, &format!("vault:\n  ca_cert: {}\n", ca.display()));
    assert_eq!(
        bao.cmd(&home).args(["secret", "x"]).ok().trim(),
        k["secret"].as_str().unwrap()
    );

    bao.cmd(&home)
        .env("VAULT_CACERT", home.path().join("missing.pem"))
        .args(["secret", "x"])
        .code(2)
        .stderr_has("cannot read a PEM CA certificate");
}

/// A team on a namespace (`BAO_NAMESPACE` or `vault.namespace`): keys land in that
/// namespace's KV engine and nowhere else.
#[test]
fn namespaces_keep_teams_apart() {
    let bao = require!(DevServer::start());
    let (s, b) = bao.api.call("POST", "sys/namespaces/team", Some(json!({})));
    assert_eq!(s, 200, "{b}");
    let mut c = reqwest::blocking::Client::new()
        .post(format!("{}/v1/sys/mounts/secret", bao.addr()))
        .header("X-Vault-Token", ROOT_TOKEN)
        .header("X-Vault-Namespace", "team")
        .json(&json!({"type": "kv", "options": {"version": "2"}}))
        .send()
        .unwrap();
    assert_eq!(c.status().as_u16(), 204);
    let home = Home::new();
    let cmd = bao
        .cmd(&home)
        .env("BAO_NAMESPACE", "team")
        .args(["--json", "create", "--name", "ns"]);
    let k = cmd.json();
    let id = k["id"].as_str().unwrap();
    assert_eq!(bao.api.key(id), None, "written outside the namespace");
    c = reqwest::blocking::Client::new()
        .get(format!("{}/v1/secret/data/keyctl/secrets/{id}", bao.addr()))
        .header("X-Vault-Token", ROOT_TOKEN)
        .header("X-Vault-Namespace", "team")
        .send()
        .unwrap();
    let stored: serde_json::Value = c.json().unwrap();
    assert_eq!(stored["data"]["data"]["secret"], k["secret"]);

    write_config(&home, "vault:\n  namespace: team\n");
    let cmd = bao.cmd(&home).args(["secret", "ns"]);
    assert_eq!(cmd.ok().trim(), k["secret"].as_str().unwrap());
    let cmd = bao.cmd(&home).args(["--json", "doctor"]);
    assert_eq!(cmd.json()["vault"]["namespace"], "team");
    // Another team's namespace without a KV engine: the error names it.
    let (s, b) = bao
        .api
        .call("POST", "sys/namespaces/other", Some(json!({})));
    assert_eq!(s, 200, "{b}");
    let cmd = bao
        .cmd(&home)
        .env("BAO_NAMESPACE", "other")
        .args(["secret", "ns"]);
    cmd.code(5).stderr_has("in namespace other");
}

#[test]
fn revoke_on_one_machine_is_seen_on_the_other() {
    let bao = require!(DevServer::start());
    let (a, b) = (Home::new(), Home::new());
    let k = create(&bao, &a, &["--name", "gone"]);
    let id = k["id"].as_str().unwrap();
    bao.cmd(&a)
        .args(["revoke", "gone", "--yes"])
        .code(0)
        .stderr_has("for every machine");
    // OpenBao's own view: the record says revoked.
    let stored = bao.api.key(id).expect("entry kept for the record");
    assert!(stored["record"]["revoked_at"].is_string(), "{stored}");
    // Machine B: refused, hidden from list, shown with --all.
    let (code, out, err) = bao.cmd(&b).args(["secret", "gone"]).run();
    assert_eq!(code, 8, "{err}");
    assert!(out.is_empty());
    assert_eq!(bao.cmd(&b).args(["--json", "list"]).json(), json!([]));
    assert_eq!(
        bao.cmd(&b).args(["--json", "list", "--all"]).json()[0]["status"],
        "revoked"
    );
    // Revoking again is a no-op with a note, not an error.
    bao.cmd(&b)
        .args(["revoke", id, "--yes"])
        .code(0)
        .stderr_has("already revoked");
}

#[test]
fn a_team_key_is_pushed_to_keystone_and_every_machine_sees_where() {
    let bao = require!(DevServer::start());
    let ks = require!(keystone::keystone());
    let user = ks.user("team", Some("member"));
    let (a, b) = (Home::new(), Home::new());
    // The remote's password is this machine's own secret: it stays off OpenBao.
    let (code, _, err) = bao
        .cmd(&a)
        .args(user.remote_add_args("ks", &ks.url))
        .stdin(&user.password)
        .run();
    assert_eq!(code, 0, "{err}");
    assert!(a.path().join("secrets.json").exists());
    assert_eq!(bao.api.key_ids().len(), 0);

    let k = create(&bao, &a, &["--name", "shared", "--remote", "ks"]);
    let id = k["id"].as_str().unwrap();
    let secret = k["secret"].as_str().unwrap();
    assert!(
        ks.ec2_of(&user.id)
            .iter()
            .any(|(acc, s)| acc == id && s == secret)
    );
    let stored = bao.api.key(id).unwrap();
    assert_eq!(stored["record"]["remotes"][0]["remote"], "ks");
    assert_eq!(
        bao.cmd(&b).args(["show", "shared", "--json"]).json()["remotes"][0]["remote"],
        "ks"
    );

    // Pushing again is safe, and revoke takes it off Keystone and marks the team record.
    bao.cmd(&a).args(["push", "shared", "--remote", "ks"]).ok();
    bao.cmd(&a).args(["revoke", "shared", "--yes"]).ok();
    assert!(ks.ec2_of(&user.id).iter().all(|(acc, _)| acc != id));
    assert!(bao.api.key(id).unwrap()["record"]["revoked_at"].is_string());
}

/// The README's two policies, as written there.
const LIST_ONLY_POLICY: &str = r#"
path "secret/metadata/keyctl/*"   { capabilities = ["list"] }
path "secret/data/keyctl/keys/*"  { capabilities = ["read"] }
path "secret/data/keyctl/names/*" { capabilities = ["read"] }
path "secret/data/keyctl/index/*" { capabilities = ["read"] }
path "secret/data/keyctl/team"    { capabilities = ["read"] }
"#;
const READ_ONLY_POLICY: &str = r#"
path "secret/metadata/keyctl/*" { capabilities = ["list"] }
path "secret/data/keyctl/*"     { capabilities = ["read"] }
"#;

fn token_with(bao: &DevServer, name: &str, policy: &str) -> String {
    let (s, b) = bao.api.call(
        "PUT",
        &format!("sys/policies/acl/{name}"),
        Some(json!({ "policy": policy })),
    );
    assert!(s == 200 || s == 204, "policy: {s} {b}");
    let (s, b) = bao.api.call(
        "POST",
        "auth/token/create",
        Some(json!({"policies": [name], "no_default_policy": false})),
    );
    assert_eq!(s, 200, "token: {b}");
    b["auth"]["client_token"].as_str().unwrap().to_owned()
}

#[test]
fn list_reads_no_secret_and_policies_can_grant_list_without_read() {
    // A raw audit log records every request and reply in clear: after `list`, `show`
    // and `list --json`, the part written since holds no secret.
    let audit = tempfile::tempdir().unwrap();
    let log = audit.path().join("audit.log");
    let bao = require!(DevServer::start_audited(&log));
    let home = Home::new();
    let k = create(&bao, &home, &["--name", "svc"]);
    let secret = k["secret"].as_str().unwrap().to_owned();
    let created = std::fs::read_to_string(&log).unwrap_or_default().len();
    assert!(
        std::fs::read_to_string(&log).unwrap().contains(&secret),
        "the raw audit log records the create, secret included"
    );
    for args in [&["list"][..], &["show", "svc"], &["--json", "list"]] {
        bao.cmd(&home).args(args).ok();
    }
    let text = std::fs::read_to_string(&log).unwrap()[created..].to_string();
    assert!(text.contains("keyctl/keys"), "the audit log saw the reads");
    assert!(!text.contains(&secret), "list or show read the secret");

    // The list-only policy lists and shows, and cannot read a secret (exit 5).
    let lister = token_with(&bao, "keyctl-list", LIST_ONLY_POLICY);
    assert_eq!(
        json(
            &vault_cmd(&home, bao.addr(), &lister)
                .args(["--json", "list"])
                .ok()
        )[0]["name"],
        "svc"
    );
    let (code, out, err) = vault_cmd(&home, bao.addr(), &lister)
        .args(["secret", "svc"])
        .run();
    assert_eq!(code, 5, "{err}");
    assert!(out.is_empty() && err.contains("permission denied"), "{err}");

    // The read-only policy reads secrets and cannot create.
    let reader = token_with(&bao, "keyctl-read", READ_ONLY_POLICY);
    assert_eq!(
        vault_cmd(&home, bao.addr(), &reader)
            .args(["secret", "svc"])
            .ok()
            .trim(),
        secret
    );
    assert_eq!(
        vault_cmd(&home, bao.addr(), &reader)
            .args(["create", "--name", "nope"])
            .run()
            .0,
        5
    );
}

#[test]
fn an_entry_of_an_older_keyctl_is_split_on_first_use_without_loss() {
    let bao = require!(DevServer::start());
    let home = Home::new();
    let id = "kclegacy0000000000";
    let record = json!({"id": id, "name": "old", "kind": "api", "format": "standard",
        "created_at": "2026-01-01T00:00:00Z", "scopes": [], "store": "vault"});
    let (s, b) = bao.api.call(
        "POST",
        &format!("secret/data/keyctl/keys/{id}"),
        Some(json!({"data": {"record": record, "secret": "legacy-secret-value"}})),
    );
    assert_eq!(s, 200, "{b}");
    bao.api.call(
        "POST",
        "secret/data/keyctl/names/old",
        Some(json!({"data": {"id": id}})),
    );
    assert_eq!(
        bao.cmd(&home).args(["secret", "old"]).ok().trim(),
        "legacy-secret-value"
    );
    let stored = bao.api.key(id).unwrap();
    assert_eq!(stored.get("secret"), None, "{stored}");
    assert_eq!(bao.api.secret(id).as_deref(), Some("legacy-secret-value"));
    assert_eq!(
        bao.cmd(&home).args(["secret", "old"]).ok().trim(),
        "legacy-secret-value"
    );
}

#[test]
fn a_team_store_that_echoes_the_request_never_shows_the_token_or_secret() {
    use std::io::{Read, Write};
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = format!("http://{}", l.local_addr().unwrap());
    std::thread::spawn(move || {
        for s in l.incoming() {
            let Ok(mut s) = s else { continue };
            let mut buf = vec![0u8; 65536];
            let n = s.read(&mut buf).unwrap_or(0);
            let echo = String::from_utf8_lossy(&buf[..n]).replace(['\r', '\n', '"', '\\'], " ");
            let body = format!("{{\"errors\": [\"echo: {echo}\"]}}");
            let _ = write!(
                s,
                "HTTP/1.1 400 Bad Request\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            );
        }
    });
    let home = Home::new();
    let token = "hvs.team-token-that-must-not-show";
    let (code, _, err) = vault_cmd(&home, &addr, token)
        .args(["create", "--name", "x"])
        .run();
    assert_eq!(code, 5, "{err}");
    assert!(err.contains("echo:"), "{err}");
    assert!(!err.contains(token), "{err}");
    assert!(!err.contains("kca_"), "a secret shown: {err}");
}

/// Reads the team index (`secret/keyctl/index/*`) with OpenBao's own API and checks it
/// against the records: the same IDs as `LIST keys/`, entries copies of their records at
/// their versions, nothing pending. Returns the number of keys.
fn index_agrees(api: &Api) -> usize {
    let ids: std::collections::BTreeSet<String> = api.key_ids().into_iter().collect();
    let (s, b) = api.call("LIST", "secret/metadata/keyctl/index", None);
    assert!(s == 200 || s == 404, "LIST index: {s} {b}");
    let mut indexed = std::collections::BTreeMap::new();
    for shard in b["data"]["keys"].as_array().into_iter().flatten() {
        let shard = shard.as_str().unwrap();
        let (s, d) = api.call("GET", &format!("secret/data/keyctl/index/{shard}"), None);
        assert_eq!(s, 200, "index {shard}: {d}");
        // The shard's map is kept as one JSON string (OpenBao's request complexity limit).
        let keys: serde_json::Map<String, serde_json::Value> =
            serde_json::from_str(d["data"]["data"]["keys"].as_str().unwrap()).unwrap();
        for (id, e) in &keys {
            assert!(e.get("pending").is_none(), "{id} left pending: {e}");
            assert!(
                indexed.insert(id.clone(), e.clone()).is_none(),
                "{id} in two shards"
            );
        }
    }
    let listed: std::collections::BTreeSet<String> = indexed.keys().cloned().collect();
    assert_eq!(listed, ids, "index and records hold the same keys");
    // Each entry a copy of its record (a sample of 1 in 10 beyond the first 50: every
    // request here opens a connection of its own).
    for (n, (id, e)) in indexed.iter().enumerate() {
        if n >= 50 && n % 10 != 0 {
            continue;
        }
        let (s, r) = api.call("GET", &format!("secret/data/keyctl/keys/{id}"), None);
        assert_eq!(s, 200);
        assert_eq!(e["record"], r["data"]["data"]["record"], "{id}");
        assert_eq!(e["v"], r["data"]["metadata"]["version"], "{id}");
    }
    ids.len()
}

/// Requests in a raw audit log (one JSON object a line) whose path is under `prefix`.
fn audited_requests(log: &str, prefix: &str) -> usize {
    log.lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|v| v["type"] == "request")
        .filter(|v| {
            v["request"]["path"]
                .as_str()
                .is_some_and(|p| p.starts_with(prefix))
        })
        .count()
}

#[test]
fn scan_knows_team_keys_by_their_record_and_reads_no_secret() {
    let audit = tempfile::tempdir().unwrap();
    let log = audit.path().join("audit.log");
    let bao = require!(DevServer::start_audited(&log));
    let (a, b) = (Home::new(), Home::new());
    let k = create(&bao, &a, &["--name", "deploy"]);
    for i in 0..5 {
        create(&bao, &a, &["--name", &format!("other{i}")]);
    }
    let secret = k["secret"].as_str().unwrap();
    // The fingerprint is on the team record, under the team's salt (not A's home salt).
    let rec = bao.api.key(k["id"].as_str().unwrap()).unwrap();
    assert_eq!(rec["record"]["fingerprint"]["len"], secret.len(), "{rec}");
    let (s, team) = bao.api.call("GET", "secret/data/keyctl/team", None);
    assert_eq!(s, 200);
    assert_eq!(
        team["data"]["data"]["scan_salt"].as_str().unwrap().len(),
        64
    );
    let tree = tempfile::tempdir().unwrap();
    std::fs::write(tree.path().join("deploy.env"), format!("TOKEN={secret}\n")).unwrap();

    // Machine B, which never saw the secret: scan names the key, and in the audit log
    // of everything since, not one request touched a secret.
    let before = std::fs::read_to_string(&log).unwrap().len();
    let (code, out, err) = bao
        .cmd(&b)
        .args(["scan", "--format", "json"])
        .arg(tree.path())
        .run();
    assert_eq!(code, 12, "{err}");
    let found = json(out.lines().next().unwrap());
    assert_eq!(found["key_name"], "deploy", "{out}");
    let since = std::fs::read_to_string(&log).unwrap()[before..].to_string();
    assert!(
        audited_requests(&since, "secret/data/keyctl/index/") > 0,
        "the audit log saw the scan's reads"
    );
    assert_eq!(
        audited_requests(&since, "secret/data/keyctl/secrets/"),
        0,
        "scan read a secret"
    );
    assert!(!since.contains(secret));

    // With the README's list-only policy, scan still names the key.
    let lister = token_with(&bao, "keyctl-list", LIST_ONLY_POLICY);
    let (code, out, err) = vault_cmd(&b, bao.addr(), &lister)
        .args(["scan", "--format", "json"])
        .arg(tree.path())
        .run();
    assert_eq!(code, 12, "{err}");
    assert_eq!(json(out.lines().next().unwrap())["key_name"], "deploy");
    // Revoked on A: B's scan says so.
    bao.cmd(&a).args(["revoke", "deploy", "--yes"]).ok();
    let (_, out, _) = bao
        .cmd(&b)
        .args(["scan", "--format", "json"])
        .arg(tree.path())
        .run();
    assert_eq!(
        json(out.lines().next().unwrap())["status"],
        "revoked",
        "{out}"
    );
}

#[test]
fn a_torn_or_stale_index_is_detected_and_rebuilt_from_the_records() {
    let bao = require!(DevServer::start());
    let home = Home::new();
    let keys: Vec<serde_json::Value> = (0..6)
        .map(|i| create(&bao, &home, &["--name", &format!("t{i}")]))
        .collect();
    assert_eq!(index_agrees(&bao.api), 6);
    // A shard keeps two versions, not KV v2's default ten: it is rewritten on each change.
    let (_, b) = bao.api.call("LIST", "secret/metadata/keyctl/index", None);
    let first = b["data"]["keys"][0].as_str().unwrap().to_owned();
    let (_, meta) = bao.api.call(
        "GET",
        &format!("secret/metadata/keyctl/index/{first}"),
        None,
    );
    assert_eq!(meta["data"]["max_versions"], 2, "{meta}");
    let names = |home: &Home| -> std::collections::BTreeSet<String> {
        bao.cmd(home)
            .args(["--json", "list", "--all"])
            .json()
            .as_array()
            .unwrap()
            .iter()
            .map(|k| k["name"].as_str().unwrap().to_owned())
            .collect()
    };
    // Every shard lost (a creator that died before its index write, many times over),
    // one record deleted behind the index's back (a delete cut short), and one entry
    // left pending by a writer that died 10 minutes ago with the record changed since.
    let (_, b) = bao.api.call("LIST", "secret/metadata/keyctl/index", None);
    let shards: Vec<String> = b["data"]["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s.as_str().unwrap().to_owned())
        .collect();
    let gone = keys[0]["id"].as_str().unwrap();
    let shard_map = |s: &str| -> serde_json::Value {
        let (_, doc) = bao
            .api
            .call("GET", &format!("secret/data/keyctl/index/{s}"), None);
        serde_json::from_str(doc["data"]["data"]["keys"].as_str().unwrap()).unwrap()
    };
    // The shard kept: one holding a key other than the one whose record goes.
    let (kept_shard, mut kept, pending_id) = shards
        .iter()
        .find_map(|s| {
            let m = shard_map(s);
            let id = m
                .as_object()
                .unwrap()
                .keys()
                .find(|id| id.as_str() != gone)?
                .clone();
            Some((s.clone(), m, id))
        })
        .unwrap();
    for s in shards.iter().filter(|s| **s != kept_shard) {
        bao.api
            .call("DELETE", &format!("secret/metadata/keyctl/index/{s}"), None);
    }
    bao.api.call(
        "DELETE",
        &format!("secret/metadata/keyctl/keys/{gone}"),
        None,
    );
    kept[&pending_id]["pending"] = json!({"dead": "2020-01-01T00:00:00Z"});
    kept[&pending_id]["record"]["description"] = json!("stale copy");
    let (s, b) = bao.api.call(
        "POST",
        &format!("secret/data/keyctl/index/{kept_shard}"),
        Some(json!({ "data": { "keys": kept.to_string() } })),
    );
    assert_eq!(s, 200, "{b}");
    let want: std::collections::BTreeSet<String> = keys[1..]
        .iter()
        .map(|k| k["name"].as_str().unwrap().to_owned())
        .collect();
    // A list-only token sees the truth and leaves the index alone.
    let lister = token_with(&bao, "keyctl-list", LIST_ONLY_POLICY);
    let listed = json(
        &vault_cmd(&home, bao.addr(), &lister)
            .args(["--json", "list", "--all"])
            .ok(),
    );
    assert_eq!(listed.as_array().unwrap().len(), 5, "{listed}");
    assert!(!listed.to_string().contains("stale copy"), "{listed}");
    // A token that may write rebuilds it.
    assert_eq!(names(&home), want);
    assert_eq!(index_agrees(&bao.api), 5);
    assert_eq!(names(&Home::new()), want);
}

/// `homes` machines each run `lanes` writers of `per_lane` creates at once against
/// `addrs` (round robin); a create that failed with "retry later" (exit 5) is repeated,
/// as its user would. Returns (name, ID) of every acknowledged key.
fn create_at_once(
    addrs: &[String],
    token: &str,
    homes: usize,
    lanes: usize,
    per_lane: usize,
) -> Vec<(String, String)> {
    let homes: Vec<Home> = (0..homes).map(|_| Home::new()).collect();
    std::thread::scope(|s| {
        let mut all = Vec::new();
        let handles: Vec<_> = homes
            .iter()
            .enumerate()
            .flat_map(|(h, home)| (0..lanes).map(move |l| (h, l, home)))
            .map(|(h, l, home)| {
                let addr = addrs[(h * lanes + l) % addrs.len()].clone();
                s.spawn(move || {
                    let mut got = Vec::new();
                    for i in 0..per_lane {
                        let name = format!("h{h}-l{l}-{i}");
                        for attempt in 0.. {
                            let (code, out, err) = vault_cmd(home, &addr, token)
                                .args(["--json", "create", "--name", &name])
                                .run();
                            match code {
                                0 => {
                                    got.push((
                                        name.clone(),
                                        json(&out)["id"].as_str().unwrap().to_owned(),
                                    ));
                                    break;
                                }
                                5 if attempt < 5 => {
                                    assert!(err.contains("retry later"), "{err}");
                                }
                                // A repeat of a create whose first answer was lost.
                                4 if attempt > 0 && err.contains("already exists") => break,
                                c => panic!("create {name}: exit {c}: {err}"),
                            }
                        }
                    }
                    got
                })
            })
            .collect();
        for h in handles {
            all.extend(h.join().unwrap());
        }
        all
    })
}

/// Checks what `create_at_once` reported against the store: every acknowledged key
/// listed once under its name, no duplicate, and the index agreeing with the records.
fn all_landed(api: &Api, addr: &str, token: &str, acked: &[(String, String)], want: usize) {
    let listed = json(
        &vault_cmd(&Home::new(), addr, token)
            .args(["--json", "list"])
            .ok(),
    );
    let listed = listed.as_array().unwrap();
    let by_name: std::collections::BTreeMap<&str, &str> = listed
        .iter()
        .map(|k| (k["name"].as_str().unwrap(), k["id"].as_str().unwrap()))
        .collect();
    assert_eq!(by_name.len(), listed.len(), "a name listed twice");
    for (name, id) in acked {
        assert_eq!(
            by_name.get(name.as_str()),
            Some(&id.as_str()),
            "{name} lost"
        );
    }
    assert_eq!(listed.len(), want, "every create landed once");
    assert_eq!(index_agrees(api), want);
}

#[test]
fn four_homes_create_a_thousand_keys_at_once_and_the_index_agrees() {
    let bao = require!(DevServer::start());
    let started = std::time::Instant::now();
    let acked = create_at_once(&[bao.addr().to_owned()], ROOT_TOKEN, 4, 5, 50);
    eprintln!(
        "1000 creates from 4 homes x 5 writers: {:?}",
        started.elapsed()
    );
    assert_eq!(acked.len(), 1000);
    all_landed(&bao.api, bao.addr(), ROOT_TOKEN, &acked, 1000);
}

/// The same while the Raft leader dies: the homes talk to the two followers, which
/// forward writes to whichever node leads.
#[test]
fn four_homes_create_a_thousand_keys_through_a_leader_loss() {
    let mut cluster = require!(Cluster::start());
    let leader = cluster.leader();
    let addrs: Vec<String> = (0..3)
        .filter(|&i| i != leader)
        .map(|i| cluster.nodes[i].addr())
        .collect();
    let token = cluster.root_token.clone();
    let started = std::time::Instant::now();
    let acked = std::thread::scope(|s| {
        let writers = s.spawn(|| create_at_once(&addrs, &token, 4, 5, 50));
        std::thread::sleep(std::time::Duration::from_secs(8));
        cluster.nodes[leader].kill();
        writers.join().unwrap()
    });
    eprintln!(
        "1000 creates through a leader loss: {:?}",
        started.elapsed()
    );
    assert_ne!(cluster.leader(), leader);
    let api = cluster
        .nodes
        .iter()
        .find(|n| n.running())
        .unwrap()
        .api(&token);
    // Names whose create answered "already exists" on a repeat are there too.
    all_landed(&api, &addrs[0], &token, &acked, 1000);
}

/// The team's generation: the KV version of `secret/keyctl/team`.
fn team_generation(api: &Api) -> u64 {
    let (s, b) = api.call("GET", "secret/data/keyctl/team", None);
    assert_eq!(s, 200, "{b}");
    b["data"]["metadata"]["version"].as_u64().unwrap()
}

/// Rewrites the header of the home's copy of the team fingerprints (the JSON line after
/// the first), as a torn writer or the clock would leave it.
fn edit_team_copy(home: &Home, change: impl FnOnce(&mut serde_json::Value)) {
    let path = home.path().join("team-fingerprints");
    let bytes = std::fs::read(&path).unwrap();
    let first = bytes.iter().position(|&b| b == b'\n').unwrap() + 1;
    let second = first + bytes[first..].iter().position(|&b| b == b'\n').unwrap();
    let mut header: serde_json::Value = serde_json::from_slice(&bytes[first..second]).unwrap();
    change(&mut header);
    let mut out = bytes[..first].to_vec();
    out.extend_from_slice(header.to_string().as_bytes());
    out.extend_from_slice(&bytes[second..]);
    std::fs::write(&path, out).unwrap();
}

/// B's scan of `tree`: (exit code, the first finding's key name or "" when unnamed).
fn scan_names(bao: &DevServer, home: &Home, tree: &std::path::Path, staged: bool) -> (i32, String) {
    let mut c = bao.cmd(home).args(["scan", "--format", "json"]);
    c = if staged {
        c.arg("--staged").arg(tree)
    } else {
        c.arg(tree)
    };
    let (code, out, err) = c.run();
    let name = out
        .lines()
        .next()
        .map(|l| json(l)["key_name"].as_str().unwrap_or("").to_owned())
        .unwrap_or_default();
    assert!(matches!(code, 0 | 12), "{code}: {err}");
    (code, name)
}

#[test]
fn a_scan_checks_its_copy_of_the_team_with_one_request_and_sees_other_homes_changes() {
    let audit = tempfile::tempdir().unwrap();
    let log = audit.path().join("audit.log");
    let bao = require!(DevServer::start_audited(&log));
    require!(need_programs("git", &["git"], "git"));
    let (a, b) = (Home::new(), Home::new());
    for i in 0..3 {
        create(&bao, &a, &["--name", &format!("old{i}")]);
    }
    let repo = tempfile::tempdir().unwrap();
    let git = |args: &[&str]| {
        Cmd::new("git")
            .arg("-C")
            .arg(repo.path())
            .args(["-c", "user.name=t", "-c", "user.email=t@example.com"])
            .args(args)
            .ok();
    };
    git(&["init", "-q"]);
    std::fs::write(repo.path().join("README"), "nothing here\n").unwrap();
    let log_since = |from: usize| std::fs::read_to_string(&log).unwrap()[from..].to_string();
    let mark = || std::fs::read_to_string(&log).unwrap().len();

    // B's first scan reads the team (index shards) and keeps a private copy.
    let from = mark();
    assert_eq!(scan_names(&bao, &b, repo.path(), false), (0, String::new()));
    let cold = log_since(from);
    assert!(audited_requests(&cold, "secret/data/keyctl/index/") > 0);
    let copy = b.path().join("team-fingerprints");
    assert!(copy.exists());
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&copy).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }
    // Its next scan: one request (the generation), no index read.
    let from = mark();
    assert_eq!(scan_names(&bao, &b, repo.path(), false), (0, String::new()));
    let warm = log_since(from);
    assert_eq!(audited_requests(&warm, "secret/"), 1, "{warm}");
    assert_eq!(audited_requests(&warm, "secret/data/keyctl/team"), 1);

    // A creates a key and puts it in a file that is then staged: B's pre-commit scan
    // and B's scan of the tree name it.
    let k = create(&bao, &a, &["--name", "deploy"]);
    let secret = k["secret"].as_str().unwrap().to_owned();
    std::fs::write(repo.path().join("deploy.env"), format!("TOKEN={secret}\n")).unwrap();
    git(&["add", "deploy.env"]);
    let from = mark();
    assert_eq!(
        scan_names(&bao, &b, repo.path(), true),
        (12, "deploy".into())
    );
    assert!(audited_requests(&log_since(from), "secret/data/keyctl/index/") > 0);
    let from = mark();
    assert_eq!(
        scan_names(&bao, &b, repo.path(), false),
        (12, "deploy".into())
    );
    // Warm: the generation only (the found key's record is in the copy too).
    assert_eq!(audited_requests(&log_since(from), "secret/"), 1);

    // A reads it once (the one secret read the audit log below must show).
    assert_eq!(bao.cmd(&a).args(["secret", "deploy"]).ok().trim(), secret);
    // A revokes it, and with B's list-only token its scan says so.
    bao.cmd(&a).args(["revoke", "deploy", "--yes"]).ok();
    let lister = token_with(&bao, "keyctl-list", LIST_ONLY_POLICY);
    let (code, out, err) = vault_cmd(&b, bao.addr(), &lister)
        .args(["scan", "--format", "json"])
        .arg(repo.path())
        .run();
    assert_eq!(code, 0, "{err}");
    assert_eq!(
        json(out.lines().next().unwrap())["status"],
        "revoked",
        "{out}"
    );
    // And the deleted key is no longer named by anyone's copy.
    bao.cmd(&a).args(["delete", "deploy", "--yes"]).ok();
    assert_eq!(
        scan_names(&bao, &b, repo.path(), false),
        (12, String::new())
    );

    let all = std::fs::read_to_string(&log).unwrap();
    assert!(
        all.contains("keyctl/secrets/"),
        "the audit log records the creates"
    );
    // One read of a secret: A's `secret`; none by B's scans.
    let reads = all
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|v| v["type"] == "request" && v["request"]["operation"] == "read")
        .filter(|v| {
            v["request"]["path"]
                .as_str()
                .is_some_and(|p| p.starts_with("secret/data/keyctl/secrets/"))
        })
        .count();
    assert_eq!(reads, 1, "a scan read a secret");
}

#[test]
fn a_copy_left_torn_by_a_writer_is_refreshed_by_its_age_or_an_index_repair() {
    let bao = require!(DevServer::start());
    let (a, b) = (Home::new(), Home::new());
    create(&bao, &a, &["--name", "first"]);
    let tree = tempfile::tempdir().unwrap();
    assert_eq!(scan_names(&bao, &b, tree.path(), false), (0, String::new()));
    // A's create lands, but B's copy claims the generation after it without the key: what
    // B's refresh between A's record write and A's generation write (A then dying) gives.
    let k = create(&bao, &a, &["--name", "torn"]);
    let secret = k["secret"].as_str().unwrap();
    std::fs::write(tree.path().join("t.env"), format!("T={secret}\n")).unwrap();
    let now = team_generation(&bao.api);
    edit_team_copy(&b, |h| h["version"] = json!(now));
    // Found by its checksum, but not named: the window this test shows closing.
    assert_eq!(
        scan_names(&bao, &b, tree.path(), false),
        (12, String::new())
    );
    // Ten minutes on, the copy is read again.
    edit_team_copy(&b, |h| {
        let at = h["fetched_at"].as_i64().unwrap();
        h["fetched_at"] = json!(at - 11 * 60);
    });
    assert_eq!(
        scan_names(&bao, &b, tree.path(), false),
        (12, "torn".into())
    );

    // A creator that died before its index write too: the next `list` with write
    // rights repairs the index and moves the generation on, and B's copy with it.
    let k = create(&bao, &a, &["--name", "lost"]);
    let id = k["id"].as_str().unwrap().to_owned();
    std::fs::write(
        tree.path().join("t.env"),
        format!("T={}\n", k["secret"].as_str().unwrap()),
    )
    .unwrap();
    let (_, shards) = bao.api.call("LIST", "secret/metadata/keyctl/index", None);
    for s in shards["data"]["keys"].as_array().unwrap() {
        let s = s.as_str().unwrap();
        let (_, d) = bao
            .api
            .call("GET", &format!("secret/data/keyctl/index/{s}"), None);
        if d["data"]["data"]["keys"].as_str().unwrap().contains(&id) {
            bao.api
                .call("DELETE", &format!("secret/metadata/keyctl/index/{s}"), None);
        }
    }
    let now = team_generation(&bao.api);
    edit_team_copy(&b, |h| h["version"] = json!(now));
    assert_eq!(
        scan_names(&bao, &b, tree.path(), false),
        (12, String::new())
    );
    bao.cmd(&a).args(["list"]).ok();
    assert!(
        team_generation(&bao.api) > now,
        "the repair moved the generation on"
    );
    assert_eq!(
        scan_names(&bao, &b, tree.path(), false),
        (12, "lost".into())
    );

    // A copy that is not whole is never trusted: read again.
    let copy = b.path().join("team-fingerprints");
    let bytes = std::fs::read(&copy).unwrap();
    std::fs::write(&copy, &bytes[..bytes.len() - 3]).unwrap();
    assert_eq!(
        scan_names(&bao, &b, tree.path(), false),
        (12, "lost".into())
    );
    assert_eq!(std::fs::read(&copy).unwrap().len(), bytes.len());
}

#[test]
fn a_scan_with_the_team_store_down_uses_its_copy_and_says_so() {
    let bao = require!(DevServer::start());
    let (a, b) = (Home::new(), Home::new());
    let k = create(&bao, &a, &["--name", "deploy"]);
    let tree = tempfile::tempdir().unwrap();
    std::fs::write(
        tree.path().join("d.env"),
        format!("D={}\n", k["secret"].as_str().unwrap()),
    )
    .unwrap();
    assert_eq!(
        scan_names(&bao, &b, tree.path(), false),
        (12, "deploy".into())
    );
    let addr = bao.addr().to_owned();
    drop(bao);
    let (code, out, err) = vault_cmd(&b, &addr, ROOT_TOKEN)
        .args(["scan", "--format", "json"])
        .arg(tree.path())
        .run();
    assert_eq!(code, 12, "{err}");
    assert_eq!(json(out.lines().next().unwrap())["key_name"], "deploy");
    assert!(err.contains("team keys matched as of"), "{err}");
    // No copy and the team store selected: the scan cannot vouch for team keys (exit 5).
    std::fs::remove_file(b.path().join("team-fingerprints")).unwrap();
    let (code, _, err) = vault_cmd(&b, &addr, ROOT_TOKEN)
        .args(["scan"])
        .arg(tree.path())
        .run();
    assert_eq!(code, 5, "{err}");
}

#[test]
fn a_scan_asks_the_team_store_while_its_command_line_is_read_and_says_so_once() {
    const EARLY: &str = "while the command line is read";
    let audit = tempfile::tempdir().unwrap();
    let log = audit.path().join("audit.log");
    let bao = require!(DevServer::start_audited(&log));
    let (a, b) = (Home::new(), Home::new());
    let k = create(&bao, &a, &["--name", "deploy"]);
    let tree = tempfile::tempdir().unwrap();
    let secret = k["secret"].as_str().unwrap();
    std::fs::write(tree.path().join("deploy.env"), format!("TOKEN={secret}\n")).unwrap();
    let mark = || std::fs::read_to_string(&log).unwrap().len();
    let since = |from: usize| std::fs::read_to_string(&log).unwrap()[from..].to_string();
    let logged = |err: &str| {
        err.lines()
            .filter(|l| l.contains("debug: GET ") && l.contains("/secret/data/keyctl/team "))
            .count()
    };
    // B's first scan makes its copy of the team's fingerprints.
    assert_eq!(
        scan_names(&bao, &b, tree.path(), false),
        (12, "deploy".into())
    );

    // `-v scan`: the check starts before the parser has run, and `-v` shows its one
    // request once (held until the parser said `-v`), as the audit log does.
    let from = mark();
    let (code, out, err) = bao.cmd(&b).args(["-v", "scan"]).arg(tree.path()).run();
    assert_eq!(code, 12, "{err}");
    assert!(out.contains("'deploy'"), "{out}");
    assert!(err.contains(EARLY), "{err}");
    assert_eq!(logged(&err), 1, "{err}");
    assert_eq!(audited_requests(&since(from), "secret/"), 1);
    // Without -v, nothing of it is printed.
    let (code, _, err) = bao.cmd(&b).args(["scan"]).arg(tree.path()).run();
    assert_eq!(code, 12, "{err}");
    assert!(!err.contains("debug:"), "{err}");

    // `--home` changes the settings: the check waits for the parser, with the same answer
    // (the environment's KEYCTL_HOME is a home without the key or a copy).
    let elsewhere = Home::new();
    let from = mark();
    let (code, out, err) = bao
        .cmd(&elsewhere)
        .args(["-v", "scan", "--home"])
        .arg(b.path())
        .arg(tree.path())
        .run();
    assert_eq!(code, 12, "{err}");
    assert!(out.contains("'deploy'"), "{out}");
    assert!(!err.contains(EARLY), "{err}");
    assert_eq!(logged(&err), 1, "{err}");
    assert_eq!(audited_requests(&since(from), "secret/"), 1);
    assert!(!elsewhere.path().join("team-fingerprints").exists());
}
