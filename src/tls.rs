//! The API's TLS: a cluster CA made at first start, the server certificate it signs, and
//! the rustls configurations of the server and of clients that trust that CA.
//!
//! The CA also issues nodes' identities and the API server's client identity towards nodes
//! (`identity`).
//!
//! Files under `<data-dir>/tls/`: `ca.crt`, `ca.key`, `server.crt`, `server.key` (keys mode
//! 0600). They are reused across starts; the server certificate is made anew when it no
//! longer verifies under the CA for every address it must serve (a new bind address, an
//! expired certificate, a new CA).

use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer as CaIssuer,
    KeyPair, KeyUsagePurpose,
};
use rustls::client::WebPkiServerVerifier;
use rustls::client::danger::ServerCertVerifier;
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::{ClientConfig, RootCertStore, ServerConfig};

mod identity;

pub use identity::{
    API_SERVER_CLIENT, Identity, Issuer, NODES_ORGANIZATION, identity_client_config,
    listener_config,
};

/// The CA's subject; a server certificate re-signed later names it as its issuer.
const CA_COMMON_NAME: &str = "wasmkube-ca";
const CA_VALID_DAYS: u64 = 3650;
const SERVER_VALID_DAYS: u64 = 365;

/// Why the TLS material could not be made, read or used.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("cannot read {}: {source}", path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot write {}: {source}", path.display())]
    Write {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot generate a certificate: {0}")]
    Generate(#[from] rcgen::Error),
    #[error("invalid PEM ({what}): {message}")]
    Pem { what: &'static str, message: String },
    #[error("TLS configuration failed: {0}")]
    Config(#[from] rustls::Error),
    #[error("the new server certificate does not verify under the CA: {0}")]
    Unverified(String),
}

/// The CA certificate and the server's certificate and key, in PEM.
#[derive(Clone)]
pub struct Material {
    pub ca_pem: String,
    pub server_cert_pem: String,
    pub server_key_pem: String,
}

impl std::fmt::Debug for Material {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Material").finish_non_exhaustive()
    }
}

/// The crypto every config here uses: ring (aws-lc-rs needs cmake to build).
fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// The addresses the server certificate names: loopback, `localhost`, and the bind IP when
/// it is a specific one.
pub fn server_names(bind: SocketAddr) -> Vec<String> {
    let mut names = vec![
        Ipv4Addr::LOCALHOST.to_string(),
        Ipv6Addr::LOCALHOST.to_string(),
        "localhost".to_string(),
    ];
    let ip = bind.ip();
    if !ip.is_unspecified() && !ip.is_loopback() {
        names.push(ip.to_string());
    }
    names
}

/// Reads the TLS material under `dir`, making what is missing or stale: the CA on first
/// start, the server certificate whenever it does not cover `bind`.
///
/// # Errors
/// When files cannot be read or written, or a certificate cannot be generated.
pub fn load_or_create(dir: &Path, bind: SocketAddr) -> Result<Material, TlsError> {
    std::fs::create_dir_all(dir).map_err(|source| TlsError::Write {
        path: dir.to_path_buf(),
        source,
    })?;
    let (ca_pem, ca_key) = load_or_create_ca(dir)?;
    let names = server_names(bind);
    let cert_path = dir.join("server.crt");
    let key_path = dir.join("server.key");
    if let (Ok(cert), Ok(key)) = (
        std::fs::read_to_string(&cert_path),
        std::fs::read_to_string(&key_path),
    ) && KeyPair::from_pem(&key).is_ok()
        && covers(&ca_pem, &cert, &names)
    {
        return Ok(Material {
            ca_pem,
            server_cert_pem: cert,
            server_key_pem: key,
        });
    }
    let (cert, key) = issue_server_cert(&ca_key, &names)?;
    if !covers(&ca_pem, &cert, &names) {
        return Err(TlsError::Unverified(format!("names {names:?}")));
    }
    write(&key_path, &key, true)?;
    write(&cert_path, &cert, false)?;
    Ok(Material {
        ca_pem,
        server_cert_pem: cert,
        server_key_pem: key,
    })
}

/// The CA certificate and key from `dir`, or a new pair written there.
fn load_or_create_ca(dir: &Path) -> Result<(String, KeyPair), TlsError> {
    let cert_path = dir.join("ca.crt");
    let key_path = dir.join("ca.key");
    if let (Ok(cert), Ok(key)) = (
        std::fs::read_to_string(&cert_path),
        std::fs::read_to_string(&key_path),
    ) && let Ok(key) = KeyPair::from_pem(&key)
        && CertificateDer::from_pem_slice(cert.as_bytes()).is_ok()
    {
        return Ok((cert, key));
    }
    let key = KeyPair::generate()?;
    let mut params = ca_params();
    set_validity(&mut params, CA_VALID_DAYS);
    let cert = params.self_signed(&key)?.pem();
    write(&key_path, &key.serialize_pem(), true)?;
    write(&cert_path, &cert, false)?;
    Ok((cert, key))
}

/// What the CA certificate says of its subject; enough to sign with it again later.
fn ca_params() -> CertificateParams {
    let mut params = CertificateParams::default();
    params
        .distinguished_name
        .push(DnType::CommonName, CA_COMMON_NAME);
    params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    params
}

/// A server certificate and key for `names`, signed by the CA key.
fn issue_server_cert(ca_key: &KeyPair, names: &[String]) -> Result<(String, String), TlsError> {
    let issuer = CaIssuer::new(ca_params(), ca_key);
    let key = KeyPair::generate()?;
    let mut params = CertificateParams::new(names.to_vec())?;
    params
        .distinguished_name
        .push(DnType::CommonName, "wasmkube-apiserver");
    params.key_usages = vec![
        KeyUsagePurpose::DigitalSignature,
        KeyUsagePurpose::KeyEncipherment,
    ];
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    params.use_authority_key_identifier_extension = true;
    set_validity(&mut params, SERVER_VALID_DAYS);
    let cert = params.signed_by(&key, &issuer)?;
    Ok((cert.pem(), key.serialize_pem()))
}

/// Valid from yesterday (for clocks a little behind) for `days` days.
fn set_validity(params: &mut CertificateParams, days: u64) {
    use chrono::Datelike;
    let today = chrono::Utc::now().date_naive();
    let ymd = |day: chrono::NaiveDate| {
        rcgen::date_time_ymd(day.year(), day.month() as u8, day.day() as u8)
    };
    params.not_before = ymd(today - chrono::Days::new(1));
    params.not_after = ymd(today + chrono::Days::new(days));
}

/// Whether `cert_pem` verifies under `ca_pem`, today, for every one of `names`.
fn covers(ca_pem: &str, cert_pem: &str, names: &[String]) -> bool {
    let Ok(roots) = root_store(ca_pem) else {
        return false;
    };
    let Ok(verifier) =
        WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider()).build()
    else {
        return false;
    };
    let Ok(cert) = CertificateDer::from_pem_slice(cert_pem.as_bytes()) else {
        return false;
    };
    names.iter().all(|name| {
        ServerName::try_from(name.as_str()).is_ok_and(|server| {
            verifier
                .verify_server_cert(&cert, &[], &server, &[], UnixTime::now())
                .is_ok()
        })
    })
}

/// The rustls server configuration: the server certificate, HTTP/1.1 by ALPN.
///
/// # Errors
/// When the PEM does not parse or the key does not fit the certificate.
pub fn server_config(material: &Material) -> Result<Arc<ServerConfig>, TlsError> {
    let chain = CertificateDer::pem_slice_iter(material.server_cert_pem.as_bytes())
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| pem_error("server certificate", e))?;
    let key = PrivateKeyDer::from_pem_slice(material.server_key_pem.as_bytes())
        .map_err(|e| pem_error("server key", e))?;
    let mut config = ServerConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()?
        .with_no_client_auth()
        .with_single_cert(chain, key)?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

/// A rustls client configuration that trusts only the CA(s) in `ca_pem` (no ALPN: the
/// caller's connector sets it).
///
/// # Errors
/// When `ca_pem` holds no valid certificate.
pub fn client_config(ca_pem: &str) -> Result<ClientConfig, TlsError> {
    Ok(client_config_trusting(root_store(ca_pem)?))
}

/// A rustls client configuration that trusts no server: for a client given no CA, whose
/// `https://` requests then fail verification rather than trust blindly.
pub fn client_config_trusting_nothing() -> ClientConfig {
    client_config_trusting(RootCertStore::empty())
}

fn client_config_trusting(roots: RootCertStore) -> ClientConfig {
    ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .expect("ring supports the default protocol versions")
        .with_root_certificates(roots)
        .with_no_client_auth()
}

fn root_store(ca_pem: &str) -> Result<RootCertStore, TlsError> {
    let mut roots = RootCertStore::empty();
    for cert in CertificateDer::pem_slice_iter(ca_pem.as_bytes()) {
        roots.add(cert.map_err(|e| pem_error("CA certificate", e))?)?;
    }
    if roots.is_empty() {
        return Err(TlsError::Pem {
            what: "CA certificate",
            message: "no certificate found".into(),
        });
    }
    Ok(roots)
}

fn pem_error(what: &'static str, error: rustls::pki_types::pem::Error) -> TlsError {
    TlsError::Pem {
        what,
        message: error.to_string(),
    }
}

fn write(path: &Path, contents: &str, private: bool) -> Result<(), TlsError> {
    let written = if private {
        crate::atomic_file::write_private(path, contents.as_bytes())
    } else {
        crate::atomic_file::write_public(path, contents.as_bytes())
    };
    written.map_err(|source| TlsError::Write {
        path: path.to_path_buf(),
        source,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bind(addr: &str) -> SocketAddr {
        addr.parse().unwrap()
    }

    #[test]
    fn first_start_makes_a_ca_and_a_server_certificate_that_verifies_under_it() {
        let dir = tempfile::tempdir().unwrap();
        let material = load_or_create(dir.path(), bind("127.0.0.1:0")).unwrap();
        assert!(covers(
            &material.ca_pem,
            &material.server_cert_pem,
            &server_names(bind("127.0.0.1:0"))
        ));
        use std::os::unix::fs::PermissionsExt;
        for key in ["ca.key", "server.key"] {
            let mode = std::fs::metadata(dir.path().join(key))
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600, "{key}");
        }
        server_config(&material).unwrap();
        client_config(&material.ca_pem).unwrap();
    }

    #[test]
    fn later_starts_reuse_the_material() {
        let dir = tempfile::tempdir().unwrap();
        let first = load_or_create(dir.path(), bind("127.0.0.1:6443")).unwrap();
        let second = load_or_create(dir.path(), bind("0.0.0.0:6443")).unwrap();
        assert_eq!(first.ca_pem, second.ca_pem);
        assert_eq!(first.server_cert_pem, second.server_cert_pem);
    }

    #[test]
    fn a_new_bind_address_gets_a_new_server_certificate_from_the_same_ca() {
        let dir = tempfile::tempdir().unwrap();
        let first = load_or_create(dir.path(), bind("127.0.0.1:6443")).unwrap();
        let second = load_or_create(dir.path(), bind("10.1.2.3:6443")).unwrap();
        assert_eq!(first.ca_pem, second.ca_pem);
        assert_ne!(first.server_cert_pem, second.server_cert_pem);
        assert!(covers(
            &second.ca_pem,
            &second.server_cert_pem,
            &["10.1.2.3".to_string(), "localhost".to_string()]
        ));
    }

    #[test]
    fn a_certificate_from_another_ca_is_replaced() {
        let dir = tempfile::tempdir().unwrap();
        let other = tempfile::tempdir().unwrap();
        let ours = load_or_create(dir.path(), bind("127.0.0.1:0")).unwrap();
        let theirs = load_or_create(other.path(), bind("127.0.0.1:0")).unwrap();
        std::fs::write(dir.path().join("server.crt"), &theirs.server_cert_pem).unwrap();
        std::fs::write(dir.path().join("server.key"), &theirs.server_key_pem).unwrap();
        let again = load_or_create(dir.path(), bind("127.0.0.1:0")).unwrap();
        assert_eq!(again.ca_pem, ours.ca_pem);
        assert_ne!(again.server_cert_pem, theirs.server_cert_pem);
    }
}
