//! The reference tables a user looks up: exit codes, environment variables, files. The
//! man pages are rendered from these, and a test checks that README's tables say the
//! same, so the two cannot drift apart.

use crate::error::code;

/// Exit codes and what they mean (README "Exit codes").
pub(crate) const EXIT_CODES: &[(u8, &str)] = &[
    (code::OK, "success"),
    (
        code::FAILURE,
        "other failure (I/O, corrupted registry, ...)",
    ),
    (
        code::USAGE,
        "usage: bad flag, bad value, a secret on the command line; what the key's service cannot do (`rotate` of a Soda Cloud UI key, `create --kind runner` with several Soda remotes and no `--remote`)",
    ),
    (
        code::NOT_FOUND,
        "not found: no such key, or its secret is gone from the store; a Soda runner key whose runner never registered (revoke)",
    ),
    (
        code::CONFLICT,
        "conflict: name already taken, or KEY matches more than one key",
    ),
    (
        code::STORE_UNAVAILABLE,
        "store unavailable (`--store keyring` with no keyring answering; OpenBao/Vault unreachable, sealed, electing a leader, or refusing the token)",
    ),
    (
        code::REMOTE_UNREACHABLE,
        "remote unreachable: no connection, timeout, 5xx, malformed or oversized reply",
    ),
    (
        code::REMOTE_REFUSED,
        "remote refused: a 4xx answer (bad credentials, no permission, conflict, rate limit); `verify`: the service refuses the key",
    ),
    (code::INACTIVE, "key expired or revoked"),
    (code::INVALID_SECRET, "`check`: the secret is not valid"),
    (
        code::CONFIRMATION_REQUIRED,
        "confirmation needed: a destructive command without `--yes` and no terminal",
    ),
    (
        code::EXPIRING,
        "`list --expiring`: some key expires within the window",
    ),
    (
        code::SECRET_FOUND,
        "`scan`: a secret that may still work was found (revoked ones too with `--strict`)",
    ),
    (
        code::NOT_VERIFIED,
        "`gc`: a rotated key was kept because its successor was never verified (`keyctl verify NEW`, or `gc --unverified`)",
    ),
    (
        code::ROTATION_INCOMPLETE,
        "`rotate --due`: some due keys could not be rotated (the others were; each failure is named)",
    ),
    (
        code::COMMAND_NOT_STARTED,
        "`run`: CMD could not be started (otherwise `run` exits with CMD's own code)",
    ),
];

/// Environment variables keyctl reads (README "Environment").
pub(crate) const ENVIRONMENT: &[(&str, &str)] = &[
    (
        "KEYCTL_HOME",
        "directory for all local state, as `--home` (default: the platform's data and config directories)",
    ),
    (
        "KEYCTL_STORE",
        "where new secrets go, as `--store`: auto, keyring, file or vault",
    ),
    (
        "NO_COLOR",
        "set and not empty: no color under `--color auto`",
    ),
    (
        "BAO_ADDR, VAULT_ADDR",
        "the team store's address (over `vault.addr` in config.yaml)",
    ),
    (
        "BAO_TOKEN, VAULT_TOKEN",
        "the team store's token (else `~/.vault-token`)",
    ),
    (
        "BAO_CACERT, VAULT_CACERT",
        "PEM file of the CA that signed the team store's certificate",
    ),
    (
        "BAO_NAMESPACE, VAULT_NAMESPACE",
        "OpenBao / Vault Enterprise namespace of the team store",
    ),
    (
        "BAO_CLIENT_TIMEOUT, VAULT_CLIENT_TIMEOUT",
        "how long one team store request may take (seconds, or `30s`; default 10 s)",
    ),
    (
        "OS_AUTH_URL, OS_USERNAME, OS_PASSWORD, ...",
        "read by `remote add --from-env` (an OpenStack openrc file's variables)",
    ),
    (
        "OS_CLOUD, OS_CLIENT_CONFIG_FILE, OS_CLIENT_SECURE_FILE",
        "read by `remote add --from-env` / `--os-cloud`: the cloud of clouds.yaml to use, and the clouds and secure files read before the usual places",
    ),
    (
        "DBUS_SESSION_BUS_ADDRESS",
        "the D-Bus session bus the Secret Service (Linux keyring) is reached on",
    ),
    (
        "KEYCTL_ORPHAN_GRACE",
        "seconds an orphaned secret must have existed before `doctor --fix` removes it (default 86400: one day)",
    ),
    (
        "KEYCTL_COMPLETE",
        "set by the completion scripts when a shell asks for completions",
    ),
];

