//! What keyctl used to leave behind or let through (issue 20, low findings): a config.yaml
//! nested 100,000 deep, a file store in a home anyone can write, a lock file per key ever
//! rotated, a key superseded by one that was deleted.

use std::time::{Duration, Instant};

use crate::support::*;

fn file(home: &Home) -> Cmd {
    home.cmd().args(["--store", "file"])
}

#[test]
fn a_deeply_nested_config_is_refused_at_once() {
    let home = Home::new();
    std::fs::create_dir_all(home.path()).unwrap();
    let deep = format!("store: {}{}\n", "[".repeat(100_000), "]".repeat(100_000));
    std::fs::write(home.path().join("config.yaml"), deep).unwrap();
    let t = Instant::now();
    let (code, _, err) = file(&home).arg("list").run();
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("nests brackets more than 64 deep"), "{err}");
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(
        t.elapsed() < Duration::from_secs(2),
        "took {:?}",
        t.elapsed()
    );
    // Ordinary flow collections still read.
    std::fs::write(
        home.path().join("config.yaml"),
        "store: file\nremotes: {}\n# a [ comment { with brackets\n",
    )
    .unwrap();
    file(&home).arg("list").ok();
}

#[cfg(unix)]
#[test]
fn the_file_store_in_a_home_others_can_write_warns_at_create() {
    use std::os::unix::fs::PermissionsExt;
    for mode in [0o777, 0o1777] {
        let home = Home::new();
        std::fs::create_dir_all(home.path()).unwrap();
        std::fs::set_permissions(home.path(), std::fs::Permissions::from_mode(mode)).unwrap();
        let (code, _, err) = file(&home).args(["create", "--name", "k"]).run();
        assert_eq!(code, 0, "{err}");
        assert!(
            err.contains("can be written by group or others"),
            "{mode:o}: {err}"
        );
    }
}

#[test]
fn rotation_leaves_no_lock_file_and_deleting_the_successor_undoes_it() {
    let home = Home::new();
    let old = json(&file(&home).args(["--json", "create", "--name", "r"]).ok())["id"]
        .as_str()
        .unwrap()
        .to_string();
    let new = json(
        &file(&home)
            .args(["--json", "rotate", "r", "--grace", "1h"])
            .ok(),
    )["id"]
        .as_str()
        .unwrap()
        .to_string();
    let locks: Vec<String> = std::fs::read_dir(home.path())
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with("rotate-"))
        .collect();
    assert!(locks.is_empty(), "{locks:?}");

    let (code, _, err) = file(&home).args(["--yes", "delete", &new]).run();
    assert_eq!(code, 0, "{err}");
    assert!(err.contains("no longer superseded"), "{err}");
    let reg = home.registry();
    let k = &reg["keys"][0];
    assert_eq!(k["id"], old.as_str(), "{reg}");
    assert!(k.get("superseded").is_none(), "dangling: {reg}");
    file(&home).args(["secret", "r"]).ok();
    // The name can be rotated again.
    file(&home).args(["rotate", "r", "--grace", "1h"]).ok();
}
