//! The JSON schema of a declared output type, sent to models so their answers have the
//! declared shape (OpenAI structured outputs, Anthropic tool input, a prompt line for
//! OpenAI-compatible servers).
//!
//! Schemas follow the rules of OpenAI's strict mode where the type allows: every record
//! field is listed in `required` (optional fields and fields with defaults accept `null`)
//! and records forbid other properties. Maps and `Json` cannot be strict; see
//! [`is_strict_compatible`].

use std::sync::Arc;

use dsl_check::Ty;
use dsl_check::plan::Plan;
use dsl_check::program::{FieldInfo, Program, TypeInfo};
use dsl_check::ty::NamedTy;
use serde_json::{Map, Value, json};

/// How deep named types are expanded before a schema gives up (`{}`, any value).
const MAX_DEPTH: usize = 24;

/// Where declared types are looked up: a [`Plan`], a [`Program`] or a list of types.
pub trait TypeSource {
    /// The type `name` declared by `module` (`""` for the pack's own types).
    fn type_info(&self, module: &str, name: &str) -> Option<&TypeInfo>;
}

impl TypeSource for Plan {
    fn type_info(&self, module: &str, name: &str) -> Option<&TypeInfo> {
        self.types.as_slice().type_info(module, name)
    }
}

impl TypeSource for Program {
    fn type_info(&self, module: &str, name: &str) -> Option<&TypeInfo> {
        Program::type_info(self, module, name).map(|t| &**t)
    }
}

impl TypeSource for [Arc<TypeInfo>] {
    fn type_info(&self, module: &str, name: &str) -> Option<&TypeInfo> {
        self.iter()
            .find(|t| &*t.module == module && &*t.name == name)
            .map(|t| &**t)
    }
}

impl TypeSource for Vec<Arc<TypeInfo>> {
    fn type_info(&self, module: &str, name: &str) -> Option<&TypeInfo> {
        self.as_slice().type_info(module, name)
    }
}

/// The JSON schema of values of type `ty`: records as objects (with their doc comments as
/// descriptions), unions of strings as `enum`s, lists as arrays, optionals as `anyOf` with
/// `null`, maps as objects with `additionalProperties`, `Json` as `{}`. An `ask` answer's
/// record (`cited`) also has `citations: [core.Citation]`. Undeclared names, recursive types
/// and non-values give `{}`.
pub fn json_schema_for(ty: &Ty, types: &dyn TypeSource) -> Value {
    let mut builder = SchemaBuilder {
        types,
        stack: Vec::new(),
    };
    builder.schema(ty)
}

/// Whether OpenAI accepts `schema` with `strict: true`: every object closed
/// (`additionalProperties: false`) with all its properties required, and no open `{}`.
pub fn is_strict_compatible(schema: &Value) -> bool {
    let Some(object) = schema.as_object() else {
        return false;
    };
    if object.is_empty() {
        return false;
    }
    if let Some(properties) = object.get("properties").and_then(Value::as_object) {
        let required: Vec<&str> = object
            .get("required")
            .and_then(Value::as_array)
            .map(|r| r.iter().filter_map(Value::as_str).collect())
            .unwrap_or_default();
        if object.get("additionalProperties") != Some(&Value::Bool(false))
            || properties.keys().any(|k| !required.contains(&k.as_str()))
            || !properties.values().all(is_strict_compatible)
        {
            return false;
        }
    } else if object.get("type").and_then(Value::as_str) == Some("object") {
        return false;
    }
    if let Some(items) = object.get("items")
        && !is_strict_compatible(items)
    {
        return false;
    }
    if let Some(options) = object.get("anyOf").and_then(Value::as_array)
        && !options.iter().all(is_strict_compatible)
    {
        return false;
    }
    true
}

struct SchemaBuilder<'a> {
    types: &'a dyn TypeSource,
    /// The named types being expanded (to stop at recursion).
    stack: Vec<(Arc<str>, Arc<str>)>,
}

