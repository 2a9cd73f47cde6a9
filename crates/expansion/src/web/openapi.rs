//! The OpenAPI 3 document of the HTTP/JSON routes, generated from the same
//! descriptors: one `POST` path per unary method, its request and response
//! schemas in the protobuf JSON mapping (64-bit integers as strings, enums
//! by name, `Timestamp` as an RFC 3339 string), Connect's error body, and
//! bearer API keys. OpenAPI 3.0 rather than 3.1: Salesforce External
//! Services and other importers read 3.0.

use std::collections::BTreeMap;

use prost_reflect::{EnumDescriptor, FieldDescriptor, Kind, MessageDescriptor, MethodDescriptor};
use serde_json::{Value, json};

use super::routes::Routes;

const ERROR_SCHEMA: &str = "connect.Error";

fn reference(name: &str) -> Value {
    json!({ "$ref": format!("#/components/schemas/{name}") })
}

/// The document for every unary route.
pub fn document(routes: &Routes) -> Value {
    let mut schemas = Schemas::default();
    let mut paths = serde_json::Map::new();
    for (path, method) in routes.unary() {
        let operation = operation(&mut schemas, path, method);
        paths.insert(path.to_owned(), json!({ "post": operation }));
    }
    let mut components = schemas.done();
    components.insert(ERROR_SCHEMA.to_owned(), error_schema());
    json!({
        "openapi": "3.0.3",
        "info": {
            "title": "Expansion HTTP/JSON API",
            "version": env!("CARGO_PKG_VERSION"),
            "description": "Every unary gRPC method of the services this server runs, as the Connect protocol's unary form: POST /<package>.<Service>/<Method> with a JSON body in the protobuf JSON mapping (field names in lowerCamelCase or as in the .proto). Send `authorization: Bearer <API key>`; `connect-timeout-ms` sets a deadline."
        },
        "paths": paths,
        "components": {
            "schemas": components,
            "securitySchemes": {
                "bearerAuth": { "type": "http", "scheme": "bearer", "description": "an Expansion API key, exp_<id>_<secret>" }
            }
        }
    })
}

/// The `POST` operation of one unary method: its request and response schemas, the
/// Connect error body otherwise, and a bearer key unless the method is open.
fn operation(schemas: &mut Schemas, path: &str, method: &MethodDescriptor) -> Value {
    let service = method.parent_service();
    let input = method.input();
    let output = method.output();
    let security = if contracts::access::is_open(path) {
        json!([])
    } else {
        json!([{ "bearerAuth": [] }])
    };
    json!({
        "operationId": format!("{}_{}", service.name(), method.name()),
        "tags": [service.full_name()],
        "summary": format!("{} (Connect unary, protobuf JSON mapping)", method.name()),
        "description": comment(service.parent_file().file_descriptor_proto(), method.path())
            .unwrap_or_default(),
        "security": security,
        "requestBody": {
            "required": true,
            "content": { "application/json": { "schema": schemas.message(&input) } }
        },
        "responses": {
            "200": {
                "description": format!("{}", output.full_name()),
                "content": { "application/json": { "schema": schemas.message(&output) } }
            },
            "default": {
                "description": "an error, in the Connect protocol's JSON form",
                "content": { "application/json": { "schema": reference(ERROR_SCHEMA) } }
            }
        }
    })
}

/// Connect's error body, as a schema.
fn error_schema() -> Value {
    json!({
        "type": "object",
        "description": "Connect's error: a code, a message, and the rich error details (ErrorInfo, BadRequest, PreconditionFailure, ResourceInfo), each as base64 protobuf `value` with its JSON `debug` form.",
        "properties": {
            "code": {
                "type": "string",
                "enum": ["canceled", "unknown", "invalid_argument", "deadline_exceeded",
                    "not_found", "already_exists", "permission_denied", "resource_exhausted",
                    "failed_precondition", "aborted", "out_of_range", "unimplemented",
                    "internal", "unavailable", "data_loss", "unauthenticated"]
            },
            "message": { "type": "string" },
            "details": {
                "type": "array",
                "items": {
                    "type": "object",
                    "properties": {
                        "type": { "type": "string", "example": "google.rpc.BadRequest" },
                        "value": { "type": "string", "format": "byte" },
                        "debug": { "type": "object", "additionalProperties": true }
                    }
                }
            }
        },
        "required": ["code"]
    })
}

