//! Process resources the benchmark needs: CPU time and the open-files limit.

use crate::DevError;

/// User plus system CPU time of this process so far, seconds.
pub fn cpu_seconds() -> f64 {
    let mut usage = std::mem::MaybeUninit::<libc::rusage>::zeroed();
    // SAFETY: getrusage writes a rusage into the valid, writable pointer it is given.
    let rc = unsafe { libc::getrusage(libc::RUSAGE_SELF, usage.as_mut_ptr()) };
    if rc != 0 {
        return 0.0;
    }
    // SAFETY: rc == 0 means the struct was filled in (and it was zeroed before).
    let usage = unsafe { usage.assume_init() };
    let seconds = |tv: libc::timeval| tv.tv_sec as f64 + tv.tv_usec as f64 / 1e6;
    seconds(usage.ru_utime) + seconds(usage.ru_stime)
}

/// Raises the soft RLIMIT_NOFILE to at least `needed`, or fails saying how to raise the
/// hard limit. Returns the soft limit in force afterwards.
pub fn raise_open_files_limit(needed: u64) -> Result<u64, DevError> {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit writes into the valid rlimit it is given.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) } != 0 {
        return Err(DevError::Resources(
            "cannot read the open-files limit".into(),
        ));
    }
    if limit.rlim_cur >= needed {
        return Ok(limit.rlim_cur);
    }
    if limit.rlim_max < needed {
        return Err(DevError::Resources(format!(
            "this benchmark needs {needed} open files but the hard limit is {}; \
             raise it (e.g. `ulimit -Hn {needed}` as root, or LimitNOFILE in systemd)",
            limit.rlim_max
        )));
    }
    let raised = libc::rlimit {
        rlim_cur: needed,
        rlim_max: limit.rlim_max,
    };
    // SAFETY: setrlimit reads the valid rlimit it is given.
    if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &raised) } != 0 {
        return Err(DevError::Resources(format!(
            "cannot raise the open-files limit to {needed}"
        )));
    }
    Ok(needed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpu_time_grows_with_work() {
        let before = cpu_seconds();
        let mut x = 0u64;
        for i in 0..20_000_000u64 {
            x = x.wrapping_mul(31).wrapping_add(i);
        }
        std::hint::black_box(x);
        assert!(cpu_seconds() > before);
    }

    #[test]
    fn the_limit_is_raised_or_refused_clearly() {
        assert!(raise_open_files_limit(64).unwrap() >= 64);
        // Beyond any hard limit (or, with an unlimited hard limit, beyond the kernel's nr_open).
        let err = raise_open_files_limit(u64::MAX).unwrap_err().to_string();
        assert!(err.contains("open"), "{err}");
    }
}
