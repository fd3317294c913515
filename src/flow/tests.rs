//! The workflows' rules, run in process against the file store, the in-memory remote of
//! [`super::testkit`] and a silent output: rotation's steps and rollback, the order of a
//! revoke, delivery of the successor, gc's refusal to strand a key, and the refusal to
//! hand out an expired key. Each test asserts what reached the remote and what was left
//! in the registry, the store and the written file.

use time::{Duration, OffsetDateTime};

use super::create::{CreateRequest, create};
use super::deliver::Target;
use super::push::RemoteChoice;
use super::revoke::{RevokeRequest, revoke};
use super::rotate::{RotateRequest, finish, rotate};
use super::testkit::{World, world};
use crate::error::{Kind, kind_of};
use crate::key::{Format, Kind as KeyKind};

fn rotation(key: &str, grace: Duration, write: Option<std::path::PathBuf>) -> RotateRequest {
    RotateRequest {
        key: key.into(),
        grace,
        no_verify: false,
        render: Default::default(),
        target: Target {
            write,
            dry_run: false,
        },
        assume_yes: true,
        print_snippet: false,
    }
}

fn revocation(key: &str) -> RevokeRequest {
    RevokeRequest {
        keys: vec![key.into()],
        remote: None,
        all_expired: false,
        local_only: false,
        jobs: 1,
        assume_yes: true,
    }
}

/// A `create` of an API or runner key named `name` on remote `remote`.
fn creation(kind: KeyKind, name: &str, remote: &str) -> CreateRequest {
    CreateRequest {
        kind,
        format: Format::Standard,
        prefix: None,
        name: Some(name.into()),
        description: None,
        expires: "90d".into(),
        scopes: vec![],
        remote: RemoteChoice {
            remote: Some(remote.into()),
            server_side: false,
            for_user: None,
        },
        render: Default::default(),
        target: Target::default(),
        assume_yes: true,
        rotate_every: None,
    }
}

/// The error a workflow ended with, whether returned or carried in its report.
fn revoke_error(w: &World, key: &str) -> Option<anyhow::Error> {
    match revoke(&w.app, &revocation(key)) {
        Err(e) => Some(e),
        Ok(Some(r)) => r.result.err(),
        Ok(None) => None,
    }
}

/// Moves a rotated key's grace period into the past.
fn end_grace(w: &World, id: &str) {
    w.edit(id, |k| {
        k.superseded.as_mut().unwrap().revoke_after = OffsetDateTime::now_utc() - Duration::SECOND
    });
}

#[test]
fn rotation_pushes_and_proves_the_successor_before_the_old_key_steps_aside() {
    let w = world().remote("r").build();
    let old = w.pushed_key("svc", "r");
    let file = w.home.with_file_name("configuration.yml");
    let done = rotate(
        &w.app,
        &rotation("svc", Duration::hours(1), Some(file.clone())),
    )
    .unwrap();
    let new = done.new.id.clone();
    assert_ne!(new, old.id);
    // Pushed, then proved with a token exchange of the new pair; the old key untouched.
    assert_eq!(
        w.remote("r").calls,
        [
            format!("push {}", old.id),
            format!("push {new}"),
            format!("token {new}")
        ]
    );
    assert!(w.remote("r").holds(&old.id) && w.remote("r").holds(&new));
    // The name now means the successor; the old key works until its grace period ends.
    let reg = w.registry();
    assert_eq!(reg.resolve("svc").unwrap().id, new);
    let sup = w.record(&old.id).superseded.expect("old key superseded");
    assert_eq!(sup.by, new);
    assert!(sup.revoke_after > OffsetDateTime::now_utc() + Duration::minutes(59));
    assert_eq!(w.record(&new).remotes[0].remote, "r");
    // The file the key is pasted into carries the successor.
    let text = std::fs::read_to_string(&file).unwrap();
    assert!(text.contains(&new) && !text.contains(&old.id), "{text}");
    assert!(done.secret.is_none(), "written to a file, not returned");

    // gc before the grace period ends revokes nothing.
    assert!(finish(&w.app, 4, true, false).unwrap().0.is_none());
    assert!(w.remote("r").holds(&old.id));
    // After it: the old key is taken off the remote first, then revoked here.
    end_grace(&w, &old.id);
    let report = finish(&w.app, 4, true, false)
        .unwrap()
        .0
        .expect("one key due");
    report.result.unwrap();
    assert_eq!(
        w.remote("r").calls.last().unwrap(),
        &format!("revoke {}", old.id)
    );
    assert!(!w.remote("r").holds(&old.id) && w.remote("r").holds(&new));
    assert!(w.record(&old.id).revoked_at.is_some());
    assert!(!w.has_secret(&old.id) && w.has_secret(&new));
}