/// Files keyctl reads and writes (README "Files"); `HOME` is `--home`/`KEYCTL_HOME` when
/// set.
pub(crate) const FILES: &[(&str, &str)] = &[
    (
        "~/.local/share/keyctl/keys.json",
        "the key registry: metadata of every key, never a secret (macOS: ~/Library/Application Support/keyctl; Windows: %APPDATA%\\keyctl; with --home: HOME/keys.json)",
    ),
    (
        "~/.config/keyctl/config.yaml",
        "settings: store, expiring_window, vault, remotes; never a secret (with --home: HOME/config.yaml)",
    ),
    (
        "~/.local/share/keyctl/secrets.json",
        "the file store: secrets in plain text, mode 0600, used only where no OS keyring answers or with --store file",
    ),
    (
        "~/.vault-token",
        "the team store's token when BAO_TOKEN and VAULT_TOKEN are unset (written by `bao login`)",
    ),
    (
        "~/.local/share/keyctl/team-fingerprints",
        "`scan`'s copy of the team's fingerprints (under the team's salt) and records, mode 0600, never a secret; read again when the team changes; safe to delete (with --home: HOME/team-fingerprints)",
    ),
];

/// `s` safe as roff text: backslashes escaped, no line starting with a control character.
fn roff(s: &str) -> String {
    let t = s.replace('\\', "\\e").replace('-', "\\-");
    if t.starts_with(['.', '\'']) {
        format!("\\&{t}")
    } else {
        t
    }
}

/// The EXIT STATUS, ENVIRONMENT and FILES sections of a man page, in roff.
pub(crate) fn man_sections() -> String {
    let mut o = String::new();
    let mut section = |title: &str, rows: &mut dyn Iterator<Item = (String, &str)>| {
        o.push_str(&format!(".SH \"{title}\"\n"));
        for (k, v) in rows {
            o.push_str(&format!(".TP\n\\fB{}\\fR\n{}\n", roff(&k), roff(v)));
        }
    };
    section(
        "EXIT STATUS",
        &mut EXIT_CODES.iter().map(|(c, m)| (c.to_string(), *m)),
    );
    section(
        "ENVIRONMENT",
        &mut ENVIRONMENT.iter().map(|(k, v)| (k.to_string(), *v)),
    );
    section("FILES", &mut FILES.iter().map(|(k, v)| (k.to_string(), *v)));
    o
}

#[cfg(test)]
mod tests {
    use super::*;

    const README: &str = include_str!("../../README.md");

    fn row(key: &str, text: &str) -> String {
        format!("| {key} | {text} |")
    }

    #[test]
    fn readme_tables_say_the_same() {
        for (c, m) in EXIT_CODES {
            let r = row(&c.to_string(), m);
            assert!(README.contains(&r), "README lacks the exit code row: {r}");
        }
        for (k, v) in ENVIRONMENT {
            let r = row(&format!("`{k}`"), v);
            assert!(README.contains(&r), "README lacks the environment row: {r}");
        }
        for (k, v) in FILES {
            let r = row(&format!("`{k}`"), v);
            assert!(README.contains(&r), "README lacks the files row: {r}");
        }
    }

    #[test]
    fn every_exit_code_is_listed_once() {
        let mut codes: Vec<u8> = EXIT_CODES.iter().map(|(c, _)| *c).collect();
        codes.sort_unstable();
        codes.dedup();
        assert_eq!(codes.len(), EXIT_CODES.len());
        assert_eq!(
            codes,
            [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 127]
        );
    }

    #[test]
    fn roff_text_cannot_start_a_request() {
        assert_eq!(roff(".hidden"), "\\&.hidden");
        assert_eq!(roff("a\\b-c"), "a\\eb\\-c");
    }
}
