//! The keys `scan` can name: this home's, by the fingerprints in its registry, and the
//! team store's, by the fingerprints on the team's records. The scan itself
//! ([`crate::scan`]) takes them as plain values; this is where they are gathered, and
//! where a finding's key is looked up afterwards.
//!
//! A team of 10,000 keys takes ~200 ms to load, which every commit would pay through the
//! pre-commit hook. So the team's fingerprints are kept in a copy in the home
//! ([`TeamFingerprints`], checked by the team's generation, one request), and the scan
//! runs against the copy while that request is in flight (the copy is searched where it
//! lies: a scan reads only the entries its lookups visit). When the copy turns out stale,
//! it is refreshed and the scan is run again, so a team key whose `create` or `rotate`
//! finished before the scan started is always found. The copy holds the records too, of which only those of the keys found are read
//! (their names and status, as current as the generation checked). Never a secret.

use std::collections::HashMap;
use std::sync::Arc;

use secrecy::ExposeSecret;

use crate::app::App;
use crate::output::Output;
use crate::registry::{KeyRecord, Registry};
use crate::scan::report::KeyInfo;
use crate::scan::{self, Finding, Known, SortedFingerprints};
use crate::store::StoreChoice;
use crate::store::vault::{Generation, TeamFingerprints, VaultSettings, VaultStore};

/// The team's fingerprints as a table the scan searches, shared with [`KnownKeys`] (which
/// reads the records of the keys found).
struct TeamTable(Arc<TeamFingerprints>);

impl SortedFingerprints for TeamTable {
    fn count(&self) -> usize {
        self.0.len()
    }
    fn get(&self, i: usize) -> Option<[u8; 32]> {
        self.0.fingerprint(i)
    }
    fn all(&self) -> Option<Vec<[u8; 32]>> {
        self.0.fingerprints()
    }
}

/// The copy of the team's fingerprints, in the home.
pub(crate) const TEAM_COPY: &str = "team-fingerprints";

/// What a scan knows: `known` numbers this home's keys first, then the team's.
pub(crate) struct KnownKeys {
    pub known: Known,
    local: Vec<KeyRecord>,
    team: Option<Arc<TeamFingerprints>>,
}

/// The team store's answer to "which team, which generation?".
type Checked = anyhow::Result<(String, Generation)>;

/// That question, asked on a thread of its own before the command line is parsed: parsing
/// takes ~0.7 ms, most of a small scan's start, with a core idle meanwhile, and the answer
/// is needed only once the walk is done. Its lines (`-v`'s request line) are held until
/// the run's output says whether to print them.
pub(crate) struct TeamCheck {
    settings: VaultSettings,
    out: Output,
    thread: std::thread::JoinHandle<Checked>,
}

impl TeamCheck {
    /// Asks the team store at `settings`.
    pub(crate) fn start(settings: VaultSettings) -> std::io::Result<TeamCheck> {
        let out = Output::holding();
        out.debug("asking the team store for its generation while the command line is read");
        let (held, s) = (out.clone(), settings.clone());
        let thread = std::thread::Builder::new()
            .name("team-check".into())
            .spawn(move || ask(&VaultStore::open(&s, &held)?))?;
        Ok(TeamCheck {
            settings,
            out,
            thread,
        })
    }

    /// The answer, waited for; its held lines are printed on `out`.
    fn answer(self, out: &Output) -> Checked {
        let answer = {
            let _wait =
                (!self.thread.is_finished()).then(|| out.wait("waiting for the team store"));
            self.thread.join()
        };
        out.replay(&self.out);
        joined(answer)
    }
}

fn ask(v: &VaultStore) -> Checked {
    Ok((v.team_id(), v.generation()?))
}

/// The answer of a joined check thread, or why there is none.
fn joined(thread: std::thread::Result<Checked>) -> Checked {
    thread.unwrap_or_else(|_| Err(anyhow::anyhow!("the team store check panicked")))
}

/// The check a scan waits for: the one started before the command line was parsed, or
/// its own.
enum Pending<'s> {
    Early(Box<TeamCheck>),
    Here(std::thread::ScopedJoinHandle<'s, Checked>),
}