#[test]
fn a_successor_the_remote_does_not_accept_is_rolled_back_and_the_old_key_kept() {
    let w = world().remote("r").build();
    let old = w.pushed_key("svc", "r");
    let file = w.home.with_file_name("configuration.yml");
    std::fs::write(&file, "data_source x:\n  type: postgres\n").unwrap();
    w.remote("r").fail.insert("token");
    let err = rotate(
        &w.app,
        &rotation("svc", Duration::hours(1), Some(file.clone())),
    )
    .err()
    .expect("verify fails");
    let msg = format!("{err:#}");
    assert!(msg.contains("failed at step 'verify on r"), "{msg}");
    assert!(msg.contains("rolled back"), "{msg}");
    // The successor was pushed, failed its check and was taken off again.
    let pushed = w.remote("r").calls_of("push");
    let new = pushed.last().unwrap().clone();
    assert_ne!(new, old.id);
    assert_eq!(w.remote("r").calls_of("revoke"), std::slice::from_ref(&new));
    assert!(w.remote("r").holds(&old.id) && !w.remote("r").holds(&new));
    // Locally: one key, as it was; no secret of the successor; the file untouched.
    let reg = w.registry();
    assert_eq!(reg.keys().len(), 1);
    assert!(w.record(&old.id).superseded.is_none());
    assert!(!w.has_secret(&new) && w.has_secret(&old.id));
    assert_eq!(
        std::fs::read_to_string(&file).unwrap(),
        "data_source x:\n  type: postgres\n"
    );
}

#[test]
fn a_refused_push_of_the_successor_changes_nothing() {
    let w = world().remote("r").build();
    let old = w.pushed_key("svc", "r");
    w.remote("r").fail.insert("push");
    let err = rotate(&w.app, &rotation("svc", Duration::hours(1), None))
        .err()
        .expect("push fails");
    assert!(
        format!("{err:#}").contains("failed at step 'push to r'"),
        "{err:#}"
    );
    assert_eq!(kind_of(&err), Some(Kind::RemoteRefused));
    assert_eq!(w.registry().keys().len(), 1);
    assert!(w.record(&old.id).superseded.is_none());
    assert!(w.remote("r").calls_of("revoke").is_empty());
    // Once the remote takes it again, the same rotation goes through.
    w.remote("r").fail.clear();
    rotate(&w.app, &rotation("svc", Duration::hours(1), None)).unwrap();
    assert_eq!(w.registry().keys().len(), 2);
}

#[test]
fn without_a_grace_period_the_old_key_is_revoked_after_the_successor_is_proved() {
    let w = world().remote("r").build();
    let old = w.pushed_key("svc", "r");
    let mut req = rotation("svc", Duration::ZERO, None);
    req.print_snippet = true;
    let done = rotate(&w.app, &req).unwrap();
    let new = done.new.id;
    assert_eq!(
        w.remote("r").calls[1..],
        [
            format!("push {new}"),
            format!("token {new}"),
            format!("revoke {}", old.id)
        ]
    );
    assert!(w.record(&old.id).revoked_at.is_some());
    assert!(
        done.secret.is_some(),
        "printed, not written: the secret is handed back once"
    );
}

#[test]
fn gc_never_revokes_a_key_whose_successor_is_not_on_all_its_remotes() {
    let w = world().remote("a").remote("b").build();
    let old = w.pushed_key("svc", "a");
    super::push::push_key(&w.app, &old, "b", None).unwrap();
    let new = rotate(&w.app, &rotation("svc", Duration::hours(1), None))
        .unwrap()
        .new
        .id;
    // As if the successor's push to b had been lost.
    w.edit(&new, |k| k.remotes.retain(|l| l.remote != "b"));
    end_grace(&w, &old.id);
    assert!(finish(&w.app, 4, true, false).unwrap().0.is_none());
    assert!(w.record(&old.id).revoked_at.is_none());
    assert!(w.remote("a").calls_of("revoke").is_empty());
    assert!(w.remote("b").holds(&old.id));
}

#[test]
fn a_remote_that_mints_its_own_keys_mints_the_successor_and_gets_no_push() {
    let w = world().minting_remote("soda").build();
    let created = create(&w.app, creation(KeyKind::Runner, "runner", "soda"))
        .unwrap()
        .expect("created");
    let old = created.rec.id;
    assert!(w.remote("soda").holds(&old));
    let new = rotate(&w.app, &rotation("runner", Duration::hours(1), None))
        .unwrap()
        .new
        .id;
    let calls = w.remote("soda").calls.clone();
    assert!(calls.iter().all(|c| !c.starts_with("push")), "{calls:?}");
    assert_eq!(
        calls,
        [
            format!("mint {old}"),
            format!("mint {new}"),
            format!("token {new}")
        ]
    );
}

