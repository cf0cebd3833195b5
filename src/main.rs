/// mimalloc instead of glibc's malloc for the server's own allocations. On
/// 5 million events it raised ingestion from 15,716 to 20,245 events/s and
/// cut the export of a million events from 18.5 s to 13.5 s
/// (docs/benchmarks.md, run E). SQLite still allocates with glibc's malloc.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() {
    tune_allocators();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("cannot start the async runtime");
    let args: Vec<String> = std::env::args().skip(1).collect();
    let code = runtime.block_on(gatehouse::server::cli::run(args));
    // Exits without dropping the runtime, which would wait for any
    // blocking task still running.
    std::process::exit(code);
}

/// mimalloc's `purge_delay` (option 15 in mimalloc 2's `mi_option_e`).
const MI_OPTION_PURGE_DELAY: libmimalloc_sys::mi_option_t = 15;

/// Memory settings; a variable set by the operator wins over each.
/// - mimalloc hands freed memory back to the system 10 ms after the fact by
///   default; an export of a million events then peaked at 156 MB. Handed
///   back at once, it peaked at 134 MB.
/// - glibc's malloc (SQLite's allocations) gives threads that contend for
///   it arenas of their own, up to 8 per core, and seldom hands their free
///   pages back; there are many such threads (one per SQLite connection,
///   the checkpoint thread). Two arenas are enough.
fn tune_allocators() {
    if std::env::var_os("MIMALLOC_PURGE_DELAY").is_none() {
        // SAFETY: sets one mimalloc option (a plain store), before any
        // other thread of this process exists.
        unsafe { libmimalloc_sys::mi_option_set(MI_OPTION_PURGE_DELAY, 0) };
    }
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    if std::env::var_os("MALLOC_ARENA_MAX").is_none() {
        // SAFETY: mallopt only changes a malloc setting; it is called before
        // any other thread of this process exists.
        unsafe {
            libc::mallopt(libc::M_ARENA_MAX, 2);
        }
    }
}
