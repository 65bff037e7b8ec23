//! The registry's HTTP face: Confluent Schema Registry's REST routes on
//! hyper (HTTP/1.1), JSON in and out, errors as `{"error_code", "message"}`
//! with Confluent's status codes.

use std::{convert::Infallible, net::SocketAddr, sync::Arc};

use http_body_util::{BodyExt, Full, Limited};
use hyper::{Method, Request, Response, body::Bytes, server::conn::http1, service::service_fn};
use hyper_util::rt::TokioIo;
use serde_json::{Value, json};

use super::{Level, Registry, RegistryError, Submitted, parse_version};

const CONTENT_TYPE: &str = "application/vnd.schemaregistry.v1+json";
/// The largest request body accepted (a schema and its references).
const MAX_BODY: usize = 8 << 20;

/// Serves `registry` on `listener` until the task is dropped.
pub async fn serve(listener: tokio::net::TcpListener, registry: Registry) {
    let registry = Arc::new(registry);
    loop {
        let Ok((stream, _)) = listener.accept().await else { continue };
        let registry = registry.clone();
        tokio::spawn(async move {
            let service = service_fn(move |req: Request<hyper::body::Incoming>| {
                let registry = registry.clone();
                async move {
                    let (status, body) = match answer(&registry, req).await {
                        Ok((status, body)) => (status, body),
                        Err(e) => (e.status, json!({ "error_code": e.code, "message": e.message })),
                    };
                    Ok::<_, Infallible>(
                        Response::builder()
                            .status(status)
                            .header("content-type", CONTENT_TYPE)
                            .body(Full::new(Bytes::from(body.to_string())))
                            .expect("a valid response"),
                    )
                }
            });
            let _ = http1::Builder::new().writev(false).serve_connection(TokioIo::new(stream), service).await;
        });
    }
}

/// Binds the registry's port (an error when it is taken).
pub async fn bind(host: std::net::IpAddr, port: u16) -> std::io::Result<tokio::net::TcpListener> {
    tokio::net::TcpListener::bind(SocketAddr::new(host, port)).await
}

fn decode(segment: &str) -> String {
    percent_encoding::percent_decode_str(segment).decode_utf8_lossy().into_owned()
}

async fn body<T: serde::de::DeserializeOwned>(req: Request<hyper::body::Incoming>) -> Result<T, RegistryError> {
    let bytes = Limited::new(req.into_body(), MAX_BODY)
        .collect()
        .await
        .map_err(|e| RegistryError::bad_request(format!("reading the request body: {e}")))?
        .to_bytes();
    serde_json::from_slice(&bytes)
        .map_err(|e| RegistryError::bad_request(format!("the request body is not the JSON expected: {e}")))
}

fn level_of(value: &Value, key: &str) -> Result<Level, RegistryError> {
    let text = value.get(key).and_then(Value::as_str).ok_or_else(|| RegistryError::invalid_level("(missing)"))?;
    serde_json::from_value(Value::String(text.to_ascii_uppercase())).map_err(|_| RegistryError::invalid_level(text))
}

