//! The protobuf wire format read into JSON by the type table: one generic walk for every
//! message, plus the few apimachinery types whose JSON is not their message's shape (Time,
//! MicroTime, Quantity, IntOrString, FieldsV1).
//!
//! The reader is ours because prost's wire helpers (`prost::encoding`) are not public API;
//! the protobuf encoding itself is four wire types and a varint.

use base64::Engine as _;
use serde_json::{Map, Value, json};

use super::Error;
use crate::api::types::{Field, Message, Types};

/// Decodes the message `name` from `bytes`.
///
/// # Errors
/// `Malformed` naming the field that does not decode.
pub fn decode(name: &str, bytes: &[u8]) -> Result<Value, Error> {
    let message = Types::get()
        .message(name)
        .ok_or_else(|| malformed(name, "", "no such message".into()))?;
    let object = read_message(name, message, bytes)?;
    Ok(json_form(name, object))
}

fn malformed(message: &str, field: &str, problem: String) -> Error {
    Error::Malformed {
        message: message.to_string(),
        field: field.to_string(),
        problem,
    }
}

/// A cursor over protobuf bytes.
struct Reader<'a> {
    bytes: &'a [u8],
}

impl<'a> Reader<'a> {
    fn varint(&mut self) -> Result<u64, String> {
        let mut value = 0u64;
        for shift in (0..64).step_by(7) {
            let (&byte, rest) = self.bytes.split_first().ok_or("truncated varint")?;
            self.bytes = rest;
            value |= u64::from(byte & 0x7f) << shift;
            if byte & 0x80 == 0 {
                return Ok(value);
            }
        }
        Err("varint longer than 10 bytes".into())
    }

    fn take(&mut self, len: usize) -> Result<&'a [u8], String> {
        if len > self.bytes.len() {
            return Err(format!("{len} bytes announced, {} left", self.bytes.len()));
        }
        let (taken, rest) = self.bytes.split_at(len);
        self.bytes = rest;
        Ok(taken)
    }

    fn delimited(&mut self) -> Result<&'a [u8], String> {
        let len = usize::try_from(self.varint()?).map_err(|_| "length too large")?;
        self.take(len)
    }

    /// Skips a value of `wire_type` (a field this table does not know).
    fn skip(&mut self, wire_type: u64) -> Result<(), String> {
        match wire_type {
            0 => self.varint().map(drop),
            1 => self.take(8).map(drop),
            2 => self.delimited().map(drop),
            5 => self.take(4).map(drop),
            other => Err(format!("unsupported wire type {other}")),
        }
    }
}

fn read_message(name: &str, message: &Message, bytes: &[u8]) -> Result<Map<String, Value>, Error> {
    let mut reader = Reader { bytes };
    let mut object = Map::new();
    while !reader.bytes.is_empty() {
        let key = reader.varint().map_err(|p| malformed(name, "", p))?;
        let (tag, wire_type) = (u32::try_from(key >> 3).unwrap_or(0), key & 7);
        let Some(field) = message.by_tag(tag) else {
            // A field newer than this table: dropped, as an unknown JSON field is.
            reader.skip(wire_type).map_err(|p| malformed(name, "", p))?;
            continue;
        };
        let fail = |problem: String| malformed(name, &field.name, problem);
        let values = read_values(field, wire_type, &mut reader).map_err(fail)?;
        place(&mut object, field, values).map_err(fail)?;
    }
    Ok(object)
}

/// The value or values (a packed list) of one occurrence of `field`.
fn read_values(field: &Field, wire_type: u64, reader: &mut Reader) -> Result<Vec<Value>, String> {
    if field.map {
        let entry = reader.delimited()?;
        return Ok(vec![read_map_entry(field, entry)?]);
    }
    let numeric = matches!(field.ty.as_str(), "int32" | "int64" | "bool" | "double");
    if numeric && wire_type == 2 {
        let mut packed = Reader {
            bytes: reader.delimited()?,
        };
        let mut values = Vec::new();
        while !packed.bytes.is_empty() {
            values.push(read_scalar(
                field,
                scalar_wire_type(&field.ty),
                &mut packed,
            )?);
        }
        return Ok(values);
    }
    Ok(vec![read_scalar(field, wire_type, reader)?])
}

fn scalar_wire_type(ty: &str) -> u64 {
    match ty {
        "double" => 1,
        "int32" | "int64" | "bool" => 0,
        _ => 2,
    }
}

