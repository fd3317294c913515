//! End-to-end tests of the rendered configuration (`keyctl config`, `keyctl create
//! --output/--write`): fixed expected text for every format, kind and region; round trips
//! through the parsers that read the snippets (serde_yaml_ng for YAML 1.2, PyYAML for
//! YAML 1.1 as Soda Core uses it, a real `sh`); `--write` on a corpus of configuration
//! files checked byte for byte; and every bad input with its message, exit code and the
//! file left as it was.

use std::path::Path;
use std::process::Command;

use crate::support::*;
use serde_json::{Value, json};

const ID: &str = "0f6f3d1c-7b7e-4c1e-9a51-2d4c8f0e9b11";
const SECRET: &str = "Xk2_9fQ-s7Lr0pWz4Nv8Bt1Ym6Hc3Jd5Ge7Ua0Ko2Ri4Ps6Tl8";

/// A home with the file store (the store is not the point here).
fn file_home() -> Home {
    Home::new()
}

fn cmd(home: &Home) -> Cmd {
    home.cmd().env("KEYCTL_STORE", "file")
}

fn import(c: Cmd, kind: &str, name: &str, id: &str, secret: &str) {
    c.args(["import", "--kind", kind, "--name", name, "--id", id])
        .stdin(format!("{secret}\n"))
        .ok();
}

fn config(home: &Home, args: &[&str]) -> (i32, String, String) {
    cmd(home).arg("config").args(args).run()
}

fn ok(home: &Home, args: &[&str]) -> String {
    cmd(home).arg("config").args(args).ok()
}

/// Expected text for each format, with {HOST}, {ID}, {SECRET} and {NAME} to fill in.
fn expected(kind: &str, format: &str) -> Option<&'static str> {
    Some(match (kind, format) {
        ("api", "yaml") => {
            "soda_cloud:\n  host: \"{HOST}\"\n  api_key_id: \"{ID}\"\n  api_key_secret: \"{SECRET}\"\n"
        }
        ("runner", "yaml") => {
            "soda:\n  apikey:\n    id: \"{ID}\"\n    secret: \"{SECRET}\"\n  agent:\n    name: \"{NAME}\"\n  cloud:\n    endpoint: \"https://{HOST}\"\n"
        }
        ("runner", "helm-set") => {
            "helm install soda-agent soda-agent/soda-agent \\\n  --namespace soda-agent --create-namespace \\\n  --set-string soda.agent.name={NAME} \\\n  --set-string soda.cloud.endpoint=https://{HOST} \\\n  --set-string soda.apikey.id={ID} \\\n  --set-string soda.apikey.secret={SECRET}\n"
        }
        ("api", "helm-set") => return None,
        ("runner", "k8s-secret") => {
            "apiVersion: v1\nkind: Secret\nmetadata:\n  name: soda-agent-apikey\n  namespace: soda-agent\ntype: Opaque\nstringData:\n  SODA_API_KEY_ID: \"{ID}\"\n  SODA_API_KEY_SECRET: \"{SECRET}\"\n# Helm values for the soda-agent chart that read the key from this Secret:\n#   soda:\n#     apikey:\n#       existingSecret: soda-agent-apikey\n#       secretKeys:\n#         idKey: SODA_API_KEY_ID\n#         secretKey: SODA_API_KEY_SECRET\n#     agent:\n#       name: \"{NAME}\"\n#     cloud:\n#       endpoint: \"https://{HOST}\"\n"
        }
        ("api", "k8s-secret") => {
            "apiVersion: v1\nkind: Secret\nmetadata:\n  name: soda-cloud-apikey\ntype: Opaque\nstringData:\n  SODA_API_KEY_ID: \"{ID}\"\n  SODA_API_KEY_SECRET: \"{SECRET}\"\n# Give a pod these variables with `envFrom: [{secretRef: {name: soda-cloud-apikey}}]`;\n# host: {HOST}\n"
        }
        (_, "env") => "SODA_API_KEY_ID={ID}\nSODA_API_KEY_SECRET={SECRET}\n",
        ("api", "json") => {
            "{\n  \"soda_cloud\": {\n    \"host\": \"{HOST}\",\n    \"api_key_id\": \"{ID}\",\n    \"api_key_secret\": \"{SECRET}\"\n  }\n}\n"
        }
        ("runner", "json") => {
            "{\n  \"soda\": {\n    \"apikey\": {\n      \"id\": \"{ID}\",\n      \"secret\": \"{SECRET}\"\n    },\n    \"agent\": {\n      \"name\": \"{NAME}\"\n    },\n    \"cloud\": {\n      \"endpoint\": \"https://{HOST}\"\n    }\n  }\n}\n"
        }
        _ => unreachable!(),
    })
}

#[test]
fn every_format_for_both_kinds_and_both_regions() {
    let home = file_home();
    import(cmd(&home), "api", "core", ID, SECRET);
    import(cmd(&home), "runner", "edge-1", "rn-42", SECRET);
    for (kind, key, name, id) in [
        ("api", "core", "core", ID),
        ("runner", "edge-1", "edge-1", "rn-42"),
    ] {
        for (region, host) in [("eu", "cloud.soda.io"), ("us", "cloud.us.soda.io")] {
            for format in ["yaml", "helm-set", "k8s-secret", "env", "json"] {
                let (code, out, err) = config(&home, &[key, "--region", region, "-o", format]);
                match expected(kind, format) {
                    Some(t) => {
                        assert_eq!(code, 0, "{kind} {format}: {err}");
                        let want = t
                            .replace("{HOST}", host)
                            .replace("{ID}", id)
                            .replace("{SECRET}", SECRET)
                            .replace("{NAME}", name);
                        assert_eq!(out, want, "{kind} {region} {format}");
                    }
                    None => {
                        assert_eq!(code, 2, "{kind} {format}: {out}");
                        assert!(err.contains("takes a runner key"), "{err}");
                        assert!(out.is_empty());
                    }
                }
                if format == "helm-set" && code == 0 {
                    assert!(err.contains("shell history"), "{err}");
                    assert!(err.contains("--values <(keyctl config edge-1"), "{err}");
                    assert!(!err.contains(SECRET));
                } else if code == 0 {
                    assert!(err.is_empty(), "{kind} {format}: {err}");
                }
            }
        }
    }
    // The default is yaml; --json without --output means json; --export adds `export `.
    assert_eq!(ok(&home, &["core"]), ok(&home, &["core", "-o", "yaml"]));
    assert_eq!(
        cmd(&home).args(["--json", "config", "core"]).run().1,
        ok(&home, &["core", "-o", "json"])
    );
    assert_eq!(
        ok(&home, &["core", "-o", "env", "--export"]),
        format!("export SODA_API_KEY_ID={ID}\nexport SODA_API_KEY_SECRET={SECRET}\n")
    );
    // --host takes a private deployment's name.
    assert!(
        ok(&home, &["edge-1", "--host", "soda.internal.example"])
            .contains("endpoint: \"https://soda.internal.example\"")
    );
}

