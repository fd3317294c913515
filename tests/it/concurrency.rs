//! Many scripts running keyctl at once lose nothing: 100 `create` processes started
//! together all land in the registry and the store.

use std::collections::HashSet;
use std::process::Stdio;

use crate::support::*;

fn create_many(n: usize, mk: impl Fn(usize) -> std::process::Command) -> Vec<serde_json::Value> {
    let children: Vec<_> = (0..n)
        .map(|i| {
            let mut c = mk(i);
            c.args(["--json", "create", "--name", &format!("k{i:03}")])
                .stdin(Stdio::null())
                .stdout(Stdio::piped())
                .stderr(Stdio::piped());
            c.spawn().unwrap()
        })
        .collect();
    children
        .into_iter()
        .map(|ch| {
            let o = ch.wait_with_output().unwrap();
            assert!(
                o.status.success(),
                "create failed: {}",
                String::from_utf8_lossy(&o.stderr)
            );
            json(&String::from_utf8_lossy(&o.stdout))
        })
        .collect()
}

fn check_registry(home: &Home, created: &[serde_json::Value]) {
    let reg = home.registry();
    let keys = reg["keys"].as_array().unwrap();
    assert_eq!(keys.len(), created.len());
    let ids: HashSet<&str> = keys.iter().map(|k| k["id"].as_str().unwrap()).collect();
    let names: HashSet<&str> = keys.iter().map(|k| k["name"].as_str().unwrap()).collect();
    assert_eq!(ids.len(), created.len());
    assert_eq!(names.len(), created.len());
    for c in created {
        assert!(ids.contains(c["id"].as_str().unwrap()));
    }
}

#[test]
fn hundred_parallel_creates_in_the_keyring() {
    let ss = require!(SecretService::start());
    let home = Home::new();
    let created = create_many(100, |_| {
        let mut c = ss.cmd(&home).command();
        c.args(["--store", "keyring"]);
        c
    });
    check_registry(&home, &created);
    for k in &created {
        assert_eq!(
            ss.secret_tool_lookup(k["id"].as_str().unwrap()).as_deref(),
            k["secret"].as_str(),
        );
    }
}

#[test]
fn hundred_parallel_creates_in_the_file_store() {
    let home = Home::new();
    let created = create_many(100, |_| {
        let mut c = home.cmd().command();
        c.args(["--store", "file"]);
        c
    });
    check_registry(&home, &created);
    let store: serde_json::Value =
        serde_json::from_slice(&std::fs::read(home.path().join("secrets.json")).unwrap()).unwrap();
    for k in &created {
        assert_eq!(store[k["id"].as_str().unwrap()], k["secret"]);
    }
}
