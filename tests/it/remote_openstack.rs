//! keyctl against what OpenStack users have and use, judged by the real client:
//! python-openstackclient 10 (openstacksdk, keystoneauth; installed by scripts/test as
//! `KEYCTL_TEST_OPENSTACK`) logs in with the same clouds.yaml and openrc keyctl reads, for
//! a user outside the Default domain, and with the application credentials keyctl
//! creates and renders, until `keyctl revoke`. Keystone is the real one
//! (support/keystone.rs). Every refusal is checked with its exit code and message.

use std::path::{Path, PathBuf};

use crate::support::keystone::{Keystone, User, create_ruled_app_credential, keystone};
use crate::support::*;

fn openstack_cli() -> Option<PathBuf> {
    need("python-openstackclient", "KEYCTL_TEST_OPENSTACK")
}

struct Setup {
    ss: SecretService,
    home: Home,
    cli: PathBuf,
}

impl Setup {
    fn new() -> Option<Setup> {
        Some(Setup {
            cli: openstack_cli()?,
            ss: SecretService::start()?,
            home: Home::new(),
        })
    }

    fn cmd(&self) -> Cmd {
        self.ss.cmd(&self.home)
    }

    /// The openstack CLI with the same HOME as keyctl, run in `dir`, with `env`.
    fn openstack(&self, dir: &Path, env: &[(&str, &str)], args: &[&str]) -> (i32, String, String) {
        let mut c = self.home.cmd_of(&self.cli).args(args).command();
        c.current_dir(dir);
        for (k, v) in env {
            c.env(k, v);
        }
        let o = c.output().expect("run the openstack CLI");
        (
            o.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&o.stdout).into_owned(),
            String::from_utf8_lossy(&o.stderr).into_owned(),
        )
    }

    /// The openstack CLI logs in as `user_id` with the settings it finds (cloud `cloud` of
    /// clouds.yaml, else the OS_* variables in `env`), and so does keyctl once
    /// `remote add NAME` reads the same (`--os-cloud` or `--from-env`). Returns
    /// config.yaml's text after.
    fn both_log_in(
        &self,
        work: &Path,
        env: &[(&str, &str)],
        cloud: Option<&str>,
        name: &str,
        user_id: &str,
    ) -> String {
        let os_args: Vec<&str> = cloud.map(|c| vec!["--os-cloud", c]).unwrap_or_default();
        assert_eq!(self.token_user(work, env, &os_args), user_id);
        let mut c = self.cmd().args(["remote", "add", name]);
        c = match cloud {
            Some(cloud) => c.args(["--os-cloud", cloud]),
            None => c.args(["--from-env"]),
        };
        for (k, v) in env {
            c = c.env(k, v);
        }
        c.ok();
        let out = self.cmd().args(["remote", "test", name]).ok();
        assert!(out.contains(user_id), "{out}");
        std::fs::read_to_string(self.home.path().join("config.yaml")).unwrap()
    }

    /// `openstack token issue` as JSON: the user ID it logged in as.
    fn token_user(&self, dir: &Path, env: &[(&str, &str)], extra: &[&str]) -> String {
        let mut args = extra.to_vec();
        args.extend(["token", "issue", "-f", "json"]);
        let (code, out, err) = self.openstack(dir, env, &args);
        assert_eq!(code, 0, "openstack token issue failed: {err}");
        json(&out)["user_id"].as_str().unwrap().to_string()
    }

    fn config_dir(&self) -> PathBuf {
        let d = self.home.dir.path().join("user/.config/openstack");
        std::fs::create_dir_all(&d).unwrap();
        d
    }

    fn work_dir(&self) -> PathBuf {
        let d = self.home.dir.path().join("work");
        std::fs::create_dir_all(&d).unwrap();
        d
    }
}

/// A user in a domain of its own (not Default) whose project is in the Default domain,
/// as on a cloud whose users come from LDAP or a federation domain.
fn second_domain_user(ks: &Keystone) -> (User, String) {
    let (domain_id, domain_name) = ks.domain("users");
    let user = ks.user_in("d2", &domain_id, "default", Some("member"));
    (user, domain_name)
}

