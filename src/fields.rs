//! Typed reads of a JSON object's fields, shared by every place that reads a record, a row
//! or settings out of JSON. serde's derived `Deserialize` costs wasm per type (a visitor and a
//! deserializer instance each, plus the float formatting of its error messages); one reader
//! over `serde_json::Value` costs it once.
//!
//! A missing field and `null` both read as absent in the `opt_*` getters; a present field
//! of the wrong type is an error naming the field, as a required field that is missing is.

use serde_json::{Map, Value};

/// `v` as compact JSON text. Every `Value` becomes text through here, never through its
/// `Display` (`to_string()`, `format!("{v}")`): `Display` serializes through a formatter
/// adapter, with a pretty printer for `{:#}` beside it, a second and third copy of
/// serde_json's writer in the bundle (about 1.5 KB gzip measured; docs/budgets.md).
pub fn json_text(v: &Value) -> String {
    // serde_json writes only UTF-8 and cannot fail on a `Value` (its keys are strings).
    String::from_utf8(serde_json::to_vec(v).unwrap_or_default()).unwrap_or_default()
}

/// The fields of one JSON object.
pub struct Fields<'a>(&'a Map<String, Value>);

impl<'a> Fields<'a> {
    /// `v` as an object; any key is accepted (rows, documents from elsewhere).
    pub fn of(v: &'a Value) -> Result<Fields<'a>, String> {
        v.as_object()
            .map(Fields)
            .ok_or_else(|| "expected a JSON object".to_string())
    }

    /// `v` as an object whose keys are all in `known`: a typo in settings must not pass
    /// silently.
    pub fn strict(v: &'a Value, known: &[&str]) -> Result<Fields<'a>, String> {
        let f = Fields::of(v)?;
        match f.0.keys().find(|k| !known.contains(&k.as_str())) {
            Some(k) => Err(format!(
                "unknown field `{k}`, expected one of `{}`",
                known.join("`, `")
            )),
            None => Ok(f),
        }
    }

    /// The whole object.
    pub fn map(&self) -> &'a Map<String, Value> {
        self.0
    }

    /// The field's value, when present and not `null`.
    pub fn get(&self, k: &str) -> Option<&'a Value> {
        self.0.get(k).filter(|v| !v.is_null())
    }

    fn typed<T>(
        &self,
        k: &str,
        what: &str,
        read: fn(&'a Value) -> Option<T>,
    ) -> Result<Option<T>, String> {
        match self.get(k) {
            None => Ok(None),
            Some(v) => read(v)
                .map(Some)
                .ok_or_else(|| format!("field `{k}` must be {what}")),
        }
    }

    fn required<T>(k: &str, v: Option<T>) -> Result<T, String> {
        v.ok_or_else(|| format!("missing field `{k}`"))
    }

    pub fn opt_str(&self, k: &str) -> Result<Option<String>, String> {
        self.typed(k, "a string", |v| v.as_str().map(String::from))
    }

    pub fn str(&self, k: &str) -> Result<String, String> {
        Self::required(k, self.opt_str(k)?)
    }

    pub fn opt_i64(&self, k: &str) -> Result<Option<i64>, String> {
        self.typed(k, "an integer", Value::as_i64)
    }

    pub fn i64(&self, k: &str) -> Result<i64, String> {
        Self::required(k, self.opt_i64(k)?)
    }

    pub fn opt_u64(&self, k: &str) -> Result<Option<u64>, String> {
        self.typed(k, "a non-negative integer", Value::as_u64)
    }

    pub fn opt_bool(&self, k: &str) -> Result<Option<bool>, String> {
        self.typed(k, "a boolean", Value::as_bool)
    }

    pub fn bool(&self, k: &str) -> Result<bool, String> {
        Self::required(k, self.opt_bool(k)?)
    }

    /// A list of strings.
    pub fn opt_strs(&self, k: &str) -> Result<Option<Vec<String>>, String> {
        self.typed(k, "a list of strings", |v| {
            v.as_array()?
                .iter()
                .map(|x| x.as_str().map(String::from))
                .collect()
        })
    }

    pub fn strs(&self, k: &str) -> Result<Vec<String>, String> {
        Self::required(k, self.opt_strs(k)?)
    }

    /// A field that must be present, of any type but `null`.
    pub fn value(&self, k: &str) -> Result<&'a Value, String> {
        Self::required(k, self.get(k))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn reads_typed_fields_and_names_the_bad_one() {
        let v = json!({"a": "x", "n": 3, "b": true, "l": ["p", "q"], "z": null});
        let f = Fields::of(&v).unwrap();
        assert_eq!(f.str("a").unwrap(), "x");
        assert_eq!(f.i64("n").unwrap(), 3);
        assert!(f.bool("b").unwrap());
        assert_eq!(f.strs("l").unwrap(), ["p", "q"]);
        assert_eq!(f.opt_str("z").unwrap(), None);
        assert_eq!(f.opt_str("missing").unwrap(), None);
        assert_eq!(f.str("missing").unwrap_err(), "missing field `missing`");
        assert_eq!(f.str("n").unwrap_err(), "field `n` must be a string");
        assert_eq!(f.opt_i64("a").unwrap_err(), "field `a` must be an integer");
        assert!(f.opt_strs("n").is_err());
        assert!(Fields::of(&json!([1])).is_err());
    }

    #[test]
    fn strict_refuses_unknown_keys() {
        let v = json!({"kind": "oidc", "isuer": "x"});
        let e = Fields::strict(&v, &["kind", "issuer"]).err().unwrap();
        assert!(e.contains("unknown field `isuer`"), "{e}");
        assert!(Fields::strict(&v, &["kind", "isuer"]).is_ok());
    }
}
