//! `pgext-node`: runs a pgext registry node.

fn main() {
    println!("pgext-node {}", env!("CARGO_PKG_VERSION"));
    println!("The registry node is being built; see README.md for what works today.");
}