#[test]
fn a_push_refused_at_create_keeps_the_key_stored_and_unlinked() {
    let w = world().remote("r").build();
    w.remote("r").fail.insert("push");
    let created = create(&w.app, creation(KeyKind::Api, "ci", "r"))
        .unwrap()
        .expect("created");
    let err = created.pushed.expect_err("push refused");
    let rec = w.record(&created.rec.id);
    assert!(
        format!("{err:#}").contains(&format!("`keyctl push {} --remote r`", rec.id)),
        "{err:#}"
    );
    assert!(rec.remotes.is_empty());
    assert!(w.has_secret(&rec.id));
}

#[test]
fn revoke_asks_the_remote_first_and_keeps_everything_when_it_refuses() {
    let w = world().remote("r").build();
    let k = w.pushed_key("svc", "r");
    w.remote("r").fail.insert("revoke");
    let err = revoke_error(&w, "svc").expect("remote refused");
    assert!(format!("{err:#}").contains("--local-only"), "{err:#}");
    let rec = w.record(&k.id);
    assert!(rec.revoked_at.is_none() && rec.remotes.len() == 1);
    assert!(w.has_secret(&k.id));
    // Once the remote answers, the key is taken off it and only then revoked here.
    w.remote("r").fail.clear();
    assert!(revoke_error(&w, "svc").is_none());
    assert_eq!(
        w.remote("r").calls_of("revoke"),
        [k.id.clone(), k.id.clone()]
    );
    assert!(!w.remote("r").holds(&k.id));
    let rec = w.record(&k.id);
    assert!(rec.revoked_at.is_some() && rec.remotes.is_empty());
    assert!(!w.has_secret(&k.id));
}

#[test]
fn a_key_already_gone_from_the_remote_counts_as_revoked() {
    let w = world().remote("r").build();
    let k = w.pushed_key("svc", "r");
    let link = w.record(&k.id).remotes[0].clone();
    w.app.remote("r").unwrap().revoke(&link).unwrap();
    assert!(revoke_error(&w, "svc").is_none());
    assert!(w.record(&k.id).revoked_at.is_some());
}

#[test]
fn expired_and_revoked_keys_are_not_handed_out() {
    let w = world().remote("r").build();
    let (k, _) = w.key("old");
    w.edit(&k.id, |r| {
        r.expires_at = Some(OffsetDateTime::now_utc() - Duration::DAY)
    });
    let err = super::keys::usable_secret(&w.app, "old", false).expect_err("expired");
    assert_eq!(kind_of(&err), Some(Kind::Inactive));
    assert!(format!("{err:#}").contains("--allow-expired"), "{err:#}");
    assert!(super::keys::usable_secret(&w.app, "old", true).is_ok());

    let (gone, _) = w.key("gone");
    if let Some(e) = revoke_error(&w, "gone") {
        panic!("{e:#}");
    }
    let err = super::keys::usable_secret(&w.app, &gone.id, false).expect_err("revoked");
    assert_eq!(kind_of(&err), Some(Kind::Inactive));
    assert!(
        format!("{err:#}").contains("its secret was deleted"),
        "{err:#}"
    );
    // Its secret went with the revoke: even --allow-expired finds nothing to hand out.
    let err = super::keys::usable_secret(&w.app, &gone.id, true).expect_err("no secret");
    assert_eq!(kind_of(&err), Some(Kind::NotFound));
    assert!(w.remote("r").calls.is_empty());
}

#[test]
fn a_prompter_answering_no_leaves_the_rotated_key_unrevoked() {
    let w = world().remote("r").answering_no().build();
    let old = w.pushed_key("svc", "r");
    let new = rotate(&w.app, &rotation("svc", Duration::hours(1), None))
        .unwrap()
        .new
        .id;
    end_grace(&w, &old.id);
    let mut req = revocation(&old.id);
    req.assume_yes = false;
    let err = finish(&w.app, 1, false, false)
        .err()
        .expect("asked, answered no");
    assert_eq!(kind_of(&err), Some(Kind::ConfirmationRequired), "{err:#}");
    assert!(w.record(&old.id).revoked_at.is_none());
    assert!(w.remote("r").holds(&old.id) && w.remote("r").holds(&new));
}

