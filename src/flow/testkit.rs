//! What the in-process workflow tests run against: a fresh home with the file store, a
//! silent output, a prompter with a fixed answer, and [`MemRemote`], an in-memory remote
//! that follows the [`Remote`] contract the workflows rely on:
//! - `push` registers a pair; the same access key again is success (`already`);
//! - `revoke` says whether it still had the credential;
//! - `token` (and so `verify`) works only for the exact pair it holds;
//! - `mint` mints a pair and holds it, where the remote mints its own keys;
//! - every call is logged (`push ID`, `token ID`, `revoke ID`, `mint ID`, `list`), so a
//!   test asserts what a workflow did and in which order, and any operation can be made
//!   to fail (a refusal, as a service answering 4xx would).
//!
//! End-to-end tests keep what needs the binary and the real services; these cover the
//! rules (rotation steps and rollback, revoke order, delivery, refusing expired keys)
//! in milliseconds under plain `cargo test`.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use secrecy::{ExposeSecret, SecretString};
use time::OffsetDateTime;

use crate::app::App;
use crate::error::Error;
use crate::input::FixedAnswer;
use crate::registry::{KeyRecord, Registry, RemoteLink};
use crate::remote::{
    AuthMethod, Identity, Pushed, Remote, RemoteConfig, RemoteCred, RemoteType, ServerMinted, Token,
};
use crate::service::{HttpEndpoint, Service};

/// One in-memory service's state, shared by every handle `App::remote` opens on it.
#[derive(Default)]
pub(crate) struct MemState {
    /// access key -> (secret, remote ID)
    creds: BTreeMap<String, (SecretString, String)>,
    /// Every call, in order: `push ID`, `revoke ID`, `token ID`, `mint ID`, `list`, `test`.
    pub calls: Vec<String>,
    /// Operations that fail (`push`, `revoke`, `token`, `mint`, `list`, `test`).
    pub fail: BTreeSet<&'static str>,
    serial: u32,
}

impl MemState {
    pub(crate) fn holds(&self, access: &str) -> bool {
        self.creds.contains_key(access)
    }
    /// The calls of one operation, in order (`"push"` gives the pushed IDs).
    pub(crate) fn calls_of(&self, op: &str) -> Vec<String> {
        self.calls
            .iter()
            .filter_map(|c| c.strip_prefix(op)?.strip_prefix(' ').map(str::to_string))
            .collect()
    }
    fn refuse(&self, op: &'static str) -> anyhow::Result<()> {
        if self.fail.contains(op) {
            return Err(Error::remote_refused(format!("the in-memory remote refused {op}")).into());
        }
        Ok(())
    }
}

/// The in-memory remotes of one test, by name.
#[derive(Default)]
pub(crate) struct MemRemotes {
    remotes: BTreeMap<String, (Arc<Mutex<MemState>>, bool)>,
}

impl MemRemotes {
    /// Opens remote `name` the way `remote::open` opens a configured one.
    pub(crate) fn open(&self, name: &str) -> anyhow::Result<Box<dyn Remote + '_>> {
        let (state, mints) = self.remotes.get(name).ok_or_else(|| {
            Error::not_found(format!("no remote named {name} (see `keyctl remote list`)"))
        })?;
        Ok(Box::new(MemRemote {
            url: format!("mem://{name}"),
            state: Arc::clone(state),
            mints: *mints,
        }))
    }
}

/// A handle on one in-memory service.
pub(crate) struct MemRemote {
    url: String,
    state: Arc<Mutex<MemState>>,
    mints: bool,
}

impl MemRemote {
    fn state(&self) -> std::sync::MutexGuard<'_, MemState> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl Remote for MemRemote {
    fn test(&self) -> anyhow::Result<Identity> {
        let mut s = self.state();
        s.calls.push("test".into());
        s.refuse("test")?;
        Ok(Identity {
            endpoint: self.url.clone(),
            user_id: "mem-user".into(),
            project_id: None,
            token_expires_at: None,
        })
    }

