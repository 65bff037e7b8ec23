//! `chinook decode` and `chinook encode`: files or stdin through the codec.

use std::{
    io::{IsTerminal, Read},
    path::PathBuf,
};

use clap::{Args, ValueEnum};
use miette::Diagnostic;
use thiserror::Error;

use super::{Failure, Outcome};
use crate::{
    codec::{
        CodecError, JsonOptions, Schemas, Transcoder,
        framing::{self, Confluent, TextEncoding},
    },
    exit,
    ui::{Format, Ui},
};

/// Where the schemas come from, shared by decode and encode.
#[derive(Debug, Args)]
pub struct SchemaArgs {
    /// Full name of the message type.
    #[arg(long = "type", short = 't', default_value = crate::codec::EVENT_TYPE)]
    pub type_name: String,
    /// A .proto file to compile at run time instead of the built-in schemas (repeatable).
    #[arg(long = "proto", value_name = "FILE")]
    pub protos: Vec<PathBuf>,
    /// Import root for --proto files (repeatable; default: each file's directory).
    #[arg(short = 'I', long = "include", value_name = "DIR", requires = "protos")]
    pub includes: Vec<PathBuf>,
    /// Write int64/uint64 as JSON numbers instead of strings (the proto3 default).
    #[arg(long)]
    pub int64_as_numbers: bool,
}

impl SchemaArgs {
    fn transcoder(&self, allow_empty: bool) -> Result<Transcoder, CodecError> {
        let schemas =
            if self.protos.is_empty() { Schemas::builtin() } else { Schemas::compile(&self.protos, &self.includes)? };
        let options = JsonOptions { int64_as_strings: !self.int64_as_numbers, allow_empty };
        Ok(Transcoder::new(schemas.message(&self.type_name)?, options))
    }
}

#[derive(Debug, Args)]
#[command(after_help = "\
Examples:
  chinook decode fixtures/events/customer_created.bin
  kcat -C -t customer_events -e -f '%s' | chinook decode --length-delimited
  echo 0a0365766a | chinook decode --hex
  chinook decode --proto my.proto -I proto --type my.v1.Thing thing.bin

A record that starts with byte 0x00 is read as Confluent wire format (schema id + message
indexes, reported on stderr); protobuf itself never starts with 0x00. With --schema-registry,
such a record is decoded as the writer's message, fetched from the registry by its schema id:
  kcat -C -t customer_events_framed -e -f '%s' -c 1 | chinook decode --schema-registry")]
pub struct DecodeArgs {
    /// File to read (default: standard input).
    pub file: Option<PathBuf>,
    /// The input is hex text (whitespace, ':' and 0x allowed).
    #[arg(long, conflicts_with = "base64")]
    pub hex: bool,
    /// The input is base64 text.
    #[arg(long)]
    pub base64: bool,
    /// The input is a stream of varint-length-prefixed messages.
    #[arg(long)]
    pub length_delimited: bool,
    /// Stop at the first record that does not decode (streams go on by default).
    #[arg(long)]
    pub fail_fast: bool,
    /// Accept an empty payload as a message with all fields at their defaults.
    #[arg(long)]
    pub allow_empty: bool,
    #[command(flatten)]
    pub schema: SchemaArgs,
    #[command(flatten)]
    pub registry: super::RegistryArgs,
}

/// Why one record did not decode.
#[derive(Debug, Error, Diagnostic)]
enum RecordError {
    #[error(transparent)]
    #[diagnostic(transparent)]
    Codec(#[from] CodecError),
    #[error(transparent)]
    #[diagnostic(transparent)]
    Registry(#[from] crate::registry::client::ClientError),
}

impl From<RecordError> for Failure {
    fn from(e: RecordError) -> Self {
        match e {
            RecordError::Codec(e) => e.into(),
            RecordError::Registry(e) => e.into(),
        }
    }
}

/// The writers' message types of framed records, fetched from a registry
/// once per schema id (decode runs without an async runtime otherwise).
struct Writers {
    client: crate::registry::client::Client,
    runtime: tokio::runtime::Runtime,
    options: JsonOptions,
    by_id: std::collections::HashMap<u32, Transcoder>,
}

impl Writers {
    fn transcoder(&mut self, header: &Confluent, ui: &Ui) -> Result<&mut Transcoder, RecordError> {
        if !self.by_id.contains_key(&header.schema_id) {
            let message = self.runtime.block_on(self.client.message(header))?;
            ui.note(format!(
                "schema id {}: {} (from the registry at {})",
                header.schema_id,
                message.full_name(),
                self.client.url()
            ));
            self.by_id.insert(header.schema_id, Transcoder::new(message, self.options));
        }
        Ok(self.by_id.get_mut(&header.schema_id).expect("inserted above"))
    }
}

#[derive(Debug, Error, Diagnostic)]
enum IoError {
    #[error("cannot read {path}: {source}")]
    #[diagnostic(code(chinook::io::read), help("check the path; use - or no argument to read standard input"))]
    Read { path: String, source: std::io::Error },
    #[error("no input: standard input is a terminal")]
    #[diagnostic(
        code(chinook::io::no_input),
        help("give a FILE argument or pipe bytes in, e.g. `chinook {verb} < record.bin`")
    )]
    TtyInput { verb: &'static str },
    #[error("refusing to write raw protobuf bytes to a terminal")]
    #[diagnostic(
        code(chinook::io::binary_tty),
        help("add --output hex or --output base64, or redirect to a file: `> record.bin`")
    )]
    BinaryToTty,
    #[error("cannot start the runtime the registry client needs: {0}")]
    #[diagnostic(code(chinook::io::runtime))]
    Runtime(std::io::Error),
    #[error("cannot write to standard output: {0}")]
    #[diagnostic(code(chinook::io::write))]
    Write(std::io::Error),
    #[error("{failed} of {total} records did not decode")]
    #[diagnostic(
        code(chinook::decode::partial),
        help("each failure is reported above with its byte offset; the other records were decoded")
    )]
    Partial { failed: usize, total: usize },
}

