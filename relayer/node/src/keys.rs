//! Key material of a node: the ed25519 identity (it signs observations and echoes, and is the
//! libp2p identity, so a PeerId is a signer-set member or is refused) and the secp256k1 chain
//! account key, whose address is derived through cosmrs under the configured bech32 prefix.
//! Keys are stored as hex in files of mode 0600; secrets are zeroized when dropped.

use std::fs;
use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::Path;

use rand::RngCore;
use thiserror::Error;
use zeroize::Zeroizing;

/// Bech32 prefix of chain addresses on wasmd and on the embedded chain; Nyx uses `n`.
pub const DEFAULT_ACCOUNT_PREFIX: &str = "wasm";

/// Key file problems.
#[derive(Debug, Error)]
pub enum KeyError {
    /// Cannot read or write the file.
    #[error("key file {path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// The cause.
        source: std::io::Error,
    },
    /// Not 32 bytes of hex.
    #[error("key file {path} must hold 64 hex characters (a 32-byte secret)")]
    Format {
        /// The file.
        path: String,
    },
    /// Readable by others.
    #[error(
        "key file {path} has mode {mode:o}; it must not be readable by group or others (chmod 600)"
    )]
    Permissions {
        /// The file.
        path: String,
        /// Its mode.
        mode: u32,
    },
    /// Not a valid secp256k1 secret.
    #[error("key file {path} does not hold a valid secp256k1 secret")]
    InvalidSecp256k1 {
        /// The file.
        path: String,
    },
    /// A bech32 prefix cosmrs refuses (it must be lowercase ASCII letters and digits).
    #[error("account prefix {0:?} is not a valid bech32 prefix")]
    Prefix(String),
    /// Not a valid BIP39 English mnemonic (the phrase itself is never shown).
    #[error("not a valid BIP39 mnemonic: {0}")]
    Mnemonic(String),
}

/// The derivation path of Cosmos accounts (coin type 118), as wasmd's and Nyx's keyrings use.
pub const COSMOS_HD_PATH: &str = "m/44'/118'/0'/0/0";

/// A fresh 24-word BIP39 mnemonic from the OS's randomness.
pub fn new_mnemonic() -> Result<Zeroizing<String>, KeyError> {
    let mut entropy = Zeroizing::new([0u8; 32]);
    rand::rngs::OsRng.fill_bytes(entropy.as_mut_slice());
    let mnemonic = bip39::Mnemonic::from_entropy(entropy.as_slice())
        .map_err(|err| KeyError::Mnemonic(err.to_string()))?;
    Ok(Zeroizing::new(mnemonic.to_string()))
}

/// The chain secret a keyring derives from `phrase` at [`COSMOS_HD_PATH`] (no passphrase).
pub fn secret_from_mnemonic(phrase: &str) -> Result<Zeroizing<[u8; 32]>, KeyError> {
    let mnemonic = bip39::Mnemonic::parse_normalized(phrase.trim())
        .map_err(|err| KeyError::Mnemonic(err.to_string()))?;
    let seed = Zeroizing::new(mnemonic.to_seed_normalized(""));
    let path: cosmrs::bip32::DerivationPath = COSMOS_HD_PATH
        .parse()
        .map_err(|err: cosmrs::bip32::Error| KeyError::Mnemonic(err.to_string()))?;
    let xprv = cosmrs::bip32::XPrv::derive_from_path(seed.as_slice(), &path)
        .map_err(|err| KeyError::Mnemonic(err.to_string()))?;
    Ok(Zeroizing::new(xprv.private_key().to_bytes().into()))
}

/// A fresh random 32-byte secret.
pub fn random_secret() -> [u8; 32] {
    let mut secret = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut secret);
    secret
}

/// Writes a secret as hex to a new file of mode 0600 (refuses to overwrite).
pub fn write_secret(path: &Path, secret: &[u8; 32]) -> Result<(), KeyError> {
    write_private_file(path, Zeroizing::new(hex::encode(secret)).as_bytes())
}