#[test]
fn secret_ref_env_keeps_the_secret_out_of_the_file() {
    let home = file_home();
    import(cmd(&home), "api", "core", ID, SECRET);
    let mut refs = Vec::new();
    for (version, reference) in [
        ("3", "${SODA_API_KEY_SECRET}"),
        ("4", "${env.SODA_API_KEY_SECRET}"),
    ] {
        let out = ok(
            &home,
            &["core", "--secret-ref", "env", "--soda-version", version],
        );
        let line = format!("  api_key_secret: \"{reference}\"\n");
        assert!(out.contains(&line), "{out}");
        refs.push(out);
    }
    let j = ok(
        &home,
        &[
            "core",
            "-o",
            "json",
            "--secret-ref",
            "env",
            "--soda-version",
            "4",
        ],
    );
    assert_eq!(
        json(&j)["soda_cloud"]["api_key_secret"],
        "${env.SODA_API_KEY_SECRET}"
    );
    for out in refs.iter().chain([&j]) {
        assert!(!out.contains(SECRET));
    }
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("configuration.yml");
    let f_s = f.to_str().unwrap();
    ok(
        &home,
        &[
            "core",
            "--secret-ref",
            "env",
            "--soda-version",
            "3",
            "--write",
            f_s,
        ],
    );
    let text = std::fs::read_to_string(&f).unwrap();
    assert!(
        !text.contains(SECRET) && text.contains("${SODA_API_KEY_SECRET}"),
        "{text}"
    );

    for (args, msg) in [
        (
            &["core", "--secret-ref", "env"][..],
            "needs --soda-version 3 or 4",
        ),
        (
            &[
                "core",
                "--secret-ref",
                "env",
                "--soda-version",
                "4",
                "-o",
                "env",
            ][..],
            "applies to the soda_cloud block",
        ),
    ] {
        let (code, out, err) = config(&home, args);
        assert_eq!(code, 2, "{args:?}");
        assert!(err.contains(msg), "{err}");
        assert!(out.is_empty());
    }
}

