//! SASL at the front door, for a broker started with `--users FILE`: the
//! server side of PLAIN (RFC 4616) and SCRAM-SHA-256/512 (RFC 5802, RFC
//! 7677) against the users listed in the file (`user,password` per line, and
//! an optional third column: the user's topic prefix, see [`super::acl`]).
//! The door runs the exchange itself (SaslHandshake, SaslAuthenticate) before
//! anything reaches the broker; passwords stay in memory, never on disk or in
//! output.

use std::collections::BTreeMap;

use base64::{Engine as _, engine::general_purpose::STANDARD as B64};
use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256, Sha512};

use crate::kafka::security::Secret;

/// The mechanisms the door speaks.
pub const MECHANISMS: [&str; 3] = ["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"];
/// PBKDF2 iterations of a SCRAM exchange (Kafka's minimum).
const ITERATIONS: u32 = 4096;

/// The users a broker accepts.
#[derive(Clone, Debug, Default)]
pub struct Users {
    passwords: BTreeMap<String, Secret>,
    /// The third column, where a line has one (`*`: any topic).
    prefixes: BTreeMap<String, String>,
}

impl Users {
    /// Reads `user,password[,prefix]` lines (blank lines, `#` comments and
    /// a `user,password[,prefix]` header skipped); an error names the line,
    /// never a password.
    pub fn parse(text: &str) -> Result<Self, String> {
        let mut passwords = BTreeMap::new();
        let mut prefixes = BTreeMap::new();
        for (n, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty()
                || line.starts_with('#')
                || line.eq_ignore_ascii_case("user,password")
                || line.eq_ignore_ascii_case("user,password,prefix")
            {
                continue;
            }
            let fields: Vec<&str> = line.split(',').map(str::trim).collect();
            match fields.as_slice() {
                [user, password, rest @ ..] if !user.is_empty() && !password.is_empty() && rest.len() <= 1 => {
                    if passwords.insert(user.to_string(), Secret::new(*password)).is_some() {
                        return Err(format!("line {}: user {user:?} is listed twice", n + 1));
                    }
                    match rest {
                        [""] => return Err(format!("line {}: the third column (topic prefix) is empty", n + 1)),
                        [prefix] => {
                            prefixes.insert(user.to_string(), prefix.to_string());
                        }
                        _ => {}
                    }
                }
                _ => {
                    return Err(format!(
                        "line {}: expected `user,password` or `user,password,prefix` (a password cannot hold a comma)",
                        n + 1
                    ));
                }
            }
        }
        if passwords.is_empty() {
            return Err("no user in the file (one `user,password` per line)".into());
        }
        Ok(Self { passwords, prefixes })
    }

    /// The topic prefix the file gives `user` (its third column), if any.
    pub fn prefix(&self, user: &str) -> Option<&str> {
        self.prefixes.get(user).map(String::as_str)
    }

    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.passwords.keys().map(String::as_str)
    }

    fn password(&self, user: &str) -> Option<&str> {
        self.passwords.get(user).map(Secret::expose)
    }
}

/// What the door answers to one SaslAuthenticate.
#[derive(Debug, PartialEq, Eq)]
pub enum Step {
    /// Send these bytes, and wait for the client's next message.
    Continue(Vec<u8>),
    /// Authenticated as `user`; send these bytes (SCRAM's server-final).
    Done { user: String, answer: Vec<u8> },
    /// Refused, with the reason to send back.
    Failed(String),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Hash {
    Sha256,
    Sha512,
}

/// One client's exchange.
#[derive(Debug)]
pub struct Exchange(Mechanism);

#[derive(Debug)]
enum Mechanism {
    Plain,
    Scram { hash: Hash, state: Option<ScramState> },
}

/// What the server keeps between SCRAM's two messages.
#[derive(Debug)]
struct ScramState {
    user: String,
    client_first_bare: String,
    server_first: String,
    /// The client's part of the nonce (its `r=` in client-first).
    client_nonce: String,
    /// The whole nonce: the client's part, then ours (server-first's `r=`).
    nonce: String,
    salt: Vec<u8>,
}

const FAILED: &str = "Authentication failed: invalid username or password";

impl Exchange {
    /// The exchange for `mechanism`, if the door speaks it.
    pub fn start(mechanism: &str) -> Option<Self> {
        let mechanism = match mechanism.to_ascii_uppercase().as_str() {
            "PLAIN" => Mechanism::Plain,
            "SCRAM-SHA-256" => Mechanism::Scram { hash: Hash::Sha256, state: None },
            "SCRAM-SHA-512" => Mechanism::Scram { hash: Hash::Sha512, state: None },
            _ => return None,
        };
        Some(Exchange(mechanism))
    }