impl Pending<'_> {
    fn answer(self, out: &Output) -> Checked {
        match self {
            Pending::Early(check) => check.answer(out),
            Pending::Here(h) => joined(h.join()),
        }
    }
}

/// This home's salt and keys, and the check's answer, when the team's copy must be read
/// again.
type Stale = ([u8; 32], Vec<KeyRecord>, Checked);

/// Runs `scan` against every key this home knows (again, if the team's copy turned out
/// stale meanwhile); returns its result and what it knew, for [`name`]. `early` is the
/// team check started before the command line was read, used if it asked the team store
/// this run is set up for.
pub(crate) fn scan<T>(
    app: &App,
    early: Option<TeamCheck>,
    scan: impl Fn(&Known) -> anyhow::Result<T>,
) -> anyhow::Result<(T, KnownKeys)> {
    if !app.stores.vault_enabled() {
        let (salt, local) = local_keys(app)?;
        let kk = known_keys(salt, local, None);
        return Ok((scan(&kk.known)?, kk));
    }
    let path = app.paths.data.join(TEAM_COPY);
    let stores = &app.stores;
    let outcome = std::thread::scope(|s| -> anyhow::Result<Result<(T, KnownKeys), Stale>> {
        // In flight from the start: the scan's own work hides the round trip.
        let check = match early {
            Some(c) if stores.vault_settings().is_some_and(|s| s.same(&c.settings)) => {
                Pending::Early(Box::new(c))
            }
            other => {
                if let Some(c) = other {
                    // Asked of other settings than the flags chose (which it guards
                    // against): waited for, so that `-v` still says what it did.
                    let _ = c.answer(&app.out);
                    app.out.debug("the team check made before the command line was read asked another team store: asking again");
                }
                Pending::Here(s.spawn(|| ask(stores.vault()?)))
            }
        };
        let join = |p: Pending<'_>| p.answer(&app.out);
        let (salt, local) = local_keys(app)?;
        let copy = TeamFingerprints::load(&path).unwrap_or_else(|e| {
            app.out.debug(&format!("{e:#}"));
            None
        });
        let Some(copy) = copy.filter(|c| !c.too_old(time::OffsetDateTime::now_utc())) else {
            return Ok(Err((salt, local, join(check))));
        };
        let (team, generation, fetched_at) = (copy.team.clone(), copy.generation, copy.fetched_at);
        let kk = known_keys(salt, local, Some(copy));
        let found = scan(&kk.known)?;
        let whole = kk.known.intact();
        match join(check) {
            Ok(now) if now == (team, generation) && whole => Ok(Ok((found, kk))),
            Ok(now) => {
                app.out.debug(
                    "the team's keys changed since they were copied (or the copy is unreadable): scanning again",
                );
                Ok(Err((salt, kk.local, Ok(now))))
            }
            Err(e) if !whole => Ok(Err((salt, kk.local, Err(e)))),
            Err(e) => {
                app.out.warn(&format!(
                    "team keys matched as of {} (the team store did not answer: {e:#})",
                    crate::expiry::rfc3339(fetched_at)
                ));
                Ok(Ok((found, kk)))
            }
        }
    })?;
    let (salt, local, checked) = match outcome {
        Ok(done) => return Ok(done),
        Err(stale) => stale,
    };
    let team = refresh(app, &path, checked)?;
    let kk = known_keys(salt, local, team);
    Ok((scan(&kk.known)?, kk))
}

/// The team's fingerprints read from the team store and copied to `path`, as of the
/// generation `checked` (read before the records); None when the team store is configured
/// but not selected and does not answer.
fn refresh(
    app: &App,
    path: &std::path::Path,
    checked: Checked,
) -> anyhow::Result<Option<TeamFingerprints>> {
    let read =
        checked.and_then(|(_, generation)| app.stores.vault()?.team_fingerprints(generation));
    match read {
        Ok(team) => {
            if let Err(e) = team.save(path) {
                app.out
                    .debug(&format!("team fingerprints not copied: {e:#}"));
            }
            Ok(Some(team))
        }
        // Configured but not selected: local keys are still worth scanning for.
        Err(e) if app.store != StoreChoice::Vault => {
            app.out.warn(&format!("team keys not scanned for: {e:#}"));
            Ok(None)
        }
        Err(e) => Err(e),
    }
}

