//! The timeout bounds the whole request, reply body included, as curl --max-time does: a
//! server that sends its headers and then one byte every 2 s is cut at the deadline by
//! `remote add`, `remote test` and the team store's `list`. The trickle is fault injection
//! no real server does on demand, so it is an in-process server. Issue 20.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use crate::support::*;

/// A server that answers Keystone's login whole while `trickle` is false, and otherwise
/// sends a 200 with a long body one byte every 2 s.
struct Trickler {
    url: String,
    trickle: Arc<AtomicBool>,
}

fn start() -> Trickler {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let trickle = Arc::new(AtomicBool::new(true));
    let flag = trickle.clone();
    std::thread::spawn(move || {
        for conn in listener.incoming() {
            let Ok(mut conn) = conn else { return };
            let flag = flag.clone();
            std::thread::spawn(move || {
                let mut reader = BufReader::new(conn.try_clone().unwrap());
                let mut len = 0usize;
                loop {
                    let mut line = String::new();
                    if reader.read_line(&mut line).unwrap_or(0) == 0 {
                        return;
                    }
                    if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
                        len = v.trim().parse().unwrap_or(0);
                    }
                    if line == "\r\n" {
                        break;
                    }
                }
                let mut body = vec![0; len];
                let _ = reader.read_exact(&mut body);
                if !flag.load(Ordering::SeqCst) {
                    let body = r#"{"token": {"expires_at": "2099-01-01T00:00:00Z", "user": {"id": "u1"}, "project": {"id": "p1"}}}"#;
                    let _ = write!(
                        conn,
                        "HTTP/1.1 201 Created\r\nContent-Type: application/json\r\nX-Subject-Token: tok-0123456789\r\nContent-Length: {}\r\n\r\n{body}",
                        body.len()
                    );
                    return;
                }
                let _ = conn.write_all(
                    b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 100000\r\n\r\n{",
                );
                for _ in 0..100 {
                    std::thread::sleep(Duration::from_secs(2));
                    if conn.write_all(b" ").and_then(|()| conn.flush()).is_err() {
                        return;
                    }
                }
            });
        }
    });
    Trickler { url, trickle }
}

/// Runs `cmd` and returns its exit code, stderr and how long it took.
fn timed(cmd: Cmd) -> (i32, String, Duration) {
    let t = Instant::now();
    let (code, _, err) = cmd.run();
    (code, err, t.elapsed())
}

#[test]
fn remote_add_and_remote_test_are_cut_at_their_timeout() {
    let server = start();
    let home = Home::new();
    let (code, err, took) = timed(remote_add_fk(
        &home,
        &server.url,
        false,
        &["--timeout", "4s"],
        "a-password",
    ));
    assert_eq!(code, 6, "{err}");
    assert!(err.contains("timed out"), "{err}");
    assert!(took < Duration::from_secs(8), "remote add ran {took:?}");

    server.trickle.store(false, Ordering::SeqCst);
    remote_add_fk(
        &home,
        &server.url,
        false,
        &["--timeout", "4s"],
        "a-password",
    )
    .ok();
    server.trickle.store(true, Ordering::SeqCst);
    let (code, err, took) = timed(home.cmd().args(["--store", "file", "remote", "test", "fk"]));
    assert_ne!(code, 0, "{err}");
    assert!(err.contains("timed out"), "{err}");
    assert!(took < Duration::from_secs(8), "remote test ran {took:?}");
}

#[test]
fn the_team_store_list_is_cut_at_its_timeout() {
    let server = start();
    let home = Home::new();
    // Retries (for a leader election) stop after 1 s instead of 15 s.
    std::fs::create_dir_all(home.path()).unwrap();
    std::fs::write(
        home.path().join("config.yaml"),
        "vault:\n  retry_seconds: 1\n",
    )
    .unwrap();
    let (code, err, took) = timed(
        home.cmd()
            .env("BAO_ADDR", &server.url)
            .env("BAO_TOKEN", "a-token-0123456789")
            .env("BAO_CLIENT_TIMEOUT", "2s")
            .args(["--store", "vault", "list"]),
    );
    assert_ne!(code, 0, "{err}");
    assert!(err.contains("timed out"), "{err}");
    // 2 s a request, as the bao CLI's variable says (10 s by default), retried within
    // the 1 s retry window.
    assert!(took < Duration::from_secs(8), "list ran {took:?}");
    assert!(took >= Duration::from_secs(2), "list ran {took:?}");
    // A timeout that is no duration is refused before any request.
    let (code, err, _) = timed(
        home.cmd()
            .env("BAO_ADDR", &server.url)
            .env("BAO_TOKEN", "a-token-0123456789")
            .env("VAULT_CLIENT_TIMEOUT", "soon")
            .args(["--store", "vault", "list"]),
    );
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("VAULT_CLIENT_TIMEOUT"), "{err}");
}