/// The schemas named so far, each message and enum once.
#[derive(Default)]
struct Schemas {
    named: BTreeMap<String, Value>,
}

impl Schemas {
    fn done(self) -> serde_json::Map<String, Value> {
        self.named.into_iter().collect()
    }

    /// A message's schema: inline for the well-known types that the JSON
    /// mapping writes as scalars, else a reference (defined once).
    fn message(&mut self, message: &MessageDescriptor) -> Value {
        if let Some(schema) = well_known(message) {
            return schema;
        }
        let name = message.full_name().to_owned();
        if !self.named.contains_key(&name) {
            // Placeholder first: messages may refer to themselves.
            self.named.insert(name.clone(), Value::Null);
            let file = message.parent_file();
            let mut properties = serde_json::Map::new();
            for field in message.fields() {
                let mut schema = self.field(&field);
                if let Some(text) = comment(file.file_descriptor_proto(), field.path()) {
                    // A reference takes no sibling keywords in OpenAPI 3.0.
                    if schema.get("$ref").is_some() {
                        schema = json!({ "allOf": [schema] });
                    }
                    schema["description"] = text.into();
                }
                properties.insert(field.json_name().to_owned(), schema);
            }
            let mut schema = json!({ "type": "object", "properties": properties });
            if let Some(text) = comment(file.file_descriptor_proto(), message.path()) {
                schema["description"] = text.into();
            }
            self.named.insert(name.clone(), schema);
        }
        reference(&name)
    }

    fn enumeration(&mut self, enumeration: &EnumDescriptor) -> Value {
        let name = enumeration.full_name().to_owned();
        if !self.named.contains_key(&name) {
            let values: Vec<String> = enumeration.values().map(|v| v.name().to_owned()).collect();
            let mut schema = json!({ "type": "string", "enum": values });
            let file = enumeration.parent_file();
            if let Some(text) = comment(file.file_descriptor_proto(), enumeration.path()) {
                schema["description"] = text.into();
            }
            self.named.insert(name.clone(), schema);
        }
        reference(&name)
    }

    fn field(&mut self, field: &FieldDescriptor) -> Value {
        if field.is_map()
            && let Some(entry) = field.kind().as_message()
        {
            let value = entry.map_entry_value_field();
            return json!({
                "type": "object",
                "additionalProperties": self.single(&value.kind())
            });
        }
        let single = self.single(&field.kind());
        if field.is_list() {
            json!({ "type": "array", "items": single })
        } else {
            single
        }
    }

    fn single(&mut self, kind: &Kind) -> Value {
        match kind {
            Kind::Double => json!({ "type": "number", "format": "double" }),
            Kind::Float => json!({ "type": "number", "format": "float" }),
            Kind::Int32 | Kind::Sint32 | Kind::Sfixed32 => {
                json!({ "type": "integer", "format": "int32" })
            }
            Kind::Uint32 | Kind::Fixed32 => {
                json!({ "type": "integer", "format": "int64", "minimum": 0 })
            }
            // The JSON mapping writes 64-bit integers as strings.
            Kind::Int64 | Kind::Sint64 | Kind::Sfixed64 => {
                json!({ "type": "string", "format": "int64" })
            }
            Kind::Uint64 | Kind::Fixed64 => json!({ "type": "string", "format": "uint64" }),
            Kind::Bool => json!({ "type": "boolean" }),
            Kind::String => json!({ "type": "string" }),
            Kind::Bytes => json!({ "type": "string", "format": "byte" }),
            Kind::Message(message) => self.message(message),
            Kind::Enum(enumeration) => self.enumeration(enumeration),
        }
    }
}