async fn answer(registry: &Registry, req: Request<hyper::body::Incoming>) -> Result<(u16, Value), RegistryError> {
    let path = req.uri().path().to_string();
    let query: Vec<(String, String)> =
        form_urlencoded::parse(req.uri().query().unwrap_or("").as_bytes()).into_owned().collect();
    let flag = |name: &str| query.iter().any(|(k, v)| k == name && v == "true");
    let serialized = query.iter().any(|(k, v)| k == "format" && v == "serialized");
    let segments: Vec<String> = path.trim_matches('/').split('/').filter(|s| !s.is_empty()).map(decode).collect();
    let seg: Vec<&str> = segments.iter().map(String::as_str).collect();
    let method = req.method().clone();
    let ok = |v: Value| Ok((200, v));
    let shown = |r: super::Registered| -> Result<Value, RegistryError> {
        let mut v = serde_json::to_value(&r).expect("serializable");
        if serialized {
            v["schema"] = Value::String(registry.compiled(r.id)?.serialized());
        }
        Ok(v)
    };
    match (&method, seg.as_slice()) {
        (&Method::GET, []) => ok(json!({})),
        (&Method::GET, ["schemas", "types"]) => ok(json!(["PROTOBUF"])),
        (&Method::GET, ["subjects"]) => ok(json!(registry.subjects())),
        (&Method::GET, ["subjects", s, "versions"]) => ok(json!(registry.versions(s)?)),
        (&Method::POST, ["subjects", s, "versions"]) => {
            let schema: Submitted = body(req).await?;
            let r = registry.register(s, &schema)?;
            ok(json!({ "id": r.id, "subject": r.subject, "version": r.version }))
        }
        (&Method::POST, ["subjects", s]) => {
            let schema: Submitted = body(req).await?;
            ok(shown(registry.lookup(s, &schema)?)?)
        }
        (&Method::GET, ["subjects", s, "versions", v]) => ok(shown(registry.version(s, parse_version(v)?)?)?),
        (&Method::GET, ["subjects", s, "versions", v, "schema"]) => {
            let r = registry.version(s, parse_version(v)?)?;
            ok(serde_json::from_str(&r.schema).unwrap_or(Value::String(r.schema)))
        }
        (&Method::DELETE, ["subjects", s]) => ok(json!(registry.delete_subject(s, flag("permanent"))?)),
        (&Method::DELETE, ["subjects", s, "versions", v]) => ok(json!(registry.delete_version(s, parse_version(v)?)?)),
        (&Method::GET, ["schemas", "ids", id, rest @ ..]) => {
            let id: u32 = id.parse().map_err(|_| RegistryError::schema_not_found())?;
            match rest {
                [] => {
                    let mut v = serde_json::to_value(registry.by_id(id)?).expect("serializable");
                    if serialized {
                        v["schema"] = Value::String(registry.compiled(id)?.serialized());
                    }
                    ok(v)
                }
                ["schema"] => ok(Value::String(registry.by_id(id)?.schema)),
                ["subjects"] => ok(json!(registry.subjects_of(id)?.into_iter().map(|(s, _)| s).collect::<Vec<_>>())),
                ["versions"] => ok(json!(
                    registry
                        .subjects_of(id)?
                        .into_iter()
                        .map(|(s, v)| json!({ "subject": s, "version": v }))
                        .collect::<Vec<_>>()
                )),
                _ => Err(RegistryError::not_found(&path)),
            }
        }
        (&Method::GET, ["config"]) => ok(json!({ "compatibilityLevel": registry.level(None) })),
        (&Method::PUT, ["config"]) => {
            let level = level_of(&body::<Value>(req).await?, "compatibility")?;
            registry.set_level(None, Some(level))?;
            ok(json!({ "compatibility": level }))
        }
        (&Method::GET, ["config", s]) => match (registry.level(Some(s)), flag("defaultToGlobal")) {
            (Some(l), _) => ok(json!({ "compatibilityLevel": l })),
            (None, true) => ok(json!({ "compatibilityLevel": registry.level(None) })),
            (None, false) => Err(RegistryError::no_subject_level(s)),
        },
        (&Method::PUT, ["config", s]) => {
            let level = level_of(&body::<Value>(req).await?, "compatibility")?;
            registry.set_level(Some(s), Some(level))?;
            ok(json!({ "compatibility": level }))
        }
        (&Method::DELETE, ["config", s]) => {
            let was = registry.level(Some(s));
            registry.set_level(Some(s), None)?;
            ok(json!({ "compatibilityLevel": was }))
        }
        (&Method::POST, ["compatibility", "subjects", s, "versions", rest @ ..]) => {
            let version = match rest {
                [] => None,
                [v] => parse_version(v)?.or(Some(*registry.versions(s)?.last().expect("a subject has versions"))),
                _ => return Err(RegistryError::not_found(&path)),
            };
            let schema: Submitted = body(req).await?;
            let problems = registry.check(s, version, &schema)?;
            let mut v = json!({ "is_compatible": problems.is_empty() });
            if flag("verbose") {
                v["messages"] = json!(problems);
            }
            ok(v)
        }
        _ => Err(RegistryError::not_found(&path)),
    }
}