/// Secrets made of what YAML 1.1/1.2 and sh treat specially (import refuses control
/// characters, so those cannot reach a stored secret).
fn nasty_secrets() -> Vec<String> {
    let mut v: Vec<String> = [
        "\"",
        "'",
        "\\",
        "\\n",
        "\\\"",
        "a\"b'c\\d",
        "# not a comment",
        "a #b",
        "key: value",
        "- item",
        "? q",
        ": x",
        "&anchor",
        "*alias",
        "!tag",
        "!!str x",
        "%YAML 1.1",
        "@at",
        "`tick`",
        "|",
        ">",
        "{a: b}",
        "[1, 2]",
        "a,b",
        "{",
        "]",
        "null",
        "Null",
        "~",
        "yes",
        "no",
        "on",
        "off",
        "y",
        "n",
        "true",
        "0x1F",
        "0o17",
        "017",
        "1e3",
        "1_000",
        ".inf",
        "-.inf",
        ".nan",
        "12:30:45",
        "2001-12-14",
        " lead",
        "trail ",
        "  ",
        "a  b",
        "$HOME",
        "${SODA_API_KEY_SECRET}",
        "${env.X}",
        "$(id)",
        "`id`",
        "a;b",
        "a&&b",
        "a|b",
        "a>b",
        "<x",
        "(x)",
        "!x",
        "~root",
        "a=b",
        "=x",
        "x\\",
        "--",
        "-",
        "---",
        "...",
        "<<",
        "é",
        "😀",
        "\u{2028}",
        "\u{2029}",
        "\u{feff}x",
        "\u{a0}",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    let all_ascii: String = (0x20u8..0x7f).map(char::from).collect();
    v.push(all_ascii);
    v
}

/// Parses YAML documents with PyYAML (YAML 1.1, what Soda Core and Helm's users paste
/// into) in one Python process; each document comes back as JSON.
fn pyyaml(py: &Path, docs: &[String]) -> Vec<Value> {
    let (code, out, err) = Cmd::new(py).args([
        "-c",
        "import sys, json, yaml\nprint(json.dumps([yaml.safe_load(d) for d in json.load(sys.stdin)]))",
    ]).stdin(serde_json::to_string(docs).unwrap()).run();
    assert_eq!(code, 0, "PyYAML ({}): {err}", py.display());
    serde_json::from_str(&out).unwrap()
}

fn serde_yaml(doc: &str) -> Value {
    serde_yaml_ng::from_str(doc).unwrap_or_else(|e| panic!("serde_yaml_ng: {e}: {doc}"))
}

/// Runs `script` in sh and returns what it printed, split on NUL.
fn sh(script: &str) -> Vec<String> {
    let (code, out, err) = Cmd::new("sh")
        .arg("-c")
        .arg(script)
        .env_clear()
        .env("PATH", "/usr/bin:/bin")
        .run();
    assert_eq!(code, 0, "sh: {err}\n{script}");
    let mut parts: Vec<String> = out.split('\0').map(str::to_string).collect();
    assert_eq!(parts.pop().as_deref(), Some(""));
    parts
}

/// Helm's `--set` value syntax, read the way Helm's strvals parser reads it.
fn helm_unescape(v: &str) -> String {
    let mut out = String::new();
    let mut it = v.chars();
    while let Some(c) = it.next() {
        match c {
            '\\' => out.push(it.next().expect("dangling backslash")),
            ',' => panic!("unescaped comma would split the value: {v}"),
            c => out.push(c),
        }
    }
    assert!(!v.starts_with('{'), "a leading {{ is a list to Helm: {v}");
    out
}

#[test]
fn every_format_round_trips_secrets_parsers_treat_specially() {
    let py = require!(need("PyYAML", "KEYCTL_TEST_PYYAML"));
    let home = file_home();
    let mut secrets = nasty_secrets();
    let first_control = secrets.len();
    // Control characters cannot be imported but can reach a store from another tool:
    // import placeholders, then put the real secrets straight into the file store.
    secrets.extend(
        [
            "\u{85}",
            "a\nb",
            "\t",
            "x\r",
            "\u{1b}[31m",
            "\u{7f}",
            "\u{8}",
        ]
        .map(String::from),
    );
    for (i, s) in secrets.iter().enumerate() {
        let s = if i < first_control {
            s.as_str()
        } else {
            "placeholder"
        };
        import(cmd(&home), "api", &format!("a{i}"), &format!("id-a{i}"), s);
        import(
            cmd(&home),
            "runner",
            &format!("r{i}"),
            &format!("id-r{i}"),
            s,
        );
    }
    let store = home.path().join("secrets.json");
    let mut stored: serde_json::Map<String, Value> =
        serde_json::from_slice(&std::fs::read(&store).unwrap()).unwrap();
    for (i, s) in secrets.iter().enumerate().skip(first_control) {
        stored.insert(format!("id-a{i}"), s.as_str().into());
        stored.insert(format!("id-r{i}"), s.as_str().into());
    }
    std::fs::write(&store, serde_json::to_vec(&stored).unwrap()).unwrap();
    let mut yaml_docs = Vec::new();
    let mut yaml_want = Vec::new();
    for (i, s) in secrets.iter().enumerate() {
        let (a, r) = (format!("a{i}"), format!("r{i}"));
        let (ida, idr) = (format!("id-a{i}"), format!("id-r{i}"));
        let api = json!({"soda_cloud": {"host": "cloud.soda.io", "api_key_id": ida, "api_key_secret": s}});
        let runner = json!({"soda": {"apikey": {"id": idr, "secret": s}, "agent": {"name": r}, "cloud": {"endpoint": "https://cloud.soda.io"}}});
        let k8s = |id: &str| json!({"SODA_API_KEY_ID": id, "SODA_API_KEY_SECRET": s});

        let y = ok(&home, &[&a]);
        assert_eq!(serde_yaml(&y), api, "{s:?}");
        yaml_docs.push(y);
        yaml_want.push(api.clone());
        let y = ok(&home, &[&r]);
        assert_eq!(serde_yaml(&y), runner, "{s:?}");
        yaml_docs.push(y);
        yaml_want.push(runner.clone());
        for (key, id) in [(&a, &ida), (&r, &idr)] {
            let y = ok(&home, &[key, "-o", "k8s-secret"]);
            let v = serde_yaml(&y);
            assert_eq!(v["stringData"], k8s(id), "{s:?}");
            yaml_docs.push(y);
            yaml_want.push(v);
        }
        assert_eq!(json(&ok(&home, &[&a, "-o", "json"])), api);
        assert_eq!(json(&ok(&home, &[&r, "-o", "json"])), runner);

        // env lines, sourced by a real sh; with --export a child process sees them.
        let env = ok(&home, &[&a, "-o", "env"]);
        let got = sh(&format!(
            "{env}printf '%s\\0%s\\0' \"$SODA_API_KEY_ID\" \"$SODA_API_KEY_SECRET\""
        ));
        assert_eq!(got, [ida.as_str(), s.as_str()], "env {s:?}:\n{env}");
        let env = ok(&home, &[&a, "-o", "env", "--export"]);
        let got = sh(&format!(
            "{env}sh -c 'printf \"%s\\0\" \"$SODA_API_KEY_SECRET\"'"
        ));
        assert_eq!(got, [s.as_str()], "export {s:?}:\n{env}");

        // The helm line, through sh into a stand-in `helm` that prints its arguments,
        // then through Helm's --set value syntax.
        let line = ok(&home, &[&r, "-o", "helm-set"]);
        let args = sh(&format!(
            "helm() {{ for a in \"$@\"; do printf '%s\\0' \"$a\"; done; }}\n{line}"
        ));
        let mut set = serde_json::Map::new();
        let mut it = args.iter();
        while let Some(a) = it.next() {
            if a == "--set-string" {
                let (k, v) = it.next().unwrap().split_once('=').unwrap();
                set.insert(k.into(), helm_unescape(v).into());
            }
        }
        assert_eq!(
            Value::Object(set),
            json!({"soda.agent.name": r, "soda.cloud.endpoint": "https://cloud.soda.io", "soda.apikey.id": idr, "soda.apikey.secret": s}),
            "helm {s:?}:\n{line}"
        );
    }
    assert_eq!(pyyaml(&py, &yaml_docs).len(), yaml_want.len());
    for ((doc, got), want) in yaml_docs
        .iter()
        .zip(pyyaml(&py, &yaml_docs))
        .zip(&yaml_want)
    {
        assert_eq!(&got, want, "PyYAML read differently:\n{doc}");
    }
}

/// One corpus file: the bytes before the block, the old block (empty: none), the bytes
/// after it, and the separator keyctl puts before an appended block.
struct Case {
    name: &'static str,
    before: &'static str,
    old: &'static str,
    after: &'static str,
    sep: &'static str,
    eol: &'static str,
    /// An anchor on the old block that must survive.
    anchor: &'static str,
}

const CORPUS: &[Case] = &[
    Case {
        name: "comments, two data sources, no soda_cloud",
        before: "# Soda Core configuration\n# owner: data-platform\n\ndata_source warehouse:\n  type: postgres\n  host: db.internal   # primary\n  username: soda\n  password: ${POSTGRES_PASSWORD}\n  database: analytics\n  schema: public\n\ndata_source lake:\n  type: spark_df\n",
        old: "",
        after: "",
        sep: "\n",
        eol: "\n",
        anchor: "",
    },
    Case {
        name: "anchors and merge keys, soda_cloud in the middle, trailing comment kept",
        before: "defaults: &pg\n  type: postgres\n  port: \"5432\"\n\ndata_source a:\n  <<: *pg\n  host: a.internal\n\n",
        old: "soda_cloud:\n  host: cloud.soda.io\n  api_key_id: old-id   # rotated 2025-01\n  # api_key: legacy\n  api_key_secret: \"old-secret\"\n",
        after: "\n# the B warehouse\ndata_source b:\n  <<: *pg\n  host: b.internal\n",
        sep: "",
        eol: "\n",
        anchor: "",
    },
    Case {
        name: "CRLF line endings with an existing block",
        before: "data_source x:\r\n  type: snowflake\r\n  account: acme\r\n",
        old: "soda_cloud:\r\n  host: cloud.us.soda.io\r\n  api_key_id: \"a\"\r\n  api_key_secret: \"b\"\r\n",
        after: "# end\r\n",
        sep: "",
        eol: "\r\n",
        anchor: "",
    },
    Case {
        name: "CRLF, no block, no trailing newline",
        before: "data_source x:\r\n  type: duckdb\r\n  path: x.db",
        old: "",
        after: "",
        sep: "\r\n\r\n",
        eol: "\r\n",
        anchor: "",
    },
    Case {
        name: "block last, no trailing newline",
        before: "data_source x:\n  type: bigquery\n",
        old: "soda_cloud:\n  host: cloud.soda.io\n  api_key_id: a\n  api_key_secret: b",
        after: "",
        sep: "",
        eol: "",
        anchor: "",
    },
    Case {
        name: "flow-style block, quoted key, anchor kept",
        before: "---\n",
        old: "\"soda_cloud\": &sc {host: cloud.soda.io,\n   api_key_id: a, api_key_secret: b}\n",
        after: "data_source x:\n  type: postgres\n",
        sep: "",
        eol: "\n",
        anchor: " &sc",
    },
    Case {
        name: "empty soda_cloud key",
        before: "",
        old: "soda_cloud:\n",
        after: "data_source x:\n  type: postgres\n",
        sep: "",
        eol: "\n",
        anchor: "",
    },
    Case {
        name: "only comments",
        before: "# nothing here yet\n",
        old: "",
        after: "",
        sep: "\n",
        eol: "\n",
        anchor: "",
    },
    Case {
        name: "empty file",
        before: "",
        old: "",
        after: "",
        sep: "",
        eol: "\n",
        anchor: "",
    },
];

fn block(eol: &str, host: &str, anchor: &str, secret: &str) -> String {
    let eol_last = if eol.is_empty() { "" } else { eol };
    let eol = if eol.is_empty() { "\n" } else { eol };
    format!(
        "soda_cloud:{anchor}{eol}  host: \"{host}\"{eol}  api_key_id: \"{ID}\"{eol}  api_key_secret: \"{secret}\"{eol_last}"
    )
}

fn mode(p: &Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(p).unwrap().permissions().mode() & 0o777
}

#[test]
fn write_changes_only_the_block_in_real_looking_files() {
    let py = require!(need("PyYAML", "KEYCTL_TEST_PYYAML"));
    let home = file_home();
    import(cmd(&home), "api", "core", ID, SECRET);
    let dir = tempfile::tempdir().unwrap();
    for (i, case) in CORPUS.iter().enumerate() {
        let f = dir.path().join(format!("c{i}.yml"));
        let f_s = f.to_str().unwrap();
        let original = format!("{}{}{}", case.before, case.old, case.after);
        std::fs::write(&f, &original).unwrap();
        let want = format!(
            "{}{}{}{}",
            case.before,
            case.sep,
            block(case.eol, "cloud.us.soda.io", case.anchor, SECRET),
            case.after
        );

        // --dry-run: a diff on stdout with the secret masked, the file untouched.
        let (code, out, err) = config(
            &home,
            &["core", "--region", "us", "--write", f_s, "--dry-run"],
        );
        assert_eq!(code, 0, "{}: {err}", case.name);
        assert!(
            out.starts_with(&format!("--- {f_s}\n+++ {f_s}\n@@ ")),
            "{}: {out}",
            case.name
        );
        assert!(
            out.contains("+  api_key_secret: ***"),
            "{}: {out}",
            case.name
        );
        assert!(
            out.contains("+  host: \"cloud.us.soda.io\""),
            "{}: {out}",
            case.name
        );
        assert!(
            !out.contains(SECRET) && !err.contains(SECRET),
            "{}",
            case.name
        );
        assert_eq!(
            std::fs::read_to_string(&f).unwrap(),
            original,
            "{}",
            case.name
        );

        // The file holds another key's block: replacing it is confirmed with --yes.
        let (code, out, err) = config(&home, &["core", "--yes", "--region", "us", "--write", f_s]);
        assert_eq!(code, 0, "{}: {err}", case.name);
        assert!(out.is_empty(), "{}: {out}", case.name);
        assert!(!err.contains(SECRET));
        let got = std::fs::read_to_string(&f).unwrap();
        assert_eq!(got, want, "{}", case.name);
        assert_eq!(mode(&f), 0o600);
        let v = serde_yaml(&got);
        assert_eq!(v["soda_cloud"]["api_key_secret"], SECRET, "{}", case.name);
        assert_eq!(
            pyyaml(&py, std::slice::from_ref(&got))[0]["soda_cloud"]["api_key_id"],
            ID
        );

        // Again: nothing to change, not a byte moves.
        let (code, _, err) = config(&home, &["core", "--region", "us", "--write", f_s]);
        assert_eq!(code, 0, "{err}");
        assert!(err.contains("unchanged"), "{err}");
        assert_eq!(std::fs::read_to_string(&f).unwrap(), want);
    }

    // A file that does not exist yet is created 0600 and holds just the block.
    let f = dir.path().join("new").join("configuration.yml");
    std::fs::create_dir(dir.path().join("new")).unwrap();
    ok(&home, &["core", "--write", f.to_str().unwrap()]);
    assert_eq!(
        std::fs::read_to_string(&f).unwrap(),
        block("\n", "cloud.soda.io", "", SECRET)
    );
    assert_eq!(mode(&f), 0o600);
    assert_eq!(
        std::fs::read_dir(dir.path().join("new")).unwrap().count(),
        1,
        "no temp files left"
    );

    // Through a symlink: the link stays, its target changes.
    let link = dir.path().join("link.yml");
    std::os::unix::fs::symlink(dir.path().join("c0.yml"), &link).unwrap();
    ok(&home, &["core", "--write", link.to_str().unwrap()]);
    assert!(
        std::fs::symlink_metadata(&link)
            .unwrap()
            .file_type()
            .is_symlink()
    );
    // The key was imported with no region, so the block's own host (US, written above)
    // is kept: a write never moves a working block to the default region.
    let through = std::fs::read_to_string(&link).unwrap();
    assert!(through.contains("host: \"cloud.us.soda.io\""), "{through}");
}

#[test]
fn bad_inputs_fail_clearly_and_leave_the_file_alone() {
    let home = file_home();
    import(cmd(&home), "api", "core", ID, SECRET);
    import(cmd(&home), "runner", "edge", "rn-1", SECRET);
    let dir = tempfile::tempdir().unwrap();
    let p = |n: &str| dir.path().join(n);
    let good = p("good.yml");
    let good_text = "data_source x:\n  type: postgres\n";
    std::fs::write(&good, good_text).unwrap();
    std::fs::write(
        p("notyaml.yml"),
        "data_source x:\n  type: [postgres\n  host: a\n",
    )
    .unwrap();
    std::fs::write(p("list.yml"), "- a\n- b\n").unwrap();
    std::fs::write(
        p("scalar_block.yml"),
        "# c\ndata_source x: {}\nsoda_cloud: \"cloud.soda.io\"\n",
    )
    .unwrap();
    std::fs::write(p("latin1.yml"), b"a: \xe9\n").unwrap();
    std::fs::write(p("alias.yml"), "soda_cloud: &sc\n  host: a\ncopy: *sc\n").unwrap();
    std::fs::write(
        p("flow.yml"),
        "{data_source x: {type: postgres},\n soda_cloud: {host: a}}\n",
    )
    .unwrap();
    std::fs::write(p("twodocs.yml"), "a: 1\n---\nb: 2\n").unwrap();
    std::fs::create_dir(p("adir")).unwrap();
    std::os::unix::fs::symlink("loop.yml", p("loop.yml")).unwrap();
    let s = |x: &Path| x.to_str().unwrap().to_string();

    // "@NAME" stands for the file NAME in the test directory.
    let cases: &[(&[&str], i32, &str)] = &[
        (
            &["--host", "https://cloud.soda.io"],
            2,
            "has a scheme (https://)",
        ),
        (&["--host", "cloud.soda.io/api"], 2, "has a path"),
        (&["--host", "cloud.soda.io:443"], 2, "has a port"),
        (&["--host", "cloud soda"], 2, "is not a host name"),
        (
            &["--host", "a.io", "--region", "us"],
            2,
            "cannot be used with",
        ),
        (
            &["--port", "https"],
            2,
            "--port 'https': expected a TCP port",
        ),
        (&["--port", "0"], 2, "expected a TCP port, 1 to 65535"),
        (&["--port", "+443"], 2, "expected a TCP port"),
        (
            &["--scheme", "ftp"],
            2,
            "--scheme 'ftp': expected https or http",
        ),
        (&["-o", "toml"], 2, "invalid value 'toml'"),
        (&["--dry-run"], 2, "--write"),
        (&["--export"], 2, "--output env only"),
        (&["--write", "@adir"], 2, "is a directory"),
        (&["--write", "@loop.yml"], 1, "cannot read"),
        (&["--write", "@good.yml/x.yml"], 2, "is not a directory"),
        (&["--write", "@nodir/x.yml"], 2, "does not exist"),
        (&["--write", "@notyaml.yml"], 2, "is not valid YAML: "),
        (
            &["--write", "@list.yml"],
            2,
            "not a YAML mapping at the top level (it is a list)",
        ),
        (
            &["--write", "@scalar_block.yml"],
            2,
            "`soda_cloud` (line 3) is a string, not a mapping",
        ),
        (&["--write", "@latin1.yml"], 2, "is not UTF-8"),
        (
            &["--write", "@alias.yml"],
            1,
            "did not parse back as intended (other data would change)",
        ),
        (
            &["--write", "@flow.yml"],
            2,
            "cannot find a single top-level `soda_cloud:` line",
        ),
        (
            &["--write", "@twodocs.yml"],
            2,
            "holds more than one YAML document",
        ),
    ];
    let snapshot = || {
        let mut v: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .flatten()
            .map(|e| (e.path(), std::fs::read(e.path()).ok()))
            .collect();
        v.sort();
        v
    };
    let before = snapshot();
    for (args, want_code, msg) in cases {
        let mut a = vec!["core".to_string()];
        a.extend(args.iter().map(|x| match x.strip_prefix('@') {
            Some(name) => s(&p(name)),
            None => x.to_string(),
        }));
        let a: Vec<&str> = a.iter().map(String::as_str).collect();
        let (code, out, err) = config(&home, &a);
        assert_eq!(code, *want_code, "{a:?}: {err}");
        assert!(err.contains(msg), "{a:?}: {err}");
        assert_eq!(err.lines().count(), 1, "{err}");
        assert!(out.is_empty() && !err.contains(SECRET), "{a:?}");
        assert_eq!(snapshot(), before, "{a:?} changed a file");
    }
    assert!(
        config(&home, &["core", "--write", &s(&p("notyaml.yml"))])
            .2
            .contains("line 3 column"),
        "the YAML error says where"
    );

    // Other forms are merged only into a file of their own kind.
    let (code, _, err) = config(&home, &["edge", "--write", &s(&good)]);
    assert_eq!(code, 2);
    assert!(err.contains("not a file of this form"), "{err}");
    let (code, _, err) = config(&home, &["core", "-o", "env", "--write", &s(&good)]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("not shell lines"), "{err}");
    assert_eq!(std::fs::read_to_string(&good).unwrap(), good_text);

    // Unknown key, and a create whose FILE is bad mints nothing.
    assert_eq!(config(&home, &["nope"]).0, 3);
    let (code, out, err) = cmd(&home)
        .args(["create", "--name", "late", "--write", &s(&p("list.yml"))])
        .run();
    assert_eq!(code, 2, "{err}");
    assert!(out.is_empty());
    assert_eq!(home.registry()["keys"].as_array().unwrap().len(), 2);
}

#[test]
fn expired_and_revoked_keys_need_allow_expired() {
    let home = file_home();
    import(cmd(&home), "api", "old", ID, SECRET);
    import(cmd(&home), "api", "gone", "id-2", SECRET);
    let path = home.path().join("keys.json");
    let mut reg = home.registry();
    reg["keys"][0]["expires_at"] = json!("2020-01-01T00:00:00Z");
    reg["keys"][1]["revoked_at"] = json!("2024-01-01T00:00:00Z");
    std::fs::write(&path, serde_json::to_vec(&reg).unwrap()).unwrap();
    // An expired key can still be used on purpose; a revoked one had its secret deleted,
    // so no flag is suggested (here the secret was left behind by hand, and
    // --allow-expired still reads it).
    for (key, says, hint) in [
        ("old", "is expired; pass --allow-expired", true),
        (
            "gone",
            "was revoked on 2024-01-01; its secret was deleted",
            false,
        ),
    ] {
        let (code, out, err) = config(&home, &[key]);
        assert_eq!(code, 8, "{err}");
        assert!(err.contains(says), "{err}");
        assert_eq!(err.contains("--allow-expired"), hint, "{err}");
        assert!(out.is_empty());
        let out = ok(&home, &[key, "--allow-expired"]);
        assert!(out.contains(SECRET));
    }
}

#[test]
fn create_prints_the_snippet_or_writes_it_with_the_keyring() {
    let ss = require!(SecretService::start());
    let home = Home::new();
    let (code, out, err) = ss
        .cmd(&home)
        .args([
            "create", "--kind", "runner", "--name", "edge", "--region", "us",
        ])
        .run();
    assert_eq!(code, 0, "{err}");
    let v = serde_yaml(&out);
    let id = v["soda"]["apikey"]["id"].as_str().unwrap();
    let secret = v["soda"]["apikey"]["secret"].as_str().unwrap();
    assert_eq!(ss.secret_tool_lookup(id).as_deref(), Some(secret));
    assert_eq!(v["soda"]["agent"]["name"], "edge");
    assert_eq!(v["soda"]["cloud"]["endpoint"], "https://cloud.us.soda.io");
    assert!(err.contains("keyctl config edge"), "{err}");

    // config reads the secret back from the keyring; -v says nothing secret.
    let (code, again, err) = ss.cmd(&home).args(["-v", "config", "edge"]).run();
    assert_eq!(code, 0, "{err}");
    assert_eq!(again, out, "config remembers the region create was given");
    assert!(err.contains("debug") && !err.contains(secret), "{err}");
    let (code, eu, err) = ss
        .cmd(&home)
        .args(["config", "edge", "--region", "eu", "-o", "json"])
        .run();
    assert_eq!(code, 0, "{err}");
    assert_eq!(
        json(&eu)["soda"]["cloud"]["endpoint"],
        "https://cloud.soda.io"
    );

    // --write: the block goes to the file, stdout stays free of the secret.
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("configuration.yml");
    std::fs::write(&f, "# mine\ndata_source x:\n  type: postgres\n").unwrap();
    let (code, out, err) = ss
        .cmd(&home)
        .args(["create", "--name", "core", "--write", f.to_str().unwrap()])
        .run();
    assert_eq!(code, 0, "{err}");
    assert!(out.is_empty(), "{out}");
    assert!(err.contains("configuration.yml"), "{err}");
    let text = std::fs::read_to_string(&f).unwrap();
    assert!(text.starts_with("# mine\ndata_source x:\n  type: postgres\n\nsoda_cloud:\n"));
    let v = serde_yaml(&text);
    let id = v["soda_cloud"]["api_key_id"].as_str().unwrap();
    assert_eq!(
        ss.secret_tool_lookup(id).as_deref(),
        v["soda_cloud"]["api_key_secret"].as_str()
    );

    // --json keeps its object; with --write its secret is null.
    let (code, out, err) = ss
        .cmd(&home)
        .args([
            "--json",
            "--yes",
            "create",
            "--name",
            "j",
            "--write",
            f.to_str().unwrap(),
        ])
        .run();
    assert_eq!(code, 0, "{err}");
    let j = json(&out);
    assert_eq!(j["secret"], Value::Null);
    assert_eq!(j["name"], "j");
    assert_eq!(j["written"], f.to_str().unwrap());
    let j = json(
        &ss.cmd(&home)
            .args(["--json", "create", "--name", "k", "-o", "env"])
            .run()
            .1,
    );
    let secret = j["secret"].as_str().unwrap();
    assert!(
        j["snippet"]
            .as_str()
            .unwrap()
            .ends_with(&format!("SODA_API_KEY_SECRET={secret}\n"))
    );

    // --dry-run creates nothing and writes nothing.
    let before = std::fs::read(&f).unwrap();
    let keys = home.registry()["keys"].as_array().unwrap().len();
    let (code, out, err) = ss
        .cmd(&home)
        .args([
            "create",
            "--name",
            "dry",
            "--write",
            f.to_str().unwrap(),
            "--dry-run",
        ])
        .run();
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("+  api_key_secret: ***"), "{out}");
    assert!(
        out.contains("-  api_key_secret: ***"),
        "the old secret is masked too: {out}"
    );
    assert!(err.contains("no key was created"), "{err}");
    assert_eq!(std::fs::read(&f).unwrap(), before);
    assert_eq!(home.registry()["keys"].as_array().unwrap().len(), keys);
}

