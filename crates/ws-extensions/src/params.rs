//! Extension parameters as they appear in `Sec-WebSocket-Extensions`.

/// One parameter of an extension offer or response: `name` or `name=value`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ExtensionParam {
    /// The parameter name (an RFC 7230 token).
    pub name: String,
    /// The value, unquoted; `None` for a bare parameter.
    pub value: Option<String>,
}

impl ExtensionParam {
    /// A parameter with a value.
    pub fn new(name: impl Into<String>, value: impl Into<String>) -> Self {
        Self { name: name.into(), value: Some(value.into()) }
    }

    /// A bare parameter (no value).
    pub fn flag(name: impl Into<String>) -> Self {
        Self { name: name.into(), value: None }
    }
}

/// One element of a `Sec-WebSocket-Extensions` header: an extension name and its parameters.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ExtensionHeaderItem {
    /// The extension token, e.g. `permessage-deflate`.
    pub name: String,
    /// Its parameters, in order.
    pub params: Vec<ExtensionParam>,
}

impl ExtensionHeaderItem {
    /// An item with this name and parameters.
    pub fn new(name: impl Into<String>, params: Vec<ExtensionParam>) -> Self {
        Self { name: name.into(), params }
    }
}
