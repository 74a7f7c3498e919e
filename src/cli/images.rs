//! `images import|ls|rm`: the control plane's image store, as `kind load` and `k3s ctr images
//! import` fill a cluster's for containers; pods then name a component `hello:v1`.

use anyhow::Context;
use clap::{Args, Subcommand};
use http::Method;
use serde_json::Value;

use super::table::tabwrite;
use super::{Session, print};
use crate::api::images::IMAGES_PATH;
use crate::api::kinds::percent_encode;
use crate::api::printers::{now, since};

#[derive(Debug, Args)]
pub struct ImagesArgs {
    #[command(subcommand)]
    pub command: ImagesCommand,
}

#[derive(Debug, Subcommand)]
pub enum ImagesCommand {
    /// Import a component file under a name (`hello:v1`; `:latest` when no tag is given)
    Import {
        /// The component (.wasm)
        file: std::path::PathBuf,
        /// NAME[:TAG]
        name: String,
    },
    /// List the imported images
    #[command(alias = "list")]
    Ls,
    /// Remove images by name
    #[command(alias = "remove")]
    Rm {
        #[arg(required = true, value_name = "NAME")]
        names: Vec<String>,
    },
}

pub async fn run(session: &Session, args: ImagesArgs) -> anyhow::Result<()> {
    let client = &session.client;
    match args.command {
        ImagesCommand::Import { file, name } => {
            let component = tokio::fs::read(&file)
                .await
                .with_context(|| format!("cannot read {}", file.display()))?;
            let path = format!("{IMAGES_PATH}?name={}", percent_encode(&name));
            let kind = Some("application/wasm");
            let answer = client
                .send(Method::POST, &path, kind, component.into())
                .await?;
            let image: Value = serde_json::from_slice(&answer)?;
            print(&format!(
                "image {} imported ({})\n",
                image["name"].as_str().unwrap_or(&name),
                image["digest"].as_str().unwrap_or_default()
            ))
        }
        ImagesCommand::Ls => {
            let list = client.get(IMAGES_PATH).await?;
            print(&table(&list))
        }
        ImagesCommand::Rm { names } => {
            for name in names {
                let path = format!("{IMAGES_PATH}/{name}");
                let removed = client.send(Method::DELETE, &path, None, Default::default());
                let removed: Value = serde_json::from_slice(&removed.await?)?;
                print(&format!(
                    "image {} removed\n",
                    removed["name"].as_str().unwrap_or(&name)
                ))?;
            }
            Ok(())
        }
    }
}

/// `IMAGE  DIGEST  SIZE  AGE`, as `crictl images` with an age.
fn table(list: &Value) -> String {
    let mut text = String::from("IMAGE\tDIGEST\tSIZE\tAGE\n");
    for image in list["items"].as_array().into_iter().flatten() {
        let digest = image["digest"].as_str().unwrap_or_default();
        let short = digest
            .trim_start_matches("sha256:")
            .get(..12)
            .unwrap_or(digest);
        let imported = image["imported"].as_str().and_then(|t| t.parse().ok());
        text.push_str(&format!(
            "{}\t{short}\t{}\t{}\n",
            image["name"].as_str().unwrap_or_default(),
            human_size(image["size"].as_u64().unwrap_or(0)),
            since(imported, now()),
        ));
    }
    tabwrite(&text)
}

fn human_size(bytes: u64) -> String {
    match bytes {
        b if b >= 1 << 20 => format!("{:.1}MiB", b as f64 / f64::from(1 << 20)),
        b if b >= 1 << 10 => format!("{:.1}KiB", b as f64 / f64::from(1 << 10)),
        b => format!("{b}B"),
    }
}
