//! The cluster's secrets on disk: the admin's bearer token and the nodes' join token.

use std::path::Path;

use anyhow::Context as _;

use crate::atomic_file::write_private;
use crate::node::join;

/// The admin bearer token, made on first start and kept (mode 0600) in the data dir.
pub fn admin_token(data_dir: &Path) -> anyhow::Result<String> {
    let path = data_dir.join("admin-token");
    if let Ok(token) = std::fs::read_to_string(&path) {
        let token = token.trim().to_string();
        if !token.is_empty() {
            return Ok(token);
        }
    }
    let token = hex::encode(rand::random::<[u8; 24]>());
    write_private(&path, token.as_bytes())
        .with_context(|| format!("cannot write {}", path.display()))?;
    Ok(token)
}

/// The join token for nodes, kept in `<data-dir>/node-token`; made anew when missing or when
/// it names another CA (the CA was replaced).
pub fn node_token(data_dir: &Path, ca_pem: &str) -> anyhow::Result<String> {
    let path = data_dir.join("node-token");
    let expected_prefix = join::node_token(ca_pem, "");
    if let Ok(token) = std::fs::read_to_string(&path) {
        let token = token.trim();
        if token.len() > expected_prefix.len() && token.starts_with(&expected_prefix) {
            return Ok(token.to_string());
        }
    }
    let token = join::node_token(ca_pem, &hex::encode(rand::random::<[u8; 24]>()));
    write_private(&path, token.as_bytes())
        .with_context(|| format!("cannot write {}", path.display()))?;
    Ok(token)
}