fn read_input(file: &Option<PathBuf>, verb: &'static str) -> Result<(Vec<u8>, String), Failure> {
    match file {
        Some(path) if path.as_os_str() != "-" => {
            std::fs::read(path).map(|b| (b, path.display().to_string())).map_err(|source| {
                Failure::new(exit::BAD_INPUT, IoError::Read { path: path.display().to_string(), source })
            })
        }
        _ => {
            if std::io::stdin().is_terminal() {
                return Err(Failure::new(exit::USAGE, IoError::TtyInput { verb }));
            }
            let mut buf = Vec::new();
            std::io::stdin().read_to_end(&mut buf).map_err(|source| {
                Failure::new(exit::BAD_INPUT, IoError::Read { path: "standard input".into(), source })
            })?;
            Ok((buf, "stdin".into()))
        }
    }
}

fn write(bytes: &[u8]) -> Result<(), Failure> {
    Ui::write_stdout(bytes).map_err(|e| Failure::new(exit::FAILED, IoError::Write(e)))
}

pub fn decode(args: DecodeArgs, ui: Ui) -> Outcome {
    let mut transcoder = args.schema.transcoder(args.allow_empty)?;
    let managed =
        crate::broker::process::current(&crate::broker::Paths::under(&std::env::current_dir().unwrap_or_default()))
            .ok()
            .and_then(|(state, _)| state);
    let mut writers = match args.registry.client(managed.as_ref()) {
        Some(client) => Some(Writers {
            client,
            runtime: tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .map_err(|e| Failure::new(exit::FAILED, IoError::Runtime(e)))?,
            options: JsonOptions { int64_as_strings: !args.schema.int64_as_numbers, allow_empty: args.allow_empty },
            by_id: Default::default(),
        }),
        None => None,
    };
    let (raw, _) = read_input(&args.file, "decode")?;
    let encoding = if args.hex {
        TextEncoding::Hex
    } else if args.base64 {
        TextEncoding::Base64
    } else {
        TextEncoding::Raw
    };
    let bytes = framing::unwrap_text(raw, encoding)?;
    let pretty = match ui.format {
        Format::Json => true,
        Format::Jsonl => false,
        Format::Human => Ui::stdout_is_tty(),
    };

    let records: Vec<Result<framing::Frame<'_>, CodecError>> =
        if args.length_delimited { framing::length_delimited(&bytes).collect() } else { vec![Ok((0, &bytes[..]))] };
    let total = records.len();
    let mut failed = 0;
    let mut out = Vec::with_capacity(bytes.len() * 4);
    for record in records {
        let result = record.map_err(RecordError::from).and_then(|(offset, record)| {
            let (payload, at, writer) = match framing::strip_confluent(record).map_err(|e| shift(e, offset))? {
                Some((header, start)) => {
                    note_confluent(&ui, offset, &header);
                    let writer = match &mut writers {
                        Some(w) => Some(w.transcoder(&header, &ui)?),
                        None => None,
                    };
                    (&record[start..], offset + start, writer)
                }
                None => (record, offset, None),
            };
            Ok(writer.unwrap_or(&mut transcoder).decode_json(payload, at, pretty, &mut out)?)
        });
        match result {
            Ok(()) => out.push(b'\n'),
            Err(e) if total == 1 || args.fail_fast => {
                write(&out)?;
                return Err(e.into());
            }
            Err(e) => {
                failed += 1;
                write(&out)?;
                out.clear();
                crate::ui::report(&miette::Report::new(e));
            }
        }
    }
    write(&out)?;
    if failed > 0 {
        return Err(Failure::new(exit::BAD_INPUT, IoError::Partial { failed, total }));
    }
    Ok(exit::OK)
}

