//! Offline decode throughput: a length-delimited stream of CustomerEvents to
//! JSON lines on one thread, the way `chinook decode --length-delimited` does.
//!
//! Run: `cargo bench --no-default-features --bench decode`

use std::{hint::black_box, time::Instant};

use chinook::codec::{EVENT_TYPE, JsonOptions, Schemas, Transcoder, framing};

const MESSAGES: usize = 200_000;
const ROUNDS: usize = 5;

fn main() {
    let root = env!("CARGO_MANIFEST_DIR");
    let samples: Vec<Vec<u8>> =
        ["customer_created", "customer_updated", "customer_deleted", "status_changed", "contact_updated"]
            .iter()
            .map(|n| std::fs::read(format!("{root}/fixtures/events/{n}.bin")).unwrap())
            .collect();
    let mut stream = Vec::new();
    for i in 0..MESSAGES {
        let m = &samples[i % samples.len()];
        framing::write_varint(m.len() as u64, &mut stream);
        stream.extend_from_slice(m);
    }
    let mut t = Transcoder::new(Schemas::builtin().message(EVENT_TYPE).unwrap(), JsonOptions::default());
    let mut out = Vec::with_capacity(stream.len() * 4);
    let mut best = f64::MAX;
    for _ in 0..ROUNDS {
        out.clear();
        let start = Instant::now();
        for frame in framing::length_delimited(&stream) {
            let (offset, bytes) = frame.unwrap();
            t.decode_json(bytes, offset, false, &mut out).unwrap();
            out.push(b'\n');
        }
        black_box(&out);
        best = best.min(start.elapsed().as_secs_f64());
    }
    println!(
        "decode to JSON lines: {MESSAGES} events ({} bytes in, {} bytes out) in {:.3} s (best of {ROUNDS}) = {:.0} msg/s, {:.0} MB/s in",
        stream.len(),
        out.len(),
        best,
        MESSAGES as f64 / best,
        stream.len() as f64 / best / 1e6
    );
}
