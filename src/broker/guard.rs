//! Who may come through the front door: with `--tls`, a TLS handshake first
//! ([`super::tls`]); with `--users`, a SASL exchange ([`super::sasl`]) before
//! any request reaches the broker. Until a client has authenticated, the door
//! answers SaslHandshake and SaslAuthenticate itself, passes ApiVersions on
//! (adding the SASL APIs to the answer when the broker does not list them),
//! and closes the connection on anything else, as a Kafka broker does.
//! The door then knows who is on each connection: with topic prefixes
//! ([`super::acl`]), it checks that user's requests.

use std::{sync::Arc, time::Duration};

use tansu_sans_io::{
    Body, Frame, Header, api_versions_response::ApiVersion, sasl_authenticate_response::SaslAuthenticateResponse,
    sasl_handshake_response::SaslHandshakeResponse,
};
use tokio::{
    io::{AsyncRead, AsyncWrite, AsyncWriteExt},
    net::{
        TcpStream,
        tcp::{OwnedReadHalf, OwnedWriteHalf},
    },
};

use super::{
    adapter::{API_VERSIONS, Adapter, Head},
    frontdoor::read_frame,
    sasl::{self, Exchange, Step, Users},
    tls::Tls,
};

const SASL_HANDSHAKE: i16 = 17;
const SASL_AUTHENTICATE: i16 = 36;
const UNSUPPORTED_SASL_MECHANISM: i16 = 33;
const ILLEGAL_SASL_STATE: i16 = 34;
const SASL_AUTHENTICATION_FAILED: i16 = 58;
/// How long a client has to finish the TLS handshake and authenticate.
const ENTRY_LIMIT: Duration = Duration::from_secs(30);

/// The door's requirements (none by default).
#[derive(Clone, Default)]
pub struct Guard {
    pub tls: Option<Tls>,
    pub users: Option<Arc<Users>>,
    /// Each user's topic scope (with `users`).
    pub acl: Option<Arc<super::acl::Acl>>,
}

pub type ClientRx = Box<dyn AsyncRead + Send + Unpin>;
pub type ClientTx = Box<dyn AsyncWrite + Send + Unpin>;

impl Guard {
    /// The client's two halves once it is through (TLS undone) and the user
    /// it logged in as (with `--users`), or None when it did not get in.
    pub async fn enter(
        &self,
        client: TcpStream,
        broker_rx: &mut OwnedReadHalf,
        broker_tx: &mut OwnedWriteHalf,
        adapter: Option<&Adapter>,
    ) -> Option<(ClientRx, ClientTx, Option<String>)> {
        let entry = async {
            let (mut rx, mut tx): (ClientRx, ClientTx) = match &self.tls {
                Some(tls) => {
                    let stream = tls.acceptor.accept(client).await.ok()?;
                    let (r, w) = tokio::io::split(stream);
                    (Box::new(r), Box::new(w))
                }
                None => {
                    let (r, w) = client.into_split();
                    (Box::new(r), Box::new(w))
                }
            };
            let user = match &self.users {
                Some(users) => Some(authenticate(users, &mut rx, &mut tx, broker_rx, broker_tx, adapter).await?),
                None => None,
            };
            Some((rx, tx, user))
        };
        tokio::time::timeout(ENTRY_LIMIT, entry).await.ok().flatten()
    }
}

fn answer(body: Body, key: i16, version: i16, correlation_id: i32) -> Option<Vec<u8>> {
    Frame::response(Header::Response { correlation_id }, body, key, version).ok().map(|b| b.to_vec())
}

/// ApiVersions' answer with SaslHandshake and SaslAuthenticate listed.
fn with_sasl_apis(response: Vec<u8>, version: i16) -> Vec<u8> {
    let patched = || {
        let Frame { header, body: Body::ApiVersionsResponse(mut versions), .. } =
            Frame::response_from_bytes(&response[..], API_VERSIONS, version).ok()?
        else {
            return None;
        };
        let keys = versions.api_keys.get_or_insert_with(Vec::new);
        let mut changed = false;
        for (key, max) in [(SASL_HANDSHAKE, 1), (SASL_AUTHENTICATE, 2)] {
            if !keys.iter().any(|k| k.api_key == key) {
                keys.push(ApiVersion::default().api_key(key).min_version(0).max_version(max));
                changed = true;
            }
        }
        if !changed {
            return None;
        }
        keys.sort_by_key(|k| k.api_key);
        Frame::response(header, Body::ApiVersionsResponse(versions), API_VERSIONS, version).ok().map(|b| b.to_vec())
    };
    patched().unwrap_or(response)
}

/// Runs the SASL exchange; the user, once the client has authenticated.
async fn authenticate(
    users: &Users,
    rx: &mut ClientRx,
    tx: &mut ClientTx,
    broker_rx: &mut OwnedReadHalf,
    broker_tx: &mut OwnedWriteHalf,
    adapter: Option<&Adapter>,
) -> Option<String> {
    let mut exchange: Option<Exchange> = None;
    loop {
        let request = read_frame(rx).await.ok()?;
        let Head { key, version, correlation_id: correlation } = Head::of(&request)?;
        let reply = match key {
            API_VERSIONS => {
                let response = match adapter {
                    Some(a) => a.exchange(request, broker_rx, broker_tx).await.ok()??,
                    None => {
                        broker_tx.write_all(&request).await.ok()?;
                        read_frame(broker_rx).await.ok()?
                    }
                };
                with_sasl_apis(response, version)
            }
            SASL_HANDSHAKE => {
                let Ok(Frame { body: Body::SaslHandshakeRequest(hello), .. }) = Frame::request_from_bytes(&request[..])
                else {
                    return None;
                };
                exchange = Exchange::start(&hello.mechanism);
                let code = if exchange.is_some() { 0 } else { UNSUPPORTED_SASL_MECHANISM };
                let mechanisms = sasl::MECHANISMS.iter().map(|m| m.to_string()).collect();
                let body = SaslHandshakeResponse::default().error_code(code).mechanisms(Some(mechanisms));
                answer(Body::SaslHandshakeResponse(body), key, version, correlation)?
            }
            SASL_AUTHENTICATE => {
                let Ok(Frame { body: Body::SaslAuthenticateRequest(auth), .. }) =
                    Frame::request_from_bytes(&request[..])
                else {
                    return None;
                };
                let (code, message, bytes, done) = match exchange.as_mut().map(|e| e.step(users, &auth.auth_bytes)) {
                    Some(Step::Continue(bytes)) => (0, None, bytes, None),
                    Some(Step::Done { answer, user }) => (0, None, answer, Some(user)),
                    Some(Step::Failed(reason)) => (SASL_AUTHENTICATION_FAILED, Some(reason), Vec::new(), None),
                    None => {
                        (ILLEGAL_SASL_STATE, Some("SaslAuthenticate before SaslHandshake".into()), Vec::new(), None)
                    }
                };
                let body = SaslAuthenticateResponse::default()
                    .error_code(code)
                    .error_message(message)
                    .auth_bytes(bytes.into())
                    .session_lifetime_ms(Some(0));
                let reply = answer(Body::SaslAuthenticateResponse(body), key, version, correlation)?;
                tx.write_all(&reply).await.ok()?;
                if done.is_some() {
                    return done;
                }
                if code != 0 {
                    // The client reads the reason; then the connection is closed.
                    let _ = tx.flush().await;
                    return None;
                }
                continue;
            }
            // Nothing else before authentication.
            _ => return None,
        };
        tx.write_all(&reply).await.ok()?;
    }
}
