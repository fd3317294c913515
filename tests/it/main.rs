//! keyctl's end-to-end tests, in one test binary: one link, one set of shared fixtures
//! (`support`), and one Keystone for the whole run. Each module is one area of behaviour.

mod support;

mod bad_input;
mod concurrency;
mod contract;
mod deadline;
mod dry_run;
mod echo_masking;
mod fingerprints;
mod integrity;
mod leftovers;
mod local;
mod ownership;
mod platforms;
mod remote_faults;
mod remote_http;
mod remote_keystone;
mod remote_openstack;
mod remote_tls;
#[cfg(unix)]
mod render;
mod rotate;
mod rotate_team;
mod rotation_proof;
mod scan;
mod soda_cloud;
mod soda_core;
#[cfg(unix)]
mod terminal;
mod vault;
