//! A GraphQL request sent as a GET request's query string.

use super::JsonLimits;
use crate::error::AppError;

/// A GET request's GraphQL request, from its query string (`query`, `operationName`,
/// `variables` and `extensions` as URL-encoded JSON), as the GraphQL-over-HTTP spec names them.
/// (async-graphql's own reader expects `operation_name`, so a client's `operationName` was
/// silently ignored.) Errors name the parameter at fault.
pub fn from_query_string(
    query_string: &str,
    limits: &JsonLimits,
) -> Result<async_graphql::Request, AppError> {
    let mut query = None;
    let mut operation_name = None;
    let mut variables = None;
    let mut extensions = None;
    for (key, value) in form_urlencoded::parse(query_string.as_bytes()) {
        let slot = match key.as_ref() {
            "query" => &mut query,
            "operationName" | "operation_name" => &mut operation_name,
            "variables" => &mut variables,
            "extensions" => &mut extensions,
            _ => continue,
        };
        if slot.replace(value.into_owned()).is_some() {
            return Err(AppError::bad_input(key.as_ref(), "is given more than once"));
        }
    }
    let query = query
        .filter(|q| !q.trim().is_empty())
        .ok_or_else(|| AppError::bad_input("query", "a GET request needs `query=<document>`"))?;
    let json = |field: &str, text: Option<String>| -> Result<Option<serde_json::Value>, AppError> {
        text.filter(|t| !t.is_empty())
            .map(|t| {
                limits.check(field, t.as_bytes())?;
                serde_json::from_str::<serde_json::Value>(&t)
                    .ok()
                    .filter(serde_json::Value::is_object)
                    .ok_or_else(|| AppError::bad_input(field, "must be a JSON object"))
            })
            .transpose()
    };
    let mut request = async_graphql::Request::new(query);
    if let Some(variables) = json("variables", variables)? {
        request = request.variables(async_graphql::Variables::from_json(variables));
    }
    if let Some(serde_json::Value::Object(map)) = json("extensions", extensions)? {
        for (key, value) in map {
            let value = async_graphql::Value::from_json(value)
                .map_err(|_| AppError::bad_input("extensions", "must be a JSON object"))?;
            request.extensions.insert(key, value);
        }
    }
    if let Some(name) = operation_name.filter(|n| !n.is_empty()) {
        request = request.operation_name(name);
    }
    Ok(request)
}
