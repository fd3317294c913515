//! `config --write FILE --dry-run` shows a diff with context lines from the user's file:
//! every secret in them is masked, whatever its key is called (`api_key:`, `pwd:`,
//! `pass:`) and the password of a URL (`postgresql://u:pw@host/db`). Issue 20.

use crate::support::*;

const SECRET: &str = "Xk2_9fQ-s7Lr0pWz4Nv8Bt1Ym6Hc3Jd5Ge7Ua0Ko2Ri4Ps6Tl8";

#[test]
fn dry_run_masks_secrets_in_context_lines() {
    let home = Home::new();
    home.cmd()
        .args([
            "--store", "file", "import", "--kind", "api", "--name", "core",
        ])
        .args(["--id", "0f6f3d1c-7b7e-4c1e-9a51-2d4c8f0e9b11"])
        .stdin(format!("{SECRET}\n"))
        .ok();
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("configuration.yml");
    // Diff context is 3 lines either side of the block.
    let context = [
        ("pass: ", "contextpass0003"),
        ("url: postgresql://dbuser:", "contexturlpw0004"),
        ("api_key: ", "sk-live-contextapikey0001"),
        ("pwd: ", "contextpwd0002"),
    ];
    let mut text = String::from("data_source main:\n  type: postgres\n");
    for (k, v) in &context[..2] {
        let rest = if k.starts_with("url") {
            "@db.example:5432/db"
        } else {
            ""
        };
        text.push_str(&format!("  {k}{v}{rest}\n"));
    }
    text.push_str("soda_cloud:\n  host: cloud.soda.io\n  api_key_id: old\n  api_key_secret: old-secret-value\n");
    text.push_str("other:\n");
    for (k, v) in &context[2..] {
        text.push_str(&format!("  {k}{v}\n"));
    }
    std::fs::write(&f, &text).unwrap();
    let (code, out, err) = home
        .cmd()
        .args(["--store", "file", "config", "core", "--write"])
        .arg(&f)
        .arg("--dry-run")
        .run();
    assert_eq!(code, 0, "{err}");
    assert!(
        out.contains("api_key_id"),
        "the diff shows the block: {out}"
    );
    for (k, v) in context {
        assert!(!out.contains(v), "{k}{v} shown: {out}");
    }
    assert!(out.contains("postgresql://dbuser:***@db.example"), "{out}");
    assert!(out.contains("pwd: ***"), "{out}");
    assert!(out.contains("api_key: ***"), "{out}");
    assert!(
        !out.contains(SECRET) && !out.contains("old-secret-value"),
        "{out}"
    );
    assert_eq!(std::fs::read_to_string(&f).unwrap(), text);
}