/// Soda Core 3.x reading configuration files the way `soda scan -c` does (Jinja over the
/// text, then YAML), one JSON object per file on a marked line.
const SODA3_PROBE: &str = r#"
import sys, json
from soda.scan import Scan
out = []
for f in sys.argv[1:]:
    s = Scan()
    s.add_configuration_yaml_file(f)
    c = s._configuration.soda_cloud
    errors = [str(l) for l in s._logs.logs if l.level.name == "ERROR"]
    out.append({"errors": errors} if errors or c is None else {"host": c.host, "id": c.api_key_id, "secret": c.api_key_secret})
print("KEYCTL-RESULT " + json.dumps(out))
"#;

/// Soda Core 4.x reading a Soda Cloud file (`soda ... -sc FILE`).
const SODA4_PROBE: &str = r#"
import sys, json
from soda_core.common.soda_cloud import SodaCloud
out = []
for f in sys.argv[1:]:
    c = SodaCloud.from_config(f)
    out.append({"host": c.host, "id": c.api_key_id, "secret": c.api_key_secret})
print("KEYCTL-RESULT " + json.dumps(out))
"#;

fn soda(
    py: &Path,
    probe: &str,
    files: &[std::path::PathBuf],
    secret_env: Option<&str>,
) -> Vec<Value> {
    let mut c = Cmd::new(py)
        .arg("-c")
        .arg(probe)
        .args(files)
        .env_remove("SODA_API_KEY_SECRET");
    if let Some(s) = secret_env {
        c = c.env("SODA_API_KEY_SECRET", s);
    }
    let (code, out, err) = c.run();
    let py = py.display();
    assert_eq!(code, 0, "{py}: {err}{out}");
    let line = out
        .lines()
        .find_map(|l| l.strip_prefix("KEYCTL-RESULT "))
        .unwrap_or_else(|| panic!("no result from {py}: {out}{err}"));
    serde_json::from_str(line).unwrap()
}