#[test]
fn a_user_of_a_second_domain_logs_in_from_clouds_yaml_and_horizon_openrc_like_the_openstack_cli() {
    let ks = require!(keystone());
    let s = require!(Setup::new());
    let (user, domain) = second_domain_user(ks);
    let auth_url = format!("{}/v3", ks.url);
    let work = s.work_dir();

    // clouds.yaml + secure.yaml in ~/.config/openstack, the user's domain by name and the
    // project's by ID: the openstack CLI logs in with them...
    std::fs::write(
        s.config_dir().join("clouds.yaml"),
        format!(
            "clouds:\n  mine:\n    auth:\n      auth_url: {auth_url}\n      username: {}\n      project_name: {}\n      user_domain_name: {domain}\n      project_domain_id: default\n    region_name: RegionOne\n",
            user.name, user.project
        ),
    )
    .unwrap();
    std::fs::write(
        s.config_dir().join("secure.yaml"),
        format!(
            "clouds:\n  mine:\n    auth:\n      password: {}\n",
            user.password
        ),
    )
    .unwrap();
    // ...and so does keyctl, from the same files.
    let config = s.both_log_in(&work, &[], Some("mine"), "cloud", &user.id);
    assert!(
        config.contains(&format!("user_domain_name: {domain}")),
        "{config}"
    );
    assert!(config.contains("project_domain_id: default"), "{config}");
    assert!(!config.contains(&user.password), "{config}");

    // OS_CLOUD picks the cloud; OS_CLIENT_CONFIG_FILE names a clouds.yml elsewhere.
    let other = s.home.dir.path().join("elsewhere.yml");
    std::fs::write(
        &other,
        format!(
            "clouds:\n  ids:\n    auth:\n      auth_url: {auth_url}\n      user_id: {}\n      project_id: {}\n",
            user.id, user.project_id
        ),
    )
    .unwrap();
    // ...and OS_CLIENT_SECURE_FILE a secure.yaml elsewhere, with the password.
    let secure = s.home.dir.path().join("elsewhere-secure.yaml");
    std::fs::write(
        &secure,
        format!(
            "clouds:\n  ids:\n    auth:\n      password: {}\n",
            user.password
        ),
    )
    .unwrap();
    let env = [
        ("OS_CLOUD", "ids"),
        ("OS_CLIENT_CONFIG_FILE", other.to_str().unwrap()),
        ("OS_CLIENT_SECURE_FILE", secure.to_str().unwrap()),
    ];
    s.both_log_in(&work, &env, None, "byid", &user.id);

    // A token (auth_type v3token) the CLI issued, scoped by project ID.
    let (code, out, err) = s.openstack(
        &work,
        &[],
        &["--os-cloud", "mine", "token", "issue", "-f", "json"],
    );
    assert_eq!(code, 0, "{err}");
    let token = json(&out)["id"].as_str().unwrap().to_string();
    std::fs::write(
        s.config_dir().join("clouds.yaml"),
        format!(
            "clouds:\n  tok:\n    auth_type: v3token\n    auth:\n      auth_url: {auth_url}\n      token: {token}\n      project_id: {}\n",
            user.project_id
        ),
    )
    .unwrap();
    let config = s.both_log_in(&work, &[], Some("tok"), "tok", &user.id);
    assert!(
        config.contains("auth: token") && !config.contains(&token),
        "{config}"
    );

    // Horizon's openrc: OS_USER_DOMAIN_NAME and OS_PROJECT_DOMAIN_ID.
    let openrc = [
        ("OS_AUTH_URL", auth_url.as_str()),
        ("OS_USERNAME", user.name.as_str()),
        ("OS_PASSWORD", user.password.as_str()),
        ("OS_PROJECT_NAME", user.project.as_str()),
        ("OS_USER_DOMAIN_NAME", domain.as_str()),
        ("OS_PROJECT_DOMAIN_ID", "default"),
        ("OS_IDENTITY_API_VERSION", "3"),
        ("OS_INTERFACE", "public"),
    ];
    s.both_log_in(&work, &openrc, None, "rc", &user.id);
    // Keystone's catalog names an object store: an EC2 key's AWS lines carry its S3
    // endpoint (the proxy's root, where Swift's s3api answers).
    let (st, svc) = ks.api(
        "POST",
        "/v3/services",
        Some(serde_json::json!({"service": {"type": "object-store", "name": "swift-keyctl-test"}})),
    );
    assert_eq!(st, 201, "{svc}");
    let (st, ep) = ks.api(
        "POST",
        "/v3/endpoints",
        Some(serde_json::json!({"endpoint": {
            "service_id": svc["service"]["id"],
            "interface": "public",
            "url": "http://127.0.0.1:8080/v1/AUTH_keyctl"
        }})),
    );
    assert_eq!(st, 201, "{ep}");
    // Pushing through it works: the token is scoped to the right project.
    let v = s
        .cmd()
        .args(["--json", "create", "--name", "k", "--remote", "rc"])
        .json();
    let id = v["id"].as_str().unwrap();
    assert!(ks.ec2_of(&user.id).iter().any(|(a, _)| a == id));
    // An EC2 credential prints as what S3 clients read, never as a Soda snippet: the key
    // records its service (KeystoneEc2), and `config` renders from it.
    let rendered = s.cmd().args(["config", "k"]).ok();
    assert!(
        rendered.starts_with(&format!("export AWS_ACCESS_KEY_ID={id}\n")),
        "{rendered}"
    );
    assert!(
        rendered.contains("\nexport AWS_ENDPOINT_URL=http://127.0.0.1:8080\n"),
        "{rendered}"
    );
    let reg = s.home.registry();
    let rec = reg["keys"]
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["id"] == id)
        .unwrap();
    assert_eq!(rec["service"]["type"], "keystone-ec2", "{rec}");
    let out = s
        .cmd()
        .args(["create", "--name", "k2", "--remote", "rc"])
        .ok();
    assert!(out.starts_with("export AWS_ACCESS_KEY_ID="), "{out}");
    assert!(out.contains("export AWS_SECRET_ACCESS_KEY='"), "{out}");
    assert!(
        out.contains("export AWS_ENDPOINT_URL=http://127.0.0.1:8080"),
        "{out}"
    );
    assert!(!out.contains("soda") && !out.contains("SODA_"), "{out}");
    let (code, _, err) = s
        .cmd()
        .args([
            "create", "--name", "k3", "--remote", "rc", "--output", "yaml",
        ])
        .run();
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("Keystone EC2 credential"), "{err}");
    assert_eq!(
        ks.ec2_of(&user.id).len(),
        2,
        "a refused create pushed nothing"
    );

    // Flags alone: the same separate domains.
    s.cmd()
        .args([
            "remote",
            "add",
            "flags",
            "--url",
            &auth_url,
            "--user",
            &user.name,
            "--user-domain",
            &domain,
            "--project",
            &user.project,
            "--project-domain-id",
            "default",
        ])
        .stdin(&user.password)
        .ok();
    // One --domain for both is what keyctl used to send: Keystone refuses it (the
    // project is not in the user's domain), and keyctl saves nothing.
    let (code, _, err) = s
        .cmd()
        .args([
            "remote",
            "add",
            "one",
            "--url",
            &auth_url,
            "--user",
            &user.name,
            "--project",
            &user.project,
            "--domain",
            &domain,
        ])
        .stdin(&user.password)
        .run();
    assert_eq!(code, 7, "{err}");
    assert!(err.contains("remote one was not saved"), "{err}");
}

