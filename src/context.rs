//! Resolved settings: raw flags, environment and config.yaml turned once into what the
//! commands use (the "hiargs" step), so no command reads the environment itself.

use std::path::{Path, PathBuf};

use anyhow::Context as _;
use serde::Deserialize;

use crate::cli::GlobalArgs;
use crate::store::StoreChoice;
use crate::output::Output;

/// Where local state lives.
#[derive(Clone, Debug)]
pub struct Paths {
    /// The registry, lock files and the file store.
    pub data: PathBuf,
    pub config_file: PathBuf,
    /// True when set by `--home`/`KEYCTL_HOME`.
    pub explicit: bool,
}

impl Paths {
    pub fn resolve(home: Option<&Path>) -> anyhow::Result<Paths> {
        if let Some(h) = home {
            if h.as_os_str().is_empty() {
                return Err(crate::error::usage("--home / KEYCTL_HOME is empty"));
            }
            return Ok(Paths {
                data: h.to_path_buf(),
                config_file: h.join("config.yaml"),
                explicit: true,
            });
        }
        let data = dirs::data_dir()
            .context("cannot find a data directory (set HOME or use --home)")?
            .join("keyctl");
        let config = dirs::config_dir()
            .context("cannot find a config directory (set HOME or use --home)")?
            .join("keyctl");
        Ok(Paths {
            data,
            config_file: config.join("config.yaml"),
            explicit: false,
        })
    }
}

/// config.yaml. Unknown keys are ignored, so files written for a newer keyctl still load.
#[derive(Debug, Default, Deserialize)]
pub struct Config {
    pub store: Option<StoreChoice>,
    /// How close to expiry a key shows as `expiring` (e.g. `14d`).
    pub expiring_window: Option<String>,
    /// The team store (`vault:` section): address, mount, prefix.
    pub vault: Option<crate::store::vault::VaultConfig>,
    /// Remote services by name (`keyctl remote add`); never holds a secret.
    #[serde(default)]
    pub remotes: std::collections::BTreeMap<String, crate::remote::RemoteConfig>,
}

impl Config {
    pub fn load(path: &Path) -> anyhow::Result<Config> {
        match crate::fsutil::read_optional(path)? {
            None => Ok(Config::default()),
            Some(b) if b.iter().all(u8::is_ascii_whitespace) => Ok(Config::default()),
            Some(b) => serde_yaml_ng::from_slice(&b)
                .with_context(|| format!("cannot read the config file {}", path.display())),
        }
    }
}

/// Everything a command needs to know about its invocation.
pub struct Ctx {
    pub paths: Paths,
    pub store: StoreChoice,
    /// Where the store choice came from, for `doctor`.
    pub store_source: &'static str,
    pub out: Output,
    pub yes: bool,
    pub config: Config,
}

impl Ctx {
    pub fn new(g: &GlobalArgs, out: Output) -> anyhow::Result<Ctx> {
        let paths = Paths::resolve(g.home.as_deref())?;
        let config = Config::load(&paths.config_file)?;
        if let Some(w) = &config.expiring_window {
            let d = crate::expiry::parse_duration(w)
                .with_context(|| format!("expiring_window in {}", paths.config_file.display()))?;
            crate::expiry::set_warn_window(d);
        }
        let (store, store_source) = match (g.store, config.store) {
            (Some(s), _) => (s, "--store / KEYCTL_STORE"),
            (None, Some(s)) => (s, "config.yaml"),
            (None, None) => (StoreChoice::Auto, "default"),
        };
        Ok(Ctx {
            paths,
            store,
            store_source,
            out,
            yes: g.yes,
            config,
        })
    }
}
