//! Resolved settings: raw flags, environment and config.yaml turned once into the run's
//! [`App`] (the "hiargs" step), so nothing below the command line reads the environment.

use std::ffi::OsString;
use std::ops::Deref;
use std::path::Path;

use anyhow::Context as _;
use secrecy::SecretString;
use serde::Deserialize;

use crate::app::{App, Paths};
use crate::cli::GlobalArgs;
use crate::flow::known_keys::TeamCheck;
use crate::output::Output;
use crate::store::vault::{TokenSource, VaultConfig, VaultSettings};
use crate::store::{StoreChoice, Stores};

/// config.yaml. Unknown keys are ignored, so files written for a newer keyctl still load.
#[derive(Debug, Default, Deserialize)]
pub(crate) struct Config {
    pub store: Option<StoreChoice>,
    /// How close to expiry a key shows as `expiring` (e.g. `14d`).
    pub expiring_window: Option<String>,
    /// The team store (`vault:` section): address, mount, prefix.
    pub vault: Option<VaultConfig>,
    /// Remote services by name (`keyctl remote add`); never holds a secret.
    #[serde(default)]
    pub remotes: std::collections::BTreeMap<String, crate::remote::RemoteConfig>,
    /// The remote `push`, `token` and `verify` use when given no `--remote`.
    pub default_remote: Option<String>,
}

impl Config {
    pub(crate) fn load(path: &Path) -> anyhow::Result<Config> {
        match crate::fsutil::read_optional(path)? {
            None => Ok(Config::default()),
            Some(b) if b.iter().all(u8::is_ascii_whitespace) => Ok(Config::default()),
            Some(b) => {
                check_nesting(&b).map_err(|why| {
                    anyhow::anyhow!("cannot read the config file {}: {why}", path.display())
                })?;
                serde_yaml_ng::from_slice(&b)
                    .with_context(|| format!("cannot read the config file {}", path.display()))
            }
        }
    }
}

/// How deep config.yaml's flow collections (`[...]`, `{...}`) may nest: keyctl's own
/// settings go 4 deep; 100,000 nested brackets took the YAML parser 27 s.
const MAX_NESTING: usize = 64;

/// Refuses text whose `[`/`{` nesting (outside quotes and comments) passes
/// [`MAX_NESTING`], before the parser sees it.
fn check_nesting(text: &[u8]) -> Result<(), String> {
    let mut depth = 0usize;
    let mut quote: Option<u8> = None;
    let mut comment = false;
    let mut prev = b'\n';
    for &c in text {
        match (quote, c) {
            // A comment ends with its line; a quoted scalar may go on.
            (_, b'\n') => comment = false,
            _ if comment => {}
            (Some(q), c) if c == q && !(q == b'"' && prev == b'\\') => quote = None,
            (Some(_), _) => {}
            (None, b'#') if prev.is_ascii_whitespace() => comment = true,
            (None, b'"' | b'\'') if depth > 0 || prev.is_ascii_whitespace() || prev == b':' => {
                quote = Some(c)
            }
            (None, b'[' | b'{') => {
                depth += 1;
                if depth > MAX_NESTING {
                    return Err(format!(
                        "it nests brackets more than {MAX_NESTING} deep; keyctl's settings never need that"
                    ));
                }
            }
            (None, b']' | b'}') => depth = depth.saturating_sub(1),
            _ => {}
        }
        prev = c;
    }
    Ok(())
}

/// Everything a command needs to know about its invocation: the run's [`App`], what only
/// the command line decides (whether confirmations are pre-answered), and work started
/// before the command line was parsed.
pub(crate) struct Ctx {
    pub app: App,
    pub yes: bool,
    /// `scan`'s team check, started early ([`early_team_check`]).
    pub team_check: std::sync::Mutex<Option<TeamCheck>>,
}

impl Deref for Ctx {
    type Target = App;
    fn deref(&self) -> &App {
        &self.app
    }
}

fn env(k: &str) -> Option<String> {
    std::env::var(k).ok().filter(|v| !v.is_empty())
}

/// What the home's config.yaml, the environment and the two flags that choose them
/// (`--home`, `--store`) settle.
struct Settled {
    paths: Paths,
    config: Config,
    store: StoreChoice,
    store_source: &'static str,
    vault: Option<VaultSettings>,
}

fn settle(home: Option<&Path>, store: Option<StoreChoice>) -> anyhow::Result<Settled> {
    let paths = Paths::resolve(home)?;
    let config = Config::load(&paths.config_file)?;
    let (store, store_source) = match (store, config.store) {
        (Some(s), _) => (s, "--store / KEYCTL_STORE"),
        (None, Some(s)) => (s, "config.yaml"),
        (None, None) => (StoreChoice::Auto, "default"),
    };
    let vault = (store == StoreChoice::Vault || config.vault.is_some())
        .then(|| vault_settings(config.vault.clone().unwrap_or_default()));
    Ok(Settled {
        paths,
        config,
        store,
        store_source,
        vault,
    })
}