    fn push(
        &self,
        access: &str,
        secret: &SecretString,
        for_user: Option<&str>,
    ) -> anyhow::Result<Pushed> {
        let mut s = self.state();
        s.calls.push(format!("push {access}"));
        s.refuse("push")?;
        if let Some((_, id)) = s.creds.get(access) {
            return Ok(Pushed {
                remote_id: id.clone(),
                user_id: for_user.map(str::to_string),
                already: true,
            });
        }
        s.serial += 1;
        let id = format!("mem-{}", s.serial);
        s.creds
            .insert(access.to_string(), (secret.clone(), id.clone()));
        Ok(Pushed {
            remote_id: id,
            user_id: for_user.map(str::to_string),
            already: false,
        })
    }

    fn revoke(&self, link: &RemoteLink) -> anyhow::Result<bool> {
        let mut s = self.state();
        let access = s
            .creds
            .iter()
            .find(|(_, (_, id))| *id == link.remote_id)
            .map(|(a, _)| a.clone());
        s.calls
            .push(format!("revoke {}", access.as_deref().unwrap_or("?")));
        s.refuse("revoke")?;
        Ok(access.is_some_and(|a| s.creds.remove(&a).is_some()))
    }

    fn list(&self, for_user: Option<&str>) -> anyhow::Result<Vec<RemoteCred>> {
        let mut s = self.state();
        s.calls.push("list".into());
        s.refuse("list")?;
        Ok(s.creds
            .iter()
            .map(|(a, (_, id))| RemoteCred {
                access: a.clone(),
                remote_id: id.clone(),
                user_id: for_user.map(str::to_string),
                name: None,
            })
            .collect())
    }

    fn token(&self, access: &str, secret: &SecretString) -> anyhow::Result<Token> {
        let mut s = self.state();
        s.calls.push(format!("token {access}"));
        s.refuse("token")?;
        match s.creds.get(access) {
            Some((held, _)) if held.expose_secret() == secret.expose_secret() => Ok(Token {
                token: SecretString::from(format!("tok-{access}")),
                expires_at: None,
            }),
            _ => Err(Error::remote_refused(
                "HTTP 401: the in-memory remote does not know this pair",
            )
            .into()),
        }
    }

    fn mint(&self, for_user: Option<&str>) -> anyhow::Result<ServerMinted> {
        let mut s = self.state();
        if !self.mints {
            s.calls.push("mint".into());
            return Err(crate::error::usage("this remote takes keys; it mints none"));
        }
        let m = crate::key::mint(crate::key::Format::Standard, "mem_");
        s.calls.push(format!("mint {}", m.id));
        s.refuse("mint")?;
        s.serial += 1;
        let id = format!("mem-{}", s.serial);
        s.creds.insert(m.id.clone(), (m.secret.clone(), id.clone()));
        Ok(ServerMinted {
            access: m.id,
            secret: m.secret,
            remote_id: id,
            user_id: for_user.map(str::to_string),
        })
    }

    fn service(&self) -> Service {
        Service::Http(HttpEndpoint {
            url: self.url.clone(),
        })
    }

    fn mints_own_keys(&self) -> bool {
        self.mints
    }
}

/// A test's world: its home (removed when dropped), its [`App`], and its remotes.
pub(crate) struct World {
    pub app: App,
    pub home: PathBuf,
    states: BTreeMap<String, Arc<Mutex<MemState>>>,
    _dir: tempfile::TempDir,
}

/// Builds a [`World`].
pub(crate) struct WorldBuilder {
    answer: bool,
    /// (name, mints its own keys, in config.yaml already)
    remotes: Vec<(String, bool, bool)>,
}

/// A world whose prompter answers yes, with no remotes yet.
pub(crate) fn world() -> WorldBuilder {
    WorldBuilder {
        answer: true,
        remotes: Vec::new(),
    }
}

impl WorldBuilder {
    /// The prompter answers no.
    pub(crate) fn answering_no(mut self) -> Self {
        self.answer = false;
        self
    }
    /// A remote that takes keys made here (as Keystone and Multicloud do).
    pub(crate) fn remote(mut self, name: &str) -> Self {
        self.remotes.push((name.into(), false, true));
        self
    }
    /// A service that answers but is not in config.yaml yet (for `remote add`).
    pub(crate) fn unsaved_remote(mut self, name: &str) -> Self {
        self.remotes.push((name.into(), false, false));
        self
    }
    /// A remote that mints every key itself (as Soda Cloud does for runners).
    pub(crate) fn minting_remote(mut self, name: &str) -> Self {
        self.remotes.push((name.into(), true, true));
        self
    }
    pub(crate) fn build(self) -> World {
        let dir = tempfile::tempdir().unwrap();
        let home = dir.path().join("home");
        crate::fsutil::ensure_private_dir(&home).unwrap();
        let mut app = crate::app::for_tests(&home, Arc::new(FixedAnswer(self.answer)));
        let mut mem = MemRemotes::default();
        let mut states = BTreeMap::new();
        for (name, mints, saved) in self.remotes {
            let state = Arc::new(Mutex::new(MemState::default()));
            states.insert(name.clone(), Arc::clone(&state));
            mem.remotes.insert(name.clone(), (state, mints));
            if saved {
                app.remotes.insert(name.clone(), config(&name));
            }
        }
        app.test_remotes = Some(Arc::new(mem));
        World {
            app,
            home,
            states,
            _dir: dir,
        }
    }
}