fn read_scalar(field: &Field, wire_type: u64, reader: &mut Reader) -> Result<Value, String> {
    let expected = scalar_wire_type(&field.ty);
    if wire_type != expected {
        return Err(format!("wire type {wire_type} where {expected} belongs"));
    }
    Ok(match field.ty.as_str() {
        "string" => {
            let bytes = reader.delimited()?;
            Value::String(String::from_utf8(bytes.to_vec()).map_err(|_| "a string is not UTF-8")?)
        }
        "bytes" => json!(base64::engine::general_purpose::STANDARD.encode(reader.delimited()?)),
        "bool" => json!(reader.varint()? != 0),
        // Negative int32s are sign-extended to 64 bits on the wire.
        "int32" => json!(reader.varint()? as i64 as i32),
        "int64" => json!(reader.varint()? as i64),
        "double" => {
            let bits = reader.take(8)?;
            json!(f64::from_le_bytes(bits.try_into().expect("took 8")))
        }
        message => {
            let bytes = reader.delimited()?;
            let inner = Types::get().message(message).ok_or("no such message")?;
            let object = read_message(message, inner, bytes).map_err(|e| e.to_string())?;
            json_form(message, object)
        }
    })
}

/// A map entry (key 1, value 2) as a one-key object.
fn read_map_entry(field: &Field, bytes: &[u8]) -> Result<Value, String> {
    let mut reader = Reader { bytes };
    let (mut key, mut value) = (String::new(), Value::Null);
    while !reader.bytes.is_empty() {
        let header = reader.varint()?;
        match header >> 3 {
            1 => key = String::from_utf8(reader.delimited()?.to_vec()).map_err(|_| "bad key")?,
            2 => value = read_scalar(field, header & 7, &mut reader)?,
            _ => reader.skip(header & 7)?,
        }
    }
    Ok(json!({ key: value }))
}

/// Puts `values` of `field` into `object`: appended to a list, merged into a map or into the
/// parent (an inline field), or set.
fn place(object: &mut Map<String, Value>, field: &Field, values: Vec<Value>) -> Result<(), String> {
    if field.inline {
        for value in values {
            if let Value::Object(inner) = value {
                object.extend(inner);
            }
        }
    } else if field.map {
        let map = object
            .entry(field.name.clone())
            .or_insert_with(|| json!({}));
        for value in values {
            if let (Some(map), Value::Object(entry)) = (map.as_object_mut(), value) {
                map.extend(entry);
            }
        }
    } else if field.repeated {
        let list = object
            .entry(field.name.clone())
            .or_insert_with(|| json!([]));
        list.as_array_mut().ok_or("not a list")?.extend(values);
    } else if let Some(value) = values.into_iter().last().filter(|v| !unset(v)) {
        object.insert(field.name.clone(), value);
    }
    Ok(())
}

/// Whether a singular value is Go's zero value that JSON leaves out: Go always writes its
/// non-pointer strings and structs to protobuf, so an empty `namespace` or a zero `Time`
/// arrives where the JSON form has nothing.
fn unset(value: &Value) -> bool {
    value.is_null() || value.as_str() == Some("")
}

/// The JSON of a decoded message: its fields, or for the apimachinery types with their own
/// JSON form, that form.
fn json_form(name: &str, object: Map<String, Value>) -> Value {
    let number = |field: &str| object.get(field).and_then(Value::as_i64).unwrap_or(0);
    match name.rsplit('.').next().unwrap_or(name) {
        "Time" | "MicroTime" if object.is_empty() => Value::Null,
        "Time" => rfc3339(number("seconds"), 0, false),
        "MicroTime" => rfc3339(number("seconds"), number("nanos"), true),
        "Quantity" => object.get("string").cloned().unwrap_or(json!("0")),
        "IntOrString" if number("type") == 1 => object.get("strVal").cloned().unwrap_or(json!("")),
        "IntOrString" => json!(number("intVal")),
        "FieldsV1" => object
            .get("raw")
            .and_then(Value::as_str)
            .and_then(|raw| base64::engine::general_purpose::STANDARD.decode(raw).ok())
            .and_then(|raw| serde_json::from_slice(&raw).ok())
            .unwrap_or(json!({})),
        _ => Value::Object(object),
    }
}

fn rfc3339(seconds: i64, nanos: i64, micro: bool) -> Value {
    let time = chrono::DateTime::from_timestamp(seconds, u32::try_from(nanos).unwrap_or(0))
        .unwrap_or_default();
    let format = if micro {
        "%Y-%m-%dT%H:%M:%S%.6fZ"
    } else {
        "%Y-%m-%dT%H:%M:%SZ"
    };
    json!(time.format(format).to_string())
}