#[test]
fn login_forms_keyctl_does_not_support_are_refused_with_what_to_use() {
    let ks = require!(keystone());
    let s = require!(Setup::new());
    let auth_url = format!("{}/v3", ks.url);
    let cases: [(&str, &str); 6] = [
        (
            "    auth_type: v3oidcpassword\n",
            "auth_type 'v3oidcpassword'",
        ),
        ("    profile: vexxhost\n", "`profile:`"),
        ("    identity_api_version: 2\n", "Identity v3 only"),
        ("      passcode: \"123456\"\n", "one-time codes"),
        ("      system_scope: all\n", "project-scoped"),
        ("    verify: false\n", "does not turn TLS verification off"),
    ];
    for (i, (extra, says)) in cases.iter().enumerate() {
        let url = if extra.contains("verify") {
            "https://keystone.example:5000/v3".to_string()
        } else {
            auth_url.clone()
        };
        let (top, auth) = if extra.starts_with("      ") {
            ("", *extra)
        } else {
            (*extra, "")
        };
        std::fs::write(
            s.config_dir().join("clouds.yaml"),
            format!(
                "clouds:\n  c:\n{top}    auth:\n      auth_url: {url}\n      username: u\n      password: p\n      project_name: p\n{auth}"
            ),
        )
        .unwrap();
        let (code, _, err) = s
            .cmd()
            .args(["remote", "add", &format!("r{i}"), "--os-cloud", "c"])
            .run();
        assert_eq!(code, 2, "{extra}: {err}");
        assert!(err.contains(says), "{extra}: {err}");
        assert!(err.contains("cloud 'c'"), "{err}");
    }
    // openrc variables that name no project, or no user.
    for (vars, says) in [
        (vec![("OS_USERNAME", "u")], "project-scoped"),
        (
            vec![("OS_PROJECT_NAME", "p")],
            "a password login needs username or user_id",
        ),
    ] {
        let mut c = s
            .cmd()
            .args(["remote", "add", "rc", "--from-env"])
            .env("OS_AUTH_URL", &auth_url)
            .env("OS_PASSWORD", "pw");
        for (k, v) in &vars {
            c = c.env(k, v);
        }
        let (code, _, err) = c.run();
        assert_eq!(code, 2, "{vars:?}: {err}");
        assert!(err.contains(says), "{vars:?}: {err}");
    }
    // The Keystone flags on another remote type.
    let (code, _, err) = s
        .cmd()
        .args([
            "remote",
            "add",
            "web",
            "--type",
            "http",
            "--url",
            "http://127.0.0.1:9",
            "--user-domain",
            "D",
        ])
        .run();
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("apply to --type keystone only"), "{err}");
    // An application credential by name without the user's domain.
    let (code, _, err) = s
        .cmd()
        .args(["remote", "add", "acn", "--from-env"])
        .env("OS_AUTH_URL", &auth_url)
        .env("OS_AUTH_TYPE", "v3applicationcredential")
        .env("OS_APPLICATION_CREDENTIAL_NAME", "ci")
        .env("OS_APPLICATION_CREDENTIAL_SECRET", "s")
        .env("OS_USERNAME", "u")
        .run();
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("user_domain_name"), "{err}");
    assert!(!s.home.path().join("config.yaml").exists());
}

