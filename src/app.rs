//! The process's resolved settings and the services built from them, once: what every
//! workflow works with. The command-line layer (`context`) makes the one [`App`] of a run
//! from flags, environment and config.yaml; nothing below it reads the environment.
//! Domain modules never see an `App`: workflows hand them the plain values or the one
//! service they need.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::Context as _;

use crate::output::Output;
use crate::remote::{self, Remote, RemoteConfig};
use crate::store::{StoreChoice, Stores};

/// Where local state lives.
#[derive(Clone, Debug)]
pub(crate) struct Paths {
    /// The registry, lock files and the file store.
    pub data: PathBuf,
    pub config_file: PathBuf,
    /// True when set by `--home`/`KEYCTL_HOME`.
    pub explicit: bool,
}

impl Paths {
    pub(crate) fn resolve(home: Option<&Path>) -> anyhow::Result<Paths> {
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

/// Settings and services of one run.
pub(crate) struct App {
    pub paths: Paths,
    pub out: Output,
    /// Where new secrets go.
    pub store: StoreChoice,
    /// Where the store choice came from, for `doctor`.
    pub store_source: &'static str,
    /// How close to expiry a key shows as `expiring`.
    pub warn_window: time::Duration,
    /// Remote services by name (config.yaml's `remotes:`).
    pub remotes: BTreeMap<String, RemoteConfig>,
    /// config.yaml's `default_remote:`, for commands given no `--remote`.
    pub default_remote: Option<String>,
    pub stores: Stores,
    /// Who answers confirmations: the terminal in a real run; workflows never read the
    /// terminal themselves.
    pub prompter: std::sync::Arc<dyn crate::input::Prompter>,
    /// In-process workflow tests: remotes opened by name from memory instead of
    /// config.yaml (see `flow::testkit`).
    #[cfg(test)]
    pub test_remotes: Option<std::sync::Arc<crate::flow::testkit::MemRemotes>>,
}

impl App {
    /// Asks `question` unless `assume_yes` (`--yes`) answered it already.
    pub(crate) fn confirm(&self, assume_yes: bool, question: &str) -> anyhow::Result<()> {
        if assume_yes {
            Ok(())
        } else {
            self.prompter.confirm(question)
        }
    }

    /// What a remote needs to be opened.
    pub(crate) fn deps(&self) -> remote::Deps<'_> {
        remote::Deps {
            out: &self.out,
            stores: &self.stores,
            remotes: &self.remotes,
        }
    }

    /// The remote a command given no `--remote` means: `default_remote:` in config.yaml,
    /// else the only remote configured; otherwise a usage error that lists them.
    pub(crate) fn pick_remote(&self, given: Option<&str>, command: &str) -> anyhow::Result<String> {
        if let Some(r) = given.or(self.default_remote.as_deref()) {
            return Ok(r.to_string());
        }
        let names: Vec<&str> = self.remotes.keys().map(String::as_str).collect();
        match names.as_slice() {
            [one] => Ok((*one).to_string()),
            [] => Err(crate::error::usage(format!(
                "keyctl {command} needs a remote and none is configured: `keyctl remote add NAME ...` adds one"
            ))),
            many => Err(crate::error::usage(format!(
                "keyctl {command} needs --remote NAME: {} remotes are configured ({}); or set default_remote: in config.yaml",
                many.len(),
                many.join(", ")
            ))),
        }
    }

    /// A remote from a configuration not saved yet (`remote add`).
    pub(crate) fn remote_from(
        &self,
        name: &str,
        cfg: RemoteConfig,
    ) -> anyhow::Result<Box<dyn Remote + '_>> {
        #[cfg(test)]
        if let Some(mem) = &self.test_remotes {
            return mem.open(name);
        }
        remote::open_config(self.deps(), name, cfg)
    }

    /// The remote configured as `name`.
    pub(crate) fn remote(&self, name: &str) -> anyhow::Result<Box<dyn Remote + '_>> {
        #[cfg(test)]
        if let Some(mem) = &self.test_remotes {
            return mem.open(name);
        }
        remote::open(self.deps(), name)
    }
}

/// An [`App`] for in-process workflow tests: a fresh home with the file store, silent
/// output, no remotes, and `prompter` answering confirmations.
#[cfg(test)]
pub(crate) fn for_tests(home: &Path, prompter: std::sync::Arc<dyn crate::input::Prompter>) -> App {
    let out = Output::silent();
    App {
        paths: Paths {
            data: home.to_path_buf(),
            config_file: home.join("config.yaml"),
            explicit: true,
        },
        stores: Stores::new(home, StoreChoice::File, None, false, &out),
        out,
        store: StoreChoice::File,
        store_source: "test",
        warn_window: time::Duration::days(14),
        remotes: BTreeMap::new(),
        default_remote: None,
        prompter,
        test_remotes: None,
    }
}
