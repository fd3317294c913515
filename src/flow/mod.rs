//! Workflows: what a command does, as plain requests in and results out, between the
//! command line (which turns clap's arguments into these requests and prints the
//! results) and the domain (keys, registry, stores, remotes, rendering). A workflow may
//! call another (`rotate` revokes through [`revoke`]); it never names clap or the
//! command context.

pub(crate) mod appcred;
pub(crate) mod catalog;
pub(crate) mod create;
pub(crate) mod delete;
pub(crate) mod deliver;
pub(crate) mod doctor;
pub(crate) mod keys;
pub(crate) mod known_keys;
pub(crate) mod push;
pub(crate) mod remotes;
pub(crate) mod revoke;
pub(crate) mod rotate;
pub(crate) mod targets;
#[cfg(test)]
pub(crate) mod testkit;
#[cfg(test)]
mod tests;
pub(crate) mod token;
pub(crate) mod verify;
