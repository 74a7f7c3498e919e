//! Event (`v1`): the answers to "why?" that `describe` shows.

use std::marker::PhantomData;

use k8s_openapi::api::core::v1::Event;

use super::resource::Resource;
use super::strategy::Typed;
use crate::api::printers;

pub static EVENTS: Resource = Resource {
    group: "",
    version: "v1",
    kind: "Event",
    plural: "events",
    singular: "event",
    short_names: &["ev"],
    categories: &[],
    namespaced: true,
    subresources: &[],
    label_names: false,
    selectable_fields: &[
        "involvedObject.kind",
        "involvedObject.name",
        "involvedObject.namespace",
        "involvedObject.uid",
        "reason",
        "type",
    ],
    strategy: &Typed::<Event>(PhantomData),
    printer: &printers::event::COLUMNS,
};
