//! Key material of a node: the ed25519 identity (it signs observations and echoes, and is the
//! libp2p identity, so a PeerId is a signer-set member or is refused) and the secp256k1 chain
//! account key. Keys are stored as hex in files of mode 0600.

use std::fs;
use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::Path;

use bech32::{Bech32, Hrp};
use k256::ecdsa::SigningKey as ChainSigningKey;
use rand::RngCore;
use ripemd::Ripemd160;
use sha2::{Digest, Sha256};
use thiserror::Error;

/// Bech32 prefix of chain addresses, on wasmd and on the embedded chain alike.
pub const ADDRESS_PREFIX: &str = "wasm";

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
}

/// A fresh random 32-byte secret.
pub fn random_secret() -> [u8; 32] {
    let mut secret = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut secret);
    secret
}

/// Writes a secret as hex to a new file of mode 0600 (refuses to overwrite).
pub fn write_secret(path: &Path, secret: &[u8; 32]) -> Result<(), KeyError> {
    let io = |source| KeyError::Io {
        path: path.display().to_string(),
        source,
    };
    let mut file = fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .map_err(io)?;
    file.write_all(hex::encode(secret).as_bytes()).map_err(io)?;
    file.sync_all().map_err(io)
}

/// Reads a hex secret written by [`write_secret`], refusing files readable by others.
pub fn read_secret(path: &Path) -> Result<[u8; 32], KeyError> {
    let shown = path.display().to_string();
    let metadata = fs::metadata(path).map_err(|source| KeyError::Io {
        path: shown.clone(),
        source,
    })?;
    let mode = metadata.permissions().mode() & 0o777;
    if mode & 0o077 != 0 {
        return Err(KeyError::Permissions { path: shown, mode });
    }
    let text = fs::read_to_string(path).map_err(|source| KeyError::Io {
        path: shown.clone(),
        source,
    })?;
    let bytes = hex::decode(text.trim()).map_err(|_| KeyError::Format {
        path: shown.clone(),
    })?;
    bytes
        .try_into()
        .map_err(|_| KeyError::Format { path: shown })
}

/// The chain account of a node: secp256k1 key and its bech32 address.
#[derive(Clone)]
pub struct ChainAccount {
    key: ChainSigningKey,
    address: String,
}

impl std::fmt::Debug for ChainAccount {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "ChainAccount({})", self.address)
    }
}

impl ChainAccount {
    /// From a 32-byte secret; `None` when it is not a valid secp256k1 scalar.
    pub fn from_secret(secret: &[u8; 32]) -> Option<Self> {
        let key = ChainSigningKey::from_slice(secret).ok()?;
        let address = address_of(&key.verifying_key().to_encoded_point(true).to_bytes());
        Some(Self { key, address })
    }

    /// Reads the key file.
    pub fn from_file(path: &Path) -> Result<Self, KeyError> {
        let secret = read_secret(path)?;
        Self::from_secret(&secret).ok_or(KeyError::InvalidSecp256k1 {
            path: path.display().to_string(),
        })
    }

    /// The bech32 address (`wasm1...`).
    pub fn address(&self) -> &str {
        &self.address
    }

    /// The signing key, for transactions.
    pub fn signing_key(&self) -> &ChainSigningKey {
        &self.key
    }

    /// The 32-byte secret.
    pub fn secret(&self) -> [u8; 32] {
        self.key.to_bytes().into()
    }
}

/// Cosmos address of a compressed secp256k1 public key: bech32(ripemd160(sha256(pubkey))).
pub fn address_of(compressed_pubkey: &[u8]) -> String {
    let hash = Ripemd160::digest(Sha256::digest(compressed_pubkey));
    let hrp = Hrp::parse_unchecked(ADDRESS_PREFIX);
    bech32::encode::<Bech32>(hrp, &hash).unwrap_or_default()
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
            write_secret(&path, &secret).is_err(),
            "never overwrites a key"
        );
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
    fn addresses_are_bech32_wasm() {
        let account = ChainAccount::from_secret(&[1; 32]).unwrap();
        assert!(account.address().starts_with("wasm1"));
        assert_eq!(account.address().len(), 43);
        assert!(
            ChainAccount::from_secret(&[0; 32]).is_none(),
            "zero is not a valid scalar"
        );
    }
}