/// This home's salt and its keys with a fingerprint. Local keys stored before
/// fingerprints existed get theirs now (their secret read once, the fingerprint saved).
fn local_keys(app: &App) -> anyhow::Result<([u8; 32], Vec<KeyRecord>)> {
    let mut reg = Registry::lock(&app.paths.data)?;
    // Written back only when something was added: a scan is otherwise read-only.
    let mut changed = reg.reg.scan_salt().is_none();
    let salt = reg.reg.ensure_scan_salt();
    let missing: Vec<(String, crate::store::StoreKind)> = reg
        .reg
        .keys()
        .iter()
        .filter(|k| k.fingerprint.is_none() && k.revoked_at.is_none())
        .map(|k| (k.id.clone(), k.store))
        .collect();
    for (id, store) in missing {
        match app.stores.get(store).and_then(|s| s.get(&id)) {
            Ok(secret) => {
                let fp = reg.reg.fingerprint_of(secret.expose_secret());
                if let Some(k) = reg.get_mut(&id) {
                    k.fingerprint = Some(fp);
                    changed = true;
                }
            }
            Err(e) => app.out.debug(&format!("key {id} not fingerprinted: {e:#}")),
        }
    }
    if changed {
        reg.save()?;
    }
    let keys = reg
        .reg
        .keys()
        .iter()
        .filter(|k| k.fingerprint.is_some())
        .cloned()
        .collect();
    Ok((salt, keys))
}

fn known_keys(salt: [u8; 32], local: Vec<KeyRecord>, team: Option<TeamFingerprints>) -> KnownKeys {
    let mut known = Known::new(salt);
    for (i, k) in local.iter().enumerate() {
        if let Some(fp) = &k.fingerprint
            && let Some(h) = scan::from_hex(&fp.hmac)
        {
            known.add(h, fp.len, !fp.checksum, i);
        }
    }
    let team = team.map(Arc::new);
    if let Some(t) = &team
        && let Some(salt) = t.generation.salt
    {
        known.add_table(
            salt,
            local.len(),
            &t.lengths,
            Box::new(TeamTable(t.clone())),
        );
    }
    KnownKeys { known, local, team }
}

/// The keys of `findings`: their records and what the report shows of them; each
/// finding's key is renumbered into these.
pub(crate) fn name(
    app: &App,
    kk: &KnownKeys,
    findings: &mut [Finding],
) -> (Vec<KeyInfo>, Vec<KeyRecord>) {
    let now = time::OffsetDateTime::now_utc();
    let mut records: Vec<KeyRecord> = Vec::new();
    let mut seen: HashMap<usize, Option<usize>> = HashMap::new();
    for f in findings.iter_mut() {
        let Some(k) = f.key else { continue };
        if let std::collections::hash_map::Entry::Vacant(slot) = seen.entry(k) {
            let rec = match k.checked_sub(kk.local.len()) {
                None => Some(kk.local[k].clone()),
                Some(t) => team_record(kk, t),
            };
            slot.insert(rec.map(|r| {
                records.push(r);
                records.len() - 1
            }));
        }
        f.key = seen[&k];
    }
    for r in &mut records {
        r.service = Some(crate::flow::catalog::service_of(app, r));
    }
    let keys = records
        .iter()
        .map(|k| KeyInfo {
            id: k.id.clone(),
            name: k.name.clone(),
            status: k.status(now, app.warn_window).as_str().to_string(),
        })
        .collect();
    (keys, records)
}

/// The record of the team's key `i` (its copy's numbering), as of the copy's generation,
/// which the scan found current.
fn team_record(kk: &KnownKeys, i: usize) -> Option<KeyRecord> {
    kk.team.as_ref().and_then(|t| t.record(i))
}
