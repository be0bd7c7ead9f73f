//! Canonical JSON (RFC 8785, JCS) for the value domain entries use: objects, arrays, strings,
//! booleans, null and integers. Floats are refused, so number formatting never needs JCS's
//! ECMAScript rules. Keys are sorted here explicitly, whatever map type serde_json was built
//! with (a dependency enabling `preserve_order` must not change our bytes).

use serde_json::Value;

/// Why a value has no canonical form.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("no canonical JSON form: {0}")]
pub struct CanonicalError(pub String);

/// The canonical bytes of `value`.
///
/// # Errors
/// When the value holds a non-integer number.
pub fn to_canonical(value: &Value) -> Result<Vec<u8>, CanonicalError> {
    let mut out = Vec::new();
    write(value, &mut out)?;
    Ok(out)
}

fn write(value: &Value, out: &mut Vec<u8>) -> Result<(), CanonicalError> {
    match value {
        Value::Null => out.extend_from_slice(b"null"),
        Value::Bool(b) => out.extend_from_slice(if *b { b"true" } else { b"false" }),
        Value::Number(n) => {
            if let Some(u) = n.as_u64() {
                out.extend_from_slice(u.to_string().as_bytes());
            } else if let Some(i) = n.as_i64() {
                out.extend_from_slice(i.to_string().as_bytes());
            } else {
                return Err(CanonicalError(format!("non-integer number {n}")));
            }
        }
        Value::String(s) => write_string(s, out),
        Value::Array(items) => {
            out.push(b'[');
            for (i, v) in items.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                write(v, out)?;
            }
            out.push(b']');
        }
        Value::Object(map) => {
            // JCS orders keys by UTF-16 code units.
            let mut keys: Vec<&String> = map.keys().collect();
            keys.sort_by(|a, b| a.encode_utf16().cmp(b.encode_utf16()));
            out.push(b'{');
            for (i, k) in keys.into_iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                write_string(k, out);
                out.push(b':');
                write(&map[k], out)?;
            }
            out.push(b'}');
        }
    }
    Ok(())
}

fn write_string(s: &str, out: &mut Vec<u8>) {
    out.push(b'"');
    for c in s.chars() {
        match c {
            '"' => out.extend_from_slice(b"\\\""),
            '\\' => out.extend_from_slice(b"\\\\"),
            '\u{8}' => out.extend_from_slice(b"\\b"),
            '\t' => out.extend_from_slice(b"\\t"),
            '\n' => out.extend_from_slice(b"\\n"),
            '\u{c}' => out.extend_from_slice(b"\\f"),
            '\r' => out.extend_from_slice(b"\\r"),
            c if (c as u32) < 0x20 => {
                out.extend_from_slice(format!("\\u{:04x}", c as u32).as_bytes())
            }
            c => {
                let mut buf = [0u8; 4];
                out.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
            }
        }
    }
    out.push(b'"');
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc8785_examples() {
        // Key ordering by UTF-16 code units and string escaping as RFC 8785 §3.2.2–3.2.3 show.
        let v: Value =
            serde_json::from_str(r#"{"b":[1,-2,{"z":null,"a":true}],"a":"\u000f\n\"é€😀/"}"#)
                .unwrap();
        assert_eq!(
            String::from_utf8(to_canonical(&v).unwrap()).unwrap(),
            "{\"a\":\"\\u000f\\n\\\"é€😀/\",\"b\":[1,-2,{\"a\":true,\"z\":null}]}"
        );
        let sorted: Value = serde_json::from_str(
            r#"{"\u20ac":1,"\r":2,"\ud83d\ude00":3,"1":4,"\u0080":5,"\u00f6":6}"#,
        )
        .unwrap();
        let keys: String = String::from_utf8(to_canonical(&sorted).unwrap()).unwrap();
        // RFC 8785 §3.2.3: U+20AC sorts before the surrogate pair of U+1F600.
        assert_eq!(
            keys,
            "{\"\\r\":2,\"1\":4,\"\u{80}\":5,\"ö\":6,\"€\":1,\"😀\":3}"
        );
        assert!(to_canonical(&serde_json::json!({"x": 1.5})).is_err());
    }
}
