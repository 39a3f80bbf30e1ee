//! The `sparkid` binary: see [`sparkid::cli`].

// mimalloc rather than the system allocator: the read path allocates and frees small buffers
// on every request from several threads, where glibc's malloc showed up at ~10% of the warm
// path's profile (issue 3).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> anyhow::Result<()> {
    sparkid::cli::run()
}