/// Writes `bytes` to a new file of mode 0600 (refuses to overwrite). The bytes go to a
/// temporary file beside it, synced, which is then linked into place and its folder synced:
/// after a crash or power loss `path` is either absent or whole, never a truncated key.
pub fn write_private_file(path: &Path, bytes: &[u8]) -> Result<(), KeyError> {
    let io = |source| KeyError::Io {
        path: path.display().to_string(),
        source,
    };
    let folder = match path.parent() {
        Some(folder) if !folder.as_os_str().is_empty() => folder,
        _ => Path::new("."),
    };
    let name = path.file_name().ok_or_else(|| {
        io(std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            "not a file path",
        ))
    })?;
    let temporary = folder.join(format!(
        ".{}.{}.tmp",
        name.to_string_lossy(),
        hex::encode(&random_secret()[..8])
    ));
    let written = write_synced(&temporary, bytes).and_then(|()| fs::hard_link(&temporary, path));
    let _ = fs::remove_file(&temporary);
    written.map_err(io)?;
    fs::File::open(folder)
        .and_then(|dir| dir.sync_all())
        .map_err(io)
}

/// Writes `bytes` to a new file of mode 0600 and syncs it.
fn write_synced(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let mut file = fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)?;
    file.write_all(bytes)?;
    file.sync_all()
}

/// The mode of a secret file that group or others may access (`None` when only its owner
/// can), as key files and TLS keys are checked before they are read.
pub fn exposed_mode(path: &Path) -> std::io::Result<Option<u32>> {
    let mode = fs::metadata(path)?.permissions().mode() & 0o777;
    Ok((mode & 0o077 != 0).then_some(mode))
}

/// Reads a hex secret written by [`write_secret`], refusing files readable by others.
pub fn read_secret(path: &Path) -> Result<[u8; 32], KeyError> {
    let shown = path.display().to_string();
    let exposed = exposed_mode(path).map_err(|source| KeyError::Io {
        path: shown.clone(),
        source,
    })?;
    if let Some(mode) = exposed {
        return Err(KeyError::Permissions { path: shown, mode });
    }
    let text = Zeroizing::new(fs::read_to_string(path).map_err(|source| KeyError::Io {
        path: shown.clone(),
        source,
    })?);
    let bytes = Zeroizing::new(hex::decode(text.trim()).map_err(|_| KeyError::Format {
        path: shown.clone(),
    })?);
    <[u8; 32]>::try_from(bytes.as_slice()).map_err(|_| KeyError::Format { path: shown })
}

/// The chain account of a node: secp256k1 secret and its bech32 address.
#[derive(Clone)]
pub struct ChainAccount {
    secret: Zeroizing<[u8; 32]>,
    address: String,
}

impl std::fmt::Debug for ChainAccount {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "ChainAccount({})", self.address)
    }
}

impl ChainAccount {
    /// From a 32-byte secret, with its address under `prefix`; `None` when the secret is not
    /// a valid secp256k1 scalar or the prefix is not valid bech32.
    pub fn from_secret(secret: &[u8; 32], prefix: &str) -> Option<Self> {
        let key = cosmrs::crypto::secp256k1::SigningKey::from_slice(secret).ok()?;
        let address = key.public_key().account_id(prefix).ok()?.to_string();
        Some(Self {
            secret: Zeroizing::new(*secret),
            address,
        })
    }

    /// Reads the key file; the address is under `prefix`.
    pub fn from_file(path: &Path, prefix: &str) -> Result<Self, KeyError> {
        check_prefix(prefix)?;
        let secret = Zeroizing::new(read_secret(path)?);
        Self::from_secret(&secret, prefix).ok_or(KeyError::InvalidSecp256k1 {
            path: path.display().to_string(),
        })
    }

    /// The bech32 address (`wasm1...`, `n1...`).
    pub fn address(&self) -> &str {
        &self.address
    }

    /// The signing key, for transactions.
    pub fn signing_key(&self) -> Result<cosmrs::crypto::secp256k1::SigningKey, KeyError> {
        cosmrs::crypto::secp256k1::SigningKey::from_slice(self.secret.as_slice()).map_err(|_| {
            KeyError::InvalidSecp256k1 {
                path: self.address.clone(),
            }
        })
    }

    /// The 32-byte secret (zeroized when dropped).
    pub fn secret(&self) -> Zeroizing<[u8; 32]> {
        self.secret.clone()
    }
}

