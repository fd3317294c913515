//! Workflows: what a command does, as plain requests in and results out, between the
//! command line (which turns clap's arguments into these requests and prints the
//! results) and the domain (keys, registry, stores, remotes, rendering). A workflow may
//! call another (`rotate` revokes through [`revoke`]); it never names clap or the
//! command context.

pub mod appcred;
pub mod catalog;
pub mod create;
pub mod deliver;
pub mod keys;
pub mod push;
pub mod revoke;
pub mod rotate;
