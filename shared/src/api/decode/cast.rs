//! OpenApiSpex-style casting of JSON values: lenient string-to-integer and string-to-boolean
//! coercion, int32 range, enums, and the exact error messages MongoosePush 2.x sends.

use serde_json::{Map, Value};

use crate::api::FieldError;

/// OpenApiSpex truncates field names in `Unexpected field` messages to this many characters.
const MAX_NAME_IN_MESSAGE: usize = 40;

/// A JSON object being cast against one schema level, with the errors found so far.
///
/// Each method reads one property, records any violation at that property's pointer and
/// returns the cast value, or `None` when the property is absent or invalid. A required
/// property that comes back `None` always has an error recorded.
pub(super) struct Object<'a, 'e> {
    map: &'a Map<String, Value>,
    pointer: String,
    errors: &'e mut Vec<FieldError>,
}

impl<'a, 'e> Object<'a, 'e> {
    /// The top-level object of a body; anything else is refused as OpenApiSpex does,
    /// with one error at pointer `/`.
    pub(super) fn root(value: &'a Value, errors: &'e mut Vec<FieldError>) -> Option<Self> {
        match value {
            Value::Object(map) => Some(Object {
                map,
                pointer: String::new(),
                errors,
            }),
            other => {
                errors.push(FieldError::new("/", type_error("object", other)));
                None
            }
        }
    }

    /// Records `Unexpected field: <name>` for every key the schema does not list, in the
    /// byte order of the keys (the order an Elixir map of strings iterates in).
    pub(super) fn reject_unknown(&mut self, known: &[&str]) {
        let mut unknown: Vec<&String> = self
            .map
            .keys()
            .filter(|key| !known.contains(&key.as_str()))
            .collect();
        unknown.sort();
        for name in unknown {
            let shown: String = name.chars().take(MAX_NAME_IN_MESSAGE).collect();
            let pointer = self.pointer_to(name);
            self.errors.push(FieldError::new(
                pointer,
                format!("Unexpected field: {shown}"),
            ));
        }
    }

    /// Records `Missing field: <name>` for each absent required key, in schema order.
    /// A key present with the value `null` is not missing; casting rejects it later.
    pub(super) fn require(&mut self, required: &[&str]) {
        for name in required {
            if !self.map.contains_key(*name) {
                let pointer = self.pointer_to(name);
                self.errors
                    .push(FieldError::new(pointer, format!("Missing field: {name}")));
            }
        }
    }

    /// True when the key is present, whatever its value.
    pub(super) fn has(&self, name: &str) -> bool {
        self.map.contains_key(name)
    }

    /// A string property.
    pub(super) fn string(&mut self, name: &str) -> Option<String> {
        let value = self.map.get(name)?;
        match value {
            Value::String(text) => Some(text.clone()),
            other => self.fail(name, type_error("string", other)),
        }
    }

    /// A string property restricted to `choices`, returned as the matching typed value.
    /// The type is checked first, so `10` gives `Invalid string` and `"10"` an enum error.
    pub(super) fn enumeration<T: Copy>(&mut self, name: &str, choices: &[(&str, T)]) -> Option<T> {
        let text = self.string(name)?;
        match choices.iter().find(|(wire, _)| *wire == text) {
            Some((_, value)) => Some(*value),
            None => self.fail(name, "Invalid value for enum".to_owned()),
        }
    }

    /// An int32 property; a string holding a whole integer (`"3600"`, `"-5"`) is accepted,
    /// as is a JSON number with no fractional part (`3600.0`).
    pub(super) fn int32(&mut self, name: &str) -> Option<i32> {
        let value = self.map.get(name)?;
        match cast_int32(value) {
            Ok(number) => Some(number),
            Err(message) => self.fail(name, message),
        }
    }

