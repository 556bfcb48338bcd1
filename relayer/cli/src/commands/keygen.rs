//! `relayer keygen`: a fresh ed25519 key.

use std::path::PathBuf;

/// Arguments of `relayer keygen`.
#[derive(clap::Args)]
#[command(
    after_help = "Example:\n  relayer keygen --out keys/signing.ed25519   (relayer keys create makes both keys)"
)]
pub struct Args {
    /// Secret key file to create (mode 0600).
    #[arg(long)]
    out: PathBuf,
}

/// Writes the secret and prints the public key.
pub fn run(args: Args) -> anyhow::Result<()> {
    let secret = relayer_node::keys::random_secret();
    relayer_node::keys::write_secret(&args.out, &secret)?;
    println!(
        "{}",
        hex::encode(relayer_protocol::Keypair::from_seed(&secret).public())
    );
    Ok(())
}
