//! A container's `image` as a component file: paths and `file://` URLs as they are, names
//! (`hello:v1`) in the node's image store, which a joined node fills from the control plane's.

use std::path::PathBuf;

use super::NodeContext;
use super::container_spec::image_path;
use crate::images::{self, ImageStore};

/// The file of `image`'s component, fetching a name the node lacks from the control plane.
///
/// # Errors
/// What to tell the user: a name imported nowhere (and how to import it), or a store failure.
pub async fn component_file(node: &NodeContext, image: &str) -> Result<PathBuf, String> {
    if !images::is_name(image) {
        return Ok(image_path(image));
    }
    let store = ImageStore::open(&node.config.data_dir);
    let name = image.to_string();
    match store.off_thread(move |s| s.resolve(&name)).await {
        Ok((_, path)) => return Ok(path),
        Err(images::Error::NotFound(_)) => {}
        Err(error) => return Err(error.to_string()),
    }
    let fetched = node.plane.fetch_image(image).await.map_err(|e| {
        format!("image {image:?} is not on this node and the control plane could not be asked: {e}")
    })?;
    let Some(component) = fetched else {
        return Err(format!(
            "image {image:?} not found: import it with `wasmkube images import FILE {image}`"
        ));
    };
    let name = image.to_string();
    let (_, path) = store
        .off_thread(move |s| {
            s.import(&name, &component)?;
            s.resolve(&name)
        })
        .await
        .map_err(|e| e.to_string())?;
    tracing::info!(image, "fetched the image from the control plane");
    Ok(path)
}
