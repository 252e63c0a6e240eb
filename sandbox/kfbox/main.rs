// jemalloc with its background thread gives freed memory back to the system within seconds:
// a server that ran (and terminated) a run of thousands of steps returns to about its idle
// size, where glibc's allocator keeps what its per-thread arenas once held (9x idle, measured
// by `tests/safety/limits.rs`).
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

fn main() -> std::process::ExitCode {
    kfbox_app::main()
}