/// Checks that cosmrs accepts `prefix` as a bech32 account prefix.
pub fn check_prefix(prefix: &str) -> Result<(), KeyError> {
    cosmrs::AccountId::new(prefix, &[0; 20])
        .map(|_| ())
        .map_err(|_| KeyError::Prefix(prefix.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_round_trip_with_mode_0600() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("key");
        let secret = random_secret();
        write_secret(&path, &secret).unwrap();
        assert_eq!(
            fs::metadata(&path).unwrap().permissions().mode() & 0o777,
            0o600
        );
        assert_eq!(read_secret(&path).unwrap(), secret);
        assert!(
            write_secret(&path, &random_secret()).is_err(),
            "never overwrites a key"
        );
        assert_eq!(read_secret(&path).unwrap(), secret, "the first key stays");
        let names: Vec<_> = fs::read_dir(dir.path())
            .unwrap()
            .map(|entry| entry.unwrap().file_name())
            .collect();
        assert_eq!(names, ["key"], "no temporary file is left behind");
    }

    #[test]
    fn readable_key_files_and_garbage_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("key");
        write_secret(&path, &[7; 32]).unwrap();
        fs::set_permissions(&path, fs::Permissions::from_mode(0o644)).unwrap();
        assert!(matches!(
            read_secret(&path),
            Err(KeyError::Permissions { .. })
        ));
        fs::set_permissions(&path, fs::Permissions::from_mode(0o600)).unwrap();
        fs::write(&path, "zz").unwrap();
        assert!(matches!(read_secret(&path), Err(KeyError::Format { .. })));
    }

    #[test]
    fn addresses_follow_the_configured_prefix() {
        let wasm = ChainAccount::from_secret(&[1; 32], DEFAULT_ACCOUNT_PREFIX).unwrap();
        assert!(wasm.address().starts_with("wasm1"));
        assert_eq!(wasm.address().len(), 43);
        let nyx = ChainAccount::from_secret(&[1; 32], "n").unwrap();
        assert!(nyx.address().starts_with("n1"));
        let (_, wasm_bytes) = bech32_payload(wasm.address());
        let (_, nyx_bytes) = bech32_payload(nyx.address());
        assert_eq!(wasm_bytes, nyx_bytes, "one key, one account, two spellings");
        assert!(
            ChainAccount::from_secret(&[0; 32], "n").is_none(),
            "zero is not a valid scalar"
        );
        assert!(matches!(check_prefix("N Y X"), Err(KeyError::Prefix(_))));
        check_prefix("n").unwrap();
    }

    fn bech32_payload(address: &str) -> (String, Vec<u8>) {
        let id: cosmrs::AccountId = address.parse().unwrap();
        (id.prefix().to_string(), id.to_bytes())
    }

    #[test]
    fn a_mnemonic_derives_the_key_wasmds_keyring_derives() {
        // `wasmd keys add t --recover` with this phrase shows this address, and
        // `wasmd keys export t --unarmored-hex --unsafe` this secret.
        let phrase = format!("{} art", ["abandon"; 23].join(" "));
        let secret = secret_from_mnemonic(&phrase).unwrap();
        assert_eq!(
            hex::encode(secret.as_slice()),
            "8088c2ed2149c34f6d6533b774da4e1692eb5cb426fdbaef6898eeda489630b7"
        );
        let account = ChainAccount::from_secret(&secret, "wasm").unwrap();
        assert_eq!(
            account.address(),
            "wasm1r5v5srda7xfth3hn2s26txvrcrntldju3hkw75"
        );
        assert!(matches!(
            secret_from_mnemonic("abandon abandon art"),
            Err(KeyError::Mnemonic(_))
        ));
        let fresh = new_mnemonic().unwrap();
        assert_eq!(fresh.split_whitespace().count(), 24);
        assert_ne!(*secret_from_mnemonic(&fresh).unwrap(), *secret);
    }

    #[test]
    fn a_known_key_has_its_known_address() {
        // Secret 1 is the generator G; hash160(G) = 751e76e8...3bd6. The addresses were
        // computed apart from this code, with BIP-173's reference bech32 algorithm.
        let mut secret = [0u8; 32];
        secret[31] = 1;
        let address = |prefix| {
            ChainAccount::from_secret(&secret, prefix)
                .unwrap()
                .address()
                .to_string()
        };
        assert_eq!(
            address("wasm"),
            "wasm1w508d6qejxtdg4y5r3zarvary0c5xw7kspx0xn"
        );
        assert_eq!(address("n"), "n1w508d6qejxtdg4y5r3zarvary0c5xw7kgeqcsa");
    }
}
