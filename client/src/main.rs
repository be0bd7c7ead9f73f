//! `pgext`: find, verify and install PostgreSQL extensions. The command line lives in the
//! library (`pgext::cmd`); this is its entry point.

fn main() -> std::process::ExitCode {
    pgext::cmd::main()
}
