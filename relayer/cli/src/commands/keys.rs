//! `relayer keys`: an operator's own keys, made on the operator's machine. The chain key comes
//! from a BIP39 mnemonic (created here and shown once, or restored from one), derived at
//! `m/44'/118'/0'/0/0` as wasmd's and Nyx's keyrings do; the signing key is ed25519 (the
//! node's identity and its signatures). Both are stored as hex in files of mode 0600 and are
//! never overwritten. Secrets read from stdin or the environment are zeroized after use.

use std::io::Read;
use std::path::{Path, PathBuf};

use anyhow::Context;
use clap::Subcommand;
use relayer_node::config::NodeConfig;
use relayer_node::keys::{
    ChainAccount, DEFAULT_ACCOUNT_PREFIX, KeyError, new_mnemonic, random_secret, read_secret,
    secret_from_mnemonic, write_secret,
};
use relayer_protocol::Keypair;
use zeroize::Zeroizing;

/// Arguments of `relayer keys`.
#[derive(clap::Args)]
#[command(after_help = "Example:\n  relayer keys create --dir ~/.relayer/keys --account-prefix n")]
pub struct Args {
    #[command(subcommand)]
    what: What,
}

#[derive(Subcommand)]
enum What {
    /// Create both keys in DIR: `chain.secp256k1` from a new 24-word mnemonic (printed once:
    /// write it down) and `signing.ed25519`.
    #[command(
        after_help = "Example:\n  relayer keys create --dir ~/.relayer/keys --account-prefix n"
    )]
    Create {
        /// Directory for the key files (created if missing).
        #[arg(long)]
        dir: PathBuf,
        /// Bech32 prefix of the address shown (`n` on Nyx).
        #[arg(long, default_value = DEFAULT_ACCOUNT_PREFIX)]
        account_prefix: String,
    },
    /// Restore the chain key from a mnemonic read from `RELAYER_MNEMONIC` or stdin.
    #[command(
        after_help = "Example:\n  relayer keys restore --chain-key ~/.relayer/keys/chain.secp256k1 --account-prefix n < mnemonic.txt"
    )]
    Restore {
        /// The chain key file to write.
        #[arg(long)]
        chain_key: PathBuf,
        /// Bech32 prefix of the address shown.
        #[arg(long, default_value = DEFAULT_ACCOUNT_PREFIX)]
        account_prefix: String,
    },
    /// Import an ed25519 signing secret (64 hex characters) from `RELAYER_SIGNING_SECRET` or
    /// stdin.
    #[command(
        after_help = "Example:\n  relayer keys import-signing --signing-key ~/.relayer/keys/signing.ed25519 < old-key.hex"
    )]
    ImportSigning {
        /// The signing key file to write.
        #[arg(long)]
        signing_key: PathBuf,
    },
    /// Show a node's address, signing public key and peer id (no secrets).
    #[command(after_help = "Example:\n  relayer keys show --config ~/.relayer/config.toml")]
    Show {
        /// The node config naming the key files and the account prefix.
        #[arg(long)]
        config: PathBuf,
    },
}

/// Runs the subcommand.
pub fn run(args: Args) -> anyhow::Result<()> {
    match args.what {
        What::Create {
            dir,
            account_prefix,
        } => create(&dir, &account_prefix),
        What::Restore {
            chain_key,
            account_prefix,
        } => {
            let phrase = secret_input("RELAYER_MNEMONIC", "the mnemonic")?;
            let secret = secret_from_mnemonic(&phrase)?;
            let account = write_chain_key(&chain_key, &secret, &account_prefix)?;
            println!("address {}", account.address());
            Ok(())
        }
        What::ImportSigning { signing_key } => {
            let text = secret_input("RELAYER_SIGNING_SECRET", "the signing secret")?;
            let decoded = Zeroizing::new(hex::decode(text.trim()).unwrap_or_default());
            let bytes = Zeroizing::new(
                <[u8; 32]>::try_from(decoded.as_slice())
                    .ok()
                    .context("the signing secret must be 64 hex characters")?,
            );
            write_secret(&signing_key, &bytes)?;
            print_signing_key(&bytes)
        }
        What::Show { config } => show(&config),
    }
}

fn create(dir: &Path, prefix: &str) -> anyhow::Result<()> {
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let chain_key = dir.join("chain.secp256k1");
    let signing_key = dir.join("signing.ed25519");
    for file in [&chain_key, &signing_key] {
        if file.exists() {
            return Err(crate::exit::UsageError(format!(
                "{} exists; keys are never overwritten",
                file.display()
            ))
            .into());
        }
    }
    let phrase = new_mnemonic()?;
    let account = write_chain_key(&chain_key, &secret_from_mnemonic(&phrase)?, prefix)?;
    let signing = Zeroizing::new(random_secret());
    write_secret(&signing_key, &signing)?; // written whole, its folder synced
    eprintln!(
        "Write down this mnemonic and keep it offline: it restores the chain key \
         (relayer keys restore). It is not stored and will not be shown again.\n"
    );
    println!("mnemonic {}", phrase.as_str());
    println!("chain key {}", chain_key.display());
    println!("address {}", account.address());
    println!("signing key {}", signing_key.display());
    print_signing_key(&signing)
}

fn write_chain_key(
    path: &Path,
    secret: &Zeroizing<[u8; 32]>,
    prefix: &str,
) -> anyhow::Result<ChainAccount> {
    let account =
        ChainAccount::from_secret(secret, prefix).ok_or_else(|| KeyError::InvalidSecp256k1 {
            path: path.display().to_string(),
        })?;
    write_secret(path, secret)?;
    Ok(account)
}

fn print_signing_key(secret: &[u8; 32]) -> anyhow::Result<()> {
    let public = Keypair::from_seed(secret).public();
    println!("ed25519 public key {}", hex::encode(public));
    println!("peer id {}", relayer_node::net::peer_id_of(&public)?);
    Ok(())
}

fn show(config_path: &Path) -> anyhow::Result<()> {
    let config = NodeConfig::load(config_path)?;
    let account =
        ChainAccount::from_file(&config.node.chain_key_file, &config.chain.account_prefix)?;
    println!("address {}", account.address());
    let signing = Zeroizing::new(read_secret(&config.node.ed25519_key_file)?);
    print_signing_key(&signing)
}

/// A secret from the environment variable `var`, else from stdin (a pipe or a file, never
/// echoed); zeroized when dropped.
fn secret_input(var: &str, what: &str) -> anyhow::Result<Zeroizing<String>> {
    if let Ok(value) = std::env::var(var) {
        return Ok(Zeroizing::new(value));
    }
    let mut text = Zeroizing::new(String::new());
    std::io::stdin()
        .read_to_string(&mut text)
        .with_context(|| format!("reading {what} from stdin"))?;
    if text.trim().is_empty() {
        return Err(crate::exit::UsageError(format!("give {what} on stdin or in {var}")).into());
    }
    Ok(text)
}