#[test]
fn doctor_fix_removes_only_orphans_past_their_grace_period() {
    use super::doctor::{DoctorRequest, diagnose};
    let w = world().build();
    let (k, _) = w.key("kept");
    // A secret no key owns, as a create killed before its registry write leaves.
    w.app
        .stores
        .get(crate::store::StoreKind::File)
        .unwrap()
        .set(
            "kcorphan",
            "label",
            &secrecy::SecretString::from("orphaned-secret-value"),
        )
        .unwrap();
    let req = |fix, orphan_grace| DoctorRequest {
        fix,
        assume_yes: true,
        orphan_grace,
        clashing_keyctl: None,
    };
    let r = diagnose(&w.app, &req(false, 0)).unwrap();
    assert_eq!(r.orphans, ["file:kcorphan"]);
    assert!(w.has_secret("kcorphan"));
    // Younger than the grace period: a command may still be writing its record.
    let r = diagnose(&w.app, &req(true, 3600)).unwrap();
    assert_eq!(r.orphans, ["file:kcorphan"]);
    assert!(w.has_secret("kcorphan"));
    let r = diagnose(&w.app, &req(true, 0)).unwrap();
    assert!(r.orphans.is_empty(), "{:?}", r.orphans);
    assert!(!w.has_secret("kcorphan") && w.has_secret(&k.id));
    assert_eq!(r.missing_secrets, Vec::<String>::new());
}

#[test]
fn a_token_is_issued_only_for_a_usable_key() {
    let w = world().remote("r").build();
    let k = w.pushed_key("svc", "r");
    let t = super::token::issue(&w.app, "svc", "r").unwrap();
    assert!(secrecy::ExposeSecret::expose_secret(&t.token).contains(&k.id));
    w.edit(&k.id, |r| {
        r.expires_at = Some(OffsetDateTime::now_utc() - Duration::DAY)
    });
    let before = w.remote("r").calls.len();
    let err = super::token::issue(&w.app, "svc", "r")
        .err()
        .expect("expired");
    assert_eq!(kind_of(&err), Some(Kind::Inactive));
    // The remote never saw the expired key's secret.
    assert_eq!(w.remote("r").calls.len(), before);
}

#[test]
fn deleting_a_successor_makes_the_replaced_key_usable_again() {
    use super::delete::{DeleteRequest, delete};
    let w = world().remote("r").build();
    let old = w.pushed_key("svc", "r");
    let new = rotate(&w.app, &rotation("svc", Duration::hours(1), None))
        .unwrap()
        .new
        .id;
    let req = |assume_yes| DeleteRequest {
        key: new.clone(),
        assume_yes,
    };
    // Asked and answered no: nothing changes.
    let no = World::answering_no(&w);
    assert_eq!(
        kind_of(&delete(&no, &req(false)).unwrap_err()),
        Some(Kind::ConfirmationRequired)
    );
    assert!(w.has_secret(&new));
    delete(&w.app, &req(false)).unwrap();
    assert!(!w.has_secret(&new));
    assert!(w.registry().keys().iter().all(|k| k.id != new));
    assert!(w.record(&old.id).superseded.is_none());
    assert_eq!(w.registry().resolve("svc").unwrap().id, old.id);
    // Deleting does not revoke: the remote still holds the deleted successor.
    assert!(w.remote("r").holds(&new));
}

#[test]
fn remote_add_saves_only_a_remote_that_logs_in_and_keeps_no_credential_otherwise() {
    use super::remotes::{AddRemote, add};
    let w = world().unsaved_remote("new").build();
    let cred = || Some(secrecy::SecretString::from("remote-login-password-1"));
    let req = |verify| AddRemote {
        name: "new".into(),
        config: super::testkit::config("new"),
        secret: cred(),
        verify,
        force: false,
    };
    let slot = crate::remote::credential_slot("new");
    w.remote("new").fail.insert("test");
    let err = add(&w.app, req(true)).expect_err("login refused");
    assert!(format!("{err:#}").contains("was not saved"), "{err:#}");
    assert!(!w.has_secret(&slot));
    assert!(!w.app.paths.config_file.exists());
    // --no-verify saves it without logging in.
    let (store, _) = add(&w.app, req(false)).unwrap();
    assert_eq!(store, crate::store::StoreKind::File);
    assert!(w.has_secret(&slot));
    let text = std::fs::read_to_string(&w.app.paths.config_file).unwrap();
    assert!(
        text.contains("new:") && !text.contains("remote-login-password-1"),
        "{text}"
    );
    assert_eq!(w.remote("new").calls, ["test"]);
}

#[test]
fn a_revoke_answered_no_changes_nothing_and_yes_revokes_without_asking() {
    let w = world().answering_no().build();
    let (k, _) = w.key("ci");
    let mut req = revocation("ci");
    req.assume_yes = false;
    let e = revoke(&w.app, &req).err().expect("answered no");
    assert_eq!(kind_of(&e), Some(Kind::ConfirmationRequired));
    assert!(w.record(&k.id).revoked_at.is_none() && w.has_secret(&k.id));
    // --yes answers without asking (the prompter would say no).
    let report = revoke(&w.app, &revocation("ci")).unwrap().unwrap();
    report.result.unwrap();
    assert!(report.done[0].revoked);
    assert!(w.record(&k.id).revoked_at.is_some() && !w.has_secret(&k.id));
}