#[test]
fn soda_core_3_and_4_read_what_keyctl_writes() {
    let soda3 = require!(need("Soda Core 3", "KEYCTL_TEST_SODA3_PYTHON"));
    let soda4 = require!(need("Soda Core 4", "KEYCTL_TEST_SODA4_PYTHON"));
    let home = file_home();
    let dir = tempfile::tempdir().unwrap();
    let secrets = nasty_secrets();
    let mut files = Vec::new();
    let mut v4_caveat = Vec::new();
    for (i, s) in secrets.iter().enumerate() {
        import(cmd(&home), "api", &format!("a{i}"), &format!("id-{i}"), s);
        let f = dir.path().join(format!("c{i}.yml"));
        // A `${...}` elsewhere in the file makes Soda Core 3 run Jinja over all of it.
        std::fs::write(
            &f,
            "data_source warehouse:\n  type: postgres\n  password: ${PG_PASSWORD}\n",
        )
        .unwrap();
        let (code, _, err) = config(
            &home,
            &[
                &format!("a{i}"),
                "--region",
                "us",
                "--write",
                f.to_str().unwrap(),
            ],
        );
        assert_eq!(code, 0, "{err}");
        v4_caveat.push(err.contains("Soda Core 4 replaces"));
        files.push(f);
    }
    let want = |i: usize, s: &str| json!({"host": "cloud.us.soda.io", "id": format!("id-{i}"), "secret": s});
    let v3 = soda(&soda3, SODA3_PROBE, &files, None);
    let v4 = soda(&soda4, SODA4_PROBE, &files, None);
    for (i, s) in secrets.iter().enumerate() {
        assert_eq!(v3[i], want(i, s), "Soda Core 3, secret {s:?}");
        if v4_caveat[i] {
            assert!(s.contains("${env."), "{s:?}");
            assert_ne!(v4[i], want(i, s), "the caveat is real for {s:?}");
        } else {
            assert_eq!(v4[i], want(i, s), "Soda Core 4, secret {s:?}");
        }
    }
    assert_eq!(v4_caveat.iter().filter(|c| **c).count(), 1);

    // --secret-ref env: the file holds a reference that each version expands. Soda Core 3
    // pastes the value into the text, so a secret with `"`, `\` or `${` gets a warning.
    import(cmd(&home), "api", "ref", ID, SECRET);
    import(cmd(&home), "api", "quote", "id-q", "a\"b");
    let (code, _, err) = config(
        &home,
        &["quote", "--secret-ref", "env", "--soda-version", "3"],
    );
    assert_eq!(code, 0);
    assert!(err.contains("Soda Core 3 pastes"), "{err}");
    let (_, _, err) = config(
        &home,
        &["quote", "--secret-ref", "env", "--soda-version", "4"],
    );
    assert!(err.is_empty(), "{err}");
    for (version, var, probe, value) in [
        ("3", &soda3, SODA3_PROBE, "from-env_#: 'x' $Y {a} [b]"),
        ("4", &soda4, SODA4_PROBE, "from-env \"q\" \\ #: ${X}"),
    ] {
        let f = dir.path().join(format!("ref{version}.yml"));
        ok(
            &home,
            &[
                "ref",
                "--secret-ref",
                "env",
                "--soda-version",
                version,
                "--write",
                f.to_str().unwrap(),
            ],
        );
        let got = soda(var, probe, std::slice::from_ref(&f), Some(value));
        assert_eq!(
            got[0],
            json!({"host": "cloud.soda.io", "id": ID, "secret": value}),
            "v{version}"
        );
    }
}