/// The `.proto` comment above what `path` locates in `file`, if any.
fn comment(file: &prost_types::FileDescriptorProto, path: &[i32]) -> Option<String> {
    let location = file
        .source_code_info
        .as_ref()?
        .location
        .iter()
        .find(|location| location.path == path)?;
    let text = location
        .leading_comments
        .as_deref()?
        .lines()
        .map(str::trim)
        .collect::<Vec<_>>()
        .join(" ");
    let text = text.trim();
    (!text.is_empty()).then(|| text.to_owned())
}

/// The JSON mapping's special forms of the well-known types.
fn well_known(message: &MessageDescriptor) -> Option<Value> {
    Some(match message.full_name() {
        "google.protobuf.Timestamp" => json!({ "type": "string", "format": "date-time" }),
        "google.protobuf.Duration" => {
            json!({ "type": "string", "pattern": "^-?[0-9]+(\\.[0-9]+)?s$", "example": "1.5s" })
        }
        "google.protobuf.FieldMask" => json!({ "type": "string" }),
        "google.protobuf.Empty" => json!({ "type": "object" }),
        "google.protobuf.Struct" => json!({ "type": "object", "additionalProperties": true }),
        "google.protobuf.Value" => json!({}),
        "google.protobuf.ListValue" => json!({ "type": "array", "items": {} }),
        "google.protobuf.Any" => json!({
            "type": "object",
            "properties": { "@type": { "type": "string" } },
            "additionalProperties": true
        }),
        "google.protobuf.StringValue" => json!({ "type": "string", "nullable": true }),
        "google.protobuf.BytesValue" => {
            json!({ "type": "string", "format": "byte", "nullable": true })
        }
        "google.protobuf.BoolValue" => json!({ "type": "boolean", "nullable": true }),
        "google.protobuf.Int32Value" | "google.protobuf.UInt32Value" => {
            json!({ "type": "integer", "nullable": true })
        }
        "google.protobuf.Int64Value" | "google.protobuf.UInt64Value" => {
            json!({ "type": "string", "format": "int64", "nullable": true })
        }
        "google.protobuf.DoubleValue" | "google.protobuf.FloatValue" => {
            json!({ "type": "number", "nullable": true })
        }
        _ => return None,
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn every_unary_route_is_a_post_path_with_resolvable_schemas() {
        let routes = Routes::new(&[
            "expansion.health.v1.AccountHealthService",
            "expansion.pipeline.v1.OpportunityPipelineService",
            "expansion.credit.v1.CompensationCreditService",
            "grpc.health.v1.Health",
        ])
        .unwrap();
        let doc = document(&routes);
        let paths = doc["paths"].as_object().unwrap();
        assert_eq!(paths.len(), routes.unary().count());
        for (path, _) in routes.unary() {
            assert!(paths[path]["post"]["requestBody"].is_object(), "{path}");
        }
        let text = doc.to_string();
        let schemas = doc["components"]["schemas"].as_object().unwrap();
        for (at, _) in text.match_indices("#/components/schemas/") {
            let name: String = text[at + 21..].chars().take_while(|c| *c != '"').collect();
            assert!(
                schemas.contains_key(&name),
                "{name} is referred to, not defined"
            );
        }
        assert!(schemas.values().all(|schema| !schema.is_null()));
        // The JSON mapping's forms.
        assert!(
            schemas["expansion.health.v1.Account"]["properties"]["externalRef"]
                .to_string()
                .contains("#/components/schemas/expansion.health.v1.ExternalRef")
        );
        // The .proto comments document the fields.
        assert_eq!(
            schemas["expansion.health.v1.Account"]["properties"]["customerSince"]["description"],
            "Registration date, \"YYYY-MM-DD\"."
        );
        assert_eq!(
            schemas["expansion.common.v1.Segment"]["type"], "string",
            "enums are written by name"
        );
        assert!(text.contains(r#""format":"date-time""#));
        assert_eq!(
            paths["/grpc.health.v1.Health/Check"]["post"]["security"],
            json!([])
        );
    }
}
