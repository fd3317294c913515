//! End-to-end tests of the remotes against a real OpenStack Keystone (installed by
//! scripts/test): remote add/list/test/remove, push, list --remote, token reuse, token
//! exchange, server-minted keys, keys for another user, revoke and bulk revoke. Every
//! outcome is checked against Keystone's own API, not only through keyctl.

use crate::support::keystone::{User, keystone};
use crate::support::*;
use serde_json::Value;

/// A Secret Service, a home, and a remote `ks` for `user` added through keyctl.
struct Setup {
    ss: SecretService,
    home: Home,
    user: User,
}

impl Setup {
    fn new(prefix: &str, role: Option<&str>) -> Option<Setup> {
        let s = Setup::bare(keystone()?.user(prefix, role))?;
        s.user.add_remote(s.cmd(), "ks");
        Some(s)
    }

    /// A Secret Service and an empty home for `user`, no remote yet.
    fn bare(user: User) -> Option<Setup> {
        Some(Setup {
            ss: SecretService::start()?,
            home: Home::new(),
            user,
        })
    }

    fn cmd(&self) -> Cmd {
        self.ss.cmd(&self.home)
    }

    /// Creates a local key and returns (id, secret).
    fn create(&self, name: &str, extra: &[&str]) -> (String, String) {
        let mut args = vec!["--json", "create", "--name", name];
        args.extend_from_slice(extra);
        let v = self.cmd().args(&args).json();
        (
            v["id"].as_str().unwrap().to_string(),
            v["secret"].as_str().unwrap().to_string(),
        )
    }

    fn key(&self, id: &str) -> Value {
        self.registry_keys()
            .into_iter()
            .find(|k| k["id"] == id)
            .unwrap_or_else(|| panic!("{id} not in the registry"))
    }

    fn registry_keys(&self) -> Vec<Value> {
        self.home.registry()["keys"].as_array().unwrap().clone()
    }
}

/// Adds remote `adm`: Keystone's bootstrap admin.
fn add_admin_remote(s: &Setup) {
    let (code, _, err) = s
        .cmd()
        .args([
            "remote",
            "add",
            "adm",
            "--url",
            &keystone::started().url,
            "--user",
            "admin",
            "--project",
            "admin",
        ])
        .stdin(keystone::ADMIN_PASSWORD)
        .run();
    assert_eq!(code, 0, "{err}");
}