/// `cmd` run as an unprivileged user when the tests run as root (as in CI containers),
/// where a mode-000 file would still be readable.
fn unprivileged(c: Cmd, as_root: bool) -> Cmd {
    if !as_root {
        return c;
    }
    let c = c.command();
    let mut w = Command::new("setpriv");
    w.args(["--reuid=65534", "--regid=65534", "--clear-groups", "--"])
        .arg(c.get_program())
        .args(c.get_args());
    for (k, v) in c.get_envs() {
        match v {
            Some(v) => w.env(k, v),
            None => w.env_remove(k),
        };
    }
    Cmd::from(w)
}

#[test]
fn an_unreadable_file_is_refused_and_left_alone() {
    use std::os::unix::fs::{MetadataExt, PermissionsExt};
    let home = file_home();
    let root = home.dir.path();
    for d in [root.to_path_buf(), root.join("user")] {
        std::fs::set_permissions(&d, std::fs::Permissions::from_mode(0o777)).unwrap();
    }
    let f = root.join("locked.yml");
    let text = "# private\nsoda_cloud:\n  host: cloud.soda.io\n";
    std::fs::write(&f, text).unwrap();
    std::fs::set_permissions(&f, std::fs::Permissions::from_mode(0o000)).unwrap();
    let as_root = std::fs::metadata(&f).unwrap().uid() == 0;

    let (code, _, err) = unprivileged(cmd(&home), as_root)
        .args(["import", "--kind", "api", "--name", "core", "--id", ID])
        .stdin(SECRET)
        .run();
    assert_eq!(
        code, 0,
        "import (setpriv from util-linux runs it unprivileged): {err}"
    );
    let (code, out, err) = unprivileged(cmd(&home), as_root)
        .args(["config", "core", "--write", f.to_str().unwrap()])
        .run();
    assert_eq!(code, 1, "{err}");
    assert!(
        err.contains("cannot read") && err.contains("Permission denied"),
        "{err}"
    );
    assert_eq!(err.lines().count(), 1);
    assert!(out.is_empty() && !err.contains(SECRET));
    assert_eq!(std::fs::metadata(&f).unwrap().mode() & 0o777, 0);
    std::fs::set_permissions(&f, std::fs::Permissions::from_mode(0o600)).unwrap();
    assert_eq!(std::fs::read_to_string(&f).unwrap(), text);
}