    /// The answer to the client's message `input`.
    pub fn step(&mut self, users: &Users, input: &[u8]) -> Step {
        match &mut self.0 {
            Mechanism::Plain => plain(users, input),
            Mechanism::Scram { hash, state } => match state.take() {
                None => match scram_first(users, input) {
                    Ok(s) => {
                        let answer = s.server_first.clone().into_bytes();
                        *state = Some(s);
                        Step::Continue(answer)
                    }
                    Err(e) => Step::Failed(e),
                },
                Some(s) => scram_final(*hash, users, &s, input),
            },
        }
    }
}

/// PLAIN: `[authzid] NUL user NUL password`.
fn plain(users: &Users, input: &[u8]) -> Step {
    let parts: Vec<&[u8]> = input.split(|b| *b == 0).collect();
    let [_, user, password] = parts.as_slice() else {
        return Step::Failed("Authentication failed: malformed PLAIN message".into());
    };
    let (Ok(user), Ok(password)) = (std::str::from_utf8(user), std::str::from_utf8(password)) else {
        return Step::Failed(FAILED.into());
    };
    match users.password(user) {
        Some(expected) if expected.as_bytes() == password.as_bytes() => {
            Step::Done { user: user.to_string(), answer: Vec::new() }
        }
        _ => Step::Failed(FAILED.into()),
    }
}

/// The attributes `k=v` of a SCRAM message.
fn attributes(message: &str) -> BTreeMap<char, &str> {
    message
        .split(',')
        .filter_map(|a| {
            let mut chars = a.chars();
            let k = chars.next()?;
            a.get(1..)?.strip_prefix('=').map(|v| (k, v))
        })
        .collect()
}

/// client-first `n,,n=user,r=nonce` → server-first `r=nonce+ours,s=salt,i=4096`.
fn scram_first(users: &Users, input: &[u8]) -> Result<ScramState, String> {
    let text = std::str::from_utf8(input).map_err(|_| "Authentication failed: not UTF-8".to_string())?;
    // gs2 header: no channel binding ("n" or "y"), no authzid.
    let bare = text
        .strip_prefix("n,,")
        .or_else(|| text.strip_prefix("y,,"))
        .ok_or("Authentication failed: unsupported SCRAM header (channel binding is not offered)")?;
    let a = attributes(bare);
    let (Some(user), Some(client_nonce)) = (a.get(&'n'), a.get(&'r')) else {
        return Err("Authentication failed: malformed SCRAM client-first message".into());
    };
    let user = user.replace("=2C", ",").replace("=3D", "=");
    let mut ours = [0u8; 18];
    rand::Rng::fill(&mut rand::thread_rng(), &mut ours);
    let mut salt = vec![0u8; 16];
    rand::Rng::fill(&mut rand::thread_rng(), salt.as_mut_slice());
    let nonce = format!("{client_nonce}{}", B64.encode(ours));
    let server_first = format!("r={nonce},s={},i={ITERATIONS}", B64.encode(&salt));
    // An unknown user still gets a server-first (and fails at the proof), as Kafka does.
    let _ = users.password(&user);
    Ok(ScramState {
        user,
        client_first_bare: bare.to_string(),
        server_first,
        client_nonce: client_nonce.to_string(),
        nonce,
        salt,
    })
}

impl Hash {
    fn mac(self, key: &[u8], data: &[u8]) -> Vec<u8> {
        match self {
            Hash::Sha256 => {
                let mut m = Hmac::<Sha256>::new_from_slice(key).expect("HMAC takes any key length");
                m.update(data);
                m.finalize().into_bytes().to_vec()
            }
            Hash::Sha512 => {
                let mut m = Hmac::<Sha512>::new_from_slice(key).expect("HMAC takes any key length");
                m.update(data);
                m.finalize().into_bytes().to_vec()
            }
        }
    }

    fn digest(self, data: &[u8]) -> Vec<u8> {
        match self {
            Hash::Sha256 => Sha256::digest(data).to_vec(),
            Hash::Sha512 => Sha512::digest(data).to_vec(),
        }
    }