/// Moves a framing error's offset from record-relative to input-relative.
fn shift(error: CodecError, by: usize) -> CodecError {
    match error {
        CodecError::Framing { offset, reason, help } => CodecError::Framing { offset: offset + by, reason, help },
        other => other,
    }
}

fn note_confluent(ui: &Ui, offset: usize, header: &Confluent) {
    ui.note(format!(
        "record at byte {offset}: Confluent framing, schema id {}, message indexes {:?}",
        header.schema_id, header.message_indexes
    ));
}

/// How `encode` writes the bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum, Default)]
pub enum OutputEncoding {
    #[default]
    Raw,
    Hex,
    Base64,
}

#[derive(Debug, Args)]
#[command(after_help = "\
Examples:
  chinook encode fixtures/events/customer_created.json > created.bin
  chinook encode --output hex < event.json
  chinook encode --length-delimited events.jsonl > events.ld      # one JSON object per line
  chinook encode --schema-id 42 event.json | chinook decode        # Confluent framing round trip")]
pub struct EncodeArgs {
    /// JSON file to read (default: standard input): one object, or several (one per line).
    pub file: Option<PathBuf>,
    /// How to write the bytes.
    #[arg(long, short = 'o', value_enum, default_value_t = OutputEncoding::Raw)]
    pub output: OutputEncoding,
    /// Prefix each message with its varint length (needed for several messages in raw output).
    #[arg(long)]
    pub length_delimited: bool,
    /// Frame each message in the Confluent wire format with this schema id.
    #[arg(long, value_name = "ID")]
    pub schema_id: Option<u32>,
    /// Message indexes for the Confluent header (default 0: the first message of the file).
    #[arg(long, value_delimiter = ',', default_value = "0", requires = "schema_id")]
    pub message_index: Vec<i64>,
    #[command(flatten)]
    pub schema: SchemaArgs,
}

#[derive(Debug, Error, Diagnostic)]
#[error("{count} JSON messages but raw output has no boundaries between them")]
#[diagnostic(
    code(chinook::encode::ambiguous),
    help("add --length-delimited, or --output hex/base64 (one line per message)")
)]
struct Ambiguous {
    count: usize,
}

pub fn encode(args: EncodeArgs, _ui: Ui) -> Outcome {
    let transcoder = args.schema.transcoder(true)?;
    let (raw, name) = read_input(&args.file, "encode")?;
    let text = String::from_utf8(raw).map_err(|e| CodecError::Text {
        what: "JSON",
        flag: "json",
        allowed: "UTF-8 text",
        offset: e.utf8_error().valid_up_to(),
        reason: "not UTF-8".into(),
    })?;
    let mut messages = Vec::new();
    let mut stream = serde_json::Deserializer::from_str(&text).into_iter::<serde::de::IgnoredAny>();
    let mut start = 0;
    loop {
        match stream.next() {
            None => break,
            Some(parsed) => {
                let end = stream.byte_offset();
                // Syntax errors are reported by from_json with the exact place.
                let slice_end = if parsed.is_ok() { end } else { text.len() };
                messages.push(transcoder.from_json(&text, start..slice_end, &name)?);
                if parsed.is_err() {
                    break;
                }
                start = end;
            }
        }
    }
    if messages.is_empty() {
        messages.push(transcoder.from_json(&text, 0..text.len(), &name)?);
    }
    let raw_output = args.output == OutputEncoding::Raw;
    if raw_output && messages.len() > 1 && !args.length_delimited {
        return Err(Failure::new(exit::USAGE, Ambiguous { count: messages.len() }));
    }
    if raw_output && std::io::stdout().is_terminal() {
        return Err(Failure::new(exit::USAGE, IoError::BinaryToTty));
    }
    let header = args.schema_id.map(|schema_id| Confluent { schema_id, message_indexes: args.message_index.clone() });
    let mut out = Vec::new();
    for msg in &messages {
        let mut record = Vec::new();
        if let Some(h) = &header {
            framing::write_confluent(h, &mut record);
        }
        record.extend_from_slice(&Transcoder::encode(msg));
        let mut framed = Vec::with_capacity(record.len() + 5);
        if args.length_delimited {
            framing::write_varint(record.len() as u64, &mut framed);
        }
        framed.extend_from_slice(&record);
        match args.output {
            OutputEncoding::Raw => out.extend_from_slice(&framed),
            OutputEncoding::Hex => out.extend_from_slice(&framing::wrap_text(&framed, TextEncoding::Hex)),
            OutputEncoding::Base64 => out.extend_from_slice(&framing::wrap_text(&framed, TextEncoding::Base64)),
        }
    }
    write(&out)?;
    Ok(exit::OK)
}
