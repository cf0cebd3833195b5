fn main() {
    limit_malloc_arenas();
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().expect("cannot start the async runtime");
    let args: Vec<String> = std::env::args().skip(1).collect();
    let code = runtime.block_on(gatehouse::server::cli::run(args));
    drop(runtime);
    std::process::exit(code);
}

/// glibc's malloc gives threads that contend for it arenas of their own (up
/// to 8 per core) and seldom hands their free pages back. The server has
/// many threads that allocate (the async workers, one per SQLite
/// connection, the checkpoint thread): ingesting 5 million events took its
/// resident memory to 172 MB, and it stayed there; with two arenas, 129 MB
/// (docs/benchmarks.md, run E). `MALLOC_ARENA_MAX` set by the operator wins.
fn limit_malloc_arenas() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    if std::env::var_os("MALLOC_ARENA_MAX").is_none() {
        // SAFETY: mallopt only changes a malloc setting; it is called before
        // any other thread of this process exists.
        unsafe {
            libc::mallopt(libc::M_ARENA_MAX, 2);
        }
    }
}