impl SchemaBuilder<'_> {
    fn schema(&mut self, ty: &Ty) -> Value {
        match ty {
            Ty::String | Ty::Secret => json!({ "type": "string" }),
            Ty::Int => json!({ "type": "integer" }),
            Ty::Float => json!({ "type": "number" }),
            Ty::Bool => json!({ "type": "boolean" }),
            Ty::Duration => json!({
                "type": "string",
                "description": "a duration: a whole number and a unit (ms, s, m, h, d), such as 30s or 24h",
                "pattern": "^[0-9]+(ms|s|m|h|d)$",
            }),
            Ty::Money => json!({
                "type": "string",
                "description": "an amount and a lowercase currency code, such as 12.50 usd",
                "pattern": "^[0-9]+(\\.[0-9]+)? (usd|eur|gbp|jpy|chf|cad|aud)$",
            }),
            Ty::Union(options) => {
                json!({ "type": "string", "enum": options.iter().map(|o| o.as_ref()).collect::<Vec<_>>() })
            }
            Ty::List(elem) => json!({ "type": "array", "items": self.schema(elem) }),
            Ty::Map(_, value) => {
                json!({ "type": "object", "additionalProperties": self.schema(value) })
            }
            Ty::Optional(inner) => nullable(self.schema(inner)),
            Ty::None | Ty::Nothing => json!({ "type": "null" }),
            Ty::Named(named) => self.named(named),
            Ty::Record(fields) => {
                let fields: Vec<(&str, Value)> = fields
                    .iter()
                    .map(|(name, ty)| (&**name, self.schema(ty)))
                    .collect();
                object(fields, None)
            }
            Ty::Json
            | Ty::Error
            | Ty::Agent
            | Ty::Model
            | Ty::Knowledge
            | Ty::Tool
            | Ty::Module => json!({}),
        }
    }

    fn named(&mut self, named: &NamedTy) -> Value {
        let key = (named.module.clone(), named.name.clone());
        if self.stack.contains(&key) || self.stack.len() >= MAX_DEPTH {
            return json!({});
        }
        let Some(info) = self.types.type_info(&named.module, &named.name) else {
            if &*named.name == "Citation" {
                return citation_schema();
            }
            return json!({});
        };
        self.stack.push(key);
        let mut schema = if let Some(alias) = &info.alias {
            let mut schema = self.schema(alias);
            if let (Some(doc), Some(map)) = (&info.doc, schema.as_object_mut()) {
                map.entry("description")
                    .or_insert_with(|| Value::String(doc.trim().to_string()));
            }
            schema
        } else {
            let fields: Vec<(&str, Value)> = info
                .fields
                .iter()
                .map(|field| (&*field.name, self.field(field)))
                .collect();
            object(fields, info.doc.as_deref())
        };
        if named.cited && info.alias.is_none() && info.field("citations").is_none() {
            let citations = json!({
                "type": "array",
                "description": "where the answer's claims come from",
                "items": self.citation(),
            });
            if let Some(map) = schema.as_object_mut() {
                if let Some(Value::Object(properties)) = map.get_mut("properties") {
                    properties.insert("citations".into(), citations);
                }
                if let Some(Value::Array(required)) = map.get_mut("required") {
                    required.push(Value::String("citations".into()));
                }
            }
        }
        self.stack.pop();
        schema
    }

    fn field(&mut self, field: &FieldInfo) -> Value {
        let mut schema = self.schema(&field.ty);
        if field.default.is_some() && !matches!(field.ty, Ty::Optional(_)) {
            schema = nullable(schema);
        }
        if let (Some(doc), Some(map)) = (&field.doc, schema.as_object_mut()) {
            map.insert("description".into(), Value::String(doc.trim().to_string()));
        }
        schema
    }

    fn citation(&mut self) -> Value {
        let citation = Ty::Named(NamedTy {
            module: Arc::from("core"),
            name: Arc::from("Citation"),
            cited: false,
        });
        self.schema(&citation)
    }
}

/// `schema` or `null`.
fn nullable(schema: Value) -> Value {
    if schema == json!({}) {
        return schema;
    }
    json!({ "anyOf": [schema, { "type": "null" }] })
}

/// A closed object with every field required.
fn object(fields: Vec<(&str, Value)>, doc: Option<&str>) -> Value {
    let mut properties = Map::new();
    let mut required = Vec::new();
    for (name, schema) in fields {
        required.push(Value::String(name.to_string()));
        properties.insert(name.to_string(), schema);
    }
    let mut schema = Map::new();
    schema.insert("type".into(), json!("object"));
    if let Some(doc) = doc {
        schema.insert("description".into(), Value::String(doc.trim().to_string()));
    }
    schema.insert("properties".into(), Value::Object(properties));
    schema.insert("required".into(), Value::Array(required));
    schema.insert("additionalProperties".into(), Value::Bool(false));
    Value::Object(schema)
}

/// `core.Citation`, for when the type list at hand does not include `core`.
fn citation_schema() -> Value {
    json!({
        "type": "object",
        "description": "Where a claim in a model's answer comes from.",
        "properties": {
            "source": { "type": "string" },
            "title": { "type": "string" },
            "url": { "anyOf": [{ "type": "string" }, { "type": "null" }] },
            "quote": { "type": "string" },
        },
        "required": ["source", "title", "url", "quote"],
        "additionalProperties": false,
    })
}
