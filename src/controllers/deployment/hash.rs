//! The `pod-template-hash`: a short, stable name for a pod template, as Kubernetes makes it
//! (FNV-1a 32 of the template, plus the collision count, rendered in a safe alphabet).

use serde_json::Value;

/// The label that ties a ReplicaSet, its selector and its pods to one template.
pub const LABEL: &str = "pod-template-hash";

/// Kubernetes' `rand.SafeEncodeString` alphabet: no vowels (no words), no look-alikes.
const ALPHANUMS: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";

/// The hash of `template` (ignoring any `pod-template-hash` label it carries), varied by
/// `collision_count` when a ReplicaSet of that name already exists for another template.
pub fn of_template(template: &Value, collision_count: Option<u32>) -> String {
    let mut hasher = Fnv1a32::default();
    hasher.write(canonical(&normalised(template)).as_bytes());
    if let Some(count) = collision_count {
        hasher.write(&count.to_le_bytes());
    }
    safe_encode(&hasher.0.to_string())
}

/// Whether two templates are the same apart from their `pod-template-hash` label.
pub fn same_template(a: &Value, b: &Value) -> bool {
    normalised(a) == normalised(b)
}

/// The template without the hash label (and without an empty label map left behind).
fn normalised(template: &Value) -> Value {
    let mut template = template.clone();
    if let Some(labels) = template
        .pointer_mut("/metadata/labels")
        .and_then(Value::as_object_mut)
    {
        labels.remove(LABEL);
        if labels.is_empty() {
            template["metadata"]
                .as_object_mut()
                .map(|m| m.remove("labels"));
        }
    }
    template
}

/// JSON with object keys sorted, whatever order the map keeps them in.
fn canonical(value: &Value) -> String {
    match value {
        Value::Object(map) => {
            let mut entries: Vec<_> = map.iter().collect();
            entries.sort_by(|a, b| a.0.cmp(b.0));
            let fields: Vec<String> = entries
                .into_iter()
                .map(|(k, v)| format!("{}:{}", Value::String(k.clone()), canonical(v)))
                .collect();
            format!("{{{}}}", fields.join(","))
        }
        Value::Array(items) => {
            let items: Vec<String> = items.iter().map(canonical).collect();
            format!("[{}]", items.join(","))
        }
        other => other.to_string(),
    }
}

fn safe_encode(text: &str) -> String {
    text.bytes()
        .map(|b| ALPHANUMS[b as usize % ALPHANUMS.len()] as char)
        .collect()
}

/// FNV-1a, 32 bits (Go's `hash/fnv.New32a`).
struct Fnv1a32(u32);

impl Default for Fnv1a32 {
    fn default() -> Self {
        Self(0x811c_9dc5)
    }
}

impl Fnv1a32 {
    fn write(&mut self, bytes: &[u8]) {
        for byte in bytes {
            self.0 ^= u32::from(*byte);
            self.0 = self.0.wrapping_mul(0x0100_0193);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn template(image: &str) -> Value {
        json!({"metadata": {"labels": {"app": "web"}},
               "spec": {"containers": [{"name": "c", "image": image}], "restartPolicy": "Always"}})
    }

    #[test]
    fn fnv_matches_the_reference_vectors() {
        let mut hasher = Fnv1a32::default();
        hasher.write(b"a");
        assert_eq!(hasher.0, 0xe40c_292c);
        let mut hasher = Fnv1a32::default();
        hasher.write(b"foobar");
        assert_eq!(hasher.0, 0xbf9c_f968);
    }

    #[test]
    fn the_hash_is_stable_short_safe_and_ignores_key_order_and_its_own_label() {
        let hash = of_template(&template("a.wasm"), None);
        assert!((1..=10).contains(&hash.len()), "{hash}");
        assert!(hash.bytes().all(|b| ALPHANUMS.contains(&b)), "{hash}");
        let reordered: Value = serde_json::from_str(
            r#"{"spec": {"restartPolicy": "Always", "containers": [{"image": "a.wasm", "name": "c"}]},
                "metadata": {"labels": {"app": "web", "pod-template-hash": "xyz"}}}"#,
        )
        .unwrap();
        assert_eq!(of_template(&reordered, None), hash);
        assert!(same_template(&reordered, &template("a.wasm")));
    }

    #[test]
    fn another_template_or_a_collision_count_gives_another_hash() {
        let hash = of_template(&template("a.wasm"), None);
        assert_ne!(of_template(&template("b.wasm"), None), hash);
        assert_ne!(of_template(&template("a.wasm"), Some(1)), hash);
        assert!(!same_template(&template("a.wasm"), &template("b.wasm")));
    }
}
