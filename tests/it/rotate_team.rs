//! Rotating a team key (the OpenBao team store, real OpenBao): two keyctl homes act as
//! two machines. Machine A rotates; from then on machine B's `secret`, `config` and `run`
//! give the successor by name, while a consumer on B reading `keyctl secret NAME` every
//! 200 ms through the rotation and the `gc` after it never fails, and sees the old secret
//! and then only the new one. After gc the old key is refused on every machine.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use crate::support::openbao::*;
use crate::support::*;

#[test]
fn a_team_key_rotated_on_one_machine_is_what_every_machine_gets_by_name() {
    let bao = Arc::new(require!(DevServer::start()));
    let (a, b) = (Home::new(), Arc::new(Home::new()));
    let k = bao
        .cmd(&a)
        .args(["--json", "create", "--name", "ci"])
        .json();
    let old_id = k["id"].as_str().unwrap().to_string();
    let old_secret = k["secret"].as_str().unwrap().to_string();
    assert_eq!(bao.cmd(&b).args(["secret", "ci"]).ok().trim(), old_secret);
    let env = a.dir.path().join("ci.env");
    bao.cmd(&a)
        .args([
            "config",
            "ci",
            "-o",
            "env",
            "--write",
            env.to_str().unwrap(),
        ])
        .ok();

    // Machine B's consumer: `keyctl secret ci` every 200 ms.
    let stop = Arc::new(AtomicBool::new(false));
    let consumer = {
        let (bao, b, stop) = (bao.clone(), b.clone(), stop.clone());
        std::thread::spawn(move || {
            let mut seen: Vec<(Instant, Result<String, String>)> = Vec::new();
            while !stop.load(Ordering::Relaxed) {
                let t = Instant::now();
                let (code, out, err) = bao.cmd(&b).args(["secret", "ci"]).run();
                seen.push((
                    Instant::now(),
                    if code == 0 {
                        Ok(out.trim().to_string())
                    } else {
                        Err(format!("exit {code}: {err}"))
                    },
                ));
                std::thread::sleep(Duration::from_millis(200).saturating_sub(t.elapsed()));
            }
            seen
        })
    };
    std::thread::sleep(Duration::from_secs(1));

    let r = bao
        .cmd(&a)
        .args(["--json", "rotate", "ci", "--grace", "2s"])
        .json();
    let rotated = Instant::now();
    let new_id = r["id"].as_str().unwrap().to_string();
    let new_secret = r["secret"].as_str().unwrap().to_string();
    assert_ne!(new_id, old_id);
    // OpenBao's own view: the name means the successor, the old record is superseded.
    assert_eq!(bao.api.name_owner("ci").as_deref(), Some(new_id.as_str()));
    assert_eq!(
        bao.api.secret(&new_id).as_deref(),
        Some(new_secret.as_str())
    );
    let old_rec = bao.api.key(&old_id).unwrap();
    assert_eq!(old_rec["record"]["superseded"]["by"], new_id.as_str());
    assert!(
        std::fs::read_to_string(&env).unwrap().contains(&new_id),
        "A's delivery target rewritten"
    );

    // Machine B: secret, config and run by name give the successor.
    assert_eq!(bao.cmd(&b).args(["secret", "ci"]).ok().trim(), new_secret);
    let cfg = bao.cmd(&b).args(["config", "ci", "-o", "env"]).ok();
    assert!(cfg.contains(&new_id) && cfg.contains(&new_secret), "{cfg}");
    let ran = bao
        .cmd(&b)
        .args(["run", "ci", "--", "sh", "-c", "echo $SODA_API_KEY_ID"])
        .ok();
    assert_eq!(ran.trim(), new_id);
    // The old key still works by ID during the grace period.
    assert_eq!(
        bao.cmd(&b).args(["secret", &old_id]).ok().trim(),
        old_secret
    );

    // B collects the old key after the grace period, for every machine.
    std::thread::sleep(Duration::from_millis(2_500).saturating_sub(rotated.elapsed()));
    bao.cmd(&b).args(["--yes", "gc"]).ok();
    std::thread::sleep(Duration::from_secs(1));
    stop.store(true, Ordering::Relaxed);
    let seen = consumer.join().unwrap();
    for home in [&a, &*b] {
        let (code, _, err) = bao.cmd(home).args(["secret", &old_id]).run();
        assert_eq!(code, 8, "the old key is revoked everywhere: {err}");
    }

    let failures: Vec<&String> = seen.iter().filter_map(|(_, r)| r.as_ref().err()).collect();
    let secrets: Vec<&str> = seen
        .iter()
        .filter_map(|(_, r)| r.as_ref().ok().map(String::as_str))
        .collect();
    let gap = seen
        .windows(2)
        .map(|w| w[1].0 - w[0].0)
        .max()
        .unwrap_or_default();
    eprintln!(
        "team rotation proof: {} reads on machine B, {} failed, longest gap between two successful reads {:.3} s",
        seen.len(),
        failures.len(),
        gap.as_secs_f64()
    );
    assert!(failures.is_empty(), "{failures:?}");
    let first_new = secrets
        .iter()
        .position(|s| *s == new_secret)
        .expect("B saw the new secret");
    assert!(first_new > 0 && secrets[..first_new].iter().all(|s| *s == old_secret));
    assert!(
        secrets[first_new..].iter().all(|s| *s == new_secret),
        "never back to the old one"
    );
}