#[test]
fn an_application_credential_keyctl_creates_works_in_the_openstack_cli_until_revoked() {
    let ks = require!(keystone());
    let s = require!(Setup::new());
    let (user, domain) = second_domain_user(ks);
    s.cmd()
        .args([
            "remote",
            "add",
            "ks",
            "--url",
            &ks.url,
            "--user",
            &user.name,
            "--user-domain",
            &domain,
            "--project",
            &user.project,
        ])
        .stdin(&user.password)
        .ok();
    let work = s.work_dir();

    // clouds.yaml as keyctl prints it, read by the openstack CLI.
    let clouds = s
        .cmd()
        .args([
            "create",
            "--remote",
            "ks",
            "--app-credential",
            "--name",
            "ci",
            "--role",
            "member",
            "--description",
            "CI deploys",
            "--expires",
            "30d",
        ])
        .ok();
    assert!(
        clouds.contains("auth_type: v3applicationcredential"),
        "{clouds}"
    );
    assert!(!clouds.contains("soda"), "{clouds}");
    let file = work.join("clouds.yaml");
    std::fs::write(&file, &clouds).unwrap();
    let env = [("OS_CLIENT_CONFIG_FILE", file.to_str().unwrap())];
    assert_eq!(s.token_user(&work, &env, &["--os-cloud", "ci"]), user.id);

    // Keystone holds it as asked: restricted, the one role, the expiry.
    let reg = s.home.registry();
    let rec = &reg["keys"][0];
    let ac_id = rec["id"].as_str().unwrap();
    assert_eq!(rec["service"]["type"], "keystone-app-credential");
    assert_eq!(rec["service"]["project_id"], user.project_id.as_str());
    let (st, v) = ks.api(
        "GET",
        &format!("/v3/users/{}/application_credentials/{ac_id}", user.id),
        None,
    );
    assert_eq!(st, 200, "{v}");
    let ac = &v["application_credential"];
    assert_eq!(ac["unrestricted"], false);
    assert_eq!(ac["description"], "CI deploys");
    // `member` and the roles it implies (reader), not `admin`.
    let roles: Vec<&str> = ac["roles"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["name"].as_str().unwrap())
        .collect();
    assert!(
        roles.contains(&"member") && !roles.contains(&"admin"),
        "{roles:?}"
    );
    assert!(ac["expires_at"].is_string());

    // openrc lines, sourced by sh, are what the CLI reads too.
    let openrc = s.cmd().args(["config", "ci", "--output", "env"]).ok();
    assert!(
        openrc.contains("OS_APPLICATION_CREDENTIAL_SECRET='"),
        "{openrc}"
    );
    std::fs::write(work.join("app-openrc.sh"), &openrc).unwrap();
    let mut c = s
        .home
        .cmd_of("sh")
        .args([
            "-c",
            &format!(
                ". ./app-openrc.sh && exec '{}' token issue -f json",
                s.cli.display()
            ),
        ])
        .command();
    c.current_dir(&work);
    let o = c.output().unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert_eq!(
        json(&String::from_utf8_lossy(&o.stdout))["user_id"],
        user.id.as_str()
    );

    // verify logs in with it; list --remote shows it on both sides.
    s.cmd()
        .args(["verify", "ci"])
        .code(0)
        .stderr_has("works on remote ks: Keystone issued a token for the application credential");
    let rows = s.cmd().args(["--json", "list", "--remote", "ks"]).json();
    assert!(
        rows.as_array()
            .unwrap()
            .iter()
            .any(|r| r["id"] == ac_id && r["where"] == "both"),
        "{rows}"
    );

    // The Soda forms are refused for it.
    s.cmd()
        .args(["config", "ci", "--output", "helm-set"])
        .code(2)
        .stderr_has("Keystone application credential");
    // --write puts its clouds.yaml entry into a clouds.yaml, keeping the other clouds,
    // and the CLI logs in with it.
    let written = work.join("written-clouds.yaml");
    std::fs::write(&written, "clouds:\n  other:\n    auth_type: password\n").unwrap();
    s.cmd()
        .args(["config", "ci", "--write", written.to_str().unwrap()])
        .ok();
    let env = [("OS_CLIENT_CONFIG_FILE", written.to_str().unwrap())];
    assert_eq!(s.token_user(&work, &env, &["--os-cloud", "ci"]), user.id);
    let text = std::fs::read_to_string(&written).unwrap();
    assert!(text.contains("other:"), "{text}");
    // ... but never into a Soda configuration file.
    let soda = work.join("configuration.yml");
    std::fs::write(&soda, "soda_cloud:\n  host: cloud.soda.io\n").unwrap();
    s.cmd()
        .args(["config", "ci", "--write", soda.to_str().unwrap()])
        .code(2)
        .stderr_has("not a file of this form");

    // Access rules and --unrestricted reach Keystone as given.
    let v = create_ruled_app_credential(s.cmd(), &work, "ks", "ruled");
    assert_eq!(v["service"]["type"], "keystone-app-credential");
    let (st, got) = ks.api(
        "GET",
        &format!(
            "/v3/users/{}/application_credentials/{}",
            user.id,
            v["id"].as_str().unwrap()
        ),
        None,
    );
    assert_eq!(st, 200, "{got}");
    assert_eq!(got["application_credential"]["unrestricted"], true);
    assert_eq!(
        got["application_credential"]["access_rules"][0]["path"],
        "/v3/users/*"
    );

    // After revoke, Keystone has deleted it and the CLI can no longer log in.
    s.cmd().args(["--yes", "revoke", "ci"]).ok();
    let (st, _) = ks.api(
        "GET",
        &format!("/v3/users/{}/application_credentials/{ac_id}", user.id),
        None,
    );
    assert_eq!(st, 404);
    let (code, _, err) = s.openstack(&work, &env, &["--os-cloud", "ci", "token", "issue"]);
    assert_ne!(code, 0, "{err}");
}