/// A config.yaml entry for an in-memory remote (workflows check that a name is
/// configured; they never read its fields to decide what it can do).
pub(crate) fn config(name: &str) -> RemoteConfig {
    RemoteConfig {
        kind: RemoteType::Http,
        url: format!("mem://{name}"),
        auth: AuthMethod::None,
        user: None,
        project: None,
        domain: None,
        user_domain_name: None,
        user_domain_id: None,
        user_id: None,
        project_id: None,
        project_domain_name: None,
        project_domain_id: None,
        application_credential_id: None,
        application_credential_name: None,
        region_name: None,
        ca_cert: None,
        connect_timeout: None,
        timeout: None,
        secret_store: crate::store::StoreKind::File,
        auth_remote: None,
        profile: None,
        http: None,
        extra: Default::default(),
    }
}

impl World {
    /// Remote `name`'s state, to read its log or make an operation fail.
    pub(crate) fn remote(&self, name: &str) -> std::sync::MutexGuard<'_, MemState> {
        self.states[name].lock().unwrap_or_else(|p| p.into_inner())
    }

    /// A stored key named `name` (API kind, 90 days), returning its record and secret.
    pub(crate) fn key(&self, name: &str) -> (KeyRecord, SecretString) {
        self.key_expiring(name, "90d")
    }

    /// A stored key with the given lifetime (`90d`, `never`, a date...).
    pub(crate) fn key_expiring(&self, name: &str, expires: &str) -> (KeyRecord, SecretString) {
        let now = OffsetDateTime::now_utc();
        let minted = crate::key::mint(crate::key::Format::Standard, "kca_");
        let rec = super::keys::new_key_meta(None, expires, vec![], now)
            .unwrap()
            .record(
                minted.id.clone(),
                name.into(),
                crate::key::Kind::Api,
                crate::key::Format::Standard,
                now,
            );
        let rec = super::keys::store_new_key(&self.app, rec, &minted.secret).unwrap();
        (rec, minted.secret)
    }

    /// A stored key pushed to `remote`.
    pub(crate) fn pushed_key(&self, name: &str, remote: &str) -> KeyRecord {
        let (rec, _) = self.key(name);
        super::push::push_key(&self.app, &rec, remote, None).unwrap();
        self.record(&rec.id)
    }

    /// The registry's record of `id` now.
    pub(crate) fn record(&self, id: &str) -> KeyRecord {
        self.registry()
            .keys()
            .iter()
            .find(|k| k.id == id)
            .cloned()
            .unwrap_or_else(|| panic!("no record of {id}"))
    }

    pub(crate) fn registry(&self) -> Registry {
        Registry::load(&self.home).unwrap()
    }

    /// Whether the store holds a secret for `id`.
    pub(crate) fn has_secret(&self, id: &str) -> bool {
        let store = self.app.stores.get(crate::store::StoreKind::File).unwrap();
        store.get(id).is_ok()
    }

    /// The same home and remotes with a prompter that answers no.
    pub(crate) fn answering_no(&self) -> App {
        let mut app = crate::app::for_tests(&self.home, std::sync::Arc::new(FixedAnswer(false)));
        app.remotes = self.app.remotes.clone();
        app.test_remotes = self.app.test_remotes.clone();
        app
    }

    /// Edits the registry directly (times in the past, say), under its lock.
    pub(crate) fn edit(&self, id: &str, f: impl FnOnce(&mut KeyRecord)) {
        let mut reg = Registry::lock(&self.home).unwrap();
        f(reg.get_mut(id).unwrap());
        reg.save().unwrap();
    }
}
