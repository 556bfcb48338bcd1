//! The `relayer` binary (filled in by the relayer work).

fn main() {
    println!("relayer: not yet implemented");
}
