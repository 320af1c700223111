//! The one error type of the boundary, thrown to JavaScript as an `Error`
//! with `name = "ComfywireCoreError"` and a stable `code`.

use wasm_bindgen::JsValue;

/// Why a call into the core was refused. None of them leaves the session
/// in a different state than before the call.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CoreError {
    /// The options object has an unknown key, a value of the wrong type or
    /// an out-of-range number. Code `invalid_options`.
    #[error("invalid session options: {message}")]
    InvalidOptions {
        /// What was wrong.
        message: String,
    },
    /// A JSON argument (a `node_errors` value) is not JSON. Code
    /// `invalid_json`.
    #[error("{what} is not valid JSON: {message}")]
    InvalidJson {
        /// Which argument.
        what: &'static str,
        /// The parser's message.
        message: String,
    },
    /// A request description handed back to `handle_http_failed` is not one
    /// the session makes. Code `invalid_request`.
    #[error("not a request of the session: {message}")]
    InvalidRequest {
        /// What was wrong.
        message: String,
    },
}

impl CoreError {
    /// The stable code JavaScript sees as `error.code`.
    pub fn code(&self) -> &'static str {
        match self {
            CoreError::InvalidOptions { .. } => "invalid_options",
            CoreError::InvalidJson { .. } => "invalid_json",
            CoreError::InvalidRequest { .. } => "invalid_request",
        }
    }
}

impl From<CoreError> for JsValue {
    fn from(error: CoreError) -> JsValue {
        let js = js_sys::Error::new(&error.to_string());
        js.set_name("ComfywireCoreError");
        // Setting a property on a fresh Error object cannot fail.
        let _ = js_sys::Reflect::set(&js, &JsValue::from_str("code"), &error.code().into());
        js.into()
    }
}
