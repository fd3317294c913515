//! Resolved settings: raw flags, environment and config.yaml turned once into the run's
//! [`App`] (the "hiargs" step), so nothing below the command line reads the environment.

use std::ops::Deref;
use std::path::Path;

use anyhow::Context as _;
use secrecy::SecretString;
use serde::Deserialize;

use crate::app::{App, Paths};
use crate::cli::GlobalArgs;
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

/// Everything a command needs to know about its invocation: the run's [`App`], and what
/// only the command line decides (whether confirmations are pre-answered).
pub(crate) struct Ctx {
    pub app: App,
    pub yes: bool,
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

impl Ctx {
    pub(crate) fn new(g: &GlobalArgs, out: Output) -> anyhow::Result<Ctx> {
        let paths = Paths::resolve(g.home.as_deref())?;
        let config = Config::load(&paths.config_file)?;
        let warn_window = match &config.expiring_window {
            Some(w) => crate::expiry::parse_duration(w)
                .with_context(|| format!("expiring_window in {}", paths.config_file.display()))?,
            None => crate::expiry::DEFAULT_WARN_WINDOW,
        };
        let (store, store_source) = match (g.store, config.store) {
            (Some(s), _) => (s, "--store / KEYCTL_STORE"),
            (None, Some(s)) => (s, "config.yaml"),
            (None, None) => (StoreChoice::Auto, "default"),
        };
        let vault = (store == StoreChoice::Vault || config.vault.is_some())
            .then(|| vault_settings(config.vault.clone().unwrap_or_default()));
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
