//! `--ca-cert`: a remote behind a private CA is trusted with the CA's certificate and
//! refused without it. The server is OpenSSL's own `s_server` with a certificate for
//! 127.0.0.1 signed by a CA made in the test; its `-www` page answers any GET with 200, which is all the Soda
//! remote's login check (`GET /api/v1/test-login`) needs.

use std::net::TcpStream;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::support::*;

struct Server(std::process::Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn a_private_ca_is_trusted_only_with_ca_cert() {
    require!(need_programs("OpenSSL", &["openssl"], "openssl"));
    let ss = require!(SecretService::start());
    let dir = tempfile::tempdir().unwrap();
    let p = |n: &str| dir.path().join(n);
    let (ca, ca_key, cert, key) = (p("ca.pem"), p("ca.key"), p("cert.pem"), p("key.pem"));
    let ec = [
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:P-256",
        "-nodes",
        "-days",
        "1",
    ];
    // A private CA, and a server certificate for 127.0.0.1 signed by it.
    Cmd::new("openssl")
        .args(["req", "-x509"])
        .args(ec)
        .args(["-subj", "/CN=keyctl test CA"])
        .args(["-addext", "basicConstraints=critical,CA:TRUE"])
        .arg("-keyout")
        .arg(&ca_key)
        .arg("-out")
        .arg(&ca)
        .ok();
    Cmd::new("openssl")
        .args(["req", "-x509"])
        .args(ec)
        .args([
            "-subj",
            "/CN=127.0.0.1",
            "-addext",
            "subjectAltName=IP:127.0.0.1",
        ])
        .args(["-addext", "basicConstraints=critical,CA:FALSE"])
        .arg("-CA")
        .arg(&ca)
        .arg("-CAkey")
        .arg(&ca_key)
        .arg("-keyout")
        .arg(&key)
        .arg("-out")
        .arg(&cert)
        .ok();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let _server = Server(
        Command::new("openssl")
            .args(["s_server", "-quiet", "-www", "-accept"])
            .arg(format!("127.0.0.1:{port}"))
            .arg("-cert")
            .arg(&cert)
            .arg("-key")
            .arg(&key)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let deadline = Instant::now() + Duration::from_secs(10);
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "openssl s_server did not start");
        std::thread::sleep(Duration::from_millis(50));
    }
    let url = format!("https://127.0.0.1:{port}");
    let home = Home::new();
    let add = |name: &str, extra: &[&str]| {
        ss.cmd(&home)
            .args([
                "remote", "add", name, "--type", "soda", "--url", &url, "--user", "id",
            ])
            .args(extra)
            .stdin("secret")
            .run()
    };
    let (code, _, err) = add("untrusted", &[]);
    assert_eq!(code, 6, "{err}");
    assert!(err.contains("unreachable"), "{err}");
    assert!(ss.secret_tool_lookup("remote:untrusted").is_none());
    let (code, _, err) = add("trusted", &["--ca-cert", ca.to_str().unwrap()]);
    assert_eq!(code, 0, "{err}");
    let config = std::fs::read_to_string(home.path().join("config.yaml")).unwrap();
    assert!(config.contains("ca_cert:"), "{config}");
}

/// `openssl s_server -www` on a free port with `cert`/`key`, up before this returns.
fn serve(cert: &std::path::Path, key: &std::path::Path) -> (Server, u16) {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let server = Server(
        Command::new("openssl")
            .args(["s_server", "-quiet", "-www", "-accept"])
            .arg(format!("127.0.0.1:{port}"))
            .arg("-cert")
            .arg(cert)
            .arg("-key")
            .arg(key)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let deadline = Instant::now() + Duration::from_secs(10);
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "openssl s_server did not start");
        std::thread::sleep(Duration::from_millis(50));
    }
    (server, port)
}

/// A self-signed certificate as `openssl req -x509` makes it (CA:TRUE, its own issuer),
/// for `san`.
fn self_signed(
    dir: &std::path::Path,
    name: &str,
    san: &str,
) -> (std::path::PathBuf, std::path::PathBuf) {
    let (cert, key) = (
        dir.join(format!("{name}.pem")),
        dir.join(format!("{name}.key")),
    );
    Cmd::new("openssl")
        .args([
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
        ])
        .args(["-nodes", "-days", "1", "-subj", "/CN=keyctl self-signed"])
        .args(["-addext", &format!("subjectAltName={san}")])
        .args(["-addext", "basicConstraints=critical,CA:TRUE"])
        .arg("-keyout")
        .arg(&key)
        .arg("-out")
        .arg(&cert)
        .ok();
    (cert, key)
}

#[test]
fn a_self_signed_server_certificate_given_with_ca_cert_is_trusted_as_curl_does() {
    require!(need_programs("OpenSSL", &["openssl"], "openssl"));
    let ss = require!(SecretService::start());
    let dir = tempfile::tempdir().unwrap();
    let (cert, key) = self_signed(dir.path(), "server", "IP:127.0.0.1");
    let (other, _) = self_signed(dir.path(), "other", "IP:127.0.0.1");
    let (_server, port) = serve(&cert, &key);
    let url = format!("https://127.0.0.1:{port}");

    // curl (OpenSSL) accepts it with --cacert: the behaviour keyctl matches.
    if std::process::Command::new("curl")
        .arg("--version")
        .output()
        .is_ok()
    {
        let (code, _, err) = Cmd::new("curl")
            .args(["-sS", "-o", "/dev/null", "--cacert"])
            .arg(&cert)
            .arg(&url)
            .run();
        assert_eq!(code, 0, "curl: {err}");
    }

    let home = Home::new();
    let add = |name: &str, ca: Option<&std::path::Path>| {
        let mut c = ss.cmd(&home).args([
            "remote", "add", name, "--type", "soda", "--url", &url, "--user", "id",
        ]);
        if let Some(ca) = ca {
            c = c.arg("--ca-cert").arg(ca);
        }
        c.stdin("secret").run()
    };
    // The server's own certificate as the CA file: trusted.
    let (code, _, err) = add("pinned", Some(&cert));
    assert_eq!(code, 0, "{err}");
    // No CA file, or another self-signed certificate: refused, nothing stored.
    for (name, ca) in [("none", None), ("wrong", Some(other.as_path()))] {
        let (code, _, err) = add(name, ca);
        assert_eq!(code, 6, "{name}: {err}");
        assert!(ss.secret_tool_lookup(&format!("remote:{name}")).is_none());
    }

    // The same certificate served for a name it does not carry: the host is still checked.
    let (elsewhere, elsewhere_key) = self_signed(dir.path(), "elsewhere", "DNS:soda.example");
    let (_other_server, other_port) = serve(&elsewhere, &elsewhere_key);
    let (code, _, err) = ss
        .cmd(&home)
        .args([
            "remote",
            "add",
            "misnamed",
            "--type",
            "soda",
            "--url",
            &format!("https://127.0.0.1:{other_port}"),
            "--user",
            "id",
            "--ca-cert",
        ])
        .arg(&elsewhere)
        .stdin("secret")
        .run();
    assert_eq!(code, 6, "{err}");
}
