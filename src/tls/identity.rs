//! Identities the cluster CA issues besides the API's server certificate: each node's (serving
//! its listener, opening tunnels to other nodes) and the API server's own towards nodes. A node's
//! listener takes only clients with such a certificate — the CA signs no other client
//! certificate, so that is "only nodes and the API server".

use std::net::IpAddr;
use std::path::Path;
use std::sync::Arc;

use rcgen::{CertificateParams, DnType, ExtendedKeyUsagePurpose, Issuer as CaIssuer, KeyPair};
use rcgen::{KeyUsagePurpose, SanType};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::WebPkiClientVerifier;
use rustls::{ClientConfig, ServerConfig};

use super::{
    SERVER_VALID_DAYS, TlsError, ca_params, load_or_create_ca, pem_error, provider, root_store,
    set_validity,
};

/// The organisation of node certificates (Kubernetes' group of kubelets).
pub const NODES_ORGANIZATION: &str = "system:nodes";
/// The API server's client identity towards nodes (kube-apiserver's name for it).
pub const API_SERVER_CLIENT: &str = "kube-apiserver-kubelet-client";

/// A certificate the cluster CA issued, its key, and the CA itself.
#[derive(Clone)]
pub struct Identity {
    pub ca_pem: String,
    pub cert_pem: String,
    pub key_pem: String,
}

impl std::fmt::Debug for Identity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Identity").finish_non_exhaustive()
    }
}

/// The cluster CA as a signer of identities.
pub struct Issuer {
    ca_pem: String,
    ca_key: KeyPair,
}

impl Issuer {
    /// The CA under `dir` (made on first start, see [`super::load_or_create`]).
    ///
    /// # Errors
    /// When the CA files cannot be read or written.
    pub fn load(dir: &Path) -> Result<Issuer, TlsError> {
        let (ca_pem, ca_key) = load_or_create_ca(dir)?;
        Ok(Issuer { ca_pem, ca_key })
    }

    pub fn ca_pem(&self) -> &str {
        &self.ca_pem
    }

    /// Node `name`'s identity, valid for `addresses` (where others reach it) and its name; it
    /// serves the node's listener and authenticates the node to other nodes' listeners.
    ///
    /// # Errors
    /// When a certificate cannot be generated.
    pub fn node_identity(&self, name: &str, addresses: &[IpAddr]) -> Result<Identity, TlsError> {
        let mut sans: Vec<SanType> = addresses.iter().map(|ip| SanType::IpAddress(*ip)).collect();
        if let Ok(dns) = name.try_into() {
            sans.push(SanType::DnsName(dns));
        }
        self.issue(
            &format!("system:node:{name}"),
            Some(NODES_ORGANIZATION),
            sans,
            &[
                ExtendedKeyUsagePurpose::ServerAuth,
                ExtendedKeyUsagePurpose::ClientAuth,
            ],
        )
    }

    /// The API server's identity towards nodes (reading their pods' logs).
    ///
    /// # Errors
    /// When a certificate cannot be generated.
    pub fn api_server_client(&self) -> Result<Identity, TlsError> {
        self.issue(
            API_SERVER_CLIENT,
            None,
            Vec::new(),
            &[ExtendedKeyUsagePurpose::ClientAuth],
        )
    }

    fn issue(
        &self,
        common_name: &str,
        organization: Option<&str>,
        sans: Vec<SanType>,
        usages: &[ExtendedKeyUsagePurpose],
    ) -> Result<Identity, TlsError> {
        let issuer = CaIssuer::new(ca_params(), &self.ca_key);
        let key = KeyPair::generate()?;
        let mut params = CertificateParams::default();
        params
            .distinguished_name
            .push(DnType::CommonName, common_name);
        if let Some(organization) = organization {
            params
                .distinguished_name
                .push(DnType::OrganizationName, organization);
        }
        params.subject_alt_names = sans;
        params.key_usages = vec![
            KeyUsagePurpose::DigitalSignature,
            KeyUsagePurpose::KeyEncipherment,
        ];
        params.extended_key_usages = usages.to_vec();
        params.use_authority_key_identifier_extension = true;
        set_validity(&mut params, SERVER_VALID_DAYS);
        let cert = params.signed_by(&key, &issuer)?;
        Ok(Identity {
            ca_pem: self.ca_pem.clone(),
            cert_pem: cert.pem(),
            key_pem: key.serialize_pem(),
        })
    }
}

/// The rustls configuration of a node's listener: its certificate, and clients only with a
/// client certificate the cluster CA issued; HTTP/2 (tunnels) and HTTP/1.1 by ALPN.
///
/// # Errors
/// When the PEM does not parse or the key does not fit the certificate.
pub fn listener_config(identity: &Identity) -> Result<Arc<ServerConfig>, TlsError> {
    let (chain, key) = chain_and_key(identity)?;
    let roots = Arc::new(root_store(&identity.ca_pem)?);
    let clients = WebPkiClientVerifier::builder_with_provider(roots, provider())
        .build()
        .map_err(|e| TlsError::Pem {
            what: "CA certificate",
            message: e.to_string(),
        })?;
    let mut config = ServerConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()?
        .with_client_cert_verifier(clients)
        .with_single_cert(chain, key)?;
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

/// A rustls client configuration presenting `identity` and trusting only its CA (no ALPN: the
/// caller sets it).
///
/// # Errors
/// When the PEM does not parse or the key does not fit the certificate.
pub fn identity_client_config(identity: &Identity) -> Result<ClientConfig, TlsError> {
    let (chain, key) = chain_and_key(identity)?;
    Ok(ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()?
        .with_root_certificates(root_store(&identity.ca_pem)?)
        .with_client_auth_cert(chain, key)?)
}

fn chain_and_key(
    identity: &Identity,
) -> Result<(Vec<CertificateDer<'static>>, PrivateKeyDer<'static>), TlsError> {
    let chain = CertificateDer::pem_slice_iter(identity.cert_pem.as_bytes())
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| pem_error("certificate", e))?;
    let key = PrivateKeyDer::from_pem_slice(identity.key_pem.as_bytes())
        .map_err(|e| pem_error("key", e))?;
    Ok((chain, key))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn node_and_api_server_identities_make_working_tls_configurations() {
        let dir = tempfile::tempdir().unwrap();
        let issuer = Issuer::load(dir.path()).unwrap();
        let node = issuer
            .node_identity("edge-1", &["127.0.0.1".parse().unwrap()])
            .unwrap();
        assert!(
            super::super::covers(&node.ca_pem, &node.cert_pem, &["127.0.0.1".into()]),
            "the node's certificate serves its address"
        );
        listener_config(&node).unwrap();
        identity_client_config(&node).unwrap();
        identity_client_config(&issuer.api_server_client().unwrap()).unwrap();
    }
}