#[test]
fn application_credential_refusals_create_nothing() {
    let ks = require!(keystone());
    let s = require!(Setup::new());
    let user = ks.user("acref", Some("member"));
    s.cmd()
        .args([
            "remote",
            "add",
            "ks",
            "--url",
            &ks.url,
            "--user",
            &user.name,
            "--project",
            &user.project,
        ])
        .stdin(&user.password)
        .ok();
    s.cmd()
        .args([
            "remote",
            "add",
            "web",
            "--type",
            "http",
            "--url",
            "http://127.0.0.1:9",
            "--no-verify",
        ])
        .ok();
    let bad_rules = s.home.dir.path().join("rules.yaml");
    std::fs::write(&bad_rules, "service: compute\n").unwrap();
    let rules = bad_rules.to_str().unwrap();
    for (args, says) in [
        (
            vec!["--remote", "web", "--app-credential"],
            "application credentials are Keystone's",
        ),
        (
            vec!["--remote", "ks", "--app-credential", "--format", "aksk"],
            "--format does not apply",
        ),
        (
            vec![
                "--remote",
                "ks",
                "--app-credential",
                "--access-rules",
                rules,
            ],
            "non-empty list of rules",
        ),
        (
            vec!["--remote", "ks", "--app-credential", "--output", "helm-set"],
            "--output helm-set",
        ),
        (
            vec!["--remote", "ks", "--app-credential", "--region", "us"],
            "--region is for Soda Cloud",
        ),
    ] {
        let mut all = vec!["create"];
        all.extend(args.iter().copied());
        let (code, _, err) = s.cmd().args(&all).run();
        assert_eq!(code, 2, "{args:?}: {err}");
        assert!(err.contains(says), "{args:?}: {err}");
    }
    // Keystone's own refusal (a role the user does not have) is passed on, nothing stored.
    let (code, _, err) = s
        .cmd()
        .args([
            "create",
            "--remote",
            "ks",
            "--app-credential",
            "--role",
            "admin",
        ])
        .run();
    assert_eq!(code, 7, "{err}");
    assert!(
        err.contains("refused to create an application credential")
            && err.contains("unassigned role"),
        "{err}"
    );
    let (code, _, err) = s.cmd().args(["create", "--unrestricted"]).run();
    assert_eq!(code, 2, "{err}");
    let (st, v) = ks.api(
        "GET",
        &format!("/v3/users/{}/application_credentials", user.id),
        None,
    );
    assert_eq!(st, 200);
    assert_eq!(
        v["application_credentials"].as_array().unwrap().len(),
        0,
        "{v}"
    );
    assert!(
        !s.home.path().join("keys.json").exists()
            || s.home.registry()["keys"]
                .as_array()
                .is_none_or(|k| k.is_empty())
    );
}

