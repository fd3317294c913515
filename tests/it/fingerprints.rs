//! keys.json keeps the secrets' salted fingerprints beside their salt, so anyone who can
//! read it can test guesses offline: keyctl fingerprints only secrets strong enough that
//! guessing fails, says so for the rest, and `doctor` checks keys.json's mode and owner
//! like the store's. Issue 20.

use hmac::{KeyInit, Mac};

use crate::support::*;

/// A few thousand guesses of the kind people choose: season + year + symbol.
fn word_list() -> Vec<String> {
    let mut words = Vec::new();
    for base in [
        "Summer", "Winter", "Spring", "Autumn", "Password", "Welcome", "Soda",
    ] {
        for year in 2015..=2030 {
            for tail in ["", "!", "?", "#", "1", "@"] {
                words.push(format!("{base}{year}{tail}"));
                words.push(format!("{}{year}{tail}", base.to_lowercase()));
            }
        }
    }
    words
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[test]
fn a_word_list_attack_on_keys_json_recovers_nothing() {
    let home = Home::new();
    let (code, _, err) = home
        .cmd()
        .args(["--store", "file", "import", "--name", "weak", "--id", "w-1"])
        .stdin("Summer2024!\n")
        .run();
    assert_eq!(code, 0, "{err}");
    assert!(err.contains("too weak to fingerprint"), "{err}");
    // A strong key is still fingerprinted, so the salt exists.
    home.cmd()
        .args([
            "--store", "file", "import", "--name", "strong", "--id", "s-1",
        ])
        .stdin("q7Rk2pXz9LmN4vBt8Wc1Hd6Jf3Gs5Ya0\n")
        .ok();
    home.cmd()
        .args(["--store", "file", "create", "--name", "minted"])
        .ok();
    let reg = home.registry();
    let salt_hex = reg["scan_salt"].as_str().expect("a salt");
    let salt: Vec<u8> = (0..salt_hex.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&salt_hex[i..i + 2], 16).unwrap())
        .collect();
    let stored: Vec<String> = reg["keys"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|k| k["fingerprint"]["hmac"].as_str().map(str::to_string))
        .collect();
    assert_eq!(stored.len(), 2, "{reg}");
    let weak = reg["keys"]
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["id"] == "w-1")
        .unwrap();
    assert!(weak.get("fingerprint").is_none(), "{weak}");
    let words = word_list();
    assert!(words.contains(&"Summer2024!".to_string()));
    for w in &words {
        let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(&salt).unwrap();
        mac.update(w.as_bytes());
        let h = hex(&mac.finalize().into_bytes());
        assert!(!stored.contains(&h), "recovered {w} from keys.json");
    }
}

#[cfg(unix)]
#[test]
fn doctor_checks_keys_json_mode_like_the_store() {
    use std::os::unix::fs::PermissionsExt;
    let home = Home::new();
    home.cmd()
        .args(["--store", "file", "create", "--name", "k"])
        .ok();
    let reg = home.path().join("keys.json");
    std::fs::set_permissions(&reg, std::fs::Permissions::from_mode(0o644)).unwrap();
    let report = json(&home.cmd().args(["--json", "doctor"]).ok());
    let problems = report["problems"].to_string();
    assert!(
        problems.contains("keys.json can be read or written by group or others"),
        "{report}"
    );
}