fn sha256_hex(s: &str) -> String {
    use sha2::Digest;
    sha2::Sha256::digest(s.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

#[test]
fn remote_add_keeps_the_password_out_of_config_and_tests_it() {
    let s = require!(Setup::new("add", Some("member")));
    let config = std::fs::read_to_string(s.home.path().join("config.yaml")).unwrap();
    assert!(config.contains("type: keystone"), "{config}");
    assert!(
        !config.contains(&s.user.password),
        "password leaked into config.yaml"
    );
    assert_eq!(
        s.ss.secret_tool_lookup("remote:ks").as_deref(),
        Some(s.user.password.as_str())
    );
    // The token `add` got is cached in the keyring, not in config.
    let cached = s.ss.secret_tool_lookup("token:ks").expect("token cached");
    let cached: Value = serde_json::from_str(&cached).unwrap();
    assert_eq!(cached["user_id"], s.user.id.as_str());

    let out = s.cmd().args(["--json", "remote", "list"]).ok();
    let v = json(&out);
    assert_eq!(v[0]["name"], "ks");
    assert_eq!(v[0]["user"], s.user.name.as_str());
    let out = s.cmd().args(["--json", "remote", "test", "ks"]).ok();
    assert_eq!(json(&out)["user_id"], s.user.id.as_str());

    // A wrong password is refused (7) and nothing is saved.
    let (code, _, err) = s
        .cmd()
        .args([
            "remote",
            "add",
            "bad",
            "--url",
            &keystone::started().url,
            "--user",
            &s.user.name,
            "--project",
            &s.user.project,
        ])
        .stdin("wrong-password")
        .run();
    assert_eq!(code, 7, "{err}");
    assert!(err.contains("HTTP 401"), "{err}");
    assert!(!err.contains("wrong-password"));
    assert!(s.ss.secret_tool_lookup("remote:bad").is_none());
    let config2 = std::fs::read_to_string(s.home.path().join("config.yaml")).unwrap();
    assert_eq!(config, config2);

    // Plain http to a non-loopback host is refused before anything is stored.
    s.cmd()
        .args([
            "remote",
            "add",
            "far",
            "--url",
            "http://keystone.example:5000",
            "--user",
            "u",
            "--project",
            "p",
        ])
        .stdin("pw")
        .code(2)
        .stderr_has("only on loopback");

    s.cmd().args(["--yes", "remote", "remove", "ks"]).ok();
    assert!(s.ss.secret_tool_lookup("remote:ks").is_none());
    assert!(s.ss.secret_tool_lookup("token:ks").is_none());
    let (code, _, _) = s.cmd().args(["remote", "test", "ks"]).run();
    assert_eq!(code, 3);
}

#[test]
fn push_list_token_revoke_checked_against_keystone() {
    let s = require!(Setup::new("push", Some("member")));
    let ks = require!(keystone());
    let (id, secret) = s.create("app", &[]);
    let (id2, _) = s.create("local-only", &[]);

    // -v shows each request and never a secret, password or token.
    let (code, _, err) = s.cmd().args(["-v", "push", "app", "--remote", "ks"]).run();
    assert_eq!(code, 0, "{err}");
    // With a cached token: one request for the credential, and one read of the catalog
    // (the S3 endpoint the key's AWS lines name); no login.
    let requests: Vec<&str> = err
        .lines()
        .filter(|l| l.contains(" -> ") && !l.contains("/v3/auth/catalog"))
        .collect();
    assert_eq!(
        requests.len(),
        1,
        "a cached token means one credential request per push: {err}"
    );
    assert!(
        err.lines().filter(|l| l.contains(" -> ")).count() <= 2,
        "{err}"
    );
    assert!(
        !err.contains("/v3/auth/tokens"),
        "a cached token logs in again: {err}"
    );
    assert!(requests[0].contains("POST http://127.0.0.1:"), "{err}");
    assert!(requests[0].contains("/v3/credentials -> 201 in "), "{err}");
    let token = s.ss.secret_tool_lookup("token:ks").unwrap();
    let token: Value = serde_json::from_str(&token).unwrap();
    for hidden in [
        secret.as_str(),
        s.user.password.as_str(),
        token["token"].as_str().unwrap(),
    ] {
        assert!(!err.contains(hidden), "-v leaked something: {err}");
    }

    // Keystone has exactly that pair, for this user and project.
    assert_eq!(ks.ec2_of(&s.user.id), vec![(id.clone(), secret.clone())]);
    let (st, v) = ks.api("GET", &format!("/v3/credentials/{}", sha256_hex(&id)), None);
    assert_eq!(st, 200);
    assert_eq!(v["credential"]["project_id"], s.user.project_id.as_str());
    let shown = s.cmd().args(["show", "app"]).ok();
    assert!(
        shown.contains(&format!("remotes      ks (remote ID {})", sha256_hex(&id))),
        "{shown}"
    );
    let link = &s.key(&id)["remotes"][0];
    assert_eq!(link["remote"], "ks");
    assert_eq!(link["remote_id"], sha256_hex(&id).as_str());

    // Pushing again is success, and still one credential.
    s.cmd()
        .args(["push", "app", "--remote", "ks"])
        .code(0)
        .stderr_has("already on remote ks");
    assert_eq!(ks.ec2_of(&s.user.id).len(), 1);

    // list --remote: both, local, and remote-only (a credential made behind keyctl's back).
    let (st, _) = ks.api(
        "POST",
        "/v3/credentials",
        Some(
            serde_json::json!({"credential": {"type": "ec2", "user_id": s.user.id,
            "project_id": s.user.project_id,
            "blob": "{\"access\":\"stranger\",\"secret\":\"x\"}"}}),
        ),
    );
    assert_eq!(st, 201);
    let rows = s.cmd().args(["--json", "list", "--remote", "ks"]).json();
    let place = |k: &str| {
        rows.as_array()
            .unwrap()
            .iter()
            .find(|r| r["id"] == k)
            .map(|r| r["where"].as_str().unwrap().to_string())
    };
    assert_eq!(place(&id).as_deref(), Some("both"));
    assert_eq!(place(&id2).as_deref(), Some("local"));
    assert_eq!(place("stranger").as_deref(), Some("remote"));

    // The token exchange proves Keystone accepts the secret. Keystone lets only a
    // service or admin user validate EC2 signatures, so that takes an admin's remote.
    s.cmd()
        .args(["token", "app", "--remote", "ks"])
        .code(7)
        .stderr_has("HTTP 403");
    add_admin_remote(&s);
    let out = s
        .cmd()
        .args(["--json", "token", "app", "--remote", "adm"])
        .ok();
    let t = json(&out);
    let tok = t["token"].as_str().unwrap();
    assert!(t["expires_at"].as_str().unwrap().ends_with('Z'));
    // Keystone itself says the token is the key owner's, in the key's project.
    let info = ks.validate(tok);
    assert_eq!(info["user"]["id"], s.user.id.as_str());
    assert_eq!(info["project"]["id"], s.user.project_id.as_str());

    // Revoke: remote first, then local; the entry stays, the secret goes.
    s.cmd().args(["--yes", "revoke", "app"]).ok();
    assert!(ks.ec2_of(&s.user.id).iter().all(|(a, _)| a != &id));
    let (st, _) = ks.api("GET", &format!("/v3/credentials/{}", sha256_hex(&id)), None);
    assert_eq!(st, 404);
    let k = s.key(&id);
    assert!(k["revoked_at"].is_string());
    assert!(k.get("remotes").is_none());
    assert!(s.ss.secret_tool_lookup(&id).is_none());
    let (code, _, _) = s.cmd().args(["token", "app", "--remote", "adm"]).run();
    assert_eq!(code, 8, "a revoked key gets no token");
    // A wrong secret gets no token either: the signature is checked by Keystone.
    let (wid, _) = s.create("wrong", &["--remote", "ks"]);
    s.ss.secret_tool_store(&wid, "not-the-pushed-secret");
    s.cmd()
        .args(["token", "wrong", "--remote", "adm"])
        .code(7)
        .stderr_has("HTTP 401");
}

#[test]
fn revoke_of_a_credential_already_gone_is_success_with_a_note() {
    let s = require!(Setup::new("gone", Some("member")));
    let ks = require!(keystone());
    let (id, _) = s.create("k", &["--remote", "ks"]);
    assert_eq!(ks.ec2_of(&s.user.id).len(), 1);
    let (st, _) = ks.api(
        "DELETE",
        &format!("/v3/credentials/{}", sha256_hex(&id)),
        None,
    );
    assert_eq!(st, 204);
    s.cmd()
        .args(["--yes", "revoke", "k"])
        .code(0)
        .stderr_has("already gone from remote ks");
    assert!(s.key(&id)["revoked_at"].is_string());

    // Deleting a pushed key locally warns that it stays valid on the remote.
    let (id2, _) = s.create("k2", &["--remote", "ks"]);
    s.cmd()
        .args(["--yes", "delete", "k2"])
        .code(0)
        .stderr_has("still registered on remote ks");
    assert_eq!(ks.ec2_of(&s.user.id).len(), 1);
    assert!(s.registry_keys().iter().all(|k| k["id"] != id2.as_str()));
}

#[test]
fn server_side_keys_and_keys_for_another_user() {
    // Minting through OS-EC2 needs the member role.
    let s = require!(Setup::new("mint", Some("member")));
    let ks = require!(keystone());
    let out = s
        .cmd()
        .args([
            "--json",
            "create",
            "--name",
            "minted",
            "--remote",
            "ks",
            "--server-side",
        ])
        .ok();
    let v = json(&out);
    let id = v["id"].as_str().unwrap();
    let secret = v["secret"].as_str().unwrap();
    assert_eq!(id.len(), 32);
    assert_eq!(v["remotes"][0]["remote"], "ks");
    // Keystone shows the same pair, and the keyring holds the secret it showed once.
    assert_eq!(
        ks.ec2_of(&s.user.id),
        vec![(id.to_string(), secret.to_string())]
    );
    let (st, _) = ks.api(
        "GET",
        &format!("/v3/users/{}/credentials/OS-EC2/{id}", s.user.id),
        None,
    );
    assert_eq!(st, 200);
    assert_eq!(s.ss.secret_tool_lookup(id).as_deref(), Some(secret));
    s.cmd().args(["--yes", "revoke", "minted"]).ok();
    assert!(ks.ec2_of(&s.user.id).is_empty());

    // An admin's remote pushes a key that belongs to another user.
    add_admin_remote(&s);
    let other = ks.user("svc", None);
    let (kid, ksecret) = s.create("for-svc", &["--remote", "adm", "--for-user", &other.name]);
    assert_eq!(ks.ec2_of(&other.id), vec![(kid.clone(), ksecret)]);
    assert_eq!(s.key(&kid)["remotes"][0]["user_id"], other.id.as_str());
    // A user without admin rights cannot push for someone else: refused, nothing marked.
    let (lid, _) = s.create("plain", &[]);
    let (code, _, err) = s
        .cmd()
        .args(["push", "plain", "--remote", "ks", "--for-user", &other.id])
        .run();
    assert_eq!(code, 7, "{err}");
    assert!(s.key(&lid).get("remotes").is_none());
    assert_eq!(ks.ec2_of(&other.id).len(), 1);
}

#[test]
fn bulk_revoke_takes_every_key_off_keystone() {
    let s = require!(Setup::new("bulk", Some("member")));
    let ks = require!(keystone());
    let mut ids = Vec::new();
    for i in 0..12 {
        let (id, _) = s.create(&format!("b{i}"), &["--remote", "ks"]);
        ids.push(id);
    }
    // Two expired keys for --all-expired (one of them pushed): keyctl will not mint a
    // key that is already expired, so their expiry is moved back in the registry.
    let (e1, _) = s.create("old1", &["--remote", "ks", "--expires", "1d"]);
    let (e2, _) = s.create("old2", &["--expires", "1d"]);
    let path = s.home.path().join("keys.json");
    let mut reg = s.home.registry();
    for k in reg["keys"].as_array_mut().unwrap() {
        if k["id"] == e1.as_str() || k["id"] == e2.as_str() {
            k["expires_at"] = "2020-01-01T00:00:00Z".into();
        }
    }
    std::fs::write(&path, serde_json::to_vec(&reg).unwrap()).unwrap();
    assert_eq!(ks.ec2_of(&s.user.id).len(), 13);

    let mut args = vec!["--yes", "revoke", "--jobs", "4"];
    args.extend(ids.iter().map(String::as_str));
    s.cmd().args(&args).ok();
    let left: Vec<String> = ks.ec2_of(&s.user.id).into_iter().map(|(a, _)| a).collect();
    assert_eq!(left, vec![e1.clone()]);
    for id in &ids {
        assert!(s.key(id)["revoked_at"].is_string());
        assert!(s.ss.secret_tool_lookup(id).is_none());
    }

    s.cmd().args(["--yes", "revoke", "--all-expired"]).ok();
    assert!(ks.ec2_of(&s.user.id).is_empty());
    assert!(s.key(&e1)["revoked_at"].is_string());
    assert!(s.key(&e2)["revoked_at"].is_string());
}

#[test]
fn an_unreachable_remote_changes_nothing_locally() {
    let s = require!(Setup::new("down", Some("member")));
    let (id, secret) = s.create("k", &[]);
    // A port nothing listens on.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let (code, _, err) = s
        .cmd()
        .args([
            "remote",
            "add",
            "dead",
            "--no-verify",
            "--url",
            &format!("http://127.0.0.1:{port}"),
            "--user",
            "u",
            "--project",
            "p",
        ])
        .stdin("pw")
        .run();
    assert_eq!(code, 0, "{err}");
    let before = s.home.registry();
    s.cmd()
        .args(["push", "k", "--remote", "dead"])
        .code(6)
        .stderr_has("unreachable");
    assert_eq!(s.home.registry(), before);

    // A key pushed to ks, then ks's credential is gone from the keyring and ks points to
    // the dead port: revoke fails, the key keeps its secret and says how to force it.
    s.cmd().args(["push", "k", "--remote", "ks"]).ok();
    let config = s.home.path().join("config.yaml");
    let text = std::fs::read_to_string(&config).unwrap();
    std::fs::write(
        &config,
        text.replace(
            &keystone::started().url,
            &format!("http://127.0.0.1:{port}"),
        ),
    )
    .unwrap();
    let before = s.home.registry();
    s.cmd()
        .args(["--yes", "revoke", "k"])
        .code(6)
        .stderr_has("--local-only");
    assert_eq!(s.home.registry(), before);
    assert_eq!(
        s.ss.secret_tool_lookup(&id).as_deref(),
        Some(secret.as_str())
    );
    assert_eq!(keystone::started().ec2_of(&s.user.id).len(), 1);

    s.cmd().args(["--yes", "revoke", "k", "--local-only"]).ok();
    assert!(s.key(&id)["revoked_at"].is_string());
    assert!(s.ss.secret_tool_lookup(&id).is_none());
}

#[test]
fn application_credential_logs_in_but_keystone_refuses_it_credentials() {
    let ks = require!(keystone());
    let user = ks.user("appcred", Some("member"));
    let token = ks.login(&user.name, &user.password, &user.project);
    let (st, v) = ks.api_as(
        &token,
        "POST",
        &format!("/v3/users/{}/application_credentials", user.id),
        Some(serde_json::json!({"application_credential": {"name": "keyctl-test"}})),
    );
    assert_eq!(st, 201, "{v}");
    let ac_id = v["application_credential"]["id"].as_str().unwrap();
    let ac_secret = v["application_credential"]["secret"].as_str().unwrap();
    let s = require!(Setup::bare(user));
    let (code, _, err) = s
        .cmd()
        .args([
            "remote",
            "add",
            "ac",
            "--url",
            &ks.url,
            "--application-credential",
            ac_id,
        ])
        .stdin(ac_secret)
        .run();
    assert_eq!(code, 0, "{err}");
    assert_eq!(
        s.ss.secret_tool_lookup("remote:ac").as_deref(),
        Some(ac_secret)
    );
    let config = std::fs::read_to_string(s.home.path().join("config.yaml")).unwrap();
    assert!(config.contains("auth: application-credential"), "{config}");
    assert!(!config.contains(ac_secret));
    let out = s.cmd().args(["--json", "remote", "test", "ac"]).ok();
    assert_eq!(json(&out)["user_id"], s.user.id.as_str());
    // Keystone 30 will not let delegated (application-credential) tokens touch
    // /v3/credentials: the push is refused and the key stays local, unmarked.
    let (id, _) = s.create("k", &[]);
    let (code, _, err) = s.cmd().args(["push", "k", "--remote", "ac"]).run();
    assert_eq!(code, 7, "{err}");
    assert!(
        err.contains("Delegated tokens cannot access credentials"),
        "{err}"
    );
    assert!(s.key(&id).get("remotes").is_none());
    assert!(ks.ec2_of(&s.user.id).is_empty());
}

/// Keystone under a path prefix, as devstack serves it (`http://host/identity/v3`): an
/// in-process proxy that strips `/identity` and forwards to the real Keystone.
fn identity_proxy() -> fake_http::FakeServer {
    fake_http::FakeServer::start(|r| {
        let ks = keystone::started();
        let Some(path) = r.path.strip_prefix("/identity") else {
            return fake_http::Response::json(404, serde_json::json!({}));
        };
        let client = reqwest::blocking::Client::new();
        let mut rb = client.request(
            reqwest::Method::from_bytes(r.method.as_bytes()).unwrap(),
            format!("{}{path}", ks.url),
        );
        for (k, v) in &r.headers {
            if ["x-auth-token", "x-subject-token", "content-type"]
                .contains(&k.to_ascii_lowercase().as_str())
            {
                rb = rb.header(k, v);
            }
        }
        let reply = rb.body(r.body.clone()).send().unwrap();
        let status = reply.status().as_u16();
        let mut out = fake_http::Response::raw(status, Vec::new());
        if let Some(t) = reply.headers().get("x-subject-token") {
            out = out.header("X-Subject-Token", t.to_str().unwrap());
        }
        out.body = reply.bytes().unwrap().to_vec();
        out
    })
}

#[test]
fn every_auth_url_form_people_have_works_and_remote_test_names_the_endpoint() {
    let ks = require!(keystone());
    let proxy = identity_proxy();
    let s = require!(Setup::bare(ks.user("urls", Some("member"))));
    let forms = [
        format!("{}/v3", ks.url),
        format!("{}/v3/", ks.url),
        format!("{}/", ks.url),
        format!("{}/identity", proxy.url),
        format!("{}/identity/", proxy.url),
        format!("{}/identity/v3", proxy.url),
    ];
    for (i, url) in forms.iter().enumerate() {
        let name = format!("ks{i}");
        let (code, _, err) = s
            .cmd()
            .args(s.user.remote_add_args(&name, url))
            .stdin(&s.user.password)
            .run();
        assert_eq!(code, 0, "remote add --url {url}: {err}");
        let out = s.cmd().args(["remote", "test", &name]).ok();
        let root = url.trim_end_matches('/').trim_end_matches("/v3");
        assert!(
            out.contains(&format!("at {root}/v3 as user")),
            "{url}: {out}"
        );
        // A push goes to the same Keystone whatever the form.
        let (id, _) = s.create(&format!("k{i}"), &["--remote", &name]);
        assert!(ks.ec2_of(&s.user.id).iter().any(|(a, _)| *a == id), "{url}");
    }
}

#[test]
fn remote_add_takes_openrc_variables_and_clouds_yaml_and_keeps_the_password_out_of_config() {
    let ks = require!(keystone());
    let s = require!(Setup::bare(ks.user("osenv", Some("member"))));
    let auth_url = format!("{}/v3", ks.url);

    // An openrc file's variables.
    let (code, _, err) =
        s.ss.cmd(&s.home)
            .args(["remote", "add", "fromenv", "--from-env"])
            .env("OS_AUTH_URL", &auth_url)
            .env("OS_USERNAME", &s.user.name)
            .env("OS_PROJECT_NAME", &s.user.project)
            .env("OS_USER_DOMAIN_NAME", "Default")
            .env("OS_PROJECT_DOMAIN_NAME", "Default")
            .env("OS_PASSWORD", &s.user.password)
            .run();
    assert_eq!(code, 0, "{err}");
    assert!(err.contains("OS_* environment variables"), "{err}");
    assert!(
        s.cmd()
            .args(["remote", "test", "fromenv"])
            .ok()
            .contains(&s.user.id)
    );

    // clouds.yaml and secure.yaml where the openstack CLI reads them.
    let dir = s.home.dir.path().join("user/.config/openstack");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(
        dir.join("clouds.yaml"),
        format!(
            "clouds:\n  mycloud:\n    auth:\n      auth_url: {auth_url}\n      username: {}\n      project_name: {}\n      user_domain_name: Default\n      project_domain_name: Default\n    region_name: RegionOne\n",
            s.user.name, s.user.project
        ),
    )
    .unwrap();
    std::fs::write(
        dir.join("secure.yaml"),
        format!(
            "clouds:\n  mycloud:\n    auth:\n      password: {}\n",
            s.user.password
        ),
    )
    .unwrap();
    s.cmd()
        .args(["remote", "add", "cloud", "--os-cloud", "mycloud"])
        .ok();
    assert!(
        s.cmd()
            .args(["remote", "test", "cloud"])
            .ok()
            .contains(&s.user.id)
    );
    let config = std::fs::read_to_string(s.home.path().join("config.yaml")).unwrap();
    assert!(!config.contains(&s.user.password), "{config}");

    // cacert is honoured: one that does not exist is named in the error.
    std::fs::write(
        dir.join("clouds.yaml"),
        format!(
            "clouds:\n  tls:\n    auth:\n      auth_url: {auth_url}\n      username: u\n      project_name: p\n    cacert: /nonexistent/ca.pem\n"
        ),
    )
    .unwrap();
    s.cmd()
        .args(["remote", "add", "tls", "--os-cloud", "tls"])
        .stdin("pw")
        .code(2)
        .stderr_has("/nonexistent/ca.pem");
    let (code, _, err) = s
        .cmd()
        .args(["remote", "add", "x", "--os-cloud", "nosuch"])
        .run();
    assert_eq!(code, 2, "{err}");
}