#[test]
fn a_remote_logged_in_with_an_application_credential_is_told_at_add_time_it_cannot_manage_ec2_credentials()
 {
    let ks = require!(keystone());
    let s = require!(Setup::new());
    let user = ks.user("deleg", Some("member"));
    let token = ks.login(&user.name, &user.password, &user.project);
    let (st, v) = ks.api_as(
        &token,
        "POST",
        &format!("/v3/users/{}/application_credentials", user.id),
        Some(serde_json::json!({"application_credential": {"name": "mine"}})),
    );
    assert_eq!(st, 201, "{v}");
    let ac = &v["application_credential"];
    let (code, _, err) = s
        .cmd()
        .args([
            "remote",
            "add",
            "ac",
            "--url",
            &ks.url,
            "--application-credential",
            ac["id"].as_str().unwrap(),
        ])
        .stdin(ac["secret"].as_str().unwrap())
        .run();
    assert_eq!(code, 0, "{err}");
    assert!(
        err.contains("Delegated tokens cannot access credentials"),
        "{err}"
    );
    assert!(err.contains("logs in with a password"), "{err}");
    // A key pushed with the user's password remote: through the application-credential
    // remote, verify says it cannot be checked there, and list --remote says why,
    // instead of calling the key missing (Keystone leaves it out of a delegated listing).
    s.cmd()
        .args([
            "remote",
            "add",
            "pw",
            "--url",
            &ks.url,
            "--user",
            &user.name,
            "--project",
            &user.project,
        ])
        .stdin(&user.password)
        .ok();
    s.cmd()
        .args(["create", "--name", "k", "--remote", "pw"])
        .ok();
    s.cmd()
        .args(["verify", "k", "--remote", "ac"])
        .code(0)
        .stderr_has("cannot be checked there");
    s.cmd()
        .args(["list", "--remote", "ac"])
        .code(2)
        .stderr_has("Delegated tokens cannot access credentials");
    // The same credential by name (user and domain given), from clouds.yaml.
    std::fs::write(
        s.config_dir().join("clouds.yaml"),
        format!(
            "clouds:\n  byname:\n    auth_type: v3applicationcredential\n    auth:\n      auth_url: {}/v3\n      application_credential_name: mine\n      application_credential_secret: {}\n      username: {}\n      user_domain_id: default\n",
            ks.url,
            ac["secret"].as_str().unwrap(),
            user.name
        ),
    )
    .unwrap();
    s.both_log_in(&s.work_dir(), &[], Some("byname"), "byname", &user.id);
}