#[test]
fn port_and_scheme_are_rendered_kept_and_travel_with_the_key() {
    let py = require!(need("PyYAML", "KEYCTL_TEST_PYYAML"));
    let home = file_home();
    // Imported for a private installation: the address travels with the key.
    cmd(&home)
        .args([
            "import",
            "--kind",
            "api",
            "--name",
            "core",
            "--id",
            ID,
            "--host",
            "soda.internal",
            "--port",
            "8443",
            "--scheme",
            "https",
        ])
        .stdin(SECRET)
        .ok();
    // A port or scheme Soda Core cannot use is refused at import, and nothing is stored.
    for (flag, value, msg) in [
        (
            "--port",
            "70000",
            "--port '70000': expected a TCP port, 1 to 65535",
        ),
        ("--scheme", "HTTPS://", "expected https or http"),
    ] {
        let (code, _, err) = cmd(&home)
            .args([
                "import", "--kind", "api", "--name", "bad", "--id", "id-bad", flag, value,
            ])
            .stdin(SECRET)
            .run();
        assert_eq!(code, 2, "{err}");
        assert!(err.contains(msg), "{err}");
        assert_eq!(cmd(&home).args(["show", "bad"]).run().0, 3);
    }
    let block = ok(&home, &["core"]);
    assert_eq!(
        block,
        format!(
            "soda_cloud:\n  host: \"soda.internal\"\n  port: \"8443\"\n  scheme: \"https\"\n  api_key_id: \"{ID}\"\n  api_key_secret: \"{SECRET}\"\n"
        )
    );
    // PyYAML (Soda Core's parser) reads the port as the string Soda Core 4 requires.
    let v = pyyaml(&py, std::slice::from_ref(&block));
    assert_eq!(v[0]["soda_cloud"]["port"], "8443");
    let j: Value = serde_json::from_str(&ok(&home, &["core", "-o", "json"])).unwrap();
    assert_eq!(j["soda_cloud"]["port"], "8443");

    // A runner's Helm values keep port and scheme in the endpoint.
    import(cmd(&home), "runner", "edge", "rn-7", SECRET);
    let values = ok(
        &home,
        &["edge", "--host", "soda.internal", "--port", "8443"],
    );
    assert!(
        values.contains("endpoint: \"https://soda.internal:8443\""),
        "{values}"
    );
    let set = ok(
        &home,
        &[
            "edge", "-o", "helm-set", "--region", "us", "--scheme", "http", "--port", "8080",
        ],
    );
    assert!(
        set.contains("soda.cloud.endpoint=http://cloud.us.soda.io:8080"),
        "{set}"
    );

    // --write over a block that has keys keyctl does not set keeps every one of them.
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("configuration.yml");
    let before = "data_source x:\n  type: postgres\nsoda_cloud:\n  host: cloud.us.soda.io\n  port: \"9443\"\n  scheme: http\n  api_key_id: other\n  api_key_secret: old\n  timeout: 30\n  labels: {team: data}\n";
    std::fs::write(&f, before).unwrap();
    import(cmd(&home), "api", "plain", "id-plain", SECRET);
    ok(&home, &["plain", "--yes", "--write", f.to_str().unwrap()]);
    let after = std::fs::read_to_string(&f).unwrap();
    let v = &pyyaml(&py, std::slice::from_ref(&after))[0]["soda_cloud"];
    assert_eq!(
        *v,
        json!({"host": "cloud.us.soda.io", "port": "9443", "scheme": "http", "api_key_id": "id-plain",
               "api_key_secret": SECRET, "timeout": 30, "labels": {"team": "data"}}),
        "an imported key with no region keeps the block's host, port and scheme: {after}"
    );
    assert!(
        after.starts_with("data_source x:\n  type: postgres\n"),
        "{after}"
    );

    // A key known for another host moves the block there with its own port and scheme.
    ok(&home, &["core", "--yes", "--write", f.to_str().unwrap()]);
    let after = std::fs::read_to_string(&f).unwrap();
    let v = &pyyaml(&py, std::slice::from_ref(&after))[0]["soda_cloud"];
    assert_eq!(v["host"], "soda.internal", "{after}");
    assert_eq!(v["port"], "8443", "{after}");
    assert_eq!(v["scheme"], "https", "{after}");
    assert_eq!(v["timeout"], 30, "{after}");
}