    /// SaltedPassword: PBKDF2 with this hash's HMAC.
    fn salted(self, password: &str, salt: &[u8]) -> Vec<u8> {
        match self {
            Hash::Sha256 => pbkdf2::pbkdf2_hmac_array::<Sha256, 32>(password.as_bytes(), salt, ITERATIONS).to_vec(),
            Hash::Sha512 => pbkdf2::pbkdf2_hmac_array::<Sha512, 64>(password.as_bytes(), salt, ITERATIONS).to_vec(),
        }
    }
}

impl ScramState {
    /// Whether client-final's `r=` is this exchange's nonce. RFC 5802 §5.1
    /// wants server-first's `r=` back verbatim. librdkafka before 2.6.1
    /// (Debian's kcat has 2.0.2) sends its own part once more in front of it
    /// (`r=` client + client + ours: rdkafka_sasl_scram.c, in
    /// `rd_kafka_sasl_scram_build_client_final_message_wo_proof`,
    /// `"c=%s,r=%.*s%s"` with the client nonce and the whole server nonce;
    /// fixed by librdkafka PR #4895), and signs that message as sent. Kafka
    /// accepts it (`endsWith` since 3.8.1); the door accepts that one form
    /// too, and nothing else: our part of the nonce is fresh either way.
    fn nonce_matches(&self, r: &str) -> bool {
        r == self.nonce || r.strip_prefix(self.client_nonce.as_str()) == Some(self.nonce.as_str())
    }
}

/// client-final `c=biws,r=nonce,p=proof` checked → server-final `v=signature`.
fn scram_final(hash: Hash, users: &Users, s: &ScramState, input: &[u8]) -> Step {
    let Ok(text) = std::str::from_utf8(input) else { return Step::Failed(FAILED.into()) };
    let Some((without_proof, proof)) = text.rsplit_once(",p=") else {
        return Step::Failed("Authentication failed: malformed SCRAM client-final message".into());
    };
    let a = attributes(without_proof);
    if !a.get(&'r').is_some_and(|r| s.nonce_matches(r)) {
        return Step::Failed("Authentication failed: the SCRAM nonce does not match".into());
    }
    let (Some(password), Ok(proof)) = (users.password(&s.user), B64.decode(proof)) else {
        return Step::Failed(FAILED.into());
    };
    let salted = hash.salted(password, &s.salt);
    let stored_key = hash.digest(&hash.mac(&salted, b"Client Key"));
    let server_key = hash.mac(&salted, b"Server Key");
    let auth_message = format!("{},{},{without_proof}", s.client_first_bare, s.server_first);
    let client_signature = hash.mac(&stored_key, auth_message.as_bytes());
    if proof.len() != client_signature.len() {
        return Step::Failed(FAILED.into());
    }
    let client_key: Vec<u8> = proof.iter().zip(&client_signature).map(|(p, c)| p ^ c).collect();
    if hash.digest(&client_key) != stored_key {
        return Step::Failed(FAILED.into());
    }
    let answer = format!("v={}", B64.encode(hash.mac(&server_key, auth_message.as_bytes()))).into_bytes();
    Step::Done { user: s.user.clone(), answer }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn users() -> Users {
        Users::parse("user,password\n# the class\nada,lovelace\nalan,turing\n").unwrap()
    }

    #[test]
    fn the_users_file_is_checked_line_by_line() {
        assert_eq!(users().names().collect::<Vec<_>>(), ["ada", "alan"]);
        assert!(Users::parse("ada\n").unwrap_err().contains("line 1"));
        assert!(Users::parse("ada,x\nada,y\n").unwrap_err().contains("twice"));
        assert!(Users::parse("ada,x,y,z\n").unwrap_err().contains("line 1"));
        assert!(Users::parse("ada,x,\n").unwrap_err().contains("empty"));
        let with = Users::parse("user,password,prefix\nada,x,lab.\nalan,y\n").unwrap();
        assert_eq!((with.prefix("ada"), with.prefix("alan")), (Some("lab."), None));
        assert!(Users::parse("# nobody\n").is_err());
    }

    #[test]
    fn plain_accepts_the_right_password_only() {
        let mut e = Exchange::start("PLAIN").unwrap();
        assert!(matches!(e.step(&users(), b"\0ada\0lovelace"), Step::Done { user, .. } if user == "ada"));
        assert_eq!(e.step(&users(), b"\0ada\0babbage"), Step::Failed(FAILED.into()));
        assert_eq!(e.step(&users(), b"\0grace\0hopper"), Step::Failed(FAILED.into()));
    }

    /// A SCRAM client's final message, from RFC 5802's formulas.
    fn client_final(hash: Hash, password: &str, client_first_bare: &str, server_first: &str) -> String {
        client_final_with(hash, password, client_first_bare, server_first, attributes(server_first)[&'r'])
    }

    /// The same, with `r` for client-final's nonce, signed as sent.
    fn client_final_with(hash: Hash, password: &str, client_first_bare: &str, server_first: &str, r: &str) -> String {
        let a = attributes(server_first);
        let salted = hash.salted(password, &B64.decode(a[&'s']).unwrap());
        let client_key = hash.mac(&salted, b"Client Key");
        let without_proof = format!("c=biws,r={r}");
        let auth = format!("{client_first_bare},{server_first},{without_proof}");
        let signature = hash.mac(&hash.digest(&client_key), auth.as_bytes());
        let proof: Vec<u8> = client_key.iter().zip(&signature).map(|(k, s)| k ^ s).collect();
        format!("{without_proof},p={}", B64.encode(proof))
    }

    #[test]
    fn scram_checks_the_proof_and_signs_its_answer() {
        for (mechanism, hash) in [("SCRAM-SHA-256", Hash::Sha256), ("SCRAM-SHA-512", Hash::Sha512)] {
            for (password, ok) in [("turing", true), ("enigma", false)] {
                let mut e = Exchange::start(mechanism).unwrap();
                let bare = "n=alan,r=fyko+d2lbbFgONRv9qkxdawL";
                let Step::Continue(first) = e.step(&users(), format!("n,,{bare}").as_bytes()) else { panic!() };
                let first = String::from_utf8(first).unwrap();
                assert!(first.starts_with("r=fyko+d2lbbFgONRv9qkxdawL") && first.ends_with(",i=4096"), "{first}");
                let answer = e.step(&users(), client_final(hash, password, bare, &first).as_bytes());
                match answer {
                    Step::Done { user, answer } => {
                        assert!(ok, "{mechanism}: a wrong password passed");
                        assert_eq!(user, "alan");
                        assert!(answer.starts_with(b"v="));
                    }
                    Step::Failed(reason) => assert!(!ok && reason == FAILED, "{mechanism}: {reason}"),
                    Step::Continue(_) => panic!("a third SCRAM message"),
                }
            }
        }
    }

    /// librdkafka before 2.6.1 (Debian's kcat: 2.0.2) answers server-first
    /// `r=C+S` with `r=C+C+S` (its own nonce C once more), signed as sent;
    /// the door takes that form and no other nonce. C below is a real one
    /// of kcat's: 32 characters from '-' to '~', '=' and '/' among them.
    #[test]
    fn scram_takes_old_librdkafkas_doubled_client_nonce_and_no_other_nonce() {
        let c = "n-uZ@/efO;QAYv/pez=W1ZG22k|]<9Ou";
        let bare = format!("n=alan,r={c}");
        for (mechanism, hash) in [("SCRAM-SHA-256", Hash::Sha256), ("SCRAM-SHA-512", Hash::Sha512)] {
            let cases = [
                ("server-first's nonce (RFC 5802)", Box::new(|r: &str| r.to_string()) as Box<dyn Fn(&str) -> String>),
                ("librdkafka < 2.6.1: C then server-first's nonce", Box::new(|r: &str| format!("{c}{r}"))),
                ("C twice in front", Box::new(|r: &str| format!("{c}{c}{r}"))),
                ("another prefix (Kafka's endsWith takes it)", Box::new(|r: &str| format!("x{r}"))),
                ("C only", Box::new(|_: &str| c.to_string())),
                ("our part only", Box::new(|r: &str| r[c.len()..].to_string())),
                ("C twice, ours cut short", Box::new(|r: &str| format!("{c}{}", &r[..r.len() - 1]))),
            ];
            for (i, (case, nonce)) in cases.iter().enumerate() {
                let mut e = Exchange::start(mechanism).unwrap();
                let Step::Continue(first) = e.step(&users(), format!("n,,{bare}").as_bytes()) else { panic!() };
                let first = String::from_utf8(first).unwrap();
                let r = nonce(attributes(&first)[&'r']);
                let answer = e.step(&users(), client_final_with(hash, "turing", &bare, &first, &r).as_bytes());
                match (i < 2, answer) {
                    (true, Step::Done { user, .. }) => assert_eq!(user, "alan"),
                    (false, Step::Failed(reason)) => assert!(reason.contains("nonce does not match"), "{reason}"),
                    (_, other) => panic!("{mechanism}, {case} (r={r}): {other:?}"),
                }
            }
        }
    }
}
