//! The allocator's side of resident memory (glibc only; elsewhere these do nothing).
//!
//! A million checks are ~1 GB of small, long-lived allocations, replaced one result at a
//! time. glibc keeps what is freed for reuse, and by default gives threads up to eight
//! arenas per core: a first start's temporary structures, and statuses freed on another
//! worker thread than the one that made them, stay resident. Fewer arenas, and a trim now
//! and then (`trim`, from the supervision task), hand that memory back.
//!
//! Fewer arenas also means more threads waiting on one arena's lock. The ingest path
//! allocates a few dozen small strings per event on every request's parsing thread: with one
//! arena per core it spent a third of its time in malloc and free and lost about a quarter
//! of its rate (BENCHMARKS.md, "Durable ingest"). Four per core keeps that rate.

/// Arenas per core: the ingest rate with 1, 2 and 4 per core was about 75 %, 90 % and 100 %
/// of the rate with glibc's default of 8.
const ARENAS_PER_CORE: usize = 4;

/// Allocations from this size up get pages of their own, handed back when freed.
///
/// glibc starts at 128 KiB but raises the bound to the size of each such block freed, up to
/// 32 MiB: after the first large tables and request buffers came and went, the next ones
/// were carved from the arenas among long-lived alerts and, freed, left holes there that
/// `trim` could not return. With the bound fixed, the notify bench's RSS at 100,000 active
/// alerts went from 169–190 MiB (one mode or the other, run to run) to 159–163 MiB, with no
/// measurable cost to the ingest rate (BENCHMARKS.md, "Alert → notification").
const MMAP_THRESHOLD: libc::c_int = 256 << 10;

/// Caps glibc's malloc arenas at [`ARENAS_PER_CORE`] per core and fixes the size from which
/// blocks are mapped on their own ([`MMAP_THRESHOLD`]). Call before any thread starts.
pub fn tune_allocator() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        let arenas = libc::c_int::try_from(cores * ARENAS_PER_CORE).unwrap_or(libc::c_int::MAX);
        // SAFETY: `mallopt` only sets tunables of the allocator.
        unsafe {
            libc::mallopt(libc::M_ARENA_MAX, arenas);
            libc::mallopt(libc::M_MMAP_THRESHOLD, MMAP_THRESHOLD);
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
