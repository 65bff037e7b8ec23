//! TLS at the front door, for a broker started with `--tls`: a certificate
//! authority and a server certificate made when the broker starts (rcgen),
//! for `localhost`, 127.0.0.1, ::1 and the address it listens on. The CA
//! certificate — not a key — is written next to the broker's state, for
//! clients to verify the broker with (`ssl.ca.location`); both keys live only
//! in the broker's memory, so a restart means a new CA.

use std::{net::IpAddr, sync::Arc};

use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, KeyPair, KeyUsagePurpose};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};

/// The door's TLS: the acceptor, and the CA certificate clients trust.
#[derive(Clone)]
pub struct Tls {
    pub acceptor: tokio_rustls::TlsAcceptor,
    pub ca_pem: String,
}

/// The names a certificate for a broker listening on `host` covers.
pub fn names(host: IpAddr) -> Vec<String> {
    let mut names = vec!["localhost".to_string(), "127.0.0.1".to_string(), "::1".to_string()];
    if !host.is_unspecified() && !names.contains(&host.to_string()) {
        names.push(host.to_string());
    }
    if host.is_unspecified() {
        // Every address: the ones other machines reach it at, and its name.
        names.extend(local_addresses().iter().map(IpAddr::to_string));
        names.extend(hostname());
    }
    names
}

/// This machine's IPv4 addresses other than loopback, from its interfaces
/// (read locally: nothing is sent).
pub fn local_addresses() -> Vec<IpAddr> {
    let mut out = Vec::new();
    let mut list: *mut libc::ifaddrs = std::ptr::null_mut();
    // SAFETY: getifaddrs fills `list`, walked read-only and freed once.
    unsafe {
        if libc::getifaddrs(&mut list) != 0 {
            return out;
        }
        let mut at = list;
        while !at.is_null() {
            let addr = (*at).ifa_addr;
            if !addr.is_null() && i32::from((*addr).sa_family) == libc::AF_INET {
                let v4 = &*(addr as *const libc::sockaddr_in);
                let ip = std::net::Ipv4Addr::from(u32::from_be(v4.sin_addr.s_addr));
                if !ip.is_loopback() && !out.contains(&IpAddr::V4(ip)) {
                    out.push(IpAddr::V4(ip));
                }
            }
            at = (*at).ifa_next;
        }
        libc::freeifaddrs(list);
    }
    out
}

/// This machine's host name.
pub fn hostname() -> Option<String> {
    let mut buf = [0u8; 256];
    // SAFETY: gethostname writes at most buf.len() bytes.
    let rc = unsafe { libc::gethostname(buf.as_mut_ptr().cast(), buf.len()) };
    if rc != 0 {
        return None;
    }
    let end = buf.iter().position(|b| *b == 0).unwrap_or(buf.len());
    std::str::from_utf8(&buf[..end]).ok().filter(|h| !h.is_empty()).map(str::to_string)
}

/// A fresh CA and a server certificate it signs for `names`.
pub fn generate(names: Vec<String>) -> Result<Tls, String> {
    let fail = |what: &str, e: &dyn std::fmt::Display| format!("making the broker's TLS {what}: {e}");
    let ca_key = KeyPair::generate().map_err(|e| fail("CA key", &e))?;
    let mut ca = CertificateParams::new(Vec::<String>::new()).map_err(|e| fail("CA", &e))?;
    ca.distinguished_name.push(DnType::CommonName, "chinook broker CA");
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    let ca_cert = ca.self_signed(&ca_key).map_err(|e| fail("CA certificate", &e))?;
    let key = KeyPair::generate().map_err(|e| fail("key", &e))?;
    let mut leaf = CertificateParams::new(names).map_err(|e| fail("certificate", &e))?;
    leaf.distinguished_name.push(DnType::CommonName, "chinook broker");
    let cert = leaf.signed_by(&key, &ca_cert, &ca_key).map_err(|e| fail("certificate", &e))?;
    let chain: Vec<CertificateDer<'static>> = vec![cert.der().clone(), ca_cert.der().clone()];
    let private = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der()));
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| fail("configuration", &e))?
        .with_no_client_auth()
        .with_single_cert(chain, private)
        .map_err(|e| fail("configuration", &e))?;
    Ok(Tls { acceptor: tokio_rustls::TlsAcceptor::from(Arc::new(config)), ca_pem: ca_cert.pem() })
}
