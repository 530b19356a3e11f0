//! The allocator's side of resident memory (glibc only; elsewhere these do nothing).
//!
//! A million checks are ~1 GB of small, long-lived allocations, replaced one result at a
//! time. glibc keeps what is freed for reuse, and by default gives threads up to eight
//! arenas per core: a first start's temporary structures, and statuses freed on another
//! worker thread than the one that made them, stay resident. One arena per core, and a trim
//! now and then (`trim`, from the supervision task), hand that memory back.

/// One malloc arena per core. Call before any thread starts.
pub fn limit_arenas() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        let arenas = libc::c_int::try_from(cores).unwrap_or(libc::c_int::MAX);
        // SAFETY: `mallopt` only sets a tunable of the allocator.
        unsafe {
            libc::mallopt(libc::M_ARENA_MAX, arenas);
        }
    }
}

/// Returns the free pages of every arena to the system. Walks the whole heap under the
/// arenas' locks (milliseconds on a gigabyte): call it off the async workers, not often.
pub fn trim() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: `malloc_trim` only releases memory the allocator holds free.
    unsafe {
        libc::malloc_trim(0);
    }
}
