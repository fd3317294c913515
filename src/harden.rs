//! Process hardening that has to happen before any secret is in memory: a crashing
//! keyctl must not leave a core file with the secret it held. On Linux the process is made
//! non-dumpable (no core file, no ptrace or /proc/PID/mem reads by other processes of the
//! same user) and its core size limit is 0; on other Unix systems the core limit is 0.

/// Called first thing in `run`.
pub(crate) fn no_core_dumps() {
    #[cfg(unix)]
    // SAFETY: setrlimit and prctl take plain values and touch no Rust memory.
    unsafe {
        let zero = libc::rlimit {
            rlim_cur: 0,
            rlim_max: 0,
        };
        libc::setrlimit(libc::RLIMIT_CORE, &zero);
        #[cfg(target_os = "linux")]
        libc::prctl(libc::PR_SET_DUMPABLE, 0, 0, 0, 0);
    }
}

/// Whether this process could dump core now (`doctor` reports it): None where unknown.
pub(crate) fn core_dumps_possible() -> Option<bool> {
    #[cfg(target_os = "linux")]
    // SAFETY: as above.
    unsafe {
        let dumpable = libc::prctl(libc::PR_GET_DUMPABLE, 0, 0, 0, 0) != 0;
        let mut lim = libc::rlimit {
            rlim_cur: 0,
            rlim_max: 0,
        };
        libc::getrlimit(libc::RLIMIT_CORE, &mut lim);
        Some(dumpable && lim.rlim_cur != 0)
    }
    #[cfg(not(target_os = "linux"))]
    None
}