    /// A boolean property; the strings `"true"` and `"false"` are accepted.
    pub(super) fn boolean(&mut self, name: &str) -> Option<bool> {
        let value = self.map.get(name)?;
        match value {
            Value::Bool(flag) => Some(*flag),
            Value::String(text) if text == "true" => Some(true),
            Value::String(text) if text == "false" => Some(false),
            other => self.fail(name, type_error("boolean", other)),
        }
    }

    /// An array of strings; every bad item is reported at its own index (`/tags/1`).
    pub(super) fn strings(&mut self, name: &str) -> Option<Vec<String>> {
        let value = self.map.get(name)?;
        let Value::Array(items) = value else {
            return self.fail(name, type_error("array", value));
        };
        let pointer = self.pointer_to(name);
        let mut texts = Vec::with_capacity(items.len());
        for (index, item) in items.iter().enumerate() {
            match item {
                Value::String(text) => texts.push(text.clone()),
                other => self.errors.push(FieldError::new(
                    format!("{pointer}/{index}"),
                    type_error("string", other),
                )),
            }
        }
        (texts.len() == items.len()).then_some(texts)
    }

    /// An object property whose content is free: any JSON object, kept as is.
    pub(super) fn any_object(&mut self, name: &str) -> Option<Map<String, Value>> {
        let value = self.map.get(name)?;
        match value {
            Value::Object(map) => Some(map.clone()),
            other => self.fail(name, type_error("object", other)),
        }
    }

    /// An object property with its own schema, cast through the returned scope, which
    /// records its errors in the same list.
    pub(super) fn nested(&mut self, name: &str) -> Option<Object<'a, '_>> {
        let value = self.map.get(name)?;
        let Value::Object(map) = value else {
            return self.fail(name, type_error("object", value));
        };
        Some(Object {
            map,
            pointer: self.pointer_to(name),
            errors: &mut *self.errors,
        })
    }

    fn fail<T>(&mut self, name: &str, message: String) -> Option<T> {
        let pointer = self.pointer_to(name);
        self.errors.push(FieldError::new(pointer, message));
        None
    }

    /// The JSON pointer (RFC 6901) of one property of this object.
    fn pointer_to(&self, name: &str) -> String {
        let escaped = name.replace('~', "~0").replace('/', "~1");
        format!("{}/{escaped}", self.pointer)
    }
}

fn cast_int32(value: &Value) -> Result<i32, String> {
    let wide = match value {
        Value::Number(number) => match (number.as_i64(), number.as_f64()) {
            (Some(whole), _) => i128::from(whole),
            (None, Some(float)) if float.is_finite() && float.fract() == 0.0 => {
                // Only the range matters here: anything beyond i64 is out of int32 anyway.
                float.clamp(i64::MIN as f64, i64::MAX as f64) as i128
            }
            _ => return Err(type_error("integer", value)),
        },
        Value::String(text) if is_integer_text(text) => match text.parse::<i128>() {
            Ok(whole) => whole,
            Err(_) => return Err(INT32_FORMAT.to_owned()),
        },
        other => return Err(type_error("integer", other)),
    };
    i32::try_from(wide).map_err(|_| INT32_FORMAT.to_owned())
}

const INT32_FORMAT: &str = "Invalid format. Expected :int32";

/// An optional sign followed by at least one ASCII digit, as Elixir's `Integer.parse`
/// accepts when it consumes the whole string.
fn is_integer_text(text: &str) -> bool {
    let digits = text.strip_prefix(['+', '-']).unwrap_or(text);
    !digits.is_empty() && digits.bytes().all(|byte| byte.is_ascii_digit())
}

/// OpenApiSpex's wording for a value of the wrong type, including its null-value case.
fn type_error(expected: &str, got: &Value) -> String {
    match got {
        Value::Null => format!("null value where {expected} expected"),
        other => format!("Invalid {expected}. Got: {}", json_type(other)),
    }
}

/// The type name OpenApiSpex reports for a decoded JSON value.
fn json_type(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(number) if number.is_i64() || number.is_u64() => "integer",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}
