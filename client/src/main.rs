//! `pgext`: find, verify and install PostgreSQL extensions.

fn main() {
    println!("pgext {}", env!("CARGO_PKG_VERSION"));
    println!("The client is being built; see README.md for what works today.");
}
