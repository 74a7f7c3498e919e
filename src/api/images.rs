//! `/v1-wasmkube/images` (beside `/v1-wasmkube/node-identity`): the control plane's image
//! store over HTTP, for `wasmkube images` and for joined nodes fetching what a pod names. Not
//! a Kubernetes resource (kubectl never sees it), as an image store is not one in Kubernetes.
//!
//! - `GET /v1-wasmkube/images`: `{"items": [Image...]}`
//! - `POST /v1-wasmkube/images?name=NAME`: the component's bytes; answers the `Image`
//! - `GET /v1-wasmkube/images/NAME`: the component's bytes (`application/wasm`)
//! - `DELETE /v1-wasmkube/images/NAME`: answers the removed `Image`

use bytes::Bytes;
use http::{Method, Request, Response, StatusCode, header};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use serde_json::json;

use super::error::{ApiError, ApiResult};
use super::server::{self, Body};
use crate::images::{self, ImageStore, MAX_IMAGE_BYTES};

/// The path prefix, for clients.
pub const IMAGES_PATH: &str = "/v1-wasmkube/images";

/// Serves a request under [`IMAGES_PATH`]; `name` is the rest of the path (`None` for the
/// collection).
pub async fn serve(
    request: Request<Incoming>,
    store: &ImageStore,
    name: Option<&str>,
    query_name: Option<&str>,
) -> ApiResult<Response<Body>> {
    match (request.method().clone(), name) {
        (Method::GET, None) => {
            let items = store.off_thread(|s| s.list()).await.map_err(api_error)?;
            Ok(server::json(StatusCode::OK, &json!({"items": items})))
        }
        (Method::POST, None) => {
            let name = query_name
                .ok_or_else(|| ApiError::BadRequest("name: the image needs a name".into()))?
                .to_string();
            let component = server::read_limited(request.into_body(), MAX_IMAGE_BYTES).await?;
            let image = store
                .off_thread(move |s| s.import(&name, &component))
                .await
                .map_err(api_error)?;
            Ok(server::json(StatusCode::CREATED, &json!(image)))
        }
        (Method::GET, Some(name)) => {
            let name = name.to_string();
            let (image, path) = store
                .off_thread(move |s| s.resolve(&name))
                .await
                .map_err(api_error)?;
            let bytes = tokio::fs::read(&path)
                .await
                .map_err(|e| ApiError::Internal(format!("reading image {}: {e}", image.name)))?;
            let mut response = Response::new(Full::new(Bytes::from(bytes)).boxed());
            let headers = response.headers_mut();
            headers.insert(
                header::CONTENT_TYPE,
                "application/wasm".parse().expect("static"),
            );
            if let Ok(digest) = image.digest.parse() {
                headers.insert("docker-content-digest", digest);
            }
            Ok(response)
        }
        (Method::DELETE, Some(name)) => {
            let name = name.to_string();
            let removed = store
                .off_thread(move |s| s.remove(&name))
                .await
                .map_err(api_error)?;
            Ok(server::json(StatusCode::OK, &json!(removed)))
        }
        _ => Err(ApiError::MethodNotAllowed),
    }
}

fn api_error(error: images::Error) -> ApiError {
    match error {
        images::Error::NotFound(name) => ApiError::NotFound {
            resource: "images".into(),
            name,
        },
        images::Error::TooLarge { .. } => ApiError::TooLarge {
            limit: MAX_IMAGE_BYTES,
        },
        images::Error::InvalidName(..) | images::Error::NotWasm(_) => {
            ApiError::BadRequest(error.to_string())
        }
        images::Error::Io(_) => ApiError::Internal(error.to_string()),
    }
}
