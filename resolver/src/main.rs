//! The `sparkid` binary: see [`sparkid_resolver::cli`].

fn main() -> anyhow::Result<()> {
    sparkid_resolver::cli::run()
}
