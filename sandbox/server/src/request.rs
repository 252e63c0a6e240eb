//! What every route does with a request: JSON bodies refused with the API's error shape,
//! custom methods (`{id}:verb`) split, empty strings taken as absent.

use serde_json::Value;

use crate::error::{ApiError, ApiResult};

/// A JSON request body, refused with the API's error shape when it does not parse.
pub(crate) fn body<T: serde::de::DeserializeOwned>(bytes: &[u8], what: &str) -> ApiResult<T> {
    let invalid =
        |e: String| ApiError::invalid(format!("the request body is not a valid {what}: {e}"));
    let value: Value = serde_json::from_slice(bytes).map_err(|e| invalid(e.to_string()))?;
    if !value.is_object() {
        return Err(invalid("expected a JSON object".into()));
    }
    serde_json::from_value(value).map_err(|e| invalid(e.to_string()))
}

/// `{id}:verb` as the API writes custom methods.
pub(crate) fn split_action(id: &str) -> ApiResult<(&str, &str)> {
    id.split_once(':').ok_or_else(|| {
        ApiError::not_found(format!(
            "no API route answers POST on `{id}`; custom methods are `ID:verb`"
        ))
    })
}

/// A field clients may send empty: empty means not given.
pub(crate) fn non_empty(text: &Option<String>) -> Option<&str> {
    text.as_deref().filter(|t| !t.is_empty())
}
