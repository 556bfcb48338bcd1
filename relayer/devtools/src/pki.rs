//! A throwaway certificate authority for devnets, tests and the e2e run: a CA and one server
//! certificate for the given names (IP addresses or DNS names), as PEM files. Never for a real
//! network, where operators bring certificates from their own CA.

use std::path::{Path, PathBuf};

use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, KeyPair,
    KeyUsagePurpose,
};
use relayer_node::keys::write_private_file;

use crate::DevError;

/// The files of a [`DevPki`].
#[derive(Debug, Clone)]
pub struct PkiFiles {
    /// The CA certificate, to trust.
    pub ca: PathBuf,
    /// The server certificate chain.
    pub cert: PathBuf,
    /// The server key (mode 0600).
    pub key: PathBuf,
}

fn pki_error(err: rcgen::Error) -> DevError {
    DevError::Invalid(format!("generating a certificate: {err}"))
}

/// Writes a fresh CA and a server certificate for `names` into `dir`: `ca.pem`, `api.pem`
/// and `api.key`. Refuses to overwrite.
pub fn write_dev_pki(dir: &Path, names: &[&str]) -> Result<PkiFiles, DevError> {
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).map_err(pki_error)?;
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params
        .distinguished_name
        .push(DnType::CommonName, "relayer development CA");
    ca_params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    let ca_key = KeyPair::generate().map_err(pki_error)?;
    let ca = ca_params.self_signed(&ca_key).map_err(pki_error)?;

    let names: Vec<String> = names.iter().map(|name| name.to_string()).collect();
    let mut params = CertificateParams::new(names).map_err(pki_error)?;
    params
        .distinguished_name
        .push(DnType::CommonName, "relayer node API");
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    let key = KeyPair::generate().map_err(pki_error)?;
    let cert = params.signed_by(&key, &ca, &ca_key).map_err(pki_error)?;

    std::fs::create_dir_all(dir)
        .map_err(|err| DevError::io(format!("creating {}", dir.display()), err))?;
    let files = PkiFiles {
        ca: dir.join("ca.pem"),
        cert: dir.join("api.pem"),
        key: dir.join("api.key"),
    };
    write_private_file(&files.ca, ca.pem().as_bytes())?;
    write_private_file(&files.cert, cert.pem().as_bytes())?;
    write_private_file(&files.key, key.serialize_pem().as_bytes())?;
    Ok(files)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_files_load_as_a_server_config_and_a_trusted_root() {
        let dir = tempfile::tempdir().unwrap();
        let files = write_dev_pki(dir.path(), &["127.0.0.1", "localhost"]).unwrap();
        relayer_node::tls::server_config(&files.cert, &files.key).unwrap();
        assert_eq!(relayer_node::tls::extra_roots(&files.ca).unwrap().len(), 1);
        assert!(
            write_dev_pki(dir.path(), &["127.0.0.1"]).is_err(),
            "never overwrites"
        );
        let wrong_key = relayer_node::tls::server_config(&files.ca, &files.key);
        assert!(
            wrong_key.is_err(),
            "a key that is not the certificate's is refused"
        );
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&files.key, std::fs::Permissions::from_mode(0o644)).unwrap();
        assert!(matches!(
            relayer_node::tls::server_config(&files.cert, &files.key),
            Err(relayer_node::tls::TlsError::KeyPermissions { mode: 0o644, .. })
        ));
    }
}