/// `scan`'s one request to the team store, started before the command line is parsed
/// (why: [`TeamCheck`]), when the arguments say so without the parser ([`plain_scan`]).
/// The settings are then those of `KEYCTL_HOME`, `KEYCTL_STORE` and config.yaml, as
/// [`Ctx::new`] settles them; the scan uses the check only if its own come out the same.
pub(crate) fn early_team_check(args: &[OsString]) -> Option<TeamCheck> {
    if !plain_scan(args) {
        return None;
    }
    let home = std::env::var_os("KEYCTL_HOME").map(std::path::PathBuf::from);
    let store = env("KEYCTL_STORE").map(|v| <StoreChoice as clap::ValueEnum>::from_str(&v, false));
    let settled = settle(home.as_deref(), store.transpose().ok()?).ok()?;
    TeamCheck::start(settled.vault?).ok()
}

/// A `scan` command line whose settings are the environment's: `scan` after nothing but
/// global flags that take no value (`-v`, `-q`, `--json`, `-y`, `--color=WHEN`), and
/// neither `--home` nor `--store` anywhere (the flags that change the settings), nor a
/// request for help. Anything else is left to the parser.
fn plain_scan(args: &[OsString]) -> bool {
    let mut rest = args.iter().skip(1).map(|a| a.to_str());
    let leading = |a: &str| {
        ["--verbose", "--quiet", "--json", "--yes"].contains(&a)
            || a.starts_with("--color=")
            || a.len() > 1 && a.starts_with('-') && a[1..].bytes().all(|c| b"vqy".contains(&c))
    };
    let scan = rest.by_ref().find(|a| a.is_none_or(|a| !leading(a)));
    scan == Some(Some("scan"))
        && rest.all(|a| {
            a.is_some_and(|a| {
                !(a.starts_with("--home") || a.starts_with("--store") || a == "--help" || a == "-h")
            })
        })
}

impl Ctx {
    pub(crate) fn new(g: &GlobalArgs, out: Output) -> anyhow::Result<Ctx> {
        let Settled {
            paths,
            config,
            store,
            store_source,
            vault,
        } = settle(g.home.as_deref(), g.store)?;
        let warn_window = match &config.expiring_window {
            Some(w) => crate::expiry::parse_duration(w)
                .with_context(|| format!("expiring_window in {}", paths.config_file.display()))?,
            None => crate::expiry::DEFAULT_WARN_WINDOW,
        };
        let session_bus = std::env::var_os("DBUS_SESSION_BUS_ADDRESS").is_some();
        let stores = Stores::new(&paths.data, store, vault, session_bus, &out);
        Ok(Ctx {
            app: App {
                paths,
                out,
                store,
                store_source,
                warn_window,
                remotes: config.remotes,
                default_remote: config.default_remote,
                prompter: std::sync::Arc::new(crate::input::TerminalPrompter),
                stores,
                #[cfg(test)]
                test_remotes: None,
            },
            yes: g.yes,
            team_check: std::sync::Mutex::new(None),
        })
    }
}

/// The `vault:` section with the environment's overrides, the way the `bao`/`vault` CLIs
/// behave: `BAO_*` first, then `VAULT_*`, then config.yaml. The token is `BAO_TOKEN`,
/// `VAULT_TOKEN`, else the token helper's file `~/.vault-token` (read on first use).
fn vault_settings(mut cfg: VaultConfig) -> VaultSettings {
    cfg.addr = env("BAO_ADDR").or_else(|| env("VAULT_ADDR")).or(cfg.addr);
    cfg.namespace = env("BAO_NAMESPACE")
        .or_else(|| env("VAULT_NAMESPACE"))
        .or(cfg.namespace);
    cfg.timeout = env("BAO_CLIENT_TIMEOUT")
        .or_else(|| env("VAULT_CLIENT_TIMEOUT"))
        .or(cfg.timeout);
    cfg.ca_cert = env("BAO_CACERT")
        .or_else(|| env("VAULT_CACERT"))
        .map(Into::into)
        .or(cfg.ca_cert);
    let token = ["BAO_TOKEN", "VAULT_TOKEN"]
        .into_iter()
        .find_map(|var| {
            let t = std::env::var(var).ok()?;
            let t = t.trim();
            (!t.is_empty()).then(|| TokenSource::Given {
                token: SecretString::from(t.to_owned()),
                source: var.to_owned(),
            })
        })
        .or_else(|| dirs::home_dir().map(|h| TokenSource::File(h.join(".vault-token"))))
        .unwrap_or(TokenSource::Missing);
    VaultSettings { config: cfg, token }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(line: &str) -> Vec<OsString> {
        line.split(' ').map(OsString::from).collect()
    }

    #[test]
    fn a_scan_is_read_before_the_parser_only_when_its_settings_are_the_environments() {
        for yes in [
            "keyctl scan",
            "keyctl scan .",
            "keyctl -v scan src",
            "keyctl -vq --json scan --staged",
            "keyctl --color=never -y scan --format json .",
        ] {
            assert!(plain_scan(&args(yes)), "{yes}");
        }
        for no in [
            "keyctl",
            "keyctl list",
            "keyctl --home /h scan",
            "keyctl scan --home=/h",
            "keyctl scan . --store file",
            "keyctl --color never scan",
            "keyctl scan --help",
            "keyctl scan -h",
            "keyctl -x scan",
            "keyctl help scan",
        ] {
            assert!(!plain_scan(&args(no)), "{no}");
        }
    }
}
