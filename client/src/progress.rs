//! How long work reports while it runs: the binary draws bars from it, tests stay quiet.

/// What a long step reports while it runs; the binary draws bars from it.
pub trait Progress: Send + Sync {
    /// A step begins (`downloading`, `make`, …).
    fn step(&self, _what: &str) {}
    /// Bytes of a download so far, of `total` when known.
    fn bytes(&self, _done: u64, _total: Option<u64>) {}
    /// The current step ended.
    fn done(&self) {}
    /// Something the user should read (a yanked version, an unverified source).
    fn warn(&self, _message: &str) {}
    /// A choice the user should know the reason of (a source build where a binary was hoped for).
    fn note(&self, _message: &str) {}
}

/// Reports nothing.
#[derive(Debug, Default, Clone, Copy)]
pub struct Quiet;
impl Progress for Quiet {}
